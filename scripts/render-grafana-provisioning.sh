#!/bin/sh
# Assembles Grafana's provisioning folder: the repository's grafana/provisioning with the files that depend on
# config.yaml (the alert rules and dashboards, from each sensor's min and max) rendered again by
# `templog grafana --output DIR` from the config.yaml in use. docker-compose.yml runs it in the one-shot service
# grafana-provisioning, which Grafana waits for, so editing config.yaml and recreating the stack
# (docker compose up -d --force-recreate) is all it takes to change a threshold.
# Environment: TEMPLOG_GRAFANA_PROVISIONING_SRC (the repository's grafana/provisioning, mounted read-only),
# TEMPLOG_GRAFANA_PROVISIONING_OUT (the volume Grafana reads as /etc/grafana/provisioning), TEMPLOG_CONFIG.
set -eu

src=${TEMPLOG_GRAFANA_PROVISIONING_SRC:-/etc/templog/grafana-provisioning}
out=${TEMPLOG_GRAFANA_PROVISIONING_OUT:-/etc/grafana/provisioning}
config=${TEMPLOG_CONFIG:-/etc/templog/config.yaml}
rules=alerting/templog-rules.yaml

fail() {
    echo "grafana-provisioning: $*" >&2
    exit 1
}

[ -d "$src" ] || fail "$src is not a directory"
[ -d "$out" ] || fail "$out is not a directory"

umask 022
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
staging=$scratch/provisioning
mkdir "$staging"
cp -R "$src/." "$staging/"
rm -f "$staging/$rules" # rendered from the committed config.yaml: must come back rendered from this one

# Render before touching $out: a config that templog refuses leaves the last good provisioning in place.
templog grafana --output "$staging" -c "$config"
[ -s "$staging/$rules" ] || fail "templog grafana wrote no $rules"

find "$out" -mindepth 1 -delete
cp -R "$staging/." "$out/"
chmod -R a+rX "$out"
echo "grafana-provisioning: $src with the rules and dashboards for $config is in $out"

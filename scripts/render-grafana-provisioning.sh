#!/bin/sh
# Assembles Grafana's provisioning folder: the repository's grafana/provisioning with the files that depend on
# config.yaml (the alert rules and dashboards, from each sensor's min and max) rendered again by
# `templog grafana --output DIR` from the config.yaml in use. docker-compose.yml runs it in the one-shot service
# grafana-provisioning, which Grafana waits for, so editing config.yaml and recreating the stack
# (docker compose up -d --force-recreate) is all it takes to change a threshold.
# Environment: TEMPLOG_GRAFANA_PROVISIONING_SRC (the repository's grafana/provisioning, mounted read-only),
# TEMPLOG_GRAFANA_PROVISIONING_OUT (the volume Grafana reads as /etc/grafana/provisioning), TEMPLOG_CONFIG.
#
# The volume's root is never changed, only what it holds: its owner and mode are whatever Docker gave it when it
# was first mounted (moby copies the image folder's owner and mode onto an empty volume: Grafana's image has it
# 472:0 mode 0777, ours 10001:10001 mode 0755), and only its owner or root may chmod it.
set -eu

src=${TEMPLOG_GRAFANA_PROVISIONING_SRC:-/etc/templog/grafana-provisioning}
out=${TEMPLOG_GRAFANA_PROVISIONING_OUT:-/etc/grafana/provisioning}
config=${TEMPLOG_CONFIG:-/etc/templog/config.yaml}
rules=alerting/templog-rules.yaml
repair="remove the volume (docker compose down && docker volume rm templog_grafana-provisioning) and start again"

fail() {
    echo "grafana-provisioning: $*" >&2
    exit 1
}

[ -d "$src" ] || fail "$src is not a directory"
[ -d "$out" ] || fail "$out is not a directory"
if ! { [ -w "$out" ] && [ -x "$out" ]; }; then
    fail "$out (owner uid $(stat -c %u "$out"), mode $(stat -c %a "$out")) is not writable by uid $(id -u): $repair"
fi

umask 022
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
staging=$scratch/provisioning
mkdir "$staging"
cp -R "$src/." "$staging/"
# Rendered from the committed config.yaml for api v2: they must come back rendered from this config, for its api
# (a dashboard `templog grafana` does not render for it, e.g. the Flux one on InfluxDB 3, is not provisioned)
rm -f "$staging/$rules" "$staging"/dashboards/templog/*.json

# Render before touching $out: a config that templog refuses leaves the last good provisioning in place. $out
# still holds what Grafana was given before: the rules and contact points gone since then are rendered as deletions
# (Grafana's file provisioning deletes only what a file lists).
templog grafana --output "$staging" --previous "$out" -c "$config"
[ -s "$staging/$rules" ] || fail "templog grafana wrote no $rules"
# Readable by Grafana's user (uid 472) whatever modes the checkout has; cp -R below keeps these modes.
chmod -R a+rX "$staging"

# The alerting files in $out record what Grafana was given (the next start's deletions come from them), so they are
# never absent: everything else goes first, then each new one is renamed over its old one, then the rest is copied.
# A one-shot killed at any moment (power loss) leaves the old or the new record whole.
# Entries of other owners go too where the root's mode allows it (no sticky bit, as Docker makes it).
if [ -d "$out/alerting" ] && ! { [ -w "$out/alerting" ] && [ -x "$out/alerting" ]; }; then
    rmdir "$out/alerting" 2>/dev/null || true # an empty folder of another user, made by Docker's copy-up
fi
if ! find "$out" -mindepth 1 ! -path "$out/alerting" ! -path "$out/alerting/templog-*.yaml" -delete 2>/dev/null; then
    left=$(find "$out" -mindepth 1 ! -path "$out/alerting" ! -path "$out/alerting/templog-*.yaml" \
        -printf '%p (owner uid %U, mode %m); ' 2>/dev/null | head -c 500)
    fail "cannot empty $out as uid $(id -u), left: ${left}$repair"
fi
for file in "$out"/alerting/templog-*.yaml; do # e.g. the notifications, when there is nothing to provision or delete
    if [ -e "$file" ] && [ ! -e "$staging/alerting/${file##*/}" ]; then rm -f "$file"; fi
done
mkdir -p "$out/alerting"
for file in "$staging"/alerting/templog-*.yaml; do
    cp "$file" "$out/alerting/.templog-new"
    mv -f "$out/alerting/.templog-new" "$out/alerting/${file##*/}"
    rm "$file"
done
cp -R "$staging/." "$out/"
echo "grafana-provisioning: $src with the rules and dashboards for $config is in $out"

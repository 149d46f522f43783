#!/bin/sh
# Generates the Docker stack's secrets, one random value per file, into secrets/ beside docker-compose.yml
# (git-ignored; docker-compose.yml reads them from there):
#   influxdb-admin-password   InfluxDB's admin user (admin)
#   influxdb-admin-token      InfluxDB's admin (operator) token, for the influx CLI: influx ... --token "$(cat ...)"
#   grafana-admin-password    Grafana's admin user (admin)
# A file that exists is kept, so running this again is harmless. InfluxDB and Grafana take these values on their
# first start only: a changed file has no effect on a stack that has already run.
# Usage: scripts/make-secrets.sh [DIR]
set -eu

dir=${1:-$(dirname "$0")/../secrets}

# random_hex BYTES: BYTES random bytes from the kernel, as 2*BYTES hex digits
random_hex() {
    if [ -r /dev/urandom ]; then
        value=$(od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n')
    else
        value=$(openssl rand -hex "$1")
    fi
    if [ "${#value}" -ne $(($1 * 2)) ]; then
        echo "make-secrets: could not read $1 random bytes" >&2
        exit 1
    fi
    printf '%s' "$value"
}

# make_secret NAME BYTES: DIR/NAME with a new random value, unless it exists
make_secret() {
    file=$dir/$1
    if [ -s "$file" ]; then
        echo "kept      $file"
        return
    fi
    value=$(random_hex "$2")
    tmp=$(mktemp "$dir/.$1.XXXXXX")
    printf '%s' "$value" >"$tmp"
    # The containers read these files as their own, non-root users through bind mounts, so the files are
    # world-readable; the folder (0700) keeps the other users of this machine out.
    chmod 0644 "$tmp"
    mv "$tmp" "$file"
    echo "generated $file"
}

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
make_secret influxdb-admin-password 16
make_secret influxdb-admin-token 32
make_secret grafana-admin-password 16

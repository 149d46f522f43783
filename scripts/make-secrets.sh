#!/bin/sh
# Generates the Docker stack's secrets, one random value per file, into secrets/ beside docker-compose.yml
# (git-ignored; docker-compose.yml reads them from there):
#   influxdb-admin-password   InfluxDB's admin user (admin)
#   influxdb-admin-token      InfluxDB's admin (operator) token, for the influx CLI: influx ... --token "$(cat ...)"
#   grafana-admin-password    Grafana's admin user (admin)
#   influxdb3-admin-token     InfluxDB 3's admin token (docker-compose.influxdb3.yml), as a client sends it
#   influxdb3-admin-token.json  the same token as the server's --admin-token-file reads it
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

# random_base64url BYTES: BYTES random bytes from the kernel, base64url-encoded without padding
random_base64url() {
    if [ -r /dev/urandom ]; then
        value=$(dd if=/dev/urandom bs="$1" count=1 2>/dev/null | base64 | tr -d '\n=' | tr '+/' '-_')
    else
        value=$(openssl rand "$1" | base64 | tr -d '\n=' | tr '+/' '-_')
    fi
    if [ "${#value}" -ne $((($1 * 4 + 2) / 3)) ]; then
        echo "make-secrets: could not read $1 random bytes" >&2
        exit 1
    fi
    printf '%s' "$value"
}

# write_secret NAME VALUE: DIR/NAME holding VALUE, replaced at once
write_secret() {
    tmp=$(mktemp "$dir/.$1.XXXXXX")
    printf '%s' "$2" >"$tmp"
    # The containers read these files as their own, non-root users through bind mounts, so the files are
    # world-readable; the folder (0700) keeps the other users of this machine out.
    chmod 0644 "$tmp"
    mv "$tmp" "$dir/$1"
    echo "generated $dir/$1"
}

# InfluxDB 3's admin token, in the two forms the stack needs, made together: the token the way the server makes
# one (influxdata/influxdb@v3.10.1:influxdb3_catalog/src/catalog.rs create_token_and_hash: "apiv3_" and 64 random
# bytes, base64url without padding; the server only checks the prefix and keeps its SHA-512), and the JSON of
# `serve --admin-token-file` (influxdb3/src/commands/serve.rs initialize_admin_token_from_file; fields of
# influxdb3/src/commands/create/token.rs AdminTokenFile: token, name, optional expiry_millis). The name is
# "_admin", the operator token's: the one POST /api/v3/configure/token/admin would otherwise let anyone create
# without a token while none exists (influxdb3_server/src/http.rs perform_routing, catalog create_admin_token).
make_influxdb3_token() {
    if [ -s "$dir/influxdb3-admin-token" ] && [ -s "$dir/influxdb3-admin-token.json" ]; then
        echo "kept      $dir/influxdb3-admin-token and $dir/influxdb3-admin-token.json"
        return
    fi
    token=apiv3_$(random_base64url 64)
    write_secret influxdb3-admin-token.json "{\"token\": \"$token\", \"name\": \"_admin\"}
"
    write_secret influxdb3-admin-token "$token"
}

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
make_secret influxdb-admin-password 16
make_secret influxdb-admin-token 32
make_secret grafana-admin-password 16
make_influxdb3_token

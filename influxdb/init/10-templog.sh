#!/bin/sh
# templog's InfluxDB set-up. The influxdb image runs it once, on its first start (every executable *.sh in
# /docker-entrypoint-initdb.d, as root, after `influx setup` has made the org, the admin user and token and the raw
# bucket; the influx CLI is then logged in as that admin and points at the set-up server through INFLUX_HOST).
# It
#   1. creates the long-term bucket (TEMPLOG_LONGTERM_BUCKET, retention TEMPLOG_LONGTERM_RETENTION),
#   2. installs the task that fills it with hourly mean, min, max and count per series (TEMPLOG_DOWNSAMPLE_FLUX),
#   3. creates three least-privilege tokens and hands each to one service in a file that only that service's user
#      may read: a write-only token for the raw bucket (the collector), a read-only one for the raw and the
#      long-term bucket (Grafana) and a read-only one for the raw bucket (the report service: `templog report`).
# Running it again repairs a stack, e.g. after a token volume was lost:
#   docker compose exec influxdb /docker-entrypoint-initdb.d/10-templog.sh
# finds the bucket and the task and updates them, issues new tokens and deletes the ones it had issued before.
set -eu

# What the image gives its init scripts (influxdata/influxdata-docker@d457cb93:influxdb/2.7/entrypoint.sh): the container's environment
# from docker-compose.yml, and exported by the entrypoint INFLUX_HOST and DOCKER_INFLUXDB_INIT_{USER,ORG,BUCKET}_ID.
# Values it reads from a *_FILE (the admin's user name, password and token) it keeps in unexported variables.
org=${DOCKER_INFLUXDB_INIT_ORG:?set by docker-compose.yml}
raw_bucket=${DOCKER_INFLUXDB_INIT_BUCKET:?set by docker-compose.yml}
longterm_bucket=${TEMPLOG_LONGTERM_BUCKET:-temperature_longterm}
longterm_retention=${TEMPLOG_LONGTERM_RETENTION:-1825d}
flux_file=${TEMPLOG_DOWNSAMPLE_FLUX:-/etc/templog/influxdb/tasks/downsample.flux}
collector_token_file=${TEMPLOG_COLLECTOR_TOKEN_FILE:-/run/templog/collector-token/token}
collector_uid=${TEMPLOG_COLLECTOR_UID:-10001}
grafana_token_file=${TEMPLOG_GRAFANA_TOKEN_FILE:-/run/templog/grafana-token/token}
grafana_uid=${TEMPLOG_GRAFANA_UID:-472}
report_token_file=${TEMPLOG_REPORT_TOKEN_FILE:-/run/templog/report-token/token}
report_uid=${TEMPLOG_REPORT_UID:-10001}

task_name=templog-downsample
collector_description="templog collector: write ${raw_bucket}"
grafana_description="templog grafana: read ${raw_bucket}, ${longterm_bucket}"
report_description="templog report: read ${raw_bucket}"

umask 077

log() {
    printf 'templog init: %s\n' "$*" >&2
}

die() {
    log "$*"
    exit 1
}

# json_rows KEY... < the JSON of an `influx ... --json`: for the object, or for each object of the list, one line of
# the values of its top-level KEYs, tab-separated (strings as they stand in the JSON, escapes kept). influx-cli
# prints with Go's json.Encoder indented by tabs (influx-cli v2.7.5 clients/cli.go PrintJSON): one key per line,
# a top-level object's keys one tab deeper than its braces, and no string holds a raw tab or newline.
# (Its tables are no use: pkg/tabwriter pads columns with as many tabs as the widest cell needs.)
json_rows() {
    awk -v keys="$*" '
        NR == 1 { depth = ($0 == "[") ? 2 : 1; count = split(keys, wanted, " ") }
        {
            indent = match($0, /[^\t]/) - 1
            if (indent == depth && match($0, /^\t*"[^"]*": /)) {
                key = substr($0, depth + 2, RLENGTH - depth - 4)
                value = substr($0, RLENGTH + 1)
                sub(/,$/, "", value)
                if (value ~ /^".*"$/) value = substr(value, 2, length(value) - 2)
                row[key] = value
            } else if (indent == depth - 1 && $0 ~ /^\t*\{?},?$/) {
                line = row[wanted[1]]
                for (i = 2; i <= count; i++) line = line "\t" row[wanted[i]]
                print line
                split("", row)
            }
        }'
}

# field_where N M VALUE < rows: column N of the rows whose column M is VALUE
field_where() {
    awk -F '\t' -v n="$1" -v m="$2" -v value="$3" '$m == value { print $n }'
}

check_name() {
    case $1 in
        "" | *[!A-Za-z0-9._-]*) die "$2 '$1': use letters, digits, '.', '_' and '-' only" ;;
    esac
}

check_name "$raw_bucket" "bucket name"
check_name "$longterm_bucket" "bucket name"
[ -r "$flux_file" ] || die "cannot read the downsampling task $flux_file"

buckets=$(influx bucket list --org "$org" --json)
buckets=$(printf '%s\n' "$buckets" | json_rows id name)
raw_id=${DOCKER_INFLUXDB_INIT_BUCKET_ID:-$(printf '%s\n' "$buckets" | field_where 1 2 "$raw_bucket")}
[ -n "$raw_id" ] || die "bucket $raw_bucket not found in org $org"

# 1. The long-term bucket.
longterm_id=$(printf '%s\n' "$buckets" | field_where 1 2 "$longterm_bucket")
if [ -z "$longterm_id" ]; then
    created=$(influx bucket create --org "$org" --name "$longterm_bucket" --retention "$longterm_retention" \
        --description "templog: hourly mean, min, max and count per series" --json)
    longterm_id=$(printf '%s\n' "$created" | json_rows id)
    [ -n "$longterm_id" ] || die "influx bucket create printed no bucket ID"
    log "created bucket $longterm_bucket (retention $longterm_retention)"
else
    influx bucket update --id "$longterm_id" --retention "$longterm_retention" >/dev/null
    log "bucket $longterm_bucket exists; retention set to $longterm_retention"
fi

# 2. The downsampling task, with this stack's bucket names.
flux=$(mktemp)
trap 'rm -f "$flux"' EXIT
sed -e "s/^rawBucket = \".*\"\$/rawBucket = \"$raw_bucket\"/" \
    -e "s/^longtermBucket = \".*\"\$/longtermBucket = \"$longterm_bucket\"/" "$flux_file" >"$flux"
if ! grep -Fqx "rawBucket = \"$raw_bucket\"" "$flux" ||
    ! grep -Fqx "longtermBucket = \"$longterm_bucket\"" "$flux"; then
    die "$flux_file lacks the lines rawBucket = \"...\" and longtermBucket = \"...\""
fi
grep -Fq "name: \"$task_name\"" "$flux" || die "$flux_file does not name its task $task_name"

tasks=$(influx task list --org "$org" --json)
task_id=$(printf '%s\n' "$tasks" | json_rows id name | field_where 1 2 "$task_name")
if [ -z "$task_id" ]; then
    influx task create --org "$org" --file "$flux" >/dev/null
    log "created task $task_name"
else
    influx task update --id "$task_id" --file "$flux" >/dev/null
    log "updated task $task_name"
fi

# 3. The tokens. Those issued by an earlier run are deleted once the new ones are in place.
auths=$(influx auth list --org "$org" --json)
auths=$(printf '%s\n' "$auths" | json_rows id description)
old_auth_ids=$(
    printf '%s\n' "$auths" | field_where 1 2 "$collector_description"
    printf '%s\n' "$auths" | field_where 1 2 "$grafana_description"
    printf '%s\n' "$auths" | field_where 1 2 "$report_description"
)

# create_token DESCRIPTION PERMISSION...: prints the new token
create_token() {
    description=$1
    shift
    created=$(influx auth create --org "$org" --user "$admin_user" --description "$description" "$@" --json)
    token=$(printf '%s\n' "$created" | json_rows token)
    [ -n "$token" ] || die "influx auth create printed no token for '$description'"
    printf '%s' "$token"
}

# hand_over TOKEN FILE UID: writes TOKEN into FILE (replacing it at once), readable by user UID alone
hand_over() {
    dir=$(dirname "$2")
    mkdir -p "$dir"
    chmod 0755 "$dir"
    tmp=$(mktemp "$dir/.token.XXXXXX")
    printf '%s' "$1" >"$tmp"
    chown "$3" "$tmp"
    chmod 0400 "$tmp"
    mv -f "$tmp" "$2"
}

# The tokens' owner: the admin user set up by the entrypoint, named in the environment or in the file it was read
# from; without either (e.g. run again by docker compose exec without the variable), the only user there is.
if [ -n "${DOCKER_INFLUXDB_INIT_USERNAME:-}" ]; then
    admin_user=$DOCKER_INFLUXDB_INIT_USERNAME
elif [ -n "${DOCKER_INFLUXDB_INIT_USERNAME_FILE:-}" ]; then
    admin_user=$(cat "$DOCKER_INFLUXDB_INIT_USERNAME_FILE") || die "cannot read $DOCKER_INFLUXDB_INIT_USERNAME_FILE"
else
    users=$(influx user list --json)
    admin_user=$(printf '%s\n' "$users" | json_rows name)
    newline='
'
    case $admin_user in
        "" | *"$newline"*) die "set DOCKER_INFLUXDB_INIT_USERNAME: there is not exactly one user to own the tokens" ;;
    esac
fi

collector_token=$(create_token "$collector_description" --write-bucket "$raw_id")
hand_over "$collector_token" "$collector_token_file" "$collector_uid"
log "write-only token for bucket $raw_bucket in $collector_token_file (user $collector_uid)"

grafana_token=$(create_token "$grafana_description" --read-bucket "$raw_id" --read-bucket "$longterm_id")
hand_over "$grafana_token" "$grafana_token_file" "$grafana_uid"
log "read-only token for buckets $raw_bucket and $longterm_bucket in $grafana_token_file (user $grafana_uid)"

# Reading the raw bucket is all `templog report` does: Flux's from(bucket:) finds a bucket through a service that
# asks for read permission on it (influxdata/influxdb@v2.7.12: cmd/influxd/launcher/launcher.go, the query
# dependencies' authorizer.NewBucketService; authorizer/bucket.go FindBucket: AuthorizeReadBucket).
report_token=$(create_token "$report_description" --read-bucket "$raw_id")
hand_over "$report_token" "$report_token_file" "$report_uid"
log "read-only token for bucket $raw_bucket in $report_token_file (user $report_uid)"

for id in $old_auth_ids; do
    influx auth delete --id "$id" >/dev/null
    log "deleted the token $id issued by an earlier run"
done

#!/bin/sh
# templog's InfluxDB 3 set-up, run by the one-shot service influxdb3-init of docker-compose.influxdb3.yml at every
# start, once the server answers (the image has no init scripts of its own), with curl from the influxdb3 image.
# It
#   1. creates the raw database (TEMPLOG_RAW_DB, retention TEMPLOG_RAW_RETENTION) unless it exists: an existing one
#      keeps its retention, which the collector manages (config.yaml's influxdb.retention);
#   2. creates the long-term database (TEMPLOG_LONGTERM_DB) or sets its retention (TEMPLOG_LONGTERM_RETENTION);
#   3. installs the downsampling trigger: the plugin TEMPLOG_DOWNSAMPLE_PLUGIN of the server's plugin directory, on
#      the raw database, at 5 minutes past every hour, writing into the long-term database (made again at each run,
#      so a changed database name reaches it), told the server's --query-file-limit (TEMPLOG_QUERY_FILE_LIMIT), which
#      sizes how far back it compares counts.
# So the databases exist with their retention before the collector writes (a database InfluxDB 3 creates on a first
# write keeps data forever). HTTP API of influxdata/influxdb@v3.10.1: influxdb3_server/src/http.rs route_request,
# create_database, update_database, configure_processing_engine_trigger; request bodies influxdb3_types/src/http.rs.
set -eu

url=${INFLUX_URL:-http://influxdb3:8181}
token_file=${INFLUX_TOKEN_FILE:?set by docker-compose.influxdb3.yml}
raw_db=${TEMPLOG_RAW_DB:-temperature}
raw_retention=${TEMPLOG_RAW_RETENTION:-30d}
longterm_db=${TEMPLOG_LONGTERM_DB:-temperature_longterm}
longterm_retention=${TEMPLOG_LONGTERM_RETENTION:-1825d}
plugin=${TEMPLOG_DOWNSAMPLE_PLUGIN:-templog_downsample.py}
file_limit=${TEMPLOG_QUERY_FILE_LIMIT:-432} # the server's default (write_buffer/mod.rs)
trigger=templog-downsample
schedule="cron:0 5 * * * *" # sec min hour day month weekday (the cron crate's form, with seconds)

log() {
    printf 'templog init: %s\n' "$*" >&2
}

die() {
    log "$*"
    exit 1
}

# Names go into JSON and URLs as they stand: InfluxDB's own rule for database names (http.rs validate_db_name:
# ASCII letters, digits, '_' and '-') keeps them free of anything to escape.
check_name() {
    case $1 in
        "" | *[!A-Za-z0-9_-]*) die "$2 '$1': use letters, digits, '_' and '-' only" ;;
    esac
}

check_duration() {
    case $1 in
        "" | *[!0-9a-z]*) die "retention '$1': a duration such as 30d or 1825d" ;;
    esac
}

check_name "$raw_db" "database name"
check_name "$longterm_db" "database name"
check_duration "$raw_retention"
check_duration "$longterm_retention"
case $file_limit in
    "" | *[!0-9]*) die "query file limit '$file_limit': a whole number, the server's INFLUXDB3_QUERY_FILE_LIMIT" ;;
esac
case $plugin in
    "" | *[!A-Za-z0-9_.-]* | .*) die "plugin file name '$plugin': letters, digits, '_', '-' and '.' only" ;;
esac

umask 077
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
token=$(cat "$token_file") || die "cannot read the admin token $token_file"
case $token in
    apiv3_*) ;;
    *) die "$token_file does not hold an InfluxDB 3 token (apiv3_...): run scripts/make-secrets.sh" ;;
esac
# The token goes to curl in a header file, not on its command line
printf 'Authorization: Bearer %s\n' "$token" >"$scratch/auth"

# api METHOD PATH [JSON]: the HTTP status; the answer's body in $scratch/body
api() {
    if [ $# -gt 2 ]; then
        printf '%s' "$3" >"$scratch/request"
        set -- "$1" "$2" --data-binary "@$scratch/request" -H "Content-Type: application/json"
    fi
    method=$1
    path=$2
    shift 2
    # curl prints 000 itself when no answer came; its exit status then says why (on stderr)
    if ! code=$(curl -sS --max-time 30 --retry 5 --retry-connrefused -o "$scratch/body" -w '%{http_code}' \
        -X "$method" -H "@$scratch/auth" "$@" "$url$path"); then
        code=000
    fi
    printf '%s' "$code"
}

answer() {
    head -c 300 "$scratch/body" 2>/dev/null | tr '\n' ' '
}

# create_database NAME RETENTION update|keep
create_database() {
    status=$(api POST /api/v3/configure/database "{\"db\":\"$1\",\"retention_period\":\"$2\"}")
    case $status in
        200) log "created database $1 (retention $2)" ;;
        409)
            if [ "$3" = keep ]; then
                log "database $1 exists; its retention is the collector's to manage"
                return
            fi
            # Core accepts a new retention (update_database); documented as fixed, so a refusal is only warned of
            status=$(api PUT /api/v3/configure/database "{\"db\":\"$1\",\"retention_period\":\"$2\"}")
            if [ "$status" = 200 ]; then
                log "database $1 exists; retention set to $2"
            else
                log "WARNING: database $1 exists; setting its retention to $2 was refused ($status: $(answer))"
            fi
            ;;
        401 | 403) die "creating database $1: the admin token was refused ($status): see README 'InfluxDB 3'" ;;
        *) die "creating database $1 failed ($status: $(answer))" ;;
    esac
}

create_database "$raw_db" "$raw_retention" keep
create_database "$longterm_db" "$longterm_retention" update

trigger_json="{\"db\":\"$raw_db\",\"plugin_filename\":\"$plugin\",\"trigger_name\":\"$trigger\",\
\"trigger_settings\":{\"run_async\":false,\"error_behavior\":\"log\"},\"trigger_specification\":\"$schedule\",\
\"trigger_arguments\":{\"longterm_db\":\"$longterm_db\",\"query_file_limit\":\"$file_limit\"},\"disabled\":false}"
status=$(api POST /api/v3/configure/processing_engine_trigger "$trigger_json")
if [ "$status" = 409 ]; then
    # made by an earlier start: replaced, with this start's arguments (force: it is enabled, and may be running)
    status=$(api DELETE "/api/v3/configure/processing_engine_trigger?db=$raw_db&trigger_name=$trigger&force=true")
    [ "$status" = 200 ] || die "replacing trigger $trigger: deleting it failed ($status: $(answer))"
    status=$(api POST /api/v3/configure/processing_engine_trigger "$trigger_json")
fi
[ "$status" = 200 ] || die "creating trigger $trigger ($plugin) failed ($status: $(answer))"
log "trigger $trigger: $plugin on $raw_db at $schedule, into $longterm_db (query file limit $file_limit)"

"""templog on InfluxDB 3: the hourly mean, min, max and count of every temperature series (and of its humidity and dew
point, where the sensor measures humidity), from the raw database into the long-term one, for every hour whose raw
points changed since it was last summarized, however late they arrived. What influxdb/tasks/downsample.flux does on
InfluxDB 2, as a processing-engine plugin (InfluxDB 3 has no Flux and no tasks).

Installed by influxdb3/init/10-templog.sh as the scheduled trigger `templog-downsample` on the raw database, run at
5 minutes past every hour (`cron:0 5 * * * *`); trigger arguments: `longterm_db` (default temperature_longterm) and
`query_file_limit`, the server's --query-file-limit (default 432, the server's own), which sizes the look-back.
docker-compose.influxdb3.yml mounts this folder read-only as the server's plugin directory (/plugins).

In the long-term database: table `temperature`, one row per series and hour stamped with the hour's start, the raw
tags (`sensor`, `host`, ...), fields `mean`, `min`, `max` (°C) and `count` (integer: how many raw points they
summarize), and for the raw fields `humidity` and `dewpoint` the same four with the field's name before them
(`humidity_mean`, ..., `dewpoint_count`), each counted on its own: the schema of the v2 long-term bucket.

Why a plugin and not a rollup run from outside (a service of our own querying the HTTP API every hour): both run the
same three queries through the same DataFusion engine; the plugin runs them inside the server
(influxdata/influxdb@v3.10.1:influxdb3_py_api/src/system_py.rs PyPluginCallApi.query: query_executor.query_sql
in-process), so nothing crosses a network and no token is handed to another container (Core has admin tokens only),
and its writes go straight to the write buffer at the end of the run (handle_return_state in
influxdb3_processing_engine/src/plugins.rs). The outside rollup would fetch every hour the per-hour counts of the whole
raw retention from both databases as JSON (bench/downsample_v3.py, BENCHMARKS.md section 15: with 30 days of 10
sensors at 10 s, 14,400 rows, about 1.4 MiB a run, 34 MiB a day; the queries themselves 0.36 s in DataFusion) and
would need a Python container of its own beside the server's embedded Python. What the plugin costs:
the processing engine must be on (a plugin directory; `--package-manager disabled`, so no venv and no pip at start),
and a run occupies one of the server's blocking threads while it reads (plugins.rs ScheduleTriggerRunner::run_at_time:
spawn_blocking).

How a run works (each step one query; whole hours only, up to the start of the hour of the scheduled time):
1. the raw table's columns (information_schema): its tags are the dictionary-typed ones (InfluxDB 3 stores tags as
   Dictionary(Int32, Utf8)), its fields those of celsius, humidity and dewpoint it has;
2. one count per field, series and hour of the raw table over the look-back (query_file_limit ÷ 12 hours: 6 files an
   hour, twice over; 432 → 36 hours, the stack's 10,000 → 833 hours, more than the raw retention's 720), and the
   counts stored beside the long-term means since the first raw hour in it;
3. every hour from the earliest one with a raw count above the stored one (or none stored) is summarized again:
   count, mean, min and max from one pass (one query, so a point written meanwhile is in all four or in none).
Why counts: the collector's outbox delivers an outage's backlog when InfluxDB is back, into hours of any age within
the raw retention; a late write only adds points, and writing a point again with the same series and time replaces
it, so equal counts mean an hour is complete. A raw count *below* the stored one is not a change: InfluxDB 3 drops
expired raw data by whole Parquet files (10-minute windows, influxdb3_query_executor/src/lib.rs QueryTable.chunks
prunes by the retention cutoff), so the oldest hour shrinks before it vanishes, and its long-term row, summarized
when it was whole, must not be overwritten by a summary of what is left. A failed or missed run (the server down for
days, a run that raised: the trigger logs it, error_behavior log) needs nothing special: the next finds the same
differences. Runs missed while the server was down are not replayed (plugins.rs ScheduleTriggerRunner: the schedule
restarts after `now`); the counts make up for them.
"""

import datetime

HOUR_NS = 3600 * 1_000_000_000
MEASUREMENT = "temperature"
LONGTERM_DB = "temperature_longterm"
# raw field -> the prefix of its four long-term fields
FIELDS = {"celsius": "", "humidity": "humidity_", "dewpoint": "dewpoint_"}
STATS = ("mean", "min", "max", "count")
LONGTERM_FIELDS = frozenset(prefix + stat for prefix in FIELDS.values() for stat in STATS)
HOUR = "date_bin(INTERVAL '1 hour', time)"  # origin 1970-01-01T00:00:00Z: each hour's start, UTC
# The server's --query-file-limit unless told (influxdb3_write/src/write_buffer/mod.rs: query_file_limit.unwrap_or(432))
DEFAULT_QUERY_FILE_LIMIT = 432
# Parquet files a query reads per raw hour: one per table and 10-minute window (gen1 duration) at each snapshot, twice
# over for the files an outage's backlog adds to old windows (write_buffer/queryable_buffer.rs; Core never compacts)
FILES_PER_RAW_HOUR = 2 * 6
FILE_LIMIT_REFUSAL = "exceeding the file limit"  # write_buffer/mod.rs get_table_chunks' message


def process_scheduled_call(influxdb3_local, call_time, args=None):
    """The trigger's entry point (influxdb3_py_api/src/system_py.rs execute_schedule_trigger: called with the API
    object, the scheduled time as a naive datetime from PyDateTime::from_timestamp with no zone, and the trigger's
    arguments as a dict of strings or None)."""
    args = args or {}
    longterm_db = args.get("longterm_db") or LONGTERM_DB
    file_limit = args.get("query_file_limit") or str(DEFAULT_QUERY_FILE_LIMIT)
    if not file_limit.isdigit() or int(file_limit) < FILES_PER_RAW_HOUR:
        influxdb3_local.error(f"templog-downsample: trigger argument query_file_limit={file_limit!r}: the server's "
                              f"--query-file-limit, a whole number of at least {FILES_PER_RAW_HOUR}")
        return
    # .timestamp() reads a naive datetime as local time, which is how from_timestamp made it: the instant comes back
    stop = int(call_time.timestamp()) // 3600 * HOUR_NS
    try:
        summarize(influxdb3_local, longterm_db, stop - lookback_hours(int(file_limit)) * HOUR_NS, stop)
    except Exception as error:  # QueryError, which the engine does not hand to plugins by name
        if FILE_LIMIT_REFUSAL not in str(error):
            raise
        influxdb3_local.error(
            f"templog-downsample: nothing summarized: the server refused a query over more Parquet files than its "
            f"--query-file-limit (INFLUXDB3_QUERY_FILE_LIMIT); give the trigger argument query_file_limit the same "
            f"value as that setting (now {file_limit}), README 'Retention, the file limit and the look-back': {error}")


def lookback_hours(file_limit):
    """How many hours before the run the raw counts cover: as many as a query within `file_limit` files can read
    (the limit counts the files left after the query's time filter: write_buffer/mod.rs get_table_chunks,
    persisted_files.rs get_files_filtered). Older hours are not compared again: a backlog landing there is not
    summarized."""
    return file_limit // FILES_PER_RAW_HOUR


def summarize(influxdb3_local, longterm_db, start, stop):
    """Every hour from `start` to `stop` whose raw points changed since it was last summarized, summarized again."""
    raw_columns = table_columns(influxdb3_local, None)
    fields = [name for name in FIELDS if name in raw_columns]
    if not fields:
        influxdb3_local.info(f"templog-downsample: no {MEASUREMENT} readings yet")
        return
    tags = sorted(name for name, kind in raw_columns.items() if is_tag(kind))
    alias = alias_prefix(raw_columns)
    raw = {}
    for row in influxdb3_local.query(raw_counts_sql(tags, fields, start, stop, alias)):
        raw[(series_key(row, tags), row[alias + "hour"])] = {name: row[alias + name] for name in fields}
    if not raw:
        return
    first_hour = min(hour for _, hour in raw)
    stored = stored_counts(influxdb3_local, longterm_db, first_hour, stop)
    changed = [hour for (key, hour), counts in raw.items()
               if any(counts[name] > stored.get((key, hour), {}).get(name, -1) for name in fields if counts[name])]
    if not changed:
        influxdb3_local.info("templog-downsample: every hour is summarized")
        return
    start = min(changed)
    written = 0
    refused = {}  # series key -> why it cannot be written
    for row in influxdb3_local.query(summary_sql(tags, fields, start, stop, alias)):
        key = series_key(row, tags)
        problem = series_problem(key)
        if problem:
            refused[key] = problem
            continue
        line = summary_line(row, key, fields, stored.get((key, row[alias + "hour"]), {}), alias)
        if line is not None:
            influxdb3_local.write_to_db(longterm_db, line)
            written += 1
    for key, problem in refused.items():
        influxdb3_local.error(f"templog-downsample: series {dict(key)} not summarized: {problem}")
    influxdb3_local.info(f"templog-downsample: {written} series-hours from {iso(start)} to {iso(stop)} "
                         f"into {longterm_db}")


def table_columns(influxdb3_local, database):
    """{column: data type} of the measurement's table in `database` (None: the trigger's); {} without that table."""
    rows = influxdb3_local.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = {string(MEASUREMENT)}", None, database)
    return {row["column_name"]: row["data_type"] for row in rows}


def is_tag(data_type):
    return data_type.startswith("Dictionary(")


def alias_prefix(columns):
    """A prefix for the queries' own column names that no column of the table starts with, so that no alias is a
    tag's name too (DataFusion refuses `... AS hour` beside a column `hour` as ambiguous, and two output columns of
    one name). templog refuses tag keys starting with '_' (collector/lineprotocol.py tag_key_problem): '_'."""
    prefix = "_"
    while any(name.startswith(prefix) for name in columns):
        prefix += "_"
    return prefix


def series_problem(key):
    """Why a series cannot have a long-term point, or None: a tag of the name of a long-term field (InfluxDB 3
    refuses a point with a tag and a field of one name: influxdb3_write/src/write_buffer/validator.rs,
    column_or_create's InvalidColumnType; and all the run's lines are written in one write that refuses them all
    for one bad line: influxdb3_processing_engine/src/plugins.rs handle_return_state, accept_partial false)."""
    for tag, _ in key:
        if tag in LONGTERM_FIELDS or tag == "time":
            return f"its tag '{tag}' has the name of a long-term column"
    return None


def stored_counts(influxdb3_local, longterm_db, start, stop):
    """{(series key, hour): {raw field: the count stored for it}} of the long-term table from `start` to `stop`."""
    columns = table_columns(influxdb3_local, longterm_db)
    counts = {name: FIELDS[name] + "count" for name in FIELDS if FIELDS[name] + "count" in columns}
    if not counts:
        return {}
    tags = sorted(name for name, kind in columns.items() if is_tag(kind))
    selected = [tag_column(name) for name in tags] + [quote(column) for column in counts.values()]
    sql = (f"SELECT {', '.join(selected)}, time FROM {quote(MEASUREMENT)} "
           f"WHERE time >= {timestamp(start)} AND time < {timestamp(stop)}")
    stored = {}
    for row in influxdb3_local.query(sql, None, longterm_db):
        stored[(series_key(row, tags), row["time"])] = {
            name: row[column] for name, column in counts.items() if row[column] is not None}
    return stored


def raw_counts_sql(tags, fields, start, stop, alias):
    """One row per series and hour from `start` to `stop`: the hour's start and each field's count of points."""
    counts = ", ".join(f"COUNT({quote(name)}) AS {quote(alias + name)}" for name in fields)
    return (f"SELECT {select_tags(tags)}{HOUR} AS {quote(alias + 'hour')}, {counts} FROM {quote(MEASUREMENT)} "
            f"WHERE time >= {timestamp(start)} AND time < {timestamp(stop)} GROUP BY {group_tags(tags)}{HOUR}")


def summary_sql(tags, fields, start, stop, alias):
    """One row per series and hour from `start` to `stop`: `<field>_count`, `_mean`, `_min` and `_max` per field."""
    parts = []
    for name in fields:
        column = quote(name)
        parts += [f"{function}({column}) AS {quote(alias + name + '_' + stat)}"
                  for function, stat in (("COUNT", "count"), ("AVG", "mean"), ("MIN", "min"), ("MAX", "max"))]
    return (f"SELECT {select_tags(tags)}{HOUR} AS {quote(alias + 'hour')}, {', '.join(parts)} FROM "
            f"{quote(MEASUREMENT)} WHERE time >= {timestamp(start)} AND time < {timestamp(stop)} "
            f"GROUP BY {group_tags(tags)}{HOUR}")


def summary_line(row, key, fields, stored, alias):
    """The long-term point of one summary row, or None when it would summarize fewer points than are stored."""
    values = {}
    for name in fields:
        count = row[alias + name + "_count"]
        if not count or count < stored.get(name, 0):
            continue
        prefix = FIELDS[name]
        for stat in STATS:
            values[prefix + stat] = row[alias + name + "_" + stat]
    if not values:
        return None
    return Line(key, values, row[alias + "hour"])


class Line:
    """One point in line protocol, for write_to_db, which takes any object with a build() returning the line
    (system_py.rs PyPluginCallApi::write_to_db: getattr("build")). Not the engine's LineBuilder: it refuses a tag key
    with a space, comma or equals sign (line_builder/line_builder.py _validate_key), which line protocol carries
    escaped, which the collector writes so and templog accepts. Escaped here as InfluxDB 3's line protocol reads it
    (core/influxdb_line_protocol: a backslash before a comma, equals sign, space or backslash)."""

    def __init__(self, tags, fields, time_ns):
        self.tags, self.fields, self.time_ns = tags, fields, time_ns

    def build(self):
        tags = "".join(f",{escape(key)}={escape(value)}" for key, value in self.tags)
        fields = ",".join(f"{escape(key)}={number(value)}" for key, value in self.fields.items())
        return f"{MEASUREMENT}{tags} {fields} {self.time_ns}"  # a measurement with nothing to escape


def escape(text):
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def number(value):
    """A count as an integer (`12i`), a float as LineBuilder writes one (whole-valued as `N.0`)."""
    if isinstance(value, int):
        return f"{value}i"
    return f"{int(value)}.0" if value % 1 == 0 else str(value)


def series_key(row, tags):
    return tuple((tag, row[tag]) for tag in tags if row[tag] is not None)


def select_tags(tags):
    return "".join(f"{tag_column(tag)}, " for tag in tags)


def group_tags(tags):
    return select_tags(tags)


def tag_column(name):
    """A tag's column, named with its table: DataFusion 51, which InfluxDB 3.10.1 runs, takes an identifier that starts
    with `@` for a variable, quoted or not, unless it follows a qualifier ("variable [\"@x\"] has no type
    information"; apache/datafusion#19339 checks the quotes, after 51); the answer's column is the tag's name still."""
    return f"{quote(MEASUREMENT)}.{quote(name)}"


def quote(name):
    """An SQL identifier: double quotes, each doubled (DataFusion's parser reads no backslash escapes)."""
    return '"' + name.replace('"', '""') + '"'


def string(text):
    return "'" + text.replace("'", "''") + "'"


def timestamp(ns):
    """A time literal for `time` comparisons: RFC 3339 UTC, whole seconds (the plugin's times are whole hours)."""
    return string(iso(ns))


def iso(ns):
    return datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

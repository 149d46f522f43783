// templog: the hourly mean, min and max of every temperature series (and of its humidity and dew point, where the
// sensor measures humidity), from the raw bucket into the long-term one, for every hour whose raw points changed since
// it was last downsampled, however late they arrived.
//
// Installed as an InfluxDB task by influxdb/init/10-templog.sh on InfluxDB's first start. That script sets the two
// bucket names below to the ones docker-compose.yml gives (DOCKER_INFLUXDB_INIT_BUCKET, TEMPLOG_LONGTERM_BUCKET),
// so keep each on its own line in this form.
//
// In the long-term bucket: measurement `temperature`, fields `mean`, `min` and `max` (°C) and `count` (how many raw
// points they summarize), the same tags as the raw points (`sensor`, `host`, ...), one point per series and hour,
// stamped with the hour's start; for the raw fields `humidity` (%RH) and `dewpoint` (°C) the same four with the
// field's name before them (`humidity_mean`, ..., `dewpoint_count`), on the same point.
//
// Each raw field is downsampled on its own (downsample, called once per field), with its own counts: a sensor's
// humidity may be refused while its temperature is kept, and a dew point needs a humidity above 0 %RH, so their counts
// can differ from the temperature's. The dew point is downsampled from its own raw points because no hourly figure
// of temperature and humidity gives its min and max (the Magnus formula is not linear). A field no sensor writes
// costs a few empty reads in storage (no first point, then nothing in the last hour).
//
// Why counts, not "the last day": the collector's outbox delivers an outage's backlog when InfluxDB is back, into hours
// of any age within the raw retention. So each run counts the raw points of every series and hour still in the raw
// bucket, compares them with the counts stored beside the means, and rewrites every hour from the earliest one whose
// count differs (no count stored yet, or more points than were summarized). A late write can only add points, and
// writing a point again with the same series and time overwrites it, so equal counts mean an hour is complete.
// A failed or skipped run (InfluxDB down for days) needs nothing special: the next run finds the same differences.
// tasks.lastSuccess() would not do: it knows when, not what arrived late, and InfluxDB 2.7.12 only injects it with the
// feature flag injectLatestSuccessTime, default false (influxdb@v2.7.12:flags.yml, task/backend/executor/executor.go
// NewASTCompiler), so it returns orTime. Hours older than the raw retention are gone from the raw bucket and their
// long-term points are never touched again (retention drops whole shard groups, whole hours or days:
// influxdb@v2.7.12:v1/services/meta/data.go shardGroupDuration and the truncated start at CreateShardGroup).
//
// What a run reads, for each field (bounded by the raw retention, cheap on a Raspberry Pi):
// 1. the first raw point of each series: first() right after range/filter is done by the storage engine
//    (PushDownBareAggregateRule, influxdb@v2.7.12:query/stdlib/influxdata/influxdb/rules.go);
// 2. one count per series and hour of the raw bucket and the stored counts since that first point: a single chain
//    range |> filter |> aggregateWindow(count or sum, timeSrc: "_start", createEmpty: false) is pushed down to
//    storage as ReadWindowAggregateByTime (PushDownWindowAggregateRule + PushDownWindowAggregateByTimeRule, or
//    PushDownAggregateWindowRule; rules_test.go "AggregateWindowCount" with "_start"), so Flux sees one row per series
//    and hour (30 days: 720 rows per series), not the raw points;
// 3. the raw points from the earliest changed hour on, into Flux (reduce is not pushed down): normally the hour just
//    ended, after an outage the outage, once after an upgrade from a task without counts (or without that field:
//    humidity and dew point after an upgrade from a temperature-only task) the whole raw bucket.
import "date"

option task = {name: "templog-downsample", every: 1h, offset: 5m}

rawBucket = "temperature"
longtermBucket = "temperature_longterm"

// Whole hours only: the current one is still filling. In a task now() is the run's scheduled time
// (influxdb@v2.7.12:task/backend/executor/executor.go: Now: p.run.ScheduledFor), and runs missed while InfluxDB was
// down are run one by one afterwards (task/backend/scheduler/treescheduler.go); each finds what the last one left.
stop = date.truncate(t: now(), unit: 1h)
lastHour = date.sub(d: 1h, from: stop)

rawPoints = (field, start) =>
    from(bucket: rawBucket)
        |> range(start: start, stop: stop)
        |> filter(fn: (r) => r._measurement == "temperature" and r._field == field)

storedCounts = (countField, start) =>
    from(bucket: longtermBucket)
        |> range(start: start, stop: stop)
        |> filter(fn: (r) => r._measurement == "temperature" and r._field == countField)

// The field names above are the functions' arguments, but filter() gets them as literals: a function's free
// identifiers are replaced by their values from its scope before planning, "to aid the planner in pushing down as
// many predicates to storage as possible" (flux@v0.196.1:interpreter/interpreter.go ResolveIdsInFunction), so the
// filters are pushed down as they were with the literal written in (influxdb@v2.7.12:query/stdlib/influxdata/influxdb/
// rules.go isPushableBinaryPredicate: `r.<column> <op> <literal>`).

// One row per series and hour, `_time` the hour's start, `_field` naming the column pivot() makes of it.
perHour = (tables=<-, fn, column) =>
    tables
        |> aggregateWindow(every: 1h, fn: fn, timeSrc: "_start", createEmpty: false)
        |> set(key: "_field", value: column)

// The earliest `_time` of a stream, as an array: empty when the stream is (findColumn returns [] when no table is
// found, flux@v0.196.1:stdlib/universe/table_fns.go findColumnCall; it runs its stream at once, as its own query,
// built from that stream alone: tableFind's TableObjectCompiler, not the other fields' writes).
earliest = (tables=<-) =>
    tables
        |> keep(columns: ["_time"])
        |> group()
        |> sort(columns: ["_time"])
        |> limit(n: 1)
        |> findColumn(fn: (key) => true, column: "_time")

firstOr = (arr, default) => if length(arr: arr) > 0 then arr[0] else default

// One raw field into the long-term bucket: `countField` is the long-term field holding its count, the one `fieldFn`
// writes as the count (tests/test_downsample_task.py checks the pairs).
downsample = (field, countField, fieldFn) => {
    // Nothing in the raw bucket: the last hour, which then holds nothing either.
    firstRaw =
        firstOr(arr: rawPoints(field: field, start: 1970-01-01T00:00:00Z) |> first() |> earliest(), default: lastHour)
    rawStart = date.truncate(t: firstRaw, unit: 1h)

    // Both sides go through the same perHour chain (count of the raw points, sum of the one stored count), so their
    // tables have the same columns in the same order: pivot() lays out a series' row from the first table it sees and
    // copies later tables' columns by position (flux@v0.196.1:stdlib/universe/pivot.go Process). pivot() merges the
    // two tables of a series (same group key once `_field` goes) into one row per hour; a side without the hour leaves
    // its column null, and a missing column reads as null (flux@v0.196.1:compiler/compiler.go substituteTypes), hence
    // `exists`. Not join.left: it fails on a side without any table (flux@v0.196.1:stdlib/join/join_fn.go checkCols,
    // "cannot join on an empty table"), which the stored side is until the first counts are written.
    changed =
        union(
            tables: [
                rawPoints(field: field, start: rawStart) |> perHour(fn: count, column: "raw"),
                storedCounts(countField: countField, start: rawStart) |> perHour(fn: sum, column: "stored"),
            ],
        )
            |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
            |> filter(fn: (r) => exists r.raw and (not exists r.stored or r.raw != r.stored))

    // Nothing changed: the last hour is summarized again, to the same values.
    rewriteFrom = firstOr(arr: changed |> earliest(), default: lastHour)

    // count, mean, min and max of each hour from one pass over the same rows (reduce), so a point written while the
    // task runs is in all four or in none: the count stored never claims a point the mean lacks. reduce keeps the
    // table's group key (the series' tags, the window's _start) beside the record's fields (flux@v0.196.1:
    // stdlib/universe/universe.flux reduce). to() writes one point per row holding all four fields, so they are
    // written together, tagged with the row's string columns except _measurement, _field and those fieldFn reads
    // (flux@v0.196.1:stdlib/influxdata/influxdb/to.go Process, writeTable).
    return
        rawPoints(field: field, start: rewriteFrom)
            |> window(every: 1h, createEmpty: false)
            |> reduce(
                identity: {count: 0, sum: 0.0, min: 0.0, max: 0.0},
                fn: (r, accumulator) =>
                    ({
                        count: accumulator.count + 1,
                        sum: accumulator.sum + r._value,
                        min: if accumulator.count == 0 or r._value < accumulator.min then r._value else accumulator.min,
                        max: if accumulator.count == 0 or r._value > accumulator.max then r._value else accumulator.max,
                    }),
            )
            |> duplicate(column: "_start", as: "_time")
            |> map(fn: (r) => ({r with mean: r.sum / float(v: r.count)}))
            |> to(bucket: longtermBucket, fieldFn: fieldFn)
}

// Each call's to() is one result of the run: a terminal node with a side effect gets its own result, named by the
// node (flux@v0.196.1:execute/executor.go getResultName), and the task drains every result
// (influxdb@v2.7.12:task/backend/executor/executor.go executeQuery: `for it.More()`).
downsample(
    field: "celsius",
    countField: "count",
    fieldFn: (r) => ({mean: r.mean, min: r.min, max: r.max, count: r.count}),
)
downsample(
    field: "humidity",
    countField: "humidity_count",
    fieldFn: (r) => ({humidity_mean: r.mean, humidity_min: r.min, humidity_max: r.max, humidity_count: r.count}),
)
downsample(
    field: "dewpoint",
    countField: "dewpoint_count",
    fieldFn: (r) => ({dewpoint_mean: r.mean, dewpoint_min: r.min, dewpoint_max: r.max, dewpoint_count: r.count}),
)

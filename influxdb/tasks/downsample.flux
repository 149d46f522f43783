// templog: the hourly mean, min and max of every temperature series, from the raw bucket into the long-term one.
//
// Installed as an InfluxDB task by influxdb/init/10-templog.sh on InfluxDB's first start. That script sets the two
// bucket names below to the ones docker-compose.yml gives (DOCKER_INFLUXDB_INIT_BUCKET, TEMPLOG_LONGTERM_BUCKET),
// so keep each on its own line in this form.
//
// In the long-term bucket: measurement `temperature`, fields `mean`, `min` and `max` (°C), the same tags as the
// raw points (`sensor`, `host`, ...), one point per series and hour, stamped with the hour's start.
import "date"

option task = {name: "templog-downsample", every: 1h, offset: 5m}

rawBucket = "temperature"
longtermBucket = "temperature_longterm"

// Each run rewrites the last day of whole hours, so points the collector delivers late (from its outbox, after an
// outage) are counted too. A rewritten hour has the same series and timestamp, so InfluxDB keeps one point.
windowStop = date.truncate(t: now(), unit: 1h)
windowStart = date.sub(d: 1d, from: windowStop)

readings =
    from(bucket: rawBucket)
        |> range(start: windowStart, stop: windowStop)
        |> filter(fn: (r) => r._measurement == "temperature" and r._field == "celsius")

hourly = (tables=<-, fn, field) =>
    tables
        |> aggregateWindow(every: 1h, fn: fn, timeSrc: "_start", createEmpty: false)
        |> set(key: "_field", value: field)

union(
    tables: [
        readings |> hourly(fn: mean, field: "mean"),
        readings |> hourly(fn: min, field: "min"),
        readings |> hourly(fn: max, field: "max"),
    ],
)
    |> to(bucket: longtermBucket)

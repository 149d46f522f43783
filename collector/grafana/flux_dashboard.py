"""The "Temperatures" dashboard in Flux (InfluxDB 2.x)."""

from __future__ import annotations

from collector.config_types import Config
from collector.durations import format_duration
from collector.grafana.common import (
    DASHBOARD_UID,
    DATASOURCE_TYPE,
    FLUX_DATASOURCE_UID,
    LONGTERM_BUCKET,
    ON_HOST,
    PANEL_AGE,
    PANEL_CURRENT,
    PANEL_HEALTH_AGE,
    PANEL_LONG_RANGE,
    PANEL_SERIES,
    SILENT_INTERVALS,
    bucket_name,
    longterm_field,
    measures_humidity,
    retention_s,
)
from collector.grafana.humidity_panels import HUMIDITY_ROWS, HumidityTargets, LongRange, humidity_panels
from collector.grafana.panels import (
    CURRENT_DESCRIPTION,
    MIN_MAX_DASHED,
    DashboardIdentity,
    age_thresholds,
    config_overrides,
    dashboard,
    health_panels,
    humidity_overrides,
    problem_counters,
    sensor_variable,
    stat,
    timeseries,
)
from collector.lineprotocol import DEWPOINT, FIELD, HEALTH_MEASUREMENT, HUMIDITY, MEASUREMENT
from collector.query import flux

# Flux: one series per sensor and statistic, aggregated to Grafana's window. The input is grouped by sensor first
# (flux.BY_SENSOR).
SUMMARIZE = (
    "summarize = (tables=<-, fn, stat) => tables\n"
    f'  |> {flux.window("v.windowPeriod", "fn")}\n'
    '  |> set(key: "stat", value: stat)\n'
    '  |> keep(columns: ["_time", "_value", "sensor", "stat"])\n'
    '  |> group(columns: ["sensor", "stat"])\n')

SENSOR_VARIABLE_FILTER = flux.sensor_in("${sensor:json}")
LONG_RANGE_DESCRIPTION = "The downsampled bucket, filled every hour by an InfluxDB task; the last year."


def _flux_one_stat_per_sensor_and_host() -> str:
    """From the latest row per (sensor, host), grouped by sensor: one field per sensor, named by it, or "<sensor> on
    <host>" where a sensor name has several hosts (so a dead collector's sensor is not hidden by a live one's)."""
    return ("\n  |> group(columns: [\"sensor\"])\n"
            "hosts = latest |> count()\n"
            "join(tables: {latest: latest, hosts: hosts}, on: [\"sensor\"])\n"
            f"  |> map(fn: (r) => ({{_field: r._field, _value: r._value_latest, name: if r._value_hosts > 1 and "
            f'exists r.host then r.sensor + "{ON_HOST}" + r.host else r.sensor}}))\n'
            "  |> group()\n"
            '  |> pivot(rowKey: ["_field"], columnKey: ["name"], valueColumn: "_value")')


def render_dashboard(config: Config, longterm_bucket: str = LONGTERM_BUCKET) -> dict:
    """The "Temperatures" dashboard (Flux, datasource templog-flux)."""
    identity = DashboardIdentity(DASHBOARD_UID, "Temperatures", {"type": DATASOURCE_TYPE, "uid": FLUX_DATASOURCE_UID})
    bucket = bucket_name(config)
    source = flux.string(bucket)
    retention = f"-{format_duration(retention_s(config))}"
    current_overrides, age_overrides = config_overrides(config)

    def target(query: str, ref: str = "A") -> dict:
        return {"refId": ref, "datasource": identity.datasource, "query": query}

    def one_row_per(column: str) -> str:  # one field per sensor/host, named by it, for stat overrides by name
        return (f'\n  |> group()\n  |> keep(columns: ["_field", "{column}", "_value"])'
                f'\n  |> pivot(rowKey: ["_field"], columnKey: ["{column}"], valueColumn: "_value")')

    def current(field: str) -> str:
        return ("latest = " + flux.select(source, "v.timeRangeStart", "v.timeRangeStop", MEASUREMENT, field)
                + flux.latest("sensor", "host", then=SENSOR_VARIABLE_FILTER) + _flux_one_stat_per_sensor_and_host())

    age = ("latest = " + flux.readings(source, retention, None)
           + flux.latest("sensor", "host", then=SENSOR_VARIABLE_FILTER)
           + f"\n  |> map(fn: (r) => ({{r with _value: {flux.AGE_OF_LAST}}}))" + _flux_one_stat_per_sensor_and_host())

    def windowed(field: str) -> str:
        return ("data = " + flux.select(source, "v.timeRangeStart", "v.timeRangeStop", MEASUREMENT, field)
                + flux.BY_SENSOR + SENSOR_VARIABLE_FILTER + "\n"
                + SUMMARIZE +
                "union(tables: [\n"
                '  data |> summarize(fn: mean, stat: "mean"),\n'
                '  data |> summarize(fn: min, stat: "min"),\n'
                '  data |> summarize(fn: max, stat: "max"),\n'
                "])")

    def long_range(field: str) -> str:
        mean, low, high = (longterm_field(field, stat) for stat in ("mean", "min", "max"))
        # celsius's query reads as it always did; the others select their three fields in the pushable filter
        fields = "" if field == FIELD else f' and (r._field == "{mean}" or r._field == "{low}" or r._field == "{high}")'
        return (f"data = from(bucket: {flux.string(longterm_bucket)})\n"
                "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
                f'  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}"{fields})'
                + '\n  |> group(columns: ["sensor", "_field"])' + SENSOR_VARIABLE_FILTER + "\n"
                + SUMMARIZE +
                "union(tables: [\n"
                f'  data |> filter(fn: (r) => r._field == "{mean}") |> summarize(fn: mean, stat: "mean"),\n'
                f'  data |> filter(fn: (r) => r._field == "{low}") |> summarize(fn: min, stat: "min"),\n'
                f'  data |> filter(fn: (r) => r._field == "{high}") |> summarize(fn: max, stat: "max"),\n'
                "])")

    health_age = (flux.health(source, retention, None, "uptime_s") + flux.latest("host")
                  + f"\n  |> map(fn: (r) => ({{r with _value: {flux.AGE_OF_LAST}}}))" + one_row_per("host"))
    outbox_now = (flux.health(source, "v.timeRangeStart", "v.timeRangeStop", "outbox_depth")
                  + flux.latest("host") + one_row_per("host"))
    outbox = (flux.health(source, "v.timeRangeStart", "v.timeRangeStop", "outbox_depth")
              + f'\n  |> {flux.window("v.windowPeriod", "max")}'
              + '\n  |> keep(columns: ["_time", "_value", "host"])')
    counters = " or ".join(f'r._field == "{name}"' for name in problem_counters(config))
    problems = (f"from(bucket: {source})\n"
                "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
                f'  |> filter(fn: (r) => r._measurement == "{HEALTH_MEASUREMENT}" and not exists r.sensor)\n'
                f"  |> filter(fn: (r) => {counters})\n"
                "  |> difference(nonNegative: true)\n"
                f'  |> {flux.window("v.windowPeriod", "sum")}\n'
                '  |> rename(columns: {_field: "counter"})\n'
                '  |> keep(columns: ["_time", "_value", "counter", "host"])')
    latency = (flux.select(source, "v.timeRangeStart", "v.timeRangeStop", HEALTH_MEASUREMENT, "read_latency_ms_mean")
               + SENSOR_VARIABLE_FILTER + "\n"
               f'  |> {flux.window("v.windowPeriod", "mean")}\n'
               '  |> keep(columns: ["_time", "_value", "sensor"])')
    variable_query = ('import "influxdata/influxdb/schema"\n\n'
                      f"schema.tagValues(bucket: {source}, tag: \"sensor\", "
                      f'predicate: (r) => r._measurement == "{MEASUREMENT}", start: {retention})')
    series_name = "${__field.labels.sensor} ${__field.labels.stat}"
    naming = f'"<sensor>{ON_HOST}<host>" where a sensor name has several hosts'
    humidity: list[dict] = []
    if measures_humidity(config):
        humidity = humidity_panels(
            25, identity.datasource,
            HumidityTargets(target(current(HUMIDITY)), target(current(DEWPOINT)), target(windowed(HUMIDITY)),
                            target(windowed(DEWPOINT)), target(long_range(HUMIDITY)), target(long_range(DEWPOINT))),
            naming=naming, current_overrides=humidity_overrides(config), series_name=series_name,
            long_range=LongRange(longterm_bucket, "1y", LONG_RANGE_DESCRIPTION))
    health_y = 25 + (HUMIDITY_ROWS if humidity else 0)
    panels = [
        stat(PANEL_CURRENT, "Current temperature", (0, 0, 12, 6), identity.datasource, [target(current(FIELD))],
             unit="celsius", decimals=1, overrides=current_overrides,
             description=CURRENT_DESCRIPTION.format(naming=naming)),
        stat(PANEL_AGE, "Age of the last reading", (12, 0, 12, 6), identity.datasource, [target(age)],
             unit="s", decimals=0, overrides=age_overrides,
             description=f"Time since each sensor's last reading, per host: orange after {SILENT_INTERVALS} "
                         "missed intervals, red when its silent alert fires."),
        timeseries(PANEL_SERIES, "Temperature: mean, min and max per window", (0, 6, 24, 10), identity.datasource,
                   [target(windowed(FIELD))], unit="celsius", display_name=series_name, overrides=MIN_MAX_DASHED,
                   description=f"Raw bucket {bucket}, aggregated per window."),
        timeseries(PANEL_LONG_RANGE, f"Long range: hourly mean, min and max ({longterm_bucket})", (0, 16, 24, 9),
                   identity.datasource, [target(long_range(FIELD))], unit="celsius", display_name=series_name,
                   overrides=MIN_MAX_DASHED, interval="1h", time_from="1y",
                   description=LONG_RANGE_DESCRIPTION),
        *humidity,
        *health_panels(health_y, identity.datasource,
                       stat(PANEL_HEALTH_AGE, "Last health point", (0, health_y + 1, 6, 5), identity.datasource,
                            [target(health_age)], unit="s", decimals=0,
                            thresholds=age_thresholds(config.collector.health_interval),
                            description="Time since each collector's last health point."),
                       target(outbox_now), target(outbox), target(problems), target(latency), labelled=True),
    ]
    return dashboard(identity, "templog: readings, thresholds from config.yaml, and the collector's health.",
                     sensor_variable(identity, variable_query), panels)



"""The InfluxQL twin of "Temperatures", for InfluxDB 1.x."""

from __future__ import annotations

from collector.config_types import Config
from collector.durations import format_duration
from collector.grafana.common import (
    DATASOURCE_TYPE,
    INFLUXQL_DASHBOARD_UID,
    INFLUXQL_DATASOURCE_UID,
    ON_HOST,
    PANEL_AGE,
    PANEL_CURRENT,
    PANEL_HEALTH_AGE,
    PANEL_LONG_RANGE,
    PANEL_SERIES,
    bucket_name,
    measures_humidity,
    retention_s,
)
from collector.grafana.humidity_panels import HUMIDITY_ROWS, HumidityTargets, LongRange, humidity_panels
from collector.grafana.panels import (
    CURRENT_DESCRIPTION,
    MIN_MAX_DASHED,
    DashboardIdentity,
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
from collector.query import influxql


def render_influxql_dashboard(config: Config) -> dict:
    """The InfluxQL twin of "Temperatures" for InfluxDB 1.x (datasource templog-influxql). InfluxDB 1.x has no
    downsampled bucket, so the long-range panel aggregates the raw data hourly over the retention."""
    identity = DashboardIdentity(INFLUXQL_DASHBOARD_UID, "Temperatures (InfluxQL)",
                                 {"type": DATASOURCE_TYPE, "uid": INFLUXQL_DATASOURCE_UID})
    retention = format_duration(retention_s(config))
    current_overrides, _ = config_overrides(config)
    sensors = '"sensor" =~ /^$sensor$/'
    collector = "\"sensor\" = ''"  # the collector's own health point has no sensor tag

    def target(query: str, alias: str, ref: str = "A") -> dict:
        return {"refId": ref, "datasource": identity.datasource, "query": query, "rawQuery": True,
                "resultFormat": "time_series", "alias": alias}

    # per sensor and host, so a dead collector's sensor is not hidden by a live one of the same name
    def current(field: str) -> str:
        return (influxql.readings(f"last({influxql.quote_ident(field)})", f"$timeFilter AND {sensors}")
                + ' GROUP BY "sensor", "host"')

    last = f'last("{FIELD}")'
    last_seen = influxql.readings(last, f"time > now() - {retention} AND {sensors}") + ' GROUP BY "sensor", "host"'
    sensor_on_host = f"$tag_sensor{ON_HOST}$tag_host"
    def windowed(field: str) -> str:
        return influxql.windows(f"$timeFilter AND {sensors}", "$__interval", field)

    health_seen = (f'SELECT last("uptime_s") FROM "{HEALTH_MEASUREMENT}" WHERE time > now() - {retention} '
                   f'AND {collector} GROUP BY "host"')
    outbox_now = (f'SELECT last("outbox_depth") FROM "{HEALTH_MEASUREMENT}" WHERE $timeFilter AND {collector} '
                  'GROUP BY "host"')
    outbox = (f'SELECT max("outbox_depth") FROM "{HEALTH_MEASUREMENT}" WHERE $timeFilter AND {collector} '
              'GROUP BY time($__interval), "host" fill(none)')
    problems = ("SELECT " + ", ".join(f'non_negative_difference(last("{name}")) AS "{name}"'
                                      for name in problem_counters(config))
                + f' FROM "{HEALTH_MEASUREMENT}" WHERE $timeFilter AND {collector} '
                  'GROUP BY time($__interval), "host" fill(none)')
    latency = (f'SELECT mean("read_latency_ms_mean") FROM "{HEALTH_MEASUREMENT}" WHERE $timeFilter AND {sensors} '
               'GROUP BY time($__interval), "sensor" fill(none)')
    seen_description = "When each {what} was last seen (InfluxQL cannot compute the age for colouring)."
    sensor_seen = (f'When each sensor was last seen, per host ("<sensor>{ON_HOST}<host>"; InfluxQL cannot compute the '
                   "age for colouring).")
    stats_name = "$tag_sensor $col"
    long_range_description = "Hourly aggregates of the raw readings, over the database's retention."
    humidity: list[dict] = []
    if measures_humidity(config):
        humidity = humidity_panels(
            25, identity.datasource,
            HumidityTargets(target(current(HUMIDITY), sensor_on_host), target(current(DEWPOINT), sensor_on_host),
                            target(windowed(HUMIDITY), stats_name), target(windowed(DEWPOINT), stats_name),
                            target(windowed(HUMIDITY), stats_name), target(windowed(DEWPOINT), stats_name)),
            naming=f'"<sensor>{ON_HOST}<host>"', current_overrides=humidity_overrides(config), series_name=None,
            long_range=LongRange("raw data", retention, long_range_description))
    health_y = 25 + (HUMIDITY_ROWS if humidity else 0)
    panels = [
        stat(PANEL_CURRENT, "Current temperature", (0, 0, 12, 6), identity.datasource,
             [target(current(FIELD), sensor_on_host)], unit="celsius", decimals=1, overrides=current_overrides,
             description=CURRENT_DESCRIPTION.format(naming=f'"<sensor>{ON_HOST}<host>"')),
        stat(PANEL_AGE, "Last reading", (12, 0, 12, 6), identity.datasource, [target(last_seen, sensor_on_host)],
             unit="dateTimeFromNow", fields="/^Time$/", color_mode="none", display_name="${__series.name}",
             description=sensor_seen),
        timeseries(PANEL_SERIES, "Temperature: mean, min and max per window", (0, 6, 24, 10), identity.datasource,
                   [target(windowed(FIELD), stats_name)], unit="celsius", overrides=MIN_MAX_DASHED,
                   description=f"Database {bucket_name(config)}, aggregated per window."),
        timeseries(PANEL_LONG_RANGE, "Long range: hourly mean, min and max (raw data)", (0, 16, 24, 9),
                   identity.datasource, [target(windowed(FIELD), stats_name)], unit="celsius",
                   overrides=MIN_MAX_DASHED, interval="1h", time_from=retention, description=long_range_description),
        *humidity,
        *health_panels(health_y, identity.datasource,
                       stat(PANEL_HEALTH_AGE, "Last health point", (0, health_y + 1, 6, 5), identity.datasource,
                            [target(health_seen, "$tag_host")], unit="dateTimeFromNow", fields="/^Time$/",
                            color_mode="none", display_name="${__series.name}",
                            description=seen_description.format(what="collector")),
                       target(outbox_now, "$tag_host"), target(outbox, "$tag_host"),
                       target(problems, "$tag_host $col"), target(latency, "$tag_sensor"), labelled=False),
    ]
    variable = sensor_variable(identity, f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "sensor"')
    return dashboard(identity, "templog for InfluxDB 1.x (InfluxQL): readings, thresholds from config.yaml, and "
                               "the collector's health.", variable, panels)



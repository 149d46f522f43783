"""The InfluxQL twin of "Temperatures", for InfluxDB 1.x and InfluxDB 3."""

from __future__ import annotations

from collector.config_types import Config
from collector.durations import format_duration
from collector.grafana.common import (
    DATASOURCE_TYPE,
    INFLUXQL_DASHBOARD_UID,
    INFLUXQL_DATASOURCE_UID,
    INFLUXQL_LONGTERM_DATASOURCE_UID,
    LONGTERM_BUCKET,
    ON_HOST,
    PANEL_AGE,
    PANEL_CURRENT,
    PANEL_HEALTH_AGE,
    PANEL_LONG_RANGE,
    PANEL_SERIES,
    api,
    bucket_name,
    longterm_field,
    measures_humidity,
    raw_lookback_s,
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

# InfluxDB 3 plans InfluxQL itself (influxdata/influxdb@v3.10.1 core/iox_query_influxql, core/influxdb_influxql_parser)
# and everything this dashboard uses is there: last(), mean/min/max and non_negative_difference() (plan/planner.rs,
# function planning: "last" => selector_last, "non_negative_difference"), GROUP BY time(...) fill(none)
# (planner.rs: FillClause::None, no gap filling), SHOW TAG VALUES ... WITH KEY (planner.rs:
# Statement::ShowTagValues), `"sensor" = ''` for points without the tag (plan/planner_rewrite_expression.rs: a tag
# compared with '' is `tag IS NULL OR tag = ''`), and regexes with Grafana's escapes (string.rs regex: `\/` is `/`;
# the others escape regex metacharacters, which Rust's regex accepts).
LONGTERM_DESCRIPTION = ("The downsampled database (one point per sensor and hour: mean, min, max), filled every hour; "
                        "the last year.")


def render_influxql_dashboard(config: Config, longterm_database: str = LONGTERM_BUCKET) -> dict:
    """The InfluxQL twin of "Temperatures" (datasource templog-influxql). InfluxDB 1.x has no downsampled database,
    so there the long-range panels aggregate the raw data hourly over the retention; on InfluxDB 3 (api v3) they read
    the downsampled database (datasource templog-influxql-longterm), as a query of InfluxDB 3 reads a bounded number
    of files per table, about three days of raw data by default."""
    identity = DashboardIdentity(INFLUXQL_DASHBOARD_UID, "Temperatures (InfluxQL)",
                                 {"type": DATASOURCE_TYPE, "uid": INFLUXQL_DATASOURCE_UID})
    downsampled = api(config) == "v3"
    longterm_source = {"type": DATASOURCE_TYPE, "uid": INFLUXQL_LONGTERM_DATASOURCE_UID}
    retention = format_duration(retention_s(config))
    seen_back = format_duration(raw_lookback_s(config))  # api v3: a bounded look-back (common.V3_RAW_LOOKBACK_S)
    # On api v3 the last-seen panels say what their bound means
    bounded = (f" Within the last {seen_back} only (InfluxDB 3 refuses a query over more than --query-file-limit files "
               f"per table, by default 72 h of raw data): one silent for longer shows no value."
               if raw_lookback_s(config) < retention_s(config) else "")
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
    last_seen = influxql.readings(last, f"time > now() - {seen_back} AND {sensors}") + ' GROUP BY "sensor", "host"'
    sensor_on_host = f"$tag_sensor{ON_HOST}$tag_host"
    def windowed(field: str) -> str:
        return influxql.windows(f"$timeFilter AND {sensors}", "$__interval", field)

    def long_range(field: str) -> dict:
        if not downsampled:
            return target(windowed(field), stats_name)
        stats = ", ".join(f"{stat}({influxql.quote_ident(longterm_field(field, stat))}) AS {influxql.quote_ident(stat)}"
                          for stat in ("mean", "min", "max"))
        query = (influxql.readings(stats, f"$timeFilter AND {sensors}")
                 + ' GROUP BY time($__interval), "sensor" fill(none)')
        return {**target(query, stats_name), "datasource": longterm_source}

    health_seen = (f'SELECT last("uptime_s") FROM "{HEALTH_MEASUREMENT}" WHERE time > now() - {seen_back} '
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
    seen_description = "When each {what} was last seen (InfluxQL cannot compute the age for colouring)." + bounded
    sensor_seen = (f'When each sensor was last seen, per host ("<sensor>{ON_HOST}<host>"; InfluxQL cannot compute the '
                   "age for colouring)." + bounded)
    stats_name = "$tag_sensor $col"
    if downsampled:
        long_range_panels = LongRange(longterm_database, "1y", LONGTERM_DESCRIPTION, longterm_source)
    else:
        long_range_panels = LongRange("raw data", retention,
                                      "Hourly aggregates of the raw readings, over the database's retention.")
    humidity: list[dict] = []
    if measures_humidity(config):
        humidity = humidity_panels(
            25, identity.datasource,
            HumidityTargets(target(current(HUMIDITY), sensor_on_host), target(current(DEWPOINT), sensor_on_host),
                            target(windowed(HUMIDITY), stats_name), target(windowed(DEWPOINT), stats_name),
                            long_range(HUMIDITY), long_range(DEWPOINT)),
            naming=f'"<sensor>{ON_HOST}<host>"', current_overrides=humidity_overrides(config), series_name=None,
            long_range=long_range_panels)
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
        timeseries(PANEL_LONG_RANGE, f"Long range: hourly mean, min and max ({long_range_panels.source})",
                   (0, 16, 24, 9), long_range_panels.datasource or identity.datasource, [long_range(FIELD)],
                   unit="celsius", overrides=MIN_MAX_DASHED, interval="1h", time_from=long_range_panels.time_from,
                   description=long_range_panels.description),
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
    target_name = "InfluxDB 3" if downsampled else "InfluxDB 1.x"
    return dashboard(identity, f"templog for {target_name} (InfluxQL): readings, thresholds from config.yaml, and "
                               "the collector's health.", variable, panels)



"""What each query dialect gives the alert rules: the data source, its query node's model, and the query texts (from
collector.query, as `templog history`'s) of what each rule judges. rules.py writes each rule once, on top of these:
Flux for api v2, InfluxQL for api v1 (InfluxDB 1.x), SQL for api v3 (InfluxDB 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collector.config_types import Config, SensorConfig
from collector.grafana.common import (
    DASHBOARD_UID,
    DATASOURCE_TYPE,
    FLUX_DATASOURCE_UID,
    INFLUXQL_DASHBOARD_UID,
    INFLUXQL_DATASOURCE_UID,
    SQL_DATASOURCE_UID,
    api,
    bucket_name,
)
from collector.lineprotocol import FIELD, HEALTH_MEASUREMENT, MEASUREMENT
from collector.query import flux, influxql, sql

BY_SENSOR_AND_HOST = ("sensor", "host")
BY_HOST = ("host",)
SILENCE_FIELD = "uptime_s"  # a collector's health point always has it
OUTBOX_FIELD = "outbox_depth"


@dataclass(frozen=True)
class Silence:
    """How a dialect tells silence: a query whose value per group Grafana compares (`comparison`, `limit`), and whether
    that value is the age of the last point in seconds (the annotations then show it)."""

    query: str
    comparison: str
    limit: float
    is_age: bool


class RuleDialect(Protocol):
    datasource_uid: str
    dashboard_uid: str  # the dashboard rendered beside these rules, that the rules link to
    store: str  # what the rules read: "bucket" or "database"
    delete_points: str  # how a retired collector's points go, after "silence it in Grafana"

    def model(self, query: str) -> dict:
        """The query node's model but for its refId: the data source and the query in the keys it reads."""

    def latest(self, config: Config, sensor: SensorConfig, field: str) -> str:
        """The latest value of `field` by time per host of the sensor in the rule's time range."""

    def sensor_silent(self, config: Config, sensor: SensorConfig, after_s: float) -> Silence:
        """Per host of the sensor over the rule's time range: silent for `after_s` seconds or not."""

    def collector_silent(self, config: Config, after_s: float) -> Silence:
        """Per host over the rule's time range: no health point for `after_s` seconds or not."""

    def outbox_depth(self, config: Config) -> str:
        """The latest outbox depth per host in the rule's time range."""


def _model(datasource_uid: str, query: dict) -> dict:
    return {"datasource": {"type": DATASOURCE_TYPE, "uid": datasource_uid}, **query,
            "intervalMs": 1000, "maxDataPoints": 43200}


class Flux:
    datasource_uid = FLUX_DATASOURCE_UID
    dashboard_uid = DASHBOARD_UID
    store = "bucket"
    delete_points = " or delete its points (`influx delete`)"

    def model(self, query: str) -> dict:
        return _model(self.datasource_uid, {"query": query})

    @staticmethod
    def _latest_per_host(config: Config, sensor: SensorConfig, field: str = FIELD) -> str:
        """The latest reading (of `field`) by time of each host's series of the sensor."""
        return (flux.select(flux.string(bucket_name(config)), "v.timeRangeStart", "v.timeRangeStop", MEASUREMENT,
                            field, f" and r.sensor == {flux.string(sensor.name)}")
                + flux.latest("sensor", "host"))

    def latest(self, config: Config, sensor: SensorConfig, field: str) -> str:
        return (self._latest_per_host(config, sensor, field)
                + '\n  |> keep(columns: ["_time", "_value", "sensor", "host"])')

    def sensor_silent(self, config: Config, sensor: SensorConfig, after_s: float) -> Silence:
        query = (self._latest_per_host(config, sensor)
                 + f"\n  |> map(fn: (r) => ({{r with _value: {flux.AGE_OF_LAST}}}))"
                 + '\n  |> keep(columns: ["_time", "_value", "sensor", "host"])')
        return Silence(query, "gt", after_s, is_age=True)

    @staticmethod
    def _health(config: Config, field: str) -> str:
        return (flux.health(flux.string(bucket_name(config)), "v.timeRangeStart", "v.timeRangeStop", field)
                + flux.latest("host"))

    def collector_silent(self, config: Config, after_s: float) -> Silence:
        query = (self._health(config, SILENCE_FIELD)
                 + f"\n  |> map(fn: (r) => ({{r with _value: {flux.AGE_OF_LAST}}}))"
                 + '\n  |> keep(columns: ["_time", "_value", "host"])')
        return Silence(query, "gt", after_s, is_age=True)

    def outbox_depth(self, config: Config) -> str:
        return self._health(config, OUTBOX_FIELD) + '\n  |> keep(columns: ["_time", "_value", "host"])'


# The collector's own health point is the one without a sensor tag (per-sensor health points have one).
_INFLUXQL_COLLECTOR = "\"sensor\" = ''"
_SQL_COLLECTOR = '"sensor" IS NULL'


class InfluxQL:
    """InfluxDB 1.x: raw InfluxQL (`rawQuery`), answered as time series (grafana/grafana@0b596ec909ba, not the pinned
    v12.3.1: pkg/tsdb/influxdb/models/model_parser.go QueryParse reads `query`, `rawQuery`, `resultFormat`)."""

    datasource_uid = INFLUXQL_DATASOURCE_UID
    dashboard_uid = INFLUXQL_DASHBOARD_UID
    store = "database"
    delete_points = " or delete its points (InfluxQL `DELETE WHERE \"host\" = '...'`)"

    def model(self, query: str) -> dict:
        return _model(self.datasource_uid, {"query": query, "rawQuery": True, "resultFormat": "time_series"})

    def latest(self, config: Config, sensor: SensorConfig, field: str) -> str:
        return influxql.latest(MEASUREMENT, field, f'$timeFilter AND "sensor" = {influxql.string(sensor.name)}',
                               BY_SENSOR_AND_HOST)

    def sensor_silent(self, config: Config, sensor: SensorConfig, after_s: float) -> Silence:
        query = influxql.recent_count(MEASUREMENT, FIELD, f'"sensor" = {influxql.string(sensor.name)}',
                                      BY_SENSOR_AND_HOST, after_s)
        return Silence(query, "lt", 1, is_age=False)  # no reading in the last after_s

    def collector_silent(self, config: Config, after_s: float) -> Silence:
        query = influxql.recent_count(HEALTH_MEASUREMENT, SILENCE_FIELD, _INFLUXQL_COLLECTOR, BY_HOST, after_s)
        return Silence(query, "lt", 1, is_age=False)

    def outbox_depth(self, config: Config) -> str:
        return influxql.latest(HEALTH_MEASUREMENT, OUTBOX_FIELD, f"$timeFilter AND {_INFLUXQL_COLLECTOR}", BY_HOST)


class SQL:
    """InfluxDB 3: SQL in `rawSql`, answered as a table (grafana/grafana@04cf05e788e1, not the pinned v12.3.1:
    pkg/tsdb/influxdb/fsql/query_model.go queryRequest: `rawSql`, `format` "table" or else time series)."""

    datasource_uid = SQL_DATASOURCE_UID
    dashboard_uid = INFLUXQL_DASHBOARD_UID
    store = "database"
    # InfluxDB 3 Core deletes databases and tables, not points (influxdata/influxdb@v3.10.1:
    # influxdb3/src/commands/delete.rs SubCommand)
    delete_points = ""

    def model(self, query: str) -> dict:
        return _model(self.datasource_uid, {"rawSql": query, "format": "table"})

    def latest(self, config: Config, sensor: SensorConfig, field: str) -> str:
        return sql.latest(MEASUREMENT, field, f'"sensor" = {sql.grafana_string(sensor.name)}', BY_SENSOR_AND_HOST)

    def sensor_silent(self, config: Config, sensor: SensorConfig, after_s: float) -> Silence:
        query = sql.age(MEASUREMENT, FIELD, f'"sensor" = {sql.grafana_string(sensor.name)}', BY_SENSOR_AND_HOST)
        return Silence(query, "gt", after_s, is_age=True)

    def collector_silent(self, config: Config, after_s: float) -> Silence:
        return Silence(sql.age(HEALTH_MEASUREMENT, SILENCE_FIELD, _SQL_COLLECTOR, BY_HOST), "gt", after_s,
                       is_age=True)

    def outbox_depth(self, config: Config) -> str:
        return sql.latest(HEALTH_MEASUREMENT, OUTBOX_FIELD, _SQL_COLLECTOR, BY_HOST)


def rule_dialect(config: Config) -> RuleDialect:
    """The dialect of the config's InfluxDB API: Flux (v2, and no influxdb section), InfluxQL (v1), SQL (v3)."""
    dialects: dict[str, RuleDialect] = {"v1": InfluxQL(), "v3": SQL()}
    return dialects.get(api(config), Flux())

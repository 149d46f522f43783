"""The alert rules and dashboards in each query dialect, as `templog grafana` renders them for the config's
`influxdb.api`: Flux on v2 (test_grafana.py keeps its files byte for byte), InfluxQL rules and dashboard on v1, the
InfluxQL dashboard (its long range on the downsampled database) and SQL rules on v3.

Every InfluxQL text runs on a real influxd 1.x and every SQL text in Apache DataFusion (the query engine of
InfluxDB 3), each after Grafana's own replacements, and Grafana's alerting is played on the answers: one instance per
label set (the InfluxQL series' tags; the SQL table's string columns), the reduction, the threshold.
Grafana's sources read (none at the pinned v12.3.1, whose commit 3a1c80ca7ce6 the index does not hold):
- InfluxQL: grafana/grafana@0952bef509e3 pkg/tsdb/influxdb/models/query.go Build (`$timeFilter` → `time >= <from>ms
  and time <= <to>ms`, then `$interval`, `$__interval_ms`, `$__interval`); @01b93f6e67fd
  pkg/tsdb/influxdb/influxql/converter/converter.go handleTimeSeriesFormatWithTimeColumn (a series' tags are its
  value field's labels).
- SQL: @04cf05e788e1 pkg/tsdb/influxdb/fsql/query_model.go (`rawSql`, `format`; sqlutil.Interpolate with fsql's
  macros, @28c03f9a5dc7 pkg/tsdb/influxdb/fsql/macro.go, over the SDK's defaults, grafana/grafana-plugin-sdk-go@2d1ff1e5
  data/sqlutil/macros.go); @4e4d9221fa3f pkg/tsdb/influxdb/fsql/arrow.go newField (Arrow STRING, STRING_VIEW → string
  field; a dictionary, as InfluxDB 3's tags are, → JSON); @06ba30292ce3 pkg/expr/converter.go Convert (one frame
  without a time field, exactly one numeric field and the others strings: a number per row, the strings its
  labels).
- Alerting: @1f8fcc5f1f04 pkg/expr/threshold.go (gt, gte, lt); @06fb47daa694 pkg/expr/commands.go
  ReduceCommand.Execute (reduce "last" with mode dropNN: the last value that is a number; a Number, as the SQL
  table gives, is passed through).
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cli import templog
from collector import grafana
from collector.config import load_config
from collector.durations import parse_duration
from collector.grafana.common import retention_s
from collector.grafana.rule_dialects import rule_dialect
from collector.health import health_points
from collector.lineprotocol import HEALTH_MEASUREMENT, MEASUREMENT, Series, sensor_name_problem
from collector.query.sql import grafana_string
from collector.readings import Reading, reading_point
from collector.stats import Stats
from grafana_queries import Query, dashboard_queries, rule_queries
from history_check import HOSTILE_NAME
from stack_tools import require_module
from test_grafana import PANEL_SCHEMAS, ROOT, grafana_influxql, panels, schema_errors

S = 10**9
HOT, COLD = "desk", HOSTILE_NAME  # one sensor breaching its max, one its min
CONFIG = f"""
influxdb: {{url: "http://127.0.0.1:1", api: v1, org: home, bucket: temperature, retention: 2h}}
sensors:
  - {{name: {HOT}, type: simulated, min: 16, max: 28, humidity: 45, humidity_min: 30, humidity_max: 60}}
  - {{name: '{COLD.replace("'", "''")}', type: simulated, min: 16, max: 40}}
"""


def config_for(write_config, api: str):
    """The config on `api`."""
    return load_config(write_config(CONFIG.replace("api: v1", f"api: {api}")), environ={})


def rules_of(config) -> dict[str, dict]:
    return {rule["uid"]: rule for group in grafana.render_alert_rules(config)["groups"] for rule in group["rules"]}


# ---------------------------------------------------------------------------------------------------------------
# What each API renders


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_each_api_renders_its_dialect_and_the_rules_link_to_its_dashboard(write_config, tmp_path, api):
    config = config_for(write_config, api)
    files = grafana.rendered_files(config)
    dashboards = {"v1": [grafana.INFLUXQL_DASHBOARD_FILE], "v2": [grafana.DASHBOARD_FILE,
                                                                   grafana.INFLUXQL_DASHBOARD_FILE],
                  "v3": [grafana.INFLUXQL_DASHBOARD_FILE]}[api]
    assert sorted(files) == sorted([grafana.RULES_FILE, *dashboards])
    languages = {"v1": {"influxql"}, "v2": {"flux"}, "v3": {"sql"}}[api]
    rules = grafana.render_alert_rules(config)
    assert {q.language for q in rule_queries(rules)} == languages
    linked = grafana.INFLUXQL_DASHBOARD_UID if api != "v2" else grafana.DASHBOARD_UID
    dashboard = grafana.render_influxql_dashboard(config) if api != "v2" else grafana.render_dashboard(config)
    panel_ids = {p["id"] for p in panels(dashboard)}
    for rule in rules_of(config).values():
        assert rule["dashboardUid"] == linked and rule["panelId"] in panel_ids, rule["uid"]
    assert schema_errors("alerting-provisioning.schema.json", rules) == []
    assert schema_errors("dashboard.schema.json", dashboard) == []
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert schema_errors(PANEL_SCHEMAS[panel["type"]][0], panel["options"]) == [], panel["id"]
    # A directory rendered for another API keeps no dashboard of the old one (Grafana would load it).
    grafana.write_provisioning(config_for(write_config, "v2"), tmp_path)
    grafana.write_provisioning(config, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json")) == sorted(dashboards)


def test_the_documented_v1_command_renders_influxql_rules_and_deletes_a_sensors_gone(write_config, tmp_path):
    """grafana/influxdb1/templog-influxdb1.yaml and README: `templog grafana --output /tmp/grafana --previous
    /etc/grafana/provisioning` with an api v1 config, then the rules copied there; a sensor removed later."""
    provisioning, output = tmp_path / "etc-grafana-provisioning", tmp_path / "grafana"
    (provisioning / "alerting").mkdir(parents=True)
    for text in (CONFIG, CONFIG.replace(CONFIG.splitlines()[-1], "")):
        result = templog("grafana", "-c", str(write_config(text)), "--output", str(output),
                         "--previous", str(provisioning))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        rules = (output / grafana.RULES_FILE).read_text(encoding="utf-8")
        (provisioning / grafana.RULES_FILE).write_text(rules, encoding="utf-8")
    document = yaml.safe_load(rules)
    assert {q.language for q in rule_queries(document)} == {"influxql"}
    assert {entry["uid"] for entry in document["deleteRules"]} == {grafana.rule_uid(kind, COLD)
                                                                   for kind in ("above", "below", "silent")}
    assert sorted(p.name for p in (output / grafana.DASHBOARDS_DIR).iterdir()) == ["temperatures-influxql.json"]


def test_each_rule_is_one_definition_whatever_the_dialect(write_config):
    """The same rules (uids, titles, labels, for, no-data, panels, reductions) in every dialect: only the query node
    and the silence judgement (InfluxQL counts recent points, computing no age) differ."""
    by_api = {api: rules_of(config_for(write_config, api)) for api in ("v1", "v2", "v3")}
    assert by_api["v1"].keys() == by_api["v2"].keys() == by_api["v3"].keys()
    for uid, flux_rule in by_api["v2"].items():
        for api in ("v1", "v3"):
            rule = by_api[api][uid]
            for key in ("title", "labels", "for", "noDataState", "execErrState", "panelId", "condition"):
                assert rule[key] == flux_rule[key], (api, uid, key)
            assert rule["data"][0]["relativeTimeRange"] == flux_rule["data"][0]["relativeTimeRange"]
            assert rule["data"][1] == flux_rule["data"][1], (api, uid)  # the same reduction
            if api == "v3" or "silent" not in uid:
                assert rule["data"][2] == flux_rule["data"][2], (api, uid)  # the same threshold
            assert rule["annotations"]["summary"] == flux_rule["annotations"]["summary"]
    sql = by_api["v3"][grafana.rule_uid("above", HOT)]["data"][0]
    assert sql["datasourceUid"] == grafana.SQL_DATASOURCE_UID and sql["model"]["format"] == "table"
    influxql = by_api["v1"][grafana.rule_uid("above", HOT)]["data"][0]
    assert influxql["model"]["rawQuery"] is True and influxql["model"]["resultFormat"] == "time_series"


def test_the_v3_dashboard_reads_its_long_range_from_the_downsampled_database(write_config):
    v1 = {p["id"]: p for p in panels(grafana.render_influxql_dashboard(config_for(write_config, "v1")))}
    v3 = {p["id"]: p for p in panels(grafana.render_influxql_dashboard(config_for(write_config, "v3"), "hourly"))}
    long_range = {grafana.PANEL_LONG_RANGE, grafana.PANEL_HUMIDITY_LONG_RANGE, grafana.PANEL_DEWPOINT_LONG_RANGE}
    assert v1.keys() == v3.keys()
    for panel_id, panel in v3.items():
        uids = {t["datasource"]["uid"] for t in panel.get("targets", [])} | {panel.get("datasource", {}).get("uid")}
        if panel_id in long_range:
            assert uids == {grafana.INFLUXQL_LONGTERM_DATASOURCE_UID}, panel_id
            assert "(hourly)" in panel["title"] and panel["interval"] == "1h"
        elif panel["type"] != "row":
            assert uids == {grafana.INFLUXQL_DATASOURCE_UID}, panel_id
            assert panel == v1[panel_id]  # the rest is the 1.x dashboard's
    humidity = v3[grafana.PANEL_HUMIDITY_LONG_RANGE]["targets"][0]["query"]
    assert 'mean("humidity_mean") AS "mean", min("humidity_min") AS "min", max("humidity_max") AS "max"' in humidity


# ---------------------------------------------------------------------------------------------------------------
# The data: what a collector writes, and one that went silent


def reading(sensor: str, at_s: int, celsius: float, host: str, humidity: float | None = None, **tags: str):
    return reading_point(Series(MEASUREMENT, {**tags, "sensor": sensor, "host": host}),
                         Reading(sensor, at_s * S, celsius, humidity))


def health(host: str, at_s: int, outbox_depth: int, sensors=(HOT,)):
    stats = Stats()
    for sensor in sensors:
        stats.observe_latency(sensor, 0.01)
    return health_points(stats, {"host": host}, list(sensors), outbox_depth, None, at_s * S, (at_s - 600) * S,
                         at_s * S)


def written(now_s: int) -> list:
    """h1: desk hot (the latest 29 °C, a tag edit splitting its series), humid (65 %RH), the cold sensor at 10 °C,
    the outbox at 1500; h2: desk within its thresholds now though hot before, outbox 10; h3: silent for an hour."""
    return [
        reading(HOT, now_s - 200, 35.0, "h1", 50), reading(HOT, now_s - 150, 27.0, "h1", 55, room="x"),
        reading(HOT, now_s - 100, 29.0, "h1", 65),
        reading(HOT, now_s - 250, 35.0, "h2", 70), reading(HOT, now_s - 50, 20.0, "h2", 45),
        reading(HOT, now_s - 3600, 40.0, "h3", 90),
        reading(COLD, now_s - 120, 20.0, "h1"), reading(COLD, now_s - 60, 10.0, "h1"),
        *health("h1", now_s - 90, 10), *health("h1", now_s - 30, 1500), *health("h2", now_s - 20, 10),
        *health("h3", now_s - 3600, 5000),
    ]


# (rule kind, sensor or None) -> the label sets that fire, with the value Grafana sees
FIRING: dict[tuple[str, str | None], dict[tuple, float | None]] = {
    ("above", HOT): {(HOT, "h1"): 29.0},
    ("below", HOT): {},
    ("humidity-above", HOT): {(HOT, "h1"): 65.0},
    ("humidity-below", HOT): {},
    ("below", COLD): {(COLD, "h1"): 10.0},
    ("above", COLD): {},
    ("silent", HOT): {(HOT, "h3"): None},
    ("silent", COLD): {},
    ("collector-silent", None): {("h3",): None},
    ("outbox-growing", None): {("h1",): 1500},
}
SEEN: dict[tuple[str, str | None], set[tuple]] = {  # the instances each rule's query gives (firing or not)
    ("above", HOT): {(HOT, "h1"), (HOT, "h2")}, ("silent", HOT): {(HOT, h) for h in ("h1", "h2", "h3")},
    ("silent", COLD): {(COLD, "h1")}, ("collector-silent", None): {("h1",), ("h2",), ("h3",)},
    ("outbox-growing", None): {("h1",), ("h2",)},
}


def judge(rule: dict, instances: dict[tuple, float]) -> dict[tuple, float]:
    """Grafana's threshold on each instance's reduced value: those that fire."""
    evaluator = next(i for i in rule["data"] if i["refId"] == rule["condition"])["model"]["conditions"][0]["evaluator"]
    limit = evaluator["params"][0]
    compare = {"gt": lambda v: v > limit, "gte": lambda v: v >= limit, "lt": lambda v: v < limit}[evaluator["type"]]
    return {labels: value for labels, value in instances.items() if compare(value)}


def check_instances(config, answers) -> None:
    """For each rule, `answers(rule)` gives its instances {labels: value}; they fire as FIRING says."""
    for (kind, sensor), firing in FIRING.items():
        rule = rules_of(config)[grafana.rule_uid(kind, sensor or "")]
        instances = answers(rule)
        if (kind, sensor) in SEEN:
            assert set(instances) == SEEN[kind, sensor], (rule["uid"], instances)
        fired = judge(rule, instances)
        assert set(fired) == set(firing), (rule["uid"], instances)
        for labels, value in firing.items():
            if value is not None:
                assert fired[labels] == value, (rule["uid"], fired)


def time_range(rule: dict, now_s: float) -> tuple[float, float]:
    return now_s - rule["data"][0]["relativeTimeRange"]["from"], now_s


# ---------------------------------------------------------------------------------------------------------------
# InfluxQL (api v1) on a real influxd 1.x


def alerting_influxql(text: str, start_s: float, stop_s: float, interval: str = "1s") -> str:
    """A rule's raw InfluxQL as Grafana's backend sends it (alerting has no dashboard variables): models/query.go
    Build's replacements in the whole text, in its order."""
    time_filter = f"time >= {int(start_s * 1000)}ms and time <= {int(stop_s * 1000)}ms"
    return (text.replace("$timeFilter", time_filter).replace("$interval", interval)
            .replace("$__interval_ms", "1000").replace("$__interval", interval))


def influxql_instances(influxd, database: str, rule: dict, now_s: float) -> dict[tuple, float]:
    """The rule's query as Grafana's backend sends it for the evaluation at `now_s`, and what alerting makes of the
    answer: per series its tags as labels, the last value that is a number (reduce last, dropNN)."""
    text = alerting_influxql(rule["data"][0]["model"]["query"], *time_range(rule, now_s))
    (result,) = influxd.query(text, db=database)["results"]
    assert "error" not in result, (text, result)
    instances = {}
    for series in result.get("series", []):
        labels = tuple(series["tags"][key] for key in ("sensor", "host") if key in series["tags"])
        assert labels not in instances, f"two series with labels {labels}: Grafana could not tell them apart"
        values = [row[1] for row in series["values"] if row[1] is not None]
        if values:
            instances[labels] = values[-1]
    return instances


def test_influxql_rules_fire_for_the_breaching_sensor_and_host_on_influxd(write_config, influxd, database):
    now_s = int(time.time())
    influxd.query(f'CREATE DATABASE "{database}"')
    influxd.write(database, [point.line() for point in written(now_s)])
    config = config_for(write_config, "v1")
    check_instances(config, lambda rule: influxql_instances(influxd, database, rule, now_s))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=24))
@example("it's 5$ \"q\" $x")
def test_any_allowed_name_is_found_by_its_influxql_threshold_rule(write_config, influxd, database, name):
    """The sensor's name goes into the rule's InfluxQL as a string literal: a point written with it is found."""
    assume(sensor_name_problem(name) is None)
    influxd.query(f'CREATE DATABASE "{database}"')
    now_s = int(time.time())
    influxd.write(database, [reading(name, now_s - 5, 50.0, "h").line(), reading("other", now_s - 5, 60.0, "h").line()])
    config = load_config(write_config("influxdb: {api: v1}\nsensors:\n  - {name: x, type: simulated}\n"), environ={})
    sensor = dataclasses.replace(config.sensors[0], name=name, max=40)
    rule = rules_of(dataclasses.replace(config, sensors=(sensor,)))[grafana.rule_uid("above", name)]
    assert influxql_instances(influxd, database, rule, now_s) == {(name, "h"): 50.0}


def test_influxql_dashboards_of_v1_and_v3_answer_on_influxd(write_config, influxd, database):
    """Every query of both InfluxQL dashboards, Grafana's variables in (all sensors selected), on the raw database
    or, for v3's long-range panels, on a downsampled one shaped as the shared schema says (one point per series and
    hour stamped with its start: mean, min, max, count; humidity_mean ... for humidity), made here by InfluxQL."""
    now_s = int(time.time())
    longterm = f"{database}_lt"
    for name in (database, longterm):
        influxd.query(f'CREATE DATABASE "{name}"')
    influxd.write(database, [point.line() for point in written(now_s)])
    stats = ", ".join(f'{stat}("{field}") AS "{prefix}{stat}"' for field, prefix in
                      (("celsius", ""), ("humidity", "humidity_"), ("dewpoint", "dewpoint_"))
                      for stat in ("mean", "min", "max", "count"))
    influxd.query(f'SELECT {stats} INTO "{longterm}"."autogen"."{MEASUREMENT}" FROM "{MEASUREMENT}" '
                  "WHERE time > now() - 2h GROUP BY time(1h), *", db=database)
    sensors = [HOT, COLD]
    for api in ("v1", "v3"):
        queries = dashboard_queries(grafana.render_influxql_dashboard(config_for(write_config, api)))
        assert {q.language for q in queries} == {"influxql"}
        on_longterm = [q for q in queries if q.datasource_uid == grafana.INFLUXQL_LONGTERM_DATASOURCE_UID]
        assert len(on_longterm) == (3 if api == "v3" else 0)
        for query in queries:
            db = longterm if query in on_longterm else database
            text = grafana_influxql(query.text, sensors, "1h" if query in on_longterm else "1m",
                                    f"time >= {(now_s - 7200) * 1000}ms and time <= {now_s * 1000}ms")
            (result,) = influxd.query(text, db=db)["results"]
            assert "error" not in result, (api, query.where, text, result)
            series = result.get("series", [])
            assert series, f"{api} {query.where} returned nothing: {text}"
            for one in series:
                for column in range(1, len(one["columns"])):
                    assert any(row[column] is not None for row in one["values"]), (api, query.where, one)
            if query in on_longterm:
                assert {s["tags"]["sensor"] for s in series} <= set(sensors) and series[0]["columns"] == [
                    "time", "mean", "min", "max"]


# ---------------------------------------------------------------------------------------------------------------
# SQL (api v3) in Apache DataFusion


FSQL_MACROS = ("dateBin", "dateBinAlias", "interval", "timeGroup", "timeGroupAlias", "timeTo", "timeFrom",
               "timeFilter", "table", "column")  # fsql's (macro.go) and the SDK's defaults (macros.go)


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def grafana_sql(text: str, start_s: float, stop_s: float) -> str:
    """A rule's `rawSql` as Grafana's fsql sends it (written here from the cited source, not taken from collector/):
    `$__timeFilter(col)` is the SDK's `col >= '<from>' AND col <= '<to>'`, `$__timeFrom` / `$__timeTo` fsql's
    `cast('<t>' as timestamp)`, RFC 3339 UTC at whole seconds; any other macro this test does not expect."""
    text = re.sub(r"\$__timeFilter\(([^)]*)\)",
                  lambda m: f"{m[1].strip()} >= '{rfc3339(start_s)}' AND {m[1].strip()} <= '{rfc3339(stop_s)}'", text)
    text = re.sub(r"\$__timeFrom\b", f"cast('{rfc3339(start_s)}' as timestamp)", text)
    text = re.sub(r"\$__timeTo\b", f"cast('{rfc3339(stop_s)}' as timestamp)", text)
    assert not re.search(r"\$__(" + "|".join(FSQL_MACROS) + r")\b", text), f"a macro is left: {text}"
    return text


def datafusion_tables(points) -> object:
    """InfluxDB 3's tables of the points: `time` a timestamp in ns without a zone, tags as Dictionary(Int32, Utf8)
    (influxdata/influxdb@v3.10.1:core/schema/src/lib.rs InfluxColumnType::Tag), fields float64 or int64, a column
    null where a row lacks it."""
    datafusion = require_module("datafusion")
    pa = require_module("pyarrow")
    context = datafusion.SessionContext()
    by_table: dict[str, list] = {}
    for point in points:
        by_table.setdefault(point.series.measurement, []).append(point)
    for table, rows in by_table.items():
        tags = sorted({key for row in rows for key in row.series.tags})
        fields = sorted({key for row in rows for key in row.fields})
        columns = {"time": pa.array([row.time_ns for row in rows], pa.timestamp("ns"))}
        for tag in tags:
            columns[tag] = pa.array([row.series.tags.get(tag) for row in rows]).dictionary_encode()
        for field in fields:
            values = [row.fields.get(field) for row in rows]
            if all(isinstance(v, int) for v in values if v is not None):
                columns[field] = pa.array(values, pa.int64())
            else:
                columns[field] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        context.register_record_batches(table, [pa.table(columns).to_batches()])
    return context


def sql_instances(context, rule: dict, now_s: float) -> dict[tuple, float]:
    """The rule's SQL as Grafana sends it, and what alerting makes of the table: one number per row, labelled by
    its string columns (a column of another type would make it no number table at all)."""
    pa = require_module("pyarrow")
    model = rule["data"][0]["model"]
    assert model["format"] == "table"
    table = context.sql(grafana_sql(model["rawSql"], *time_range(rule, now_s))).to_arrow_table()
    strings = [f.name for f in table.schema if f.type == pa.string()]
    numbers = [f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    assert len(numbers) == 1 and len(strings) + 1 == len(table.schema), table.schema
    assert strings in (["sensor", "host"], ["host"]), table.schema
    rows = table.to_pylist()
    instances = {tuple(row[s] for s in strings): row[numbers[0]] for row in rows}
    assert len(instances) == len(rows), "two rows with the same labels"
    return instances


def test_sql_rules_fire_for_the_breaching_sensor_and_host_in_datafusion(write_config):
    now_s = int(time.time())
    context = datafusion_tables(written(now_s))
    check_instances(config_for(write_config, "v3"), lambda rule: sql_instances(context, rule, now_s))
    ages = sql_instances(context, rules_of(config_for(write_config, "v3"))[grafana.rule_uid("silent", HOT)], now_s)
    assert 3595 <= ages[HOT, "h3"] <= 3600 + 60 and ages[HOT, "h2"] < 120  # seconds since the last reading


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=24))
@example("x$__timeFrom")
@example("$__timeFilter(time) 'a'")
@example("$__$__dateBin")
def test_any_allowed_name_reads_back_from_a_sql_literal_after_grafanas_macros(name):
    assume(sensor_name_problem(name) is None)
    datafusion = require_module("datafusion")
    literal = grafana_string(name)
    assert "$__" not in literal
    (row,) = datafusion.SessionContext().sql(f"SELECT {grafana_sql(literal, 0, 1)} AS v").to_arrow_table().to_pylist()
    assert row["v"] == name


def test_the_sql_rules_select_the_collectors_own_health_point(write_config):
    """Per-sensor health points share the `templog` table (their `sensor` set); the collector rules read the one
    without it: a host whose only recent points are per-sensor ones is silent."""
    now_s = int(time.time())
    points = [*health("h1", now_s - 3600, 0), *[p for p in health("h1", now_s - 10, 0) if "sensor" in p.series.tags]]
    context = datafusion_tables(points)
    rule = rules_of(config_for(write_config, "v3"))[grafana.rule_uid("collector-silent")]
    assert judge(rule, sql_instances(context, rule, now_s)).keys() == {("h1",)}
    assert rule_dialect(config_for(write_config, "v3")).collector_silent(
        config_for(write_config, "v3"), 300).query.count(HEALTH_MEASUREMENT) == 1


def test_every_rendered_query_of_a_dialect_is_in_that_dialect(write_config):
    for api, language in (("v1", "influxql"), ("v3", "sql")):
        queries: list[Query] = rule_queries(grafana.render_alert_rules(config_for(write_config, api)))
        assert queries and {q.language for q in queries} == {language}


# ---------------------------------------------------------------------------------------------------------------
# api v3: the raw look-back within InfluxDB 3 Core's file limit

# A query of InfluxDB 3 Core reading more than --query-file-limit Parquet files of one table, counted after its time
# filter, is refused (influxdata/influxdb@v3.10.1:influxdb3_write/src/write_buffer/mod.rs:437, default 432; :549 the
# refusal); the server writes one file per table and --gen1-duration window (influxdb3/src/commands/serve.rs:288,
# default 10 minutes). Written here from that source, not taken from collector/.
DEFAULT_QUERY_FILE_LIMIT = 432
GEN1_WINDOW_S = 600


def files_read(start_s: float, stop_s: float) -> int:
    """The Parquet files per table a query over [start, stop] reads where data was written all along."""
    return int(stop_s // GEN1_WINDOW_S) - int(start_s // GEN1_WINDOW_S) + 1


def config_with_retention(write_config, api: str, retention: str):
    return load_config(write_config(CONFIG.replace("api: v1", f"api: {api}").replace("retention: 2h",
                                                                                      f"retention: {retention}")),
                       environ={})


@pytest.mark.parametrize("retention", ["90d", "30d", "0"])
def test_on_v3_no_rule_or_last_seen_panel_reads_more_raw_files_than_the_default_limit(write_config, retention):
    """The silence rules and the "Last reading" / "Last health point" panels used to look back over the whole raw
    retention (a year with none): InfluxDB 3 Core with its default file limit refused them at every evaluation."""
    now_s = time.time()
    config = config_with_retention(write_config, "v3", retention)
    for uid, rule in rules_of(config).items():
        start_s, stop_s = time_range(rule, now_s)
        assert files_read(start_s, stop_s) <= DEFAULT_QUERY_FILE_LIMIT, (uid, rule["data"][0]["relativeTimeRange"])
    raw = [q for q in dashboard_queries(grafana.render_influxql_dashboard(config))
           if q.datasource_uid == grafana.INFLUXQL_DATASOURCE_UID]
    bounded = [q for q in raw if "now() - " in q.text]
    assert len(bounded) == 2  # Last reading, Last health point; the others read the range the user picks
    for query in bounded:
        (back,) = re.findall(r"now\(\) - (\w+)", query.text)
        assert files_read(now_s - parse_duration(back), now_s) <= DEFAULT_QUERY_FILE_LIMIT, query.where
    for panel in panels(grafana.render_influxql_dashboard(config)):
        if panel["title"] in ("Last reading", "Last health point"):
            assert "Within the last 2d only" in panel["description"], panel["description"]
    # api v1 and v2 keep the retention as the look-back (InfluxDB 1.x and 2.x have no such limit)
    for api in ("v1", "v2"):
        other = config_with_retention(write_config, api, retention)
        silent = rules_of(other)[grafana.rule_uid("silent", HOT)]
        assert silent["data"][0]["relativeTimeRange"]["from"] == int(retention_s(other)), api


def test_on_v3_a_sensor_silent_on_every_host_beyond_the_look_back_still_alerts_in_datafusion(write_config):
    """Silent for 3 days (past the 2-day look-back) with 90 days of retention: a host whose sensor still reports
    elsewhere drops out of the answer (Grafana resolves its alert as MissingSeries, which the annotation says); a
    sensor, or every collector, silent on all hosts gives an empty answer, NoData, which these rules make Alerting
    (grafana/grafana@07af29d5b78d, not the pinned v12.3.1: pkg/services/ngalert/state/manager.go
    setNextStateForRule: NoData mapped by noDataState onto every existing instance, setNextStateForAll)."""
    now_s = int(time.time())
    long_ago = now_s - 3 * 86400
    context = datafusion_tables([
        reading(HOT, now_s - 30, 20.0, "h1"), reading(HOT, long_ago, 20.0, "h4"), reading(COLD, long_ago, 20.0, "h1"),
        *health("h1", long_ago, 0),
    ])
    config = config_with_retention(write_config, "v3", "90d")
    rules = rules_of(config)
    hot = rules[grafana.rule_uid("silent", HOT)]
    assert sql_instances(context, hot, now_s).keys() == {(HOT, "h1")}
    assert "a host silent for longer than 2d drops out of it" in hot["annotations"]["description"]
    for uid in (grafana.rule_uid("silent", COLD), grafana.rule_uid("collector-silent")):
        assert sql_instances(context, rules[uid], now_s) == {}, uid
        assert rules[uid]["noDataState"] == "Alerting", uid
        assert "silent on every host, it keeps alerting" in rules[uid]["annotations"]["description"], uid


# ---------------------------------------------------------------------------------------------------------------
# api v3 without Docker: the data sources

INFLUXDB3_STACK_DATASOURCES = ROOT / "grafana" / "influxdb3" / "datasources" / "templog.yaml"
INFLUXDB3_DATASOURCES = ROOT / "grafana" / "influxdb3" / "templog-influxdb3.yaml"


def test_the_v3_data_sources_without_docker_are_the_stacks_and_serve_what_templog_grafana_renders(write_config):
    """grafana/influxdb3/templog-influxdb3.yaml (README "InfluxDB 3 without Docker"): the Docker stack's data sources
    but for where they point (a local server, a token file of one's own), and every uid the rules and dashboard
    rendered for api v3 refer to among them."""
    def by_uid(path):
        return {source["uid"]: source for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]}

    own, stack = by_uid(INFLUXDB3_DATASOURCES), by_uid(INFLUXDB3_STACK_DATASOURCES)
    assert own.keys() == stack.keys() == {grafana.INFLUXQL_DATASOURCE_UID, grafana.INFLUXQL_LONGTERM_DATASOURCE_UID,
                                          grafana.SQL_DATASOURCE_UID}
    tokens = set()
    for uid, source in own.items():
        assert {k: v for k, v in source.items() if k not in ("url", "jsonData", "secureJsonData", "editable")} == {
            k: v for k, v in stack[uid].items() if k not in ("url", "jsonData", "secureJsonData", "editable")}, uid
        assert source["url"] == "http://localhost:8181"
        same = {k: v for k, v in source["jsonData"].items() if k != "dbName"}
        assert same == {k: v for k, v in stack[uid]["jsonData"].items() if k != "dbName"}, uid
        assert source["secureJsonData"].keys() == stack[uid]["secureJsonData"].keys(), uid
        for value in source["secureJsonData"].values():
            tokens.update(re.findall(r"\$__file\{([^}]+)\}", value))
    assert len(tokens) == 1 and not next(iter(tokens)).startswith("/run/secrets"), tokens
    influxdb = load_config(ROOT / "config.yaml", environ={}).influxdb
    assert influxdb is not None
    assert own[grafana.INFLUXQL_DATASOURCE_UID]["jsonData"]["dbName"] == influxdb.bucket
    assert own[grafana.SQL_DATASOURCE_UID]["jsonData"]["dbName"] == influxdb.bucket
    assert own[grafana.INFLUXQL_LONGTERM_DATASOURCE_UID]["jsonData"]["dbName"] == grafana.LONGTERM_BUCKET
    v3 = config_for(write_config, "v3")
    referenced = {q.datasource_uid for q in rule_queries(grafana.render_alert_rules(v3))
                  + dashboard_queries(grafana.render_influxql_dashboard(v3))}
    assert referenced - {grafana.EXPRESSION_DATASOURCE_UID} <= own.keys()

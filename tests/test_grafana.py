"""Grafana provisioning: the committed files are the rendering of the committed config.yaml, dashboards validate
against Grafana's published schema, alert rules have the provisioning shape, every uid a file refers to exists,
every measurement, field and tag a query uses is one the collector writes, and the InfluxQL dashboard's queries
return the collector's data from a real InfluxDB 1.x.

(The Flux texts are parsed and type-checked by InfluxData's own checker in test_flux.py.)
"""

from __future__ import annotations

import copy
import json
import re
import time
import zlib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, wait_until
from collector import grafana
from collector.config import load_config
from collector.grafana.common import longterm_field
from collector.health import SENSOR_COUNTERS, TOTAL_COUNTERS, health_points
from collector.lineprotocol import (
    DEWPOINT,
    HEALTH_MEASUREMENT,
    HUMIDITY,
    MEASUREMENT,
    Series,
    sensor_name_problem,
)
from collector.query import HistoryQuery
from collector.query.flux import history as flux_history
from collector.query.flux import string as flux_string
from collector.readings import Reading, reading_point
from collector.stats import Stats
from grafana_queries import Query, dashboard_queries, rule_queries
from history_check import HOSTILE_NAME
from stack_tools import require_module
from temperature_points import temperature

ROOT = Path(__file__).resolve().parent.parent
PROVISIONING = ROOT / "grafana" / "provisioning"
EXAMPLES = ROOT / "grafana" / "examples"
NOTIFICATION_EXAMPLES = {channel: EXAMPLES / f"templog-notifications-{channel}.yaml"
                         for channel in ("webhook", "email")}
INFLUXDB1_DATASOURCE = ROOT / "grafana" / "influxdb1" / "templog-influxdb1.yaml"
SCHEMAS = Path(__file__).resolve().parent / "schemas" / "grafana"
COMPOSE_FILE = ROOT / "docker-compose.yml"


def committed_config():
    # No environment: the committed files are rendered from config.yaml's own defaults.
    return load_config(ROOT / "config.yaml", environ={})


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def dashboards() -> dict[str, dict]:
    return {path.name: load_json(path) for path in sorted((PROVISIONING / grafana.DASHBOARDS_DIR).glob("*.json"))}


def rules_file() -> dict:
    return load_yaml(PROVISIONING / grafana.RULES_FILE)


def all_rules(document: dict) -> list[dict]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def validator(name: str):
    jsonschema = require_module("jsonschema")
    schema = load_json(SCHEMAS / name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(name: str, document) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator(name).iter_errors(document)]


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


# ---------------------------------------------------------------------------------------------------------------
# The committed files are what the code renders from the committed config.yaml


def test_committed_provisioning_is_the_rendering_of_the_committed_config():
    config = committed_config()
    expected = grafana.rendered_files(config, environ={})
    stale = [path for path, text in expected.items() if (PROVISIONING / path).read_text(encoding="utf-8") != text]
    assert not stale, (f"{stale} differ from the rendering of config.yaml; regenerate with "
                       "`templog grafana --output grafana/provisioning` (config.yaml's defaults: no INFLUX_* "
                       "and no TEMPLOG_ALERT_* variables set)")
    assert sorted(p.name for p in (PROVISIONING / "alerting").iterdir()) == [Path(grafana.RULES_FILE).name]
    assert sorted(dashboards()) == sorted(Path(p).name for p in expected if p.startswith(grafana.DASHBOARDS_DIR))


@pytest.mark.parametrize("channel", sorted(NOTIFICATION_EXAMPLES))
def test_notification_examples_are_the_rendering(channel):
    assert NOTIFICATION_EXAMPLES[channel].read_text(encoding="utf-8") == grafana.notifications_yaml(channel)


def test_notifications_are_provisioned_only_for_a_configured_channel(tmp_path):
    config = committed_config()
    assert grafana.notification_channel({}) is None
    assert grafana.notification_channel({"TEMPLOG_ALERT_WEBHOOK_URL": " "}) is None
    assert grafana.notification_channel({"TEMPLOG_ALERT_EMAIL": "me@example.org"}) == "email"
    assert grafana.notification_channel({"TEMPLOG_ALERT_WEBHOOK_URL": "https://hooks.example.org/x",
                                         "TEMPLOG_ALERT_EMAIL": "me@example.org"}) == "webhook"
    notifications = tmp_path / grafana.NOTIFICATIONS_FILE
    grafana.write_provisioning(config, tmp_path, environ={"TEMPLOG_ALERT_WEBHOOK_URL": "https://hooks.example.org/x"})
    text = notifications.read_text()
    assert text == grafana.notifications_yaml("webhook")
    assert "hooks.example.org" not in text  # Grafana reads the URL from its own environment
    grafana.write_provisioning(config, tmp_path, environ={})
    assert not notifications.exists()  # an empty URL would stop Grafana from starting


def test_long_term_bucket_name_comes_from_the_environment():
    config = committed_config()
    files = grafana.rendered_files(config, {"INFLUX_LONGTERM_BUCKET": "hourly"})
    assert 'from(bucket: \\"hourly\\")' in files[grafana.DASHBOARD_FILE]
    assert files[grafana.RULES_FILE] == grafana.rendered_files(config)[grafana.RULES_FILE]


def test_rendering_is_deterministic_and_write_provisioning_writes_it(tmp_path):
    config = committed_config()
    assert grafana.rendered_files(config) == grafana.rendered_files(committed_config())
    written = grafana.write_provisioning(config, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == sorted(grafana.rendered_files(config))
    for path in written:
        assert path.read_text(encoding="utf-8") == grafana.rendered_files(config)[str(path.relative_to(tmp_path))]
    assert yaml.safe_load(grafana.alert_rules_yaml(config)) == grafana.render_alert_rules(config)


# ---------------------------------------------------------------------------------------------------------------
# Shapes: Grafana's dashboard schema, the alerting provisioning format


PANEL_SCHEMAS = {  # panel type -> (options schema, fieldConfig.defaults.custom schema)
    "stat": ("stat-options.schema.json", None),
    "timeseries": ("timeseries-options.schema.json", "timeseries-fieldconfig.schema.json"),
}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_validates_against_grafanas_schema(name):
    dashboard = dashboards()[name]
    assert schema_errors("dashboard.schema.json", dashboard) == []
    # The dashboard schema leaves panel options open (they belong to each panel plugin): check those too.
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["type"] in PANEL_SCHEMAS, f"panel {panel['id']}: no schema for type {panel['type']}"
        options, custom = PANEL_SCHEMAS[panel["type"]]
        assert schema_errors(options, panel["options"]) == [], f"panel {panel['id']} options"
        if custom:
            assert schema_errors(custom, panel["fieldConfig"]["defaults"].get("custom", {})) == [], \
                f"panel {panel['id']} fieldConfig.defaults.custom"


def test_dashboard_schema_catches_mistakes():
    dashboard = dashboards()["temperatures.json"]
    broken = copy.deepcopy(dashboard)
    broken["panels"][0]["fieldConfig"]["defaults"]["tresholds"] = broken["panels"][0]["fieldConfig"]["defaults"].pop(
        "thresholds")
    assert any("tresholds" in error for error in schema_errors("dashboard.schema.json", broken))
    broken = copy.deepcopy(dashboard)
    del broken["schemaVersion"]
    assert schema_errors("dashboard.schema.json", broken)
    broken = copy.deepcopy(dashboard)
    broken["panels"][0]["gridPos"]["w"] = "12"
    assert schema_errors("dashboard.schema.json", broken)
    options = copy.deepcopy(dashboard["panels"][0]["options"])
    options["colorMode"] = "rainbow"
    assert schema_errors("stat-options.schema.json", options)


def test_dashboards_layout():
    for name, dashboard in dashboards().items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, f"{name} panel {panel['id']} is wider than 24"
            area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                    for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not cells & area, f"{name}: panel {panel['id']} overlaps another"
            cells |= area
    assert dashboards()["temperatures.json"]["uid"] == grafana.DASHBOARD_UID
    assert dashboards()["temperatures-influxql.json"]["uid"] == grafana.INFLUXQL_DASHBOARD_UID


@pytest.mark.parametrize("path", [PROVISIONING / grafana.RULES_FILE, *NOTIFICATION_EXAMPLES.values()],
                         ids=lambda p: p.name)
def test_alerting_files_have_the_provisioning_shape(path):
    assert schema_errors("alerting-provisioning.schema.json", load_yaml(path)) == []


def test_alerting_schema_catches_mistakes():
    document = rules_file()
    broken = copy.deepcopy(document)
    broken["groups"][0]["rules"][0]["noDataSate"] = "OK"
    assert schema_errors("alerting-provisioning.schema.json", broken)
    broken = copy.deepcopy(document)
    broken["groups"][0]["rules"][0]["data"][2]["model"]["conditions"][0]["evaluator"]["type"] = "above"
    assert schema_errors("alerting-provisioning.schema.json", broken)
    broken = copy.deepcopy(document)
    broken["groups"][0]["rules"][0]["uid"] = "x" * 41
    assert schema_errors("alerting-provisioning.schema.json", broken)
    broken = load_yaml(NOTIFICATION_EXAMPLES["webhook"])
    del broken["contactPoints"][0]["receivers"][0]["settings"]["url"]
    assert schema_errors("alerting-provisioning.schema.json", broken)


def test_rules_reference_their_own_nodes():
    for rule in all_rules(rules_file()):
        refs = [item["refId"] for item in rule["data"]]
        assert len(refs) == len(set(refs)) and rule["condition"] in refs, rule["uid"]
        for item in rule["data"]:
            assert item["model"]["refId"] == item["refId"]
            model = item["model"]
            if item["datasourceUid"] == grafana.EXPRESSION_DATASOURCE_UID:
                math = model["type"] == "math"
                used = re.findall(r"\$([A-Z])", model["expression"]) if math else [model["expression"]]
                assert used and all(ref in refs and ref != item["refId"] for ref in used), (rule["uid"], model)
                assert model["datasource"]["uid"] == grafana.EXPRESSION_DATASOURCE_UID
            else:
                assert item["relativeTimeRange"]["from"] > 0 and model["query"].strip()


def test_no_stray_dollar_where_grafana_expands_environment_variables():
    """Grafana expands $NAME in a rule's title, labels, uid, folder...; a rule's annotations and query models are
    left raw (grafana/grafana@9ff3317d:pkg/services/provisioning/alerting/rules_types.go: `Annotations.Raw`,
    `Model.Raw`), so there a `$$` would stay doubled."""
    document = rules_file()
    for group in document["groups"]:
        for text in (group["name"], group["folder"], group["interval"]):
            assert "$" not in text
        for rule in group["rules"]:
            for text in [rule["uid"], rule["title"], rule["condition"], *rule["labels"], *rule["labels"].values()]:
                assert "$" not in text.replace("$$", ""), (rule["uid"], text)
            for text in rule["annotations"].values():
                assert "$$" not in text, (rule["uid"], text)
    webhook = load_yaml(NOTIFICATION_EXAMPLES["webhook"])["contactPoints"][0]["receivers"][0]
    assert webhook["settings"]["url"] == "$TEMPLOG_ALERT_WEBHOOK_URL"
    email = load_yaml(NOTIFICATION_EXAMPLES["email"])["contactPoints"][0]["receivers"][0]
    assert email["settings"]["addresses"] == "$TEMPLOG_ALERT_EMAIL"


# ---------------------------------------------------------------------------------------------------------------
# Every uid a file refers to exists


def datasource_uids(path: Path) -> dict[str, dict]:
    return {source["uid"]: source for source in load_yaml(path)["datasources"]}


def test_datasources_have_the_fixed_uids_and_read_the_token_from_a_file():
    sources = datasource_uids(PROVISIONING / "datasources" / "templog.yaml")
    assert set(sources) == {grafana.FLUX_DATASOURCE_UID, grafana.INFLUXQL_DATASOURCE_UID}
    flux, influxql = sources[grafana.FLUX_DATASOURCE_UID], sources[grafana.INFLUXQL_DATASOURCE_UID]
    assert flux["type"] == influxql["type"] == grafana.DATASOURCE_TYPE
    assert flux["jsonData"]["version"] == "Flux" and influxql["jsonData"]["version"] == "InfluxQL"
    token = re.fullmatch(r"\$__file\{(/[^}]+)\}", flux["secureJsonData"]["token"])
    assert token, "the Flux token must come from a file"
    assert influxql["secureJsonData"]["httpHeaderValue1"] == f"Token {flux['secureJsonData']['token']}"
    assert influxql["jsonData"]["httpHeaderName1"] == "Authorization"
    v1 = datasource_uids(INFLUXDB1_DATASOURCE)
    assert set(v1) == {grafana.INFLUXQL_DATASOURCE_UID}
    assert v1[grafana.INFLUXQL_DATASOURCE_UID]["jsonData"]["dbName"] == committed_config().influxdb.bucket


def test_datasources_resolve_to_the_stack_in_docker_compose():
    """The variables the data sources use are the ones docker-compose.yml gives Grafana, naming the config's
    bucket, and the token file is on a volume Grafana mounts."""
    if not COMPOSE_FILE.exists():
        pytest.skip("no docker-compose.yml")
    service = load_yaml(COMPOSE_FILE)["services"]["grafana"]
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env if "=" in item)
    text = (PROVISIONING / "datasources" / "templog.yaml").read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    assert used <= set(env), f"not given to Grafana by docker-compose.yml: {sorted(used - set(env))}"
    sources = datasource_uids(PROVISIONING / "datasources" / "templog.yaml")

    def resolve(value: str) -> str:
        return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: str(env[m.group(1)]), value)

    bucket = committed_config().influxdb.bucket
    assert resolve(sources[grafana.FLUX_DATASOURCE_UID]["jsonData"]["defaultBucket"]) == bucket
    assert resolve(sources[grafana.INFLUXQL_DATASOURCE_UID]["jsonData"]["dbName"]) == bucket
    token_reference = re.search(r"\$__file\{([^}]+)\}", text)
    assert token_reference, "the data sources read no token file"
    token_file = token_reference.group(1)
    targets = [str(v).split(":")[1] for v in service.get("volumes", []) if isinstance(v, str)]
    assert any(token_file.startswith(target.rstrip("/") + "/") for target in targets), \
        f"{token_file} is on no volume of the grafana service"


def test_every_datasource_uid_referenced_exists():
    docker = set(datasource_uids(PROVISIONING / "datasources" / "templog.yaml"))
    influxdb1 = set(datasource_uids(INFLUXDB1_DATASOURCE))
    builtin = {"-- Grafana --"}  # the annotations' built-in source
    for name, dashboard in dashboards().items():
        referenced = set()
        for panel in panels(dashboard):
            for holder in [panel, *panel.get("targets", [])]:
                if holder.get("datasource"):
                    referenced.add(holder["datasource"]["uid"])
        for variable in dashboard["templating"]["list"]:
            referenced.add(variable["datasource"]["uid"])
        for annotation in dashboard["annotations"]["list"]:
            referenced.add(annotation["datasource"]["uid"])
        assert referenced - builtin <= docker, name
        if name == "temperatures-influxql.json":
            assert referenced - builtin <= influxdb1, "the InfluxQL twin must work with the 1.x data source alone"
    rules = rules_file()
    for rule in all_rules(rules):
        for item in rule["data"]:
            assert item["datasourceUid"] in docker | {grafana.EXPRESSION_DATASOURCE_UID}, rule["uid"]
            if item["datasourceUid"] != grafana.EXPRESSION_DATASOURCE_UID:
                assert item["model"]["datasource"]["uid"] == item["datasourceUid"]
        linked = {d["uid"]: d for d in dashboards().values()}[rule["dashboardUid"]]
        assert rule["panelId"] in {p["id"] for p in panels(linked)}, rule["uid"]
    for path in NOTIFICATION_EXAMPLES.values():
        contact_points = {cp["name"] for cp in load_yaml(path)["contactPoints"]}
        assert {policy["receiver"] for policy in load_yaml(path)["policies"]} <= contact_points


def test_dashboard_provider_loads_the_rendered_dashboards():
    provider = load_yaml(PROVISIONING / "dashboards" / "templog.yaml")["providers"][0]
    assert provider["options"]["path"] == f"/etc/grafana/provisioning/{grafana.DASHBOARDS_DIR}"
    assert provider["folder"] == grafana.FOLDER


# ---------------------------------------------------------------------------------------------------------------
# What the rules and dashboards say, from the config


SENSORS_CONFIG = """
influxdb: {bucket: home_temps, org: home}
collector: {interval: 10s, health_interval: 2m}
sensors:
  - {name: cellar, type: simulated, interval: 5m, min: 2}
  - {name: "attic \\"west\\" $x {y}", type: simulated, max: 40.5}
  - {name: garage, type: simulated, interval: 30s}
"""


def test_rules_follow_each_sensors_thresholds_and_interval(write_config):
    config = load_config(write_config(SENSORS_CONFIG), environ={})
    rules = all_rules(grafana.render_alert_rules(config))
    by_uid = {rule["uid"]: rule for rule in rules}
    assert len(by_uid) == len(rules)
    cellar, attic, garage = config.sensors
    assert set(by_uid) == {grafana.rule_uid("below", cellar.name), grafana.rule_uid("silent", cellar.name),
                           grafana.rule_uid("above", attic.name), grafana.rule_uid("silent", attic.name),
                           grafana.rule_uid("silent", garage.name),
                           grafana.rule_uid("collector-silent"), grafana.rule_uid("outbox-growing")}

    def threshold(rule):
        node = next(item for item in rule["data"] if item["refId"] == rule["condition"])["model"]
        return node["conditions"][0]["evaluator"]["type"], node["conditions"][0]["evaluator"]["params"][0]

    assert threshold(by_uid[grafana.rule_uid("below", cellar.name)]) == ("lt", 2)
    assert threshold(by_uid[grafana.rule_uid("above", attic.name)]) == ("gte", 40.5)  # red from max, as the dashboard
    assert threshold(by_uid[grafana.rule_uid("silent", cellar.name)]) == ("gt", 900)  # 3 × 5m
    assert threshold(by_uid[grafana.rule_uid("silent", garage.name)]) == ("gt", 300)  # 3 × 30s, but at least 5m
    assert threshold(by_uid[grafana.rule_uid("collector-silent")]) == ("gt", 360)  # 3 × 2m
    assert by_uid[grafana.rule_uid("silent", garage.name)]["noDataState"] == "Alerting"
    assert by_uid[grafana.rule_uid("above", attic.name)]["noDataState"] == "OK"
    # The sensor's name, quotes and dollars included, reaches Flux as a string and Grafana as a literal.
    above = by_uid[grafana.rule_uid("above", attic.name)]
    assert 'r.sensor == "attic \\"west\\" \\x24x {y}"' in above["data"][0]["model"]["query"]
    assert above["labels"]["sensor"] == 'attic "west" $$x {y}'
    assert above["title"] == 'attic "west" $$x {y}: at or above 40.5 °C'
    for rule in rules:
        assert "from(bucket: \"home_temps\")" in rule["data"][0]["model"]["query"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule["uid"])
    outbox = by_uid[grafana.rule_uid("outbox-growing")]
    assert threshold(outbox) == ("gt", 1000) and outbox["for"] == "15m"
    assert {i["relativeTimeRange"]["from"] for i in outbox["data"] if "relativeTimeRange" in i} == {300}  # 2.5 × 2m


def test_flux_strings_and_grafana_literals_escape():
    assert flux_string('a "b" \\ ${c} $d x.bucket') == '"a \\"b\\" \\\\ \\x24{c} \\x24d x\\x2Ebucket"'
    assert grafana.grafana_literal("a $b ${c}") == "a $$b $${c}"


def test_rule_uids_are_stable_and_distinct():
    assert grafana.rule_uid("above", "living-room") == grafana.rule_uid("above", "living-room")
    names = ["a b", "a-b", "a_b", "A B", "x" * 100, "x" * 101, "Küche", "温度"]
    uids = {grafana.rule_uid("silent", name) for name in names}
    assert len(uids) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) for uid in uids)


def thresholds_for(panel: dict, display_name: str) -> list | None:
    """The threshold steps Grafana gives a stat field of that display name: the last override whose byRegexp pattern
    matches, anchored (grafana/grafana@003262a83a8f packages/grafana-data/src/transformations/matchers/nameMatcher.ts
    regexpFieldNameMatcher → stringToJsRegex: `^pattern$`; overrides apply in order, a later one wins)."""
    steps = None
    for override in panel["fieldConfig"]["overrides"]:
        assert override["matcher"]["id"] == "byRegexp"
        if re.fullmatch(override["matcher"]["options"], display_name):
            steps = override["properties"][0]["value"]["steps"]
    return steps


def overridden_steps(panel: dict, display_name: str) -> list:
    """thresholds_for, where an override must match."""
    steps = thresholds_for(panel, display_name)
    assert steps is not None, f"no override of panel {panel['id']} matches {display_name!r}"
    return steps


def test_stat_panels_are_coloured_by_each_sensors_thresholds(write_config):
    config = load_config(write_config(SENSORS_CONFIG), environ={})
    cellar, attic, garage = config.sensors
    for dashboard in (grafana.render_dashboard(config), grafana.render_influxql_dashboard(config)):
        current = {panel["id"]: panel for panel in panels(dashboard)}[grafana.PANEL_CURRENT]
        # a sensor alone, or "<sensor> on <host>" where a sensor name has several hosts
        for suffix in ("", " on pi", " on a (b) $c"):
            assert thresholds_for(current, cellar.name + suffix) == [{"color": "blue", "value": None},
                                                                     {"color": "green", "value": 2}]
            assert thresholds_for(current, attic.name + suffix) == [{"color": "green", "value": None},
                                                                    {"color": "red", "value": 40.5}]
            assert thresholds_for(current, garage.name + suffix) is None
    age = {p["id"]: p for p in panels(grafana.render_dashboard(config))}[grafana.PANEL_AGE]
    assert thresholds_for(age, cellar.name) == [{"color": "green", "value": None}, {"color": "red", "value": 900}]
    assert thresholds_for(age, garage.name + " on pi") == [{"color": "green", "value": None},
                                                           {"color": "orange", "value": 90},
                                                           {"color": "red", "value": 300}]


def test_a_longer_sensor_name_wins_over_a_shorter_one_on_a_host(write_config):
    config = load_config(write_config("sensors:\n  - {name: a, type: simulated, max: 30}\n"
                                      "  - {name: a on b, type: simulated, max: 20}\n"), environ={})
    current = {p["id"]: p for p in panels(grafana.render_dashboard(config))}[grafana.PANEL_CURRENT]
    assert overridden_steps(current, "a on b")[-1]["value"] == 20  # the sensor named so
    assert overridden_steps(current, "a on c")[-1]["value"] == 30
    assert overridden_steps(current, "a on b on c")[-1]["value"] == 20


HUMIDITY_CONFIG = """
sensors:
  - {name: cellar, type: simulated, min: 2, humidity: 80, humidity_max: 85}
  - {name: "bath $x", type: simulated, humidity: 60, humidity_min: 30, humidity_max: 75.5}
  - {name: shed, type: simulated, max: 30, humidity_min: 20, humidity_max: 90}
"""
HUMIDITY_PANELS = {grafana.PANEL_HUMIDITY_ROW, grafana.PANEL_HUMIDITY_CURRENT, grafana.PANEL_DEWPOINT_CURRENT,
                   grafana.PANEL_HUMIDITY_SERIES, grafana.PANEL_DEWPOINT_SERIES, grafana.PANEL_HUMIDITY_LONG_RANGE,
                   grafana.PANEL_DEWPOINT_LONG_RANGE}


def reads_humidity(text: str) -> bool:
    return any(f'"{name}' in text for name in (HUMIDITY, DEWPOINT))


def test_humidity_panels_and_rules_follow_each_sensors_humidity_thresholds(write_config):
    """With a sensor that measures humidity: the humidity row in both dashboards, its stat coloured as the rules
    judge (blue below humidity_min, red from humidity_max), one rule per humidity threshold of a sensor that measures
    humidity (shed has thresholds but no humidity: no rule), linked to the Current humidity panel."""
    config = load_config(write_config(HUMIDITY_CONFIG), environ={})
    cellar, bath, shed = config.sensors
    for dashboard in (grafana.render_dashboard(config), grafana.render_influxql_dashboard(config)):
        by_id = {panel["id"]: panel for panel in panels(dashboard)}
        assert HUMIDITY_PANELS <= set(by_id)
        current = by_id[grafana.PANEL_HUMIDITY_CURRENT]
        assert current["fieldConfig"]["defaults"]["unit"] == "humidity"
        assert thresholds_for(current, bath.name + " on pi") == [{"color": "blue", "value": None},
                                                                {"color": "green", "value": 30},
                                                                {"color": "red", "value": 75.5}]
        assert thresholds_for(current, cellar.name) == [{"color": "green", "value": None},
                                                        {"color": "red", "value": 85}]
        assert thresholds_for(current, shed.name) is None
        assert overridden_steps(by_id[grafana.PANEL_CURRENT], cellar.name)[-1]["value"] == 2  # temperature's own
        for panel_id in HUMIDITY_PANELS - {grafana.PANEL_HUMIDITY_ROW}:
            assert all(reads_humidity(t["query"]) for t in by_id[panel_id]["targets"]), panel_id
        problems = by_id[grafana.PANEL_PROBLEMS]["targets"][0]["query"]
        assert "humidity_refused" in problems
    long_range = {p["id"]: p for p in panels(grafana.render_dashboard(config))}[grafana.PANEL_HUMIDITY_LONG_RANGE]
    assert f'from(bucket: "{grafana.LONGTERM_BUCKET}")' in long_range["targets"][0]["query"]
    assert 'r._field == "humidity_mean"' in long_range["targets"][0]["query"]

    rules = {rule["uid"]: rule for rule in all_rules(grafana.render_alert_rules(config))}
    humidity_rules = {uid: rule for uid, rule in rules.items() if "humidity" in uid}
    assert set(humidity_rules) == {grafana.rule_uid("humidity-above", cellar.name),
                                   grafana.rule_uid("humidity-above", bath.name),
                                   grafana.rule_uid("humidity-below", bath.name)}
    below = humidity_rules[grafana.rule_uid("humidity-below", bath.name)]
    condition = next(i for i in below["data"] if i["refId"] == below["condition"])["model"]["conditions"][0]
    assert condition["evaluator"] == {"type": "lt", "params": [30]}
    above = humidity_rules[grafana.rule_uid("humidity-above", bath.name)]
    condition = next(i for i in above["data"] if i["refId"] == above["condition"])["model"]["conditions"][0]
    assert condition["evaluator"] == {"type": "gte", "params": [75.5]}
    assert above["title"] == "bath $$x: humidity at or above 75.5 %RH"
    temperature_rule = rules[grafana.rule_uid("above", shed.name)]
    for rule in humidity_rules.values():
        assert 'r._field == "humidity"' in rule["data"][0]["model"]["query"]
        assert rule["panelId"] == grafana.PANEL_HUMIDITY_CURRENT
        assert rule["labels"].keys() == temperature_rule["labels"].keys() and rule["labels"]["templog"] == "threshold"
        assert (rule["for"], rule["noDataState"], rule["execErrState"]) == (
            temperature_rule["for"], temperature_rule["noDataState"], temperature_rule["execErrState"])
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule["uid"])


def test_a_temperature_only_config_renders_no_humidity_panel_or_rule(write_config):
    """No sensor measures humidity (humidity thresholds alone do not make one): the dashboards and rules are the
    temperature ones, the health row where it always was."""
    config = load_config(write_config(SENSORS_CONFIG.replace("min: 2}", "min: 2, humidity_max: 80}")), environ={})
    for dashboard in (grafana.render_dashboard(config), grafana.render_influxql_dashboard(config)):
        by_id = {panel["id"]: panel for panel in panels(dashboard)}
        assert not HUMIDITY_PANELS & set(by_id)
        assert not any(reads_humidity(q.text) or "humidity" in q.text for q in dashboard_queries(dashboard))
        assert by_id[grafana.PANEL_HEALTH_ROW]["gridPos"]["y"] == 25
    assert not any("humidity" in rule["uid"] or "humidity" in rule["title"]
                   for rule in all_rules(grafana.render_alert_rules(config)))


def test_committed_dashboards_carry_the_committed_thresholds():
    config = committed_config()
    dashboard = dashboards()["temperatures.json"]
    current = {p["id"]: p for p in panels(dashboard)}[grafana.PANEL_CURRENT]
    for s in config.sensors:
        assert [step["value"] for step in overridden_steps(current, s.name)] == [None, s.min, s.max]


def test_sensor_variable_comes_from_the_data():
    for name, dashboard in dashboards().items():
        (variable,) = dashboard["templating"]["list"]
        assert variable["name"] == "sensor" and variable["type"] == "query", name
        assert variable["multi"] and variable["includeAll"] and variable["refresh"] in (1, 2)
        assert "options" not in variable or variable["options"] == []  # nothing hard-coded
        query = variable["query"]
        if variable["datasource"]["uid"] == grafana.FLUX_DATASOURCE_UID:
            assert 'schema.tagValues(' in query and 'tag: "sensor"' in query
        else:
            assert query == 'SHOW TAG VALUES FROM "temperature" WITH KEY = "sensor"'
        per_sensor = [q for q in dashboard_queries(dashboard) if not q.where.startswith("variable")
                      and ('r._measurement == "temperature"' in q.text or 'FROM "temperature"' in q.text)]
        assert len(per_sensor) >= 4
        for query in per_sensor:
            assert "contains(value: r.sensor, set: ${sensor:json})" in query.text or \
                '"sensor" =~ /^$sensor$/' in query.text, query.where


def test_dashboard_has_the_panels_the_issue_asks_for():
    dashboard = dashboards()["temperatures.json"]
    by_id = {panel["id"]: panel for panel in panels(dashboard)}
    assert by_id[grafana.PANEL_CURRENT]["type"] == by_id[grafana.PANEL_AGE]["type"] == "stat"
    series = by_id[grafana.PANEL_SERIES]["targets"][0]["query"]
    assert all(f"fn: {fn}" in series for fn in ("mean", "min", "max")) and "v.windowPeriod" in series
    long_range = by_id[grafana.PANEL_LONG_RANGE]
    assert f'from(bucket: "{grafana.LONGTERM_BUCKET}")' in long_range["targets"][0]["query"]
    assert long_range["interval"] == "1h" and long_range["timeFrom"]
    health = [q for q in dashboard_queries(dashboard) if f'"{HEALTH_MEASUREMENT}"' in q.text]
    assert len(health) >= 4
    twin = dashboards()["temperatures-influxql.json"]
    assert sorted(p["id"] for p in panels(twin)) == sorted(by_id)


# ---------------------------------------------------------------------------------------------------------------
# Every measurement, field and tag a query uses is one the collector writes


def collector_schema(config) -> dict:
    """What the collector writes: {(bucket kind, measurement): (fields, tags)}, from its own line rendering."""
    stats = Stats()
    for name in TOTAL_COUNTERS:
        stats.add(name, sensor="s" if name in SENSOR_COUNTERS else None)
    stats.add("write_failures_network")
    stats.observe_latency("s", 0.01)
    tags = {"host": config.host, **config.collector.tags}
    fields_by_measurement: dict[str, set[str]] = {}
    tags_by_measurement: dict[str, set[str]] = {}
    for point in health_points(stats, tags, ["s"], 0, None, 10**18, 10**18, 10**18):
        key, fields, _ = point.line().rsplit(" ", 2)
        measurement, *tag_pairs = key.split(",")
        fields_by_measurement.setdefault(measurement, set()).update(f.split("=")[0] for f in fields.split(","))
        tags_by_measurement.setdefault(measurement, set()).update(t.split("=")[0] for t in tag_pairs)
    temperature_tags = {"host", "sensor", *config.collector.tags, *(k for s in config.sensors for k in s.tags)}
    reading_fields = set(reading_point(Series(MEASUREMENT, {}), Reading("s", 0, 20.0, 50.0)).fields)
    # influxdb/tasks/downsample.flux: mean, min and max of each (test_downsample_task.py checks the names it writes)
    longterm_fields = {longterm_field(f, stat) for f in reading_fields for stat in ("mean", "min", "max")}
    return {
        ("raw", MEASUREMENT): (reading_fields, temperature_tags),
        ("raw", HEALTH_MEASUREMENT): (fields_by_measurement[HEALTH_MEASUREMENT],
                                      tags_by_measurement[HEALTH_MEASUREMENT]),
        ("longterm", MEASUREMENT): (longterm_fields, temperature_tags),
    }


FLUX_INTERNAL_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop",
                         "_value_latest", "_value_hosts"}  # the stat panels' join of the latest rows and host counts


def flux_uses(text: str, buckets: dict[str, str]) -> dict:
    """Buckets, measurements, fields and tags a Flux text reads."""
    return {
        "buckets": {buckets.get(b, f"unknown bucket {b}") for b in re.findall(r'from\(bucket:\s*"([^"]+)"\)', text)}
        | {buckets.get(b, f"unknown bucket {b}") for b in re.findall(r'tagValues\(bucket:\s*"([^"]+)"', text)},
        "measurements": set(re.findall(r'r\._measurement\s*==\s*"([^"]+)"', text)),
        "fields": set(re.findall(r'r\._field\s*==\s*"([^"]+)"', text)),
        "tags": {t for t in re.findall(r"\br\.([A-Za-z_][A-Za-z0-9_]*)", text) if t not in FLUX_INTERNAL_COLUMNS}
        | set(re.findall(r'\btag:\s*"([^"]+)"', text)),
    }


def influxql_uses(text: str) -> dict:
    """Measurements, fields and tags an InfluxQL statement reads (identifiers are double-quoted in ours)."""
    show = re.fullmatch(r'SHOW TAG VALUES FROM "([^"]+)" WITH KEY = "([^"]+)"', text)
    if show:
        return {"buckets": {"raw"}, "measurements": {show.group(1)}, "fields": set(), "tags": {show.group(2)}}
    match = re.fullmatch(r'SELECT (?P<select>.+?) FROM (?P<from>"[^"]+"(?:\."[^"]+")*) WHERE (?P<where>.+?)'
                         r'(?: GROUP BY (?P<group>.+?))?(?: fill\(\w+\))?', text)
    assert match, f"not a statement of the expected form: {text}"
    select = re.sub(r'\bAS "[^"]+"', "", match["select"])
    where = re.sub(r"'[^']*'|/[^/]*/", "", match["where"])
    return {
        "buckets": {"raw"},
        "measurements": {re.findall(r'"([^"]+)"', match["from"])[-1]},
        "fields": set(re.findall(r'"([^"]+)"', select)),
        "tags": set(re.findall(r'"([^"]+)"', where)) | set(re.findall(r'"([^"]+)"', match["group"] or "")),
    }


def all_queries() -> list[Query]:
    queries = [q for d in dashboards().values() for q in dashboard_queries(d)]
    return queries + rule_queries(rules_file())


def test_every_query_is_checked_and_none_is_empty():
    queries = all_queries()
    assert {q.language for q in queries} == {"flux", "influxql"}
    assert all(q.text.strip() for q in queries)
    assert len([q for q in queries if q.language == "flux"]) >= 15


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.where)
def test_query_uses_only_what_the_collector_writes(query):
    config = committed_config()
    written = collector_schema(config)
    buckets = {config.influxdb.bucket: "raw", grafana.LONGTERM_BUCKET: "longterm"}
    uses = flux_uses(query.text, buckets) if query.language == "flux" else influxql_uses(query.text)
    assert uses["buckets"] and uses["measurements"], query.text
    for bucket in uses["buckets"]:
        assert bucket in ("raw", "longterm"), bucket
        for measurement in uses["measurements"]:
            assert (bucket, measurement) in written, f"{measurement!r} is not written to the {bucket} bucket"
        fields = set().union(*(written[bucket, m][0] for m in uses["measurements"]))
        tags = set().union(*(written[bucket, m][1] for m in uses["measurements"]))
        assert uses["fields"] <= fields, f"fields {sorted(uses['fields'] - fields)} are not written"
        assert uses["tags"] <= tags, f"tags {sorted(uses['tags'] - tags)} are not written"


def test_usage_extraction_catches_unknown_names():
    config = committed_config()
    written = collector_schema(config)
    uses = flux_uses('from(bucket: "temperature") |> filter(fn: (r) => r._measurement == "templog" and '
                     'r._field == "outbox_size" and r.room == "x")', {"temperature": "raw"})
    assert uses == {"buckets": {"raw"}, "measurements": {"templog"}, "fields": {"outbox_size"}, "tags": {"room"}}
    assert "outbox_size" not in written["raw", "templog"][0] and "room" not in written["raw", "templog"][1]
    assert influxql_uses('SELECT mean("celsius") AS "mean" FROM "temperature" WHERE $timeFilter AND "sensor" =~ '
                         '/^$sensor$/ GROUP BY time($__interval), "room" fill(none)') == {
        "buckets": {"raw"}, "measurements": {"temperature"}, "fields": {"celsius"}, "tags": {"sensor", "room"}}
    assert {"outbox_depth", "uptime_s", "reads_ok", "read_latency_ms_mean"} <= written["raw", "templog"][0]


# ---------------------------------------------------------------------------------------------------------------
# The InfluxQL twin against a real InfluxDB 1.x filled by the collector


# Grafana's escapeRegex, written here from its source rather than taken from collector/grafana/, so the stand-in
# below does not check the code with itself (grafana/grafana@0524cbafcfcf, not the pinned v12.3.1:
# packages/grafana-data/src/text/string.ts: `/[\\^$*+?.()|[\]{}\/]/g` → `\\$&`).
def escape_regex(text: str) -> str:
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda match: "\\" + match.group(0), text)


def test_the_dashboards_regex_escape_is_grafanas():
    special = "\\^$*+?.()|[]{}/"
    assert grafana.grafana_regex_escape(special + "a b") == escape_regex(special + "a b") \
        == "".join("\\" + char for char in special) + "a b"


def grafana_influxql(query: str, sensors: list[str], interval: str = "1s",
                     time_filter: str = "time > now() - 1h") -> str:
    """A raw InfluxQL target as Grafana's InfluxQL data source sends it (grafana/grafana@834ac63ec389, not the pinned
    v12.3.1: public/app/plugins/datasource/influxdb/influx_query_model.ts render → templateSrv.replace with
    interpolateQueryStr: a multi-value or include-all variable's values regex-escaped (escapeRegex) and joined as
    `(a|b)`, one value escaped alone), then, in the backend, the macros replaced in the whole text, the variables'
    values included (grafana/grafana@0952bef509e3, not the pinned v12.3.1: pkg/tsdb/influxdb/models/query.go Build:
    strings.ReplaceAll of $timeFilter, $interval, $__interval_ms, $__interval in that order)."""
    assert not re.search(r"\$(?!sensor\b|timeFilter\b|__interval\b)[\w{]", query), (
        f"a Grafana variable is left: {query}")
    values = [escape_regex(name) for name in sensors]
    text = re.sub(r"\$sensor\b", lambda _: values[0] if len(values) == 1 else "(" + "|".join(values) + ")", query)
    return (text.replace("$timeFilter", time_filter).replace("$interval", interval)
            .replace("$__interval_ms", "1000").replace("$__interval", interval))


def test_influxql_dashboard_queries_return_the_collectors_data(write_config, influxd, database):
    config_path = write_config(f"""
influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 2h}}
collector: {{health_interval: 1s, tags: {{site: lab}}}}
sensors:
  - {{name: "desk lamp", type: simulated, interval: 1s, tags: {{room: office}}, humidity: 45, humidity_max: 60}}
  - {{name: shed, type: simulated, interval: 1s, base: 8}}
""")
    sensors = ["desk lamp", "shed"]
    with_humidity = ["desk lamp"]  # the humidity and dew-point panels find only the sensor that measures it

    def count(q: str) -> int:
        series = influxd.query(q, db=database)["results"][0].get("series", [])
        return sum(len(s["values"]) for s in series)

    process = start_run(config_path)
    try:
        wait_until(lambda: count("SELECT count(\"uptime_s\") FROM \"templog\" WHERE \"sensor\" = '' "
                                 "GROUP BY time(1s)") >= 3
                   and count("SELECT count(\"read_latency_ms_mean\") FROM \"templog\" GROUP BY time(1s), \"sensor\"")
                   >= 4 and count("SELECT \"celsius\" FROM \"temperature\" GROUP BY \"sensor\"") >= 6
                   and count("SELECT \"dewpoint\" FROM \"temperature\" GROUP BY \"sensor\"") >= 3,
                   timeout=30, what="temperature and health points from both sensors")
    finally:
        code, stderr = stop_run(process)
    assert code == 0, stderr

    dashboard = grafana.render_influxql_dashboard(load_config(config_path, environ={}))
    queries = dashboard_queries(dashboard)
    assert {q.language for q in queries} == {"influxql"}
    assert sum(f'"{HUMIDITY}"' in q.text or f'"{DEWPOINT}"' in q.text for q in queries) == 6
    for query in queries:
        result = influxd.query(grafana_influxql(query.text, sensors), db=database)["results"][0]
        assert "error" not in result, (query.where, result)
        series = result.get("series", [])
        assert series, f"{query.where} returned nothing: {grafana_influxql(query.text, sensors)}"
        for one in series:
            assert one["values"], (query.where, one)
            for column in range(1, len(one["columns"])):
                assert any(row[column] is not None for row in one["values"]), (query.where, one["columns"][column])
        if '"sensor" =~' in query.text and "GROUP BY" in query.text:
            humid = f'"{HUMIDITY}"' in query.text or f'"{DEWPOINT}"' in query.text
            assert {s["tags"]["sensor"] for s in series} == set(with_humidity if humid else sensors), query.where
        if "SHOW TAG VALUES" in query.text:
            assert sorted(row[1] for row in series[0]["values"]) == sorted(sensors)
        if "\"sensor\" = ''" in query.text:
            assert all(s["tags"] == {"host": s["tags"]["host"]} for s in series), query.where


# The InfluxQL dashboard on a real influxd 1.x, its queries interpolated as Grafana does it.

def test_influxql_dashboard_merges_a_split_sensor_and_shows_each_host(write_config, influxd, database):
    """A sensor whose host was renamed inside a window, with a hostile name: the windowed panel gives one series
    for it with the mean/min/max of all its points; the current and last-reading stats one per host."""
    base_s = (int(time.time()) - 3600) // 60 * 60  # within the last-reading panel's look-back
    points = [(base_s + t, HOSTILE_NAME, -(t % 7) / 4, "h2" if t >= 90 else "h1") for t in range(0, 180, 10)]
    points += [(base_s + t, "a", (t % 9) / 4, "h1") for t in range(0, 180, 10)]
    influxd.query(f'CREATE DATABASE "{database}"')
    influxd.write(database, [temperature(sensor, t * 10**9, value, host=host).line()
                             for t, sensor, value, host in points])
    config = load_config(write_config(f"sensors:\n  - {{name: a, type: simulated}}\n"
                                      f"  - {{name: {json.dumps(HOSTILE_NAME)}, type: simulated, max: 30}}\n"),
                         environ={})
    by_id = {p["id"]: p for p in panels(grafana.render_influxql_dashboard(config))}

    def run(panel_id: int, sensors: list[str]) -> list[dict]:
        text = grafana_influxql(by_id[panel_id]["targets"][0]["query"], sensors, "1m",
                                f"time >= {base_s * 1000}ms and time <= {(base_s + 180) * 1000}ms")
        (result,) = influxd.query(text, db=database)["results"]
        assert "error" not in result, (text, result)
        return result.get("series", [])

    for selected in ([HOSTILE_NAME], ["a", HOSTILE_NAME]):
        windowed = {s["tags"]["sensor"]: s["values"] for s in run(grafana.PANEL_SERIES, selected)}
        assert sorted(windowed) == sorted(selected)
        for sensor in selected:
            expected = []
            for minute in range(3):
                values = [v for t, s, v, _ in points if s == sensor and minute * 60 <= t - base_s < minute * 60 + 60]
                expected.append([(base_s + minute * 60) * 10**9, sum(values) / len(values), min(values), max(values)])
            assert windowed[sensor] == expected, sensor
        for panel_id in (grafana.PANEL_CURRENT, grafana.PANEL_AGE):
            stats = sorted((s["tags"]["sensor"], s["tags"]["host"]) for s in run(panel_id, selected))
            assert stats == sorted({(s, h) for _, s, _, h in points if s in selected}), panel_id


def test_flux_windows_are_per_sensor_and_stamped_with_their_start():
    """No InfluxDB 2 runs here, so this reads the query texts. Flux's from() gives one table per series (measurement,
    field, whole tag set) and aggregateWindow aggregates each table, stamping it with the window's _stop unless
    timeSrc says otherwise (influxdata/flux@v0.196.1 stdlib/universe/universe.flux aggregateWindow: timeSrc="_stop").
    So every windowed Flux query — the dashboard's raw and long-range panels, history's, README's example — groups
    by sensor before its first aggregateWindow and stamps window starts, as the InfluxQL twin (GROUP BY time,
    "sensor") and history's other sources do."""
    dashboard = json.loads((PROVISIONING / grafana.DASHBOARD_FILE).read_text(encoding="utf-8"))
    by_id = {p["id"]: p for p in panels(dashboard)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"--data '(from[^']*aggregateWindow[^']*)'", readme)
    per_sensor = {"raw panel": by_id[grafana.PANEL_SERIES]["targets"][0]["query"],
                  "long-range panel": by_id[grafana.PANEL_LONG_RANGE]["targets"][0]["query"],
                  "history": flux_history(HistoryQuery(0, 10**9, ("a",), 60.0)), "README": example}
    for where, text in per_sensor.items():
        first_window = text.index("aggregateWindow(")
        assert re.search(r'group\(columns: \["sensor"(, "_field")?\]\)', text[:first_window]), where
    every_window = [q.text for q in dashboard_queries(dashboard)] + list(per_sensor.values())
    calls = [call for text in every_window for call in re.findall(r"aggregateWindow\([^)]*\)", text)]
    assert calls and all('timeSrc: "_start"' in call for call in calls), calls
    assert "stamped with its hour's start" in readme


def test_flux_current_and_age_stats_are_per_sensor_and_host():
    """Two hosts with one sensor name: each (sensor, host) keeps its latest row, named "<sensor> on <host>" when a
    name has several hosts, so a dead collector's sensor is not hidden by a live one (as the silent rule groups)."""
    dashboard = json.loads((PROVISIONING / grafana.DASHBOARD_FILE).read_text(encoding="utf-8"))
    by_id = {p["id"]: p for p in panels(dashboard)}
    for panel_id in (grafana.PANEL_CURRENT, grafana.PANEL_AGE):
        text = by_id[panel_id]["targets"][0]["query"]
        assert 'group(columns: ["sensor", "host"])' in text
        assert 'r.sensor + " on " + r.host' in text and "r._value_hosts > 1" in text
        assert 'pivot(rowKey: ["_field"], columnKey: ["name"]' in text
        # The sensor variable's `contains` cannot be pushed to storage; ahead of last() it would keep last() in
        # Flux, on every point of the range (the age panel's is the whole retention): see flux_latest.
        first_filter = text[text.index("|> filter("):text.index("|> last()")]
        assert "contains(" not in first_filter and text.index("|> last()") < text.index("contains(")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=24))
@example("pump $interval")  # the backend's macros (below)
@example("$timeFilter")
@example("a$__interval_ms")
def test_any_allowed_name_is_found_by_the_influxql_dashboard(write_config, influxd, database, name):
    """A point written with the name comes back through the windowed panel's query, $sensor regex-escaped as Grafana
    does it, alone and beside another selected name (each example a point of its own time)."""
    assume(sensor_name_problem(name) is None)

    influxd.query(f'CREATE DATABASE "{database}"')
    at_s = 1_764_000_000 + 60 * (zlib.crc32(name.encode()) % 100_000)
    influxd.write(database, [temperature(name, at_s * 10**9, 1.5, host="h").line()])
    query = {p["id"]: p for p in panels(grafana.render_influxql_dashboard(
        load_config(write_config("sensors:\n  - {name: a, type: simulated}\n"), environ={})))}[
        grafana.PANEL_SERIES]["targets"][0]["query"]
    for selected in ([name], ["a", name]):
        text = grafana_influxql(query, selected, "1m", f"time >= {at_s * 1000}ms and time < {(at_s + 60) * 1000}ms")
        (result,) = influxd.query(text, db=database)["results"]
        assert "error" not in result, (text, result)
        assert [(s["tags"]["sensor"], s["values"][0][1:]) for s in result.get("series", [])] == [(name, [1.5] * 3)]

"""The alert rules and notification settings: what Grafana deletes when the config changes, and what each rule
compares and groups by.

Grafana cannot run here: its file provisioning is played by a stand-in (GrafanaProvisioning) that does what the
cited source does, and the comparisons by what pkg/expr and the dashboard's colouring code do. Sources read:
grafana/grafana at the commits named at each use (the stored ones; not checked to be the pinned v12.3.1 tag).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import templog
from collector import grafana
from collector.config import load_config
from collector.grafana.rules import _last_seen_text
from test_grafana import schema_errors

WEBHOOK = {"TEMPLOG_ALERT_WEBHOOK_URL": "https://hooks.example.org/x"}
EMAIL = {"TEMPLOG_ALERT_EMAIL": "me@example.org"}
NO_CHANNEL: dict[str, str] = {}
DEFAULT_RECEIVER = "grafana-default-email"  # Grafana's default Alertmanager configuration's receiver and route


class ProvisioningError(Exception):
    """Grafana's provisioning failed: Grafana logs it and does not start."""


class GrafanaProvisioning:
    """A stand-in for Grafana's alerting file provisioning at start, keeping what it keeps.

    grafana/grafana@b4241e5b:pkg/services/provisioning/alerting/provisioner.go: rules (per file: create or update
    each rule by uid, then deleteRules), contact points, policies, then resetPolicies, then deleteContactPoints.
    @20788f38:pkg/services/provisioning/alerting/rules_provisioner.go: a rule is created when GetAlertRule finds no
    uid, else updated; DeleteAlertRule of a uid that does not exist deletes nothing and succeeds
    (pkg/services/ngalert/provisioning/alert_rules.go deleteRules: DeleteAlertRulesByUID, provenance cleanup).
    @171a3680:pkg/services/provisioning/alerting/contact_point_provisioner.go: a receiver (integration) is updated
    when its uid exists, else created in the contact point of its name; nothing else is removed.
    pkg/services/ngalert/provisioning/contactpoints.go DeleteContactPoint: an unknown uid is a no-op; removing the
    last integration of a contact point a route still uses fails (ErrContactPointReferenced).
    @3cd08096:pkg/services/provisioning/alerting/notification_policy_provisioner.go: policies replace the tree
    (UpdatePolicyTree, which refuses a receiver that does not exist); resetPolicies restores the route of the
    default configuration (notification_policies.go ResetPolicyTree).
    """

    def __init__(self):
        self.rules: dict[str, str] = {}  # uid -> title
        self.contact_points: dict[str, dict[str, str]] = {DEFAULT_RECEIVER: {"default": "email"}}  # name -> uid -> type
        self.route = DEFAULT_RECEIVER

    def start(self, directory: Path) -> None:
        files = [yaml.safe_load(path.read_text(encoding="utf-8"))
                 for path in sorted((directory / "alerting").glob("*.yaml"))]
        for document in files:
            for group in document.get("groups") or []:
                for rule in group["rules"]:
                    self.rules[rule["uid"]] = rule["title"]
            for entry in document.get("deleteRules") or []:
                self.rules.pop(entry["uid"], None)
        for document in files:
            for point in document.get("contactPoints") or []:
                for receiver in point["receivers"]:
                    for integrations in self.contact_points.values():
                        integrations.pop(receiver["uid"], None)
                    self.contact_points.setdefault(point["name"], {})[receiver["uid"]] = receiver["type"]
        for document in files:
            for policy in document.get("policies") or []:
                if policy["receiver"] not in self.contact_points:
                    raise ProvisioningError(f"policy receiver {policy['receiver']} does not exist")
                self.route = policy["receiver"]
        for document in files:
            if document.get("resetPolicies"):
                self.route = DEFAULT_RECEIVER
                self.contact_points.setdefault(DEFAULT_RECEIVER, {"default": "email"})
        for document in files:
            for entry in document.get("deleteContactPoints") or []:
                for name, integrations in list(self.contact_points.items()):
                    if entry["uid"] in integrations:
                        if len(integrations) == 1 and self.route == name:
                            raise ProvisioningError(f"contact point {name} is referenced by a route")
                        del integrations[entry["uid"]]
                        if not integrations:
                            del self.contact_points[name]

    def templog_receivers(self) -> dict[str, str]:
        return self.contact_points.get(grafana.CONTACT_POINT, {})


def config_text(*sensors: str) -> str:
    return ("collector:\n  outbox: data/outbox.sqlite\nsensors:\n"
            + "".join(f"  - {sensor}\n" for sensor in sensors))


DESK = "{name: desk, type: simulated, min: 16, max: 28}"
DESK_NO_MIN = "{name: desk, type: simulated, max: 28}"
ATTIC = "{name: attic, type: simulated, max: 40}"
LOFT = "{name: loft, type: simulated, max: 40}"  # the attic, renamed
HUMID_DESK = "{name: desk, type: simulated, min: 16, max: 28, humidity: 50, humidity_min: 30, humidity_max: 70}"


class OneShot:
    """scripts/render-grafana-provisioning.sh's steps, in process for the many renders below: render into a staging
    directory, with the volume Grafana reads as the previous rendering, then replace the volume's contents by the
    staging directory's. (The real script does it with the real templog in tests/test_stack_compose.py,
    test_render_grafana_provisioning_deletes_what_the_last_start_provisioned_and_this_config_lacks.)"""

    def __init__(self, root: Path, write_config):
        self.root, self.write_config, self.renders = root, write_config, 0
        self.volume = root / "volume"
        self.volume.mkdir()

    def render(self, text: str, environ: dict[str, str]) -> grafana.Previous:
        self.renders += 1
        staging = self.root / f"staging-{self.renders}"
        previous, warnings = grafana.read_previous(self.volume)
        assert warnings == []
        grafana.write_provisioning(load_config(self.write_config(text), environ={}), staging, environ, previous)
        shutil.rmtree(self.volume)
        shutil.copytree(staging, self.volume)
        for path in (self.volume / "alerting").glob("*.yaml"):
            assert schema_errors("alerting-provisioning.schema.json", yaml.safe_load(path.read_text())) == [], path
        return previous


def expected_rules(write_config, text: str) -> dict[str, str]:
    rules = grafana.render_alert_rules(load_config(write_config(text), environ={}))
    return {rule["uid"]: rule["title"] for rule in rules["groups"][0]["rules"]}


@pytest.fixture
def one_shot(tmp_path, write_config):
    return OneShot(tmp_path, write_config)


def test_a_renamed_sensor_and_a_removed_min_leave_no_rule_behind(one_shot, write_config):
    grafana_ = GrafanaProvisioning()
    one_shot.render(config_text(DESK, ATTIC), NO_CHANNEL)
    grafana_.start(one_shot.volume)
    assert grafana_.rules == expected_rules(write_config, config_text(DESK, ATTIC))
    one_shot.render(config_text(DESK_NO_MIN, LOFT), NO_CHANNEL)
    grafana_.start(one_shot.volume)
    assert grafana_.rules == expected_rules(write_config, config_text(DESK_NO_MIN, LOFT))
    assert grafana.rule_uid("below", "desk") not in grafana_.rules
    assert grafana.rule_uid("silent", "attic") not in grafana_.rules


def test_a_sensor_that_stops_measuring_humidity_leaves_no_humidity_rule_behind(one_shot, write_config):
    grafana_ = GrafanaProvisioning()
    one_shot.render(config_text(HUMID_DESK), NO_CHANNEL)
    grafana_.start(one_shot.volume)
    assert {grafana.rule_uid("humidity-above", "desk"), grafana.rule_uid("humidity-below", "desk")} <= set(
        grafana_.rules)
    one_shot.render(config_text(DESK), NO_CHANNEL)  # the humidity sensor swapped for a temperature-only one
    grafana_.start(one_shot.volume)
    assert grafana_.rules == expected_rules(write_config, config_text(DESK))
    assert not any("humidity" in uid for uid in grafana_.rules)


def test_deletions_survive_renderings_between_two_grafana_starts_and_go_when_the_uid_comes_back(one_shot,
                                                                                                write_config):
    grafana_ = GrafanaProvisioning()
    one_shot.render(config_text(DESK, ATTIC), NO_CHANNEL)
    grafana_.start(one_shot.volume)
    one_shot.render(config_text(DESK), NO_CHANNEL)  # B: Grafana not restarted
    one_shot.render(config_text(DESK_NO_MIN), NO_CHANNEL)  # C
    grafana_.start(one_shot.volume)
    assert grafana_.rules == expected_rules(write_config, config_text(DESK_NO_MIN))
    # The attic comes back: its rules are provisioned again, no longer deleted.
    one_shot.render(config_text(DESK_NO_MIN, ATTIC), NO_CHANNEL)
    rules = yaml.safe_load((one_shot.volume / grafana.RULES_FILE).read_text())
    deleted = {entry["uid"] for entry in rules.get("deleteRules", [])}
    assert grafana.rule_uid("silent", "attic") not in deleted and grafana.rule_uid("below", "desk") in deleted
    grafana_.start(one_shot.volume)
    assert grafana_.rules == expected_rules(write_config, config_text(DESK_NO_MIN, ATTIC))


@pytest.mark.parametrize("steps", [
    [WEBHOOK, EMAIL],
    [WEBHOOK, NO_CHANNEL],
    [EMAIL, NO_CHANNEL],
    [EMAIL, WEBHOOK, EMAIL],
    [WEBHOOK, NO_CHANNEL, WEBHOOK, NO_CHANNEL],
], ids=lambda steps: "-".join(next(iter(step), "none").split("_")[-1].lower() for step in steps))
def test_notification_changes_leave_only_the_channel_configured_now(one_shot, steps):
    grafana_ = GrafanaProvisioning()
    for environ in steps:
        one_shot.render(config_text(DESK), environ)
        grafana_.start(one_shot.volume)
        channel = grafana.notification_channel(environ)
        if channel:
            assert grafana_.templog_receivers() == {f"templog-{channel}": channel}
            assert grafana_.route == grafana.CONTACT_POINT
        else:
            assert grafana.CONTACT_POINT not in grafana_.contact_points
            assert grafana_.route == DEFAULT_RECEIVER


def test_two_renderings_between_starts_still_delete_the_webhook(one_shot):
    grafana_ = GrafanaProvisioning()
    one_shot.render(config_text(DESK), WEBHOOK)
    grafana_.start(one_shot.volume)
    one_shot.render(config_text(DESK), NO_CHANNEL)
    one_shot.render(config_text(DESK), NO_CHANNEL)
    grafana_.start(one_shot.volume)
    assert grafana.CONTACT_POINT not in grafana_.contact_points and grafana_.route == DEFAULT_RECEIVER


def test_no_previous_means_no_deletions_and_no_channel_ever_means_no_notifications_file(one_shot):
    one_shot.render(config_text(DESK), NO_CHANNEL)
    one_shot.render(config_text(DESK), NO_CHANNEL)
    assert sorted(p.name for p in (one_shot.volume / "alerting").iterdir()) == [Path(grafana.RULES_FILE).name]
    assert "deleteRules" not in yaml.safe_load((one_shot.volume / grafana.RULES_FILE).read_text())


def test_the_stand_in_refuses_what_grafana_refuses(tmp_path):
    """Deleting a contact point still routed to fails in Grafana: the order the renderer relies on matters."""
    grafana_ = GrafanaProvisioning()
    (tmp_path / "alerting").mkdir()
    notifications = tmp_path / grafana.NOTIFICATIONS_FILE
    notifications.write_text(grafana.notifications_yaml("webhook"))
    grafana_.start(tmp_path)
    notifications.write_text(yaml.safe_dump({"apiVersion": 1, "deleteContactPoints": [{"uid": "templog-webhook"}]}))
    with pytest.raises(ProvisioningError):
        grafana_.start(tmp_path)
    notifications.write_text(yaml.safe_dump({"apiVersion": 1, "deleteRules": [{"uid": "templog-nowhere"}]}))
    grafana_.start(tmp_path)  # an unknown uid: nothing happens


@pytest.mark.parametrize("content", [b"groups: [unclosed\n", b"\xff\xfe not text", b"- a list\n",
                                     b"apiVersion: 1\ngroups: [{rules: [{uid: 'no spaces allowed'}]}]\n"],
                         ids=["yaml", "encoding", "shape", "uid"])
def test_a_corrupt_previous_file_warns_and_renders_without_its_deletions(tmp_path, write_config, content):
    config = write_config(config_text(DESK))
    previous, output = tmp_path / "previous", tmp_path / "output"
    (previous / "alerting").mkdir(parents=True)
    (previous / grafana.RULES_FILE).write_bytes(content)
    (previous / grafana.NOTIFICATIONS_FILE).write_text(grafana.notifications_yaml("webhook"))
    result = templog("grafana", "-c", str(config), "--output", str(output), "--previous", str(previous))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"WARNING {previous / grafana.RULES_FILE} is not usable" in result.stderr or \
        f"WARNING {previous / grafana.RULES_FILE} cannot be read" in result.stderr, result.stderr
    assert "rendering without the deletions it would give" in result.stderr
    rules = yaml.safe_load((output / grafana.RULES_FILE).read_text())
    assert "deleteRules" not in rules
    # The notifications file was readable: its deletions are still rendered.
    notifications = yaml.safe_load((output / grafana.NOTIFICATIONS_FILE).read_text())
    assert notifications == {"apiVersion": 1, "deleteContactPoints": [{"orgId": 1, "uid": "templog-webhook"}],
                             "resetPolicies": [1]}


def test_previous_may_be_the_output_directory_itself(tmp_path, write_config):
    """Outside Docker: `templog grafana --output /etc/grafana/provisioning --previous /etc/grafana/provisioning`."""
    directory = tmp_path / "provisioning"
    first = templog("grafana", "-c", str(write_config(config_text(DESK, ATTIC))), "--output", str(directory))
    assert first.returncode == 0, first.stderr
    second = templog("grafana", "-c", str(write_config(config_text(DESK))), "--output", str(directory),
                     "--previous", str(directory))
    assert second.returncode == 0 and "WARNING" not in second.stderr, second.stderr
    rules = yaml.safe_load((directory / grafana.RULES_FILE).read_text())
    assert {entry["uid"] for entry in rules["deleteRules"]} == {grafana.rule_uid("above", "attic"),
                                                                grafana.rule_uid("silent", "attic")}


# ---------------------------------------------------------------------------------------------------------------
# What the rules compare and group by


def dashboard_colour(value: float, steps: list[dict]) -> str:
    """The stat panel's colour: the last step whose value is <= the value (grafana/grafana@6970e12da461:
    packages/grafana-data/src/field/thresholds.ts getActiveThreshold: `value >= threshold.value`)."""
    active = steps[0]
    for step in steps:
        if step["value"] is None or value >= step["value"]:
            active = step
        else:
            break
    return active["color"]


def threshold_fires(rule: dict, value: float) -> bool:
    """Grafana's threshold expression on the reduced value (grafana/grafana@1f8fcc5f1f04:pkg/expr/threshold.go:
    gt >, gte >=, lt <, lte <=)."""
    node = next(item for item in rule["data"] if item["refId"] == rule["condition"])["model"]
    evaluator = node["conditions"][0]["evaluator"]
    limit = evaluator["params"][0]
    return {"gt": value > limit, "gte": value >= limit, "lt": value < limit, "lte": value <= limit}[evaluator["type"]]


def test_threshold_rules_fire_exactly_where_the_dashboard_turns_red_or_blue(write_config):
    config = load_config(write_config(config_text(DESK)), environ={})
    desk = config.sensors[0]
    rules = {rule["uid"]: rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]}
    above, below = rules[grafana.rule_uid("above", "desk")], rules[grafana.rule_uid("below", "desk")]
    thresholds = grafana.temperature_thresholds(desk)
    assert thresholds is not None, "desk has thresholds"
    steps = thresholds["steps"]
    for value in (15.9, 16, 16.1, 27.9, 28, 28.1):
        colour = dashboard_colour(value, steps)
        assert threshold_fires(above, value) == (colour == grafana.RED), value
        assert threshold_fires(below, value) == (colour == grafana.BLUE), value


def flux_of(rule: dict) -> str:
    return rule["data"][0]["model"]["query"]


def test_humidity_rules_fire_exactly_where_the_current_humidity_stat_turns_red_or_blue(write_config):
    config = load_config(write_config(config_text(HUMID_DESK)), environ={})
    rules = {rule["uid"]: rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]}
    above, below = rules[grafana.rule_uid("humidity-above", "desk")], rules[grafana.rule_uid("humidity-below", "desk")]
    current = {p["id"]: p for p in grafana.render_dashboard(config)["panels"]}[grafana.PANEL_HUMIDITY_CURRENT]
    (override,) = current["fieldConfig"]["overrides"]
    steps = override["properties"][0]["value"]["steps"]
    for value in (29.9, 30, 30.1, 69.9, 70, 70.1):
        colour = dashboard_colour(value, steps)
        assert threshold_fires(above, value) == (colour == grafana.RED), value
        assert threshold_fires(below, value) == (colour == grafana.BLUE), value
    for rule in (above, below):
        assert rule["panelId"] == grafana.PANEL_HUMIDITY_CURRENT and rule["dashboardUid"] == grafana.DASHBOARD_UID


def test_silent_rules_are_per_host_and_look_back_over_the_retention(write_config):
    config = load_config(write_config("influxdb: {url: 'http://localhost:8086', org: o, bucket: b, retention: 90d}\n"
                                      + config_text(DESK)), environ={})
    rules = {rule["uid"]: rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]}
    silent, collector = rules[grafana.rule_uid("silent", "desk")], rules[grafana.rule_uid("collector-silent")]
    assert 'group(columns: ["sensor", "host"])' in flux_of(silent)
    assert 'keep(columns: ["_time", "_value", "sensor", "host"])' in flux_of(silent)
    assert 'group(columns: ["host"])' in flux_of(collector)
    for rule in (silent, collector):
        assert rule["data"][0]["relativeTimeRange"]["from"] == 90 * 86400  # lasting: the whole retention
        assert rule["noDataState"] == "Alerting"
        assert "{{ $labels.host }}" in rule["annotations"]["summary"]
        assert "Alerting > Silences" in rule["annotations"]["description"]
    assert "cannot deliver" in collector["annotations"]["summary"]
    assert "outbox" in collector["annotations"]["description"]


def test_threshold_rules_take_the_latest_reading_by_time_per_host_across_the_sensors_series(write_config):
    config = load_config(write_config(config_text(DESK)), environ={})
    rules = {rule["uid"]: rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]}
    rule = rules[grafana.rule_uid("above", "desk")]
    flux = flux_of(rule)
    # One row per host, as the Current temperature panel: the last of each series, then the latest of those by time
    # (not the last table's by position).
    assert flux.index("|> last()") < flux.index('|> group(columns: ["sensor", "host"])') < \
        flux.index('|> sort(columns: ["_time"])') < flux.rindex("|> last()")
    assert 'keep(columns: ["_time", "_value", "sensor", "host"])' in flux
    assert "{{ $labels.host }}" in rule["annotations"]["summary"]


def test_humidity_rules_take_the_latest_humidity_as_the_temperature_rules_take_the_latest_temperature(write_config):
    """The same query but for the field: the latest humidity by time of each host's series of the sensor, over the
    same window, judged after the same reduction, for the same time, with NoData the silent rule's business."""
    config = load_config(write_config(config_text(HUMID_DESK)), environ={})
    rules = {rule["uid"]: rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]}
    for kind in ("above", "below"):
        temperature = rules[grafana.rule_uid(kind, "desk")]
        humidity = rules[grafana.rule_uid(f"humidity-{kind}", "desk")]
        assert flux_of(humidity) == flux_of(temperature).replace('r._field == "celsius"', 'r._field == "humidity"')
        assert 'r._field == "humidity"' in flux_of(humidity)
        assert humidity["data"][0]["relativeTimeRange"] == temperature["data"][0]["relativeTimeRange"]
        assert humidity["data"][1:] != temperature["data"][1:]  # its own limit...
        assert [node["model"]["type"] for node in humidity["data"][1:]] == ["reduce", "threshold"]
        assert humidity["data"][1] == temperature["data"][1]  # ...after the same reduction
        for key in ("for", "noDataState", "execErrState", "labels", "condition"):
            assert humidity[key] == temperature[key], key
        summary = humidity["annotations"]["summary"]
        assert "%RH" in summary and "{{ $labels.host }}" in summary
        assert f"`humidity_{'max' if kind == 'above' else 'min'}`" in humidity["annotations"]["description"]


def test_no_data_annotations_show_no_number():
    """Under NoData Grafana gives the template no value for B or NaN (grafana/grafana@6d0cddf7fee0
    pkg/services/ngalert/state/template/template.go NewValues), and `$values.B.Value` of a missing key is 0: the
    text only prints a value present and equal to itself."""
    text = _last_seen_text("B", "reading", 86400)
    assert "$values.B" not in text
    assert '(eq $ref "B") (eq $v.Value $v.Value)' in text
    assert text.count("{{ range") == 1 and text.count("{{ end }}") == 2


def test_outbox_rule_judges_the_latest_fresh_depth_for_fifteen_minutes(write_config):
    config = load_config(write_config(config_text(DESK) + "  - {name: x, type: simulated}\n"), environ={})
    rule = next(rule for rule in grafana.render_alert_rules(config)["groups"][0]["rules"]
                if rule["uid"] == grafana.rule_uid("outbox-growing"))
    assert rule["for"] == "15m" and rule["noDataState"] == "OK"
    assert rule["data"][0]["relativeTimeRange"]["from"] == grafana.outbox_fresh_s(config.collector.health_interval)
    assert 'group(columns: ["host"])' in flux_of(rule) and '"outbox_depth"' in flux_of(rule)
    assert threshold_fires(rule, grafana.OUTBOX_ALERT_DEPTH + 1) and not threshold_fires(rule,
                                                                                        grafana.OUTBOX_ALERT_DEPTH)


def test_rendered_deletions_keep_the_alerting_schema():
    previous = grafana.Previous(frozenset({"templog-silent-gone-12345678"}), frozenset({"templog-webhook"}), True)
    config = load_config(Path(__file__).resolve().parent.parent / "config.yaml", environ={})
    rules = grafana.render_alert_rules(config, previous)
    assert rules["deleteRules"] == [{"orgId": 1, "uid": "templog-silent-gone-12345678"}]
    assert schema_errors("alerting-provisioning.schema.json", rules) == []
    notifications = grafana.render_notifications("email", previous)
    assert notifications is not None, "a channel: something to provision"
    assert notifications["deleteContactPoints"] == [{"orgId": 1, "uid": "templog-webhook"}]
    assert "resetPolicies" not in notifications  # a channel now: its own tree replaces the old one
    assert schema_errors("alerting-provisioning.schema.json", notifications) == []
    assert json.dumps(grafana.render_notifications(None, grafana.NOTHING_BEFORE)) == "null"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(["apiVersion", "groups", "rules", "uid", "deleteRules",
                                                              "contactPoints", "receivers", "deleteContactPoints",
                                                              "policies", "resetPolicies", "x"]), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values, raw=st.binary(max_size=60), use_raw=st.booleans())
def test_any_previous_file_gives_uids_or_a_warning(tmp_path, document, raw, use_raw):
    (tmp_path / "alerting").mkdir(exist_ok=True)
    content = raw if use_raw else yaml.safe_dump({"apiVersion": 1, **document} if isinstance(document, dict)
                                                 else document).encode()
    for relative in (grafana.RULES_FILE, grafana.NOTIFICATIONS_FILE):
        (tmp_path / relative).write_bytes(content)
    previous, warnings = grafana.read_previous(tmp_path)
    assert len(warnings) <= 2 and all("rendering without the deletions" in warning for warning in warnings)
    for uid in previous.rule_uids | previous.receiver_uids:
        assert grafana.UID_PATTERN.fullmatch(uid)
    grafana.render_alert_rules(load_config(Path(__file__).resolve().parent.parent / "config.yaml", environ={}),
                               previous)

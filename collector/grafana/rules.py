"""The alert rules: at or above max, below min (of temperature, and of humidity where a sensor measures it) and
silent per sensor and host, plus each collector's health per host (no health point for a while, an outbox
backlog). Each rule is written once here; its query node, and how it tells silence, come from the dialect of the
config's InfluxDB API (rule_dialects.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.config_types import Config, SensorConfig
from collector.durations import format_duration
from collector.grafana.common import (
    BREACH_FOR,
    EVALUATION_INTERVAL_S,
    EXPRESSION_DATASOURCE_UID,
    FOLDER,
    ORG_ID,
    OUTBOX_ALERT_DEPTH,
    OUTBOX_ALERT_FOR,
    PANEL_AGE,
    PANEL_CURRENT,
    PANEL_HEALTH_AGE,
    PANEL_HUMIDITY_CURRENT,
    PANEL_OUTBOX,
    RULE_GROUP,
    number,
    outbox_fresh_s,
    raw_lookback_s,
    retention_s,
    silence_s,
)
from collector.grafana.literals import grafana_literal, rule_uid
from collector.grafana.previous import NOTHING_BEFORE, Previous
from collector.grafana.rule_dialects import RuleDialect, rule_dialect
from collector.lineprotocol import FIELD, HEALTH_MEASUREMENT, HUMIDITY


def _query_node(dialect: RuleDialect, ref: str, query: str, seconds: float) -> dict:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": int(seconds), "to": 0},
        "datasourceUid": dialect.datasource_uid,
        "model": {"refId": ref, **dialect.model(query)},
    }


def _expression_node(ref: str, model: dict) -> dict:
    return {
        "refId": ref,
        "datasourceUid": EXPRESSION_DATASOURCE_UID,
        "model": {"refId": ref, "datasource": {"type": EXPRESSION_DATASOURCE_UID, "uid": EXPRESSION_DATASOURCE_UID},
                  **model},
    }


def _reduce(ref: str, of: str) -> dict:
    return _expression_node(ref, {"type": "reduce", "expression": of, "reducer": "last",
                                  "settings": {"mode": "dropNN"}})


def _threshold(ref: str, of: str, comparison: str, value: float) -> dict:
    return _expression_node(ref, {"type": "threshold", "expression": of,
                                  "conditions": [{"evaluator": {"type": comparison, "params": [number(value)]}}]})


def _rule(dialect: RuleDialect, uid: str, title: str, condition: str, data: list[dict], *, for_: str, no_data: str,
          labels: dict, annotations: dict, panel_id: int) -> dict:
    return {
        "uid": uid,
        "title": grafana_literal(title),
        "condition": condition,
        "data": data,
        "dashboardUid": dialect.dashboard_uid,
        "panelId": panel_id,
        "noDataState": no_data,
        "execErrState": "Error",
        "for": for_,
        "annotations": annotations,
        "labels": {key: grafana_literal(value) for key, value in labels.items()},
        "isPaused": False,
    }


def _last_seen_text(ref: str, what: str, lookback_s: float) -> str:
    """An annotation's "Last <what> N ago.", blank when `ref` has no number (NoData: Grafana gives no value for the
    ref, or NaN: grafana/grafana@9ff3317d:pkg/services/ngalert/state/template/template.go NewValues). A missing map
    key in a Go template is a zero Value, so `range` over what is there, and NaN is the one value not equal to
    itself."""
    return (f'{{{{ range $ref, $v := $values }}}}{{{{ if and (eq $ref "{ref}") (eq $v.Value $v.Value) }}}}'
            f"Last {what} {{{{ humanizeDuration $v.Value }}}} ago.{{{{ end }}}}{{{{ end }}}}"
            f" (Blank: none in the last {format_duration(lookback_s)}.)")


@dataclass(frozen=True)
class _Bounded:
    """A quantity with alert thresholds: its field, unit, the config keys of its thresholds, the rule uids' kind
    prefix and the words for it in a title, and the stat panel that shows it."""

    field: str
    unit: str
    low_key: str
    high_key: str
    kind: str  # "" or "humidity-": rule_uid("above"/"below" after it)
    named: str  # "" or "humidity ": in the title, before "at or above"
    panel_id: int

    def limit(self, sensor: SensorConfig, above: bool) -> float | None:
        return getattr(sensor, self.high_key if above else self.low_key)


TEMPERATURE = _Bounded(FIELD, "°C", "min", "max", "", "", PANEL_CURRENT)
HUMIDITY_BOUNDS = _Bounded(HUMIDITY, "%RH", "humidity_min", "humidity_max", "humidity-", "humidity ",
                           PANEL_HUMIDITY_CURRENT)


def _last_seen(dialect_gives_age: bool, ref: str, what: str, lookback_s: float, panel: str) -> str:
    """The annotation's sentence on when the last point came: its age where the dialect's value is one, else where
    the dashboard shows it (InfluxQL computes no age)."""
    if dialect_gives_age:
        return _last_seen_text(ref, what, lookback_s)
    return f'The dashboard\'s "{panel}" panel shows when the last {what} came.'


def _threshold_rule(dialect: RuleDialect, config: Config, sensor: SensorConfig, kind: str,
                    bounded: _Bounded = TEMPERATURE) -> dict:
    """Above max (`>= max`) or below min (`< min`): the comparisons the dashboard colours by (red from max up, blue
    below min: band_thresholds), on the latest reading by time of each host's series of the sensor, as the
    Current temperature (or humidity) panel shows them (a tag edit splits a series; a host renamed drops out within
    the window)."""
    above = kind == "above"
    limit = bounded.limit(sensor, above)
    assert limit is not None
    window = silence_s(sensor.interval)
    query = dialect.latest(config, sensor, bounded.field)
    key = bounded.high_key if above else bounded.low_key
    word = "at or above its maximum" if above else "below its minimum"
    what = f" {bounded.named.strip()}" if bounded.named else ""
    unit = bounded.unit
    return _rule(
        dialect,
        rule_uid(bounded.kind + kind, sensor.name),
        f"{sensor.name}: {bounded.named}{'at or above' if above else 'below'} {number(limit)} {unit}",
        "C",
        [_query_node(dialect, "A", query, window), _reduce("B", "A"),
         _threshold("C", "B", "gte" if above else "lt", limit)],
        for_=BREACH_FOR, no_data="OK",  # silence is the silent rule's business
        labels={"templog": "threshold", "sensor": sensor.name},
        annotations={
            "summary": f"{{{{ $labels.sensor }}}} on {{{{ $labels.host }}}} is {word}{what} of {number(limit)} {unit}",
            "description": (f"The latest reading, {{{{ humanize $values.B.Value }}}} {unit}, has been {word} "
                            f"({number(limit)} {unit}, `{key}` in config.yaml) for {BREACH_FOR}."),
        },
        panel_id=bounded.panel_id,
    )


def _retired_note(dialect: RuleDialect, config: Config, lookback_s: float) -> str:
    """What a host retired on purpose does to the rule: it keeps firing while its last point is in the look-back.
    Where the look-back is shorter than the retention (api v3: raw_lookback_s), a host silent for longer drops out of
    the answer and Grafana resolves its alert once the series is missing (grafana/grafana@07af29d5b78d, not the
    pinned v12.3.1: pkg/services/ngalert/state/manager.go processMissingSeriesStates, StateReasonMissingSeries);
    a rule whose answer is empty (silent on every host) is NoData, which noDataState Alerting applies to every
    instance it has (setNextStateForRule, setNextStateForAll) or, with none, to one of the rule's own labels."""
    note = ("A collector retired on purpose: silence host={{ $labels.host }} in Grafana (Alerting > Silences)"
            f"{dialect.delete_points}; ")
    lookback = format_duration(lookback_s)
    if lookback_s >= retention_s(config):
        return note + (f"this rule looks back over the {dialect.store}'s retention ({lookback}), so it keeps firing "
                       "until its last point is gone.")
    return note + (f"this rule looks back {lookback} only (InfluxDB 3 refuses a query over more than "
                   "--query-file-limit files per table, by default 72 h of raw data: README \"InfluxDB 3\"), so a "
                   f"host silent for longer than {lookback} drops out of it and its alert resolves (Grafana: "
                   "MissingSeries) while the other hosts answer; silent on every host, it keeps alerting (no data).")


def _silent_rule(dialect: RuleDialect, config: Config, sensor: SensorConfig) -> dict:
    """Per (sensor, host): with two collectors sharing a sensor name, the live one does not hide the dead one. It
    looks back over the bucket's retention (as the dashboard's age panel does), so it lasts as long as the data; on
    api v3 over raw_lookback_s."""
    after = silence_s(sensor.interval)
    lookback = raw_lookback_s(config)
    silence = dialect.sensor_silent(config, sensor, after)
    return _rule(
        dialect,
        rule_uid("silent", sensor.name),
        f"{sensor.name}: no reading for {format_duration(after)}",
        "C",
        [_query_node(dialect, "A", silence.query, lookback), _reduce("B", "A"),
         _threshold("C", "B", silence.comparison, silence.limit)],
        for_="0s", no_data="Alerting",  # no reading at all in the lookback: silent too
        labels={"templog": "silent", "sensor": sensor.name},
        annotations={
            "summary": (f"{{{{ $labels.sensor }}}} on {{{{ $labels.host }}}} has sent no reading for "
                        f"{format_duration(after)}"),
            "description": (f"Its interval is {format_duration(sensor.interval)}. "
                            f"{_last_seen(silence.is_age, 'B', 'reading', lookback, 'Last reading')} "
                            "Check the sensor with `templog read` and the collector with `templog health`. A sensor "
                            "removed from config.yaml loses this rule with the next rendering (`docker compose up`). "
                            + _retired_note(dialect, config, lookback)),
        },
        panel_id=PANEL_AGE,
    )


def _collector_silent_rule(dialect: RuleDialect, config: Config) -> dict:
    """Per host and lasting (the retention as look-back; on api v3 raw_lookback_s). During a total outage between a
    collector and InfluxDB its health points wait in its outbox with the readings: absence is the only signal, and
    this rule fires."""
    after = silence_s(config.collector.health_interval)
    lookback = raw_lookback_s(config)
    silence = dialect.collector_silent(config, after)
    return _rule(
        dialect,
        rule_uid("collector-silent"),
        f"Collector unhealthy: no health point for {format_duration(after)}",
        "C",
        [_query_node(dialect, "A", silence.query, lookback), _reduce("B", "A"),
         _threshold("C", "B", silence.comparison, silence.limit)],
        for_="0s", no_data="Alerting",
        labels={"templog": "collector"},
        annotations={
            "summary": "The templog collector on {{ $labels.host }} is down or cannot deliver to InfluxDB: no health "
                       f"point for {format_duration(after)}",
            "description": (f"It writes one every {format_duration(config.collector.health_interval)} (measurement "
                            f"`{HEALTH_MEASUREMENT}`). Either it is stopped or stuck, or it cannot reach InfluxDB "
                            "(network, token, bucket): then its readings and health points wait in its outbox and "
                            "arrive once InfluxDB takes writes again. See `templog health` and its log. "
                            + _last_seen(silence.is_age, "B", "health point", lookback, "Last health point")
                            + " " + _retired_note(dialect, config, lookback)),
        },
        panel_id=PANEL_HEALTH_AGE,
    )


def _outbox_backlog_rule(dialect: RuleDialect, config: Config) -> dict:
    """The latest health point per host by time, if fresh, above OUTBOX_ALERT_DEPTH for OUTBOX_ALERT_FOR. The
    collector sends its newest health point ahead of a waiting backlog (delivery's live lane), so whenever InfluxDB
    takes anything Grafana sees the current depth; a quick drain after an outage stays under OUTBOX_ALERT_FOR."""
    fresh = outbox_fresh_s(config.collector.health_interval)
    return _rule(
        dialect,
        rule_uid("outbox-growing"),  # the uid it always had: no deletion needed on upgrade
        f"Collector unhealthy: outbox above {OUTBOX_ALERT_DEPTH} points for {OUTBOX_ALERT_FOR}",
        "C",
        [_query_node(dialect, "A", dialect.outbox_depth(config), fresh), _reduce("B", "A"),
         _threshold("C", "B", "gt", OUTBOX_ALERT_DEPTH)],
        for_=OUTBOX_ALERT_FOR, no_data="OK",  # no fresh health point: the collector-silent rule's business
        labels={"templog": "collector"},
        annotations={
            "summary": "The templog outbox on {{ $labels.host }} holds {{ $values.B.Value }} points",
            "description": (f"Above {OUTBOX_ALERT_DEPTH} points for {OUTBOX_ALERT_FOR} by its latest health "
                            f"point (at most {format_duration(fresh)} old). InfluxDB takes the collector's writes too "
                            "slowly or refuses most of them (throttling, a bad token, a full disk?). Readings wait "
                            "in the outbox and are delivered in order; see `templog check`."),
        },
        panel_id=PANEL_OUTBOX,
    )


def render_alert_rules(config: Config, previous: Previous | None = None) -> dict:
    """Grafana alerting provisioning (apiVersion 1): one rule group, every rule's uid stable per sensor name, its
    queries in the dialect of the config's InfluxDB API (rule_dialect: the same uids whatever the dialect, so a
    change of API updates each rule in place); with `previous` (what was provisioned before), `deleteRules` for each
    earlier rule this config no longer has."""
    dialect = rule_dialect(config)
    rules = []
    for sensor in config.sensors:
        if sensor.max is not None:
            rules.append(_threshold_rule(dialect, config, sensor, "above"))
        if sensor.min is not None:
            rules.append(_threshold_rule(dialect, config, sensor, "below"))
        if sensor.measures_humidity and sensor.humidity_max is not None:
            rules.append(_threshold_rule(dialect, config, sensor, "above", HUMIDITY_BOUNDS))
        if sensor.measures_humidity and sensor.humidity_min is not None:
            rules.append(_threshold_rule(dialect, config, sensor, "below", HUMIDITY_BOUNDS))
        rules.append(_silent_rule(dialect, config, sensor))
    rules.append(_collector_silent_rule(dialect, config))
    rules.append(_outbox_backlog_rule(dialect, config))
    document: dict[str, Any] = {
        "apiVersion": 1,
        "groups": [{
            "orgId": ORG_ID,
            "name": RULE_GROUP,
            "folder": FOLDER,
            "interval": format_duration(EVALUATION_INTERVAL_S),
            "rules": rules,
        }],
    }
    gone = sorted((previous or NOTHING_BEFORE).rule_uids - {rule["uid"] for rule in rules})
    if gone:
        document["deleteRules"] = [{"orgId": ORG_ID, "uid": uid} for uid in gone]
    return document



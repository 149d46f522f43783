"""The dashboards' building blocks: stat and time series panels, their grid, thresholds and overrides, the
dashboard frame and its sensor variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.config_types import Config, SensorConfig
from collector.grafana.common import (
    ON_HOST,
    OUTBOX_ALERT_DEPTH,
    PANEL_HEALTH_ROW,
    PANEL_LATENCY,
    PANEL_OUTBOX,
    PANEL_OUTBOX_NOW,
    PANEL_PROBLEMS,
    SCHEMA_VERSION,
    SILENT_INTERVALS,
    number,
    silence_s,
)
from collector.grafana.literals import grafana_regex_escape
from collector.lineprotocol import HEALTH_MEASUREMENT

PROBLEM_COUNTERS = ("reads_failed", "readings_refused", "ticks_skipped", "write_failures", "points_rejected",
                    "outbox_dropped")

CURRENT_DESCRIPTION = ("The latest reading in the time range per sensor and host (named {naming}); blue below the "
                       "sensor's min, red from its max (config.yaml).")
PROBLEMS_DESCRIPTION = "Failed and refused reads, skipped ticks, write failures, rejected and dropped points."
GREEN, BLUE, ORANGE, RED = "green", "blue", "orange", "red"


def threshold_steps(*steps: tuple[str, float | None]) -> dict:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in steps]}


def band_thresholds(low: float | None, high: float | None) -> dict | None:
    """Stat colours for a current value against a sensor's thresholds: blue below `low`, green within, red from
    `high` up (the comparisons its alert rules make); None without either."""
    if low is None and high is None:
        return None
    steps: list[tuple[str, float | None]] = [(BLUE if low is not None else GREEN, None)]
    if low is not None:
        steps.append((GREEN, number(low)))
    if high is not None:
        steps.append((RED, number(high)))
    return threshold_steps(*steps)


def temperature_thresholds(sensor: SensorConfig) -> dict | None:
    """Stat colours for a sensor's current temperature: blue below min, green within, red from max up."""
    return band_thresholds(sensor.min, sensor.max)


def humidity_thresholds(sensor: SensorConfig) -> dict | None:
    """Stat colours for a sensor's current humidity: blue below humidity_min, green within, red from humidity_max."""
    return band_thresholds(sensor.humidity_min, sensor.humidity_max) if sensor.measures_humidity else None


def problem_counters(config: Config) -> tuple[str, ...]:
    """The counters the problems panel shows: humidity's refusals too where a sensor measures it."""
    return PROBLEM_COUNTERS + (("humidity_refused",) if any(s.measures_humidity for s in config.sensors) else ())


def age_thresholds(interval_s: float) -> dict:
    """Colours for the age of the last reading: orange after missed intervals, red when the silent rule fires."""
    late, silent = SILENT_INTERVALS * interval_s, silence_s(interval_s)
    steps: list[tuple[str, float | None]] = [(GREEN, None)]
    if late < silent:
        steps.append((ORANGE, number(late)))
    steps.append((RED, number(silent)))
    return threshold_steps(*steps)


def overrides(per_sensor: dict[str, dict]) -> list[dict]:
    """Thresholds per stat, matched to a sensor's name or "<sensor> on <host>". Grafana anchors a byRegexp pattern
    (stringToJsRegex: `^pattern$`) and applies overrides in order, so longer names come later: "a on b", a sensor's
    own name, wins over sensor "a" on host "b"."""
    return [{"matcher": {"id": "byRegexp", "options": grafana_regex_escape(name) + f"({ON_HOST}.+)?"},
             "properties": [{"id": "thresholds", "value": thresholds}]}
            for name, thresholds in sorted(per_sensor.items(), key=lambda item: len(item[0]))]


def stat(panel_id: int, title: str, grid: tuple[int, int, int, int], datasource: dict, targets: list[dict], *,
          unit: str, description: str, thresholds: dict | None = None, overrides: list[dict] | None = None,
          decimals: int | None = None, fields: str = "", color_mode: str = "background",
          display_name: str | None = None) -> dict:
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "thresholds"},
                                "thresholds": thresholds or threshold_steps((GREEN, None))}
    if decimals is not None:
        defaults["decimals"] = decimals
    if display_name:
        defaults["displayName"] = display_name
    return {
        "id": panel_id, "type": "stat", "title": title, "description": description,
        "gridPos": _grid(grid), "datasource": datasource, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": fields, "values": False},
            "colorMode": color_mode, "graphMode": "none", "justifyMode": "auto", "orientation": "auto",
            "textMode": "value_and_name", "wideLayout": True, "showPercentChange": False,
            "percentChangeColorMode": "standard",
        },
    }


def timeseries(panel_id: int, title: str, grid: tuple[int, int, int, int], datasource: dict, targets: list[dict], *,
                unit: str, description: str, display_name: str | None = None, overrides: list[dict] | None = None,
                interval: str | None = None, time_from: str | None = None, draw: str = "line") -> dict:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 0, "pointSize": 4, "showPoints": "never",
                   "spanNulls": False, "lineInterpolation": "linear", "axisPlacement": "auto",
                   "stacking": {"mode": "none", "group": "A"}},
    }
    if display_name:
        defaults["displayName"] = display_name
    panel = {
        "id": panel_id, "type": "timeseries", "title": title, "description": description,
        "gridPos": _grid(grid), "datasource": datasource, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                    "tooltip": {"mode": "multi", "sort": "none"}},
    }
    if interval:
        panel["interval"] = interval
    if time_from:
        panel["timeFrom"] = time_from
    return panel


def _grid(grid: tuple[int, int, int, int]) -> dict:
    x, y, w, h = grid
    return {"h": h, "w": w, "x": x, "y": y}


MIN_MAX_DASHED = [{"matcher": {"id": "byRegexp", "options": ".* (min|max)$"},
                   "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]


@dataclass(frozen=True)
class DashboardIdentity:
    """What tells the Flux dashboard and its InfluxQL twin apart (their query texts come from collector.query)."""

    uid: str
    title: str
    datasource: dict


def dashboard(identity: DashboardIdentity, description: str, variable: dict, panels: list[dict]) -> dict:
    return {
        "uid": identity.uid,
        "title": identity.title,
        "description": description,
        "tags": ["templog"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [variable]},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [],
        "panels": panels,
    }


def sensor_variable(identity: DashboardIdentity, query: str) -> dict:
    return {
        "name": "sensor", "label": "Sensor", "type": "query", "datasource": identity.datasource,
        "query": query,
        "refresh": 1, "multi": True, "includeAll": True, "sort": 1, "regex": "", "hide": 0, "options": [],
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def row(panel_id: int, title: str, y: int) -> dict:
    """A row header at height `y`, open: the panels below it are the dashboard's own (its `panels` stays empty)."""
    return {"id": panel_id, "type": "row", "title": title, "collapsed": False, "gridPos": _grid((0, y, 24, 1)),
            "panels": []}


def health_row(y: int) -> dict:
    return row(PANEL_HEALTH_ROW, f"Collector health (measurement {HEALTH_MEASUREMENT})", y)


def health_panels(y: int, datasource: dict, last_health: dict, outbox_now: dict, outbox: dict, problems: dict,
                  latency: dict, labelled: bool) -> list[dict]:
    """The collector health row at height `y`: the `last_health` panel (each dashboard draws it its own way), then
    the outbox now and over time, the problems and the read latency, from the dashboard's targets. `labelled`: the
    series are named from their labels (Flux); InfluxQL's are named by each target's alias."""
    def named(display_name: str) -> str | None:
        return display_name if labelled else None

    return [
        health_row(y),
        last_health,
        stat(PANEL_OUTBOX_NOW, "Outbox", (6, y + 1, 6, 5), datasource, [outbox_now], unit="none", decimals=0,
             thresholds=threshold_steps((GREEN, None), (ORANGE, 1), (RED, OUTBOX_ALERT_DEPTH)),
             description="Points waiting in the collector's outbox for InfluxDB."),
        timeseries(PANEL_OUTBOX, "Outbox depth", (12, y + 1, 12, 5), datasource, [outbox], unit="none",
                   display_name=named("${__field.labels.host}"),
                   description="Points waiting for delivery, per collector."),
        timeseries(PANEL_PROBLEMS, "Problems per window", (0, y + 6, 12, 8), datasource, [problems], unit="none",
                   draw="bars", display_name=named("${__field.labels.host} ${__field.labels.counter}"),
                   description=PROBLEMS_DESCRIPTION),
        timeseries(PANEL_LATENCY, "Read latency (mean)", (12, y + 6, 12, 8), datasource, [latency], unit="ms",
                   display_name=named("${__field.labels.sensor}"),
                   description="Mean time one read took, per sensor."),
    ]


def config_overrides(config: Config) -> tuple[list[dict], list[dict]]:
    current = {s.name: t for s in config.sensors if (t := temperature_thresholds(s)) is not None}
    age = {s.name: age_thresholds(s.interval) for s in config.sensors}
    return overrides(current), overrides(age)


def humidity_overrides(config: Config) -> list[dict]:
    return overrides({s.name: t for s in config.sensors if (t := humidity_thresholds(s)) is not None})



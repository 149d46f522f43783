"""The dashboards' humidity row, present when a sensor measures humidity: current humidity (coloured by each
sensor's humidity_min/humidity_max) and dew point, both per window (mean, min, max) and over the long range. Each
dashboard gives its own query targets; the layout and wording are shared here."""

from __future__ import annotations

from dataclasses import dataclass

from collector.grafana.common import (
    PANEL_DEWPOINT_CURRENT,
    PANEL_DEWPOINT_LONG_RANGE,
    PANEL_DEWPOINT_SERIES,
    PANEL_HUMIDITY_CURRENT,
    PANEL_HUMIDITY_LONG_RANGE,
    PANEL_HUMIDITY_ROW,
    PANEL_HUMIDITY_SERIES,
)
from collector.grafana.panels import MIN_MAX_DASHED, row, stat, timeseries

HUMIDITY_ROWS = 26  # the height of the row and its panels: what the panels below it move down by
HUMIDITY_UNIT = "humidity"  # Grafana's "Humidity (%H)" (packages/grafana-data/src/valueFormats/categories.ts)
HUMIDITY_DESCRIPTION = ("The latest relative humidity in the time range per sensor and host (named {naming}); blue "
                        "below the sensor's humidity_min, red from its humidity_max (config.yaml).")
DEWPOINT_DESCRIPTION = ("The latest dew point in the time range per sensor and host (named {naming}): the temperature "
                        "at which the air would condense on a surface.")


@dataclass(frozen=True)
class HumidityTargets:
    """One dashboard's queries for the humidity row (each a target of its data source)."""

    humidity_now: dict
    dewpoint_now: dict
    humidity_windows: dict
    dewpoint_windows: dict
    humidity_long_range: dict
    dewpoint_long_range: dict


@dataclass(frozen=True)
class LongRange:
    """How a dashboard's long-range panels read: where from (the title's parenthesis), how far back, in words, and
    through which data source when not the dashboard's own."""

    source: str
    time_from: str
    description: str
    datasource: dict | None = None


def humidity_panels(y: int, datasource: dict, targets: HumidityTargets, *, naming: str, current_overrides: list[dict],
                    series_name: str | None, long_range: LongRange) -> list[dict]:
    """The humidity row at height `y` (HUMIDITY_ROWS high). `series_name`: the time series' display name where
    the series are named from their labels (Flux); None where each target's alias names them (InfluxQL)."""
    long_range_source = long_range.datasource or datasource
    return [
        row(PANEL_HUMIDITY_ROW, "Humidity and dew point", y),
        stat(PANEL_HUMIDITY_CURRENT, "Current humidity", (0, y + 1, 12, 6), datasource, [targets.humidity_now],
             unit=HUMIDITY_UNIT, decimals=0, overrides=current_overrides,
             description=HUMIDITY_DESCRIPTION.format(naming=naming)),
        stat(PANEL_DEWPOINT_CURRENT, "Current dew point", (12, y + 1, 12, 6), datasource, [targets.dewpoint_now],
             unit="celsius", decimals=1, description=DEWPOINT_DESCRIPTION.format(naming=naming)),
        timeseries(PANEL_HUMIDITY_SERIES, "Humidity: mean, min and max per window", (0, y + 7, 12, 10), datasource,
                   [targets.humidity_windows], unit=HUMIDITY_UNIT, display_name=series_name, overrides=MIN_MAX_DASHED,
                   description="Relative humidity, aggregated per window."),
        timeseries(PANEL_DEWPOINT_SERIES, "Dew point: mean, min and max per window", (12, y + 7, 12, 10), datasource,
                   [targets.dewpoint_windows], unit="celsius", display_name=series_name, overrides=MIN_MAX_DASHED,
                   description="Dew point, aggregated per window."),
        timeseries(PANEL_HUMIDITY_LONG_RANGE, f"Long range: hourly humidity ({long_range.source})",
                   (0, y + 17, 12, 9), long_range_source, [targets.humidity_long_range], unit=HUMIDITY_UNIT,
                   display_name=series_name, overrides=MIN_MAX_DASHED, interval="1h", time_from=long_range.time_from,
                   description=long_range.description),
        timeseries(PANEL_DEWPOINT_LONG_RANGE, f"Long range: hourly dew point ({long_range.source})",
                   (12, y + 17, 12, 9), long_range_source, [targets.dewpoint_long_range], unit="celsius",
                   display_name=series_name, overrides=MIN_MAX_DASHED, interval="1h", time_from=long_range.time_from,
                   description=long_range.description),
    ]

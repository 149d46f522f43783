"""The query dialects InfluxDB speaks, one module each: `flux` (api v2), `influxql` (api v1), `sql` (api v3). Every
query text templog sends or renders (`templog history`, the Grafana rules and dashboards) is written once, here.

Each dialect module gives, in its own syntax: `string(text)`, a string literal that reads back as `text`; the
selection of the readings (`readings`); and `history(query)`, the text that answers a `HistoryQuery` with rows in
time order, then sensor. Pure text: building a query needs no client.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from collector.durations import format_duration
from collector.lineprotocol import FIELD, READING_FIELDS
from collector.ticks import rfc3339

Row = tuple  # (time_ns, sensor, *values): one answer to a HistoryQuery

AGGREGATES = ("mean", "min", "max")
# InfluxDB stores times as int64 nanoseconds (influxdata/influxdb@v1.6.6 models/time.go: MaxNanoTime is
# MaxInt64 - 1), so a range can end no later than just after that; Flux's times are the same int64.
LAST_STOP_NS = 2**63 - 1


@dataclass(frozen=True)
class HistoryQuery:
    """Readings from `start_ns` to `stop_ns`, of `sensors` (none: all), of one `field` of the reading (celsius,
    humidity or dewpoint: readings without it give no row), raw or aggregated per window of `every_s` seconds
    (aligned to the Unix epoch, each stamped with its start)."""

    start_ns: int
    stop_ns: int
    sensors: tuple[str, ...] = ()
    every_s: float = 0.0  # 0: raw readings
    field: str = FIELD

    def __post_init__(self) -> None:
        if self.field not in READING_FIELDS:  # it goes into the query texts as it is
            raise ValueError(f"no field {self.field!r} in a reading (its fields: {', '.join(READING_FIELDS)})")

    @property
    def columns(self) -> tuple[str, ...]:
        """The value columns of each row, after time and sensor."""
        return AGGREGATES if self.every_s else (self.field,)

    def describe(self) -> str:
        """What was asked for, in words, for the lines that report on the query."""
        which = "sensor(s) " + ", ".join(self.sensors) if self.sensors else "all sensors"
        if self.field != FIELD:
            which = f"{self.field} of {which}"
        every = f", mean/min/max per {format_duration(self.every_s)}" if self.every_s else ""
        return f"{which} from {rfc3339(self.start_ns)} to {rfc3339(self.stop_ns)}{every}"


def decimal(value: float) -> str:
    """A finite number as a plain decimal, without an exponent (`1e-05` is no number to InfluxQL's scanner), read
    back as the same float by every dialect."""
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


def beyond(field: str, low: float | None, high: float | None) -> str:
    """The condition of a reading outside its thresholds, `field < low OR field > high` (a None bound: no test that
    side; one must be set), in the syntax InfluxQL and SQL share: `<`, `>`, `OR` and numbers as `decimal` writes
    them."""
    tests = [f"{field} < {decimal(low)}" if low is not None else "", f"{field} > {decimal(high)}" if high is not None
             else ""]
    return " OR ".join(filter(None, tests))

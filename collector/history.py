"""`templog history`: readings back from InfluxDB (Flux on api v2, InfluxQL on api v1) or from the local outbox.

Every source yields rows one by one, in time order then sensor, and the renderers write each as it comes, so
memory stays flat whatever the range. A row is a tuple `(time_ns, sensor, *values)` with the values of
`HistoryQuery.columns`: `celsius`, or aggregated per window (`every`) `mean, min, max`, stamped with the
window's start. Windows are aligned to the Unix epoch everywhere.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
from typing import IO, TYPE_CHECKING, Generator, Iterable, Iterator

from collector.config_types import InfluxConfig
from collector.influx.errors import QUERY, WriteError
from collector.outbox import Outbox
from collector.query import AGGREGATES, HistoryQuery, Row, flux, influxql
from collector.readings import Reading
from collector.ticks import NS_PER_S, parse_rfc3339_ns, rfc3339, tick_at_or_before

if TYPE_CHECKING:  # the clients' modules import urllib3 and influxdb-client: `history` on the outbox needs neither
    from collector.influx import InfluxV1, InfluxV2

TABLE_LOOK_AHEAD = 1000  # rows the table renderer reads before it fixes its column widths


def describe_influx(influx: InfluxConfig) -> str:
    """The server and database a query goes to, for the lines that report on it (the config has already taken any
    credentials out of the URL)."""
    if influx.api == "v1":
        return f"InfluxDB at {influx.url} (api v1, database {influx.bucket})"
    return f"InfluxDB at {influx.url} (api {influx.api}, org {influx.org}, bucket {influx.bucket})"


def from_influx_v2(client: InfluxV2, query: HistoryQuery) -> Generator[Row, None, None]:
    columns = ["_value"] if not query.every_s else list(AGGREGATES)
    every_ns = round(query.every_s * NS_PER_S)
    for record in client.query_stream(flux.history(query), flux.params(query, client.config.bucket)):
        try:
            moment = parse_rfc3339_ns(record["_time"])
            row = (moment, record["sensor"], *(float(record[c]) for c in columns))
        except (KeyError, ValueError):
            raise WriteError(QUERY, f"unexpected row in the answer: {record}") from None
        if every_ns:  # Flux clips the first window's start to the range start; put it back on the grid
            row = (tick_at_or_before(moment, every_ns), *row[1:])
        yield row


def from_influx_v1(client: InfluxV1, query: HistoryQuery) -> Generator[Row, None, None]:
    return sensors_in_order(_v1_rows(client.query_stream(influxql.history(query)), query.columns))


def _v1_rows(series_stream: Iterable[dict], columns: tuple[str, ...]) -> Iterator[Row]:
    for series in series_stream:
        names = series["columns"]
        try:
            at_time, at_sensor, *at_values = (names.index(c) for c in ("time", "sensor", *columns))
        except ValueError:
            raise WriteError(QUERY, f"unexpected columns in the answer: {names}") from None
        for values in series.get("values", []):
            try:
                row = (int(values[at_time]), str(values[at_sensor] or ""), *(float(values[i]) for i in at_values))
            except (TypeError, ValueError):
                raise WriteError(QUERY, f"unexpected row in the answer: {values}") from None
            yield row


def from_outbox(outbox: Outbox, query: HistoryQuery) -> Generator[Row, None, None]:
    # closing: when the caller stops early, the cursor and the outbox's connection are let go at once
    with contextlib.closing(outbox.readings(query.start_ns, query.stop_ns, query.sensors)) as readings:
        if query.every_s:
            yield from aggregate(readings, round(query.every_s * NS_PER_S))
        else:
            for r in readings:
                yield r.time_ns, r.sensor, r.celsius


def aggregate(readings: Iterable[Reading], every_ns: int) -> Iterator[Row]:
    """Mean, min and max per epoch-aligned window and sensor, from readings in time order.

    Only the current window is held: one running sum per sensor.
    """
    window: int | None = None
    sums: dict[str, list] = {}  # sensor -> [total, count, min, max]
    for r in readings:
        start = tick_at_or_before(r.time_ns, every_ns)
        if start != window:
            yield from _window_rows(window, sums)
            window, sums = start, {}
        acc = sums.get(r.sensor)
        if acc is None:
            sums[r.sensor] = [r.celsius, 1, r.celsius, r.celsius]
        else:
            acc[0] += r.celsius
            acc[1] += 1
            acc[2] = min(acc[2], r.celsius)
            acc[3] = max(acc[3], r.celsius)
    yield from _window_rows(window, sums)


def _window_rows(window: int | None, sums: dict[str, list]) -> Iterator[Row]:
    for sensor in sorted(sums):
        total, count, low, high = sums[sensor]
        yield window, sensor, total / count, low, high


def sensors_in_order(rows: Iterable[Row]) -> Generator[Row, None, None]:
    """Rows in time order, each run of equal times sorted by sensor: influxd orders those by series key, where
    other tags (host) come before `sensor`. Holds one run: at most a row per series."""
    for _, run in itertools.groupby(rows, key=lambda row: row[0]):
        yield from sorted(run, key=lambda row: row[1])


def write(rows: Iterable[Row], columns: tuple[str, ...], fmt: str, out: IO[str]) -> int:
    """Write the rows to `out` as `table`, `csv` or `json` (the spec's shapes), as they come; return how many.

    Times are RFC 3339 UTC. An empty result has the same header (csv, table) as a full one. Nothing is
    written before the first row arrives, so a query the server refuses leaves `out` empty.
    """
    rows = iter(rows)
    first = next(rows, None)
    rows = itertools.chain(() if first is None else [first], rows)
    header = ("time", "sensor", *columns)
    writer = {"json": _write_json, "csv": _write_csv, "table": _write_table}[fmt]
    return writer(((rfc3339(row[0]), *row[1:]) for row in rows), header, out)


def _write_json(rows: Iterable[Row], header: tuple[str, ...], out: IO[str]) -> int:
    """One JSON document: a list written one object per line, closed after the last, or when the rows fail
    part-way (stdout stays one valid document; the error goes to stderr, and the exit code says it is short)."""
    count = 0
    try:
        for row in rows:
            out.write(("[\n  " if count == 0 else ",\n  ") + json.dumps(dict(zip(header, row, strict=True))))
            count += 1
    finally:
        if count:
            out.write("\n]\n")
    if not count:
        out.write("[]\n")
    return count


def _write_csv(rows: Iterable[Row], header: tuple[str, ...], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _write_table(rows: Iterable[Row], header: tuple[str, ...], out: IO[str]) -> int:
    """Aligned columns, their widths fixed by the header and the first TABLE_LOOK_AHEAD rows; a later, longer
    cell pushes the rest of its line to the right."""
    cells = ([row[0], row[1], *(f"{value:.2f}" for value in row[2:])] for row in rows)
    first = list(itertools.islice(cells, TABLE_LOOK_AHEAD))
    widths = [max(len(line[i]) for line in [header, *first]) for i in range(len(header))]
    count = -1  # the header is not a row
    for line in itertools.chain([header], first, cells):
        out.write("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                            for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip() + "\n")
        count += 1
    return count

"""`templog history`: readings back from the local outbox, and the rows written out (InfluxDB answers them with
each client's `history`: collector/influx/v1.py, v2.py, v3.py).

Every source yields rows one by one, in time order then sensor, and the renderers write each as it comes, so
memory stays flat whatever the range. A row is a tuple `(time_ns, sensor, *values)` with the values of
`HistoryQuery.columns`: the field's (`celsius`, `humidity` or `dewpoint`), or aggregated per window (`every`)
`mean, min, max`, stamped with the window's start. A reading without the field (a sensor that measures no humidity)
gives no row. Windows are aligned to the Unix epoch everywhere.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
from typing import IO, Callable, Generator, Iterable, Iterator, Sequence

from collector.lineprotocol import DEWPOINT, FIELD, HUMIDITY
from collector.outbox import Outbox
from collector.query import HistoryQuery, Row
from collector.readings import Reading
from collector.ticks import NS_PER_S, rfc3339, tick_at_or_before

TABLE_LOOK_AHEAD = 1000  # rows the table renderer reads before it fixes its column widths


_VALUES: dict[str, Callable[[Reading], float | None]] = {  # a reading's value of each field; None: it has none
    FIELD: lambda r: r.celsius,
    HUMIDITY: lambda r: r.humidity,
    DEWPOINT: lambda r: r.dewpoint,  # computed here, as the collector computed the point's (collector/readings.py)
}


def from_outbox(outbox: Outbox, query: HistoryQuery) -> Generator[Row, None, None]:
    value = _VALUES[query.field]
    readings = outbox.readings(query.start_ns, query.stop_ns, query.sensors, with_humidity=query.field != FIELD)
    # closing: when the caller stops early, the cursor and the outbox's connection are let go at once
    with contextlib.closing(readings):
        rows = ((r.time_ns, r.sensor, v) for r in readings if (v := value(r)) is not None)
        if query.every_s:
            yield from aggregate(rows, round(query.every_s * NS_PER_S))
        else:
            yield from rows


def aggregate(rows: Iterable[Row], every_ns: int) -> Iterator[Row]:
    """Mean, min and max per epoch-aligned window and sensor, from rows `(time_ns, sensor, value)` in time order.

    Only the current window is held: one running sum per sensor.
    """
    window: int | None = None
    sums: dict[str, list] = {}  # sensor -> [total, count, min, max]
    for time_ns, sensor, value in rows:
        start = tick_at_or_before(time_ns, every_ns)
        if start != window:
            yield from _window_rows(window, sums)
            window, sums = start, {}
        acc = sums.get(sensor)
        if acc is None:
            sums[sensor] = [value, 1, value, value]
        else:
            acc[0] += value
            acc[1] += 1
            acc[2] = min(acc[2], value)
            acc[3] = max(acc[3], value)
    yield from _window_rows(window, sums)


def _window_rows(window: int | None, sums: dict[str, list]) -> Iterator[Row]:
    for sensor in sorted(sums):
        total, count, low, high = sums[sensor]
        yield window, sensor, total / count, low, high


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
        out.write(table_line(line, widths))
        count += 1
    return count


def table_line(cells: Sequence[str], widths: Sequence[int], names: int = 2) -> str:
    """One line of an aligned table (history's, the report's text): the first `names` cells left-aligned, the
    figures after them right-aligned, two spaces apart."""
    return "  ".join(cell.ljust(width) if i < names else cell.rjust(width)
                     for i, (cell, width) in enumerate(zip(cells, widths, strict=True))).rstrip() + "\n"

"""`templog report` from InfluxDB: each client's `summaries` and `outside` (collector/influx/v1.py, v2.py, v3.py)
over the same readings, written into a real influxd 1.6 (api v1), FakeInfluxDB2 (api v2) and FakeInfluxDB3 (api v3,
whose SQL DataFusion runs), against figures computed here from those readings: count, mean, min and max with the
earliest time of equal values, and the MKT term mean(exp(-(ΔH/R)/T)) by its formula.

The readings: sensors every 10 minutes across the Europe/Berlin DST change of 2026-03-29 (a day of 23 hours), with
gaps, values beyond the thresholds and exact ties at the minimum and maximum; the fridge's host renamed halfway
(another series of the same sensor); a sensor whose readings end on the first day; and hostile names (quotes, `$`,
a backslash where the server keeps one).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config_types import InfluxConfig, Secret
from collector.influx.client import summary_of
from collector.influx.errors import InfluxError, QueryFailed
from collector.influx.v1 import InfluxV1
from collector.influx.v2 import InfluxV2
from collector.influx.v3 import InfluxV3, summary_row
from collector.report import SensorLimits, Summary
from report_reference import reference_day

S = 1_000_000_000
MINUTE = 60 * S
BERLIN = ZoneInfo("Europe/Berlin")
TOKEN = "test-token"
FRIDGE, FREEZER = "fridge", "freezer"
HOSTILE = "it's \"cold\" $5 ($x) ${y}"  # allowed by the client, refused only by the config's `${` rule
BACKSLASH = "c:\\temp 'x'"  # 1.x and 2.x keep a backslash before a plain character; 3.x reads one as an escape
LIMITS = {FRIDGE: (2.0, 8.0), HOSTILE: (None, 25.0), BACKSLASH: (-5.0, None), FREEZER: (-30.0, -15.0)}
# ΔH/R of the MKT in kelvin (83.144 kJ/mol / 8.3144 J/(mol K), USP <1079.2>), and 0 °C in kelvin
DELTA_H_OVER_R, KELVIN = 10_000.0, 273.15


def berlin_day(year: int, month: int, day: int) -> tuple[int, int]:
    """The span of a day in Europe/Berlin, [midnight, next midnight), in ns since the epoch."""
    start = datetime(year, month, day, tzinfo=BERLIN)
    stop = datetime(year, month, day + 1, tzinfo=BERLIN)
    return int(start.timestamp()) * S, int(stop.timestamp()) * S


DAYS = [berlin_day(2026, 3, d) for d in (28, 29, 30)]
assert DAYS[1] == (int(datetime.fromisoformat("2026-03-28T23:00:00+00:00").timestamp()) * S,
                   int(datetime.fromisoformat("2026-03-29T22:00:00+00:00").timestamp()) * S)  # 23 hours


def readings(with_backslash: bool) -> list[tuple[int, str, str, float]]:
    """(time_ns, host, sensor, celsius), every 10 minutes from 2026-03-28T20:00Z (the first day's last hours) to
    2026-03-30T02:00Z, on the span boundaries too."""
    first = int(datetime.fromisoformat("2026-03-28T20:00:00+00:00").timestamp()) * S
    found = []
    for i in range(0, 30 * 6 + 1):  # 30 hours
        t = first + i * 10 * MINUTE
        if 40 <= i < 52:  # a gap of two hours in the DST day
            continue
        host = "pi-old" if i < 100 else "pi-new"  # renamed: another series of the same sensor
        celsius = 5.0 + 4.0 * math.sin(i / 7)  # beyond 2..8 at times
        if i in (60, 75):
            celsius = 0.5  # equal minimum twice in the DST day
        if i in (70, 140):
            celsius = 9.75  # equal maximum, the second on 03-30
        found.append((t, host, FRIDGE, round(celsius, 3)))
        found.append((t, "pi-old", HOSTILE, round(20.0 + 3 * math.cos(i / 5) + (i == 90) * 10, 2)))
        if with_backslash and i % 3 == 0:
            found.append((t, "pi-old", BACKSLASH, -7.0 + i / 20))
        if i < 18:  # until 23:00Z: only on the first Berlin day
            found.append((t, "pi-old", FREEZER, -18.0 - i / 4))
    found.append((first + 95 * 10 * MINUTE, "pi-new", FRIDGE, 0.5))  # the other host at a time of its own: a tie
    return found


def escaped(text: str) -> str:
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def lines(rows: list[tuple[int, str, str, float]]) -> list[str]:
    return [f"temperature,host={escaped(host)},sensor={escaped(sensor)} celsius={celsius!r} {t}"
            for t, host, sensor, celsius in rows]


def expected_summaries(rows, start_ns: int, stop_ns: int, sensors) -> dict[str, Summary]:
    """The figures computed here from the readings, by their definitions."""
    found = {}
    for sensor in sensors:
        mine = sorted((t, c) for t, _, s, c in rows if s == sensor and start_ns <= t < stop_ns)
        if not mine:
            continue
        values = [c for _, c in mine]
        low, high = min(values), max(values)
        found[sensor] = Summary(
            readings=len(values), mean=math.fsum(values) / len(values),
            min=low, min_time_ns=min(t for t, c in mine if c == low),
            max=high, max_time_ns=min(t for t, c in mine if c == high),
            boltzmann_mean=math.fsum(math.exp(-DELTA_H_OVER_R / (c + KELVIN)) for c in values) / len(values))
    return found


def expected_outside(rows, start_ns, stop_ns, sensor, low, high) -> list[tuple[int, float]]:
    return sorted((t, c) for t, _, s, c in rows if s == sensor and start_ns <= t < stop_ns
                  and ((low is not None and c < low) or (high is not None and c > high)))


def close_to(got: dict[str, Summary], wanted: dict[str, Summary]) -> bool:
    """Counts and times exact, values to 1e-12 relative (a server sums in its own order)."""
    assert got.keys() == wanted.keys()
    for sensor, summary in wanted.items():
        mine = got[sensor]
        assert (mine.readings, mine.min, mine.min_time_ns, mine.max, mine.max_time_ns) == (
            summary.readings, summary.min, summary.min_time_ns, summary.max, summary.max_time_ns), sensor
        assert mine.mean == pytest.approx(summary.mean, rel=1e-12), sensor
        assert mine.boltzmann_mean == pytest.approx(summary.boltzmann_mean, rel=1e-12), sensor
    return True


Source = tuple[InfluxV1 | InfluxV2 | InfluxV3, list[tuple[int, str, str, float]]]


@pytest.fixture(params=["v1", "v2", "v3"])
def source(request, database) -> Iterator[Source]:
    """A client of each api and the readings written to its server."""
    kind = request.param
    rows = readings(with_backslash=kind != "v3")
    if kind == "v1":
        server = request.getfixturevalue("influxd")
        server.query(f'CREATE DATABASE "{database}"')
        server.write(database, lines(rows))
        client: InfluxV1 | InfluxV2 | InfluxV3 = InfluxV1(InfluxConfig(url=server.url, api="v1", bucket=database))
    elif kind == "v2":
        server = request.getfixturevalue("fake_influxdb2")
        server.add_bucket(database)
        client = InfluxV2(InfluxConfig(url=server.url, api="v2", org="home", bucket=database, token=Secret(TOKEN)))
        client.write(lines(rows))
    else:
        server = request.getfixturevalue("fake_influxdb3")
        client = InfluxV3(InfluxConfig(url=server.url, api="v3", bucket=database, token=Secret(TOKEN)))
        client.write(lines(rows))
    yield client, rows
    client.close()


def test_summaries_per_berlin_day_equal_the_figures_computed_from_the_readings(source):
    client, rows = source
    sensors = tuple(sorted({s for _, _, s, _ in rows}))
    for start_ns, stop_ns in DAYS:
        got = client.summaries(start_ns, stop_ns, sensors)
        assert close_to(got, expected_summaries(rows, start_ns, stop_ns, sensors))
    first, dst, last = (client.summaries(a, b, sensors) for a, b in DAYS)
    assert FREEZER in first and FREEZER not in dst and FREEZER not in last  # no readings: absent, not zero
    assert dst[FRIDGE].min == 0.5 and dst[FRIDGE].min_time_ns == rows[0][0] + 60 * 10 * MINUTE  # the earliest tie


def test_summaries_give_only_the_sensors_asked_for_one_series_whatever_the_host(source):
    client, rows = source
    start, stop = DAYS[1][0], DAYS[2][1]
    got = client.summaries(start, stop, (FRIDGE,))
    assert close_to(got, expected_summaries(rows, start, stop, (FRIDGE,)))
    hosts = {host for t, host, s, _ in rows if s == FRIDGE and start <= t < stop}
    assert hosts == {"pi-old", "pi-new"} and got[FRIDGE].readings == len(
        [t for t, _, s, _ in rows if s == FRIDGE and start <= t < stop])
    assert client.summaries(start, stop, ("nobody",)) == {}
    assert client.summaries(start, stop, ()) == {}


def test_a_span_boundary_takes_the_reading_at_its_start_not_at_its_stop(source):
    client, rows = source
    start, stop = DAYS[1]
    at_start = [c for t, _, s, c in rows if s == FRIDGE and t == start]
    got = client.summaries(start, start + 10 * MINUTE, (FRIDGE,))
    assert [got[FRIDGE].readings, got[FRIDGE].mean] == [1, at_start[0]]
    assert client.summaries(stop - 10 * MINUTE + 1, stop, (FRIDGE,)) == {}


def test_outside_gives_the_readings_beyond_the_thresholds_in_time_order(source):
    client, rows = source
    start, stop = DAYS[0][0], DAYS[2][1]
    for sensor in sorted({s for _, _, s, _ in rows}):
        low, high = LIMITS[sensor]
        got = list(client.outside(start, stop, sensor, low, high))
        wanted = expected_outside(rows, start, stop, sensor, low, high)
        assert got == wanted, sensor
        assert wanted or sensor == FREEZER, sensor  # the data has excursions to find
    fridge = list(client.outside(start, stop, FRIDGE, 2.0, 8.0))
    assert {c for _, c in fridge} >= {0.5, 9.75}
    assert list(client.outside(start, stop, FRIDGE, None, None)) == []
    assert list(client.outside(start, stop, FRIDGE, 0.5, 9.75)) == []  # equal to a threshold is inside


def test_outside_with_one_threshold_looks_at_that_side_only(source):
    client, rows = source
    start, stop = DAYS[0][0], DAYS[2][1]
    below = list(client.outside(start, stop, FRIDGE, 2, None))  # an integer threshold from the config
    above = list(client.outside(start, stop, FRIDGE, None, 8.0))
    assert below == expected_outside(rows, start, stop, FRIDGE, 2.0, None) and all(c < 2 for _, c in below)
    assert above == expected_outside(rows, start, stop, FRIDGE, None, 8.0) and all(c > 8 for _, c in above)
    assert sorted(below + above) == list(client.outside(start, stop, FRIDGE, 2.0, 8.0))


def test_a_missing_database_is_a_clear_error(source, database):
    client, _ = source
    client.config = InfluxConfig(url=client.config.url, api=client.config.api, org="home", bucket=database + "_no",
                                 token=Secret(TOKEN))
    if client.api == "v3":  # InfluxDB 3: 404 "database not found", with what to do
        with pytest.raises(InfluxError, match="database not found"):
            client.summaries(*DAYS[0], (FRIDGE,))
        return
    with pytest.raises(InfluxError, match="not found|could not find"):
        client.summaries(*DAYS[0], (FRIDGE,))
    with pytest.raises(InfluxError, match="not found|could not find"):
        list(client.outside(*DAYS[0], FRIDGE, 2.0, None))


def test_v1_summaries_are_one_request_of_four_statements(influxd, database):
    """The statements' texts as influxd 1.6 runs them: count and mean; min alone and max alone (the point's time);
    the MKT term over a subquery."""
    from collector.query import influxql

    text = influxql.summaries(*DAYS[0], (FRIDGE, HOSTILE))
    assert text.count("SELECT ") == 5 and text.count("; ") == 3
    influxd.query(f'CREATE DATABASE "{database}"')
    results = influxd.query(text, database)["results"]
    assert [r["statement_id"] for r in results] == [0, 1, 2, 3] and not any("error" in r for r in results)


# The parsers of an answer: any statistics give a Summary or a clear refusal, never another exception.
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 10**20), st.floats(), st.text(max_size=5),
                   st.just("2026-03-29T00:00:00"), st.lists(st.integers(), max_size=2))
KEYS = st.sampled_from(["sensor", "readings", "mean", "min", "min_time", "max", "max_time", "boltzmann_mean"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES))
def test_any_v3_summary_row_gives_a_summary_or_a_clear_refusal(record):
    try:
        sensor, summary = summary_row(record)
    except QueryFailed as exc:
        assert str(exc).startswith("unexpected row in the answer")
        return
    assert isinstance(sensor, str) and summary.readings >= 1 and 0 < summary.boltzmann_mean <= 1
    assert all(math.isfinite(v) for v in (summary.mean, summary.min, summary.max))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES))
def test_summary_of_any_statistics_is_a_summary_or_a_value_error(stats):
    def times(value: object) -> int:
        if not isinstance(value, int):
            raise ValueError(f"{value!r} is no time")
        return value

    try:
        summary = summary_of(stats, times)
    except (KeyError, TypeError, ValueError, OverflowError):
        return
    assert summary.readings >= 1 and math.isfinite(summary.mean)


# ---------------------------------------------------------------------------------------------------------------
# `templog report --format json` as a real process, reading from InfluxDB: every figure against the spec's
# definitions worked out here from the readings written (as tests/test_report.py does over the outbox).
INTERVAL_S = 600
E2E_LIMITS = {FRIDGE: (2.0, 8.0), "it's \"cold\" $5 ($x)": (None, 25.0), FREEZER: (-30.0, -15.0)}
E2E_CONFIG = """collector: {{interval: 10m, outbox: {outbox}}}
influxdb: {influxdb}
sensors:
  - {{name: fridge, type: simulated, min: 2, max: 8}}
  - {{name: 'it''s "cold" $5 ($x)', type: simulated, max: 25}}
  - {{name: freezer, type: simulated, min: -30, max: -15}}
  - {{name: spare, type: simulated}}
"""


def e2e_readings() -> list[tuple[int, str, str, float]]:
    """The readings of `readings()` for the configured names, one per sensor and tick (no second host at a tick of
    the first's)."""
    hostile = "it's \"cold\" $5 ($x)"
    rows = readings(with_backslash=False)
    rows = [(t, h, hostile if s == HOSTILE else s, c) for t, h, s, c in rows]
    seen: set[tuple[int, str]] = set()
    unique = []
    for row in rows:
        if (row[0], row[2]) not in seen:
            seen.add((row[0], row[2]))
            unique.append(row)
    return unique


def expected_rows(rows, days: list[tuple[str, int, int]]) -> list[dict]:
    """The report's rows by the spec's definitions (spec.md "Compliance report", issue14-shared.md Semantics)."""
    found = []
    for sensor in sorted([*E2E_LIMITS, "spare"]):
        limits = SensorLimits(sensor, INTERVAL_S, *E2E_LIMITS.get(sensor, (None, None)))
        mine = [(t, c) for t, _, s, c in rows if s == sensor]
        found += [dataclasses.asdict(reference_day(limits, day, start, stop, mine)) for day, start, stop in days]
    return found


def assert_report_matches(got: list[dict], wanted: list[dict]) -> None:
    assert [(r["sensor"], r["day"]) for r in got] == [(r["sensor"], r["day"]) for r in wanted]
    for mine, theirs in zip(got, wanted, strict=True):
        assert list(mine) == list(theirs)  # the spec's keys in its order
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (mine["sensor"], mine["day"], key)
            else:
                assert mine[key] == value, (mine["sensor"], mine["day"], key)


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_templog_report_json_from_influxdb_equals_the_figures_worked_out_by_hand(api, request, database, tmp_path):
    from cli import templog

    rows = e2e_readings()
    if api == "v1":
        server = request.getfixturevalue("influxd")
        server.query(f'CREATE DATABASE "{database}"')
        server.write(database, lines(rows))
        influxdb = f'{{url: "{server.url}", api: v1, bucket: {database}}}'
    elif api == "v2":
        server = request.getfixturevalue("fake_influxdb2")
        server.add_bucket(database)
        writer = InfluxV2(InfluxConfig(url=server.url, api="v2", org="home", bucket=database, token=Secret(TOKEN)))
        writer.write(lines(rows))
        writer.close()
        influxdb = f'{{url: "{server.url}", api: v2, org: home, bucket: {database}, token: {TOKEN}}}'
    else:
        server = request.getfixturevalue("fake_influxdb3")
        server.write_lp(database, "\n".join(lines(rows)))
        influxdb = f'{{url: "{server.url}", api: v3, bucket: {database}, token: {TOKEN}}}'
    config = tmp_path / "config.yaml"
    config.write_text(E2E_CONFIG.format(outbox=tmp_path / "outbox.sqlite", influxdb=influxdb))
    done = templog("report", "-c", str(config), "--start", "2026-03-28", "--stop", "2026-03-31", "--tz",
                   "Europe/Berlin", "--format", "json")
    assert done.returncode == 0, done.stderr
    days = [(f"2026-03-{d}", *berlin_day(2026, 3, d)) for d in (28, 29, 30)]
    wanted = expected_rows(rows, days)
    got = json.loads(done.stdout)
    assert_report_matches(got, wanted)
    assert len(got) == 4 * 3 and sum(r["readings"] for r in got) == len(rows)
    fridge_dst = next(r for r in wanted if r["sensor"] == FRIDGE and r["day"] == "2026-03-29")
    assert fridge_dst["expected"] == 23 * 6 and fridge_dst["excursions"] and fridge_dst["completeness"] < 1


GOOD_V1 = [{"name": "temperature", "tags": {"sensor": "a"}, "columns": ["time", "readings", "mean"],
            "values": [[0, 2, 5.0]]},
           {"name": "temperature", "tags": {"sensor": "a"}, "columns": ["time", "min"], "values": [[10, 4.0]]},
           {"name": "temperature", "tags": {"sensor": "a"}, "columns": ["time", "max"], "values": [[20, 6.0]]},
           {"name": "temperature", "tags": {"sensor": "a"}, "columns": ["time", "boltzmann_mean"],
            "values": [[0, 2e-16]]}]


def spoiled(index: int, **change) -> list[dict]:
    series = [dict(s) for s in GOOD_V1]
    series[index] |= change
    return series


@pytest.mark.parametrize("answer", [
    spoiled(0, values=[[0, 0, 5.0]]),  # no readings, yet a row
    spoiled(0, values=[[0, 2.5, 5.0]]),  # a count that is no whole number
    spoiled(1, values=[[10, None]]),  # a min that is no number
    spoiled(2, values=[["x", 6.0]]),  # a time that is no integer
    spoiled(3, values=[[0, 1.5]]),  # a Boltzmann mean beyond exp of a negative number
    spoiled(3, values=[[0, float("inf")]]),  # 1e999 in the JSON
    spoiled(1, tags={}),  # no sensor
    spoiled(1, values=[[10, 4.0], [11, 3.0]]),  # two rows of a summary
    GOOD_V1[:3],  # no MKT term
], ids=["zero count", "fractional count", "null min", "text time", "boltzmann above 1", "infinite", "no sensor",
        "two rows", "missing statement"])
def test_a_v1_summary_answer_of_another_shape_is_a_clear_query_failure(answer, monkeypatch):
    client = InfluxV1(InfluxConfig(url="http://127.0.0.1:9", api="v1", bucket="db"))
    monkeypatch.setattr(client, "query_stream", lambda q: iter(answer))
    monkeypatch.setattr(client.server, "hint", lambda error: None)  # nothing to ask the server that is not there
    with pytest.raises(QueryFailed, match="^unexpected (summary|series) in the answer"):
        client.summaries(0, 10**12, ("a",))
    monkeypatch.setattr(client, "query_stream", lambda q: iter(GOOD_V1))
    assert client.summaries(0, 10**12, ("a",)) == {"a": Summary(2, 5.0, 4.0, 10, 6.0, 20, 2e-16)}

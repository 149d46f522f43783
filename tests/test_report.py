"""`templog report` as a real process on readings written into the outbox: every figure checked against values worked
out here from the same readings (MKT by its formula, excursions counted by hand), the days of a zone with DST, every
format, and bad input."""

import csv
import io
import json
import math

import pytest

from cli import templog
from collector.outbox import Outbox
from collector.ticks import parse_time_ns
from temperature_points import temperature

S = 1_000_000_000
TICK = 10 * S
# the spec's keys ("Compliance report"), in its order
KEYS = ["sensor", "day", "readings", "expected", "completeness", "min", "min_time", "max", "max_time", "mean", "mkt",
        "minutes_below", "minutes_above", "excursions", "longest_excursion_minutes"]
CONFIG = """collector: {outbox: data/outbox.sqlite, interval: 10s}
sensors:
  - {name: fridge, type: simulated, min: 2, max: 8}
  - {name: cellar, type: simulated, min: 10}
  - {name: room, type: simulated}
"""
BASE = parse_time_ns("2026-03-10T23:58:00Z")  # 12 ticks before midnight UTC
# fridge, tick -> °C: tick 6 missing; a run outside from tick 7 (below) through 13 (above) crosses midnight (tick 12)
FRIDGE = {0: 5.0, 1: 5.0, 2: 9.0, 3: 9.5, 4: 5.0, 5: 1.0, 7: 1.5, 8: 9.0, 9: 9.0, 10: 9.0, 11: 9.0, 12: 9.0,
          13: 9.0, 14: 5.0}
CELLAR = {0: 12.0, 1: 9.0, 2: 9.0, 3: 12.0, 20: 9.5}  # only a min
ROOM = {0: 20.0, 1: 21.0, 13: 22.5}  # no thresholds


def at(tick: int) -> int:
    return BASE + tick * TICK


def fill(tmp_path, series: dict[str, dict[int, float]], config: str = CONFIG):
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature(sensor, at(tick), value) for sensor, values in series.items()
                   for tick, value in values.items()])
    outbox.close()
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return path


def report(config, *args: str):
    return templog("report", "-c", str(config), *args)


def json_report(config, *args: str) -> list[dict]:
    done = report(config, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def mkt(values: list[float]) -> float:
    """USP <1079.2>: T_mkt = (ΔH/R) / -ln(mean(exp(-(ΔH/R) / T_i))), ΔH/R = 10,000 K, T in kelvin."""
    return 10_000 / -math.log(sum(math.exp(-10_000 / (v + 273.15)) for v in values) / len(values)) - 273.15


def test_figures_are_those_worked_out_by_hand(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE, "cellar": CELLAR, "room": ROOM})
    rows = json_report(config, "--start", "2026-03-10", "--stop", "2026-03-13")
    assert [list(row) for row in rows] == [KEYS] * 9
    assert [(r["sensor"], r["day"]) for r in rows] == [(s, f"2026-03-1{d}") for s in ("cellar", "fridge", "room")
                                                       for d in (0, 1, 2)]
    by = {(r["sensor"], r["day"]): r for r in rows}
    day1 = [v for t, v in FRIDGE.items() if t < 12]
    day2 = [v for t, v in FRIDGE.items() if t >= 12]
    assert by["fridge", "2026-03-10"] == {
        "sensor": "fridge", "day": "2026-03-10", "readings": 11, "expected": 8640, "completeness": 11 / 8640,
        "min": 1.0, "min_time": "2026-03-10T23:58:50Z", "max": 9.5, "max_time": "2026-03-10T23:58:30Z",
        "mean": pytest.approx(sum(day1) / 11), "mkt": pytest.approx(mkt(day1)),
        # below: ticks 5 and 7; above: 2, 3, 8, 9, 10, 11. Runs: {2, 3}, {5} (tick 6 missing), {7, 8, 9, 10, 11}
        "minutes_below": pytest.approx(2 * 10 / 60), "minutes_above": pytest.approx(6 * 10 / 60),
        "excursions": 3, "longest_excursion_minutes": pytest.approx(5 * 10 / 60)}
    # the run goes on past midnight: its part in the new day is the day's own run, {12, 13}
    assert by["fridge", "2026-03-11"] == {
        "sensor": "fridge", "day": "2026-03-11", "readings": 3, "expected": 8640, "completeness": 3 / 8640,
        "min": 5.0, "min_time": "2026-03-11T00:00:20Z", "max": 9.0, "max_time": "2026-03-11T00:00:00Z",
        "mean": pytest.approx(23 / 3), "mkt": pytest.approx(mkt(day2)),
        "minutes_below": 0.0, "minutes_above": pytest.approx(2 * 10 / 60),
        "excursions": 1, "longest_excursion_minutes": pytest.approx(2 * 10 / 60)}
    # a day without a reading is a row: nothing measured, nothing outside
    assert by["fridge", "2026-03-12"] == {
        "sensor": "fridge", "day": "2026-03-12", "readings": 0, "expected": 8640, "completeness": 0.0,
        "min": None, "min_time": None, "max": None, "max_time": None, "mean": None, "mkt": None,
        "minutes_below": 0.0, "minutes_above": 0.0, "excursions": 0, "longest_excursion_minutes": 0.0}
    # only a min: outside is below it; above is not a figure it has. The earliest of equal minima is named.
    cellar = by["cellar", "2026-03-10"]
    assert (cellar["min"], cellar["min_time"], cellar["minutes_below"], cellar["minutes_above"]) == \
        (9.0, "2026-03-10T23:58:10Z", pytest.approx(2 * 10 / 60), None)
    assert (cellar["excursions"], cellar["longest_excursion_minutes"]) == (1, pytest.approx(2 * 10 / 60))
    assert (by["cellar", "2026-03-11"]["excursions"], by["cellar", "2026-03-11"]["minutes_below"]) == \
        (1, pytest.approx(10 / 60))
    # no thresholds: the columns that need them are null, not zero
    for day in ("2026-03-10", "2026-03-11", "2026-03-12"):
        room = by["room", day]
        assert [room[k] for k in KEYS[-4:]] == [None] * 4
    assert by["room", "2026-03-10"]["mkt"] == pytest.approx(mkt([20.0, 21.0]))


def test_days_are_local_midnights_with_dst_days_of_23_and_25_hours(tmp_path):
    """2026-03-29 in Europe/Berlin starts at 23:00Z the day before and has 23 hours: 23 x 360 ticks of 10 s;
    2026-10-25 has 25 hours. A reading at 22:59:50Z belongs to the day before, one at 23:00:00Z to the day."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature("room", parse_time_ns(t), 20.0) for t in
                   ("2026-03-28T22:59:50Z", "2026-03-28T23:00:00Z", "2026-03-29T21:59:50Z", "2026-03-29T22:00:00Z",
                    "2026-10-24T22:00:00Z", "2026-10-25T22:59:50Z")])
    outbox.close()
    rows = json_report(config, "--tz", "Europe/Berlin", "--start", "2026-03-29", "--stop", "2026-03-30",
                       "--sensor", "room")
    assert [(r["day"], r["readings"], r["expected"]) for r in rows] == [("2026-03-29", 2, 23 * 360)]
    assert rows[0]["min_time"] == "2026-03-28T23:00:00Z"
    rows = json_report(config, "--tz", "Europe/Berlin", "--start", "2026-10-25", "--stop", "2026-10-26",
                       "--sensor", "room")
    assert [(r["day"], r["readings"], r["expected"]) for r in rows] == [("2026-10-25", 2, 25 * 360)]
    # the same instants in UTC: other days
    rows = json_report(config, "--start", "2026-03-28", "--stop", "2026-03-30", "--sensor", "room")
    assert [(r["day"], r["readings"], r["expected"]) for r in rows] == [("2026-03-28", 2, 8640),
                                                                        ("2026-03-29", 2, 8640)]


def test_a_range_inside_a_day_clips_the_expected_ticks(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    rows = json_report(config, "--start", "2026-03-10T23:58:00Z", "--stop", "2026-03-11T00:01:00Z",
                       "--sensor", "fridge")
    assert [(r["day"], r["readings"], r["expected"], r["completeness"]) for r in rows] == [
        ("2026-03-10", 11, 12, 11 / 12), ("2026-03-11", 3, 6, 0.5)]


def test_more_readings_than_ticks_caps_completeness_with_one_warning(tmp_path):
    """Two hosts with a sensor of one name: twice the readings; completeness says 1, a WARNING says why."""
    config = fill(tmp_path, {"room": {t: 20.0 for t in range(6)}})
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature("room", at(t), 21.0, host="other") for t in range(6)])
    outbox.close()
    done = report(config, "--start", "2026-03-10T23:58:00Z", "--stop", "2026-03-10T23:59:00Z", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["sensor"] == "room"]
    assert [(r["readings"], r["expected"], r["completeness"]) for r in rows] == [(12, 6, 1.0)]
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "sensor room" in warnings[0] and "2026-03-10" in warnings[0], done.stderr


def test_two_hosts_with_one_sensor_name_count_the_ticks_outside_of_either_once(tmp_path):
    """The review's case: `dup` (10 s, 0 to 5 °C) on two hosts, 120 ticks from midnight. h1: 30 ticks at 6.0, 30 at
    3.0, and again; h2: 4.0, but 7.0 at every 5th tick. Outside is the union of their ticks above 5: 0-30 (h1 to 29,
    h2 at 30), 35, 40, 45, 50, 55, 60-90, 95, 100, 105, 110, 115: 12 runs, the longest 31 ticks, 72 ticks above.
    A reading at the tick of the one before is the same tick outside: it neither cuts the run nor adds minutes."""
    config = tmp_path / "config.yaml"
    config.write_text("collector: {outbox: data/outbox.sqlite, interval: 10s}\n"
                      "sensors:\n  - {name: dup, type: simulated, min: 0, max: 5}\n")
    midnight = at(12)
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature("dup", midnight + t * TICK, 6.0 if t % 60 < 30 else 3.0, host="h1")
                   for t in range(120)] +
                  [temperature("dup", midnight + t * TICK, 7.0 if t % 5 == 0 else 4.0, host="h2")
                   for t in range(120)])
    outbox.close()
    done = report(config, "--start", "2026-03-11T00:00:00Z", "--stop", "2026-03-11T00:20:00Z", "--format", "json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["readings"], row["expected"], row["completeness"]) == (240, 120, 1.0)
    assert (row["excursions"], row["longest_excursion_minutes"]) == (12, pytest.approx(31 * 10 / 60))
    assert (row["minutes_below"], row["minutes_above"]) == (0.0, pytest.approx(72 * 10 / 60))
    # and the WARNING says the completeness, and so the gaps, are not to be trusted
    [warning] = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert "sensor dup" in warning and "unreliable" in warning and "gaps" in warning, warning


def test_csv_has_the_spec_columns_and_empty_cells_for_null(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE, "room": ROOM})
    done = report(config, "--start", "2026-03-10", "--stop", "2026-03-12", "--format", "csv")
    assert done.returncode == 0, done.stderr
    records = list(csv.reader(io.StringIO(done.stdout, newline="")))
    assert records[0] == KEYS
    assert [r[:4] for r in records[1:]] == [
        ["cellar", "2026-03-10", "0", "8640"], ["cellar", "2026-03-11", "0", "8640"],
        ["fridge", "2026-03-10", "11", "8640"], ["fridge", "2026-03-11", "3", "8640"],
        ["room", "2026-03-10", "2", "8640"], ["room", "2026-03-11", "1", "8640"]]
    assert records[1][5:11] == [""] * 6 and records[1][11:13] == ["0.0", ""]
    assert records[5][11:] == ["", "", "", ""]
    assert json_report(config, "--start", "2026-03-10", "--stop", "2026-03-12") == [
        {k: json.loads(v) if v and k not in ("sensor", "day", "min_time", "max_time") else (v or None)
         for k, v in zip(KEYS, record, strict=True)} for record in records[1:]]


def test_text_is_an_aligned_table_naming_units_and_thresholds(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE, "room": ROOM})
    done = report(config, "--start", "2026-03-10", "--stop", "2026-03-11")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header, rows = lines[0], lines[1:4]
    assert header.split()[:4] == ["sensor", "day", "readings", "expected"] and "min °C" in header \
        and "MKT °C" in header
    assert len({len(line) for line in [header] + rows[1:2]}) == 1  # the fridge's row, full, as long as the header
    assert rows[1].split()[:5] == ["fridge", "2026-03-10", "11", "8640", "0.1"]
    assert rows[2].split()[-4:] == ["-", "-", "-", "-"]  # room: no thresholds
    assert "fridge: thresholds 2 °C to 8 °C, a reading every 10s" in lines
    assert any(line.startswith("room: no thresholds") for line in lines)


def test_the_text_table_never_rounds_up_to_100_nor_down_to_0(tmp_path):
    """A day with one tick of 8,640 missing is 99.98 %: the table reads 99.9, not a false 100.0. A 500 ms sensor's
    one reading below is 0.0083 minutes: the table reads <0.1, not 0.0; json keeps the exact figure."""
    config = tmp_path / "config.yaml"
    config.write_text("collector: {outbox: data/outbox.sqlite, interval: 10s}\n"
                      "sensors:\n  - {name: fridge, type: simulated, min: 2, max: 8}\n"
                      "  - {name: fast, type: simulated, interval: 500ms, min: 2}\n")
    midnight = at(12)
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature("fridge", midnight + t * TICK, 5.0) for t in range(8640) if t != 4000] +
                  [temperature("fast", midnight + t * S // 2, 1.0 if t == 1 else 5.0) for t in range(3)])
    outbox.close()
    done = report(config, "--start", "2026-03-11", "--stop", "2026-03-12")
    assert done.returncode == 0, done.stderr
    cells = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:3]}
    assert cells["fridge"][2:5] == ["8639", "8640", "99.9"], done.stdout
    assert cells["fast"][-4:] == ["<0.1", "-", "1", "<0.1"], done.stdout
    [fast, _] = json_report(config, "--start", "2026-03-11", "--stop", "2026-03-12")
    assert fast["minutes_below"] == fast["longest_excursion_minutes"] == pytest.approx(0.5 / 60)


def test_output_is_written_whole_to_the_file(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    target = tmp_path / "out" / "report.csv"
    target.parent.mkdir()
    done = report(config, "--start", "2026-03-10", "--stop", "2026-03-11", "--format", "csv", "--output", str(target))
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert target.read_text().splitlines()[0] == ",".join(KEYS)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.csv"]
    missing = tmp_path / "nowhere" / "report.csv"
    done = report(config, "--start", "2026-03-10", "--stop", "2026-03-11", "--output", str(missing))
    assert done.returncode == 1 and "Traceback" not in done.stderr and str(missing) in done.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize("args, code, message", [
    (("--tz", "Mars/Olympus"), 2, "templog: report: --tz: unknown time zone 'Mars/Olympus'"),
    (("--tz", "../etc/passwd"), 2, "templog: report: --tz: unknown time zone '../etc/passwd'"),
    (("--since", "0"), 2, "templog: report: the start must be before the stop"),
    (("--start", "2026-03-11", "--stop", "2026-03-10"), 2, "templog: report: the start must be before the stop"),
    (("--since", "1d", "--start", "2026-03-10"), 2, "templog: report: use either --since or --start/--stop"),
    (("--start", "2026-13-01"), 2, "templog: report: --start: invalid time '2026-13-01'"),
    (("--since", "-1d"), 2, "templog: report: --since -1d: give how far back as a positive duration"),
    (("--sensor", "freezer"), 2, "templog: report: --sensor freezer: no such sensor in {config} (its sensors: "
                                 "cellar, fridge, room)"),
    (("--start", "2020-01-01", "--stop", "2020-01-02"), 1, "templog: report: no readings of sensor(s) cellar, fridge, "
                                                         "room from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z in "
                                                         "the outbox {tmp_path}/data/outbox.sqlite"),
])
def test_bad_input_is_one_clear_line_and_the_spec_exit_code_and_no_file(tmp_path, args, code, message):
    config = fill(tmp_path, {"fridge": FRIDGE})
    target = tmp_path / "report.json"
    done = report(config, *args, "--format", "json", "--output", str(target))
    assert done.returncode == code and done.stdout == ""
    assert done.stderr.startswith(message.format(config=config, tmp_path=tmp_path)), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "data"]


def test_no_outbox_at_all_is_no_readings(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    done = report(config, "--sensor", "room")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("templog: report: no readings of sensor(s) room from ") and \
        f"there is no outbox at {tmp_path}/data/outbox.sqlite yet" in done.stderr
    assert not (tmp_path / "data").exists()

"""influxdb/tasks/downsample.flux downsamples what arrived, not just what is recent.

No Flux engine runs here (tests/test_flux.py parses and type-checks the task with InfluxData's own checker). So the
task's selection rule is run as data: a model of one task run over the two buckets, built step by step as the task is
(first raw point -> raw counts per series and hour vs stored counts -> the earliest changed hour -> every hour from
there rewritten with count, mean, min and max), using the change predicate read out of the task's own text. The
scenarios are the ones the collector's outbox produces: a 3-day outage delivered at once, an hour delivered half
before and half after an outage, nothing late, failed and skipped runs, points past the raw retention. The same
scenarios under the rule the task had before (rewrite the last 24 hours) leave hours missing or partial for good.

What ties the model to the Flux, each from its source at the pinned versions (InfluxDB 2.7.12 bundles flux v0.196.1):
- a task's now() is the run's scheduled time, and runs missed while InfluxDB was down are run afterwards one by one
  (influxdb@v2.7.12:task/backend/executor/executor.go `Now: p.run.ScheduledFor`,
  task/backend/scheduler/treescheduler.go process/iterator): the model runs them in order with that now;
- aggregateWindow(every: 1h, timeSrc: "_start", createEmpty: false) gives one row per series and non-empty hour,
  stamped with the hour's start (flux@v0.196.1:stdlib/universe/universe.flux aggregateWindow = window |> fn |>
  duplicate(column: timeSrc, as: "_time") |> window(every: inf)); window() and range() include the start and
  exclude the stop;
- count over aggregateWindow right after range |> filter is computed by the storage engine
  (influxdb@v2.7.12:query/stdlib/influxdata/influxdb/rules.go PushDownWindowAggregateRule,
  PushDownWindowAggregateByTimeRule, PushDownAggregateWindowRule; rules_test.go case "AggregateWindowCount" with
  "_start"), so counting the whole raw retention every hour reads one row per series and hour, not the points;
- pivot() merges the raw and stored count tables of a series into one row per hour, a side without the hour leaving
  its column null (flux@v0.196.1:stdlib/universe/pivot.go Process; execute/table.go GrowInts sets nulls), and a
  column no table has reads as null (flux@v0.196.1:compiler/compiler.go substituteTypes): the model's rows are dicts
  with absent keys, and the predicate's `exists` and `!=` follow Flux's null rules;
- findColumn returns [] when no table is found (flux@v0.196.1:stdlib/universe/table_fns.go findColumnCall), which
  the task's firstOr turns into the last hour (nothing there to rewrite when nothing changed);
- reduce keeps each window's group key and returns the reducer's record, one row per series and hour
  (flux@v0.196.1:stdlib/universe/universe.flux reduce), and to() writes each row as one point with the fields
  fieldFn returns (flux@v0.196.1:stdlib/influxdata/influxdb/to.go writeTable); a point with the same series and time
  replaces the earlier one, so rewriting an unchanged hour changes nothing;
- the rest as flux@v0.196.1:stdlib/universe/universe.flux documents each: range() keeps start <= _time < stop;
  filter() drops the tables it empties (onEmpty: "drop"); first() keeps each table's first record, a series' earliest
  point (storage returns a series in time order); keep(columns: ["_time"]) drops every other column and so the group
  key, group() then makes one table, sort() and limit(n: 1) leave its earliest row; union() passes every table on;
  window(every: 1h) puts each row in the hour holding it, bounds in _start/_stop; duplicate() copies _start to _time
  outside the group key; map() with `r with` adds mean; length() counts an array; date.truncate and date.sub
  (stdlib/date/date.flux) work in the task's location, UTC by default, like the windows;
- data past the raw retention go in whole shard groups (whole hours or days, influxdb@v2.7.12:v1/services/meta/
  data.go shardGroupDuration, CreateShardGroup truncates the start): the model drops whole hours;
- each raw field (celsius, humidity, dewpoint) is a pass of its own (`downsample(field, countField, fieldFn)`, read
  out of the task's text): its own raw points and stored count, its four long-term fields on the series' hourly point,
  beside the other fields' (InfluxDB keeps a point's fields per series, field and time: writing some fields of a point
  leaves its others as they are). The field names reach filter() as literals, so the filters are pushed down as
  before (flux@v0.196.1:interpreter/interpreter.go ResolveIdsInFunction). Every pass runs before any is written
  (the findColumn look-ups run while the script is evaluated, each its own query of its own stream:
  flux@v0.196.1:stdlib/universe/table_fns.go tableFind), so the passes are independent.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.grafana.common import longterm_field
from collector.lineprotocol import DEWPOINT, FIELD, HUMIDITY, MEASUREMENT, READING_FIELDS
from stack_tools import REPO

FLUX = REPO / "influxdb/tasks/downsample.flux"
TEXT = FLUX.read_text()
H = 3600
DAY = 24 * H
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z, a day start
LIVING, ATTIC = ("living-room", "pi"), ("attic", "pi")  # series: (sensor, host)


# --- the change predicate, read from the task ------------------------------------------------------------------


def flux_predicate_to_python(expr: str):
    """A Flux boolean expression over `r` (exists, and, or, not, ==, !=, parentheses) as a Python function of a row.

    A row is a dict; an absent key is a null, as a missing column is in Flux. Comparing a null gives null, and filter
    keeps a row only when the predicate is true. Anything else in the expression is refused, so a change to the task's
    predicate that this model cannot follow fails here instead of being misread.
    """
    tokens = re.findall(r"\(|\)|==|!=|exists|and|or|not|r\.\w+|\S+", expr)
    python = []
    for token in tokens:
        if token in ("(", ")", "and", "or", "not"):
            python.append(token)
        elif token == "exists":
            python.append("_exists")
        elif token in ("==", "!="):
            python.append({"==": "|_eq|", "!=": "|_ne|"}[token])
        elif token.startswith("r."):
            python.append(f"r.get({token[2:]!r})")
        else:
            raise AssertionError(f"the model does not know {token!r} in the task's predicate: {expr}")
    code = " ".join(python)
    code = re.sub(r"_exists (r\.get\('\w+'\))", r"(\1 is not None)", code)
    assert "_exists" not in code, code
    return eval(f"lambda r: bool({code})", {"_eq": Infix(lambda a, b: None if None in (a, b) else a == b),
                                            "_ne": Infix(lambda a, b: None if None in (a, b) else a != b)})


class Infix:
    """`a |op| b` for the translated comparisons (Python's own == and != do not give null for null)."""

    def __init__(self, fn):
        self.fn, self.left = fn, None

    def __ror__(self, left):
        bound = Infix(self.fn)
        bound.left = left
        return bound

    def __or__(self, right):
        return self.fn(self.left, right)


def changed_block() -> str:
    found = re.search(r"^ *changed =\n(.*?)\n\n", TEXT, re.MULTILINE | re.DOTALL)
    assert found, "the task has no `changed = ...`: the hours whose raw counts differ from the stored ones"
    return found.group(1)


@functools.cache
def changed_rule():
    """The task's own test of a pivoted row {raw, stored} (the `changed` pipeline's filter), as Python."""
    found = re.search(r"\|> filter\(fn: \(r\) => (.*)\)$", changed_block(), re.MULTILINE)
    assert found, "the `changed` pipeline has no filter(fn: (r) => ...)"
    return flux_predicate_to_python(found.group(1))


def test_the_predicate_translation_follows_flux_nulls():
    rule = flux_predicate_to_python("exists r.raw and (not exists r.stored or r.raw != r.stored)")
    assert rule({"raw": 3}) and rule({"raw": 3, "stored": 2}) and not rule({"raw": 3, "stored": 3})
    assert not rule({"stored": 3}) and not rule({})
    assert not flux_predicate_to_python("r.raw != r.stored")({"raw": 1}), "null != 1 is null: filter drops the row"
    with pytest.raises(AssertionError, match="does not know"):
        flux_predicate_to_python("r.raw > 2")


# --- the model: two buckets, the collector delivering, the task running ----------------------------------------


def hour(t: int) -> int:
    return t - t % H


STATS = ("mean", "min", "max", "count")


def task_passes() -> list[tuple[str, str, dict[str, str]]]:
    """The task's `downsample(...)` calls, in order: (raw field, the long-term field holding its count, the long-term
    field fieldFn writes for each of mean, min, max and count)."""
    passes = []
    for raw_field, count_field, body in re.findall(
            r'^downsample\(\s*field: "(\w+)",\s*countField: "(\w+)",\s*fieldFn: \(r\) => \(\{([^}]*)\}\),\s*\)',
            TEXT, re.MULTILINE):
        names = {}
        for name, stat in re.findall(r"(\w+): r\.(\w+)", body):
            assert stat in STATS and stat not in names, f"fieldFn of {raw_field} writes r.{stat}: {body}"
            names[stat] = name
        assert set(names) == set(STATS) and body.count(":") == len(STATS), f"fieldFn of {raw_field}: {body}"
        passes.append((raw_field, count_field, names))
    assert passes, "the task calls no downsample(field: ..., countField: ..., fieldFn: ...)"
    return passes


PASSES = task_passes()


@dataclass
class Buckets:
    raw: dict[str, dict[tuple, dict[int, float]]] = field(  # raw field -> series -> time -> value
        default_factory=lambda: defaultdict(lambda: defaultdict(dict)))
    longterm: dict[tuple, dict] = field(default_factory=dict)  # (series, hour) -> {"mean", ..., "humidity_mean", ...}

    def write(self, series, points, field_name: str = FIELD) -> None:
        self.raw[field_name][series].update(points)  # same series and time: the later write replaces the point

    def expire_before(self, t: int) -> None:
        for by_series in self.raw.values():
            for points in by_series.values():
                for time in [time for time in points if time < t]:
                    del points[time]

    def store(self, key: tuple, fields: dict) -> None:
        self.longterm.setdefault(key, {}).update(fields)  # the point's other fields stay


def aggregates(values: list[float]) -> dict:
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "count": len(values)}


def run_task(db: Buckets, now: int, fail_after: int | None = None) -> list[tuple]:
    """One run of the task, scheduled for `now`; the (series, hour)s it rewrote, pass after pass. fail_after: the run
    dies after writing that many points (a failed write, InfluxDB stopping)."""
    stop = hour(now)
    last_hour = stop - H
    plans = []
    for raw_field, count_field, names in PASSES:  # every pass's look-ups are evaluated before anything is written
        raw = {s: {t: v for t, v in points.items() if t < stop} for s, points in db.raw[raw_field].items()}
        firsts = [min(points) for points in raw.values() if points]  # rawPoints(start: 1970...) |> first()
        raw_start = hour(min(firsts) if firsts else last_hour)
        rows: dict[tuple, dict[str, int]] = defaultdict(dict)  # union |> pivot(rowKey: ["_time"], ...)
        for s, points in raw.items():
            for t in points:
                if t >= raw_start:
                    row = rows[(s, hour(t))]
                    row["raw"] = row.get("raw", 0) + 1
        for (s, h), fields in db.longterm.items():
            if raw_start <= h < stop and count_field in fields:
                rows[(s, h)]["stored"] = fields[count_field]
        changed = [h for (s, h), row in rows.items() if changed_rule()(row)]
        rewrite_from = min(changed, default=last_hour)
        hourly: dict[tuple, list[float]] = defaultdict(list)  # rawPoints(start: rewriteFrom) |> window |> reduce
        for s, points in raw.items():
            for t, v in sorted(points.items()):
                if t >= rewrite_from:
                    hourly[(s, hour(t))].append(v)
        plans.append((names, hourly))
    written: list[tuple] = []
    for names, hourly in plans:
        for key, values in sorted(hourly.items()):
            if fail_after is not None and len(written) == fail_after:
                raise TaskFailed(written)
            db.store(key, {names[stat]: value for stat, value in aggregates(values).items()})
            written.append(key)
    return written


class TaskFailed(Exception):
    pass


def run_old_task(db: Buckets, now: int) -> list[tuple]:
    """The task as it was: rewrite the last day of whole hours."""
    stop = hour(now)
    hourly = defaultdict(list)
    for s, points in db.raw[FIELD].items():
        for t, v in sorted(points.items()):
            if stop - DAY <= t < stop:
                hourly[(s, hour(t))].append(v)
    for key, values in hourly.items():
        db.store(key, {k: v for k, v in aggregates(values).items() if k != "count"})
    return sorted(hourly)


def readings(series, start: int, stop: int, every: int = 600) -> dict[int, float]:
    """What the collector reads from `start` to `stop`: a point every 10 minutes, a value from the series and time."""
    return {t: 20.0 + len(series[0]) + (t % 86_400) / 86_400 for t in range(start, stop, every)}


def incomplete_hours(db: Buckets, stop: int, raw_field: str = FIELD) -> dict[tuple, tuple]:
    """(series, hour) before `stop` whose long-term point lacks the mean/min/max of the raw field's points there."""
    expected = defaultdict(list)
    for s, points in db.raw[raw_field].items():
        for t, v in sorted(points.items()):
            if t < stop:
                expected[(s, hour(t))].append(v)
    wrong = {}
    names = {stat: longterm_field(raw_field, stat) for stat in ("mean", "min", "max")}
    for key, values in expected.items():
        want, got = aggregates(values), db.longterm.get(key)
        if got is None or {stat: got.get(name) for stat, name in names.items()} != {k: want[k] for k in names}:
            wrong[key] = (got, want)
    return wrong


def hourly_runs(start: int, stop: int):
    """The scheduled times of the runs from `start` to `stop` (every: 1h; offset only delays when a run starts)."""
    return range(hour(start) + H, stop + 1, H)


# --- the scenarios ---------------------------------------------------------------------------------------------


OUTAGES = {  # what happens while the collector cannot deliver, in order, given the outage's start and end
    # The network is down: the task runs hourly and finds nothing new; the backlog arrives at the end.
    "network-down": lambda start, end: [("runs", hourly_runs(start, end)), ("backlog", None)],
    # InfluxDB is down: no run happens; when it is back the missed runs are run one by one at once, before or after
    # the collector's next retry delivers the backlog.
    "influxdb-down, runs first": lambda start, end: [("runs", hourly_runs(start, end)), ("backlog", None)],
    "influxdb-down, backlog first": lambda start, end: [("backlog", None), ("runs", hourly_runs(start, end))],
}


@pytest.mark.parametrize("outage", list(OUTAGES))
@pytest.mark.parametrize("task", [run_task, run_old_task], ids=["task", "old-task"])
def test_a_three_day_outage_delivered_at_once_reaches_the_long_term_bucket(task, outage):
    db, outage_start, outage_end = Buckets(), T0 + DAY, T0 + 4 * DAY
    for now in hourly_runs(T0, outage_start):
        db.write(LIVING, readings(LIVING, now - H, now))
        task(db, now)
    for step, runs in OUTAGES[outage](outage_start, outage_end):
        if step == "backlog":  # the outbox's backlog, delivered at once
            db.write(LIVING, readings(LIVING, outage_start, outage_end + 600))
        for now in runs or ():
            task(db, now)
    task(db, outage_end + H)
    missing = incomplete_hours(db, outage_end + H)
    if task is run_task:
        assert missing == {}
    elif outage != "influxdb-down, backlog first":
        last_day = outage_end + H - DAY
        assert set(missing) == {(LIVING, h) for h in range(outage_start, last_day, H)}, \
            "the old task never downsampled what the outage left older than a day"


@pytest.mark.parametrize("task", [run_task, run_old_task], ids=["task", "old-task"])
def test_an_hour_delivered_half_before_and_half_after_an_outage_is_completed(task):
    db, cut = Buckets(), T0 + 10 * H + 30 * 60  # the outage starts at 10:30
    for now in hourly_runs(T0, T0 + 10 * H):
        db.write(LIVING, readings(LIVING, now - H, now))
        task(db, now)
    db.write(LIVING, readings(LIVING, T0 + 10 * H, cut))
    for now in hourly_runs(T0 + 10 * H, T0 + 3 * DAY):  # 10:00-11:00 downsampled with half its points
        task(db, now)
    half = aggregates(list(readings(LIVING, T0 + 10 * H, cut).values()))
    assert db.longterm[(LIVING, T0 + 10 * H)]["mean"] == half["mean"]
    db.write(LIVING, readings(LIVING, cut, T0 + 3 * DAY))
    task(db, T0 + 3 * DAY + H)
    partial = incomplete_hours(db, T0 + 3 * DAY)
    if task is run_old_task:
        assert (LIVING, T0 + 10 * H) in partial, "the old task keeps the half hour's mean for good"
    else:
        assert partial == {}
        assert db.longterm[(LIVING, T0 + 10 * H)]["count"] == 6


def test_with_nothing_late_each_run_rewrites_only_the_hour_just_ended():
    db = Buckets()
    for now in hourly_runs(T0, T0 + 2 * DAY):
        for series in (LIVING, ATTIC):
            db.write(series, readings(series, now - H, now))
        assert run_task(db, now) == [(ATTIC, now - H), (LIVING, now - H)]
    assert incomplete_hours(db, T0 + 2 * DAY) == {}
    assert run_task(db, T0 + 2 * DAY + H) == [], "no new point: nothing to write"


def test_the_first_run_after_the_old_task_completes_every_hour_in_the_raw_bucket_once():
    db = Buckets()
    db.write(LIVING, readings(LIVING, T0, T0 + 2 * DAY))
    db.write(LIVING, {T0 + 5 * H + 1: 30.0})  # late, after the old task had passed 05:00
    for now in hourly_runs(T0, T0 + 2 * DAY):
        run_old_task(db, now)
    db.write(LIVING, {T0 + 5 * H + 2: 31.0})
    assert len(run_task(db, T0 + 2 * DAY)) == 48, "no counts stored yet: every hour is summarized again"
    assert incomplete_hours(db, T0 + 2 * DAY) == {}
    assert run_task(db, T0 + 2 * DAY + H) == []


@pytest.mark.parametrize("fail_after", [0, 1, 30])
def test_a_failed_run_is_made_good_by_the_next(fail_after):
    db = Buckets()
    db.write(LIVING, readings(LIVING, T0, T0 + DAY))
    db.write(ATTIC, readings(ATTIC, T0, T0 + DAY))
    with pytest.raises(TaskFailed):
        run_task(db, T0 + DAY, fail_after=fail_after)
    assert incomplete_hours(db, T0 + DAY)
    run_task(db, T0 + DAY + 3 * H)  # the runs between were skipped
    assert incomplete_hours(db, T0 + DAY) == {}


def test_hours_past_the_raw_retention_are_left_alone():
    db = Buckets()
    for now in hourly_runs(T0, T0 + 3 * DAY):
        db.write(LIVING, readings(LIVING, now - H, now))
        run_task(db, now)
    kept = dict(db.longterm)
    db.expire_before(T0 + DAY)  # a shard group of the raw bucket dropped
    db.write(LIVING, {T0 + DAY + 1: 40.0})  # and a late point into the oldest hour still there
    assert run_task(db, T0 + 3 * DAY + H) == [(LIVING, T0 + DAY + h * H) for h in range(48)]
    assert all(db.longterm[key] == kept[key] for key in kept if key[1] < T0 + DAY), "expired hours untouched"
    assert incomplete_hours(db, T0 + 3 * DAY) == {}


def test_an_empty_raw_bucket_writes_nothing():
    db = Buckets()
    assert run_task(db, T0) == [] and db.longterm == {}


@settings(max_examples=200, deadline=None)
@given(
    delays=st.lists(st.integers(0, 5 * DAY), min_size=1, max_size=60),
    failures=st.lists(st.tuples(st.integers(0, 5 * 24 + 30), st.integers(0, 5)), max_size=20),
)
def test_whatever_arrives_when_and_whichever_runs_fail_the_next_good_run_completes_every_hour(delays, failures):
    """Points of two series over a day, each delivered after its own delay (up to 5 days); runs hourly for 6 days, some
    dying after writing a few points; after the last run every hour holds the summary of all its raw points."""
    db, failing = Buckets(), dict(failures)
    points = [(LIVING, T0 + (i * 1499) % DAY, 15.0 + i % 11) for i in range(len(delays))]
    points += [(ATTIC, T0 + (i * 797) % DAY, 5.0 + i % 3) for i in range(len(delays) // 2)]
    arrivals = sorted(((t + delays[i % len(delays)], s, t, v) for i, (s, t, v) in enumerate(points)))
    runs = list(hourly_runs(T0, T0 + 6 * DAY))
    for n, now in enumerate(runs):
        for arrival, s, t, v in arrivals:
            if now - H < arrival <= now:
                db.write(s, {t: v})
                if s == LIVING and t % 7:  # living-room measures humidity; some of it refused (t % 7 == 0)
                    db.write(s, {t: 40.0 + t % 13}, HUMIDITY)
                    db.write(s, {t: v - 8.0}, DEWPOINT)
        try:
            run_task(db, now, fail_after=failing.get(n) if n != len(runs) - 1 else None)
        except TaskFailed:
            pass
    for raw_field in READING_FIELDS:
        assert incomplete_hours(db, runs[-1], raw_field) == {}, raw_field


def humidity_of(points: dict[int, float]) -> dict[int, float]:
    """The humidity of a sensor's points, but every third one refused (its temperature kept)."""
    return {t: 40.0 + (t % 3600) / 360 for i, t in enumerate(sorted(points)) if i % 3}


def write_humid(db: Buckets, series, start: int, stop: int) -> None:
    """What a humidity sensor delivers from `start` to `stop`: temperature, and humidity and dew point where its
    humidity was not refused."""
    temperatures = readings(series, start, stop)
    humidity = humidity_of(temperatures)
    db.write(series, temperatures)
    db.write(series, humidity, HUMIDITY)
    db.write(series, {t: temperatures[t] - 10.0 + h / 100 for t, h in humidity.items()}, DEWPOINT)


def test_humidity_and_dew_point_are_downsampled_with_their_own_counts_and_leave_the_temperature_as_it_was():
    """Fewer humidity and dew-point points than temperatures per hour (refused humidity): with nothing late each run
    still rewrites only the hour just ended, for each field (each pass compares its own stored count); a 3-day
    backlog reaches all three fields; the temperature's long-term fields are the ones a temperature-only sensor
    gets."""
    db, temperature_only = Buckets(), Buckets()
    for now in hourly_runs(T0, T0 + DAY):
        write_humid(db, LIVING, now - H, now)
        temperature_only.write(LIVING, readings(LIVING, now - H, now))
        assert run_task(db, now) == [(LIVING, now - H)] * len(READING_FIELDS)
        run_task(temperature_only, now)
    assert db.longterm[(LIVING, T0)]["humidity_count"] == 4 and db.longterm[(LIVING, T0)]["count"] == 6
    outage_start, outage_end = T0 + DAY, T0 + 4 * DAY
    for now in hourly_runs(outage_start, outage_end):
        run_task(db, now)
        run_task(temperature_only, now)
    write_humid(db, LIVING, outage_start, outage_end)
    temperature_only.write(LIVING, readings(LIVING, outage_start, outage_end))
    run_task(db, outage_end + H)
    run_task(temperature_only, outage_end + H)
    for raw_field in READING_FIELDS:
        assert incomplete_hours(db, outage_end + H, raw_field) == {}, raw_field
    assert {key: {name: value for name, value in fields.items() if name in STATS}
            for key, fields in db.longterm.items()} == temperature_only.longterm
    assert run_task(db, outage_end + 2 * H) == [], "nothing new: nothing to write"


# --- the task's text implements the model ----------------------------------------------------------------------


def pipeline(name: str) -> str:
    """The body of a `name = ...` definition, at the top level or in downsample's block (up to the next blank line)."""
    definition = re.search(rf"^ *{name} =(.*?)\n\n", TEXT, re.MULTILINE | re.DOTALL)
    assert definition, f"the task defines no {name}"
    return definition.group(1)


def downsample_block() -> str:
    found = re.search(r"^downsample = \(field, countField, fieldFn\) => \{\n(.*?)\n\}\n", TEXT,
                      re.MULTILINE | re.DOTALL)
    assert found, "the task defines no downsample = (field, countField, fieldFn) => { ... }"
    return found.group(1)


def test_the_task_covers_whole_hours_up_to_its_scheduled_time_and_has_no_fixed_look_back():
    assert "stop = date.truncate(t: now(), unit: 1h)" in TEXT
    assert "lastHour = date.sub(d: 1h, from: stop)" in TEXT
    assert not re.search(r"-\d+[dh]\b|d: \d+d|date\.sub\(d: (?!1h, from: stop)", TEXT), "a look-back would miss outages"
    assert 'import "influxdata/influxdb/tasks"' not in TEXT, "no tasks.lastSuccess(): counts find what is missing"


def test_the_task_downsamples_each_field_of_a_reading_under_the_names_the_dashboards_read():
    """celsius keeps the long-term names it always had (mean, min, max, count); humidity and dewpoint theirs, named
    as collector.grafana's long-range panels read them; each pass reads back the count it writes."""
    assert [raw_field for raw_field, _, _ in PASSES] == list(READING_FIELDS)
    for raw_field, count_field, names in PASSES:
        assert names == {stat: longterm_field(raw_field, stat) for stat in STATS}, raw_field
        assert count_field == names["count"], f"{raw_field}: the stored count read is the one written"
    assert PASSES[0] == (FIELD, "count", {stat: stat for stat in STATS})
    written = [name for _, _, names in PASSES for name in names.values()]
    assert len(written) == len(set(written)), "no two passes write one long-term field"


def test_the_task_reads_raw_points_and_stored_counts_of_the_field_it_is_given():
    assert f'r._measurement == "{MEASUREMENT}" and r._field == field)' in pipeline("rawPoints")
    assert pipeline("rawPoints").startswith(" (field, start) =>")
    assert "from(bucket: rawBucket)" in pipeline("rawPoints")
    assert "range(start: start, stop: stop)" in pipeline("rawPoints")
    assert f'r._measurement == "{MEASUREMENT}" and r._field == countField)' in pipeline("storedCounts")
    assert pipeline("storedCounts").startswith(" (countField, start) =>")
    assert "from(bucket: longtermBucket)" in pipeline("storedCounts")


def test_the_task_compares_counts_per_series_and_hour_from_the_first_raw_point():
    block = downsample_block()
    assert "rawPoints(field: field, start: 1970-01-01T00:00:00Z) |> first() |> earliest()" in pipeline("firstRaw")
    assert "rawStart = date.truncate(t: firstRaw, unit: 1h)" in block
    per_hour = pipeline("perHour")
    assert 'aggregateWindow(every: 1h, fn: fn, timeSrc: "_start", createEmpty: false)' in per_hour
    assert 'set(key: "_field", value: column)' in per_hour and per_hour.count("|>") == 2, \
        "one chain after range |> filter, so storage computes the counts"
    changed = changed_block()
    assert 'rawPoints(field: field, start: rawStart) |> perHour(fn: count, column: "raw")' in changed
    assert 'storedCounts(countField: countField, start: rawStart) |> perHour(fn: sum, column: "stored")' in changed
    assert 'pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")' in changed
    assert "rewriteFrom = firstOr(arr: changed |> earliest(), default: lastHour)" in block
    assert 'sort(columns: ["_time"])' in pipeline("earliest") and "limit(n: 1)" in pipeline("earliest")
    assert 'findColumn(fn: (key) => true, column: "_time")' in pipeline("earliest")
    assert "firstOr = (arr, default) => if length(arr: arr) > 0 then arr[0] else default" in TEXT


def test_the_task_rewrites_every_hour_from_the_earliest_changed_one_with_its_count():
    block = downsample_block()
    rewrite = block[block.index("    return\n        rawPoints(field: field, start: rewriteFrom)"):]
    assert "window(every: 1h, createEmpty: false)" in rewrite
    assert "identity: {count: 0, sum: 0.0, min: 0.0, max: 0.0}" in rewrite
    for line in ("count: accumulator.count + 1", "sum: accumulator.sum + r._value",
                 "min: if accumulator.count == 0 or r._value < accumulator.min then r._value else accumulator.min",
                 "max: if accumulator.count == 0 or r._value > accumulator.max then r._value else accumulator.max"):
        assert line in rewrite
    assert 'duplicate(column: "_start", as: "_time")' in rewrite, "stamped with the hour's start"
    assert "map(fn: (r) => ({r with mean: r.sum / float(v: r.count)}))" in rewrite
    assert "to(bucket: longtermBucket, fieldFn: fieldFn)" in rewrite, \
        "one point per series and hour with the four fields of the pass (test_the_task_downsamples_each_field...)"
    assert "group(" not in rewrite, "each series (sensor, host and the other tags) stays its own table"
    assert TEXT.count("to(bucket:") == 1
    assert TEXT.count("\ndownsample(") == len(PASSES), "every call is a pass the model runs"

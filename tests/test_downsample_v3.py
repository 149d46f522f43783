"""influxdb3/plugins/templog_downsample.py, InfluxDB 3's downsampling, run as the processing engine runs a scheduled
trigger (tests/fake_influxdb3.py, the stand-in for InfluxDB 3: its plugin API over the store the HTTP API serves, every
query executed by Apache DataFusion on tables of our schema), against hourly figures computed here from the raw
points. The raw points are written as the collector writes them (collector/lineprotocol.py), the databases made as
influxdb3/init/10-templog.sh makes them before the trigger exists."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.lineprotocol import LONGTERM_FIELDS, Point, Series, tag_key_problem, text_problem
from fake_influxdb3 import FakeInfluxDB3, PluginReturnState
from stack_tools import REPO, upstream_text

PLUGIN = REPO / "influxdb3/plugins/templog_downsample.py"
PLUGIN_DIR = PLUGIN.parent
FLUX = REPO / "influxdb/tasks/downsample.flux"
RAW, LONGTERM = "temperature", "temperature_longterm"
HOUR_NS = 3600 * 10**9
T0 = 1_795_000_000 // 3600 * 3600 * 10**9  # a whole hour in 2026
SENSORS = {  # name: tags, humidity base (None: measures no humidity)
    "desk": ({"sensor": "desk", "host": "pi", "room": "office"}, None),
    "greenhouse": ({"sensor": "greenhouse", "host": "pi"}, 70.0),
    "odd, name=x y": ({"sensor": "odd, name=x y", "host": "pi"}, None),  # line protocol escapes in a tag value
}


def reading(name: str, t_ns: int) -> dict:
    tags, humidity = SENSORS[name]
    step = (t_ns - T0) // 10**9
    point = {"time": t_ns, "tags": tags, "celsius": 20.0 + (step % 97) / 8 + len(name) / 10}
    if humidity is not None:
        point["humidity"] = humidity + (step % 13) / 4
        point["dewpoint"] = 10.0 + (step % 7) / 3
    return point


def readings(start_ns: int, stop_ns: int, every_s: int = 60, names=tuple(SENSORS)) -> list[dict]:
    return [reading(name, t) for name in names for t in range(start_ns, stop_ns, every_s * 10**9)]


def hourly(points: list[dict]) -> dict:
    """{(sensor, hour): {long-term field: value}}: what the long-term table must hold."""
    groups: dict = {}
    for p in points:
        groups.setdefault((p["tags"]["sensor"], p["time"] // HOUR_NS * HOUR_NS), []).append(p)
    expected = {}
    for key, group in groups.items():
        row: dict[str, float] = {}
        for field, prefix in (("celsius", ""), ("humidity", "humidity_"), ("dewpoint", "dewpoint_")):
            values = [p[field] for p in group if field in p]
            if values:
                row |= {prefix + "mean": statistics.fmean(values), prefix + "min": min(values),
                        prefix + "max": max(values), prefix + "count": len(values)}
        expected[key] = row
    return expected


class Engine:
    """The server (FakeInfluxDB3, the trigger's databases made) and what its runs of the plugin left."""

    def __init__(self) -> None:
        self.server = FakeInfluxDB3(plugin_dir=PLUGIN_DIR)
        for name in (RAW, LONGTERM):
            self.server.add_database(name)
        self.last = PluginReturnState()

    @property
    def written_lines(self) -> list[tuple[str, str]]:
        """(database, line) of the last run's writes."""
        return [(db, line) for db, lines in self.last.write_db_lines.items() for line in lines]

    def sql(self) -> list[str]:
        """The last run's queries."""
        return [query["q"] for query in self.server.queries]

    def rows(self, db: str) -> list[dict]:
        return self.server.points(db, "temperature")


def write_points(engine: Engine, points: list[dict]) -> None:
    """Raw points {"time": ns, "tags": {...}, field: value, ...}, written as the collector writes them."""
    lines = [Point(Series("temperature", p["tags"]), {k: v for k, v in p.items() if k not in ("time", "tags")},
                   p["time"]).line() for p in points]
    if lines:
        engine.server.write_lp(RAW, "\n".join(lines))


def longterm(engine: Engine) -> dict:
    rows = engine.rows(LONGTERM)
    return {(r["sensor"], r["time"]): {k: v for k, v in r.items() if k not in ("time", "sensor", "host", "room")}
            for r in rows}


def assert_summaries(engine: Engine, expected: dict) -> None:
    got = longterm(engine)
    assert got.keys() == expected.keys()
    for key, row in expected.items():
        assert got[key].keys() == row.keys(), key
        for field, value in row.items():
            assert got[key][field] == pytest.approx(value, rel=1e-12), (key, field)
            assert type(got[key][field]) is type(value), (key, field)  # counts stay integers


def run(engine: Engine, hour_ns: int, minutes: int = 5, args: dict | None = None) -> None:
    """The trigger's run at `minutes` past the hour starting at hour_ns (cron:0 5 * * * *)."""
    engine.server.queries.clear()
    engine.last = engine.server.run_schedule_trigger(PLUGIN.name, RAW, (hour_ns + minutes * 60 * 10**9) // 10**9, args)
    assert engine.last.write_errors == []


@pytest.fixture
def engine() -> Engine:
    return Engine()


def test_each_whole_hour_is_summarized_per_series_and_field_and_the_current_one_is_not(engine):
    points = readings(T0, T0 + 3 * HOUR_NS) + readings(T0 + 3 * HOUR_NS, T0 + 3 * HOUR_NS + 5 * 60 * 10**9)
    write_points(engine, points)
    run(engine, T0 + 3 * HOUR_NS)
    assert_summaries(engine, hourly([p for p in points if p["time"] < T0 + 3 * HOUR_NS]))
    rows = engine.rows(LONGTERM)
    assert {r["sensor"]: r.get("room") for r in rows} == {"desk": "office", "greenhouse": None, "odd, name=x y": None}
    assert all(r["host"] == "pi" for r in rows) and len(rows) == 3 * 3


def test_a_late_backlog_rewrites_its_hours_with_every_point(engine):
    """The collector's outbox delivers an outage's readings after later ones: each hour they land in is summarized
    again with all its points, the hours between too (from the earliest changed one on), none before."""
    early = readings(T0, T0 + 4 * HOUR_NS, every_s=120)
    write_points(engine, early)
    run(engine, T0 + 4 * HOUR_NS)
    late = [reading("greenhouse", t) for t in range(T0 + HOUR_NS + 60 * 10**9, T0 + 2 * HOUR_NS, 120 * 10**9)]
    late += readings(T0 + 4 * HOUR_NS, T0 + 5 * HOUR_NS, every_s=120)
    write_points(engine, late)
    run(engine, T0 + 5 * HOUR_NS)
    assert_summaries(engine, hourly(early + late))
    summary = [sql for sql in engine.sql() if "AVG(" in sql]
    assert len(summary) == 1 and f"time >= '{iso(T0 + HOUR_NS)}'" in summary[0]
    assert {int(line.rsplit(" ", 1)[1]) for _, line in engine.written_lines} == {
        T0 + h * HOUR_NS for h in range(1, 5)}


def test_a_run_with_nothing_new_writes_nothing(engine):
    write_points(engine, readings(T0, T0 + 2 * HOUR_NS))
    run(engine, T0 + 2 * HOUR_NS)
    run(engine, T0 + 2 * HOUR_NS, minutes=35)  # the same whole hours
    assert engine.written_lines == []
    assert ("info", "templog-downsample: every hour is summarized") in engine.last.log_lines


def test_an_hour_expiring_file_by_file_keeps_the_summary_of_all_its_points(engine):
    """InfluxDB 3 drops expired raw data by whole 10-minute Parquet files: the oldest hour shrinks before it goes. Its
    long-term row was made from all its points and must stay so."""
    points = readings(T0, T0 + 2 * HOUR_NS)
    write_points(engine, points)
    run(engine, T0 + 2 * HOUR_NS)
    engine.server.expire(RAW, "temperature", T0 + 20 * 60 * 10**9)
    run(engine, T0 + 2 * HOUR_NS, minutes=40)
    assert engine.written_lines == []
    assert_summaries(engine, hourly(points))


def test_a_server_in_a_zone_off_the_hour_still_cuts_whole_utc_hours(engine, monkeypatch):
    """call_time is a naive local datetime (PyDateTime::from_timestamp without a zone): in UTC+05:30 a run at 10:05
    UTC must summarize up to 10:00 UTC, not 09:30 or 10:30."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        points = readings(T0, T0 + 2 * HOUR_NS)
        write_points(engine, points)
        run(engine, T0 + HOUR_NS)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert_summaries(engine, hourly([p for p in points if p["time"] < T0 + HOUR_NS]))


def test_humidity_counted_on_its_own(engine):
    """A humidity refused while the temperature is kept: the humidity count and figures cover what was kept."""
    points = readings(T0, T0 + HOUR_NS, names=("greenhouse",))
    for p in points[::3]:
        del p["humidity"], p["dewpoint"]
    write_points(engine, points)
    run(engine, T0 + HOUR_NS)
    assert_summaries(engine, hourly(points))
    row = longterm(engine)[("greenhouse", T0)]
    assert row["count"] == 60 and row["humidity_count"] == row["dewpoint_count"] == 40


def test_the_long_term_database_comes_from_the_trigger_arguments(engine):
    engine.server.add_database("hourly")  # as the init script makes TEMPLOG_LONGTERM_DB
    write_points(engine, readings(T0, T0 + HOUR_NS, names=("desk",)))
    run(engine, T0 + HOUR_NS, args={"longterm_db": "hourly"})
    assert {db for db, _ in engine.written_lines} == {"hourly"}
    assert engine.rows("hourly")


def test_no_readings_yet_is_a_quiet_run(engine):
    run(engine, T0)
    assert engine.written_lines == [] and ("info", "templog-downsample: no temperature readings yet") in \
        engine.last.log_lines


def test_the_long_term_fields_are_the_v2_tasks():
    """The same long-term schema on InfluxDB 2 and 3: the fields downsample.flux's fieldFn write."""
    field_fns = re.findall(r"fieldFn: \(r\) => \(\{(.*)\}\)", FLUX.read_text())
    flux_fields = {name for fn in field_fns for name in re.findall(r"(\w+): r\.\w+", fn)}
    engine = Engine()
    write_points(engine, readings(T0, T0 + HOUR_NS))
    run(engine, T0 + HOUR_NS)
    written = {k for row in longterm(engine).values() for k in row}
    assert written == flux_fields and len(flux_fields) == 12


def iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


def test_the_plugin_is_what_the_compose_file_mounts():
    compose = (REPO / "docker-compose.influxdb3.yml").read_text()
    assert "./influxdb3/plugins:/plugins:ro" in compose
    assert Path(PLUGIN).name in (REPO / "influxdb3/init/10-templog.sh").read_text()


# --- properties ---------------------------------------------------------------------------------------------------

tag_values = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
    lambda t: text_problem(t, "tag value") is None)
offsets = st.integers(0, 4 * 3600 - 1)  # seconds into four hours


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(tuple(SENSORS)), offsets), min_size=1, max_size=40, unique=True),
       st.lists(st.tuples(st.sampled_from(tuple(SENSORS)), offsets), max_size=40, unique=True),
       st.integers(1, 4))
def test_any_readings_and_any_late_ones_end_up_summarized_exactly(first, late, run_hour):
    """Whatever arrives when (any series, any second of four hours, a backlog landing anywhere before or after the
    first run), the long-term table ends up holding exactly the hourly figures of every whole hour's points."""
    engine = Engine()
    first_points = [reading(name, T0 + s * 10**9) for name, s in first]
    write_points(engine, first_points)
    run(engine, T0 + run_hour * HOUR_NS)
    assert_summaries(engine, hourly([p for p in first_points if p["time"] < T0 + run_hour * HOUR_NS]))
    taken = set(first)
    late_points = [reading(name, T0 + s * 10**9) for name, s in late if (name, s) not in taken]
    write_points(engine, late_points)
    run(engine, T0 + 4 * HOUR_NS)
    assert_summaries(engine, hourly(first_points + late_points))


@settings(max_examples=60, deadline=None)
@given(st.lists(tag_values, min_size=1, max_size=3, unique=True), tag_values)
def test_any_tag_value_a_sensor_may_have_is_kept_as_it_is(names, room):
    """Tag values as templog lets them be (lineprotocol.text_problem: commas, equals signs, spaces, quotes, any
    printable Unicode) reach the long-term table unchanged through LineBuilder's escaping."""
    engine = Engine()
    points = [{"time": T0 + i * 10**9, "tags": {"sensor": name, "host": "pi", "room": room}, "celsius": 20.0 + i}
              for i, name in enumerate(names)]
    write_points(engine, points)
    run(engine, T0 + HOUR_NS)
    rows = engine.rows(LONGTERM)
    assert sorted((r["sensor"], r["room"], r["count"]) for r in rows) == sorted((n, room, 1) for n in names)


# --- tag keys, the stand-in's LineBuilder, the file limit -------------------------------------------------------

LINE_BUILDER = "influxdb3_py_api/src/line_builder/line_builder.py"


def real_line_builder() -> type:
    """The engine's own LineBuilder class, run from the pinned source text (influxdata/influxdb@v3.10.1), not kept."""
    scope: dict = {}
    exec(compile(upstream_text("influxdata+influxdb", "v3.10.1", LINE_BUILDER), LINE_BUILDER, "exec"), scope)
    return scope["LineBuilder"]


def outcome(builder_class: type, measurement: str, tags: list, fields: list) -> tuple[str, str]:
    """What building the line gives: ("line", text) or (the exception's class name, its message)."""
    try:
        builder = builder_class(measurement)
        for key, value in tags:
            builder.tag(key, value)
        for key, value in fields:
            if isinstance(value, bool):
                builder.bool_field(key, value)
            elif isinstance(value, int):
                builder.int64_field(key, value) if value % 2 else builder.uint64_field(key, value)
            elif isinstance(value, float):
                builder.float64_field(key, value)
            else:
                builder.string_field(key, value)
        return "line", builder.time_ns(T0).build()
    except Exception as error:
        return type(error).__name__, str(error)


keys = st.text(st.sampled_from("ab =,\\\"_ é"), max_size=5)
values = st.one_of(st.booleans(), st.integers(-3, 3), st.floats(-100, 100), st.text(max_size=5))


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("ab ,=\\"), max_size=4), st.lists(st.tuples(keys, keys), max_size=3),
       st.lists(st.tuples(keys, values), max_size=3))
def test_the_stand_ins_line_builder_builds_and_refuses_what_the_engines_does(measurement, tags, fields):
    """The stand-in's LineBuilder against line_builder.py itself: the same line, or the same refusal (InvalidKeyError
    for a key with a space, comma or equals sign, not an escape)."""
    from fake_influxdb3 import LineBuilder
    assert outcome(LineBuilder, measurement, tags, fields) == outcome(real_line_builder(), measurement, tags, fields)


def test_the_stand_in_refuses_a_point_with_a_tag_and_a_field_of_one_name():
    """validator.rs: the tag's column is made first, then column_or_create finds it is not a field
    (catalog/versions/v2/update.rs: InvalidColumnType)."""
    validator = upstream_text("influxdata+influxdb", "v3.10.1", "influxdb3_write/src/write_buffer/validator.rs")
    assert validator.index("InfluxColumnType::Tag)") < validator.index("for (field_name, field_val) in line.field_set")
    server = FakeInfluxDB3()
    with pytest.raises(ValueError, match="invalid column type for column 'mean'"):
        server.write_lp("temperature_longterm", f"temperature,sensor=a,mean=x mean=1.0 {T0}")
    assert server.points("temperature_longterm") == []


@pytest.mark.parametrize("key", ["my room", "a,b", "a=b", "hour", "a\"b", "time_zone"])
def test_a_tag_key_the_config_accepts_reaches_the_long_term_table(engine, key):
    """Keys LineBuilder refuses (a space, comma or equals sign) and `hour`, once the plugin's alias (DataFusion: "Schema
    contains qualified field name temperature.hour and unqualified field name hour which would be ambiguous")."""
    assert tag_key_problem(key) is None
    points = [{"time": T0 + i * 60 * 10**9, "tags": {"sensor": s, "host": "pi", key: "x y"}, "celsius": 20.0 + i}
              for i in range(3) for s in ("a", "b")]
    write_points(engine, points)
    run(engine, T0 + HOUR_NS)
    rows = engine.rows(LONGTERM)
    assert sorted((r["sensor"], r[key], r["count"], r["mean"]) for r in rows) == [("a", "x y", 3, 21.0),
                                                                                 ("b", "x y", 3, 21.0)]
    assert not [line for line in engine.last.log_lines if line[0] == "error"]


def test_a_series_the_long_term_table_cannot_take_is_logged_and_the_others_written(engine):
    """A raw series with a tag named as a long-term field (written by another client: templog's config refuses the
    key) cannot be written there beside the other series' field of that name; one write holds every line of the run
    and is refused whole for one bad line (plugins.rs handle_return_state, accept_partial false): that series is
    skipped and named in an error."""
    write_points(engine, [{"time": T0, "tags": {"sensor": "a"}, "celsius": 20.0, "humidity": 50.0},
                          {"time": T0, "tags": {"sensor": "b", "humidity_mean": "x"}, "celsius": 21.0}])
    run(engine, T0 + HOUR_NS)
    assert [(r["sensor"], r["count"], r["humidity_mean"]) for r in engine.rows(LONGTERM)] == [("a", 1, 50.0)]
    errors = [text for level, text in engine.last.log_lines if level == "error"]
    assert errors == ["templog-downsample: series {'humidity_mean': 'x', 'sensor': 'b'} not summarized: its tag "
                      "'humidity_mean' has the name of a long-term column"]


def test_every_long_term_field_is_a_tag_key_the_config_refuses():
    """Both downsamplers' long-term fields (downsample.flux's fieldFn, the plugin's) are refused as tag keys."""
    field_fns = re.findall(r"fieldFn: \(r\) => \(\{(.*)\}\)", FLUX.read_text())
    flux_fields = {name for fn in field_fns for name in re.findall(r"(\w+): r\.\w+", fn)}
    scope: dict = {}
    exec(compile(PLUGIN.read_text(), str(PLUGIN), "exec"), scope)
    assert flux_fields == set(scope["LONGTERM_FIELDS"]) == set(LONGTERM_FIELDS)
    assert all(tag_key_problem(name) for name in flux_fields)


config_keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).filter(
    lambda k: tag_key_problem(k) is None and k != "host")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(config_keys, tag_values, min_size=1, max_size=3), st.lists(tag_values, min_size=1, max_size=3,
                                                                                   unique=True))
@example({"@site": "lab", "@": "0"}, ["fridge"])  # a variable to DataFusion 51 unless qualified (tag_column)
def test_any_tags_the_config_accepts_give_a_long_term_row_per_series(tags, names):
    engine = Engine()
    points = [{"time": T0 + i * 10**9, "tags": {**tags, "sensor": name, "host": "pi"}, "celsius": 20.0 + i}
              for i, name in enumerate(names)]
    write_points(engine, points)
    run(engine, T0 + HOUR_NS)
    rows = engine.rows(LONGTERM)
    assert sorted((r["sensor"], r["count"], {k: r.get(k) for k in tags}) for r in rows) == sorted(
        (name, 1, tags) for name in names)


def test_the_counts_read_back_only_as_far_as_the_file_limit_reaches():
    """The file limit counts the files a query's time bounds leave (write_buffer/mod.rs get_table_chunks): 5 hours of
    raw data are 30 files, over a limit of 24; the counts cover 24 ÷ 12 = 2 hours, the run goes on."""
    mod = upstream_text("influxdata+influxdb", "v3.10.1", "influxdb3_write/src/write_buffer/mod.rs")
    assert "get_files_filtered(db_schema.id, table_def.table_id, filter)" in mod
    assert mod.index("get_files_filtered(") < mod.index("if parquet_files.len() > self.query_file_limit")
    engine = Engine()
    engine.server.query_file_limit = 24
    points = readings(T0, T0 + 5 * HOUR_NS, names=("desk",))
    write_points(engine, points)
    run(engine, T0 + 5 * HOUR_NS, args={"query_file_limit": "24"})
    assert_summaries(engine, hourly([p for p in points if p["time"] >= T0 + 3 * HOUR_NS]))
    assert all(f"time >= '{iso(T0 + 3 * HOUR_NS)}'" in sql for sql in engine.sql() if "COUNT(" in sql)


def test_a_query_over_the_file_limit_is_one_clear_error():
    """The trigger told a larger limit than the server's: the refusal is logged once, naming --query-file-limit."""
    engine = Engine()
    engine.server.query_file_limit = 24
    write_points(engine, readings(T0, T0 + 5 * HOUR_NS, names=("desk",)))
    run(engine, T0 + 5 * HOUR_NS, args={"query_file_limit": "10000"})
    errors = [text for level, text in engine.last.log_lines if level == "error"]
    assert len(errors) == 1 and "--query-file-limit (INFLUXDB3_QUERY_FILE_LIMIT)" in errors[0]
    assert "query_file_limit" in errors[0] and "exceeding the file limit" in errors[0]
    assert engine.written_lines == []


@pytest.mark.parametrize("limit", ["many", "0", "-5"])
def test_a_file_limit_argument_that_is_no_limit_is_one_clear_error(engine, limit):
    write_points(engine, readings(T0, T0 + HOUR_NS, names=("desk",)))
    run(engine, T0 + HOUR_NS, args={"query_file_limit": limit})
    errors = [text for level, text in engine.last.log_lines if level == "error"]
    assert errors == [f"templog-downsample: trigger argument query_file_limit={limit!r}: the server's "
                      "--query-file-limit, a whole number of at least 12"]
    assert engine.written_lines == []

"""api v3 at its edges: what a user meets when an answer, a token file or a server is not what the happy path
expects. templog runs as a process against FakeInfluxDB3 (the stand-in that answers as
influxdata/influxdb@v3.10.1 does), real influxd 1.x, FakeInfluxDB2, and FaultyProxy in front of them for answers no
real server sends."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.config import load_config
from collector.delivery import Sender
from collector.influx import InfluxV3, connect
from collector.influx.errors import LimitReached, QueryFailed
from collector.influx.v3 import bounded_lines
from collector.lineprotocol import MEASUREMENT, Series
from collector.outbox import Outbox
from collector.readings import Reading, reading_point
from collector.stats import Stats
from fake_influxdb3 import FakeInfluxDB3
from faulty_proxy import FaultyProxy
from temperature_points import temperature

SENSORS = "sensors:\n  - {name: desk, type: simulated, interval: 200ms}\n"
RANGE = ("--start", "2026-01-01T00:00:00Z", "--stop", "2026-01-02T00:00:00Z")


def influx_section(api: str, url: str, extra: str = "") -> str:
    keys = {"v1": "api: v1, bucket: temperature", "v2": "api: v2, org: home, bucket: temperature, token: test-token",
            "v3": "api: v3, bucket: temperature, token: test-token"}[api]
    return f'influxdb: {{url: "{url}", {keys}{extra}}}\n'


# What each line's query answers with one reading whose value is `value` (JSON or CSV text as a server could send it)
def v1_answer(value: bytes) -> bytes:
    return (b'{"results":[{"statement_id":0,"series":[{"name":"temperature","columns":["time","sensor","celsius"],'
            b'"values":[[1767225600000000000,"desk",' + value + b"]]}]}]}\n")


def v2_answer(value: bytes) -> bytes:
    return (b"#datatype,string,long,dateTime:RFC3339,string,double\r\n#group,false,false,false,true,false\r\n"
            b"#default,_result,,,,\r\n,result,table,_time,sensor,_value\r\n,,0,2026-01-01T00:00:00Z,desk," + value
            + b"\r\n\r\n")


def v3_answer(value: bytes) -> bytes:
    return b'{"time":"2026-01-01T00:00:00","sensor":"desk","celsius":' + value + b"}\n"


QUERY_PATHS = {"v1": "/query", "v2": "/api/v2/query", "v3": "/api/v3/query_sql"}
# each server's Content-Type for these answers: influxd's JSON, Flux's CSV (influxdata/flux@v0.196.1:csv/dialect.go
# SetHeaders), query_sql's format jsonl (influxdata/influxdb@v3.10.1:influxdb3_types/src/http.rs as_content_type)
ANSWER_TYPES = {"v1": "application/json", "v2": "text/csv; charset=utf-8", "v3": "application/jsonl"}
ANSWERS = {"v1": v1_answer, "v2": v2_answer, "v3": v3_answer}
NOT_FINITE = {"v1": [b"NaN", b"Infinity", b"1e999", b"1" + b"0" * 400], "v2": [b"NaN", b"+Inf", b"-Inf", b"1e999"],
              "v3": [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1" + b"0" * 400]}


@pytest.fixture
def server_of(request, influxd, fake_influxdb2, fake_influxdb3):
    return {"v1": influxd, "v2": fake_influxdb2, "v3": fake_influxdb3}


@pytest.mark.parametrize("api, value", [(api, value) for api, values in NOT_FINITE.items() for value in values])
def test_history_refuses_a_reading_that_is_no_finite_number(write_config, server_of, api, value):
    """json.loads takes NaN, Infinity and 1e999 (and float() "NaN", "+Inf"): no sensor reads them, and `history
    --format json` printed NaN, which is no JSON. Such a row is an unexpected answer: exit 1, one line, no traceback."""
    with FaultyProxy(server_of[api].url, fault_prefix=QUERY_PATHS[api]) as proxy:
        proxy.fail_next(1, status=200, body=ANSWERS[api](value), content_type=ANSWER_TYPES[api])
        done = templog("history", "-c", str(write_config(influx_section(api, proxy.url) + SENSORS)), *RANGE,
                       "--format", "json")
    assert done.returncode == 1 and "unexpected row in the answer" in done.stderr, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "NaN" not in done.stdout and "Infinity" not in done.stdout
    ok = ANSWERS[api](b"21.5")
    with FaultyProxy(server_of[api].url, fault_prefix=QUERY_PATHS[api]) as proxy:
        proxy.fail_next(1, status=200, body=ok, content_type=ANSWER_TYPES[api])
        done = templog("history", "-c", str(write_config(influx_section(api, proxy.url) + SENSORS)), *RANGE,
                       "--format", "json")
    assert done.returncode == 0 and [r["celsius"] for r in json.loads(done.stdout)] == [21.5], done.stderr


@pytest.mark.parametrize("api", ["v1", "v3"])
def test_a_query_failing_early_in_a_long_answer_discards_no_connection(write_config, server_of, api):
    """A bad row at the start of a long answer: the failure's hint pings /ping for the version while the query's
    connection was still checked out of the pool (one connection per host), so urllib3 warned "Connection pool is
    full, discarding connection". The query's connection is released first."""
    body = ANSWERS[api](b'"x"') + ANSWERS[api](b"21.5") * 100_000
    with FaultyProxy(server_of[api].url, fault_prefix=QUERY_PATHS[api]) as proxy:
        proxy.fail_next(1, status=200, body=body, content_type=ANSWER_TYPES[api])
        done = templog("history", "-c", str(write_config(influx_section(api, proxy.url) + SENSORS)), *RANGE)
    assert done.returncode == 1 and "unexpected row in the answer" in done.stderr, done.stderr
    assert "Connection pool is full" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def stored(api: str, server) -> int:
    if api == "v1":
        result = server.query('SELECT count("celsius") FROM "temperature"', db="temperature")["results"][0]
        return sum(row[1] for s in result.get("series", []) for row in s["values"])
    if api == "v2":  # the bucket, which also holds the health measurement `templog`
        return sum(p["measurement"] == "temperature" for p in server.points("temperature"))
    return len(server.points("temperature"))  # v3: the database's table `temperature`


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_a_token_file_replaced_by_text_no_header_carries_is_the_token_s_failure_and_shows_none_of_it(
        write_config, tmp_path, server_of, api):
    """token_file is read again at each request: replaced at runtime by `has space ☃`, http.client's
    UnicodeEncodeError showed the character and its offset in the token, classed "other". Now it is the token's
    failure (write_failures_auth), naming influxdb.token_file and nothing of the token; fixed, delivery resumes.
    api v1 sends user:password as UTF-8 in Basic auth: it travels (influxd here has no authentication)."""
    token_file = tmp_path / "token"
    token_file.write_text("admin:test-token\n" if api == "v1" else "test-token\n")
    config = write_config(influx_section(api, server_of[api].url, ", token_file: token, retention: 30d")
                          .replace(", token: test-token", "") + SENSORS)
    running = start_run(config)
    wait_until(lambda: stored(api, server_of[api]) >= 2, what="delivery with the first token")
    token_file.write_text("admin:has space ☃\n" if api == "v1" else "has space ☃\n")
    if api == "v1":
        delivered = stored(api, server_of[api])
        wait_until(lambda: stored(api, server_of[api]) >= delivered + 3, what="delivery with the UTF-8 password")
    else:
        wait_until(lambda: "delivery to InfluxDB failed" in running.log, what="the token's failure")
        token_file.write_text("test-token\n")
        wait_until(lambda: "delivery resumed" in running.log, what="delivery with the fixed token")
    code, log = stop_run(running)
    assert code == 0 and "Traceback" not in log, log
    assert "☃" not in log and "UnicodeEncodeError" not in log and "position" not in log, log
    if api != "v1":
        assert "influxdb.token_file holds a character no HTTP header can carry" in log, log
        assert "failed with auth errors" in log, log  # its kind: auth, not other


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_401_from_influxdb3_with_api_v1_or_v2_says_it_looks_like_influxdb3(write_config, fake_influxdb3, api):
    """InfluxDB 3's /ping needs a token, so with a wrong one no version is read; 1.x and 2.x answer /ping without
    authentication (version.py cites where): a /ping answering 401 without a version says InfluxDB 3."""
    token = ", token: 'reader:Wr0ng-token'" if api == "v1" else ""
    config = write_config(influx_section(api, fake_influxdb3.url, token).replace("token: test-token",
                                                                                 "token: Wr0ng-token") + SENSORS)
    done = templog("check", "-c", str(config))
    assert done.returncode == 1 and "HTTP 401" in done.stdout, done.stdout
    assert "this looks like InfluxDB 3: set influxdb.api: v3, with its token" in done.stdout, done.stdout
    assert "Wr0ng-token" not in done.stdout + done.stderr


def test_a_401_from_influxdb2_gives_no_influxdb3_hint(write_config, fake_influxdb2):
    """2.x answers /ping without a token (204 and its version): a wrong token there is no sign of InfluxDB 3."""
    config = write_config(influx_section("v2", fake_influxdb2.url).replace("test-token", "Wr0ng-token") + SENSORS)
    done = templog("history", "-c", str(config), *RANGE)
    assert done.returncode == 1 and "HTTP 401" in done.stderr and "InfluxDB 3" not in done.stderr, done.stderr


def test_a_partial_write_whose_numbers_do_not_fit_the_batch_sets_aside_only_the_bad_point(write_config, tmp_path):
    """Line numbers were trusted as they came: a server (or proxy) numbering one off listed the good neighbour, which
    was set aside, and the refused point was acknowledged as delivered. Each listed original_line is now compared
    with the batch's line at that number (its first 20 bytes, as influxdata/influxdb@v3.10.1:influxdb3_types/src/
    write.rs cuts it); on a mismatch the batch is isolated by halves."""
    S = 1_000_000_000
    base = 1_764_000_000 * S
    with FakeInfluxDB3(line_number_offset=1) as server:
        influx = load_config(write_config(influx_section("v3", server.url) + SENSORS), environ={}).influxdb
        assert influx is not None
        client = connect(influx)
        outbox = Outbox(str(tmp_path / "o.sqlite"))
        outbox.append([temperature(name, base, 20.0) for name in ("alpha", "bravo", "charlie", "delta")])
        with sqlite3.connect(outbox.path) as db:  # bravo's, as another writer's string field would make it
            db.execute("UPDATE points SET line = replace(line, 'celsius=20.0', 'celsius=\"warm\"') "
                       "WHERE line LIKE '%sensor=bravo%'")
        outbox = Outbox(str(tmp_path / "o.sqlite"))
        stats = Stats()
        Sender(outbox, client, 100, stats).drain()
        assert sorted(p["sensor"] for p in server.points()) == ["alpha", "charlie", "delta"]
        with sqlite3.connect(outbox.path) as db:
            assert [row[0].split(",")[1].split(" ")[0] for row in db.execute("SELECT line FROM rejected")] == [
                "sensor=bravo"]
        assert outbox.depth == 0 and stats.get("points_rejected") == 1 and stats.get("points_delivered") == 3


@pytest.mark.parametrize("api, body, says", [
    ("v3", v3_answer(b"21.5").replace(b'"desk"', b'"' + b"d" * 2 * 1024 * 1024 + b'"'), "a line longer than 1024 KiB"),
    ("v3", b"[" * 200_000 + b"]" * 200_000 + b"\n", "JSON nested too deeply"),
    ("v1", b"[" * 200_000 + b"]" * 200_000 + b"\n", "JSON nested too deeply"),
])
def test_an_answer_too_long_or_too_deep_for_a_row_is_one_clear_line(write_config, server_of, api, body, says):
    """A hostile answer: one 50 MB JSON line was held whole (223 MB of memory); JSON nested 200,000 deep gave
    "unexpected RecursionError". A line is bounded (a history row is small) and read as it comes; nesting is
    refused: exit 1 and one line saying so."""
    with FaultyProxy(server_of[api].url, fault_prefix=QUERY_PATHS[api]) as proxy:
        proxy.fail_next(1, status=200, body=body, content_type=ANSWER_TYPES[api])
        done = templog("history", "-c", str(write_config(influx_section(api, proxy.url) + SENSORS)), *RANGE,
                       "--format", "csv")
    assert done.returncode == 1 and f"unreadable answer: {says}" in done.stderr, done.stderr[:2000]
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr and len(done.stderr) < 2000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 30))
def test_a_body_in_any_chunks_gives_its_lines_or_refuses_a_long_one(chunks, limit):
    body = b"".join(chunks)
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        assert list(bounded_lines(chunks, limit)) == lines
    except QueryFailed:
        assert any(len(line) > limit for line in body.split(b"\n"))
    else:
        assert all(len(line) <= limit for line in lines)


def columns(server: FakeInfluxDB3, table: str) -> dict[str, str]:
    frame = server._sql("temperature", "SELECT column_name, data_type FROM information_schema.columns WHERE "
                                       f"table_name = '{table}'")
    return {row["column_name"]: row["data_type"] for row in frame.to_pylist()}


def test_run_creates_its_tables_with_every_column_so_sql_on_one_never_written_gives_no_rows(write_config,
                                                                                          fake_influxdb3):
    """SQL fails on a column or table never written (DataFusion's "No field named humidity", where InfluxQL and
    Flux give no data): the SQL alert rules failed for a setup without a humidity sensor. With a managed database,
    run creates `temperature` and `templog` with every column their points may have (POST /api/v3/configure/table:
    influxdata/influxdb@v3.10.1:influxdb3_types/src/http.rs CreateTableRequest); a later write adds the others."""
    config = write_config(influx_section("v3", fake_influxdb3.url, ", retention: 30d")
                          + "collector: {tags: {site: home}}\n"
                          + "sensors:\n  - {name: desk, type: simulated, interval: 200ms, tags: {room: office}}\n")
    running = start_run(config)
    wait_until(lambda: len(fake_influxdb3.points()) >= 2, what="points in the database")
    code, log = stop_run(running)
    assert code == 0 and "created table temperature with its columns" in log, log
    readings = columns(fake_influxdb3, "temperature")
    assert {k: readings[k] for k in ("humidity", "dewpoint", "celsius")} == dict.fromkeys(
        ("humidity", "dewpoint", "celsius"), "Float64")
    assert all(readings[tag].startswith("Dictionary") for tag in ("host", "sensor", "site", "room"))
    health = columns(fake_influxdb3, "templog")
    assert health["outbox_depth"] == "Int64" and health["uptime_s"] == "Float64" and "room" not in health
    influx = load_config(config, environ={}).influxdb
    assert influx is not None
    client = connect(influx)
    assert isinstance(client, InfluxV3)
    assert list(client.query_stream("SELECT time, humidity, dewpoint FROM temperature WHERE humidity > 0")) == []
    assert list(client.query_stream("SELECT max(outbox_depth) AS depth FROM templog WHERE sensor = 'x'")) == [{}]
    client.close()
    running = start_run(config)  # again: the tables exist (409), which is no refusal
    wait_until(lambda: "retention: database temperature: retention already 30d" in running.log, what="retention")
    code, log = stop_run(running)
    assert code == 0 and "could not create table" not in log and "created table" not in log, log


def test_a_table_the_server_will_not_create_is_a_warning_and_delivery_goes_on(write_config, fake_influxdb3):
    with FaultyProxy(fake_influxdb3.url, fault_prefix="/api/v3/configure/table") as proxy:
        proxy.fail_next(2, status=400, body=b'{"error": "not today"}')
        running = start_run(write_config(influx_section("v3", proxy.url, ", retention: 30d") + SENSORS))
        wait_until(lambda: len(fake_influxdb3.points()) >= 2, what="points in the database")
        code, log = stop_run(running)
    assert code == 0 and "could not create table temperature (HTTP 400: not today)" in log, log
    assert "could not create table templog" in log and "retention: created database temperature" in log, log


def test_a_write_influxdb3_refuses_as_a_whole_is_retried_and_no_point_is_set_aside(write_config, fake_influxdb3,
                                                                                    tmp_path):
    """A 400 without a list of lines refuses the request, not a point: with accept_partial (templog's default)
    InfluxDB 3 lists every line it refuses. A soft-deleted database answers every write so
    (influxdata/influxdb@v3.10.1:influxdb3_write/src/write_buffer/validator.rs initialize: DatabaseDeleted;
    influxdb3_server/src/http.rs IntoResponse: 400, `data` skipped). Isolating it set every point aside; now the
    points wait in the outbox and one repeating ERROR names the server's message. (After `influxdb3 delete database
    X` the database is renamed X-<time> and the name X is free: a write to X creates a new one, catalog.rs
    soft_delete_database; so templog meets this answer only with the renamed name configured.)"""
    fake_influxdb3.add_database("temperature")
    fake_influxdb3.write_lp("temperature", "temperature,sensor=a celsius=1.0 1")
    answer = urllib3.request("DELETE", f"{fake_influxdb3.url}/api/v3/configure/database?db=temperature",
                             headers={"Authorization": "Bearer test-token"})
    assert answer.status == 200
    deleted = next(iter(fake_influxdb3.deleted))
    config = write_config(f'influxdb: {{url: "{fake_influxdb3.url}", api: v3, bucket: "{deleted}", '
                          'token: test-token}\n' + SENSORS)
    running = start_run(config)
    wait_until(lambda: stored_points(tmp_path / "data/outbox.sqlite") >= 3, what="readings kept in the outbox")
    code, log = stop_run(running)
    assert code == 0 and f"cannot write to soft-deleted database '{deleted}'" in log, log
    assert log.count("delivery to InfluxDB failed, points wait in the outbox") == 1, log
    assert "set aside" not in log and rejected(tmp_path / "data/outbox.sqlite") == 0, log
    assert "temperature" not in fake_influxdb3.databases  # the name is free: a write to it would make a new one


def stored_points(outbox: Path) -> int:
    return _count(outbox, "points")


def rejected(outbox: Path) -> int:
    return _count(outbox, "rejected")


def _count(outbox: Path, table: str) -> int:
    if not outbox.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(outbox.absolute().as_uri() + "?mode=ro", uri=True)) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_without_retention_a_missing_database_is_a_warning_and_no_table_creates_it(write_config, fake_influxdb3):
    """Without influxdb.retention InfluxDB 3's first write creates the database keeping forever
    (influxdata/influxdb@v3.10.1:influxdb3_catalog/src/catalog/versions/v3/catalog.rs begin_database_transaction:
    RetentionPeriod::Indefinite); configure/table would create it alike (catalog.rs create_table), so none is
    sent: one WARNING says so at start and how to have one. `check` reports it missing."""
    config = write_config(influx_section("v3", fake_influxdb3.url) + SENSORS)
    check = templog("check", "-c", str(config))
    assert check.returncode == 1 and "database 'temperature' does not exist" in check.stdout, check.stdout
    running = start_run(config)
    wait_until(lambda: len(fake_influxdb3.points()) >= 2, what="points in the database")
    code, log = stop_run(running)
    warning = ("WARNING database temperature does not exist: InfluxDB 3 creates it on the first write with no "
               "retention (keeps its points forever); set influxdb.retention to have templog create it with one")
    assert code == 0 and log.count(warning) == 1, log
    assert not any(path == "/api/v3/configure/table" for _, path in fake_influxdb3.requests)


def test_without_retention_an_existing_database_gets_its_tables(write_config, fake_influxdb3):
    """The SQL alert rules need every column (see the test above with a retention): made at start whether or not
    templog manages the retention, once the database exists."""
    fake_influxdb3.add_database("temperature")
    running = start_run(write_config(influx_section("v3", fake_influxdb3.url) + SENSORS))
    wait_until(lambda: len(fake_influxdb3.points()) >= 2, what="points in the database")
    code, log = stop_run(running)
    assert code == 0 and "created table temperature with its columns" in log and "does not exist" not in log, log
    assert columns(fake_influxdb3, "temperature")["humidity"] == "Float64"
    assert columns(fake_influxdb3, "templog")["outbox_depth"] == "Int64"


def test_a_token_that_may_not_create_tables_is_one_warning_and_delivery_goes_on(write_config):
    """A token that may write but not create (Enterprise's database tokens: 403 on configure/*): one WARNING
    naming the tables and what it means for Grafana, and the points are written all the same."""
    with FakeInfluxDB3(read_write_tokens=["db-token"]) as server:
        server.add_database("temperature")
        section = influx_section("v3", server.url).replace("token: test-token", "token: db-token")
        running = start_run(write_config(section + SENSORS))
        wait_until(lambda: len(server.points()) >= 2, what="points in the database")
        code, log = stop_run(running)
    assert code == 0 and log.count("may not create tables") == 1, log
    assert ("temperature, templog cannot be made with their columns, which appear as points write them; Grafana's "
            "SQL alert rules stay in Error until each column's first point") in log, log


def test_check_names_each_column_whose_type_would_refuse_every_point(write_config, fake_influxdb3):
    """A `temperature` table made by other writes can hold a column templog writes with another type: InfluxDB 3
    then refuses every such point (influxdata/influxdb@v3.10.1:influxdb3_write/src/write_buffer/validator.rs:
    InvalidColumnType), and templog sets each aside. `check` compares information_schema.columns with templog's
    columns: one line per column, naming table, column, both types and what to do."""
    fake_influxdb3.add_database("temperature")
    fake_influxdb3.write_lp("temperature", 'temperature,host=h sensor="desk",room=1.0,celsius=21i 1')
    config = write_config(influx_section("v3", fake_influxdb3.url)
                          + "sensors:\n  - {name: desk, type: simulated, tags: {room: office}}\n")
    done = templog("check", "-c", str(config))
    problems = [line for line in done.stdout.splitlines() if "table temperature: column" in line]
    assert done.returncode == 1 and len(problems) == 3, done.stdout + done.stderr
    assert ("database 'temperature', table temperature: column celsius is Int64 there, templog writes it as a "
            "field, Float64: InfluxDB 3 refuses each such point and templog sets it aside; delete the table "
            "(influxdb3 delete table --database temperature temperature) or set influxdb.bucket to another "
            "database") in done.stdout, done.stdout
    assert "column room is Float64 there, templog writes it as a tag, Dictionary(Int32, Utf8)" in done.stdout
    assert "column sensor is Utf8 there, templog writes it as a tag" in done.stdout
    with FakeInfluxDB3() as server:  # the tables as templog makes them: all is well
        server.add_database("temperature")
        config = write_config(influx_section("v3", server.url)
                              + "sensors:\n  - {name: desk, type: simulated, tags: {room: office}}\n")
        influx = load_config(config, environ={}).influxdb
        assert influx is not None
        client = connect(influx, reading_tags=["room"])
        assert isinstance(client, InfluxV3)
        client.ensure_retention()
        assert "room" in columns(server, "temperature")
        done = templog("check", "-c", str(config))
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_limit_error_names_the_table_and_series_of_the_first_refused_line(write_config, tmp_path):
    """A 422 listing lines at a limit (influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs PartialLpWrite):
    the ERROR said how many lines, not which table: it names the measurement and series key of the first one, the
    line its number points at."""
    with FakeInfluxDB3(column_limit=3) as server:  # time, sensor, celsius: humidity is one too many
        influx = load_config(write_config(influx_section("v3", server.url) + SENSORS), environ={}).influxdb
        assert influx is not None
        client = connect(influx)
        outbox = Outbox(str(tmp_path / "o.sqlite"))
        base = 1_764_000_000 * 1_000_000_000
        outbox.append([temperature("desk", base, 20.0)])
        outbox.append([reading_point(Series(MEASUREMENT, {"sensor": name}), Reading(name, base + 1, 20.0, 40.0))
                       for name in ("wall", "door")])
        with pytest.raises(LimitReached) as refused:
            Sender(outbox, client, 100, Stats()).drain()
    assert "refused 2 line(s) at a limit" in str(refused.value)
    assert "the first, line 2: table temperature, series temperature,sensor=wall" in str(refused.value), refused.value

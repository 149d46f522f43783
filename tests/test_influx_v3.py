"""api v3 (issue 13): InfluxDB 3 Core / Enterprise through its own HTTP API, against FakeInfluxDB3, the stand-in that
answers as influxdata/influxdb@v3.10.1's source does (its docstring names the files), and against real servers of
the other lines (influxd 1.x) for the wrong-api hints. The SQL texts of `history` also run on DataFusion alone.

On main each of these fails at the config: `api: v3` was refused ("expected one of v1, v2")."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from pathlib import Path

import datafusion
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.config import load_config
from collector.delivery import Sender
from collector.history import aggregate
from collector.influx import InfluxV3, RetentionUnsupported, connect
from collector.influx.errors import (
    HttpError,
    LimitReached,
    PartialWrite,
    QueryFailed,
    Rejected,
    RequestRefused,
    Unauthorized,
)
from collector.influx.v3 import history_row, rows_of_jsonl, write_refusal
from collector.outbox import Outbox
from collector.query import HistoryQuery, sql
from collector.stats import Stats
from fake_influxdb3 import TAG_TYPE, FakeInfluxDB3, json_lines
from history_check import HOSTILE_NAME, assert_history_returns_what_was_written, lines_at
from temperature_points import temperature

S = 1_000_000_000
DAY_NS = 86400 * S
SENSORS = "sensors:\n  - {name: desk, type: simulated, interval: 200ms}\n"


def v3_config(write_config, url, retention="30d", token="test-token", extra="", name="config.yaml") -> Path:
    retention_key = f", retention: {retention}" if retention is not None else ""
    return write_config(f'influxdb: {{url: "{url}", api: v3, bucket: temperature, token: "{token}"'
                        f"{retention_key}{extra}}}\n" + SENSORS, name)


def v3_client(config: Path) -> InfluxV3:
    influx = load_config(config, environ={}).influxdb
    assert influx is not None
    client = connect(influx)
    assert isinstance(client, InfluxV3)
    return client


def read(outbox_path: Path, query: str) -> list[tuple]:
    """What the outbox holds, through a read-only connection of the test's own (nothing before it exists)."""
    try:
        with contextlib.closing(sqlite3.connect(outbox_path.absolute().as_uri() + "?mode=ro", uri=True)) as db:
            return db.execute(query).fetchall()
    except sqlite3.OperationalError:
        return []


def waiting(outbox_path: Path) -> int:
    counted = read(outbox_path, "SELECT count(*) FROM points") if outbox_path.exists() else []
    return counted[0][0] if counted else 0


def rejected_lines(outbox_path: Path) -> list[str]:
    return [row[0] for row in read(outbox_path, "SELECT line FROM rejected ORDER BY id")]


def test_run_creates_the_database_with_its_retention_and_delivers(write_config, fake_influxdb3):
    config = v3_config(write_config, fake_influxdb3.url, retention="7d")
    running = start_run(config)
    wait_until(lambda: len(fake_influxdb3.points()) >= 3, what="points in the database")
    code, log = stop_run(running)
    assert code == 0, log
    assert "retention: created database temperature with retention 7d" in log, log
    assert fake_influxdb3.databases["temperature"] == 7 * DAY_NS
    points = fake_influxdb3.points()
    assert {p["sensor"] for p in points} == {"desk"} and all(15 < p["celsius"] < 27 for p in points)
    assert all(p["time"] % (200 * 1_000_000) == 0 for p in points)  # precision=nanosecond: ticks as written
    assert ("POST", "/api/v3/configure/database") in fake_influxdb3.requests
    assert "stopped; 0 point(s) wait in the outbox" in log


def test_a_partial_write_sets_aside_exactly_the_refused_line_and_delivers_the_others_once(write_config,
                                                                                       fake_influxdb3, tmp_path):
    """InfluxDB 3 stores a batch's good lines and lists the others (accept_partial's default): the listed one is
    set aside, the rest acknowledged, and nothing is written twice."""
    client = v3_client(v3_config(write_config, fake_influxdb3.url))
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    base = 1_764_000_000 * S
    outbox.append([temperature("desk", base + i * S, 20 + i / 4) for i in range(5)])
    with sqlite3.connect(outbox.path) as db:  # the third point, as another writer's string field would make it
        db.execute("UPDATE points SET line = replace(line, 'celsius=20.5', 'celsius=\"warm\"') WHERE time_ns = ?",
                   (base + 2 * S,))
    bad = f'temperature,sensor=desk celsius="warm" {base + 2 * S}'
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    stats = Stats()
    assert Sender(outbox, client, 100, stats).drain() == 4
    assert len(fake_influxdb3.writes) == 1  # the good lines were stored by that one write: none re-sent
    assert [p["time"] for p in fake_influxdb3.points()] == [base + i * S for i in (0, 1, 3, 4)]
    assert [line.split(" ", 1)[1] for line in rejected_lines(tmp_path / "o.sqlite")] == [bad.split(" ", 1)[1]]
    assert outbox.depth == 0 and stats.get("points_rejected") == 1 and stats.get("points_delivered") == 4


def test_a_column_limit_keeps_the_refused_points_in_the_outbox_and_delivers_them_once_it_is_raised(
        write_config, tmp_path, caplog):
    """422: a line that would pass a limit of InfluxDB 3 is stored once the limit allows it: never set aside. What
    came before it is acknowledged; it and what follows are retried."""
    with FakeInfluxDB3(column_limit=3) as server:  # time, sensor, celsius: a humidity column is one too many
        client = v3_client(v3_config(write_config, server.url))
        outbox = Outbox(str(tmp_path / "o.sqlite"))
        base = 1_764_000_000 * S
        outbox.append([temperature("desk", base, 20.0), temperature("desk", base + S, 21.25)])
        outbox.append([temperature("desk", base + 2 * S, 22.0)])
        with sqlite3.connect(outbox.path) as db:
            db.execute("UPDATE points SET line = replace(line, 'celsius=21.25', 'celsius=21.25,humidity=40') "
                       "WHERE time_ns = ?", (base + S,))
        outbox = Outbox(str(tmp_path / "o.sqlite"))
        sender = Sender(outbox, client, 100, Stats())
        with pytest.raises(LimitReached, match=r"refused 1 line\(s\) at a limit .* they stay in the outbox and are "
                                               r"retried"):
            sender.drain()
        assert outbox.depth == 2 and rejected_lines(tmp_path / "o.sqlite") == []
        server.column_limit = 500  # the limit raised
        assert sender.drain() == 2
        assert [(p["time"], p.get("humidity")) for p in server.points()] == [
            (base, None), (base + S, 40.0), (base + 2 * S, None)]
        assert outbox.depth == 0


def test_a_bad_token_keeps_collecting_into_the_outbox_and_says_so(write_config, fake_influxdb3, tmp_path):
    config = v3_config(write_config, fake_influxdb3.url, token="Wr0ng-v3-token")
    running = start_run(config)
    wait_until(lambda: "delivery to InfluxDB failed, points wait in the outbox" in running.log, what="the failure")
    wait_until(lambda: waiting(tmp_path / "data/outbox.sqlite") >= 3, what="readings kept in the outbox")
    code, log = stop_run(running)
    assert code == 0 and "HTTP 401" in log, log
    assert "Wr0ng-v3-token" not in log
    assert fake_influxdb3.points() == []
    check = templog("check", "-c", str(config))
    assert check.returncode == 1 and "problem: InfluxDB at " in check.stdout and "HTTP 401" in check.stdout
    assert "Wr0ng-v3-token" not in check.stdout + check.stderr


def test_retention_on_an_existing_database_409_then_its_retention_read_and_changed(write_config, fake_influxdb3,
                                                                                   caplog):
    fake_influxdb3.add_database("temperature", 30 * 86400)
    client = v3_client(v3_config(write_config, fake_influxdb3.url, retention="30d"))
    assert client.problems() == []
    assert client.ensure_retention() == "database temperature: retention already 30d"
    shorter = v3_client(v3_config(write_config, fake_influxdb3.url, retention="7d"))
    assert shorter.problems() == ["database 'temperature': retention is 30d, config says 7d (templog run tries to "
                                  "apply it; InfluxDB 3 may refuse; then InfluxDB will delete the points older "
                                  "than 7d, in database temperature)"]
    with caplog.at_level("WARNING", logger="templog.influx"):
        assert shorter.ensure_retention() == "database temperature: retention changed from 30d to 7d"
    assert "InfluxDB will delete the points older than 7d, in database temperature" in caplog.text
    assert fake_influxdb3.databases["temperature"] == 7 * DAY_NS
    forever = v3_client(v3_config(write_config, fake_influxdb3.url, retention="0"))
    assert forever.ensure_retention() == "database temperature: retention changed from 7d to forever"
    assert fake_influxdb3.databases["temperature"] is None and forever.problems() == []


def test_a_retention_the_server_will_not_change_is_a_warning_and_writing_goes_on(write_config):
    with FakeInfluxDB3(retention_updates=False) as server:
        server.add_database("temperature", 30 * 86400)
        client = v3_client(v3_config(write_config, server.url, retention="90d"))
        with pytest.raises(RetentionUnsupported, match="could not change the retention of database temperature: "
                                                       "HTTP 405"):
            client.ensure_retention()
        client.write(["temperature,sensor=a celsius=1.0 1000000000"])
        assert len(server.points()) == 1


def test_check_reports_a_missing_database_and_a_token_that_may_not_read_its_retention(write_config, fake_influxdb3):
    client = v3_client(v3_config(write_config, fake_influxdb3.url, retention="30d"))
    assert client.problems() == [f"database 'temperature' does not exist on {fake_influxdb3.url}: templog run "
                                 "creates it"]
    unmanaged = v3_client(v3_config(write_config, fake_influxdb3.url, retention=None))
    assert unmanaged.problems() == [f"database 'temperature' does not exist on {fake_influxdb3.url}: create it, or "
                                    "set influxdb.retention and templog run creates it with that retention"]
    assert unmanaged.ensure_retention().startswith("not managed (influxdb.retention is not set)")
    assert "temperature" not in fake_influxdb3.databases
    with FakeInfluxDB3(read_write_tokens=["db-token"]) as server:  # Enterprise's database tokens: no _internal
        server.add_database("temperature", 7 * 86400)
        config = v3_config(write_config, server.url, retention="30d", token="db-token")
        done = templog("check", "-c", str(config))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "the retention of database temperature cannot be read with these credentials" in done.stderr
        assert f"InfluxDB at {server.url} ready" in done.stdout


def test_check_and_write_tell_which_api_the_server_at_the_url_wants(write_config, fake_influxdb3, influxd,
                                                                    fake_influxdb2):
    """A v3 server's /ping (with the token: it needs one) says 3.10.1; 1.x and 2.x answer with theirs."""
    done = templog("check", "-c", str(v3_config(write_config, influxd.url)))
    assert done.returncode == 1 and "this is InfluxDB 1.x (version 1.6" in done.stdout
    assert "set influxdb.api: v1" in done.stdout, done.stdout
    done = templog("check", "-c", str(v3_config(write_config, fake_influxdb2.url)))
    assert done.returncode == 1 and "set influxdb.api: v2, with influxdb.org and an API token" in done.stdout
    with pytest.raises(HttpError, match="this is InfluxDB 2.x"):
        v3_client(v3_config(write_config, fake_influxdb2.url)).write(["temperature,sensor=a celsius=1 1"])
    v2 = write_config(f'influxdb: {{url: "{fake_influxdb3.url}", api: v2, org: home, token: test-token}}\n' + SENSORS)
    done = templog("check", "-c", str(v2))
    assert done.returncode == 1
    assert f"problem: InfluxDB at {fake_influxdb3.url}: this is InfluxDB 3 (version 3.10.1): set influxdb.api: v3" \
        in done.stdout, done.stdout
    v1 = write_config(f'influxdb: {{url: "http://reader:test-token@{fake_influxdb3.url[7:]}", api: v1}}\n' + SENSORS)
    done = templog("check", "-c", str(v1))
    assert done.returncode == 1 and "set influxdb.api: v3" in done.stdout, done.stdout


def test_history_through_sql_returns_what_was_written(write_config, fake_influxdb3):
    config = v3_config(write_config, fake_influxdb3.url)
    client = v3_client(config)
    client.ensure_retention()
    base = 1_764_000_000 * S
    client.write(lines_at(base))
    assert_history_returns_what_was_written(config, base)
    last = fake_influxdb3.queries[-1]
    assert last["format"] == "jsonl" and "date_bin(INTERVAL '60000000000 nanoseconds'" in last["q"]


def test_history_of_a_field_or_database_never_written(write_config, fake_influxdb3):
    """No humidity column yet is no rows (DataFusion's "No field named", a 500), as on every other source; a database
    that does not exist is one line saying so."""
    config = v3_config(write_config, fake_influxdb3.url)
    done = templog("history", "-c", str(config), "--format", "json")
    assert done.returncode == 1 and "database not found: temperature" in done.stderr, done.stderr
    assert "database 'temperature' does not exist: create it" in done.stderr
    v3_client(config).write(["temperature,sensor=a celsius=21.5 %d" % (time.time_ns() - 60 * S)])
    done = templog("history", "-c", str(config), "--format", "json", "--field", "humidity")
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr
    done = templog("history", "-c", str(config), "--format", "json")
    assert done.returncode == 0 and [r["celsius"] for r in json.loads(done.stdout)] == [21.5]


def test_a_query_sends_a_json_accept_header_which_influxdb3_requires(write_config, fake_influxdb3):
    """Any Accept but JSON, */* or none is a 400, whatever the request's own format says (QueryFormat::
    try_from_headers is read first): `application/jsonl`, the answer's own type, is refused."""
    fake_influxdb3.add_database("temperature")
    body = json.dumps({"db": "temperature", "q": "SELECT 1 AS one", "format": "jsonl"})
    headers = {"Authorization": "Bearer test-token"}
    refused = urllib3.request("POST", f"{fake_influxdb3.url}/api/v3/query_sql", body=body,
                              headers={**headers, "Accept": "application/jsonl"})
    assert (refused.status, refused.data) == (400, b"invalid mime type (application/jsonl)")
    client = v3_client(v3_config(write_config, fake_influxdb3.url))
    assert list(client.query_stream("SELECT 1 AS one")) == [{"one": 1}]


def test_a_query_the_server_refuses_is_one_line_naming_what_was_queried(write_config, fake_influxdb3):
    """A table not found is a Plan error in a Diagnostic: 400, named in InfluxDB 3's default catalog and schema
    (influxdata/influxdb@v3.10.1:influxdb3/tests/cli/mod.rs query_no_table: "table 'public.iox.not_here' not
    found")."""
    fake_influxdb3.add_database("temperature")
    client = v3_client(v3_config(write_config, fake_influxdb3.url))
    with pytest.raises(QueryFailed, match=r"HTTP 400: Error during planning: table 'public\.iox\.nope' not found"):
        list(client.query_stream("SELECT * FROM nope"))


def test_the_history_sql_on_datafusion_gives_the_outbox_s_rows():
    """The SQL texts run by DataFusion (the engine of InfluxDB 3) on a table of InfluxDB 3's schema for our points
    (tags dictionaries, fields floats, time in ns without a zone) give exactly what the outbox source computes: raw
    rows in time order then sensor, windows on the epoch grid stamped with their start, readings without the field
    left out."""
    base = 1_764_000_000 * S + 7 * S
    points = [(base + i * 500_000_000, sensor, ((i * 7 + n) % 40) / 4, 40.0 + i if sensor != "c" else None)
              for i in range(400) for n, sensor in enumerate(("b", "a", "c"))]
    table = pa.record_batch([pa.array([p[0] for p in points], pa.timestamp("ns")),
                             pa.array([p[1] for p in points], TAG_TYPE), pa.array(["h"] * len(points), TAG_TYPE),
                             pa.array([p[2] for p in points]),
                             pa.array([p[3] for p in points], pa.float64())],
                            names=["time", "sensor", "host", "celsius", "humidity"])
    context = datafusion.SessionContext()
    context.register_record_batches("temperature", [[table]])

    def run(query: HistoryQuery) -> list[tuple]:  # the answer as arrow-json writes it, as InfluxDB 3 sends it
        return [history_row(r, query.columns) for r in rows_of_jsonl(json_lines(context.sql(sql.history(query))))]

    stop = base + 150 * S
    for field, column in (("celsius", 2), ("humidity", 3)):
        kept = sorted((t, s, p[column]) for p in points if (t := p[0]) < stop and (s := p[1]) in ("a", "c")
                      and p[column] is not None)
        raw = HistoryQuery(base + S, stop, ("a", "c"), field=field)
        assert run(raw) == [row for row in kept if row[0] >= base + S]
        windowed = HistoryQuery(base + S, stop, ("a", "c"), 60, field)
        assert run(windowed) == list(aggregate((row for row in kept if row[0] >= base + S), 60 * S))
    assert run(HistoryQuery(base + 1000 * S, base + 2000 * S)) == []


ANSWER_LINES = st.lists(st.binary(max_size=60) | st.sampled_from([
    b'{"time":"2026-01-01T00:00:00","sensor":"a","celsius":21.5}', b'{"time":"2026-01-01T00:00:00.5"}',
    b'{"time":"2026-02-30T00:00:00","sensor":"a","celsius":1}', b'[{"time":"2026-01-01T00:00:00.000000001",'
    b'"sensor":"b","celsius":-1e300}]', b"[]", b'{"time":"x","celsius":true}', b"null", b'"text"', b"\xff\xfe",
    b'{"time":"2026-01-01T00:00:00","celsius":2}', b'{"time":"2026-01-01T00:00:00","sensor":"a","celsius":NaN}',
    b'{"time":"2026-01-01T00:00:00","sensor":"a","celsius":-Infinity}',
    b'{"time":"2026-01-01T00:00:00","sensor":"a","celsius":1e999}']), max_size=6)


@settings(max_examples=300, deadline=None)
@given(ANSWER_LINES)
def test_any_query_answer_gives_rows_or_a_query_error(lines):
    try:
        rows = [history_row(record, ("celsius",)) for record in rows_of_jsonl(lines)]
    except QueryFailed as exc:
        assert str(exc)
        return
    for time_ns, sensor, value in rows:
        assert isinstance(time_ns, int) and isinstance(sensor, str) and isinstance(value, float)
        assert math.isfinite(value)  # NaN, Infinity, 1e999: refused


BATCH = [temperature(f"sensor-{i}", i * S, 20.0).line() for i in range(6)]
WRITE_BODIES = st.binary(max_size=80) | st.builds(
    lambda entries, error: json.dumps({"error": error, "data": entries}).encode(),
    st.lists(st.fixed_dictionaries({"line_number": st.integers(-2, 8) | st.booleans() | st.text(max_size=3),
                                    "error_message": st.sampled_from(["invalid column type", "Update to schema would "
                                                                      "exceed number of columns", ""]) | st.none(),
                                    "original_line": st.sampled_from([line[:20] for line in BATCH]) | st.text(
                                        max_size=3)}),
             max_size=4),
    st.sampled_from(["partial write of line protocol occurred", "x"]))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([400, 401, 403, 404, 413, 422, 429, 500, 503]), WRITE_BODIES, st.integers(1, 6))
def test_any_write_refusal_is_one_failure_whose_lines_are_in_the_batch(status, body, count):
    failure = write_refusal(status, body, None, BATCH[:count], ["Secr3t"])
    assert isinstance(failure, HttpError) and failure.status == status and "Secr3t" not in str(failure)
    if isinstance(failure, PartialWrite):
        assert status == 400 and failure.rejected and all(0 <= i < count for i in failure.rejected)
        listed = {e["line_number"] - 1: e["original_line"] for e in json.loads(body)["data"]}
        assert all(BATCH[i][:20] == listed[i] for i in failure.rejected)  # only a line that starts as listed
    elif isinstance(failure, LimitReached):
        assert status in (400, 422)
        assert failure.limited is None or all(0 <= i < count for i in [*failure.limited, *failure.rejected])
    elif isinstance(failure, RequestRefused):
        with contextlib.suppress(ValueError, AttributeError):  # no list: the request's failure, retried
            assert not json.loads(body).get("data")
        assert status == 400
    elif status in (400, 422):
        assert isinstance(failure, Rejected) and status == 400  # a list that does not fit: isolated by halves


def test_a_partial_write_answer_is_read_as_the_server_writes_it():
    """The body of influxdata/influxdb@v3.10.1's PartialLpWrite (http.rs; serde_json, WriteLineError's fields):
    line_number from 1."""
    body = (b'{"error":"partial write of line protocol occurred","data":[{"error_message":"invalid column type for '
            b"column 'celsius', expected Float, got String\",\"line_number\":3,"
            b'"original_line":"temperature,sensor=d"}]}')
    batch = [f"temperature,sensor{i}=a celsius=1 {i}" for i in range(5)]
    batch[2] = 'temperature,sensor=desk celsius="warm" 2'
    failure = write_refusal(400, body, None, batch)
    assert isinstance(failure, PartialWrite) and list(failure.rejected) == [2]
    assert str(failure) == ("HTTP 400: partial write of line protocol occurred: 1 of 5 line(s) refused, the first "
                            "(line 3) for invalid column type for column 'celsius', expected Float, got String")
    assert isinstance(write_refusal(400, body, None, batch[:2]), Rejected)  # a line the batch has not: isolated
    batch[2], batch[3] = batch[3], batch[2]
    assert isinstance(write_refusal(400, body, None, batch), Rejected)  # line 3 does not start as listed: isolated
    assert isinstance(write_refusal(401, b'{"error": "the request was not authenticated"}', None, batch),
                      Unauthorized)
    malformed = b'{"error": "Authorization header was malformed, the request was not in the form of ..."}'
    assert isinstance(write_refusal(400, malformed, None, batch), Unauthorized)  # the token's fault: never set aside


@pytest.mark.parametrize("influxdb, key, message", [
    ("{url: 'http://u:pw@127.0.0.1:8181', api: v3}", "influxdb.url", "api v3 authenticates with an API token"),
    ("{api: v3, bucket: 'my db'}", "influxdb.bucket", "is no InfluxDB 3 database name"),
    ("{api: v3, bucket: _x}", "influxdb.bucket", "starting with a letter or digit"),
    ("{api: v3, token: 'tök€n'}", "influxdb.token", "holds a character no HTTP header can carry"),
    ("{api: v3, token: 'apiv3_a b'}", "influxdb.token", "holds a space or another blank"),
])
def test_config_refuses_what_influxdb3_cannot_take(write_config, influxdb, key, message):
    done = templog("check", "-c", str(write_config(f"influxdb: {influxdb}\n" + SENSORS)))
    assert done.returncode == 2 and key in done.stderr and message in done.stderr, done.stderr
    assert "pw" not in done.stderr


def test_config_takes_api_v3_and_ignores_org(write_config):
    influx = load_config(write_config("influxdb: {api: v3, org: ignored, url: 'http://localhost:8181'}\n" + SENSORS),
                         environ={}).influxdb
    assert influx is not None and influx.api == "v3" and influx.bucket == "temperature"
    assert v3_client(write_config("influxdb: {api: v3}\n" + SENSORS)).describe() == \
        "InfluxDB at http://localhost:8086 (api v3, database temperature)"


def test_an_answer_cut_short_after_some_rows_is_one_line_saying_so(write_config):
    """An error met while InfluxDB 3 streams the rows ends the body without its last chunk (hyper's StreamBody with
    an Err frame: influxdata/influxdb@v3.10.1:core/iox_http_util/src/lib.rs stream_results_to_response_body):
    history prints what came and says the answer was cut short, exit 1."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def answer_then_hang_up() -> None:
        connection, _ = listener.accept()
        listener.close()  # the version asked for the failure's hint: refused at once, no hint
        with connection:
            connection.recv(65536)
            row = b'{"time":"2026-01-01T00:00:00","sensor":"desk","celsius":21.5}\n'
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/jsonl\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n%x\r\n%s\r\n" % (len(row), row))

    threading.Thread(target=answer_then_hang_up, daemon=True).start()
    config = v3_config(write_config, f"http://127.0.0.1:{listener.getsockname()[1]}")
    done = templog("history", "-c", str(config), "--start", "2026-01-01T00:00:00Z", "--stop", "2026-01-02T00:00:00Z",
                   "--format", "csv")
    assert done.returncode == 1 and done.stdout == "time,sensor,celsius\n2026-01-01T00:00:00Z,desk,21.5\n"
    assert "the answer was cut short" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_run_delivering_a_backlog_with_a_refused_line_sends_each_good_line_once(write_config, fake_influxdb3,
                                                                                 tmp_path):
    """The same through `templog run`: a backlog waiting in the outbox, one of its lines a type conflict; the run
    sets exactly that one aside and writes every other backlog line in one request only."""
    path = tmp_path / "data/outbox.sqlite"
    path.parent.mkdir()
    base = 1_764_000_000 * S
    backlog = Outbox(str(path))
    backlog.append([temperature("old", base + i * S, 20 + i / 4) for i in range(6)])
    backlog.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE points SET line = replace(line, 'celsius=20.75', 'celsius=true') WHERE time_ns = ?",
                   (base + 3 * S,))
    running = start_run(v3_config(write_config, fake_influxdb3.url))
    wait_until(lambda: rejected_lines(path) and len([p for p in fake_influxdb3.points() if p["sensor"] == "old"]) == 5,
               what="the backlog delivered")
    code, log = stop_run(running)
    assert code == 0, log
    assert [line.split(" ")[1] for line in rejected_lines(path)] == ["celsius=true"]
    assert "InfluxDB refused a point, set aside in the outbox's rejected table" in log
    sent = b"\n".join(fake_influxdb3.writes).decode().splitlines()
    for i in (0, 1, 2, 4, 5):
        assert sum(line.endswith(f" {base + i * S}") and "sensor=old" in line for line in sent) == 1, i


def test_a_sensor_name_with_quotes_selects_its_own_rows_in_the_history_sql():
    names = [HOSTILE_NAME + " it's", HOSTILE_NAME, "it''s"]
    table = pa.record_batch([pa.array([S, S, S], pa.timestamp("ns")), pa.array(names, TAG_TYPE),
                             pa.array([1.0, 2.0, 3.0])], names=["time", "sensor", "celsius"])
    context = datafusion.SessionContext()
    context.register_record_batches("temperature", [[table]])
    for i, name in enumerate(names):
        lines = json_lines(context.sql(sql.history(HistoryQuery(0, 2 * S, (name,)))))
        assert [history_row(r, ("celsius",)) for r in rows_of_jsonl(lines)] == [(S, name, float(i + 1))]

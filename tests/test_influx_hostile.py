"""InfluxDB as a new user meets it, on real processes: retention left alone unless asked, credentials in the URL,
the wrong api, a wrong password. templog runs as a process; InfluxDB 1.x is a real influxd (with authentication and
a one-second retention check, so what a shortened retention deletes is really deleted while the test looks)."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.config import ConfigError, load_config
from collector.influx import InfluxV1, RetentionUnsupported
from collector.influx.errors import Unauthorized, http_error
from collector.outbox import Outbox
from servers import Influxd1

S = 1_000_000_000
DAY_NS = 86_400 * S
ADMIN_PASSWORD = "Adm1n-hostile-pw"
SENSORS = """
collector: {interval: 500ms}
sensors:
  - {name: desk, type: simulated}
"""


@pytest.fixture(scope="module")
def secured_influxd(tmp_path_factory):
    """influxd with authentication on (user admin) that deletes expired shards every second."""
    server = Influxd1.start(tmp_path_factory.mktemp("secured-influxd"), admin=("admin", ADMIN_PASSWORD),
                            retention_check="1s")
    yield server
    server.stop()


def default_policy(server, database):
    series = server.query(f'SHOW RETENTION POLICIES ON "{database}"')["results"][0]["series"][0]
    return next(dict(zip(series["columns"], row, strict=True)) for row in series["values"] if row[-1])


def count(server, database, measurement):
    result = server.query(f'SELECT count(*) FROM "{measurement}"', db=database)["results"][0]
    return sum(row[1] for s in result.get("series", []) for row in s["values"])


def databases(server):
    series = server.query("SHOW DATABASES")["results"][0].get("series", [])
    return {row[0] for s in series for row in s.get("values", [])}


def v1_config(write_config, url, database, extra="", name="config.yaml"):
    return write_config(f'influxdb: {{url: "{url}", api: v1, bucket: {database}{extra}}}\n' + SENSORS, name)


def with_a_90_day_old_point(server, database):
    """A database as `CREATE DATABASE` makes it (retention forever) holding a 90-day-old point of another
    measurement."""
    server.query(f'CREATE DATABASE "{database}"')
    server.write(database, [f"boiler,room=cellar celsius=61.5 {(time.time_ns() - 90 * DAY_NS) // S * S}"])
    assert default_policy(server, database)["duration"] == "0s" and count(server, database, "boiler") == 1


# ---------------------------------------------------------------------------------------------------------------
# 1. Retention: changed only when `retention` is set; shortening it is a warning, even under -q


def test_without_a_retention_key_run_leaves_the_databases_retention_and_its_old_points(write_config, secured_influxd,
                                                                                        database):
    with_a_90_day_old_point(secured_influxd, database)
    config = v1_config(write_config, secured_influxd.url, database, f', token: "admin:{ADMIN_PASSWORD}"')
    running = start_run(config, args=("-q",))
    wait_until(lambda: count(secured_influxd, database, "temperature") >= 2, what="readings in InfluxDB")
    code, log = stop_run(running)
    assert code == 0, log
    assert default_policy(secured_influxd, database)["duration"] == "0s"
    assert count(secured_influxd, database, "boiler") == 1  # influxd checks retention every second here
    assert "retention" not in log, log


def test_a_retention_that_shortens_the_databases_is_a_warning_under_quiet_naming_old_new_and_the_deletion(
        write_config, secured_influxd, database):
    with_a_90_day_old_point(secured_influxd, database)
    config = v1_config(write_config, secured_influxd.url, database,
                       f', token: "admin:{ADMIN_PASSWORD}", retention: 30d')
    running = start_run(config, args=("-q",))
    wait_until(lambda: count(secured_influxd, database, "temperature") >= 2, what="readings in InfluxDB")
    code, log = stop_run(running)
    assert code == 0, log
    [warning] = [line for line in log.splitlines() if "retention" in line]
    assert "WARNING" in warning
    assert (f"database {database}: retention policy autogen changed from forever to 30d: InfluxDB will delete the "
            f"points older than 30d, of every measurement in database {database}") in warning
    assert default_policy(secured_influxd, database)["duration"] == "720h0m0s"
    wait_until(lambda: count(secured_influxd, database, "boiler") == 0, what="influxd deleting the 90-day-old point")


def test_without_a_retention_key_a_missing_database_is_reported_not_created_and_readings_wait(
        write_config, tmp_path, secured_influxd, database):
    config = v1_config(write_config, secured_influxd.url, database, f', token: "admin:{ADMIN_PASSWORD}"')
    done = templog("check", "-c", str(config))
    assert done.returncode == 1
    assert (f"problem: database {database!r} does not exist on {secured_influxd.url}: create it, or set "
            "influxdb.retention and templog run creates it") in done.stdout
    running = start_run(config)
    wait_until(lambda: f"database {database!r} does not exist: create it, or set influxdb.retention" in running.log,
               what="the delivery error")
    wait_until(lambda: Outbox(str(tmp_path / "data/outbox.sqlite")).depth >= 3, what="readings kept in the outbox")
    code, log = stop_run(running)
    assert code == 0, log
    assert 'HTTP 404: database not found: "' in log and "point(s) wait in the outbox" in log
    assert database not in databases(secured_influxd)


# ---------------------------------------------------------------------------------------------------------------
# 7. Credentials in the URL: HTTP basic auth on api v1, refused on v2, never shown


def test_credentials_in_a_v1_url_authenticate_and_never_show_in_check_run_or_history(write_config, secured_influxd,
                                                                                      database):
    wrong = "Wr0ng-hostile-pw"
    right = v1_config(write_config, secured_influxd.url.replace("//", f"//admin:{ADMIN_PASSWORD}@"), database,
                      ", retention: 2h")
    bad = v1_config(write_config, secured_influxd.url.replace("//", f"//admin:{wrong}@"), database,
                    ", retention: 2h", name="bad.yaml")
    outputs = []

    def command(*args):
        done = templog(*args)
        outputs.append(done.stdout + done.stderr)
        return done

    running = start_run(right, args=("-v",))
    wait_until(lambda: database in databases(secured_influxd) and count(secured_influxd, database, "temperature") >= 2,
               what="readings delivered with the URL's credentials")
    code, log = stop_run(running)
    outputs.append(log)
    assert code == 0, log
    done = command("check", "-v", "-c", str(right))
    assert done.returncode == 0, done.stdout
    assert f"InfluxDB at {secured_influxd.url} ready" in done.stdout
    done = command("history", "-c", str(right), "--since", "1h", "--format", "json")
    assert done.returncode == 0 and len(json.loads(done.stdout)) >= 2, done.stderr
    done = command("check", "-v", "-c", str(bad))
    assert done.returncode == 1 and f"InfluxDB at {secured_influxd.url}: HTTP 401: authorization failed" in done.stdout
    done = command("history", "-c", str(bad), "--since", "1h")
    assert done.returncode == 1 and "HTTP 401" in done.stderr
    running = start_run(bad, args=("-v",))
    wait_until(lambda: "HTTP 401" in running.log, what="the delivery error")
    outputs.append(stop_run(running)[1])
    for password in (ADMIN_PASSWORD, wrong):
        basic = base64.b64encode(f"admin:{password}".encode()).decode()
        assert not [text for text in outputs if password in text or basic in text]


@pytest.mark.parametrize("influxdb, problem", [
    ("{url: 'http://admin:Url-pw-v2@127.0.0.1:8086', api: v2, org: home}", "api v2 authenticates with an API token"),
    ("{url: 'http://admin:Url-pw-v2@127.0.0.1:8086', api: v1, token: 'admin:x'}", "credentials both in the URL"),
    ("{url: 'admin:Url-pw-v2@127.0.0.1:8086', api: v1}", "expected an http:// or https:// URL, got 'admin:***@"),
])
def test_credentials_in_a_url_that_cannot_take_them_are_refused_without_showing_them(write_config, influxdb, problem):
    done = templog("check", "-c", str(write_config(f"influxdb: {influxdb}\n" + SENSORS)))
    assert done.returncode == 2
    assert "influxdb.url" in done.stderr and problem in done.stderr
    assert "Url-pw-v2" not in done.stdout + done.stderr


def printable(but: str) -> st.SearchStrategy[str]:
    """Visible characters but `but` and `$` (which starts a ${VAR} reference); BMP only, so json.dumps writes
    escapes YAML reads back."""
    return st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs", "Cc", "Cn", "Zs", "Zl", "Zp"),
                         blacklist_characters="$" + but)


@settings(max_examples=200, deadline=None)
@example(user="#", password="0", api="v1", scheme="http://")  # a # before the @: the URL has a fragment then
@given(user=st.text(printable(but="@:"), max_size=12), password=st.text(printable(but=""), min_size=1, max_size=30),
       api=st.sampled_from(["v1", "v2", "v3"]),
       scheme=st.sampled_from(["http://", "https://", ""]))
def test_any_url_with_credentials_loads_or_is_refused_and_never_keeps_the_password_in_the_url(
        tmp_path_factory, user, password, api, scheme):
    secret = f"Zq{password}"  # a prefix no other part of the config or message holds
    path = tmp_path_factory.mktemp("url") / "config.yaml"
    path.write_text(f"influxdb: {json.dumps({'url': f'{scheme}{user}:{secret}@127.0.0.1:8086', 'api': api})}\n"
                    + SENSORS)
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:
        assert exc.path == "influxdb.url" and secret not in str(exc)
        return
    assert api == "v1" and scheme  # v2, v3 and a URL without scheme are refused
    influx = config.influxdb
    assert influx is not None, "the config has an influxdb section"
    assert influx.url == f"{scheme}127.0.0.1:8086"
    assert influx.token == f"{unquote(user)}:{unquote(secret)}"
    assert secret not in repr(config)


@settings(max_examples=200, deadline=None)
@given(before=st.text("abc ,:{}\"=", max_size=400), secret=st.text("αβγδεζηθ", min_size=1, max_size=60),
       after=st.text("abc ,:{}\"=", max_size=400), status=st.sampled_from([400, 401, 403, 404, 500]))
def test_no_piece_of_an_echoed_secret_survives_in_a_write_error_however_long_the_answer(before, secret, after,
                                                                                         status):
    error = http_error(status, before + secret + after + secret, None, [secret])
    assert not set("αβγδεζηθ") & set(str(error))  # masked before the message is cut to its 300 characters


# A server (or proxy) that answers every request but /ping with 401 and a body quoting the Authorization header.
class _EchoingHandler(BaseHTTPRequestHandler):
    def _serve(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/ping"):
            self.send_response(204)
            self.end_headers()
            return
        echo = f"bad credentials: Authorization: {self.headers.get('Authorization')}"
        body = json.dumps({"error": echo, "code": "unauthorized", "message": echo}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve

    def log_message(self, format, *args):
        """Quiet: the test reads templog's output, not the server's."""


@pytest.fixture
def echoing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("api, token, secrets", [
    ("v1", "reader:Echo-pw-1", ["Echo-pw-1", base64.b64encode(b"reader:Echo-pw-1").decode()]),
    ("v2", "Echo-token-2", ["Echo-token-2"]),
    ("v3", "Echo-token-3", ["Echo-token-3"]),
])
def test_a_server_echoing_the_authorization_header_never_makes_the_token_show(write_config, echoing_server, api,
                                                                               token, secrets):
    config = write_config(f"influxdb: {{url: '{echoing_server}', api: {api}, org: home, token: '{token}'}}\n" + SENSORS)
    check = templog("check", "-c", str(config))
    history = templog("history", "-c", str(config), "--since", "1h")
    assert check.returncode == 1 and "HTTP 401: bad credentials: Authorization:" in check.stdout
    assert history.returncode == 1 and "HTTP 401: bad credentials: Authorization:" in history.stderr
    output = check.stdout + check.stderr + history.stdout + history.stderr
    assert not [secret for secret in secrets if secret in output], output


# ---------------------------------------------------------------------------------------------------------------
# 14. The wrong api: every command says which InfluxDB answers and what to set


def test_api_v2_against_influxdb_1x_says_set_api_v1_in_check_history_and_run(write_config, influxd, database):
    config = write_config(f"influxdb: {{url: '{influxd.url}', api: v2, org: home, bucket: {database}, token: t}}\n"
                          + SENSORS)
    hint = "this is InfluxDB 1.x (version 1."
    check = templog("check", "-c", str(config))
    assert check.returncode == 1 and hint in check.stdout and "set influxdb.api: v1" in check.stdout
    history = templog("history", "-c", str(config), "--since", "1h")
    assert history.returncode == 1 and hint in history.stderr and "set influxdb.api: v1" in history.stderr
    running = start_run(config)
    wait_until(lambda: "set influxdb.api: v1" in running.log, what="the hint in the delivery error")
    code, log = stop_run(running)
    assert code == 0, log
    assert [line for line in log.splitlines() if "delivery to InfluxDB failed" in line and hint in line], log


def test_api_v1_against_influxdb_2x_says_set_api_v2_in_check_history_and_run(write_config, fake_influxdb2):
    config = write_config(f"influxdb: {{url: '{fake_influxdb2.url}', api: v1, bucket: temperature, "
                          "token: 'me:test-token'}\n" + SENSORS)
    hint = "this is InfluxDB 2.x (version v2.7.10): set influxdb.api: v2"
    check = templog("check", "-c", str(config))
    assert check.returncode == 1 and hint in check.stdout
    history = templog("history", "-c", str(config), "--since", "1h")
    assert history.returncode == 1 and "database not found: temperature" in history.stderr and hint in history.stderr
    running = start_run(config)
    wait_until(lambda: hint in running.log, what="the hint in the delivery error")
    code, log = stop_run(running)
    assert code == 0, log
    assert "HTTP 404: no dbrp mapping found" in log


# ---------------------------------------------------------------------------------------------------------------
# 16. A wrong password is retried; only a user who may not manage databases turns retention management off


def test_a_wrong_password_in_the_token_file_is_retried_and_retention_applied_once_fixed(write_config, tmp_path,
                                                                                        secured_influxd, database):
    secured_influxd.query(f'CREATE DATABASE "{database}"')
    token_file = tmp_path / "token"
    token_file.write_text("admin:Wr0ng-hostile-pw\n")
    config = v1_config(write_config, secured_influxd.url, database, ", token_file: token, retention: 2h")
    running = start_run(config)
    wait_until(lambda: "HTTP 401: authorization failed" in running.log, what="the wrong password refused")
    wait_until(lambda: Outbox(str(tmp_path / "data/outbox.sqlite")).depth >= 2, what="readings waiting")
    token_file.write_text(f"admin:{ADMIN_PASSWORD}\n")
    wait_until(lambda: default_policy(secured_influxd, database)["duration"] == "2h0m0s",
               what="the retention applied without a restart")
    wait_until(lambda: count(secured_influxd, database, "temperature") >= 2, what="the readings delivered")
    code, log = stop_run(running)
    assert code == 0, log
    assert "retention not managed" not in log and "Wr0ng-hostile-pw" not in log


def test_only_a_user_without_admin_rights_turns_retention_management_off(write_config, secured_influxd, database):
    secured_influxd.query(f'CREATE DATABASE "{database}"')
    secured_influxd.query("CREATE USER writer WITH PASSWORD 'writer-pw'")
    secured_influxd.query(f'GRANT ALL ON "{database}" TO writer')  # read and write, not admin

    def client(token):
        config = v1_config(write_config, secured_influxd.url, database, f", token: '{token}', retention: 2h")
        influx = load_config(config, environ={}).influxdb
        assert influx is not None, f"{config.name} has an influxdb section"
        return InfluxV1(influx)

    with pytest.raises(Unauthorized):  # retried by the sender like any write
        client("admin:Wr0ng-hostile-pw").ensure_retention()
    writer = client("writer:writer-pw")
    with pytest.raises(RetentionUnsupported, match="requires admin privilege"):
        writer.ensure_retention()
    writer.write(["temperature,sensor=w celsius=20.5"])  # it may still write
    assert count(secured_influxd, database, "temperature") == 1
    assert default_policy(secured_influxd, database)["duration"] == "0s"

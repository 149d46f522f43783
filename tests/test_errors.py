"""One error tree (issue 11): every exception templog defines is a TemplogError; a command prints one line, and under
-v the traceback with its causes, in which no token or password shows. templog runs as a real process."""

import base64
import importlib
import json
import pkgutil
import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import collector
from cli import templog
from collector.errors import TemplogError
from collector.outbox import OutboxDamaged
from collector.sensors.base import SettingError

SENSORS = "sensors:\n  - {name: desk, type: simulated}\n"


def exceptions_defined():
    """{qualified name: class} of every exception class a module of the collector package defines."""
    found = {}
    for module_info in pkgutil.walk_packages(collector.__path__, "collector."):
        if module_info.name == "collector.__main__":  # runs the CLI when imported
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{value.__qualname__}"] = value
    return found


def test_every_exception_templog_defines_is_a_templog_error():
    defined = exceptions_defined()
    assert {"collector.config.ConfigError", "collector.cli.UsageError", "collector.outbox_lock.OutboxInUse",
            "collector.influx.errors.Unauthorized", "collector.sensors.mqtt.MalformedPayload"} <= set(defined)
    assert sorted(name for name, cls in defined.items() if not issubclass(cls, TemplogError)) == []
    # and still what the code that catches stdlib errors expects them to be
    assert issubclass(OutboxDamaged, sqlite3.DatabaseError) and issubclass(SettingError, ValueError)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_config_error_is_one_line_and_under_v_its_traceback_with_the_yaml_cause(write_config):
    # an unclosed quote: PyYAML's own message would quote the line, token and all
    config = write_config('influxdb: {api: v2, org: home, token: "Tok3n-in-a-broken-line}\n' + SENSORS)
    quiet = templog("check", "-c", str(config))
    assert quiet.returncode == 2 and quiet.stderr.count("\n") == 1 and "Traceback" not in quiet.stderr
    assert quiet.stderr == f"templog: {config}: line 4, column 1: YAML syntax error: found unexpected end of stream\n"
    verbose = templog("check", "-v", "-c", str(config))
    assert verbose.returncode == 2 and verbose.stderr.startswith(quiet.stderr), verbose.stderr
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "yaml.scanner.ScannerError: while scanning a quoted scalar" in verbose.stderr
    assert "The above exception was the direct cause of the following exception" in verbose.stderr
    assert "collector.config.ConfigError: " in verbose.stderr
    assert "Tok3n-in-a-broken-line" not in verbose.stderr


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_an_unreachable_influxdb_is_one_line_and_under_v_the_traceback_down_to_the_refused_connection(write_config,
                                                                                                      api):
    config = write_config(f"influxdb: {{url: 'http://127.0.0.1:{closed_port()}', api: {api}, org: home, "
                          "token: 'Unre4chable-token'}\n" + SENSORS)
    for command in ("history", "check"):
        quiet = templog(command, "-c", str(config))
        assert quiet.returncode == 1 and "cannot reach http://127.0.0.1:" in quiet.stdout + quiet.stderr
        assert "Traceback" not in quiet.stdout + quiet.stderr, command
        verbose = templog(command, "-v", "-c", str(config))
        assert verbose.returncode == 1
        assert "Traceback (most recent call last)" in verbose.stderr, (command, verbose.stderr)
        assert "ConnectionRefusedError: [Errno 111] Connection refused" in verbose.stderr
        assert "The above exception was the direct cause of the following exception" in verbose.stderr
        assert "collector.influx.errors.Unreachable: cannot reach http://127.0.0.1:" in verbose.stderr
        assert "Unre4chable-token" not in verbose.stdout + verbose.stderr


class _Echoing401(BaseHTTPRequestHandler):
    """/ping answers as the api's InfluxDB; everything else 401, echoing the Authorization header, Basic credentials
    decoded, in the body and in a header: influxdb-client's ApiException, the cause under -v, quotes both
    (influxdb_client@1.50.0 influxdb_client/rest.py ApiException.__str__: "HTTP response headers", "HTTP response
    body")."""

    version = ""

    def _serve(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/ping"):
            self.send_response(204)
            self.send_header("X-Influxdb-Version", self.version)
            self.end_headers()
            return
        authorization = self.headers.get("Authorization") or ""
        scheme, _, credentials = authorization.partition(" ")
        decoded = base64.b64decode(credentials).decode() if scheme == "Basic" else credentials
        echo = f"bad credentials: Authorization: {authorization} ({decoded})"
        body = json.dumps({"error": echo, "code": "unauthorized", "message": echo}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", f"{authorization} ({decoded})")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve

    def log_message(self, format, *args):
        """Quiet: the test reads templog's output, not the server's."""


VERSIONS = {"v1": "1.8.10", "v2": "v2.7.12", "v3": "3.10.1"}


@pytest.fixture(params=["v1", "v2", "v3"])
def echoing_influxdb(request):
    """(api, address) of a server that refuses every request with 401, quoting the credentials back."""
    handler = type("Handler", (_Echoing401,), {"version": VERSIONS[request.param]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield request.param, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_under_v_no_traceback_shows_the_token_or_the_password_of_the_url(write_config, echoing_influxdb):
    api, address = echoing_influxdb
    if api == "v1":
        influxdb = f"{{url: 'http://reader:Url-passw0rd@{address}', api: v1}}"
        secrets = ["Url-passw0rd", base64.b64encode(b"reader:Url-passw0rd").decode()]
    else:
        influxdb = f"{{url: 'http://{address}', api: {api}, org: home, token: 'Echoed-t0ken-2'}}"
        secrets = ["Echoed-t0ken-2"]
    config = write_config(f"influxdb: {influxdb}\n" + SENSORS)
    check = templog("check", "-v", "-c", str(config))
    history = templog("history", "-v", "-c", str(config))
    assert check.returncode == 1 and "HTTP 401: bad credentials: Authorization: " in check.stdout
    assert history.returncode == 1 and "HTTP 401: bad credentials: Authorization: " in history.stderr
    for done in (check, history):  # the tracebacks, and on api v2 their cause, influxdb-client's ApiException
        assert "collector.influx.errors.Unauthorized: HTTP 401" in done.stderr, done.stderr
        assert api != "v2" or "influxdb_client.rest.ApiException: (401)" in done.stderr
    output = check.stdout + check.stderr + history.stdout + history.stderr
    assert [secret for secret in secrets if secret in output] == [], output


def test_under_v_no_traceback_shows_a_token_in_the_json_escaped_form_a_server_echoes(write_config):
    """A token with a quote or a backslash comes back JSON-escaped in a server's body (`\\"`, `\\\\`), and under -v
    influxdb-client's ApiException, the cause, quotes that body raw (influxdb_client@1.50.0 influxdb_client/rest.py
    ApiException.__str__ "HTTP response body"), and its headers as Python's repr writes them (`\\\\`): masking the
    token as sent missed both (seen failing on fa08664)."""
    token = 'Echoed"t0ken\\3'
    handler = type("Handler", (_Echoing401,), {"version": "v2.7.12"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        influxdb = f"{{url: 'http://{address}', api: v2, org: home, token: {json.dumps(token)}}}"
        check = templog("check", "-v", "-c", str(write_config(f"influxdb: {influxdb}\n" + SENSORS)))
    finally:
        server.shutdown()
        server.server_close()
    assert check.returncode == 1 and "influxdb_client.rest.ApiException: (401)" in check.stderr, check.stderr
    output = check.stdout + check.stderr
    assert "t0ken" not in output, output  # neither as sent, nor as JSON or repr() write it


class _EchoingRows(_Echoing401):
    """Answers a query with a row of another shape than asked, quoting the credentials in it: the Flux answer's CSV
    without `_time`, or an InfluxQL series whose value is no number."""

    def _serve(self):
        if self.path.startswith("/ping"):
            super()._serve()
            return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorization = self.headers.get("Authorization") or ""
        scheme, _, credentials = authorization.partition(" ")
        echo = f"{authorization} ({base64.b64decode(credentials).decode() if scheme == 'Basic' else credentials})"
        if self.version.startswith("v2"):  # annotated CSV, as InfluxDB 2 writes it, with a table of other columns
            body = (f"#datatype,string,long,string\r\n#group,false,false,false\r\n#default,_result,,\r\n"
                    f",result,table,note\r\n,,0,{echo}\r\n\r\n").encode()
            content_type = "text/csv; charset=utf-8"
        elif self.version.startswith("3"):  # a JSON lines row without a time
            body = (json.dumps({"sensor": "desk", "celsius": echo}) + "\n").encode()
            content_type = "application/jsonl"  # query_sql's for format jsonl, which it always sets
        else:
            series = {"columns": ["time", "sensor", "celsius"], "values": [[1, "desk", echo]]}
            body = (json.dumps({"results": [{"statement_id": 0, "series": [series]}]}) + "\n").encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_history_refusing_an_answer_that_quotes_the_credentials_masks_them(write_config, api):
    """`history` refuses a row it cannot read with a message that quotes the row; on fa08664 (and 5b389f9) that
    message was printed as it came, with the credentials a server (or a proxy) echoed in it."""
    handler = type("Handler", (_EchoingRows,), {"version": VERSIONS[api]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    if api == "v1":
        influxdb = f"{{url: 'http://reader:Row-passw0rd@{address}', api: v1}}"
    else:
        influxdb = f"{{url: 'http://{address}', api: {api}, org: home, token: 'Row-t0ken'}}"
    try:
        history = templog("history", "-c", str(write_config(f"influxdb: {influxdb}\n" + SENSORS)))
    finally:
        server.shutdown()
        server.server_close()
    assert history.returncode == 1 and "unexpected row in the answer" in history.stderr, history.stderr
    assert "Row-passw0rd" not in history.stderr and "Row-t0ken" not in history.stderr, history.stderr
    assert "***" in history.stderr


def test_every_secret_of_the_config_is_masked_in_tracebacks_from_the_start(write_config, tmp_path):
    """Not only once an InfluxDB client met its first failure (as on fa08664): the MQTT password and the InfluxDB
    credentials are registered when the config is loaded, so any traceback -v prints from then on masks them."""
    import logging

    from collector import cli as templog_cli
    from collector.config import load_config
    from collector.logs import UtcFormatter

    (tmp_path / "mqtt-password").write_text("Mq77-pass\n")
    config = load_config(write_config('influxdb: {url: "http://reader:Influx-pa55@127.0.0.1:1", api: v1, bucket: b}\n'
                                      "mqtt: {host: 127.0.0.1, username: u, password_file: mqtt-password}\n" + SENSORS),
                         environ={})
    templog_cli.hide_secrets(config)
    try:
        raise RuntimeError("a cause quoting Mq77-pass, reader:Influx-pa55 and {\"pw\": \"Influx-pa55\"}")
    except RuntimeError as exc:
        record = logging.LogRecord("templog", logging.DEBUG, __file__, 1, "traceback", None, (type(exc), exc, None))
    shown = UtcFormatter().format(record)
    assert "a cause quoting ***" in shown
    assert "Mq77-pass" not in shown and "Influx-pa55" not in shown

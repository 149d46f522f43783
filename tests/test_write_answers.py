"""api v2: a write is delivered only on InfluxDB 2's answer to it, 204 No Content
(influxdata/influxdb@v2.7.12:http/write_handler.go handleWrite: sw.WriteHeader(http.StatusNoContent)), as api v1
and v3 already require. influxdb-client's write_api takes any 2xx as delivered (influxdb_client@1.50.0
_sync/rest.py RESTClientObject.request raises only outside 200-299), so a captive portal or a proxy's login page
answering 200 made templog delete the points from its outbox: lost. Real `templog run` processes, a loopback
server in front, and a real VictoriaMetrics, whose /api/v2/write must keep working."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

import urllib3

from cli import start_run, stop_run, wait_until
from collector.outbox import Outbox
from loopback_server import LoopbackServer, ServedOnLoopback
from test_influx_answers import LOGIN, TOKEN  # the login page that echoes the token, as the queries meet it

SAYS = ("the answer to a write is not InfluxDB's 204 (HTTP 200, text/html, it starts with '<html><body>Sign in "
        "again (Token ***)")


class Portal(ServedOnLoopback):
    """Answers every request with 200 and LOGIN (echoing the Authorization header, as a login page may) while
    `portal` is set; once cleared, answers as InfluxDB 2 does: /ping 204, a write 204, keeping its lines."""

    def __init__(self) -> None:
        self.portal = True
        self.writes = 0  # requests to /api/v2/write, answered either way
        self.delivered: list[str] = []  # lines of the writes answered 204
        self.lock = threading.Lock()


class _PortalHandler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        gate: Portal = self.server.fake
        writing = self.path.startswith("/api/v2/write")
        with gate.lock:
            gate.writes += writing
            if not gate.portal and writing:
                gate.delivered.extend(body.decode().splitlines())
            portal = gate.portal
        if portal:
            page = LOGIN.replace(b"{authorization}", (self.headers.get("Authorization") or "").encode())
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self.send_response(204)
        self.send_header("X-Influxdb-Version", "v2.7.12")
        self.end_headers()

    do_GET = do_POST = _answer


Portal.handler = _PortalHandler


def v2_config(write_config, url: str, token: str = TOKEN, sensor: str = "desk"):
    return write_config(f"""
influxdb: {{url: "{url}", api: v2, org: home, bucket: temperature, token: "{token}"}}
sensors:
  - {{name: {sensor}, type: simulated, interval: 1s}}
""")


def pending_temperatures(path) -> set[str]:
    return {p.line for p in Outbox(str(path)).oldest(10**6) if p.line.startswith("temperature,")} \
        if path.exists() else set()


def test_a_200_page_answering_writes_keeps_the_points_until_a_204(write_config, tmp_path):
    """Before: every write to the page was taken as delivered and the points deleted from the outbox. Now the
    points wait, the log names the answer once (one episode, not a line a tick), masked; and once the URL answers
    204 again, what waited arrives."""
    outbox = tmp_path / "data/outbox.sqlite"
    with Portal() as gate:
        running = start_run(v2_config(write_config, gate.url))
        wait_until(lambda: gate.writes >= 3, what="three writes answered by the page")
        waiting = wait_until(lambda: pending_temperatures(outbox) or None, what="points waiting in the outbox")
        assert running.log.count(SAYS) == 1, running.log
        with gate.lock:
            gate.portal = False
        wait_until(lambda: waiting <= set(gate.delivered), what="the waiting points delivered after a 204")
        code, log = stop_run(running)
    assert code == 0, log
    assert log.count(SAYS) == 1, log
    assert "delivery resumed" in log and "stopped; 0 point(s) wait in the outbox" in log, log
    assert "Pr0xy" not in log and "Traceback" not in log, log


def test_victoriametrics_answers_a_write_with_204_and_a_run_delivers_to_it(write_config, tmp_path, victoria):
    """VictoriaMetrics' /api/v2/write answers 204 as InfluxDB 2 does (seen here from the real server), so requiring
    a 204 keeps it working: a real run delivers and its outbox empties."""
    answer = urllib3.request("POST", f"{victoria.url}/api/v2/write?org=home&bucket=temperature&precision=ns",
                             body=b"probe,sensor=x celsius=1 1767225600000000000")
    assert answer.status == 204, (answer.status, answer.data)
    # a sensor name of its own: the server is the session's, and other tests' runs have delivered a `desk` to it
    running = start_run(v2_config(write_config, victoria.url, token="test-token", sensor="write_answer_204"))
    series = victoria.export('{__name__="temperature_celsius", sensor="write_answer_204"}', min_samples=2,
                             timeout=30)
    code, log = stop_run(running)
    assert code == 0, log
    assert series and "failed" not in log, log
    assert "0 point(s) wait in the outbox" in log, log

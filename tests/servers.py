"""Real database servers for integration tests.

InfluxDB 1.x (``influxd``) and VictoriaMetrics run as child processes on free
127.0.0.1 ports with every file under a directory the test supplies, so tests
exercise the real wire protocols and storage semantics instead of a fake.
A missing binary skips the test locally but fails it when
``TEMPLOG_REQUIRE_SERVERS=1`` (as CI sets), so CI can never pass vacuously.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import pytest
import urllib3

REQUIRE_SERVERS_ENV = "TEMPLOG_REQUIRE_SERVERS"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
ALL_SERIES = '{__name__=~".+"}'

# VictoriaMetrics 1.79 makes freshly written samples searchable only about a
# second after the write, even after /internal/force_flush (measured: 0.85-1.0 s).
_VM_VISIBILITY_DELAY = 1.5

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=30.0))
_running: set[_Server] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    """Return `count` distinct free ports (all sockets stay bound until every port is chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def refuse(why: str) -> NoReturn:
    """Skip the test for the reason `why`, or fail it under CI, which must never pass vacuously."""
    if os.environ.get(REQUIRE_SERVERS_ENV) == "1":
        pytest.fail(f"{why}, but {REQUIRE_SERVERS_ENV}=1", pytrace=False)
    pytest.skip(why)


def require_binary(name: str) -> str:
    """Return the path of executable `name`; skip the test if absent, or fail it under CI."""
    path = shutil.which(name)
    if path is None:
        refuse(f"{name} is not installed")
    return path


def require_root(why: str) -> None:
    """Skip the test unless it runs as root (`why` it needs root), or fail it under CI."""
    if os.geteuid() != 0:
        refuse(f"not root, which is needed {why}")


class _Server:
    """A server child process: log file, HTTP readiness probe, signal-based shutdown."""

    def __init__(self, argv: list[str], url: str, log_path: Path, env: dict[str, str], timeout: float) -> None:
        self.url = url
        self.log_path = log_path
        self._argv = argv
        self._env = env
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _request(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        return _http.request(method, self.url + path, **kwargs)

    def _launch(self) -> None:
        """Start the process and block until its readiness probe passes."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,  # a Ctrl-C aimed at pytest must not kill it mid-test
            )
        _running.add(self)
        deadline = time.monotonic() + self._timeout
        while True:
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if self._is_ready():
                    return
            if self._process.poll() is not None:
                _running.discard(self)
                raise RuntimeError(f"{self._argv[0]} exited with {self._process.returncode}:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self._argv[0]} not ready after {self._timeout:.0f} s:\n{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if still running after STOP_TIMEOUT seconds. Idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        _running.discard(self)

    def kill(self) -> None:
        """SIGKILL, simulating a crash: nothing is flushed."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        _running.discard(self)

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports with the same data."""
        self.stop()
        self._launch()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort for servers a test forgot to stop: never outlive the test run."""
    for server in list(_running):
        server.kill()


class Influxd1(_Server):
    """InfluxDB 1.x with config, data, WAL and log under one directory.

    With `admin` (user, password), HTTP authentication is on and that user is its admin: created while the server
    has no user yet (the one statement influxd then takes unauthenticated), and used by `query`.
    `retention_check` (e.g. "1s") replaces influxd's 30-minute interval between deletions of expired shards.
    """

    _admin_header: dict[str, str] = {}

    @classmethod
    def start(cls, tmp_dir: Path, timeout: float = START_TIMEOUT, admin: tuple[str, str] | None = None,
              retention_check: str | None = None) -> Influxd1:
        binary = require_binary("influxd")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # influxd applies INFLUXDB_* variables over its config file; ignore the caller's.
        env = {key: value for key, value in os.environ.items() if not key.startswith("INFLUXDB_")}
        http_port, rpc_port = _free_ports(2)
        config = tmp_dir / "influxd.conf"
        config.write_text(_influxd_config(binary, env, tmp_dir, http_port, rpc_port, auth=admin is not None,
                                          retention_check=retention_check))
        server = cls(
            [binary, "-config", str(config)], f"http://127.0.0.1:{http_port}", tmp_dir / "influxd.log", env, timeout
        )
        server._launch()
        if admin is not None:
            user, password = admin
            server.query(f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES")
            credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
            server._admin_header = {"Authorization": "Basic " + credentials}
        return server

    def _is_ready(self) -> bool:
        return self._request("GET", "/ping", timeout=1.0).status == 204

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL and return the parsed JSON (timestamps as integer ns).

        POST, because influxd deprecates GET for statements that change state
        (CREATE DATABASE, DROP ...). Statement errors are left in the result's
        ``error`` keys, as influxd reports them; HTTP errors raise.
        """
        fields = {"q": q, "epoch": "ns"} | ({"db": db} if db is not None else {})
        response = self._request("POST", "/query", fields=fields, encode_multipart=False, headers=self._admin_header)
        if response.status != 200:
            raise RuntimeError(f"influxd /query returned {response.status}: {response.data.decode(errors='replace')}")
        return json.loads(response.data)

    def write(self, db: str, lines: list[str]) -> None:
        """Write line protocol (ns timestamps) as the admin, behind templog's back."""
        response = self._request("POST", f"/write?db={db}&precision=ns", body="\n".join(lines).encode(),
                                 headers=self._admin_header)
        if response.status != 204:
            raise RuntimeError(f"influxd /write returned {response.status}: {response.data.decode(errors='replace')}")


def _influxd_config(binary: str, env: dict[str, str], tmp_dir: Path, http_port: int, rpc_port: int,
                    auth: bool = False, retention_check: str | None = None) -> str:
    """Rewrite influxd's built-in default config to be private to `tmp_dir` and loopback-only.

    `-config /dev/null` stops `influxd config` from merging /etc/influxdb/influxdb.conf.
    """
    defaults = subprocess.run(
        [binary, "config", "-config", os.devnull], env=env, capture_output=True, text=True, check=True
    ).stdout
    # Debian renames upstream's `reporting-disabled = false` to `reporting-enabled = false`.
    if re.search(r"^reporting-enabled\s*=", defaults, re.MULTILINE):
        reporting = {("", "reporting-enabled"): "false"}
    else:
        reporting = {("", "reporting-disabled"): "true"}
    isolation = {  # without these the server would touch shared state or public ports
        ("", "bind-address"): json.dumps(f"127.0.0.1:{rpc_port}"),
        ("meta", "dir"): json.dumps(str(tmp_dir / "meta")),
        ("data", "dir"): json.dumps(str(tmp_dir / "data")),
        ("data", "wal-dir"): json.dumps(str(tmp_dir / "wal")),
        ("http", "bind-address"): json.dumps(f"127.0.0.1:{http_port}"),
        ("http", "bind-socket"): json.dumps(str(tmp_dir / "influxd.sock")),
    }
    overrides = isolation | reporting | {
        ("http", "unix-socket-enabled"): "false",
        ("http", "auth-enabled"): json.dumps(auth),
        **({("retention", "check-interval"): json.dumps(retention_check)} if retention_check else {}),
        ("monitor", "store-enabled"): "false",  # no _internal database written every 10 s
        ("meta", "logging-enabled"): "false",
        ("data", "query-log-enabled"): "false",
        ("http", "log-enabled"): "false",
        ("continuous_queries", "log-enabled"): "false",
        ("logging", "level"): json.dumps("warn"),
        ("logging", "suppress-logo"): "true",
        # Listeners that are off by default; forced off so a changed default cannot open a port.
        **{(section, "enabled"): "false" for section in ("ifql", "graphite", "collectd", "opentsdb", "udp")},
    }
    lines, seen, section = [], set(), ""
    for line in defaults.splitlines():
        if header := re.fullmatch(r"\s*\[\[?([\w.-]+)\]\]?\s*", line):
            section = header[1]
        elif (entry := re.fullmatch(r"(\s*)([\w-]+)\s*=.*", line)) and (section, entry[2]) in overrides:
            line = f"{entry[1]}{entry[2]} = {overrides[section, entry[2]]}"
            seen.add((section, entry[2]))
        lines.append(line)
    if missing := isolation.keys() - seen:
        raise RuntimeError(f"`influxd config` output lacks {sorted(missing)}; cannot isolate the server")
    return "\n".join(lines) + "\n"


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics with its data and log under one directory."""

    @classmethod
    def start(cls, tmp_dir: Path, timeout: float = START_TIMEOUT) -> VictoriaMetrics:
        binary = require_binary("victoria-metrics")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={tmp_dir / 'vm'}",
            "-retentionPeriod=100y",  # tests write fixed, possibly old, timestamps
            "-loggerLevel=WARN",
            # Tests backfill old timestamps; the rollup cache would warn on each and could serve stale results.
            "-search.disableCache",
        ]
        server = cls(argv, f"http://127.0.0.1:{port}", tmp_dir / "victoria-metrics.log", dict(os.environ), timeout)
        server._launch()
        return server

    def _is_ready(self) -> bool:
        response = self._request("GET", "/health", timeout=1.0)
        return response.status == 200 and response.data.strip() == b"OK"

    def export(self, match: str = ALL_SERIES, *, min_samples: int | None = None, timeout: float = 10.0) -> list[dict]:
        """Return the stored series matching `match` as ``{"metric", "values", "timestamps"}`` dicts.

        Influx line ``temperature,sensor=a celsius=21.5`` is stored as metric
        ``temperature_celsius{sensor="a"}``; timestamps are milliseconds.
        Series are sorted by labels. Samples written in the last second may not
        be searchable yet, so: with `min_samples`, poll until at least that many
        samples match (TimeoutError after `timeout` s); without it, wait long
        enough that every write completed before this call is included.
        """
        if min_samples is None:
            self._force_flush()
            time.sleep(_VM_VISIBILITY_DELAY)
            return self._export(match)
        deadline = time.monotonic() + timeout
        while True:
            series = self._export(match)
            if sum(len(one["values"]) for one in series) >= min_samples:
                return series
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {min_samples} samples match {match} after {timeout} s: {series}")
            time.sleep(0.05)

    def _force_flush(self) -> None:
        response = self._request("GET", "/internal/force_flush")
        if response.status != 200:
            raise RuntimeError(f"force_flush returned {response.status}: {response.data.decode(errors='replace')}")

    def _export(self, match: str) -> list[dict]:
        self._force_flush()
        response = self._request("GET", "/api/v1/export", fields={"match[]": match})
        if response.status != 200:
            raise RuntimeError(f"export returned {response.status}: {response.data.decode(errors='replace')}")
        series = [json.loads(line) for line in response.data.splitlines() if line.strip()]
        return sorted(series, key=lambda one: sorted(one["metric"].items()))


class Mosquitto(_Server):
    """A Mosquitto MQTT broker; with `password`, only user `templog` with that password may connect."""

    port: int  # the listener's, set by `start`

    @classmethod
    def start(cls, tmp_dir: Path, password: str | None = None, tls: bool = False,
              timeout: float = START_TIMEOUT) -> Mosquitto:
        """With `tls`, the listener speaks TLS with a certificate for 127.0.0.1 signed by `tmp_dir/ca.crt`."""
        binary = require_binary("mosquitto")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        lines = [f"listener {port} 127.0.0.1", "persistence false", "log_dest stderr", "log_type error"]
        if tls:
            _make_certificates(tmp_dir)
            lines += [f"cafile {tmp_dir / 'ca.crt'}", f"certfile {tmp_dir / 'server.crt'}",
                      f"keyfile {tmp_dir / 'server.key'}"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read the test's private files
        if password is None:
            lines.append("allow_anonymous true")
        else:
            passwd = tmp_dir / "passwd"
            subprocess.run([require_binary("mosquitto_passwd"), "-b", "-c", str(passwd), "templog", password],
                           check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        config = tmp_dir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        server = cls([binary, "-c", str(config)], f"mqtt://127.0.0.1:{port}", tmp_dir / "mosquitto.log",
                     dict(os.environ), timeout)
        server.port = port
        server._launch()
        return server

    def _is_ready(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


def _make_certificates(directory: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (openssl CLI)."""
    openssl = require_binary("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=templog test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")

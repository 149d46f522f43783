"""A fault-injecting HTTP proxy for tests: network and HTTP faults in front of a REAL server.

This is not a fake InfluxDB. Every request it is not told to fault is forwarded unchanged (method, path and
query, headers, body) to a real upstream server, the tests' influxd, and the upstream's status, headers and
body are relayed back. In front of that real server it injects the faults a collector meets in the field:

    proxy.fail_next(n, status=503, retry_after="2", body=b'{"error":"..."}')
        answer the next n requests itself with that status (and Retry-After header, if given); the upstream
        never sees them
    proxy.hang_next(n)
        accept the connection, read the whole request, never answer: hold the connection until the client
        gives up, `release_hangs()` is called or the proxy stops (then close it without a word)
    proxy.close_mid_response_next(n, keep=None)
        forward the request to the upstream (which therefore processes it), then relay only the first `keep`
        bytes of the upstream's response and close the connection; by default the status line and half of
        the header bytes. Note that Python's http.client (so urllib3) takes end-of-file inside the header
        block for its end: a 204 cut after its status line looks complete to it. keep=0 (closed before any
        answer) or a cut inside the status line (keep=10) is what such a client notices as a failure.
    proxy.max_body = N
        answer 413 {"error":"Request Entity Too Large"} to bodies over N bytes, as a reverse proxy with a
        body-size limit does; forward the others (None, the default: no limit)
    proxy.max_body_status = 503
        answer bodies over max_body with that status instead (e.g. an overloaded server that takes small writes
        only, and 503s or times out on big ones)
    proxy.min_body, proxy.min_body_status = N, 503
        answer bodies under N bytes with that status (a server that fails small writes only); forward the others

Scripted faults are consumed in the order they were scripted, one per request, before `max_body`/`min_body` apply.
Faults apply only to requests whose path starts with `fault_prefix` ("/write" by default); all others (/query,
/ping) always pass through. Scripting is thread-safe: call these from the test while a client is running.

Every request, faulted or not, is recorded in `proxy.requests` as a Request(time, method, path, body_len, what),
`time` being time.monotonic() when the request had been read completely, so tests can assert on delays
(backoff, Retry-After) and counts. `what` starts with a word, its `kind`: "forwarded <status>",
"injected <status>", "hang", "cut <upstream status> after <k> bytes", "too_large 413", "upstream_error ...".
"""

from __future__ import annotations

import collections
import http.server
import select
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple, Self

import urllib3

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade"}


class Request(NamedTuple):
    time: float  # time.monotonic() when the request had been read
    method: str
    path: str  # path and query, as the client sent them
    body_len: int
    what: str  # what the proxy did; its first word is `kind`

    @property
    def kind(self) -> str:
        return self.what.split()[0]


@dataclass(frozen=True)
class _Fail:
    status: int
    retry_after: str | None
    body: bytes
    kind: str = "injected"
    content_type: str = "application/json"


@dataclass(frozen=True)
class _Hang:
    pass


@dataclass(frozen=True)
class _Cut:
    keep: int | None


class FaultyProxy:
    def __init__(self, upstream: str, fault_prefix: str = "/write", upstream_timeout: float = 30.0):
        self.upstream = upstream.rstrip("/")
        self.fault_prefix = fault_prefix
        self.max_body: int | None = None
        self.max_body_status = 413
        self.min_body: int | None = None
        self.min_body_status = 503
        self.url = ""
        self._lock = threading.Lock()
        self._faults: collections.deque[_Fail | _Hang | _Cut] = collections.deque()
        self._requests: list[Request] = []
        self._hanging = 0
        self._hang_generation = 0  # release_hangs() increments it; a hang of an older generation ends
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=upstream_timeout))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="faulty-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end hanging and idle connections, release the port. Idempotent."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections: their handler threads end on EOF
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self._http.clear()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- scripting faults -------------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 503, retry_after: str | None = None,
                  body: bytes | None = None, content_type: str = "application/json") -> None:
        """Answer the next n faultable requests with `status` (and Retry-After), `body` of `content_type`, without
        asking the upstream."""
        if body is None:
            body = b'{"error":"injected %d by the faulty proxy"}' % status
        self._script([_Fail(status, retry_after, body, content_type=content_type)] * n)

    def hang_next(self, n: int = 1) -> None:
        """Read the next n faultable requests and never answer them (until the client gives up, or release)."""
        self._script([_Hang()] * n)

    def close_mid_response_next(self, n: int = 1, keep: int | None = None) -> None:
        """Forward the next n faultable requests, relay only `keep` bytes of each response, then close."""
        self._script([_Cut(keep)] * n)

    def release_hangs(self) -> None:
        """Close every connection held by `hang_next` now, without an answer."""
        with self._lock:
            self._hang_generation += 1

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _script(self, faults: list) -> None:
        with self._lock:
            self._faults.extend(faults)

    # --- what happened ----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def faultable(self) -> list[Request]:
        """The requests whose path starts with `fault_prefix` (by default: the writes)."""
        return [r for r in self.requests if r.path.startswith(self.fault_prefix)]

    @property
    def hanging(self) -> int:
        """How many connections `hang_next` holds right now."""
        with self._lock:
            return self._hanging

    # --- used by the handler ----------------------------------------------------------------------------------

    def _next_fault(self, path: str, body_len: int) -> _Fail | _Hang | _Cut | None:
        if not path.startswith(self.fault_prefix):
            return None
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        if self.max_body is not None and body_len > self.max_body:
            if self.max_body_status != 413:
                return _Fail(self.max_body_status, None, b'{"error":"too big to take now"}', "over_max_body")
            return _Fail(413, None, b'{"error":"Request Entity Too Large"}', "too_large")
        if self.min_body is not None and body_len < self.min_body:
            return _Fail(self.min_body_status, None, b'{"error":"not now"}', "under_min_body")
        return None

    def _record(self, when: float, method: str, path: str, body_len: int, what: str) -> None:
        with self._lock:
            self._requests.append(Request(when, method, path, body_len, what))

    def _forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes):
        forwarded = urllib3.HTTPHeaderDict()
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP | {"host", "content-length"}:
                forwarded.add(name, value)
        sent = body if body or method in ("POST", "PUT") else None
        return self._http.request(method, self.upstream + path, body=sent,
                                  headers=forwarded, redirect=False, preload_content=True, decode_content=False)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultyProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pools use it
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.proxy._lock:
            self.server.proxy._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:  # the client is gone; nothing left to flush to it
            pass

    def log_message(self, format: str, *args) -> None:  # no stderr noise in the test output
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        arrived = time.monotonic()
        method, path = self.command, self.path
        fault = proxy._next_fault(path, len(body))
        if isinstance(fault, _Fail):
            proxy._record(arrived, method, path, len(body), f"{fault.kind} {fault.status}")
            self._answer(fault.status, [("Content-Type", fault.content_type)]
                         + ([("Retry-After", fault.retry_after)] if fault.retry_after is not None else []), fault.body)
            return
        if isinstance(fault, _Hang):
            proxy._record(arrived, method, path, len(body), "hang")
            self._hang()
            return
        try:
            response = proxy._forward(method, path, list(self.headers.items()), body)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            proxy._record(arrived, method, path, len(body), f"upstream_error {exc}")
            self._answer(502, [("Content-Type", "application/json")], b'{"error":"faulty proxy: upstream unreachable"}')
            return
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        if isinstance(fault, _Cut):
            raw = self._raw_response(response.status, response.reason, headers, response.data)
            head_end = raw.index(b"\r\n\r\n")
            status_end = raw.index(b"\r\n") + 2
            keep = fault.keep if fault.keep is not None else status_end + (head_end - status_end) // 2
            proxy._record(arrived, method, path, len(body), f"cut {response.status} after {keep} bytes")
            self.wfile.write(raw[:keep])
            self.wfile.flush()
            self.close_connection = True
            return
        proxy._record(arrived, method, path, len(body), f"forwarded {response.status}")
        self._answer(response.status, headers, response.data, reason=response.reason)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None) -> None:
        self.wfile.write(self._raw_response(status, reason, headers, body))
        self.wfile.flush()

    def _raw_response(self, status: int, reason: str | None, headers: list[tuple[str, str]], body: bytes) -> bytes:
        if reason is None:
            reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        bodiless = status in (204, 304) or 100 <= status < 200 or self.command == "HEAD"
        if not bodiless:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if bodiless else body)

    def _hang(self) -> None:
        """Hold the connection, answering nothing, until the client closes it, release_hangs() or stop()."""
        proxy = self.server.proxy
        with proxy._lock:
            proxy._hanging += 1
            generation = proxy._hang_generation
        try:
            while not proxy._stopping.is_set():
                with proxy._lock:
                    if proxy._hang_generation != generation:
                        break
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            break  # the client gave up and closed its end
                    except OSError:
                        break
                    proxy._stopping.wait(0.05)  # the client sent more; it stays unanswered
        finally:
            with proxy._lock:
                proxy._hanging -= 1
            self.close_connection = True

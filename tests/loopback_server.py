"""What the HTTP stand-ins (fake_influxdb2, fake_influxdb3) share: each is served on a free loopback port by a thread
of its own, started by `start()` or `with`, and its handler finds it as `self.server.fake`."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

POLL_S = 0.05  # serve_forever notices a shutdown within this: a stop takes no longer


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: Any, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake


class ServedOnLoopback:
    """A subclass names its request `handler`; `url` is its address once started."""

    handler: type[BaseHTTPRequestHandler]
    url = ""
    _server: LoopbackServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        self._server = LoopbackServer(self, self.handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,),
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

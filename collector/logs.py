"""Logging as the spec wants it: one line per event on stderr, UTC timestamps with `Z`, and conditions that repeat
every tick (a failing sensor, the outbox bound) logged when they start, at most every 10 minutes with a count
while they last, and when they end."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

from collector.ticks import utc_text

REPEAT_EVERY_S = 600.0

_hidden: set[str] = set()  # the secrets no traceback in the log may show, added by hide()


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***: a server or proxy may echo the Authorization header back."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def hide(*secrets: str) -> None:
    """Mask these (a token, a password) in every traceback logged from now on: under -v a traceback shows each
    cause's own text, such as an HTTP body that echoed the token. (Messages are masked where they are made.)"""
    _hidden.update(filter(None, secrets))


def _as_quoted(secrets: Iterable[str]) -> set[str]:
    """Each secret also as a traceback may quote it: a JSON body shown raw (influxdb-client's ApiException), `"` as
    `\\"` and `\\` as `\\\\`, non-ASCII as `\\u00e9` or as is, and Go's `<>&` as `\\u003c`...; its headers as Python's
    repr writes them."""
    import json  # only for a traceback: `read` and `--help` never need it

    forms = set()
    for secret in secrets:
        as_is = json.dumps(secret, ensure_ascii=False)[1:-1]
        go = as_is.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        forms.update({secret, json.dumps(secret)[1:-1], as_is, go, repr(secret)[1:-1], repr(secret.encode())[2:-1]})
    return forms


class UtcFormatter(logging.Formatter):
    """`2026-12-01T09:30:00.123Z WARNING message`: the same clock and zone as the readings' timestamps."""

    def formatTime(self, record, datefmt=None):
        return utc_text(int(record.created * 1e9), milliseconds=True)

    def formatException(self, ei):
        return masked(super().formatException(ei), _as_quoted(_hidden))


def configure(level: int) -> None:
    # A log line shows the time, the level and the message, never where it was logged from: skip what each record
    # would otherwise look up (the caller's frame, the thread, the process), a third of an INFO line's cost.
    # cpython@3.11:Lib/logging/__init__.py ("Setting _srcfile to None will prevent findCaller() from being called")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(UtcFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class Repeating:
    """One condition that may hold tick after tick, such as "sensor x fails" or "the outbox is at its bound".

    `occurred()` logs the first occurrence, then at most one line every `every_s` with how many occurrences it
    stands for; `ended()` logs once when the condition stops holding (nothing if it never started), at WARNING at
    most, so that `-q` shows the end of what it showed. A condition that comes back within `every_s` of its end (a
    loose connector: fails, reads, fails) is flapping: one episode, whose returns and ends are not logged each
    time; the next line is the periodic report, or its end, which `flush()` (called every few seconds) logs once
    `every_s` has passed since the last line. Thread-safe.
    """

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, every_s: float = REPEAT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic, merge_flapping: bool = True):
        self.logger, self.level, self.every_s, self.clock = logger, level, every_s, clock
        self.merges_returns = merge_flapping  # False: every start and end is logged (for events such as outages)
        self._lock = threading.Lock()
        self._active = False
        self._flapping = False
        self._last_logged = 0.0
        self._ended_at: float | None = None  # when the last episode ended
        self._pending_end: str | None = None  # the end of a flapping episode, to log when due
        self._unlogged = 0  # occurrences since the last line
        self.total = 0  # occurrences in this episode

    def occurred(self, message: str, *args: object) -> None:
        with self._lock:
            now = self.clock()
            if (not self._active and self.merges_returns and self._ended_at is not None
                    and now - self._ended_at < self.every_s):
                self._active, self._flapping, self._pending_end = True, True, None  # back soon: the same episode
            if not self._active:
                self._active, self._flapping, self._last_logged, self._unlogged = True, False, now, 0
                self.total = 1
                line = message % args if args else message
            else:
                self.total += 1
                if now - self._last_logged < self.every_s:
                    self._unlogged += 1
                    return
                repeats, self._last_logged, self._unlogged = self._unlogged + 1, now, 0
                line = (message % args if args else message) + f" ({repeats} time(s) since the last report"
                line += ", coming and going)" if self._flapping else ")"
        self.logger.log(self.level, "%s", line)

    def ended(self, message: str, *args: object) -> None:
        with self._lock:
            if not self._active:
                return
            now = self.clock()
            self._active, self._ended_at = False, now
            line = (message % args if args else message) + f" (after {self.total} occurrence(s)"
            line += ", coming and going)" if self._flapping else ")"
            if self._flapping and now - self._last_logged < self.every_s:
                self._pending_end = line
                return
            self._last_logged, self._pending_end = now, None
        self._log_end(line)

    def flush(self) -> None:
        """Log the end of a flapping episode once it is due (it did not come back meanwhile)."""
        with self._lock:
            now = self.clock()
            if self._pending_end is None or now - self._last_logged < self.every_s:
                return
            line, self._pending_end, self._last_logged = self._pending_end, None, now
        self._log_end(line)

    def _log_end(self, line: str) -> None:
        # at WARNING for a warning or error, so that `-q` (warnings and errors only) shows the end of what it showed
        self.logger.log(min(self.level, logging.WARNING), "%s", line)


class RepeatingByKey:
    """A `Repeating` per key (a sensor's name, an error kind), made on first use."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, every_s: float = REPEAT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic, merge_flapping: bool = True):
        self._make = lambda: Repeating(logger, level, every_s, clock, merge_flapping)
        self._lock = threading.Lock()
        self._by_key: dict[object, Repeating] = {}

    def __getitem__(self, key: object) -> Repeating:
        with self._lock:
            if key not in self._by_key:
                self._by_key[key] = self._make()
            return self._by_key[key]

    def ended(self, key: object, message: str, *args: object) -> None:
        """End the condition of `key`, if it ever occurred (a cheap no-op on the hot path of every good read)."""
        condition = self._by_key.get(key)  # a dict read is atomic: no lock for a key that never occurred
        if condition is not None:
            condition.ended(message, *args)

    def flush(self) -> None:
        with self._lock:
            conditions = list(self._by_key.values())
        for condition in conditions:
            condition.flush()


def log_bug(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """A bug caught so that a thread lives on: one ERROR line that names it (a log line is one line), and its
    traceback at DEBUG, shown under -v."""
    logger.error(message + ": %s: %s", *args, type(exc).__name__, exc)
    log_traceback(logger, exc)


def log_traceback(logger: logging.Logger, exc: BaseException, of: str = "the error above") -> None:
    """The traceback of an error reported in one line, with its causes, at DEBUG: shown under -v only."""
    logger.debug("traceback of %s", of, exc_info=exc)

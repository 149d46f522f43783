"""Logging as the spec wants it: one line per event on stderr, UTC timestamps with `Z`, and conditions that repeat
every tick (a failing sensor, the outbox bound) logged when they start, at most every 10 minutes with a count
while they last, and when they end."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

REPEAT_EVERY_S = 600.0


class UtcFormatter(logging.Formatter):
    """`2026-12-01T09:30:00.123Z WARNING message`: the same clock and zone as the readings' timestamps."""

    converter = time.gmtime

    def formatTime(self, record, datefmt=None):
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"


def configure(level: int) -> None:
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(UtcFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class Repeating:
    """One condition that may hold tick after tick, such as "sensor x fails" or "the outbox is at its bound".

    `occurred()` logs the first occurrence, then at most one line every `every_s` with how many occurrences it
    stands for; `ended()` logs once when the condition stops holding (nothing if it never started), at WARNING at most, so
    that `-q` shows the end of what it showed. Thread-safe.
    """

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, every_s: float = REPEAT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.level, self.every_s, self.clock = logger, level, every_s, clock
        self._lock = threading.Lock()
        self._active = False
        self._last_logged = 0.0
        self._unlogged = 0  # occurrences since the last line
        self.total = 0  # occurrences in this episode

    def occurred(self, message: str, *args: object) -> None:
        with self._lock:
            self.total = self.total + 1 if self._active else 1
            now = self.clock()
            if not self._active:
                self._active, self._last_logged, self._unlogged = True, now, 0
                line = message % args if args else message
            elif now - self._last_logged >= self.every_s:
                repeats = self._unlogged + 1
                line = (message % args if args else message) + f" ({repeats} time(s) since the last report)"
                self._last_logged, self._unlogged = now, 0
            else:
                self._unlogged += 1
                return
        self.logger.log(self.level, "%s", line)

    def ended(self, message: str, *args: object) -> None:
        with self._lock:
            if not self._active:
                return
            self._active = False
            total = self.total
        # at WARNING for a warning or error, so that `-q` (warnings and errors only) shows the end of what it showed
        self.logger.log(min(self.level, logging.WARNING), "%s",
                        (message % args if args else message) + f" (after {total} occurrence(s))")


class RepeatingByKey:
    """A `Repeating` per key (a sensor's name, an error kind), made on first use."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, every_s: float = REPEAT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self._make = lambda: Repeating(logger, level, every_s, clock)
        self._lock = threading.Lock()
        self._by_key: dict[object, Repeating] = {}

    def __getitem__(self, key: object) -> Repeating:
        with self._lock:
            if key not in self._by_key:
                self._by_key[key] = self._make()
            return self._by_key[key]

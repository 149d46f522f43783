"""Run templog as a user does: a separate process, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
STILL_RUNNING: set["Running"] = set()  # killed after each test by conftest, so a failed test leaves no collector


def templog(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)


class Running:
    """`templog run` in the background, its stderr collected as it comes so tests can wait on log lines."""

    def __init__(self, config: Path, env: dict | None = None, args: tuple[str, ...] = ()):
        # -X faulthandler: a SIGABRT prints every thread's stack (see stop_run)
        command = [sys.executable, "-X", "faulthandler", "-m", "collector", "run", "-c", str(config), *args]
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        STILL_RUNNING.add(self)

    def _collect(self) -> None:
        assert self.process.stderr is not None  # Popen(stderr=PIPE)
        for line in self.process.stderr:
            self._lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self._lines)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        STILL_RUNNING.discard(self)
        return code

    def kill(self) -> None:
        """SIGKILL: a crash or power cut, nothing flushed."""
        self.process.kill()
        self.wait()


def start_run(config: Path, env: dict | None = None, args: tuple[str, ...] = ()) -> Running:
    """`templog run -c config`, with `args` after it (e.g. ("-q",))."""
    return Running(config, env, args)


Found = TypeVar("Found")


def wait_until(condition: Callable[[], Found | None], timeout: float = 30, what: str = "condition") -> Found:
    """Poll an observable condition (points in a database, lines in a log) until it holds; its true value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_run(running: Running, timeout: float = 30) -> tuple[int, str]:
    """SIGTERM, as systemd and docker stop do; returns (exit code, stderr). A run that does not stop fails the test
    with where each of its threads was."""
    running.send_signal(signal.SIGTERM)
    try:
        return running.wait(timeout), running.log
    except subprocess.TimeoutExpired:
        running.send_signal(signal.SIGABRT)
        running.wait()
        raise AssertionError(f"templog run still running {timeout}s after SIGTERM; its threads then, and its log:\n"
                             f"{running.log}") from None

"""A program's output: `command` as a shell string or an argv list; `pattern` picks the number.

Each command runs in a session (and process group) of its own, and the whole group is ended, SIGTERM then
SIGKILL, when the command's main process exits or at the timeout, whichever comes first: a pipeline, a background
child or a program that ignores SIGTERM never outlives its read. The output is read as it comes, up to a bound;
what the main process printed before it exited is the reading, even if a child it left still holds stdout open.
"""

from __future__ import annotations

import atexit
import math
import os
import re
import selectors
import signal
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass

from collector.sensors.base import Sample, SensorError, SensorType, SettingError

FIRST_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
OUTPUT_LIMIT = 64 * 1024  # bytes of stdout; more is a failed read, never buffered
STDERR_TAIL = 4 * 1024  # bytes of stderr kept (the last ones: the error is usually at the end)
TERM_GRACE_S = 0.5  # between SIGTERM and SIGKILL
CHUNK = 16 * 1024  # bytes read at a time


@dataclass(frozen=True)
class Settings:
    command: str | list[str]
    pattern: str = FIRST_NUMBER

    def __post_init__(self):
        try:
            with warnings.catch_warnings():  # "possible nested set" and the like: Python's notes, not the user's
                warnings.simplefilter("ignore", FutureWarning)
                compiled = re.compile(self.pattern)
        except (re.error, OverflowError, RecursionError) as exc:  # a{4294967296}, thousands of nested groups
            raise SettingError("pattern", f"invalid regular expression: {exc}") from exc
        if compiled.groups != 1:
            raise SettingError("pattern", f"needs exactly one group (...) around the number, has {compiled.groups}")


def parse_output(output: bytes, pattern: re.Pattern[str]) -> float:
    """The number `pattern`'s group finds in a command's output, or SensorError saying why there is none."""
    try:
        text = output.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SensorError(f"output is not UTF-8 text (byte {output[exc.start]:#04x} at offset {exc.start})") from exc
    match = pattern.search(text)
    if not match:
        raise SensorError(f"pattern {pattern.pattern!r} found no number in output {text.strip()[:80]!r}")
    found = match.group(1)
    if found is None:
        raise SensorError(f"pattern {pattern.pattern!r} matched, but its group captured nothing")
    try:
        value = float(found)
    except ValueError as exc:
        raise SensorError(f"pattern matched {found[:40]!r}, which is not a number") from exc
    if not math.isfinite(value):
        raise SensorError(f"pattern matched {found[:40]!r}, which is not a finite number")
    return value


class _Groups:
    """The commands running now, so that templog's exit can end their process groups (`end_all`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self._closed = False

    def add(self, process: subprocess.Popen) -> bool:
        """Register a command just started; False once templog is exiting (the caller then ends it at once)."""
        with self._lock:
            if self._closed:
                return False
            self._live.add(process)
            return True

    def discard(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(process)

    def end_all(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
        end_groups(live)


GROUPS = _Groups()


def end_all() -> None:
    """End the process group of every command still running, and start no new one: for templog's exit.

    Registered with atexit; a way out that skips atexit handlers (os._exit) must call it first.
    """
    GROUPS.end_all()


atexit.register(end_all)


def end_groups(processes: list[subprocess.Popen], grace: float = TERM_GRACE_S) -> None:
    """SIGTERM the process group each command leads, wait up to `grace` for it to end, then SIGKILL what is left."""
    left = _signal_groups(processes, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := [p for p in left if _group_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    _signal_groups(left, signal.SIGKILL)


def _signal_groups(processes: list[subprocess.Popen], signum: int) -> list[subprocess.Popen]:
    """Send `signum` to each group; those that still have a process (a zombie counts)."""
    left = []
    for process in processes:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            continue
        except PermissionError:  # a setuid member (sudo): it exists, though templog cannot signal it
            pass
        left.append(process)
    return left


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether the group `process` leads has a process left that is not a zombie."""
    _reap_dead_of_group(process)
    return bool(_signal_groups([process], 0)) and _has_live_member(process.pid)


def _reap_dead_of_group(process: subprocess.Popen) -> None:
    """Reap the group's dead that are templog's children: the main process through Popen (which keeps its status)
    and, where templog is PID 1 (a container without an init), the orphans the kernel hands to it; never a child
    outside the group."""
    while True:
        try:
            dead = os.waitid(os.P_PGID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if dead is None:
                return
            if dead.si_pid != process.pid:
                os.waitpid(dead.si_pid, 0)
            elif process.poll() is None:  # another thread is reaping it right now
                return
        except ChildProcessError:  # none of the group is templog's child (any more)
            return


def _has_live_member(pgid: int) -> bool:
    """Whether a process of group `pgid` is not a zombie. Dead orphans stay zombies until their new parent reaps
    them, which some PID 1s never do; they are ended, whatever killpg(pgid, 0) says."""
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return True
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, pgrp = stat[stat.rindex(b")") + 2:].split(maxsplit=3)[:3]  # the name may hold ") "
        if int(pgrp) == pgid and state != b"Z":
            return True
    return False


class _Pipe:
    """One of a command's output pipes and what was read from it: at most `limit` bytes are kept."""

    def __init__(self, file, limit: int, refuse_more: bool):
        self.fd, self.limit, self.refuse_more = file.fileno(), limit, refuse_more
        self.data = bytearray()
        self.at_eof = False
        os.set_blocking(self.fd, False)

    def read_chunk(self) -> bool:
        """Read one chunk, if the pipe has one now; False if it had none (or is at end of file)."""
        try:
            chunk = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return False
        if not chunk:
            self.at_eof = True
            return False
        self.data += chunk
        if len(self.data) > self.limit:
            if self.refuse_more:
                raise SensorError(f"command printed more than {self.limit // 1024} KiB; refused (not a reading)")
            del self.data[:-self.limit]  # keep the tail
        return True

    def read_rest(self) -> None:
        """Read what the pipe holds now, boundedly: a writer outside the ended group cannot keep this going."""
        for _ in range(OUTPUT_LIMIT // CHUNK + 1):
            if not self.read_chunk():
                return


class CommandSensor:
    # starting a process costs milliseconds, and a command may run to its timeout (collector/lanes.py)
    OWN_THREAD = True

    def __init__(self, settings: Settings, timeout: float):
        self.settings = settings
        self.pattern = re.compile(settings.pattern)
        self.timeout = timeout

    def read(self) -> Sample:
        returncode, stdout, stderr = self.run()
        if returncode != 0:
            lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise SensorError(f"command exited with status {returncode}: {(lines or ['no error output'])[-1][:200]}")
        return Sample(parse_output(stdout, self.pattern))

    def run(self) -> tuple[int, bytes, bytes]:
        """Run the command in a session of its own: its exit status, its stdout and the tail of its stderr."""
        command = self.settings.command
        shell = isinstance(command, str)
        try:
            process = subprocess.Popen(command if shell else list(command), shell=shell, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise SensorError(f"cannot run command: {exc.strerror or exc}") from exc
        with process:  # closes the pipes and reaps the main process
            stdout, stderr = _Pipe(process.stdout, OUTPUT_LIMIT, True), _Pipe(process.stderr, STDERR_TAIL, False)
            try:
                if not GROUPS.add(process):
                    raise SensorError("not started: templog is exiting")
                status = self._read_until_exit(process, stdout, stderr)
            finally:
                end_groups([process])
                GROUPS.discard(process)
            # A child left behind may have held the pipes open: now that the group has ended, take what is left.
            for pipe in (stdout, stderr):
                pipe.read_rest()
            return status, bytes(stdout.data), bytes(stderr.data)

    def _read_until_exit(self, process: subprocess.Popen, stdout: "_Pipe", stderr: "_Pipe") -> int:
        """Read the output as it comes until the main process exits (its status) or the timeout (SensorError)."""
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as selector:
            for pipe in (stdout, stderr):
                selector.register(pipe.fd, selectors.EVENT_READ, pipe)
            exit_fd = _exit_notifier(process.pid, selector)
            try:
                while (status := _exit_status(process)) is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise SensorError(f"command did not finish within {self.timeout:g}s")
                    for key, _ in selector.select(remaining if exit_fd is not None else min(remaining, 0.05)):
                        if key.data is not None:
                            key.data.read_chunk()
                            if key.data.at_eof:
                                selector.unregister(key.fd)
                return status
            finally:
                if exit_fd is not None:
                    os.close(exit_fd)


def _exit_notifier(pid: int, selector: selectors.BaseSelector) -> int | None:
    """A pidfd that turns readable when `pid` exits, registered with `selector`; None where the kernel has none."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # Linux < 5.3, or a seccomp filter that forbids it: poll instead
        return None
    selector.register(pidfd, selectors.EVENT_READ)
    return pidfd


def _exit_status(process: subprocess.Popen) -> int | None:
    """The main process's exit status (as Popen.returncode) once it has exited, without reaping it; else None."""
    try:
        exited = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped, by end_all at templog's exit
        return process.returncode
    if exited is None:
        return None
    return -exited.si_status if exited.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else exited.si_status


SENSOR_TYPE = SensorType(Settings, lambda config, shared: CommandSensor(config.settings, config.timeout),
                         (-60.0, 150.0))

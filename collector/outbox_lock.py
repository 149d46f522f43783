"""One `templog run` per outbox: an exclusive flock on `<outbox>.lock`, a file holding the pid of the run that has
it. The kernel releases the lock when the process ends, however it ends (kill -9, a power cut), so a crash never
blocks the next start. The file stays: removing it would let a second run lock a new file while the first still
holds the old one."""

from __future__ import annotations

import fcntl
import os

from collector.outbox import OutboxError


class OutboxInUse(OutboxError):
    def __init__(self, path: str, pid: str):
        super().__init__(f"the outbox {path} is in use by another templog run (pid {pid or 'unknown'}); "
                         "one run per outbox")
        self.path, self.pid = path, pid


class OutboxLock:
    def __init__(self, outbox_path: str):
        """Take the lock or raise OutboxInUse naming the pid that holds it (an OSError if it cannot be created)."""
        os.makedirs(os.path.dirname(os.path.abspath(outbox_path)), exist_ok=True)
        # not inherited (Python's default, PEP 446): a command sensor's leftover child must not keep it
        # beside the real file: two names of one outbox (a symlink, a relative path) must take the same lock
        self._fd = os.open(os.path.realpath(outbox_path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self._fd)
            raise OutboxInUse(outbox_path, holder) from exc
        pid = f"{os.getpid()}\n".encode()
        os.pwrite(self._fd, pid, 0)  # then cut what a longer pid left: a second run never reads an empty file
        os.ftruncate(self._fd, len(pid))

    def release(self) -> None:
        os.close(self._fd)  # closing the only descriptor ends the flock

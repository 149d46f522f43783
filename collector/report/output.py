"""Where `templog report` puts its output (--output): whole or not at all, and never in place of what the path is."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from collector.errors import TemplogError


class ReportOutputError(TemplogError):
    """`report` could not write its --output: exit 1, the file as it was before."""


def check_output(path: str) -> None:
    """Said before any query: a directory, or a directory that is not there, is the file system as it is now (exit
    1, as any other path that cannot be written): it may be mounted later."""
    if os.path.isdir(path):  # os.path follows symlinks, as the kernel does (/dev/stdout -> /proc/self/fd/1)
        raise ReportOutputError(f"--output {path}: is a directory; give a file's name")
    directory = os.path.dirname(os.path.realpath(path))  # a dangling symlink: where the file it names would be
    if not os.path.exists(path) and not os.path.isdir(directory):
        raise ReportOutputError(f"--output {path}: no directory {directory} to write it in")


def write_whole(path: str, text: str) -> None:
    """`text` into `path`, whole or not at all. A regular file (or a new one) is replaced by a temporary file beside
    it, unique (two reports at once do not clobber each other), with the old file's permission bits, synced, then
    renamed over it: a report cut short never stands as the file. A symlink is followed to the file it points to;
    something that is not a regular file (a FIFO, /dev/stdout, /dev/null) is written straight through. Errors name
    `path` as the user gave it."""
    try:
        try:
            mode: int | None = os.stat(path).st_mode  # the kernel follows symlinks, also /proc's magic ones
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):  # a FIFO's reader, a device: nothing to rename over
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
            return
        if mode is None:  # a new file gets what open() would give it: 0666 less the umask
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        target = os.path.realpath(path)  # a symlink's file is replaced, the link kept
        directory, name = os.path.split(target)
        descriptor, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                os.fchmod(descriptor, stat.S_IMODE(mode))
                stream.write(text)
                stream.flush()
                os.fsync(descriptor)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
    except OSError as exc:  # e.g. ENOSPC from /dev/full, EACCES: the user's path, not the temporary file's
        raise ReportOutputError(f"--output {path}: {exc.strerror or exc}") from exc

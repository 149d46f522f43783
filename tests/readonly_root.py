"""templog as docker-compose.yml's collector runs it: a read-only root file system, one writable volume, uid 10001
with no capability; every file system call traced, to show where it writes.

There is no Docker engine here. What `read_only: true` does is approximated in a mount namespace of its own
(`unshare --mount`, as root): / is remounted read-only, /srv holds this Python, the source and the config, also
read-only, and only the volume (/srv/volume, the image's /var/lib/templog, its WORKDIR and the user's home) is a
writable mount of its own. /dev/shm stays writable, as Docker mounts it. The process runs as the image's user
(setpriv: uid/gid 10001, no groups, no capability, no_new_privs) with the image's environment (Dockerfile ENV:
PYTHONDONTWRITEBYTECODE=1 and no TMPDIR), under `strace -f`, whose output goes to a directory only root may write.
The interpreter runs with -S (no site module; the venv's packages come through PYTHONPATH): a machine's own
start-up hooks in its base interpreter's *.pth files, which the image has not, must not count as templog's writes
(this machine's sandbox has one that appends its proxy's CA to certifi's cacert.pem at every start).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers import require_binary, require_root
from systemd_manager import BOUND_FROM, SERVICE_UID, SRV_ENVIRONMENT, SRV_PYTHON_BINARY

VOLUME = "/srv/volume"
TRACE = "/srv/trace/strace"

_LAUNCH = r"""
set -eu
mount --bind "$SCRATCH" /srv
mount --bind "$PYTHON_PREFIX" /srv/python
mount --bind "$SITE" /srv/site-packages
mount --bind "$SOURCE" /srv/templog
mount --bind /srv/volume /srv/volume
mount --bind /srv/trace /srv/trace
for m in / /srv /srv/python /srv/site-packages /srv/templog; do mount -o remount,bind,ro "$m"; done
cd /srv/volume
exec "$STRACE" -f -qq -y -e trace=%file -e signal=none -o "$TRACE" \
    setpriv --reuid="$UID_" --regid="$UID_" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/srv/volume PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
        TEMPLOG_CONFIG=/srv/config.yaml TEMPLOG_OUTBOX=/srv/volume/outbox.sqlite $PYTHON_ENV "$@"
"""

# Calls that change the file system, and how a write shows in an open's flags
_CHANGING = {"mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
             "symlink", "symlinkat", "chmod", "fchmodat", "chown", "fchownat", "lchown", "truncate", "utimensat",
             "mknod", "mknodat", "creat"}
_OPENS = {"open", "openat", "openat2"}
_PROBES = {"access", "faccessat", "faccessat2"}  # access(W_OK) is a question, not a write (SQLite's temp dir search)
_OPEN_FOR_WRITING = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE")
# pid  call(  [dirfd<its path>, ]"path" rest      (strace -y prints a descriptor's path in <>)
_CALL = re.compile(r'^\d+\s+(\w+)\((?:(?:AT_FDCWD|\d+)(?:<([^>]*)>)?, )?"([^"]*)"(.*)$')


def _written(line: str, cwd: str) -> str | None:
    """The path `line` of strace's output wrote to or was refused writing to (EROFS), if it is such a call."""
    call = _CALL.match(line)
    if call is None:
        return None
    name, directory, path, rest = call.groups()
    if not (name in _CHANGING or (name in _OPENS and _OPEN_FOR_WRITING.search(rest))
            or ("EROFS" in rest and name not in _PROBES)):
        return None
    return os.path.normpath(os.path.join(directory or cwd, path))


@dataclass
class ReadOnlyRoot:
    scratch: Path

    def __post_init__(self):
        require_root("to mount a read-only root in a namespace of its own")
        self.strace = require_binary("strace")
        self.unshare = require_binary("unshare")
        for name in ("volume", "trace", "python", "site-packages", "templog"):
            (self.scratch / name).mkdir(parents=True, exist_ok=True)
        self.scratch.chmod(0o755)
        shutil.chown(self.scratch / "volume", SERVICE_UID, SERVICE_UID)
        (self.scratch / "volume").chmod(0o750)  # as the Dockerfile's `install -d -m 0750`
        (self.scratch / "trace").chmod(0o700)

    @property
    def volume(self) -> Path:
        return self.scratch / "volume"

    def popen(self, *args: str, environ: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
        """`templog ARGS` under the read-only root, its trace appended to the scratch's trace/ (one file per run);
        `environ`: variables added to the image's environment (a container's `environment`), values without
        white space."""
        added = {**SRV_ENVIRONMENT, **(environ or {})}
        assert not any(re.search(r"\s", f"{k}{v}") for k, v in added.items()), added
        runs = len(list((self.scratch / "trace").glob("strace*")))
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SCRATCH": str(self.scratch), "STRACE": self.strace,
               "TRACE": f"{TRACE}.{runs}", "UID_": str(SERVICE_UID),
               "PYTHON_ENV": " ".join(f"{k}={v}" for k, v in added.items()), **BOUND_FROM}
        return subprocess.Popen([self.unshare, "--mount", "--propagation", "private", "sh", "-c", _LAUNCH, "sh",
                                 SRV_PYTHON_BINARY, "-S", "-m", "collector", *args], env=env, **kwargs)

    def run(self, *args: str, timeout: float = 60, environ: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
        process = self.popen(*args, environ=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def writes(self) -> list[tuple[str, str]]:
        """(path, strace's line) for every path a traced process created, changed, opened for writing or was
        refused writing to, over all runs so far."""
        found = []
        for trace in sorted((self.scratch / "trace").glob("strace*")):
            for line in trace.read_text().splitlines():
                path = _written(line, VOLUME)
                if path is not None:
                    found.append((path, line))
        return found

"""systemd's own service manager, to run systemd/templog.service with every sandboxing directive applied.

There is no systemd as PID 1 here (nor in CI's containers), so `systemd-run` and `systemctl` have no manager to
talk to. A *user* instance of systemd (`systemd --user`) run as root has every privilege the system instance has,
so it applies User=, the mount namespace (ProtectSystem=, PrivateTmp=, ...), the user namespace (PrivateUsers=)
and the seccomp filters (SystemCallFilter=, MemoryDenyWriteExecute=, ...) with the same code. It runs in a mount
namespace of its own (`unshare --mount`), where:
  - /run is a private tmpfs holding /run/systemd/system, which is what lets systemd start as a user instance
    (sd_booted()) without touching the host's /run;
  - /etc/passwd and /etc/group are copies with the service user `templog` added;
  - /var/lib is a scratch directory, and XDG_CONFIG_HOME (and XDG_STATE_HOME, for later systemd) point at it, so
    StateDirectory=templog is /var/lib/templog as under the system instance (a user instance puts it in
    $XDG_CONFIG_HOME: systemd 252 systemd.exec(5), the table of automatic directories under RuntimeDirectory=);
  - /srv is a scratch directory for the config and the sensors' files (outside /tmp, which PrivateTmp= replaces,
    and outside /root and /home, which ProtectHome= hides), with this Python and the source bound inside it.
Its cgroups are subgroups of the test's own (name=systemd and/or the unified hierarchy), removed at the end.
What this cannot show: the device cgroup policy (DevicePolicy=, DeviceAllow=), which needs controllers the system
instance owns; PrivateDevices= (what /dev holds) is shown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from cli import ROOT, wait_until
from servers import refuse, require_binary, require_root

SERVICE_UID = 10001  # as in the Dockerfile
SRV_PYTHON = "/srv/python"  # this interpreter's prefix, bound here: it may live under /root (pyenv)
SRV_SITE = "/srv/site-packages"  # the venv's packages
SRV_SOURCE = "/srv/templog"  # the repository, so the service runs this worktree's collector
SRV_PYTHON_BINARY = f"{SRV_PYTHON}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
# What runs this interpreter with this source and the venv's packages from /srv. (A pyenv build's RUNPATH names its
# libpython under /root, which ProtectHome= hides or the service user cannot enter: without LD_LIBRARY_PATH the
# loader would take the system's libpython, of another 3.11 release than the interpreter's own modules.)
SRV_ENVIRONMENT = {"PYTHONPATH": f"{SRV_SOURCE}:{SRV_SITE}", "LD_LIBRARY_PATH": f"{SRV_PYTHON}/lib"}
# The host paths bound there, for the launch scripts
BOUND_FROM = {"PYTHON_PREFIX": sys.base_prefix, "SITE": sysconfig.get_paths()["purelib"], "SOURCE": str(ROOT)}

_LAUNCH = r"""
set -eu
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/system /run/user/0
# what the system instance makes at boot, to mount over what a unit hides (systemd's make_inaccessible_nodes())
mkdir -p -m 0755 /run/systemd/inaccessible
mkdir -m 0000 /run/systemd/inaccessible/dir
install -m 0000 /dev/null /run/systemd/inaccessible/reg
mkfifo -m 0000 /run/systemd/inaccessible/fifo
mknod -m 0000 /run/systemd/inaccessible/chr c 0 0
mknod -m 0000 /run/systemd/inaccessible/blk b 0 0
"$PYTHON" -c 'import socket; socket.socket(socket.AF_UNIX).bind("/run/systemd/inaccessible/sock")'
chmod 0000 /run/systemd/inaccessible/sock
mount --bind "$S/passwd" /etc/passwd
mount --bind "$S/group" /etc/group
mount --bind "$S/var-lib" /var/lib
mount --bind "$S/srv" /srv
mount --bind "$PYTHON_PREFIX" /srv/python
mount --bind "$SITE" /srv/site-packages
mount --bind "$SOURCE" /srv/templog
for group in $CGROUPS; do echo $$ > "$group/cgroup.procs"; done
export XDG_RUNTIME_DIR=/run/user/0 XDG_CONFIG_HOME=/var/lib XDG_STATE_HOME=/var/lib
exec "$SYSTEMD" --user --log-target=console --log-level=warning
"""


def _own_cgroups(name: str) -> list[Path]:
    """A new cgroup below this process's own in each hierarchy systemd tracks processes in."""
    mounts = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[-1]
        if fstype == "cgroup2":
            mounts["0::"] = Path(fields[4])
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            mounts["name=systemd"] = Path(fields[4])
    groups = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        key = "0::" if number == "0" else controllers
        if key in mounts:
            groups.append(mounts[key] / path.lstrip("/") / name)
    return groups


def _remove_tree(group: Path) -> None:
    for directory in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        directory.rmdir()
    group.rmdir()


class ServiceManager:
    """A running `systemd --user` as root, set up as the module docstring says; `scratch` holds its directories."""

    def __init__(self, scratch: Path):
        # CI and `make test` run as root (the Makefile's apt set-up needs it)
        require_root("for systemd's manager: a mount namespace and cgroups of its own")
        systemd = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if Path(p).exists()), None)
        if systemd is None:
            refuse("systemd is not installed")
        self.systemctl_binary, self.nsenter = require_binary("systemctl"), require_binary("nsenter")
        self.scratch = scratch
        self.srv = scratch / "srv"
        self.var_lib = scratch / "var-lib"
        for directory in (self.srv, self.var_lib / "systemd/user", self.srv / "python", self.srv / "site-packages",
                          self.srv / "templog"):
            directory.mkdir(parents=True)
        self.srv.chmod(0o755)
        self.var_lib.chmod(0o755)
        (scratch / "passwd").write_text(
            Path("/etc/passwd").read_text()
            + f"templog:x:{SERVICE_UID}:{SERVICE_UID}:templog:/var/lib/templog:/usr/sbin/nologin\n")
        (scratch / "group").write_text(Path("/etc/group").read_text() + f"templog:x:{SERVICE_UID}:\n")
        self.cgroups = _own_cgroups(f"templog-test-{os.getpid()}-{time.monotonic_ns()}")
        for group in self.cgroups:
            group.mkdir()
        env = {**os.environ, "S": str(scratch), "SYSTEMD": systemd, "CGROUPS": " ".join(map(str, self.cgroups)),
               "PYTHON": sys.executable, **BOUND_FROM}
        self.log = scratch / "manager.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([require_binary("unshare"), "--mount", "--propagation", "private",
                                             "sh", "-c", _LAUNCH], env=env, stdout=log, stderr=log)
        try:
            wait_until(self._running, timeout=30, what="systemd's manager to start")
        except BaseException:
            self.stop()
            raise

    def _running(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"systemd exited with {self.process.returncode}: {self.log.read_text()}")
        return self.systemctl("is-system-running", check=False).stdout.strip() in ("running", "degraded")

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`systemctl --user ARGS` against this manager (in its mount namespace, where its socket is)."""
        done = subprocess.run([self.nsenter, "-t", str(self.process.pid), "-m", "env", "XDG_RUNTIME_DIR=/run/user/0",
                               self.systemctl_binary, "--user", "--no-pager", *args],
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"systemctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def install(self, name: str, text: str) -> None:
        (self.var_lib / "systemd/user" / name).write_text(text)
        self.systemctl("daemon-reload")

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def status(self, unit: str) -> str:
        """What `systemctl status` says of `unit`, for an assertion's message."""
        return self.systemctl("status", unit, check=False).stdout

    def stop(self) -> None:
        """End the manager (SIGTERM: it stops its units and exits) and remove its cgroups."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for group in self.cgroups:
            if group.exists():
                def emptied(group=group):
                    return not any((p / "cgroup.procs").read_text().strip()
                                   for p in [group, *group.rglob("*")] if p.is_dir())

                wait_until(emptied, timeout=10, what=f"{group} to empty")
                _remove_tree(group)

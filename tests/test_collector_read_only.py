"""The collector container's read-only root (docker-compose.yml `read_only: true`), proven on real processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cli import wait_until
from readonly_root import VOLUME, ReadOnlyRoot
from stack_tools import REPO, load_compose


@pytest.fixture
def root(tmp_path):
    return ReadOnlyRoot(tmp_path / "read-only")


def test_compose_runs_the_collector_on_a_read_only_root_with_its_volume_the_only_writable_place():
    collector = load_compose()["services"]["collector"]
    assert collector.get("read_only") is True
    # nothing else is written (the test below): no tmpfs for /tmp, which SQLite would not need either
    assert "tmpfs" not in collector
    assert any(m.endswith(":/var/lib/templog") for m in collector["volumes"])


def test_compose_runs_the_provisioning_one_shot_on_a_read_only_root_with_a_tmpfs_for_its_scratch_copy():
    """scripts/render-grafana-provisioning.sh writes only to the provisioning volume and to its scratch copy
    (mktemp -d, in /tmp): on a read-only root /tmp must be a tmpfs. (Checked by reading the script; unlike the
    collector's, this run is not traced.)"""
    one_shot = load_compose()["services"]["grafana-provisioning"]
    assert one_shot.get("read_only") is True
    assert "/tmp" in one_shot["tmpfs"]
    assert "mktemp -d" in (REPO / "scripts/render-grafana-provisioning.sh").read_text()


def _tracee(tracer: int) -> int:
    """The process strace started (the traced templog): strace's only child."""
    children = Path(f"/proc/{tracer}/task/{tracer}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_run_health_and_read_write_nothing_but_the_volume(root, influxd, database):
    """`templog run` ticks and delivers, `health` and `read` answer, SIGTERM ends `run` with 0, all as uid 10001
    with / read-only and no TMPDIR: every file created or opened for writing is in the volume, and no call meets
    the read-only file system. (SQLite puts a temporary file, if it ever needs one, in the first writable one of
    SQLITE_TMPDIR, TMPDIR, /var/tmp, /usr/tmp, /tmp and the working directory, which is the volume:
    sqlite/sqlite@003737d1:src/os_unix.c unixTempFileDir, the same list as in the 3.40 Python 3.11 bundles.)"""
    (root.scratch / "config.yaml").write_text(f"""
influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 1h}}
collector: {{interval: 500ms, outbox: "${{TEMPLOG_OUTBOX}}"}}
sensors:
  - {{name: sim, type: simulated}}
  - {{name: cmd, type: command, command: "echo 21.5"}}
""")

    def delivered() -> int:
        result = influxd.query('SELECT count("celsius") FROM "temperature"', db=database)["results"][0]
        return result["series"][0]["values"][0][1] if "series" in result else 0

    with open(root.scratch / "run.log", "w") as log:
        run = root.popen("run", "-c", "/srv/config.yaml", stderr=log)
        try:
            wait_until(lambda: delivered() >= 4, what="points delivered from under the read-only root")
            health = root.run("health", "-c", "/srv/config.yaml")
            assert health.returncode == 0, health.stdout + health.stderr
            read = root.run("read", "-c", "/srv/config.yaml")
            assert read.returncode == 0 and "21.50 °C" in read.stdout, read.stdout + read.stderr
            os.kill(_tracee(run.pid), signal.SIGTERM)
            assert run.wait(30) == 0, (root.scratch / "run.log").read_text()
        finally:
            if run.poll() is None:  # the tracee first: killing strace alone would detach it and leave it running
                try:
                    os.kill(_tracee(run.pid), signal.SIGKILL)
                except (OSError, AssertionError):
                    pass
                run.kill()
                run.wait()
    assert "ERROR" not in (root.scratch / "run.log").read_text()
    written = root.writes()
    assert f"{VOLUME}/outbox.sqlite" in {path for path, _ in written}, "the trace misses the outbox's writes"
    outside = [line for path, line in written
               if path != VOLUME and not path.startswith(VOLUME + "/") and path != "/dev/null"]  # a command's stdin
    assert outside == [], outside
    assert (root.volume / "outbox.sqlite").exists()

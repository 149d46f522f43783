"""The short commands import what they use and nothing else, so they start fast and small: `health` runs every 30 s
under Docker's HEALTHCHECK, for years, on a Raspberry Pi (issue 10; the time and memory are in bench/startup.py).

Each command runs as a real process under `python -X importtime`, which names on stderr every module the process
imports, one per line: `import time: <self us> | <cumulative us> | <module>` (Python 3.11 docs, -X importtime).
"""

import os
import subprocess
import sys

import pytest

from cli import ROOT
from collector.outbox import Outbox

# What a command that neither delivers, nor collects, nor renders must not pay for: influxdb-client (with its
# numpy/pandas probing, reactivex, dateutil) and urllib3, the Grafana renderer, paho-mqtt, the scheduler.
NOT_FOR_SHORT_COMMANDS = ("influxdb_client", "urllib3", "collector.grafana", "paho", "collector.runner", "schedule")
SIMULATED = "sensors:\n  - {name: desk, type: simulated}\n"
# What each one needs even less of (BENCHMARKS.md "Command start-up, second pass"): `health` reads the outbox's
# state, not its readings, and probes no path (tempfile brings random); `read` opens no outbox; `--help` loads no
# config (PyYAML, dataclasses).
NOT_FOR = {
    "health": ("collector.history", "collector.readings", "tempfile", "socket", "json", "csv"),
    "read": ("collector.outbox", "sqlite3", "collector.history", "tempfile", "socket"),
    "--help": ("collector.config", "yaml", "dataclasses", "collector.outbox", "sqlite3", "collector.sensors"),
}


def imported(*args: str, env: dict | None = None) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules `python -X importtime -m collector ARGS` imported, and the finished process."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "collector", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "collector.cli" in names, done.stderr[-2000:]  # the listing was read: the command's own module is in it
    return names, done


def heavy(names: set[str]) -> list[str]:
    """The modules of NOT_FOR_SHORT_COMMANDS, and their submodules, among `names`."""
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in NOT_FOR_SHORT_COMMANDS))


@pytest.fixture
def outbox(tmp_path):
    """An outbox with its tables, as a collector's start leaves it, for `health` and `history` to open."""
    path = tmp_path / "outbox.sqlite"
    Outbox(str(path)).close()
    return path


@pytest.mark.parametrize("command", ["health", "read"])
def test_health_and_read_on_the_default_config_import_no_influx_client_renderer_nor_paho(command, outbox):
    names, done = imported(command, "-c", str(ROOT / "config.yaml"), env={"TEMPLOG_OUTBOX": str(outbox)})
    assert done.stdout.startswith(("healthy: ", "unhealthy: ") if command == "health" else "living-room "), done.stderr
    assert heavy(names) == []
    assert sorted(names & set(NOT_FOR[command])) == []


def test_history_from_the_outbox_imports_no_influx_client(write_config, outbox):
    config = write_config(SIMULATED + f"collector: {{outbox: {outbox}}}\n")
    names, done = imported("history", "-c", str(config), "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert heavy(names) == []


def test_help_imports_nothing_a_command_would():
    names, done = imported("--help")
    assert done.returncode == 0 and "health" in done.stdout
    assert heavy(names) == []
    assert sorted(names & set(NOT_FOR["--help"])) == []


def test_api_v1_never_imports_influxdb_client(write_config, outbox):
    """`check` on api v1 makes its client (urllib3) and asks a closed port: influxdb-client is api v2's alone."""
    config = write_config("influxdb: {url: 'http://127.0.0.1:9', api: v1, bucket: b}\n" + SIMULATED
                          + f"collector: {{outbox: {outbox}}}\n")
    names, done = imported("check", "-c", str(config))
    assert done.returncode == 1 and "problem: " in done.stdout, done.stderr
    assert "urllib3" in names and "collector.influx.v1" in names
    assert [n for n in names if n.split(".")[0] == "influxdb_client"] == []

"""Sensor cases as data (issue 11 item 5): each folder tests/sensor_cases/<type>/<case>/ holds the kernel's files as
they lie under /sys (sys/), a config.yaml whose `collector.sysfs` points there, and expected.json, the document
`templog read --json` prints for it. One test walks them all; adding a case is adding a folder (README.md there).

As Telegraf's plugins/inputs/temp/testcases and node_exporter's sysfs fixtures do; a behaviour that needs a process
(a hang, a file that changes between two reads, a FIFO) stays a Python test (test_sensors.py, test_ds18b20.py).
"""

import json
from pathlib import Path

import pytest

from cli import ROOT, templog
from golden import CASE_VARIABLE, as_case_relative, compare_json

CASES = ROOT / "tests/sensor_cases"


def folders() -> list[Path]:
    return sorted(config.parent for config in CASES.glob("*/*/config.yaml"))


def cases() -> list:
    return [pytest.param(folder, id=f"{folder.parent.name}/{folder.name}") for folder in folders()]


def test_every_case_folder_is_complete():
    """A folder without its config or its sys tree would be walked by no test: git keeps no empty folder, and a
    forgotten `git add` would silently leave a case out."""
    found = [f for kind in CASES.iterdir() if kind.is_dir() for f in kind.iterdir() if f.is_dir()]
    assert len(found) == len(folders()) > 0
    incomplete = [f"{f.relative_to(CASES)} has no {part}" for f in found
                  for part in ("sys", "config.yaml", "expected.json") if not (f / part).exists()]
    assert incomplete == []


@pytest.mark.parametrize("case", cases())
def test_sensor_case(case):
    done = templog("read", "--json", "-c", str(case / "config.yaml"), env={CASE_VARIABLE: str(case)})
    assert "Traceback" not in done.stderr and done.stdout, done.stderr
    records = json.loads(as_case_relative(done.stdout, case))
    compare_json(case / "expected.json", records)
    assert done.returncode == (0 if all(r["error"] is None for r in records) else 1)  # read: 1 if any failed

"""Expected outputs kept as files beside their case (tests/sensor_cases, tests/discover_cases): compared with what
templog prints, and rewritten from it when TEMPLOG_UPDATE_GOLDEN=1 (then review the diff before committing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

UPDATE = os.environ.get("TEMPLOG_UPDATE_GOLDEN") == "1"
CASE_VARIABLE = "CASE"  # the environment variable that holds the case's folder, for a config's ${CASE}
CASE = "${CASE}"  # stands for the case's folder in configs and in expected outputs


def as_case_relative(text: str, case: Path) -> str:
    """The output with the case's folder written as ${CASE}: the expected files hold no checkout's path."""
    return text.replace(str(case), CASE)


def compare_text(expected: Path, actual: str) -> None:
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert expected.exists(), f"no {expected}: write it with TEMPLOG_UPDATE_GOLDEN=1, then review it"
    assert actual == expected.read_text(encoding="utf-8")


def compare_json(expected: Path, actual: object) -> None:
    """As compare_text, of JSON documents: the expected file may be laid out as its writer likes."""
    if UPDATE:
        expected.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected.exists(), f"no {expected}: write it with TEMPLOG_UPDATE_GOLDEN=1, then review it"
    assert actual == json.loads(expected.read_text(encoding="utf-8"))

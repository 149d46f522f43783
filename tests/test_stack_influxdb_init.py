"""influxdb/init/10-templog.sh against a stand-in `influx` CLI, and the downsampling task it installs.

The stand-in accepts only the subcommands and flags the real influx CLI 2.7 has for what the script does, answers
as the real one does with --hide-headers (one tab-separated row per resource), keeps its buckets, tasks and tokens
in a JSON file between calls, and records every call (with the content of a --file) as one JSON line.
The script runs with the environment the influxdb image gives its init scripts, from docker-compose.yml.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from stack_tools import REPO, load_compose, service_env

from collector.durations import parse_duration

SCRIPT = REPO / "influxdb/init/10-templog.sh"
FLUX = REPO / "influxdb/tasks/downsample.flux"
ORG_ID = "0a1b2c3d4e5f6071"
RAW_ID = "1111111111111111"
USER_ID = "0ff1ce0ff1ce0ff1"
TASK_NAME = "templog-downsample"

FAKE_INFLUX = r'''
# A stand-in for the influx CLI 2.7 (see test_stack_influxdb_init.py); ORG_ID and USER_ID are prepended.
import json, os, re, sys

FLAGS = {  # per subcommand: flag -> takes a value (from influx-cli's cmd/influx/{bucket,task,auth}.go)
    ("bucket", "list"): {"--org": True, "--name": True, "--id": True, "--hide-headers": False, "--json": False},
    ("bucket", "create"): {"--org": True, "--name": True, "--retention": True, "--description": True,
                           "--hide-headers": False, "--json": False},
    ("bucket", "update"): {"--id": True, "--retention": True, "--description": True, "--name": True,
                           "--hide-headers": False, "--json": False},
    ("task", "list"): {"--org": True, "--hide-headers": False, "--json": False},
    ("task", "create"): {"--org": True, "--file": True, "--hide-headers": False, "--json": False},
    ("task", "update"): {"--id": True, "--file": True, "--status": True, "--hide-headers": False, "--json": False},
    ("auth", "list"): {"--org": True, "--hide-headers": False, "--json": False},
    ("auth", "create"): {"--org": True, "--user": True, "--description": True, "--write-bucket": True,
                         "--read-bucket": True, "--hide-headers": False, "--json": False},
    ("auth", "delete"): {"--id": True, "--hide-headers": False, "--json": False},
}


def fail(message, code=1):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)


def parse(argv):
    command = tuple(argv[:2])
    if command not in FLAGS:
        fail(f"stand-in influx: unsupported command {argv!r}", 2)
    options, rest = {}, argv[2:]
    while rest:
        flag = rest.pop(0)
        if flag not in FLAGS[command]:
            fail(f"flag provided but not defined: {flag}", 2)
        if FLAGS[command][flag]:
            if not rest:
                fail(f"flag needs an argument: {flag}", 2)
            options.setdefault(flag, []).append(rest.pop(0))
        else:
            options[flag] = [True]
    return command, options


def duration_ok(text):
    return text == "0" or re.fullmatch(r"(\d+(w|d|h|m|s|ms|us|ns))+", text) is not None


def new_id(state):
    state["next"] += 1
    return f"{state['next']:016x}"


def row(*columns):
    print("\t".join(str(c) for c in columns))


argv = sys.argv[1:]
state_path = os.environ["FAKE_INFLUX_STATE"]
with open(state_path) as f:
    state = json.load(f)
command, options = parse(argv)
one = lambda flag: options.get(flag, [None])[-1]
entry = {"argv": argv}
if one("--file"):
    with open(one("--file")) as f:
        entry["file_content"] = f.read()
with open(os.environ["FAKE_INFLUX_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
if " ".join(command) == os.environ.get("FAKE_INFLUX_FAIL"):
    fail("500 Internal Server Error: stand-in told to fail")
if "--hide-headers" not in options:
    print("ID\tName\t...")  # a header row, as the real CLI prints
if one("--org") not in (None, state["org"]):
    fail(f"organization name \"{one('--org')}\" not found")

if command == ("bucket", "list"):
    for b in state["buckets"]:
        row(b["id"], b["name"], b["retention"], "24h0m0s", ORG_ID, "implicit")
elif command == ("bucket", "create"):
    if not duration_ok(one("--retention") or ""):
        fail(f"bad retention {one('--retention')!r}")
    if any(b["name"] == one("--name") for b in state["buckets"]):
        fail("422 Unprocessable Entity: bucket with name already exists")
    b = {"id": new_id(state), "name": one("--name"), "retention": one("--retention")}
    state["buckets"].append(b)
    row(b["id"], b["name"], b["retention"], "24h0m0s", ORG_ID, "implicit")
elif command == ("bucket", "update"):
    b = next((b for b in state["buckets"] if b["id"] == one("--id")), None) or fail("bucket not found")
    if one("--retention"):
        b["retention"] = one("--retention")
    row(b["id"], b["name"], b["retention"], "24h0m0s", ORG_ID, "implicit")
elif command == ("task", "list"):
    for t in state["tasks"]:
        row(t["id"], t["name"], ORG_ID, state["org"], "active", "1h", "")
elif command == ("task", "create"):
    name = re.search(r'option task = \{name: "([^"]+)"', entry["file_content"]).group(1)
    t = {"id": new_id(state), "name": name}
    state["tasks"].append(t)
    row(t["id"], t["name"], ORG_ID, state["org"], "active", "1h", "")
elif command == ("task", "update"):
    t = next((t for t in state["tasks"] if t["id"] == one("--id")), None) or fail("task not found")
    row(t["id"], t["name"], ORG_ID, state["org"], "active", "1h", "")
elif command == ("auth", "list"):
    for a in state["auths"]:
        row(a["id"], a["description"], a["token"], "admin", USER_ID, "[" + " ".join(a["permissions"]) + "]")
elif command == ("auth", "create"):
    if one("--user") != "admin":
        fail(f"could not find user with name {one('--user')!r}")
    permissions = []
    for action in ("read", "write"):
        for bucket_id in options.get(f"--{action}-bucket", []):
            if not re.fullmatch(r"[0-9a-f]{16}", bucket_id):
                fail(f"invalid bucket ID '{bucket_id}' (did you pass a bucket name instead of an ID?)")
            permissions.append(f"{action}:orgs/{ORG_ID}/buckets/{bucket_id}")
    a = {"id": new_id(state), "description": one("--description") or "", "permissions": permissions}
    a["token"] = f"token-{a['id']}=="
    state["auths"].append(a)
    row(a["id"], a["description"], a["token"], "admin", USER_ID, "[" + " ".join(permissions) + "]")
elif command == ("auth", "delete"):
    a = next((a for a in state["auths"] if a["id"] == one("--id")), None) or fail("could not find auth")
    state["auths"].remove(a)
    row(a["id"], a["description"], a["token"], "admin", USER_ID, "[]", "true")

with open(state_path, "w") as f:
    json.dump(state, f)
'''


class StandIn:
    """The stand-in influx CLI's bin folder, state and call log."""

    def __init__(self, folder: Path):
        self.bin = folder / "bin"
        self.bin.mkdir()
        cli = self.bin / "influx"
        cli.write_text(f"#!{sys.executable}\nORG_ID = {ORG_ID!r}\nUSER_ID = {USER_ID!r}\n" + FAKE_INFLUX)
        cli.chmod(0o755)
        self.state_file = folder / "influx-state.json"
        self.log = folder / "influx-calls.jsonl"
        self.state_file.write_text(json.dumps({
            "org": "home", "next": 0x2000,
            "buckets": [{"id": "0000000000000001", "name": "_monitoring", "retention": "168h"},
                        {"id": "0000000000000002", "name": "_tasks", "retention": "72h"},
                        {"id": RAW_ID, "name": "temperature", "retention": "720h"}],
            "tasks": [], "auths": [{"id": "0000000000000aaa", "description": "admin's Token", "token": "admin-token",
                                    "permissions": ["read:/authorizations", "write:/authorizations"]}],
        }))

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def influx(tmp_path):
    return StandIn(tmp_path)


@pytest.fixture
def image_env(tmp_path, influx):
    """The environment the influxdb image runs its init scripts with, from docker-compose.yml, paths moved into
    tmp_path. As root (as in the image) the token files go to the compose file's UIDs; otherwise to our own."""
    compose_env = service_env(load_compose(), "influxdb")
    env = {key: value for key, value in compose_env.items()
           if key.startswith(("DOCKER_INFLUXDB_INIT_", "TEMPLOG_")) and not key.endswith("_FILE")}
    for key in ("TEMPLOG_COLLECTOR_TOKEN_FILE", "TEMPLOG_GRAFANA_TOKEN_FILE"):
        env[key] = str(tmp_path / compose_env[key].lstrip("/"))
    env["TEMPLOG_DOWNSAMPLE_FLUX"] = str(FLUX)
    if os.geteuid() != 0:
        env["TEMPLOG_COLLECTOR_UID"] = env["TEMPLOG_GRAFANA_UID"] = str(os.geteuid())
    env.update({
        # Exported by the image's entrypoint after `influx setup`:
        "INFLUX_HOST": "http://localhost:9999",
        "INFLUX_CONFIGS_PATH": str(tmp_path / "influx-configs"),
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": RAW_ID,
        "DOCKER_INFLUXDB_INIT_ORG_ID": ORG_ID,
        "PATH": f"{influx.bin}:{os.environ['PATH']}",
        "FAKE_INFLUX_STATE": str(influx.state_file),
        "FAKE_INFLUX_LOG": str(influx.log),
        "TMPDIR": str(tmp_path),
    })
    return env


def run_init(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def longterm_id(influx: StandIn) -> str:
    return next(b["id"] for b in influx.state["buckets"] if b["name"] == "temperature_longterm")


def tokens(influx: StandIn) -> dict[str, dict]:
    return {a["description"]: a for a in influx.state["auths"] if a["description"].startswith("templog ")}


def test_first_start_makes_the_long_term_bucket_the_task_and_two_least_privilege_tokens(image_env, influx):
    result = run_init(image_env)
    assert result.returncode == 0, result.stderr
    longterm = longterm_id(influx)
    collector = "templog collector: write temperature"
    grafana = "templog grafana: read temperature, temperature_longterm"
    assert influx.argvs() == [
        ["bucket", "list", "--org", "home", "--hide-headers"],
        ["bucket", "create", "--org", "home", "--name", "temperature_longterm", "--retention", "1825d",
         "--description", "templog: hourly mean, min and max per sensor", "--hide-headers"],
        ["task", "list", "--org", "home", "--hide-headers"],
        ["task", "create", "--org", "home", "--file", influx.argvs()[3][5]],
        ["auth", "list", "--org", "home", "--hide-headers"],
        ["auth", "create", "--org", "home", "--user", "admin", "--description", collector,
         "--write-bucket", RAW_ID, "--hide-headers"],
        ["auth", "create", "--org", "home", "--user", "admin", "--description", grafana,
         "--read-bucket", RAW_ID, "--read-bucket", longterm, "--hide-headers"],
    ]
    made = tokens(influx)
    assert made[collector]["permissions"] == [f"write:orgs/{ORG_ID}/buckets/{RAW_ID}"]
    assert made[grafana]["permissions"] == [f"read:orgs/{ORG_ID}/buckets/{RAW_ID}",
                                            f"read:orgs/{ORG_ID}/buckets/{longterm}"]
    # The task is the shipped Flux, unchanged (the compose file's bucket names are the file's own).
    assert influx.calls()[3]["file_content"] == FLUX.read_text()
    assert not Path(influx.argvs()[3][5]).exists(), "the temporary task file is removed"
    # Each token is handed to its service's user alone.
    for description, key in ((collector, "COLLECTOR"), (grafana, "GRAFANA")):
        path = Path(image_env[f"TEMPLOG_{key}_TOKEN_FILE"])
        assert path.read_text() == made[description]["token"]
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o400
        assert info.st_uid == int(image_env[f"TEMPLOG_{key}_UID"])
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
        assert sorted(p.name for p in path.parent.iterdir()) == ["token"], "no leftover temporary files"
    assert "token-" not in result.stderr + result.stdout, "tokens are never logged"


def test_the_long_term_bucket_keeps_five_years(image_env, influx):
    assert run_init(image_env).returncode == 0
    retention = next(b["retention"] for b in influx.state["buckets"] if b["name"] == "temperature_longterm")
    assert parse_duration(retention) == 5 * 365 * 86400


def test_running_again_updates_in_place_and_replaces_the_tokens(image_env, influx):
    assert run_init(image_env).returncode == 0
    first = tokens(influx)
    task_id = influx.state["tasks"][0]["id"]
    longterm = longterm_id(influx)
    influx.forget_calls()

    result = run_init(image_env)
    assert result.returncode == 0, result.stderr
    argvs = influx.argvs()
    assert ["bucket", "update", "--id", longterm, "--retention", "1825d"] in argvs
    assert ["task", "update", "--id", task_id, "--file", argvs[3][5]] == argvs[3]
    assert not any(argv[:2] in (["bucket", "create"], ["task", "create"]) for argv in argvs)
    # New tokens are in place before the old ones are deleted.
    creates = [i for i, argv in enumerate(argvs) if argv[:2] == ["auth", "create"]]
    deletes = [argv for argv in argvs if argv[:2] == ["auth", "delete"]]
    assert sorted(d[3] for d in deletes) == sorted(a["id"] for a in first.values())
    assert all(argvs.index(d) > max(creates) for d in deletes)
    second = tokens(influx)
    assert second.keys() == first.keys() and len(influx.state["tasks"]) == 1
    for description, key in (("templog collector", "COLLECTOR"), ("templog grafana", "GRAFANA")):
        token = next(a["token"] for d, a in second.items() if d.startswith(description))
        assert Path(image_env[f"TEMPLOG_{key}_TOKEN_FILE"]).read_text() == token
    assert any(a["description"] == "admin's Token" for a in influx.state["auths"]), "other tokens are left alone"


def test_other_bucket_names_reach_the_task(image_env, influx):
    state = influx.state
    state["buckets"].append({"id": "2222222222222222", "name": "temps", "retention": "720h"})
    influx.state_file.write_text(json.dumps(state))
    env = {**image_env, "DOCKER_INFLUXDB_INIT_BUCKET": "temps", "DOCKER_INFLUXDB_INIT_BUCKET_ID": "2222222222222222",
           "TEMPLOG_LONGTERM_BUCKET": "temps_hourly"}
    result = run_init(env)
    assert result.returncode == 0, result.stderr
    flux = next(c["file_content"] for c in influx.calls() if c["argv"][:2] == ["task", "create"])
    assert 'rawBucket = "temps"\n' in flux and 'longtermBucket = "temps_hourly"\n' in flux
    assert flux.replace('"temps"', '"temperature"').replace('"temps_hourly"', '"temperature_longterm"') \
        == FLUX.read_text()
    write = next(a for a in influx.state["auths"] if a["description"].startswith("templog collector"))
    assert write["permissions"] == [f"write:orgs/{ORG_ID}/buckets/2222222222222222"]


def test_the_raw_bucket_is_looked_up_when_the_entrypoint_gave_no_id(image_env, influx):
    env = {key: value for key, value in image_env.items() if key != "DOCKER_INFLUXDB_INIT_BUCKET_ID"}
    assert run_init(env).returncode == 0
    write = next(a for a in influx.state["auths"] if a["description"].startswith("templog collector"))
    assert write["permissions"] == [f"write:orgs/{ORG_ID}/buckets/{RAW_ID}"]


@pytest.mark.parametrize("failing", ["auth create", "task create", "bucket create"])
def test_a_failing_influx_call_fails_the_set_up(image_env, influx, failing):
    """The image's entrypoint runs init scripts with run-parts --exit-on-error and, on failure, wipes the
    half-made database so that the next start sets it up again: the script must exit non-zero."""
    result = run_init({**image_env, "FAKE_INFLUX_FAIL": failing})
    assert result.returncode != 0
    assert "stand-in told to fail" in result.stderr
    assert not Path(image_env["TEMPLOG_GRAFANA_TOKEN_FILE"]).exists()


@pytest.mark.parametrize("name", ["my bucket", "a/b", 'x"y', ""])
def test_bucket_names_that_would_break_the_task_are_refused(image_env, influx, name):
    result = run_init({**image_env, "TEMPLOG_LONGTERM_BUCKET": name} if name else
                      {**image_env, "DOCKER_INFLUXDB_INIT_BUCKET": name})
    assert result.returncode != 0
    assert influx.calls() == []


def test_the_image_would_run_the_script():
    """run-parts --regex '.*sh$' runs the executable files in /docker-entrypoint-initdb.d (./influxdb/init)."""
    scripts = sorted(p.name for p in SCRIPT.parent.iterdir())
    assert scripts == ["10-templog.sh"]
    assert os.access(SCRIPT, os.X_OK) and SCRIPT.read_text().startswith("#!/bin/sh\n")


# --- the downsampling task --------------------------------------------------------------------------------------


def flux_text() -> str:
    return FLUX.read_text()


def test_the_task_is_named_as_the_script_expects_and_runs_hourly():
    option = re.search(r"^option task = \{(.*)\}$", flux_text(), re.MULTILINE).group(1)
    assert f'name: "{TASK_NAME}"' in option and "every: 1h" in option
    assert f"task_name={TASK_NAME}\n" in SCRIPT.read_text()


def test_the_task_reads_and_writes_the_compose_files_buckets():
    env = service_env(load_compose(), "influxdb")
    lines = flux_text().splitlines()
    assert f'rawBucket = "{env["DOCKER_INFLUXDB_INIT_BUCKET"]}"' in lines
    assert f'longtermBucket = "{env["TEMPLOG_LONGTERM_BUCKET"]}"' in lines
    assert "from(bucket: rawBucket)" in flux_text() and "to(bucket: longtermBucket, " in flux_text()

"""influxdb/init/10-templog.sh against a stand-in `influx` CLI, and the downsampling task it installs.

The stand-in (StandIn) prints what influx-cli v2.7.5 prints, tables and --json alike, keeps its buckets, tasks,
tokens and users in a JSON file between calls, and records every call (with the content of a --file) as one JSON
line. The script runs with the environment the influxdb image gives its init scripts (entrypoint_env).
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
from hypothesis import given, settings
from hypothesis import strategies as st

from stack_tools import REPO, load_compose, service_env

SCRIPT = REPO / "influxdb/init/10-templog.sh"
FLUX = REPO / "influxdb/tasks/downsample.flux"
ORG_ID = "0a1b2c3d4e5f6071"
RAW_ID = "1111111111111111"
USER_ID = "0ff1ce0ff1ce0ff1"
TASK_NAME = "templog-downsample"
CONSUMERS = ("COLLECTOR", "GRAFANA", "REPORT")  # each gets a token file of its own: TEMPLOG_<CONSUMER>_TOKEN_FILE
COLLECTOR = "templog collector: write temperature"
GRAFANA = "templog grafana: read temperature, temperature_longterm"
REPORT = "templog report: read temperature"

FAKE_INFLUX = r'''
# A stand-in for the influx CLI v2.7.5 (see StandIn); ORG_ID and USER_ID are prepended.
import json, os, re, sys

FLAGS = {  # per subcommand: flag -> takes a value (influx-cli v2.7.5 cmd/influx/{bucket,task,auth,user}.go)
    ("bucket", "list"): {"--org": True, "--name": True, "--id": True},
    ("bucket", "create"): {"--org": True, "--name": True, "--retention": True, "--description": True},
    ("bucket", "update"): {"--id": True, "--retention": True, "--description": True, "--name": True},
    ("task", "list"): {"--org": True},
    ("task", "create"): {"--org": True, "--file": True},
    ("task", "update"): {"--id": True, "--file": True, "--status": True},
    ("auth", "list"): {"--org": True},
    ("auth", "create"): {"--org": True, "--user": True, "--description": True, "--write-bucket": True,
                         "--read-bucket": True},
    ("auth", "delete"): {"--id": True},
    ("user", "list"): {"--name": True, "--id": True},
}
OUTPUT_FLAGS = {"--hide-headers": False, "--json": False}  # every one of these subcommands has both


def fail(message, code=1):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)


def parse(argv):
    command = tuple(argv[:2])
    if command not in FLAGS:
        fail(f"stand-in influx: unsupported command {argv!r}", 2)
    flags = {**FLAGS[command], **OUTPUT_FLAGS}
    options, rest = {}, argv[2:]
    while rest:
        flag = rest.pop(0)
        if flag not in flags:
            fail(f"flag provided but not defined: {flag}", 2)
        if flags[flag]:
            if not rest:
                fail(f"flag needs an argument: {flag}", 2)
            options.setdefault(flag, []).append(rest.pop(0))
        else:
            options[flag] = [True]
    return command, options


def print_json(value, sort_keys):
    # clients/cli.go PrintJSON: json.Encoder, SetIndent("", "\t"), HTML escaping on (Go's default); the api
    # models marshal through a map (api/model_*.gen.go MarshalJSON), so their keys come sorted, a struct's in
    # the order of its fields.
    text = json.dumps(value, indent="\t", sort_keys=sort_keys, ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escaped)
    print(text)


def print_table(headers, rows, hide_headers):
    # clients/cli.go PrintTable -> pkg/tabwriter: Go's text/tabwriter.NewWriter(w, 0, 8, 1, '\t', 0), one row per
    # line as "%s\t%s\t...\n": each column but the last is padded with tabs to the next multiple of 8 at least one
    # wider than its widest cell (text/tabwriter writePadding), the last is not padded.
    lines = ([] if hide_headers else [list(headers)]) + [[format_cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(line[i]) for line in lines) + 1 for i in range(len(headers) - 1)] if lines else []
    for line in lines:
        cells = []
        for i, cell in enumerate(line[:-1]):
            cell_width = (widths[i] + 7) // 8 * 8
            cells.append(cell + "\t" * ((cell_width - len(cell) + 7) // 8))
        print("".join(cells) + line[-1])


def format_cell(value):  # fmt's %s / %d / %v
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(value) + "]"
    return str(value)


def duration_ok(text):
    return text == "0" or re.fullmatch(r"(\d+(w|d|h|m|s|ms|us|ns))+", text) is not None


def go_duration(seconds):  # time.Duration.String for whole seconds
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h" if hours else "") + f"{rest // 60}m{rest % 60}s" if seconds else "infinite"


def new_id(state):
    state["next"] += 1
    return f"{state['next']:016x}"


def bucket_json(b):  # api/model_bucket.gen.go, as influxd 2.7 answers GET /api/v2/buckets
    return {"id": b["id"], "type": "system" if b["name"].startswith("_") else "user", "name": b["name"],
            "orgID": ORG_ID, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "links": {k: f"/api/v2/buckets/{b['id']}" + ("" if k == "self" else f"/{k}")
                      for k in ("labels", "members", "owners", "self")} | {"org": f"/api/v2/orgs/{ORG_ID}",
                                                                          "write": "/api/v2/write"},
            "retentionRules": [{"type": "expire", "everySeconds": b["seconds"], "shardGroupDurationSeconds": 86400}],
            "labels": [], **({"description": b["description"]} if b.get("description") else {})}


def bucket_row(b):  # clients/bucket/client.go printBuckets
    return {"ID": b["id"], "Name": b["name"], "Retention": go_duration(b["seconds"]),
            "Shard group duration": "24h0m0s", "Organization ID": ORG_ID, "Schema Type": "implicit"}


def task_json(t):  # api/model_task.gen.go
    return {"id": t["id"], "orgID": ORG_ID, "org": state["org"], "name": t["name"], "ownerID": USER_ID,
            "status": "active", "flux": t["flux"], "every": "1h", "labels": [],
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "links": {"self": f"/api/v2/tasks/{t['id']}"}}


def task_row(t):  # clients/task/task.go printTasks
    return {"ID": t["id"], "Name": t["name"], "Organization ID": ORG_ID, "Organization": state["org"],
            "Status": "active", "Every": "1h", "Cron": "", "ScriptID": ""}


def auth_json(a):  # clients/auth/auth.go type token: a struct, so its fields in declaration order
    return {"id": a["id"], "description": a["description"], "token": a["token"], "status": "active",
            "userName": "admin", "userID": USER_ID, "permissions": a["permissions"]}


def auth_row(a):  # clients/auth/auth.go printAuth
    return {"ID": a["id"], "Description": a["description"], "Token": a["token"], "User Name": "admin",
            "User ID": USER_ID, "Permissions": a["permissions"]}


BUCKET_HEADERS = ["ID", "Name", "Retention", "Shard group duration", "Organization ID", "Schema Type"]
TASK_HEADERS = ["ID", "Name", "Organization ID", "Organization", "Status", "Every", "Cron", "ScriptID"]
AUTH_HEADERS = ["ID", "Description", "Token", "User Name", "User ID", "Permissions"]


def show(one, many, to_json, to_row, headers, deleted=False):
    # every client prints one object for create/update/delete and a list for list; a nil Go slice is `null`
    if "--json" in options:
        print_json(to_json(one) if one is not None else ([to_json(x) for x in many] if many else None),
                   sort_keys=to_json is not auth_json)
    else:
        rows = [to_row(x) | ({"Deleted": True} if deleted else {}) for x in ([one] if one is not None else many)]
        print_table(headers + (["Deleted"] if deleted else []), rows, "--hide-headers" in options)


def seconds(duration):
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([wdhms])", duration))


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
if one("--org") not in (None, state["org"]):
    fail(f"organization name \"{one('--org')}\" not found")

if command == ("bucket", "list"):
    found = [b for b in state["buckets"] if one("--name") in (None, b["name"]) and one("--id") in (None, b["id"])]
    if not found and (one("--name") or one("--id")):
        fail(f"bucket \"{one('--name') or one('--id')}\" not found")
    show(None, found, bucket_json, bucket_row, BUCKET_HEADERS)
elif command == ("bucket", "create"):
    if not duration_ok(one("--retention") or ""):
        fail(f"bad retention {one('--retention')!r}")
    if any(b["name"] == one("--name") for b in state["buckets"]):
        fail("422 Unprocessable Entity: bucket with name already exists")
    b = {"id": new_id(state), "name": one("--name"), "seconds": seconds(one("--retention")),
         "description": one("--description")}
    state["buckets"].append(b)
    show(b, None, bucket_json, bucket_row, BUCKET_HEADERS)
elif command == ("bucket", "update"):
    b = next((b for b in state["buckets"] if b["id"] == one("--id")), None) or fail("bucket not found")
    if one("--retention"):
        b["seconds"] = seconds(one("--retention"))
    show(b, None, bucket_json, bucket_row, BUCKET_HEADERS)
elif command == ("task", "list"):
    show(None, state["tasks"], task_json, task_row, TASK_HEADERS)
elif command == ("task", "create"):
    name = re.search(r'option task = \{name: "([^"]+)"', entry["file_content"]).group(1)
    t = {"id": new_id(state), "name": name, "flux": entry["file_content"]}
    state["tasks"].append(t)
    show(t, None, task_json, task_row, TASK_HEADERS)
elif command == ("task", "update"):
    t = next((t for t in state["tasks"] if t["id"] == one("--id")), None) or fail("task not found")
    t["flux"] = entry.get("file_content", t["flux"])
    show(t, None, task_json, task_row, TASK_HEADERS)
elif command == ("auth", "list"):
    show(None, state["auths"], auth_json, auth_row, AUTH_HEADERS)
elif command == ("auth", "create"):
    if not any(u["name"] == one("--user") for u in state["users"]):
        fail(f"could not find user with name {json.dumps(one('--user'))}: <nil>")
    permissions = []
    for action in ("read", "write"):  # clients/auth/auth.go Create: the read buckets first
        for bucket_id in options.get(f"--{action}-bucket", []):
            if not re.fullmatch(r"[0-9a-f]{16}", bucket_id):
                fail(f"invalid bucket ID '{bucket_id}' (did you pass a bucket name instead of an ID?)")
            permissions.append(f"{action}:orgs/{ORG_ID}/buckets/{bucket_id}")
    a = {"id": new_id(state), "description": one("--description") or "", "permissions": permissions}
    a["token"] = f"token-{a['id']}-" + "Ab9_" * 18 + "=="
    state["auths"].append(a)
    show(a, None, auth_json, auth_row, AUTH_HEADERS)
elif command == ("auth", "delete"):
    a = next((a for a in state["auths"] if a["id"] == one("--id")), None) or fail("could not find auth")
    state["auths"].remove(a)
    show(a, None, auth_json, auth_row, AUTH_HEADERS, deleted=True)
elif command == ("user", "list"):
    found = [u for u in state["users"] if one("--name") in (None, u["name"])]
    show(None, found, lambda u: {"id": u["id"], "name": u["name"], "status": "active",
                                 "links": {"self": f"/api/v2/users/{u['id']}"}},
         lambda u: {"ID": u["id"], "Name": u["name"]}, ["ID", "Name"])

with open(state_path, "w") as f:
    json.dump(state, f)
'''


class StandIn:
    """The stand-in influx CLI's bin folder, state and call log.

    It prints what influx-cli v2.7.5 (the version influxdata-docker's influxdb/2.7/Dockerfile installs for
    influxdb:2.7.12: ENV INFLUX_CLI_VERSION 2.7.5) prints, with and without --json: tables through
    clients/cli.go PrintTable and pkg/tabwriter/tabwriter.go (Go's text/tabwriter padding with tabs: columns are
    *not* one tab apart), JSON through clients/cli.go PrintJSON (json.Encoder indented with tabs); the columns and
    objects of clients/bucket/client.go printBuckets, clients/task/task.go printTasks, clients/auth/auth.go
    printAuth (type token) and clients/user/user.go printUsers. It accepts only the flags those commands have
    (cmd/influx/{bucket,task,auth,user}.go) and keeps its buckets, tasks, tokens and users in a JSON file.
    """

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
            "buckets": [{"id": "0000000000000001", "name": "_monitoring", "seconds": 604800},
                        {"id": "0000000000000002", "name": "_tasks", "seconds": 259200},
                        {"id": RAW_ID, "name": "temperature", "seconds": 2592000}],
            "tasks": [],
            "auths": [{"id": "0000000000000aaa", "description": "admin's Token", "token": "admin-token",
                       "permissions": ["read:/authorizations", "write:/authorizations"]},
                      # someone's token whose description holds what JSON must escape, and ours as a part
                      {"id": "0000000000000bbb", "token": "other-token", "permissions": [],
                       "description": 'copy of "templog collector: write temperature"\t<&>\n\\'}],
            "users": [{"id": USER_ID, "name": "admin"}],
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


def entrypoint_env(compose_env: dict[str, str], tmp_path: Path, influx: StandIn) -> dict[str, str]:
    """The environment the influxdb image runs its init scripts with (influxdata-docker@d457cb93
    influxdb/2.7/entrypoint.sh, run_user_scripts: run-parts inherits the entrypoint's exported environment):
    - the container's environment: the service's `environment` and the image's ENV (influxdb/2.7/Dockerfile);
    - exported by the entrypoint: INFLUXD_CONFIG_PATH (set_config_path), BOLT_PATH and ENGINE_PATH
      (set_data_paths), INFLUX_HOST (init_influxd) and DOCKER_INFLUXDB_INIT_{USER,ORG,BUCKET}_ID
      (set_init_resource_ids);
    - but not the values of DOCKER_INFLUXDB_INIT_{USERNAME,PASSWORD,ADMIN_TOKEN}_FILE: the entrypoint reads them
      into shell variables it never exports.
    Paths are moved into tmp_path (a /run/secrets/ file holds "admin\n" for a user name, else a dummy secret). As
    root (as in the image) the token files go to the compose file's UIDs; otherwise to our own."""
    env = dict(compose_env)
    for key, value in compose_env.items():
        if key.endswith("_FILE") and value.startswith("/run/secrets/"):
            secret = tmp_path / value.lstrip("/")
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text("admin\n" if "USERNAME" in key else "not-for-init-scripts\n")
            env[key] = str(secret)
    for consumer in CONSUMERS:
        key = f"TEMPLOG_{consumer}_TOKEN_FILE"
        env[key] = str(tmp_path / compose_env[key].lstrip("/"))
        if os.geteuid() != 0:
            env[f"TEMPLOG_{consumer}_UID"] = str(os.geteuid())
    env["TEMPLOG_DOWNSAMPLE_FLUX"] = str(FLUX)
    env.update({
        # the image's ENV
        "INFLUX_CONFIGS_PATH": str(tmp_path / "influx-configs"),
        "INFLUXD_INIT_PORT": "9999",
        "INFLUXD_INIT_PING_ATTEMPTS": "600",
        "DOCKER_INFLUXDB_INIT_CLI_CONFIG_NAME": "default",
        # exported by the entrypoint
        "INFLUXD_CONFIG_PATH": "/etc/influxdb2",
        "BOLT_PATH": "/var/lib/influxdb2/influxd.bolt",
        "ENGINE_PATH": "/var/lib/influxdb2/engine",
        "INFLUX_HOST": "http://localhost:9999",
        "DOCKER_INFLUXDB_INIT_USER_ID": USER_ID,
        "DOCKER_INFLUXDB_INIT_ORG_ID": ORG_ID,
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": RAW_ID,
        # the test's own
        "PATH": f"{influx.bin}:{os.environ['PATH']}",
        "FAKE_INFLUX_STATE": str(influx.state_file),
        "FAKE_INFLUX_LOG": str(influx.log),
        "TMPDIR": str(tmp_path),
    })
    return env


@pytest.fixture
def image_env(tmp_path, influx):
    """What the init script sees with docker-compose.yml as it is."""
    return entrypoint_env(service_env(load_compose(), "influxdb"), tmp_path, influx)


def run_init(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def longterm_id(influx: StandIn) -> str:
    return next(b["id"] for b in influx.state["buckets"] if b["name"] == "temperature_longterm")


def tokens(influx: StandIn) -> dict[str, dict]:
    return {a["description"]: a for a in influx.state["auths"] if a["description"].startswith("templog ")}


def test_first_start_makes_the_long_term_bucket_the_task_and_three_least_privilege_tokens(image_env, influx):
    """The collector may only write the raw bucket; Grafana and `templog report` (docker-compose.yml's report
    service) may only read, Grafana both buckets, the report the raw one (the only one it queries)."""
    result = run_init(image_env)
    assert result.returncode == 0, result.stderr
    longterm = longterm_id(influx)
    assert influx.argvs() == [
        ["bucket", "list", "--org", "home", "--json"],
        ["bucket", "create", "--org", "home", "--name", "temperature_longterm", "--retention", "1825d",
         "--description", "templog: hourly mean, min, max and count per series", "--json"],
        ["task", "list", "--org", "home", "--json"],
        ["task", "create", "--org", "home", "--file", influx.argvs()[3][5]],
        ["auth", "list", "--org", "home", "--json"],
        ["auth", "create", "--org", "home", "--user", "admin", "--description", COLLECTOR,
         "--write-bucket", RAW_ID, "--json"],
        ["auth", "create", "--org", "home", "--user", "admin", "--description", GRAFANA,
         "--read-bucket", RAW_ID, "--read-bucket", longterm, "--json"],
        ["auth", "create", "--org", "home", "--user", "admin", "--description", REPORT,
         "--read-bucket", RAW_ID, "--json"],
    ]
    made = tokens(influx)
    assert made.keys() == {COLLECTOR, GRAFANA, REPORT}
    assert made[COLLECTOR]["permissions"] == [f"write:orgs/{ORG_ID}/buckets/{RAW_ID}"]
    assert made[GRAFANA]["permissions"] == [f"read:orgs/{ORG_ID}/buckets/{RAW_ID}",
                                            f"read:orgs/{ORG_ID}/buckets/{longterm}"]
    assert made[REPORT]["permissions"] == [f"read:orgs/{ORG_ID}/buckets/{RAW_ID}"]
    # The task is the shipped Flux, unchanged (the compose file's bucket names are the file's own).
    assert influx.calls()[3]["file_content"] == FLUX.read_text()
    assert not Path(influx.argvs()[3][5]).exists(), "the temporary task file is removed"
    # Each token is handed to its service's user alone.
    paths = set()
    for description, key in zip((COLLECTOR, GRAFANA, REPORT), CONSUMERS, strict=True):
        path = Path(image_env[f"TEMPLOG_{key}_TOKEN_FILE"])
        paths.add(path.parent)
        assert path.read_text() == made[description]["token"]
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o400
        assert info.st_uid == int(image_env[f"TEMPLOG_{key}_UID"])
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
        assert sorted(p.name for p in path.parent.iterdir()) == ["token"], "no leftover temporary files"
    assert len(paths) == 3, "each token on a volume of its own"
    assert "token-" not in result.stderr + result.stdout, "tokens are never logged"
    assert {a["id"] for a in influx.state["auths"]} >= {"0000000000000aaa", "0000000000000bbb"}, \
        "a token whose description merely holds ours is not taken for ours"


@pytest.mark.parametrize("given", ["DOCKER_INFLUXDB_INIT_USERNAME_FILE", "no user name (docker compose exec)"])
def test_the_tokens_owner_is_found_however_the_admin_was_named(tmp_path, influx, given):
    """The entrypoint reads DOCKER_INFLUXDB_INIT_USERNAME_FILE into an unexported variable (see entrypoint_env):
    the script must not need DOCKER_INFLUXDB_INIT_USERNAME, or the set-up would fail and the container restart
    into the same failure."""
    compose_env = service_env(load_compose(), "influxdb")
    del compose_env["DOCKER_INFLUXDB_INIT_USERNAME"]
    if given == "DOCKER_INFLUXDB_INIT_USERNAME_FILE":
        compose_env[given] = "/run/secrets/influxdb_admin_username"
    env = entrypoint_env(compose_env, tmp_path, influx)
    result = run_init(env)
    assert result.returncode == 0, result.stderr
    creates = [argv for argv in influx.argvs() if argv[:2] == ["auth", "create"]]
    assert len(creates) == 3 and all(argv[argv.index("--user") + 1] == "admin" for argv in creates)
    assert Path(env["TEMPLOG_GRAFANA_TOKEN_FILE"]).read_text().startswith("token-")


def test_without_a_user_name_and_several_users_the_script_says_which_variable_to_set(tmp_path, influx):
    state = influx.state
    state["users"].append({"id": "0ff1ce0ff1ce0ff2", "name": "someone"})
    influx.state_file.write_text(json.dumps(state))
    compose_env = service_env(load_compose(), "influxdb")
    del compose_env["DOCKER_INFLUXDB_INIT_USERNAME"]
    result = run_init(entrypoint_env(compose_env, tmp_path, influx))
    assert result.returncode == 1
    assert "set DOCKER_INFLUXDB_INIT_USERNAME" in result.stderr
    assert not any(argv[:2] == ["auth", "create"] for argv in influx.argvs())


def test_the_long_term_bucket_keeps_five_years(image_env, influx):
    assert run_init(image_env).returncode == 0
    retention = next(b["seconds"] for b in influx.state["buckets"] if b["name"] == "temperature_longterm")
    assert retention == 5 * 365 * 86400


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
    assert len(first) == len(creates) == 3
    assert sorted(d[3] for d in deletes) == sorted(a["id"] for a in first.values())
    assert all(argvs.index(d) > max(creates) for d in deletes)
    second = tokens(influx)
    assert second.keys() == first.keys() == {COLLECTOR, GRAFANA, REPORT} and len(influx.state["tasks"]) == 1
    for description, key in zip((COLLECTOR, GRAFANA, REPORT), CONSUMERS, strict=True):
        assert second[description]["token"] != first[description]["token"]
        assert second[description]["permissions"] == first[description]["permissions"]
        assert Path(image_env[f"TEMPLOG_{key}_TOKEN_FILE"]).read_text() == second[description]["token"]
    assert any(a["description"] == "admin's Token" for a in influx.state["auths"]), "other tokens are left alone"


def test_running_again_on_a_stack_set_up_before_the_report_token_adds_it(image_env, influx):
    """An InfluxDB set up by an older init script has the collector's and Grafana's tokens only: the repair command
    (README "A report") gives it the report's, and replaces the other two as always."""
    assert run_init(image_env).returncode == 0
    older = {d: a for d, a in tokens(influx).items() if d != REPORT}
    state = influx.state
    state["auths"] = [a for a in state["auths"] if a["description"] != REPORT]
    influx.state_file.write_text(json.dumps(state))
    Path(image_env["TEMPLOG_REPORT_TOKEN_FILE"]).unlink()

    result = run_init(image_env)
    assert result.returncode == 0, result.stderr
    now = tokens(influx)
    assert now.keys() == {COLLECTOR, GRAFANA, REPORT}
    assert not {a["id"] for a in older.values()} & {a["id"] for a in influx.state["auths"]}
    assert Path(image_env["TEMPLOG_REPORT_TOKEN_FILE"]).read_text() == now[REPORT]["token"]


def test_other_bucket_names_reach_the_task(image_env, influx):
    state = influx.state
    state["buckets"].append({"id": "2222222222222222", "name": "temps", "seconds": 2592000})
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
    option = re.search(r"^option task = \{(.*)\}$", flux_text(), re.MULTILINE)
    assert option, "the task has no `option task = {...}` line"
    assert f'name: "{TASK_NAME}"' in option.group(1) and "every: 1h" in option.group(1)
    assert f"task_name={TASK_NAME}\n" in SCRIPT.read_text()


def test_the_task_reads_and_writes_the_compose_files_buckets():
    env = service_env(load_compose(), "influxdb")
    lines = flux_text().splitlines()
    assert f'rawBucket = "{env["DOCKER_INFLUXDB_INIT_BUCKET"]}"' in lines
    assert f'longtermBucket = "{env["TEMPLOG_LONGTERM_BUCKET"]}"' in lines
    assert "from(bucket: rawBucket)" in flux_text() and "to(bucket: longtermBucket, " in flux_text()


# --- json_rows: the script's reader of `influx ... --json` -------------------------------------------------------

def script_function(name: str) -> str:
    """The text of one shell function of the init script, to run it on its own."""
    function = re.search(rf"^{name}\(\) {{\n.*?^}}\n", SCRIPT.read_text(), re.MULTILINE | re.DOTALL)
    assert function, f"{SCRIPT.name} defines no function {name}"
    return function.group(0)


def go_json(value) -> str:
    """As influx-cli v2.7.5 prints it (clients/cli.go PrintJSON; see StandIn)."""
    text = json.dumps(value, indent="\t", ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escaped)
    return text + "\n"


def json_rows(text: str, *keys: str) -> list[str]:
    result = subprocess.run(["sh", "-c", script_function("json_rows") + 'json_rows "$@"', "sh", *keys],
                            input=text.encode(), capture_output=True, check=True)
    return result.stdout.decode().split("\n")[:-1]  # not splitlines(): U+0085 and U+2028 are not line ends here


KEYS = ("id", "name", "description", "token")
strings = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
nested = st.recursive(st.none() | st.booleans() | st.integers() | strings,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                                   max_size=3), max_leaves=6)
objects = st.dictionaries(st.sampled_from(KEYS), strings) | st.dictionaries(
    st.sampled_from(("links", "labels", "permissions", "retentionRules", "everySeconds")), nested)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(lambda a, b: {**b, **a}, st.dictionaries(st.sampled_from(KEYS), strings), objects),
                max_size=4),
       st.booleans())
def test_json_rows_reads_the_top_level_strings_of_any_influx_json(items, single):
    """Whatever the strings hold (quotes, backslashes, tabs, newlines, `"id": ` itself) and however deep the
    nested objects with the same keys, each object gives one row of its own top-level values, escaped as in the
    JSON; a list of none (or Go's `null`) gives no rows."""
    if single and items:
        items = items[:1]
    text = go_json(items[0] if single and items else (items or None))
    expected = ["\t".join(go_json(o[k]).rstrip("\n")[1:-1] if isinstance(o.get(k), str) else "" for k in KEYS)
                for o in items]
    assert json_rows(text, *KEYS) == expected

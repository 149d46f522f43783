"""The Docker stack without a Docker engine: docker-compose.yml against the Compose Specification and for
coherence between its services, the Dockerfile with hadolint and against the install script CI runs, the shell
scripts with shellcheck, and scripts/make-secrets.sh and scripts/render-grafana-provisioning.sh by running them."""

from __future__ import annotations

import copy
import fnmatch
import itertools
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from collector import grafana
from collector.cli import MQTT_STOP_S
from collector.config import load_config
from collector.durations import parse_duration
from collector.runner import SHUTDOWN_S
from servers import require_root
from stack_tools import (
    COMPOSE_FILE,
    DOCKERFILE,
    REPO,
    SCHEMAS,
    dockerfile_instructions,
    load_compose,
    mount_of,
    mounts,
    require_module,
    require_tool,
    service_env,
)

LONG_RUNNING = ("influxdb", "collector", "grafana")
ONE_SHOT = ("grafana-provisioning",)
ON_DEMAND = ("report",)  # `docker compose run` only: README "A report"
CONFIG_IN_CONTAINER = "/etc/templog/config.yaml"
SHELL_SCRIPTS = sorted([*REPO.glob("scripts/**/*.sh"), *REPO.glob("influxdb/**/*.sh"),
                        *REPO.glob("influxdb3/**/*.sh")])


@pytest.fixture(scope="module")
def compose():
    return load_compose()


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory):
    """The folder scripts/make-secrets.sh fills, run once into a scratch folder."""
    folder = tmp_path_factory.mktemp("secrets") / "secrets"
    subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)], check=True, capture_output=True)
    return folder


# --- docker-compose.yml: the specification ------------------------------------------------------------------


def compose_validator():
    jsonschema = require_module("jsonschema")
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_compose_file_validates_against_the_compose_specification(compose):
    errors = sorted(compose_validator().iter_errors(compose), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes(compose):
    """A control: the vendored schema is strict enough to refuse typical slips."""
    validator = compose_validator()
    for slip in (
        lambda c: c["services"]["collector"].update(depends_on={"influxdb": {"condition": "healthy"}}),
        lambda c: c["services"]["influxdb"].update(restart_policy="always"),
        lambda c: c["services"]["influxdb"]["healthcheck"].update(start_period=120),
        lambda c: c.update(volume={"x": None}),
    ):
        broken = copy.deepcopy(compose)
        slip(broken)
        assert list(validator.iter_errors(broken)), "the schema accepted a broken compose file"


# --- docker-compose.yml: the services ------------------------------------------------------------------------


def test_influxdb_is_pinned_to_a_2x_release(compose):
    image = compose["services"]["influxdb"]["image"]
    assert re.fullmatch(r"influxdb:2\.\d+\.\d+", image), f"{image}: pin an exact InfluxDB 2.x release (latest is 3.x)"


def test_every_image_is_pinned_or_built_here(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            assert service["build"] in (".", {"context": "."}), name
            continue
        repository, _, tag = service["image"].rpartition(":")
        assert repository and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: {service['image']} is not pinned"


def test_the_collector_image_is_built_once_and_shared_with_the_one_shot_and_the_report(compose):
    services = compose["services"]
    for name in ("grafana-provisioning", "report"):
        assert services[name]["image"] == services["collector"]["image"], name
        assert services[name]["build"] == services["collector"]["build"] == ".", name


def test_influxdb_is_published_on_loopback_only(compose):
    ports = compose["services"]["influxdb"]["ports"]
    assert ports, "InfluxDB's port is published for the host's own tools"
    for port in ports:
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", port
        else:
            assert str(port).startswith("127.0.0.1:"), f"{port}: publish InfluxDB on 127.0.0.1 only"
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", name
        if name != "influxdb":
            assert not any("8086" in str(port) for port in service.get("ports", [])), name


def test_the_collector_starts_only_once_influxdb_is_healthy(compose):
    assert compose["services"]["collector"]["depends_on"] == {"influxdb": {"condition": "service_healthy"}}


def test_grafana_starts_after_influxdb_is_healthy_and_its_provisioning_is_rendered(compose):
    assert compose["services"]["grafana"]["depends_on"] == {
        "influxdb": {"condition": "service_healthy"},  # its token file exists from then on
        "grafana-provisioning": {"condition": "service_completed_successfully"},
    }


def test_restart_policies(compose):
    for name in LONG_RUNNING:
        assert compose["services"][name]["restart"] in ("unless-stopped", "always"), name
    for name in ONE_SHOT + ON_DEMAND:
        assert compose["services"][name]["restart"] == "no", f"{name} runs once; a failure must not loop"
    assert set(compose["services"]) == set(LONG_RUNNING + ONE_SHOT + ON_DEMAND), \
        "new service: give it a restart policy here"


def test_healthchecks_with_a_start_period(compose):
    influxdb = compose["services"]["influxdb"]["healthcheck"]
    assert influxdb["test"][:3] == ["CMD", "influx", "ping"]
    grafana = compose["services"]["grafana"]["healthcheck"]
    assert "/api/health" in " ".join(grafana["test"])
    for check in (influxdb, grafana):
        assert parse_duration(check["start_period"]) >= 30
        assert parse_duration(check["interval"]) > 0 and check["retries"] >= 1
    # The collector's own health check is in its image: see test_dockerfile_healthcheck_runs_templog_health.
    assert "healthcheck" not in compose["services"]["collector"]


def test_docker_and_systemd_give_the_collector_the_time_it_takes_to_stop(compose):
    """`run` ends its shutdown SHUTDOWN_S after SIGTERM, stops MQTT within MQTT_STOP_S, then closes and exits: the
    spec's 10 s. Docker (stop_grace_period; its default is 10 s) and systemd (TimeoutStopSec) wait longer."""
    grace = parse_duration(compose["services"]["collector"]["stop_grace_period"])
    unit = (REPO / "systemd/templog.service").read_text()
    timeout_line = re.search(r"^TimeoutStopSec=(\S+)$", unit, re.MULTILINE)
    assert timeout_line, "systemd/templog.service: no TimeoutStopSec="
    stop_timeout = parse_duration(timeout_line.group(1))
    assert grace == stop_timeout, "docker-compose.yml and systemd/templog.service: one stop timeout"
    assert SHUTDOWN_S + MQTT_STOP_S < 10 < grace
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.MULTILINE)


def test_all_state_is_on_named_volumes(compose):
    declared = set(compose["volumes"])
    used = set()
    for name in compose["services"]:
        for mount in mounts(compose, name):
            if not mount.is_bind:
                assert mount.source in declared, f"{name}: volume {mount.source} is not declared"
                used.add(mount.source)
    assert used == declared, f"declared but unused: {declared - used}"
    state = {
        "influxdb": ["/var/lib/influxdb2", "/etc/influxdb2"],
        "grafana": ["/var/lib/grafana"],
        "collector": [os.path.dirname(service_env(compose, "collector")["TEMPLOG_OUTBOX"])],
    }
    for name, paths in state.items():
        for path in paths:
            mount = mount_of(compose, name, path)
            assert not mount.is_bind and not mount.read_only, f"{name}: {path} not on a volume"


def test_every_bind_mount_exists_in_the_repository(compose):
    for name in compose["services"]:
        for mount in mounts(compose, name):
            if mount.is_bind:
                assert mount.source.startswith("./"), f"{name}: {mount.source}: bind only paths inside the repository"
                assert (REPO / mount.source).exists(), f"{name}: {mount.source} does not exist"
                assert mount.read_only, f"{name}: mount {mount.source} read-only"


def test_every_secret_file_is_made_by_the_secrets_script(compose, made_secrets):
    secrets = compose["secrets"]
    for name, secret in secrets.items():
        path = Path(secret["file"])
        assert path.parts[0] == "secrets" and len(path.parts) == 2, f"{name}: {path} is not in ./secrets"
        assert (made_secrets / path.name).stat().st_size > 0, f"scripts/make-secrets.sh does not make {path}"
    assert "secrets/" in (REPO / ".gitignore").read_text().split(), "secrets/ must be git-ignored"
    used = {secret for service in compose["services"].values() for secret in service.get("secrets", [])}
    assert used == set(secrets)


def test_secrets_are_passed_as_files_never_as_values(compose):
    secret_files = {f"/run/secrets/{name}" for name in compose["secrets"]}
    influxdb = service_env(compose, "influxdb")
    assert influxdb["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"] in secret_files
    assert influxdb["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"] in secret_files
    grafana = service_env(compose, "grafana")
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] in secret_files
    for name in compose["services"]:
        env = service_env(compose, name)
        for key, value in env.items():
            if key.endswith(("_FILE", "__FILE")) and value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in compose["services"][name]["secrets"], (name, key)
            elif re.search(r"PASSWORD|TOKEN|SECRET", key) and not key.endswith(("_FILE", "_UID")):
                assert not value, f"{name}: {key} holds a value; pass secrets as files"


def test_grafana_has_sign_up_off_and_no_anonymous_access(compose):
    env = service_env(compose, "grafana")
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def test_every_variable_compose_reads_is_documented_in_its_header(compose):
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    documented = set(re.findall(r"^#\s+([A-Z][A-Z0-9_]+)\s{2,}", header, re.MULTILINE))
    referenced = set()
    for text in strings_in(compose):
        assert "$$" not in text, text
        referenced |= set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    assert referenced, "expected the documented variables to be used"
    assert referenced <= documented, f"undocumented: {referenced - documented}"
    assert documented <= referenced, f"documented but unused: {documented - referenced}"


def test_the_raw_bucket_retention_is_the_one_in_config_yaml(compose):
    env = service_env(compose, "influxdb")
    influx = load_config(REPO / "config.yaml", environ={}).influxdb
    assert influx is not None and parse_duration(env["DOCKER_INFLUXDB_INIT_RETENTION"]) == influx.retention


def test_the_long_term_bucket_keeps_about_five_years(compose):
    retention = parse_duration(service_env(compose, "influxdb")["TEMPLOG_LONGTERM_RETENTION"])
    assert 5 * 365 * 86400 <= retention < 5 * 366 * 86400


def test_the_collector_config_in_the_container_uses_the_stack(compose, tmp_path):
    """config.yaml, loaded with the environment the collector's container gets, writes where the stack expects."""
    service = compose["services"]["collector"]
    env = service_env(compose, "collector")
    influxdb = service_env(compose, "influxdb")
    config_mount = mount_of(compose, "collector", CONFIG_IN_CONTAINER)
    assert config_mount.source == "./config.yaml" and config_mount.target == CONFIG_IN_CONTAINER
    token = tmp_path / "token"
    token.write_text("t")
    config = load_config(REPO / "config.yaml", environ={**env, "INFLUX_TOKEN_FILE": str(token)})
    influx = config.influxdb
    assert influx is not None, "config.yaml has an influxdb section"
    assert influx.url == "http://influxdb:8086" and "influxdb" in compose["services"]
    assert influx.api == "v2"
    assert influx.org == influxdb["DOCKER_INFLUXDB_INIT_ORG"]
    assert influx.bucket == influxdb["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert influx.token_file == str(token)
    assert config.collector.outbox == env["TEMPLOG_OUTBOX"]
    assert service["hostname"], "a fixed host name: the container's ID would change the host tag at each recreate"


def grafana_token_file() -> str:
    """The one token file the data sources read. Grafana expands `$__file{PATH}` first, with PATH taken literally,
    and environment variables only afterwards (grafana/grafana pkg/services/provisioning/values/values.go
    interpolateValue: setting.ExpandVar, then os.ExpandEnv; pkg/setting/expanders.go: the file expander stats and
    reads its argument as it stands; read at commits 86d4e43d98a8 and c265af27ff62, not checked against the tag
    v12.3.1): the path cannot come from a variable, so the data source file names it and compose does not."""
    text = (REPO / "grafana/provisioning/datasources/templog.yaml").read_text()
    paths = set(re.findall(r"\$__file\{([^}]*)\}", text))
    assert len(paths) == 1, paths
    path = paths.pop()
    assert path.startswith("/") and "$" not in path, f"{path}: Grafana would read a file of that literal name"
    return path


def test_each_token_reaches_only_its_service(compose):
    """The init script writes three tokens (tests/test_stack_influxdb_init.py: write-only for the collector,
    read-only for Grafana and for the report), each on a volume that only InfluxDB and its one service mount."""
    influxdb = service_env(compose, "influxdb")
    handover = {
        "collector": (influxdb["TEMPLOG_COLLECTOR_TOKEN_FILE"], service_env(compose, "collector")["INFLUX_TOKEN_FILE"]),
        "grafana": (influxdb["TEMPLOG_GRAFANA_TOKEN_FILE"], grafana_token_file()),
        "report": (influxdb["TEMPLOG_REPORT_TOKEN_FILE"], service_env(compose, "report")["INFLUX_TOKEN_FILE"]),
    }
    assert "INFLUX_TOKEN_FILE" not in service_env(compose, "grafana"), "Grafana reads no such variable"
    volumes = {}
    for consumer, (written, read) in handover.items():
        assert written == read, f"{consumer}: the init script writes {written}, the service reads {read}"
        source = mount_of(compose, "influxdb", written)
        target = mount_of(compose, consumer, read)
        assert not source.is_bind and not source.read_only
        assert target.source == source.source and target.read_only
        volumes[consumer] = source.source
    assert len(set(volumes.values())) == len(volumes), volumes
    for consumer, volume in volumes.items():
        holders = {name for name in compose["services"] for m in mounts(compose, name) if m.source == volume}
        assert holders == {"influxdb", consumer}, f"token volume {volume} is mounted in {holders}"
    for consumer in ("COLLECTOR", "REPORT"):  # both run the collector's image, as its user
        assert influxdb[f"TEMPLOG_{consumer}_UID"] == dockerfile_user_uid(), f"{consumer}: the token file's owner"


def test_the_report_service_is_in_a_profile_so_up_leaves_it_out_and_run_starts_it(compose):
    """Compose enables a service with `profiles` only when one of them is active (`--profile`, COMPOSE_PROFILES),
    so a plain `docker compose up` starts the others; `docker compose run SERVICE` enables the profiles of the
    service it names (docker/compose@v5.5.0:pkg/compose/loader.go postProcessProject: WithServicesEnabled(
    options.Services...), the services `run` names: cmd/compose/run.go runProject; compose-spec/compose-go
    types/project.go WithServicesEnabled appends the disabled service's profiles: the same at v2.13.0 and at
    e70e961, after it; v2.14.0, which compose v5.5.0's go.mod pins, is not tagged in the mirror) and starts its
    dependencies, not the other services (pkg/compose/run.go startDependencies)."""
    services = compose["services"]
    assert services["report"]["profiles"] == ["report"]
    started_by_up = {name for name, service in services.items() if not service.get("profiles")}
    assert started_by_up == set(LONG_RUNNING + ONE_SHOT)
    for name in started_by_up:
        assert "report" not in (services[name].get("depends_on") or {}), f"{name} would pull the report into up"
    assert services["report"]["depends_on"] == {"influxdb": {"condition": "service_healthy"}}, \
        "its token file is there once InfluxDB is healthy (the init script has run)"


def test_the_report_service_runs_the_images_templog_report_and_can_change_nothing(compose):
    """The collector's image, its command `templog report` (what `docker compose run report templog report ...`
    replaces: compose's run sets the service's command only, docker/compose@v5.5.0:pkg/compose/run.go
    applyRunOptions; and the image has no ENTRYPOINT: ours sets none, nor does its base, whose last line is
    CMD ["python3"]: docker-library/python@025fb340:3.11/slim-bookworm/Dockerfile, read for 3.11.12, not the
    pinned 3.11.14); root read-only, no capability, no privilege to gain; no volume to write: the image's VOLUME
    is a read-only tmpfs, so no anonymous volume is left either (moby/moby@docker-v29.7.2:daemon/create_unix.go
    skips an image volume for which HasMountFor, which counts HostConfig.Tmpfs: daemon/container/container_unix.go;
    a tmpfs takes `ro`: vendor/github.com/moby/sys/mount/flags_unix.go MergeTmpfsOptions)."""
    report = compose["services"]["report"]
    assert report["command"] == ["templog", "report"]
    assert "entrypoint" not in report and not [i for i in instructions() if i.keyword == "ENTRYPOINT"]
    assert report["read_only"] is True
    assert report["cap_drop"] == ["ALL"] and "cap_add" not in report
    assert report["security_opt"] == ["no-new-privileges:true"]
    assert report["healthcheck"] == {"disable": True}, "the image's check (templog health) is the collector's"
    assert "secrets" not in report and "ports" not in report
    outbox_dir = os.path.dirname(service_env(compose, "collector")["TEMPLOG_OUTBOX"])
    assert report["tmpfs"] == [f"{outbox_dir}:ro"]
    assert [m for m in mounts(compose, "report") if not m.read_only] == []
    assert mount_of(compose, "report", CONFIG_IN_CONTAINER).source == "./config.yaml"
    env, collector = service_env(compose, "report"), service_env(compose, "collector")
    assert {k: v for k, v in env.items() if k != "INFLUX_TOKEN_FILE"} == \
        {k: collector[k] for k in ("INFLUX_URL", "INFLUX_API", "INFLUX_ORG", "INFLUX_BUCKET")}
    assert env["INFLUX_TOKEN_FILE"] != collector["INFLUX_TOKEN_FILE"]


def test_influxdb_runs_the_init_scripts_and_finds_the_task(compose):
    init = mount_of(compose, "influxdb", "/docker-entrypoint-initdb.d")
    assert init.source == "./influxdb/init" and init.target == "/docker-entrypoint-initdb.d" and init.read_only
    flux = service_env(compose, "influxdb")["TEMPLOG_DOWNSAMPLE_FLUX"]
    tasks = mount_of(compose, "influxdb", flux)
    assert tasks.is_bind
    assert (REPO / tasks.source / os.path.relpath(flux, tasks.target)).is_file()


def test_grafana_reads_the_provisioning_the_one_shot_renders(compose):
    one_shot = compose["services"]["grafana-provisioning"]
    env = service_env(compose, "grafana-provisioning")
    assert one_shot["command"] == ["templog-grafana-provisioning"]
    source = mount_of(compose, "grafana-provisioning", env["TEMPLOG_GRAFANA_PROVISIONING_SRC"])
    assert source.source == "./grafana/provisioning" and source.target == env["TEMPLOG_GRAFANA_PROVISIONING_SRC"]
    rendered = mount_of(compose, "grafana-provisioning", env["TEMPLOG_GRAFANA_PROVISIONING_OUT"])
    assert not rendered.is_bind and not rendered.read_only
    seen_by_grafana = mount_of(compose, "grafana", "/etc/grafana/provisioning")
    assert seen_by_grafana.source == rendered.source and seen_by_grafana.target == "/etc/grafana/provisioning"
    # The volume takes its owner from the one-shot's image only (see test_render_grafana_provisioning_works_on_the_
    # volume_docker_makes): Grafana's image must not copy its own folder, owned by 472, onto it.
    assert seen_by_grafana.read_only and seen_by_grafana.nocopy and not rendered.nocopy
    assert mount_of(compose, "grafana-provisioning", CONFIG_IN_CONTAINER).source == "./config.yaml"
    outbox_dir = os.path.dirname(service_env(compose, "collector")["TEMPLOG_OUTBOX"])
    assert outbox_dir in one_shot["tmpfs"], "the image's VOLUME would leave an anonymous volume at each start"
    assert one_shot["healthcheck"] == {"disable": True}
    # The rules query the same bucket the collector writes.
    for key in ("INFLUX_ORG", "INFLUX_BUCKET"):
        assert env[key] == service_env(compose, "collector")[key]
    assert env["INFLUX_LONGTERM_BUCKET"] == service_env(compose, "grafana")["INFLUX_LONGTERM_BUCKET"] \
        == service_env(compose, "influxdb")["TEMPLOG_LONGTERM_BUCKET"]
    assert "TEMPLOG_ALERT_WEBHOOK_URL" in service_env(compose, "grafana")


# --- Dockerfile ----------------------------------------------------------------------------------------------


def instructions():
    return dockerfile_instructions(DOCKERFILE.read_text())


def final_stage():
    found = instructions()
    last = max(i.stage for i in found)
    return [i for i in found if i.stage == last]


def dockerfile_user_uid() -> str:
    users = [i.arguments for i in final_stage() if i.keyword == "USER"]
    assert users, "the image must not run as root"
    return users[-1].split(":")[0]


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments)


def test_dockerfile_passes_hadolint():
    hadolint = require_tool("hadolint")
    result = subprocess.run([hadolint, "--no-color", "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, cwd=REPO, check=False)
    findings = json.loads(result.stdout or "[]")
    assert not findings, "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_dockerfile_bases_every_stage_on_one_pinned_slim_python():
    bases = [i.arguments.split()[0] for i in instructions() if i.keyword == "FROM"]
    assert len(bases) >= 2, "a build stage and a clean runtime stage"
    assert len(set(bases)) == 1, bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", bases[0]), bases[0]


def test_dockerfile_runs_as_a_fixed_non_root_user():
    uid = dockerfile_user_uid()
    assert uid.isdigit() and int(uid) >= 1000, f"USER {uid}: a fixed numeric UID, not root"
    runs = " ".join(i.arguments for i in final_stage() if i.keyword == "RUN")
    assert f"--uid {uid}" in runs and f"--gid {uid}" in runs


def test_dockerfile_leaves_no_build_tools_in_the_image():
    runs = [i.arguments for i in final_stage() if i.keyword == "RUN"]
    for run in runs:
        assert not re.search(r"\b(apt-get|apt|pip|pip3|gcc|make|build-essential|wheel)\b", run), run
    copies = [i.arguments for i in final_stage() if i.keyword == "COPY"]
    assert any(c.startswith("--from=build /opt/templog ") for c in copies), "the venv comes from the build stage"


def test_dockerfile_installs_with_the_script_ci_runs():
    build = [i for i in instructions() if i.stage == 0]
    runs = [i.arguments for i in build if i.keyword == "RUN"]
    assert runs == ["scripts/install-collector.sh /opt/templog /src"]
    assert any(i.keyword == "COPY" and i.arguments == "scripts/install-collector.sh scripts/" for i in build)
    env = " ".join(i.arguments for i in final_stage() if i.keyword == "ENV")
    assert "PATH=/opt/templog/bin:$PATH" in env


def test_dockerfile_healthcheck_runs_templog_health():
    checks = [i.arguments for i in final_stage() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition(" CMD ")
    assert exec_form(command) == ["templog", "health", "-c", CONFIG_IN_CONTAINER]
    start_period = re.search(r"--start-period=(\S+)", options)
    assert start_period, f"HEALTHCHECK {options}: no --start-period"
    assert parse_duration(start_period.group(1)) >= 30
    cmd = [exec_form(i.arguments) for i in final_stage() if i.keyword == "CMD"]
    assert cmd == [["templog", "run", "-q", "-c", CONFIG_IN_CONTAINER]]


def test_dockerfile_keeps_the_outbox_on_a_volume(compose):
    outbox_dir = os.path.dirname(service_env(compose, "collector")["TEMPLOG_OUTBOX"])
    volumes = [exec_form(i.arguments) for i in final_stage() if i.keyword == "VOLUME"]
    assert [outbox_dir] in volumes
    env = " ".join(i.arguments for i in final_stage() if i.keyword == "ENV")
    assert f"TEMPLOG_OUTBOX={service_env(compose, 'collector')['TEMPLOG_OUTBOX']}" in env
    assert f"TEMPLOG_CONFIG={CONFIG_IN_CONTAINER}" in env


def dockerignore_includes(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for our patterns: the last pattern matching the path or one of its parents wins."""
    included = True
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            included = negated
    return included


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_secret():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = []
    for i in instructions():
        if i.keyword == "COPY" and not i.arguments.startswith("--from"):
            sources += shlex.split(i.arguments)[:-1]
    for source in sources:
        source = source.rstrip("/")
        assert (REPO / source).exists(), source
        assert dockerignore_includes(source, patterns), f"{source} is excluded from the build context"
    for module in (REPO / "collector").rglob("*.py"):
        assert dockerignore_includes(str(module.relative_to(REPO)), patterns), module
    for private in ("secrets/influxdb-admin-token", "secrets/influxdb3-admin-token.json", ".venv/bin/python",
                    "data/outbox.sqlite", ".git/config", "tests/test_cli.py",
                    "collector/__pycache__/cli.cpython-311.pyc"):
        assert not dockerignore_includes(private, patterns), f"{private} would be sent to the Docker daemon"


def test_install_script_installs_a_working_collector_into_a_fresh_venv(tmp_path):
    """The Dockerfile's exact install step, run here into a fresh venv."""
    venv = tmp_path / "venv"
    result = subprocess.run([str(REPO / "scripts/install-collector.sh"), str(venv), str(REPO)],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = subprocess.run([str(venv / "bin/templog"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip().startswith("templog ")
    health = subprocess.run([str(venv / "bin/templog"), "health", "-c", str(REPO / "config.yaml")],
                            env={"PATH": os.environ["PATH"], "TEMPLOG_OUTBOX": str(tmp_path / "none.sqlite")},
                            capture_output=True, text=True, check=False)
    assert health.returncode == 1 and "no outbox" in health.stdout, "the HEALTHCHECK command runs"
    # the report extra is in: --format html gets past its charting check to the figures (no outbox: no readings)
    config = tmp_path / "report.yaml"
    config.write_text(f"collector: {{outbox: {tmp_path / 'none.sqlite'}}}\n"
                      "sensors:\n  - {name: a, type: simulated}\n")
    report = subprocess.run([str(venv / "bin/templog"), "report", "-c", str(config), "--format", "html"],
                            env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=False)
    assert report.returncode == 1 and "no readings of sensor(s) a" in report.stderr, report.stderr
    assert not (venv / "bin/pip").exists(), "no packaging tools left in the venv"
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("setuptools*")) and not list(site.glob("pip*"))
    assert (site / "collector").is_dir(), "installed from the wheel, not linked to the source tree"


def readme_report_command() -> tuple[list[str], str, list[str], str]:
    """README "A report"'s command, split as a shell does: compose's options, the service, its command and the
    file stdout goes to."""
    section = (REPO / "README.md").read_text().split("**A report**", 1)[1].split("\n## ", 1)[0]
    lines = re.findall(r"^    (docker compose run .*)$", section, re.MULTILINE)
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    assert words[-2] == ">", "the report goes to stdout, into a file"
    options = list(itertools.takewhile(lambda word: word.startswith("-"), words[3:-2]))
    service, *command = words[3 + len(options):-2]
    return options, service, command, words[-1]


def test_the_readme_report_command_reports_as_the_report_service_with_its_token_writing_nothing(compose, tmp_path):
    """README "A report": `docker compose run --rm -T report templog report ... > report.html`. -T: no TTY, so
    the container's stdout and stderr stay two streams (docker/cli@v29.7.2:cli/command/container/hijack.go:
    stdcopy.StdCopy to the CLI's stdout and stderr; with a TTY one io.Copy to stdout; compose's `run` calls it:
    docker/compose@v5.5.0:pkg/compose/run.go RunOneOffContainer -> cmd.RunStart; compose's own progress goes to
    stderr: cmd/compose/compose.go selectEventProcessor). Here that command runs as the report service would: the
    service's environment and command, config.yaml, the token file as the init script hands it over (uid 10001,
    mode 0400), as uid 10001 on a read-only root with nothing writable (the read-only tmpfs), traced; against an
    InfluxDB 2 API that knows only the report's token."""
    from fake_influxdb2 import FakeInfluxDB2
    from readonly_root import ReadOnlyRoot

    options, service, command, _ = readme_report_command()
    assert "--rm" in options and "-T" in options, options
    assert service == "report" and command[:2] == compose["services"][service]["command"] == ["templog", "report"]
    assert "--output" not in command, "the container has nowhere to write a file"
    root = ReadOnlyRoot(tmp_path / "read-only")
    os.chown(root.volume, 0, 0)
    root.volume.chmod(0o555)  # the image's WORKDIR and HOME, a read-only tmpfs in the service
    shutil.copy(REPO / "config.yaml", root.scratch / "config.yaml")  # TEMPLOG_CONFIG there (Dockerfile ENV)
    env = service_env(compose, service)
    token = "report-" + "Ab9_" * 20 + "=="
    token_file = root.scratch / env["INFLUX_TOKEN_FILE"].lstrip("/")
    token_file.parent.mkdir(parents=True)
    token_file.parent.chmod(0o755)
    token_file.write_text(token)
    os.chown(token_file, 10001, 10001)
    token_file.chmod(0o400)
    with FakeInfluxDB2(token=token) as influxdb:
        influxdb.add_bucket(env["INFLUX_BUCKET"])
        now = time.time_ns() // 10**9 * 10**9
        lines = "\n".join(f"temperature,host=templog,sensor={sensor} celsius={20 + i % 7}.5 {now - i * 60 * 10**9}"
                          for sensor in ("living-room", "greenhouse") for i in range(1, 120))
        query = urllib.parse.urlencode({"org": env["INFLUX_ORG"], "bucket": env["INFLUX_BUCKET"]})
        request = urllib.request.Request(f"{influxdb.url}/api/v2/write?{query}", data=lines.encode(),
                                         headers={"Authorization": f"Token {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204
        environ = env | {"INFLUX_URL": influxdb.url, "INFLUX_TOKEN_FILE": "/srv" + env["INFLUX_TOKEN_FILE"]}
        done = root.run(*command[1:], environ=environ, timeout=120)
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert page.count('<svg class="chart"') == 2
    assert "INFO" in done.stderr and "report:" in done.stderr and "INFO" not in page, "logs stay on stderr"
    assert token not in page + done.stderr
    trace = "".join(path.read_text() for path in (root.scratch / "trace").glob("strace*"))
    assert f'"/srv{env["INFLUX_TOKEN_FILE"]}", O_RDONLY' in trace, "the trace shows the token file read"
    assert root.writes() == [], "nothing written, nor tried"


# --- shell scripts ---------------------------------------------------------------------------------------------


def test_there_are_shell_scripts_to_check():
    names = {str(p.relative_to(REPO)) for p in SHELL_SCRIPTS}
    assert {"scripts/make-secrets.sh", "scripts/install-collector.sh", "scripts/render-grafana-provisioning.sh",
            "influxdb/init/10-templog.sh", "influxdb3/init/10-templog.sh"} <= names


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shell_script_passes_shellcheck(script):
    shellcheck = require_tool("shellcheck")
    assert script.read_text().startswith("#!/bin/sh\n"), "POSIX sh: the images' /bin/sh is dash"
    assert os.access(script, os.X_OK), f"{script} must be executable (run-parts and compose run it directly)"
    subprocess.run(["sh", "-n", str(script)], check=True)
    result = subprocess.run([shellcheck, "--shell=sh", "--severity=style", str(script)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- scripts/make-secrets.sh ------------------------------------------------------------------------------------

SECRET_LENGTHS = {"influxdb-admin-password": 32, "influxdb-admin-token": 64, "grafana-admin-password": 32}
# InfluxDB 3's admin token and its --admin-token-file: tests/test_stack_influxdb3.py checks them
INFLUXDB3_SECRETS = ("influxdb3-admin-token", "influxdb3-admin-token.json")


def make_secrets(folder: Path) -> str:
    result = subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_secrets_generates_random_secrets(tmp_path):
    make_secrets(tmp_path / "a")
    make_secrets(tmp_path / "b")
    values = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert sorted(p.name for p in folder.iterdir()) == sorted([*SECRET_LENGTHS, *INFLUXDB3_SECRETS]), \
            "no leftover temporary files"
        for name, length in SECRET_LENGTHS.items():
            value = (folder / name).read_text()
            assert re.fullmatch(f"[0-9a-f]{{{length}}}", value), (name, value)
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644  # read through bind mounts by non-root
            values.append(value)
    assert len(set(values)) == len(values), "every secret is different"


def test_make_secrets_never_overwrites(tmp_path):
    folder = tmp_path / "secrets"
    make_secrets(folder)
    first = {name: (folder / name).read_text() for name in SECRET_LENGTHS}
    (folder / "grafana-admin-password").write_text("chosen-by-the-user")
    (folder / "influxdb-admin-token").unlink()
    output = make_secrets(folder)
    assert (folder / "grafana-admin-password").read_text() == "chosen-by-the-user"
    assert (folder / "influxdb-admin-password").read_text() == first["influxdb-admin-password"]
    regenerated = (folder / "influxdb-admin-token").read_text()
    assert len(regenerated) == 64 and regenerated != first["influxdb-admin-token"]
    assert "generated" in output and output.count("kept") == 3


def test_make_secrets_defaults_to_the_folder_compose_reads(tmp_path):
    """Run from a copy of the repository layout: without an argument it fills <repo>/secrets."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts/make-secrets.sh"
    script.write_bytes((REPO / "scripts/make-secrets.sh").read_bytes())
    script.chmod(0o755)
    subprocess.run([str(script)], check=True, capture_output=True, cwd=tmp_path / "scripts")
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == sorted([*SECRET_LENGTHS, *INFLUXDB3_SECRETS])


# --- scripts/render-grafana-provisioning.sh -------------------------------------------------------------------

FAKE_TEMPLOG = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_TEMPLOG_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_TEMPLOG_FAIL"):
    print("templog: config.yaml: sensors[0].max: invalid", file=sys.stderr)
    sys.exit(2)
if os.environ.get("FAKE_TEMPLOG_NOOP"):
    sys.exit(0)
args = sys.argv[1:]
out = args[args.index("--output") + 1]
for name, text in (("alerting/templog-rules.yaml", "rules for this config\\n"),
                   ("dashboards/templog/temperatures.json", "{}\\n")):
    os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
"""


@pytest.fixture
def provisioning(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "templog"
    fake.write_text(FAKE_TEMPLOG.replace("{python}", sys.executable))
    fake.chmod(0o755)
    src = tmp_path / "src"  # as grafana/provisioning: hand-written files and ones rendered from the committed config
    for name, text in (("datasources/templog.yaml", "apiVersion: 1\n"),
                       ("alerting/templog-notifications.yaml", "apiVersion: 1\n"),
                       ("alerting/templog-rules.yaml", "rules for the committed config\n"),
                       ("dashboards/templog.yaml", "apiVersion: 1\n"),
                       ("dashboards/templog/temperatures.json", "{\"committed\": true}\n")):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    out = tmp_path / "out"
    (out / "dashboards").mkdir(parents=True)
    (out / "dashboards/stale.yaml").write_text("from an earlier start\n")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_TEMPLOG_LOG": str(tmp_path / "templog.log"),
           "TEMPLOG_GRAFANA_PROVISIONING_SRC": str(src), "TEMPLOG_GRAFANA_PROVISIONING_OUT": str(out),
           "TEMPLOG_CONFIG": "/etc/templog/config.yaml"}
    return env


def render(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts/render-grafana-provisioning.sh")], env=env, capture_output=True,
                          text=True, check=False)


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_render_grafana_provisioning_renders_over_a_copy_of_the_repositorys(provisioning):
    result = render(provisioning)
    assert result.returncode == 0, result.stderr
    out = Path(provisioning["TEMPLOG_GRAFANA_PROVISIONING_OUT"])
    assert tree(out) == {
        "alerting/templog-notifications.yaml": "apiVersion: 1\n",
        "alerting/templog-rules.yaml": "rules for this config\n",
        "dashboards/templog.yaml": "apiVersion: 1\n",
        "dashboards/templog/temperatures.json": "{}\n",
        "datasources/templog.yaml": "apiVersion: 1\n",
    }
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o444 == 0o444, f"{path}: Grafana's user must read it"
    calls = [json.loads(line) for line in Path(provisioning["FAKE_TEMPLOG_LOG"]).read_text().splitlines()]
    assert len(calls) == 1
    assert calls[0][:2] == ["grafana", "--output"]
    assert calls[0][3:] == ["--previous", str(out), "-c", "/etc/templog/config.yaml"], \
        "what the volume held before is where the deletions come from"
    assert not Path(calls[0][2]).exists(), "rendered in a scratch copy, removed afterwards"
    assert tree(Path(provisioning["TEMPLOG_GRAFANA_PROVISIONING_SRC"]))["alerting/templog-rules.yaml"] \
        == "rules for the committed config\n", "the repository's folder is only read"


def test_render_grafana_provisioning_deletes_what_the_last_start_provisioned_and_this_config_lacks(tmp_path):
    """The real script with the real `templog grafana`, twice on one volume: config A, then B without A's second
    sensor and its max. Grafana deletes file-provisioned rules only when a file lists them under `deleteRules`
    (tests/test_grafana_rules.py cites the source), so B's rendering must list exactly what A had and B lacks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "templog").write_text(f'#!/bin/sh\nexec {sys.executable} -m collector "$@"\n')
    (bin_dir / "templog").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "TEMPLOG_GRAFANA_PROVISIONING_SRC": str(REPO / "grafana/provisioning"),
           "TEMPLOG_GRAFANA_PROVISIONING_OUT": str(out)}
    sensors = {"A": "  - {name: desk, type: simulated, max: 28}\n  - {name: attic, type: simulated}\n",
               "B": "  - {name: desk, type: simulated}\n"}
    uids = {}
    for name, entries in sensors.items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"collector:\n  outbox: {tmp_path / 'outbox.sqlite'}\nsensors:\n{entries}")
        result = render({**env, "TEMPLOG_CONFIG": str(config)})
        assert result.returncode == 0, result.stderr
        rules = yaml.safe_load((out / "alerting/templog-rules.yaml").read_text())
        uids[name] = {rule["uid"] for group in rules["groups"] for rule in group["rules"]}
    deleted = {item["uid"] for item in rules.get("deleteRules", [])}
    assert deleted == uids["A"] - uids["B"]
    assert len(deleted) == 2, "attic's silent rule and desk's above-max rule"


def test_render_grafana_provisioning_killed_while_copying_loses_no_deletion(tmp_path):
    """The real script and `templog grafana`: config A; then B, with the copy into the volume failing as a one-shot
    killed there would (power loss); then B again. The alerting files in the volume are where the deletions come
    from, so B's last rendering must still delete what A had and B lacks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "templog").write_text(f'#!/bin/sh\nexec {sys.executable} -m collector "$@"\n')
    out = tmp_path / "out"
    out.mkdir()
    real_cp = shutil.which("cp")
    (bin_dir / "cp").write_text(  # copies nothing into the volume's root when told to fail
        f'#!/bin/sh\nfor last; do :; done\n[ -n "${{FAIL_COPY:-}}" ] && [ "$last" = "{out}/" ] && exit 1\n'
        f'exec {real_cp} "$@"\n')
    for shim in ("templog", "cp"):
        (bin_dir / shim).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "TEMPLOG_GRAFANA_PROVISIONING_SRC": str(REPO / "grafana/provisioning"),
           "TEMPLOG_GRAFANA_PROVISIONING_OUT": str(out)}
    configs = {}
    for name, entries in (("A", "  - {name: desk, type: simulated}\n  - {name: attic, type: simulated}\n"),
                          ("B", "  - {name: desk, type: simulated}\n")):
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(f"collector:\n  outbox: {tmp_path / 'outbox.sqlite'}\nsensors:\n{entries}")
    assert render({**env, "TEMPLOG_CONFIG": str(configs["A"])}).returncode == 0
    assert render({**env, "TEMPLOG_CONFIG": str(configs["B"]), "FAIL_COPY": "1"}).returncode != 0
    result = render({**env, "TEMPLOG_CONFIG": str(configs["B"])})
    assert result.returncode == 0, result.stderr
    rules = yaml.safe_load((out / "alerting/templog-rules.yaml").read_text())
    assert [item["uid"] for item in rules.get("deleteRules", [])] == [grafana.rule_uid("silent", "attic")]


@pytest.mark.parametrize("fault", ["FAKE_TEMPLOG_FAIL", "FAKE_TEMPLOG_NOOP"])
def test_render_grafana_provisioning_keeps_the_last_good_one_when_rendering_fails(provisioning, fault):
    out = Path(provisioning["TEMPLOG_GRAFANA_PROVISIONING_OUT"])
    before = tree(out)
    result = render({**provisioning, fault: "1"})
    assert result.returncode != 0
    assert ("sensors[0].max" if fault == "FAKE_TEMPLOG_FAIL" else "wrote no alerting/templog-rules.yaml") \
        in result.stderr
    assert tree(out) == before


# Grafana's image (grafana/grafana Dockerfile, read at commit 78515af65f03; the pinned 12.3.1 builds the same way):
# USER 472 with group 0, and /etc/grafana/provisioning made with these six empty folders, all `chown -R grafana:0`
# and `chmod -R 777`.
GRAFANA_USER = (472, 0)
GRAFANA_IMAGE_PROVISIONING = ("datasources", "dashboards", "notifiers", "plugins", "access-control", "alerting")
COLLECTOR_USER = (10001, 10001)  # the Dockerfile's USER, which the one-shot runs as

# `templog grafana --output DIR --previous OUT -c CONFIG` (only DIR, $3, is used) for a run as another user (who
# cannot reach this venv's Python in /root)
FAKE_TEMPLOG_SH = """\
#!/bin/sh
set -eu
mkdir -p "$3/alerting" "$3/dashboards/templog"
echo "rules for this config" >"$3/alerting/templog-rules.yaml"
echo "{}" >"$3/dashboards/templog/temperatures.json"
"""


def as_user(user: tuple[int, int], argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *argv]


@pytest.fixture
def volume_case():
    """A folder every user can reach (pytest's own is root's, mode 0700) with a repository-like src, a fake
    templog and the volume `out`, left for the test to shape as Docker would."""
    require_root("to run the script as the collector's and Grafana's users")
    base = Path(tempfile.mkdtemp(prefix="templog-volume-"))
    base.chmod(0o755)
    (base / "bin").mkdir()
    (base / "bin/templog").write_text(FAKE_TEMPLOG_SH)
    (base / "bin/templog").chmod(0o755)
    src = base / "src"
    for name in ("datasources/templog.yaml", "alerting/templog-rules.yaml", "dashboards/templog.yaml",
                 "plugins/.keep"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("apiVersion: 1\n")
        os.chown(src / name, 0, COLLECTOR_USER[1])
        (src / name).chmod(0o640)  # readable by the one-shot (its group) only: Grafana must still read the result
    (base / "out").mkdir()
    env = {"PATH": f"{base / 'bin'}:/usr/local/bin:/usr/bin:/bin", "TEMPLOG_GRAFANA_PROVISIONING_SRC": str(src),
           "TEMPLOG_GRAFANA_PROVISIONING_OUT": str(base / "out"), "TEMPLOG_CONFIG": "/etc/templog/config.yaml"}
    yield base / "out", env
    shutil.rmtree(base)


def copy_up(volume: Path, owner: tuple[int, int], mode: int, folders: tuple[str, ...] = ()) -> None:
    """What moby does to an empty named volume when it creates a container that mounts it without nocopy
    (moby docker-v29.7.2: daemon/create_unix.go populateVolume -> daemon/container/container_unix.go
    copyExistingContents, only while the volume is empty -> containerd/continuity v0.5.0 fs/copy.go copyDirectory
    and fs/copy_unix.go copyFileInfo: the volume root takes the image folder's mode, owner and group, and so does
    every entry copied)."""
    for name in folders:
        (volume / name).mkdir()
        os.chown(volume / name, *owner)
        (volume / name).chmod(mode)
    os.chown(volume, *owner)
    volume.chmod(mode)


def render_as(user: tuple[int, int], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(as_user(user, [str(REPO / "scripts/render-grafana-provisioning.sh")]), env=env,
                          capture_output=True, text=True, check=False)


def assert_grafana_reads_all_of(volume: Path) -> None:
    """Grafana's user lists every folder and reads every file, as its provisioning does."""
    for kind, reader in (("d", "ls"), ("f", "cat")):
        result = subprocess.run(as_user(GRAFANA_USER, ["find", str(volume), "-type", kind, "-exec", reader, "{}",
                                                       "+"]), capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stderr, result.stderr


# Compose creates every container before it starts any (docker/compose v5.5.0: pkg/compose/up.go Up: s.create,
# then s.start), in dependency order (pkg/compose/reconcile.go visitInDependencyOrder): the one-shot first.
# Copy-up happens at creation, so both copies land on the still-empty volume: the one-shot's (our image's folder,
# 10001:10001 0755, empty) and then, unless Grafana's mount says nocopy, Grafana's (472:0 0777, six folders).
VOLUME_STATES = {
    "one-shot copy-up only (Grafana's mount: nocopy)": (COLLECTOR_USER, 0o755, ()),
    "Grafana's copy-up last (a volume made before nocopy)": (GRAFANA_USER, 0o777, GRAFANA_IMAGE_PROVISIONING),
}


@pytest.mark.parametrize("state", VOLUME_STATES)
def test_render_grafana_provisioning_works_on_the_volume_docker_makes(volume_case, state):
    out, env = volume_case
    owner, mode, folders = VOLUME_STATES[state]
    copy_up(out, owner, mode, folders)
    for start in ("first", "second"):  # the second finds the files the first made
        result = render_as(COLLECTOR_USER, env)
        assert result.returncode == 0, f"{start} start: {result.stderr}"
        assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
            "alerting/templog-rules.yaml", "dashboards/templog.yaml", "dashboards/templog/temperatures.json",
            "datasources/templog.yaml", "plugins/.keep"]
        assert (out / "alerting/templog-rules.yaml").read_text() == "rules for this config\n"
        info = out.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (*owner, mode), "the root is left alone"
        assert_grafana_reads_all_of(out)


def test_render_grafana_provisioning_says_how_to_repair_a_volume_it_cannot_write(volume_case):
    out, env = volume_case
    (out / "alerting").mkdir()
    (out / "alerting/old.yaml").write_text("kept\n")
    copy_up(out, (0, 0), 0o755)  # e.g. a volume made by hand, as root
    result = render_as(COLLECTOR_USER, env)
    assert result.returncode == 1
    assert "is not writable by uid 10001" in result.stderr and "docker volume rm" in result.stderr
    assert (out / "alerting/old.yaml").read_text() == "kept\n"


def test_render_grafana_provisioning_says_what_it_cannot_remove(volume_case):
    out, env = volume_case
    copy_up(out, GRAFANA_USER, 0o777, ("alerting",))
    (out / "alerting/foreign.yaml").write_text("not ours\n")
    (out / "alerting").chmod(0o755)  # a folder of Grafana's user that the collector's user cannot empty
    result = render_as(COLLECTOR_USER, env)
    assert result.returncode == 1
    assert "cannot empty" in result.stderr and "foreign.yaml (owner uid 0" in result.stderr
    assert "docker volume rm" in result.stderr


def test_the_provisioning_has_the_plugins_folder_grafana_reads():
    """grafana/grafana pkg/services/provisioning/plugins/config_reader.go readConfig (read at commit 0d0434957a27):
    a missing folder is an ERROR line at every start; only its *.yaml files are read."""
    plugins = REPO / "grafana/provisioning/plugins"
    assert plugins.is_dir() and not list(plugins.glob("*.y*ml"))


def test_render_grafana_provisioning_runs_in_the_image():
    copies = [i.arguments for i in final_stage() if i.keyword == "COPY"]
    assert "scripts/render-grafana-provisioning.sh /usr/local/bin/templog-grafana-provisioning" in copies
    mkdirs = " ".join(i.arguments for i in final_stage() if i.keyword == "RUN")
    # A new volume takes the owner and mode of the image's folder: writable by the one-shot, readable by Grafana.
    assert re.search(r"install -d -o templog -g templog -m 0755 /etc/grafana/provisioning", mkdirs)


def test_compose_header_tells_the_quick_start():
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    assert "scripts/make-secrets.sh" in header and "docker compose up -d" in header

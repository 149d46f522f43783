"""The InfluxDB 3 stack without a Docker engine: docker-compose.influxdb3.yml against the Compose Specification and
against the texts of what it pins (influxdata/influxdb@v3.10.1's serve options and token handling, the image
influxdata/influxdata-docker@b7f2d1e:influxdb/3.10-core), scripts/make-secrets.sh's InfluxDB 3 token parsed as the
server parses it, the healthcheck's command and influxdb3/init/10-templog.sh run with the real curl against
FakeInfluxDB3 (tests/fake_influxdb3.py, the stand-in for InfluxDB 3's HTTP API and processing engine)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collector.config import load_config
from collector.durations import parse_duration
from fake_influxdb3 import FakeInfluxDB3
from servers import refuse
from stack_tools import (
    COMPOSE_INFLUXDB3_FILE,
    REPO,
    SCHEMAS,
    load_compose,
    mount_of,
    mounts,
    require_module,
    service_env,
    upstream_text,
)

INFLUXDB = ("influxdata+influxdb", "v3.10.1")
IMAGE = ("influxdata+influxdata-docker", "b7f2d1e")
IMAGE_DIR = "influxdb/3.10-core"
INIT = REPO / "influxdb3/init/10-templog.sh"
PLUGIN_DIR = REPO / "influxdb3/plugins"
DATASOURCES = REPO / "grafana/influxdb3/datasources/templog.yaml"


def source(path: str) -> str:
    return upstream_text(*INFLUXDB, path)


@pytest.fixture(scope="module")
def compose():
    return load_compose(COMPOSE_INFLUXDB3_FILE)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return upstream_text(*IMAGE, f"{IMAGE_DIR}/Dockerfile")


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("secrets") / "secrets"
    subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)], check=True, capture_output=True)
    return folder


# --- the compose file ---------------------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(compose):
    jsonschema = require_module("jsonschema")
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_influxdb3_is_pinned_to_the_release_whose_source_was_read(compose):
    assert compose["services"]["influxdb3"]["image"] == "influxdb:3.10.1-core"
    assert compose["services"]["influxdb3-init"]["image"] == "influxdb:3.10.1-core"
    assert "ENV INFLUXDB_VERSION=3.10.1" in upstream_text(*IMAGE, f"{IMAGE_DIR}/Dockerfile")


def test_the_stack_keeps_its_own_volumes_and_the_v2_stacks_services(compose):
    """Its own project name: its volumes never mix with docker-compose.yml's InfluxDB 2 ones."""
    assert compose["name"] != load_compose()["name"]
    v2 = load_compose()["services"]
    for name in ("collector", "grafana-provisioning", "grafana"):
        service = compose["services"][name]
        for key in ("image", "restart", "read_only", "cap_drop", "security_opt", "command", "stop_grace_period",
                    "init", "hostname", "healthcheck", "tmpfs"):
            assert service.get(key) == v2[name].get(key), (name, key)


def serve_env_names() -> set[str]:
    """Every environment variable `influxdb3 serve` reads: `env = "..."` in serve.rs and the config blocks it
    flattens (object store, processing engine; logging, tracing and DataFusion ones are not used here)."""
    names = set()
    for path in ("influxdb3/src/commands/serve.rs", "influxdb3_clap_blocks/src/object_store.rs",
                 "influxdb3_clap_blocks/src/plugins.rs"):
        names |= set(re.findall(r'env = (?:gen_env!\(\$prefix, )?"([A-Z0-9_]+)"', source(path)))
    return names


def test_every_server_setting_is_one_serve_reads(compose):
    env = service_env(compose, "influxdb3")
    assert env, "the server is configured through serve's environment variables"
    known = serve_env_names()
    assert {"INFLUXDB3_QUERY_FILE_LIMIT", "INFLUXDB3_GEN1_LOOKBACK_DURATION", "INFLUXDB3_DB_DIR"} <= known
    assert set(env) <= known, f"not read by influxdb3 serve 3.10.1: {set(env) - known}"
    assert "command" not in compose["services"]["influxdb3"], "the image's own CMD: influxdb3 serve"


def test_the_server_settings_take_values_serve_accepts(compose):
    env = service_env(compose, "influxdb3")
    helpers = source("influxdb3_commands/src/helpers.rs")
    allowed = re.search(r'\[("health", "ping".*?)\]\s*\.iter\(\)', helpers, re.DOTALL)
    assert allowed and set(env["INFLUXDB3_DISABLE_AUTHZ"].split(",")) <= set(re.findall(r'"(\w+)"', allowed[1]))
    assert env["INFLUXDB3_DISABLE_AUTHZ"] == "health"
    plugins = source("influxdb3_clap_blocks/src/plugins.rs")
    managers = re.search(r"pub enum PackageManager \{(.*?)\}", plugins, re.DOTALL)
    assert managers and env["INFLUXDB3_PACKAGE_MANAGER"] in {
        name.lower() for name in re.findall(r"(\w+),", managers[1])}
    assert "file: Stores objects in the local filesystem" in source("influxdb3_clap_blocks/src/object_store.rs")
    assert env["INFLUXDB3_OBJECT_STORE"] == "file"
    assert int(env["INFLUXDB3_QUERY_FILE_LIMIT"]) > 0
    assert re.fullmatch(r"[A-Za-z0-9_-]+", env["INFLUXDB3_NODE_IDENTIFIER_PREFIX"])
    assert env["INFLUXDB3_TELEMETRY_DISABLE_UPLOAD"] == "true"


def test_the_file_limit_and_look_back_cover_the_retentions(compose):
    """Core writes one Parquet file per table, 10-minute window and snapshot (gen1 duration, default 10m) and
    never compacts: a query over the raw retention reads about six files an hour, over the long-term table about
    one an hour (one row per series and hour, all at the hour's start). The file limit must let a query span the
    whole raw retention (twice: backlog rewrites of old windows add files) and the dashboard's year of long-term
    data; at start the server knows only the files of its last look-back / gen1 snapshots, which must reach back
    over the long-term retention, or older hours vanish from queries after a restart."""
    serve = source("influxdb3/src/commands/serve.rs")
    assert re.search(r'long = "gen1-duration",\s*env = "INFLUXDB3_GEN1_DURATION",\s*default_value = "10m"', serve)
    assert "gen1_lookback_duration.as_secs() / gen1_duration.as_duration().as_secs()" in serve
    assert "query_file_limit.unwrap_or(432)" in source("influxdb3_write/src/write_buffer/mod.rs")
    env = service_env(compose, "influxdb3")
    init = service_env(compose, "influxdb3-init")
    raw, longterm = parse_duration(init["TEMPLOG_RAW_RETENTION"]), parse_duration(init["TEMPLOG_LONGTERM_RETENTION"])
    limit = int(env["INFLUXDB3_QUERY_FILE_LIMIT"])
    assert limit >= 2 * raw / 600, "a query over the whole raw retention"
    assert limit >= 365 * 24, "a year of hourly long-term data"
    assert parse_duration(env["INFLUXDB3_GEN1_LOOKBACK_DURATION"]) >= longterm >= 5 * 365 * 86400


def plugin_lookback_hours(file_limit: int) -> int:
    """The hours the downsampling plugin's counts read back, told that file limit (its own lookback_hours)."""
    scope: dict = {}
    exec(compile((PLUGIN_DIR / "templog_downsample.py").read_text(), "templog_downsample.py", "exec"), scope)
    return scope["lookback_hours"](file_limit)


def test_the_file_limit_covers_config_yaml_s_raw_retention_and_the_long_term_panels(compose, tmp_path):
    """The downsampling trigger is told the server's file limit, and its counts read back as far as that reaches:
    every hour of config.yaml's raw retention (so a backlog landing anywhere in it is summarized), and a query of
    the long-range panels (a year of the long-term table, about one file an hour) fits in it. Raising
    influxdb.retention without raising INFLUXDB3_QUERY_FILE_LIMIT fails here."""
    limit = service_env(compose, "influxdb3")["INFLUXDB3_QUERY_FILE_LIMIT"]
    assert service_env(compose, "influxdb3-init")["TEMPLOG_QUERY_FILE_LIMIT"] == limit, "the trigger is told it"
    config = load_config(REPO / "config.yaml", environ={"INFLUX_API": "v3"})
    assert config.influxdb is not None and config.influxdb.retention
    assert plugin_lookback_hours(int(limit)) * 3600 >= config.influxdb.retention, \
        "raise INFLUXDB3_QUERY_FILE_LIMIT with influxdb.retention: README 'Retention, the file limit and the look-back'"
    assert int(limit) >= longterm_panel_hours(compose, tmp_path), "the long-range panels' span, a file an hour"


def longterm_panel_hours(compose, folder: Path) -> int:
    """The longest span a panel on the long-term data source reads (its timeFrom), in hours, in the dashboards the
    real `templog grafana` renders for the stack."""
    env = {**service_env(compose, "grafana-provisioning"), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "collector", "grafana", "--output", str(folder), "-c",
                             str(REPO / "config.yaml")], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    hours = {"h": 1, "d": 24, "w": 7 * 24, "y": 365 * 24}
    spans = [int(panel["timeFrom"][:-1]) * hours[panel["timeFrom"][-1]]
             for path in folder.rglob("*.json") for panel in json.loads(path.read_text()).get("panels", [])
             if "templog-influxql-longterm" in json.dumps(panel) and panel.get("timeFrom")]
    assert spans, "the v3 dashboard has long-range panels on the long-term database"
    return max(spans)


def test_the_image_runs_as_uid_1500_on_8181_and_owns_the_data_volume(compose, dockerfile):
    assert re.search(r"useradd\s+--uid 1500 --gid influxdb3", dockerfile)
    assert re.search(r"^USER influxdb3$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8181$", dockerfile, re.MULTILINE)
    assert 'DEFAULT_HTTP_BIND_ADDR: &str = "0.0.0.0:8181"' in source("influxdb3/src/commands/serve.rs")
    # The data directory: made by the image, given to uid 1500, so a new volume there takes that owner (copy-up)
    data_dir = service_env(compose, "influxdb3")["INFLUXDB3_DB_DIR"]
    assert re.search(rf"mkdir -p {data_dir}\b", dockerfile)
    assert re.search(rf"chown -R influxdb3:influxdb3 {data_dir} /plugins", dockerfile)
    volume = mount_of(compose, "influxdb3", data_dir)
    assert volume.target == data_dir and not volume.is_bind and not volume.read_only and not volume.nocopy
    assert compose["services"]["influxdb3"]["ports"] == ["127.0.0.1:8181:8181"]
    for name in ("collector", "influxdb3-init", "grafana"):
        url = service_env(compose, name)["INFLUX_URL"]
        assert url == "http://influxdb3:8181", (name, url)


def test_the_plugin_directory_is_ours_and_read_only(compose):
    env = service_env(compose, "influxdb3")
    plugins = mount_of(compose, "influxdb3", env["INFLUXDB3_PLUGIN_DIR"])
    assert plugins.source == "./influxdb3/plugins" and plugins.read_only
    assert (PLUGIN_DIR / service_env(compose, "influxdb3-init")["TEMPLOG_DOWNSAMPLE_PLUGIN"]).is_file()
    # a read-only plugin directory needs the package manager off (no venv to build in it)
    environment = source("influxdb3_processing_engine/src/environment.rs")
    assert "pip package manager is not available" in environment and "impl PythonEnvironmentManager for " \
        "DisabledPackageManager" in environment
    assert env["INFLUXDB3_PACKAGE_MANAGER"] == "disabled"


def test_the_image_entrypoint_runs_the_init_script_as_given(compose, tmp_path):
    """entrypoint.sh runs a command that is not serve, an option or influxdb3 unchanged."""
    entrypoint = tmp_path / "entrypoint.sh"
    entrypoint.write_text(upstream_text(*IMAGE, f"{IMAGE_DIR}/entrypoint.sh"))
    command = compose["services"]["influxdb3-init"]["command"]
    probe = tmp_path / "probe"
    probe.write_text('#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n')
    probe.chmod(0o755)
    result = subprocess.run(["bash", str(entrypoint), str(probe), *command[1:]], capture_output=True, text=True,
                            check=True)
    assert result.stdout.splitlines() == [str(probe)]
    script = mount_of(compose, "influxdb3-init", command[0])
    assert script.source == "./influxdb3/init" and script.read_only
    assert (REPO / "influxdb3/init" / os.path.relpath(command[0], script.target)) == INIT


# --- start order, secrets, tokens ----------------------------------------------------------------------------


def test_start_order(compose):
    services = compose["services"]
    assert services["influxdb3-init"]["depends_on"] == {"influxdb3": {"condition": "service_healthy"}}
    assert services["collector"]["depends_on"] == {"influxdb3-init": {"condition": "service_completed_successfully"}}
    assert services["grafana"]["depends_on"] == {
        "influxdb3-init": {"condition": "service_completed_successfully"},
        "grafana-provisioning": {"condition": "service_completed_successfully"}}
    assert services["influxdb3-init"]["restart"] == "no"


def test_every_secret_file_is_made_by_the_secrets_script(compose, made_secrets):
    for name, secret in compose["secrets"].items():
        path = Path(secret["file"])
        assert path.parts[0] == "secrets" and len(path.parts) == 2, name
        assert (made_secrets / path.name).stat().st_size > 0, f"scripts/make-secrets.sh does not make {path}"
    used = {s for service in compose["services"].values() for s in service.get("secrets", [])}
    assert used == set(compose["secrets"])


def test_the_server_reads_the_token_file_and_the_clients_the_token(compose):
    assert service_env(compose, "influxdb3")["INFLUXDB3_ADMIN_TOKEN_FILE"] == "/run/secrets/influxdb3_admin_token_json"
    for name in ("collector", "influxdb3-init"):
        assert service_env(compose, name)["INFLUX_TOKEN_FILE"] == "/run/secrets/influxdb3_admin_token", name
        assert "influxdb3_admin_token" in compose["services"][name]["secrets"]
    assert set(re.findall(r"\$__file\{([^}]*)\}", DATASOURCES.read_text())) == {"/run/secrets/influxdb3_admin_token"}
    assert "influxdb3_admin_token" in compose["services"]["grafana"]["secrets"]
    assert "influxdb3_admin_token_json" not in {s for n, svc in compose["services"].items() if n != "influxdb3"
                                                for s in svc.get("secrets", [])}
    for name in compose["services"]:
        for key, value in service_env(compose, name).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key) and not key.endswith("_FILE"):
                assert not value, f"{name}: {key} holds a value; pass secrets as files"


def admin_token_file_fields() -> dict[str, str]:
    """influxdb3/src/commands/create/token.rs AdminTokenFile: field -> Rust type."""
    token_rs = source("influxdb3/src/commands/create/token.rs")
    struct = re.search(r"pub\(crate\) struct AdminTokenFile \{(.*?)\n\}", token_rs, re.DOTALL)
    assert struct, "AdminTokenFile is gone from the pinned source"
    return dict(re.findall(r"pub (\w+): ([\w<>]+),", struct[1]))


def test_the_token_file_is_what_the_server_parses(made_secrets):
    """serve.rs initialize_admin_token_from_file: serde_json into AdminTokenFile (token, name, expiry_millis:
    Option<i64>), the token must start with apiv3_, and its SHA-512 is what requests are checked against
    (influxdb3_authz/src/lib.rs TokenAuthenticator: Sha512 of the token a request carries)."""
    serve = source("influxdb3/src/commands/serve.rs")
    assert 'if !token.starts_with("apiv3_")' in serve and "Sha512::digest(&token)" in serve
    assert "Sha512::digest(provided)" in source("influxdb3_authz/src/lib.rs")
    fields = admin_token_file_fields()
    assert fields == {"token": "String", "name": "String", "expiry_millis": "Option<i64>"}
    document = json.loads((made_secrets / "influxdb3-admin-token.json").read_text())
    assert set(document) <= set(fields) and {"token", "name"} <= set(document)
    assert all(isinstance(document[k], str) for k in ("token", "name"))
    token = (made_secrets / "influxdb3-admin-token").read_text()
    assert document["token"].startswith("apiv3_")
    # what a client sends (the whole file, no line break) hashes to what the server stored
    assert hashlib.sha512(token.encode()).digest() == hashlib.sha512(document["token"].encode()).digest()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "an HTTP header value and a JSON string without escapes"


def test_the_token_is_made_as_the_server_makes_one(made_secrets):
    """influxdb3_catalog/src/catalog.rs create_token_and_hash: "apiv3_" + URL_SAFE_NO_PAD of 64 random bytes."""
    catalog = source("influxdb3_catalog/src/catalog.rs")
    assert 'String::from("apiv3_")' in catalog and "let mut key = [0u8; 64];" in catalog
    assert "URL_SAFE_NO_PAD as B64" in catalog
    token = (made_secrets / "influxdb3-admin-token").read_text()
    key = token.removeprefix("apiv3_")
    assert "=" not in key and len(base64.urlsafe_b64decode(key + "==")) == 64


def test_the_token_is_the_operator_token_so_no_one_can_claim_it(made_secrets):
    """POST /api/v3/configure/token/admin is answered without authentication (http.rs perform_routing) and creates
    the token named DEFAULT_OPERATOR_TOKEN_NAME unless one of that name exists (ops/token.rs CreateAdminTokenOp:
    TokenNameAlreadyExists, 409). Our file's token has that name, and is in place before the server listens."""
    http = source("influxdb3_server/src/http.rs")
    assert "if path == all_paths::API_V3_CONFIGURE_ADMIN_TOKEN || paths_without_authz.contains(&path)" in http
    assert re.search(r'const DEFAULT_OPERATOR_TOKEN_NAME: &str = "_admin";',
                     source("influxdb3_catalog/src/catalog.rs"))
    ops = source("influxdb3_catalog/src/catalog/versions/v3/ops/token.rs")
    assert "return Err(CatalogError::TokenNameAlreadyExists(args.name.clone()));" in ops
    serve = source("influxdb3/src/commands/serve.rs")
    assert serve.index("initialize_admin_token_from_file(&catalog") < serve.index("let frontend = serve(")
    assert json.loads((made_secrets / "influxdb3-admin-token.json").read_text())["name"] == "_admin"
    # no way around the token: authentication on, the unauthenticated token-recovery endpoint off (both default)
    assert 'long = "without-auth", env = "INFLUXDB3_START_WITHOUT_AUTH"' in serve
    assert "pub admin_token_recovery_bind_address: Option<SocketAddr>," in serve
    env = service_env(load_compose(COMPOSE_INFLUXDB3_FILE), "influxdb3")
    assert not {"INFLUXDB3_START_WITHOUT_AUTH", "INFLUXDB3_ADMIN_TOKEN_RECOVERY_HTTP_BIND_ADDR"} & set(env)


def test_make_secrets_keeps_the_token_pair_and_remakes_both_halves_together(tmp_path):
    folder = tmp_path / "secrets"
    subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)], check=True, capture_output=True)
    first = (folder / "influxdb3-admin-token").read_text()
    subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)], check=True, capture_output=True)
    assert (folder / "influxdb3-admin-token").read_text() == first
    (folder / "influxdb3-admin-token").unlink()
    subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(folder)], check=True, capture_output=True)
    again = (folder / "influxdb3-admin-token").read_text()
    assert again != first and json.loads((folder / "influxdb3-admin-token.json").read_text())["token"] == again
    tokens = set()
    for n in range(2):
        other = tmp_path / f"other{n}"
        subprocess.run([str(REPO / "scripts/make-secrets.sh"), str(other)], check=True, capture_output=True)
        tokens.add((other / "influxdb3-admin-token").read_text())
    assert len(tokens) == 2, "random"


# --- the healthcheck ---------------------------------------------------------------------------------------------


def test_the_healthcheck_command_succeeds_on_health_and_fails_on_a_refusal(compose):
    test = compose["services"]["influxdb3"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "curl"
    url = test[-1]
    assert url == "http://localhost:8181/health"
    assert '"health" => vec![all_paths::API_V3_HEALTH, all_paths::API_V1_HEALTH]' in source(
        "influxdb3_commands/src/helpers.rs")
    assert 'pub const API_V3_HEALTH: &str = "/health";' in source("influxdb3_server/src/all_paths.rs")
    assert re.search(r"apt-get install .*?\bcurl\b", upstream_text(*IMAGE, f"{IMAGE_DIR}/Dockerfile"), re.DOTALL)
    curl = real_curl()
    # the server as the stack runs it: INFLUXDB3_DISABLE_AUTHZ=health, so /health answers without a token
    with FakeInfluxDB3(disable_authz={"/health", "/api/v1/health"}) as server:
        ok = subprocess.run([curl, *test[2:-1], server.url + "/health"], capture_output=True, check=False)
        refused = subprocess.run([curl, *test[2:-1], server.url + "/ping"], capture_output=True, check=False)
    assert ok.returncode == 0 and ok.stdout == b"", ok.stderr
    assert refused.returncode != 0, "-f: an error status fails the check"


# --- the collector and Grafana ------------------------------------------------------------------------------------


def test_the_collector_config_in_the_container_uses_the_stack(compose, tmp_path):
    """config.yaml, loaded with the environment the collector's container gets, writes api v3 to the raw database
    that the init step made, with the admin token's file."""
    env = service_env(compose, "collector")
    init = service_env(compose, "influxdb3-init")
    token = tmp_path / "token"
    token.write_text("apiv3_x")
    config = load_config(REPO / "config.yaml", environ={**env, "INFLUX_TOKEN_FILE": str(token)})
    influx = config.influxdb
    assert influx is not None and influx.api == "v3"
    assert influx.url == "http://influxdb3:8181" and influx.bucket == init["TEMPLOG_RAW_DB"]
    assert influx.token_file == str(token)
    assert influx.retention == parse_duration(init["TEMPLOG_RAW_RETENTION"]), \
        "the init step's raw retention is config.yaml's influxdb.retention"
    assert config.collector.outbox == env["TEMPLOG_OUTBOX"]


def test_grafana_gets_the_v3_data_sources_and_the_databases(compose):
    one_shot = compose["services"]["grafana-provisioning"]
    env = service_env(compose, "grafana-provisioning")
    assert env["INFLUX_API"] == "v3"
    src = env["TEMPLOG_GRAFANA_PROVISIONING_SRC"]
    assert mount_of(compose, "grafana-provisioning", src).source == "./grafana/provisioning"
    over = mount_of(compose, "grafana-provisioning", src + "/datasources/templog.yaml")
    assert over.source == "./grafana/influxdb3/datasources" and over.read_only
    assert one_shot["command"] == ["templog-grafana-provisioning"]
    grafana = service_env(compose, "grafana")
    init = service_env(compose, "influxdb3-init")
    assert grafana["INFLUX_BUCKET"] == env["INFLUX_BUCKET"] == init["TEMPLOG_RAW_DB"]
    assert grafana["INFLUX_LONGTERM_BUCKET"] == env["INFLUX_LONGTERM_BUCKET"] == init["TEMPLOG_LONGTERM_DB"]
    seen = mount_of(compose, "grafana", "/etc/grafana/provisioning")
    assert seen.source == mount_of(compose, "grafana-provisioning", env["TEMPLOG_GRAFANA_PROVISIONING_OUT"]).source
    assert seen.read_only and seen.nocopy


def test_the_v3_data_sources():
    """The uids the v3 dashboards and rules use; the keys Grafana's InfluxDB data source reads (see the file)."""
    document = yaml.safe_load(DATASOURCES.read_text())
    sources = {ds["uid"]: ds for ds in document["datasources"]}
    assert set(sources) == {"templog-influxql", "templog-influxql-longterm", "templog-sql"}
    assert sources["templog-influxql"]["jsonData"]["dbName"] == "$INFLUX_BUCKET"
    assert sources["templog-influxql-longterm"]["jsonData"]["dbName"] == "$INFLUX_LONGTERM_BUCKET"
    sql = sources["templog-sql"]
    assert sql["jsonData"] == {"version": "SQL", "dbName": "$INFLUX_BUCKET", "insecureGrpc": True}
    assert sql["secureJsonData"] == {"token": "$__file{/run/secrets/influxdb3_admin_token}"}
    for uid in ("templog-influxql", "templog-influxql-longterm"):
        ds = sources[uid]
        assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["httpHeaderName1"] == "Authorization"
        # InfluxDB 3 takes `Bearer <token>` (http.rs validate_auth_header: Bearer, Token or Basic, then the token)
        assert ds["secureJsonData"]["httpHeaderValue1"] == "Bearer $__file{/run/secrets/influxdb3_admin_token}"
    assert 'auth_scheme != "Bearer" && auth_scheme != "Token"' in source("influxdb3_server/src/http.rs")
    assert all(ds["url"] == "$INFLUX_URL" and ds["type"] == "influxdb" for ds in sources.values())
    assert [ds["uid"] for ds in document["datasources"] if ds.get("isDefault")] == ["templog-influxql"]


def test_every_variable_compose_reads_is_documented_in_its_header(compose):
    header = COMPOSE_INFLUXDB3_FILE.read_text().split("\nname:", 1)[0]
    documented = set(re.findall(r"^#\s+([A-Z][A-Z0-9_]+)\s{2,}", header, re.MULTILINE))
    referenced = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", json.dumps(compose)))
    assert referenced == documented


def test_all_state_is_on_named_volumes(compose):
    declared = set(compose["volumes"])
    used = {m.source for name in compose["services"] for m in mounts(compose, name) if not m.is_bind}
    assert used == declared
    for name in compose["services"]:
        for mount in mounts(compose, name):
            if mount.is_bind:
                assert mount.read_only and (REPO / mount.source).exists(), (name, mount)


# --- influxdb3/init/10-templog.sh with the real curl against FakeInfluxDB3 ------------------------------------------

TOKEN = "apiv3_" + "Ab-_" * 21 + "xy"
DAY_NS = 86400 * 10**9


def real_curl() -> str:
    curl = next((p for p in ("/usr/bin/curl", "/bin/curl") if os.access(p, os.X_OK)), None)
    if curl is None:
        refuse("curl is not installed")
    return curl


class CommandLines:
    """Every process's command line (/proc/<pid>/cmdline) read at each request while the stand-in answers it: its
    client, curl, is then running, waiting for the answer."""

    def __init__(self) -> None:
        self.seen: dict[str, list[bytes]] = {}  # request target -> the command lines of that moment

    def __call__(self, method: str, target: str) -> None:
        lines = self.seen.setdefault(target, [])
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                lines.append(cmdline.read_bytes())
            except OSError:  # the process has ended
                pass

    def curl_requested(self, url: str, target: str) -> bool:
        """Whether a curl asking for url + target was running when that request came."""
        return any(os.path.basename(line.split(b"\0")[0]) == b"curl" and (url + target).encode() in line.split(b"\0")
                   for line in self.seen.get(target, []))


@pytest.fixture
def init_case(tmp_path, compose):
    """FakeInfluxDB3 with the admin token and our plugin directory on a free loopback port; the one-shot's
    environment with INFLUX_URL pointing there, and PATH giving the real curl."""
    curl = real_curl()
    token_file = tmp_path / "influxdb3_admin_token"
    token_file.write_text(TOKEN)
    command_lines = CommandLines()
    with FakeInfluxDB3(TOKEN, plugin_dir=PLUGIN_DIR, on_request=command_lines) as server:
        env = {**service_env(compose, "influxdb3-init"), "INFLUX_URL": server.url, "INFLUX_TOKEN_FILE": str(token_file),
               "PATH": f"{os.path.dirname(curl)}:/bin", "TMPDIR": str(tmp_path), "CURL_HOME": str(tmp_path)}
        yield server, env, command_lines


def run_init(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(INIT)], env=env, capture_output=True, text=True, check=False)


def databases(server: FakeInfluxDB3) -> dict[str, int | None]:
    return {name: retention for name, retention in server.databases.items() if name != "_internal"}


def test_init_creates_the_databases_with_their_retention_and_the_trigger(init_case):
    server, env, command_lines = init_case
    result = run_init(env)
    assert result.returncode == 0, result.stderr
    assert databases(server) == {"temperature": 30 * DAY_NS, "temperature_longterm": 1825 * DAY_NS}
    trigger = server.triggers["temperature"]["templog-downsample"]
    assert trigger == {"db": "temperature", "plugin_filename": "templog_downsample.py",
                       "trigger_name": "templog-downsample",
                       "trigger_settings": {"run_async": False, "error_behavior": "log"},
                       "trigger_specification": "cron:0 5 * * * *",
                       "trigger_arguments": {"longterm_db": "temperature_longterm", "query_file_limit": "10000"},
                       "disabled": False}
    assert len(server.requests) == 3 and all(command_lines.curl_requested(server.url, target)
                                             for _, target in server.requests), "curl seen at each request"
    assert all(TOKEN.encode() not in line for lines in command_lines.seen.values() for line in lines), \
        "the token never on a command line"
    assert not list(Path(env["TMPDIR"]).glob("tmp.*")), "its scratch folder (the token's header file) is removed"
    # the trigger it installed, run as the engine runs it: the raw database's hour lands in the long-term one
    hour = 1_795_000_000 // 3600 * 3600
    server.write_lp("temperature", f"temperature,sensor=a celsius=20.5 {hour * 10**9}\n"
                                   f"temperature,sensor=a celsius=21.5 {(hour + 60) * 10**9}")
    run = server.run_schedule_trigger(trigger["plugin_filename"], trigger["db"], hour + 3900,
                                      trigger["trigger_arguments"])
    assert run.write_errors == []
    assert server.points("temperature_longterm") == [
        {"sensor": "a", "mean": 21.0, "min": 20.5, "max": 21.5, "count": 2, "time": hour * 10**9}]


def test_the_trigger_spec_is_one_the_server_parses():
    """cron:<expression> with the cron crate's seconds field first (catalog trigger.rs from_string_rep;
    plugins.rs ScheduleTriggerRunner: CronSchedule::from_str)."""
    assert 's if s.starts_with("cron:") =>' in source("influxdb3_catalog/src/catalog/versions/v3/schema/trigger.rs")
    spec = re.search(r'^schedule="cron:([^"]*)"', INIT.read_text(), re.MULTILINE)
    assert spec and spec[1].split() == ["0", "5", "*", "*", "*", "*"]


def test_init_again_keeps_the_raw_retention_sets_the_long_term_one_and_replaces_the_trigger(init_case):
    server, env, _ = init_case
    assert run_init(env).returncode == 0
    server.databases["temperature"] = 60 * DAY_NS  # changed by the collector's config since
    server.requests.clear()
    result = run_init({**env, "TEMPLOG_LONGTERM_DB": "temperature_longterm", "TEMPLOG_LONGTERM_RETENTION": "3650d"})
    assert result.returncode == 0, result.stderr
    assert databases(server) == {"temperature": 60 * DAY_NS, "temperature_longterm": 3650 * DAY_NS}
    methods = server.requests
    assert ("PUT", "/api/v3/configure/database") in methods
    assert methods.count(("POST", "/api/v3/configure/processing_engine_trigger")) == 2
    assert ("DELETE", "/api/v3/configure/processing_engine_trigger?db=temperature&trigger_name=templog-downsample"
                      "&force=true") in methods
    assert len(server.triggers["temperature"]) == 1
    assert "its retention is the collector's to manage" in result.stderr


def test_init_only_warns_when_the_server_keeps_the_retention_fixed(init_case):
    """Retention is documented as fixed once a database exists: a refused PUT is warned of, the set-up goes on."""
    server, env, _ = init_case
    assert run_init(env).returncode == 0
    server.retention_updates = False
    result = run_init({**env, "TEMPLOG_LONGTERM_RETENTION": "3650d"})
    assert result.returncode == 0, result.stderr
    assert "WARNING: database temperature_longterm exists; setting its retention to 3650d was refused (405" in \
        result.stderr
    assert databases(server) == {"temperature": 30 * DAY_NS, "temperature_longterm": 1825 * DAY_NS}
    assert list(server.triggers["temperature"]) == ["templog-downsample"]


@pytest.mark.parametrize("case", ["bad token", "server down", "not a v3 token"])
def test_init_fails_clearly(init_case, tmp_path, case):
    server, env, _ = init_case
    if case == "bad token":
        Path(env["INFLUX_TOKEN_FILE"]).write_text("apiv3_wrong")
        expected = "the admin token was refused (401)"
    elif case == "server down":
        with socket.socket() as closed:  # a loopback port nothing listens on: connection refused
            closed.bind(("127.0.0.1", 0))
            env = {**env, "INFLUX_URL": f"http://127.0.0.1:{closed.getsockname()[1]}"}
        # curl's 5 retries (1 s, doubling) cut to one second, by the configuration file curl reads first
        (tmp_path / ".curlrc").write_text("retry-max-time = 1\n")
        expected = "creating database temperature failed (000"
    else:
        Path(env["INFLUX_TOKEN_FILE"]).write_text("0123abcd")
        expected = "does not hold an InfluxDB 3 token"
    result = run_init(env)
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert "apiv3_wrong" not in result.stderr


@pytest.mark.parametrize("variable,value", [("TEMPLOG_LONGTERM_DB", "a b"), ("TEMPLOG_RAW_DB", 'x"y'),
                                            ("TEMPLOG_LONGTERM_RETENTION", "5 years"),
                                            ("TEMPLOG_DOWNSAMPLE_PLUGIN", "../etc/passwd"),
                                            ("TEMPLOG_QUERY_FILE_LIMIT", '1"}')])
def test_init_refuses_names_that_would_break_its_json(init_case, variable, value):
    server, env, _ = init_case
    result = run_init({**env, variable: value})
    assert result.returncode == 1 and server.requests == []


def test_the_init_scripts_requests_match_the_servers_routes():
    http = source("influxdb3_server/src/http.rs")
    paths = source("influxdb3_server/src/all_paths.rs")
    for method, constant in (("POST", "API_V3_CONFIGURE_DATABASE"), ("PUT", "API_V3_CONFIGURE_DATABASE"),
                             ("POST", "API_V3_CONFIGURE_PROCESSING_ENGINE_TRIGGER"),
                             ("DELETE", "API_V3_CONFIGURE_PROCESSING_ENGINE_TRIGGER")):
        assert f"(Method::{method}, all_paths::{constant})" in http, (method, constant)
        path = re.search(rf'{constant}: &str =\s*"([^"]+)"', paths)
        assert path and path[1] in INIT.read_text()


def datasource_uids(value) -> set[str]:
    """Every data source uid a dashboard or rule file refers to (`datasource: {uid}`, `datasourceUid`)."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource" and isinstance(item, dict) and "uid" in item:
                found.add(item["uid"])
            elif key == "datasourceUid":
                found.add(item)
            found |= datasource_uids(item)
    elif isinstance(value, list):
        for item in value:
            found |= datasource_uids(item)
    return found - {"__expr__", "-- Grafana --", "grafana"}


def test_what_templog_grafana_renders_for_the_stack_uses_only_its_data_sources(compose, tmp_path):
    """The real `templog grafana` with the one-shot's environment (api v3): every data source its dashboards and
    rules name is provisioned by grafana/influxdb3/datasources, and every one provisioned is used."""
    env = {**service_env(compose, "grafana-provisioning"), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "collector", "grafana", "--output", str(tmp_path), "-c",
                             str(REPO / "config.yaml")], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    used = set()
    for path in tmp_path.rglob("*"):
        if path.suffix == ".json":
            used |= datasource_uids(json.loads(path.read_text()))
        elif path.suffix == ".yaml":
            used |= datasource_uids(yaml.safe_load(path.read_text()))
    provisioned = {ds["uid"] for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert used == provisioned

"""Every Flux text templog ships passes InfluxData's own Flux parser and type checker.

The checker is the Flux language server that InfluxDB's UI uses (npm @influxdata/flux-lsp-browser, WASM), run
under Node by tests/flux_check/check.mjs (`npm ci --prefix tests/flux_check` installs it). The texts: the
dashboards' queries and the alert rules' queries with Grafana's variables replaced as Grafana replaces them, the
InfluxDB tasks (influxdb/**/*.flux), the history command's queries with their parameters bound as the client binds
them (as options), and the Flux example in README.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import grafana
from collector.config import load_config
from collector.lineprotocol import READING_FIELDS, sensor_name_problem
from collector.query import HistoryQuery, flux
from grafana_queries import dashboard_queries, rule_queries
from servers import refuse, require_binary

ROOT = Path(__file__).resolve().parent.parent
FLUX_CHECK = Path(__file__).resolve().parent / "flux_check"
PROVISIONING = ROOT / "grafana" / "provisioning"
S = 1_000_000_000

# What Grafana puts in place of its variables (a sample of each kind of value).
RANGE_START, RANGE_STOP, WINDOW = "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z", "1m"
# Hostile but allowed sensor names (collector.lineprotocol.sensor_name_problem): quotes, dollars not before " or {,
# dots, slashes, brackets, a name ending in $ and one that is nearly a Grafana macro.
HOSTILE_NAMES = ['green "house"', "cost $5 ($x) /a/b: ä.ß", "ends in $", "v. bucket, x.Bucket", "a\'b #%&*+|"]
SENSORS = ["living-room", *HOSTILE_NAMES]
ANY_TEXT = 'a$"b $${c} $__interval v.bucket x.timeRangeStart \\ "$'  # no sensor name, but a bucket could be
GRAFANA_FLUX_MACROS = {  # grafana/grafana@0c51631848be pkg/tsdb/influxdb/flux/macros.go
    "timeRangeStart": RANGE_START,
    "timeRangeStop": RANGE_STOP,
    "windowPeriod": WINDOW,
    "bucket": '"temperature"',
    "defaultBucket": '"temperature"',
    "organization": '"home"',
}


def grafana_flux_macros(text: str) -> str:
    """Grafana's backend Flux macros, as macros.go applies them to the whole text (string literals included): every
    match of `([a-zA-Z]+)\\.([a-zA-Z]+)` whose second part is a macro is replaced everywhere with strings.ReplaceAll,
    then `$__interval_ms` and `$__interval`."""
    for match in re.finditer(r"([a-zA-Z]+)\.([a-zA-Z]+)", text):
        if match.group(2) in GRAFANA_FLUX_MACROS:
            text = text.replace(match.group(0), GRAFANA_FLUX_MACROS[match.group(2)])
    return text.replace("$__interval_ms", "60000").replace("$__interval", WINDOW)


def grafana_flux(text: str, sensors: list[str] = SENSORS) -> str:
    """A Flux query as Grafana sends it: the dashboard variables (${sensor:json}, ${sensor}, $sensor) replaced by the
    frontend, then the macros by the backend."""
    variables = {"sensor": sensors}

    def replace(match: re.Match) -> str:
        name, fmt = match.group(1) or match.group(3), match.group(2)
        values = variables[name]
        if fmt == "json":
            # JSON.stringify (grafana/grafana@c2d2369119af public/app/features/templating/formatRegistry.ts
            # FormatRegistryID.json); for the names the config allows json.dumps writes the same text
            return json.dumps(values, ensure_ascii=False)
        if fmt is None:
            return "{" + ",".join(values) + "}" if len(values) > 1 else values[0]
        raise AssertionError(f"format {fmt} of ${{{name}}} is not simulated here")

    unknown = set(re.findall(r"\bv\.(\w+)", text)) - set(GRAFANA_FLUX_MACROS)
    assert not unknown, f"Grafana does not replace v.{unknown}:\n{text}"
    text = grafana_flux_macros(re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)\b", replace, text))
    assert "${" not in text, f"a Grafana variable is left in:\n{text}"
    return text


def flux_literal(value) -> str:
    if isinstance(value, str):
        return flux.string(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds() * 1000)}ms"
    if isinstance(value, list):
        return "[" + ", ".join(flux_literal(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)  # an int as an integer literal, a float always with a dot or an exponent
    raise TypeError(value)


def history_flux(query: HistoryQuery) -> str:
    """The history command's query with its parameters as influxdb-client binds them: Flux options."""
    params = flux.params(query, "temperature")
    options = "".join(f"option {name} = {flux_literal(value)}\n" for name, value in params.items())
    return options + flux.history(query)


def with_options(text: str, params: dict) -> str:
    """A Flux text with its parameters as influxdb-client binds them (Flux options, in the query's `extern`, which
    the server reads before the text): written here after the text's imports, where Flux allows statements."""
    imports = "".join(line + "\n" for line in text.splitlines() if line.startswith("import "))
    options = "".join(f"option {name} = {flux_literal(value)}\n" for name, value in params.items())
    return imports + options + text[len(imports):]


def report_flux() -> dict[str, str]:
    """`templog report`'s queries (collector/query/flux.py summaries, outside) with their options bound."""
    start, stop = 1_774_738_800 * S, 1_774_821_600 * S + 1
    texts = {"report summaries": with_options(flux.summaries(), flux.report_params("temperature", start, stop))}
    for low, high in ((2.0, 8.0), (-18.5, None), (None, 25.0)):
        bounds = {"sensor": HOSTILE_NAMES[1], "low": low, "high": high}
        texts[f"report outside low={low} high={high}"] = with_options(
            flux.outside(low is not None, high is not None), flux.report_params("temperature", start, stop, **bounds))
    return texts


def hostile_config(tmp: Path):
    """A config whose sensors have the hostile names, with thresholds and humidity (so every kind of rule and panel is
    rendered)."""
    sensors = "".join(f"  - {{name: {json.dumps(name)}, type: simulated, min: 1, max: 30, humidity: 50, "
                      "humidity_min: 20, humidity_max: 80}\n" for name in HOSTILE_NAMES)
    path = tmp / "hostile.yaml"
    path.write_text("sensors:\n" + sensors, encoding="utf-8")
    return load_config(path, environ={})


def rendered_flux_texts(config, label: str) -> dict[str, str]:
    """Every Flux query `templog grafana` renders for `config`, as Grafana sends it."""
    texts = {}
    files = grafana.rendered_files(config, environ={})
    for path in (grafana.DASHBOARD_FILE, grafana.INFLUXQL_DASHBOARD_FILE):
        for query in dashboard_queries(json.loads(files[path])):
            if query.language == "flux":
                texts[f"{label} {Path(path).name}: {query.where}"] = grafana_flux(query.text)
    for query in rule_queries(yaml.safe_load(files[grafana.RULES_FILE])):
        texts[f"{label} alert {query.where}"] = grafana_flux(query.text)
    return texts


def flux_string_literals(text: str) -> list[str]:
    """The values of a Flux text's string literals, scanned as Flux scans them (influxdata/flux@v0.196.1
    libflux/flux-core/src/scanner/scanner.rl: escaped_char, byte_value, and dollar_value — a `$` takes the next
    character, whatever it is, but `{` (an interpolation, refused here) or the closing quote). Comments and regex
    literals are not expected in the queries this reads."""
    literals, i = [], 0
    while i < len(text):
        if text[i] != '"':
            i += 1
            continue
        value, i = bytearray(), i + 1
        while text[i] != '"':
            char = text[i]
            if char == "\\" and text[i + 1] == "x":
                value += bytes.fromhex(text[i + 2:i + 4])
                i += 4
            elif char == "\\":
                escape = text[i + 1:i + 3] if text[i + 1] == "$" else text[i + 1]
                value += {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "${": "${"}[escape].encode()
                i += 1 + len(escape)
            elif char == "$" and text[i + 1] != '"':
                assert text[i + 1] != "{", f"an interpolation in {text[i - 20:i + 20]!r}"
                value += text[i:i + 2].encode()
                i += 2
            else:
                value += char.encode()
                i += 1
        literals.append(value.decode())
        i += 1
    return literals


def shipped_flux_texts() -> dict[str, str]:
    texts = {}
    for path in sorted((PROVISIONING / grafana.DASHBOARDS_DIR).glob("*.json")):
        for panel_query in dashboard_queries(json.loads(path.read_text())):
            if panel_query.language == "flux":
                texts[f"{path.name}: {panel_query.where}"] = grafana_flux(panel_query.text)
    for rule_query in rule_queries(yaml.safe_load((PROVISIONING / grafana.RULES_FILE).read_text())):
        assert rule_query.language == "flux", rule_query.where
        texts[f"alert {rule_query.where}"] = grafana_flux(rule_query.text)
    for path in sorted((ROOT / "influxdb").rglob("*.flux")):
        texts[str(path.relative_to(ROOT))] = path.read_text()
    start, stop = 1_764_000_000 * S, 1_764_086_400 * S
    for sensors in ((), ("living-room", 'a "b" ${c}', *HOSTILE_NAMES)):
        for every in (0.0, 3600.0):
            for field in READING_FIELDS:
                texts[f"history {field} every={every:g}s sensors={len(sensors)}"] = history_flux(
                    HistoryQuery(start, stop, sensors, every, field))
    texts.update(report_flux())
    readme = (ROOT / "README.md").read_text()
    for i, example in enumerate(re.findall(r"--data '((?:from|import)[^']*)'", readme)):
        texts[f"README.md example {i + 1}"] = example
    return texts


SHIPPED = shipped_flux_texts()

BROKEN = {  # each must be reported: the checker really parses and type-checks
    "syntax error": 'from(bucket: "temperature" |> range(start: -1h)',
    "undefined identifier": 'from(bucket: "temperature") |> rnage(start: -1h)',
    "wrong argument type": 'from(bucket: "temperature") |> range(start: -1h) |> limit(n: "10")',
    "unknown argument": 'from(bucket: "temperature") |> range(start: -1h) |> aggregateWindow(every: 1m, fn: mean, '
                        'empty: false)',
    "missing argument": 'from(bucket: "temperature") |> range()',
    "missing import": 'from(bucket: "temperature") |> range(start: -1h) '
                      '|> map(fn: (r) => ({r with s: strings.toUpper(v: r.sensor)}))',
    "string plus number": 'x = "a" + 1',
    "no such record field": 'r = {a: 1}\ny = r.b',
    "unbound Grafana variable": 'from(bucket: "temperature") |> range(start: v.timeRangeStart)',
    "unbound history option": flux.history(HistoryQuery(0, S, ("a",), 60.0)),
    "unbound report option": flux.summaries(),
    # What a refused sensor name would do to the dashboard's ${sensor:json} (JSON.stringify, no Flux escaping):
    'a name with $" (the $ takes the backslash)': grafana_flux("x = ${sensor:json}", ['a$"b']),
    "a name with ${ (an interpolation)": 'x = ' + json.dumps(["a${b}"]),
    "a name with a Grafana macro": grafana_flux("x = ${sensor:json}", ["my.bucket"]),
}


def run_flux_check(texts: dict[str, str]) -> tuple[dict, dict[str, list[dict]]]:
    node = require_binary("node")
    if not (FLUX_CHECK / "node_modules" / "@influxdata" / "flux-lsp-browser").is_dir():
        refuse("the Flux checker is not installed (npm ci --prefix tests/flux_check)")
    documents = [{"name": name, "text": text} for name, text in texts.items()]
    done = subprocess.run([node, str(FLUX_CHECK / "check.mjs")], input=json.dumps(documents), capture_output=True,
                          text=True, timeout=300, cwd=FLUX_CHECK, check=False)
    assert done.returncode == 0, f"the Flux checker failed ({done.returncode}):\n{done.stderr}"
    output = json.loads(done.stdout)
    assert [r["name"] for r in output["results"]] == list(texts)
    return output["server"], {r["name"]: r["diagnostics"] for r in output["results"]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    return rendered_flux_texts(hostile_config(tmp_path_factory.mktemp("hostile")), "hostile names:")


@pytest.fixture(scope="module")
def checked(hostile):
    return run_flux_check({**SHIPPED, **hostile, **{f"broken: {name}": text for name, text in BROKEN.items()},
                           "control": 'x = 1\ny = x + 1',
                           "flux_string of any text": grafana_flux_macros(f"x = {flux.string(ANY_TEXT)}")})


def errors(diagnostics: list[dict]) -> list[str]:
    return [f"line {d['line']}:{d['character']}: {d['message']}" for d in diagnostics if d["severity"] == 1]


def numbered(text: str) -> str:
    return "\n".join(f"{i:3} {line}" for i, line in enumerate(text.splitlines(), 1))


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_flux_parses_and_type_checks(checked, name):
    _, results = checked
    assert errors(results[name]) == [], f"{name}:\n{numbered(SHIPPED[name])}"


@pytest.mark.parametrize("name", list(BROKEN))
def test_checker_reports_broken_flux(checked, name):
    _, results = checked
    assert errors(results[f"broken: {name}"]), f"the checker found nothing wrong with:\n{BROKEN[name]}"


def test_checker_is_the_pinned_language_server(checked):
    server, results = checked
    assert results["control"] == []
    pinned = json.loads((FLUX_CHECK / "package.json").read_text())["dependencies"]["@influxdata/flux-lsp-browser"]
    assert server == {"name": "flux-lsp", "version": pinned}
    lock = json.loads((FLUX_CHECK / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@influxdata/flux-lsp-browser"]["version"] == pinned


def test_every_kind_of_flux_we_ship_is_collected():
    kinds = {"temperatures.json", "alert", "history", "influxdb", "report"}
    assert {name.split(":")[0].split(" ")[0].split("/")[0] for name in SHIPPED} >= kinds
    assert len([n for n in SHIPPED if n.startswith("temperatures.json")]) >= 10
    assert any(n.startswith("alert rule templog-silent-") for n in SHIPPED)
    assert "influxdb/tasks/downsample.flux" in SHIPPED or not (ROOT / "influxdb" / "tasks").exists()


def test_grafana_variables_are_replaced_as_grafana_does():
    text = grafana_flux('range(start: v.timeRangeStart, stop: v.timeRangeStop) |> aggregateWindow(every: '
                        'v.windowPeriod) |> filter(fn: (r) => contains(value: r.sensor, set: ${sensor:json}))',
                        ["living-room", 'green "house"'])
    assert text == (f'range(start: {RANGE_START}, stop: {RANGE_STOP}) |> aggregateWindow(every: {WINDOW}) '
                    '|> filter(fn: (r) => contains(value: r.sensor, set: ["living-room", "green \\"house\\""]))')
    assert history_flux(HistoryQuery(0, S, ("a",), 90.0)).startswith(
        'option bucket = "temperature"\noption start = 1970-01-01T00:00:00Z\noption stop = 1970-01-01T00:00:01Z\n'
        'option sensors = ["a"]\noption every = 90000ms\n')


def test_flux_string_reads_back_any_text_after_grafanas_macros(checked):
    _, results = checked
    assert errors(results["flux_string of any text"]) == []
    assert flux_string_literals(grafana_flux_macros(flux.string(ANY_TEXT))) == [ANY_TEXT]


def test_hostile_names_are_allowed():
    assert [sensor_name_problem(name) for name in HOSTILE_NAMES] == [None] * len(HOSTILE_NAMES)


def test_queries_for_hostile_names_parse_and_type_check(checked, hostile):
    _, results = checked
    failed = {name: errors(results[name]) for name in hostile if errors(results[name])}
    assert not failed, "\n".join(f"{name}: {e}\n{numbered(hostile[name])}" for name, e in failed.items())
    assert len([n for n in hostile if " alert " in n]) >= 5 * len(HOSTILE_NAMES)
    assert len([n for n in hostile if " alert " in n and "humidity" in n]) == 2 * len(HOSTILE_NAMES)
    assert len([n for n in hostile if re.search(r"temperatures\.json: panel 2[1-6] ", n)]) == 6  # the humidity row


def test_queries_for_hostile_names_match_them(hostile):
    """Each rule's literal is its sensor's name, and the dashboard's sensor list holds every selected name, once
    Grafana has put in its variables and macros (a name Grafana or Flux misread would be some other string)."""
    for name in HOSTILE_NAMES:
        rules = [text for where, text in hostile.items() if " alert rule templog-" in where
                 and any(grafana.rule_uid(kind, name) in where for kind in ("silent", "humidity-above"))]
        assert len(rules) == 2, name
        assert rules and all(name in flux_string_literals(text) for text in rules), name
    for panel in (grafana.PANEL_SERIES, grafana.PANEL_HUMIDITY_SERIES):
        windowed = next(text for where, text in hostile.items() if f"temperatures.json: panel {panel} " in where)
        assert set(SENSORS) <= set(flux_string_literals(windowed))


def test_a_name_with_an_interpolation_is_refused():
    """`${` in a Flux string starts an interpolation (flux@v0.196.1:libflux/flux-core/src/scanner/scanner.rl), and
    the dashboard's ${sensor:json} (JSON.stringify) leaves it as it is."""
    assert sensor_name_problem("a${b}")
    assert "${" in json.dumps(["a${b}"])


@pytest.mark.parametrize("name", ['a$"b', "dev.timeRangeStart", "my.bucket", "x $__interval"])
def test_what_grafana_or_flux_would_misread_is_refused(name):
    """Each of these, if allowed, would reach a query as something else: the check shows how, so the refusal is
    exactly what breaks."""
    assert sensor_name_problem(name)
    try:
        as_json = grafana_flux("contains(value: r.sensor, set: ${sensor:json})", [name])
        misread = flux_string_literals(as_json) != [name]
    except (KeyError, IndexError):  # flux_string_literals found no closed literal: the text is broken
        misread = True
    assert misread, name


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda name: sensor_name_problem(name) is None))
def test_every_allowed_name_survives_grafana_and_flux(name):
    """For any allowed name: a rule's literal (flux_string) and the dashboard's ${sensor:json} read back as the name
    after Grafana's macros; InfluxQL's regex-escaped $sensor matches exactly it."""
    assert flux_string_literals(grafana_flux_macros(flux.string(name))) == [name]
    assert flux_string_literals(grafana_flux("${sensor:json}", [name])) == [name]
    assert re.fullmatch(grafana.grafana_regex_escape(name), name)

"""Properties of the duration parser and the config loader: any input gives a value or a clear refusal, never a
traceback. Hostile values found by these properties are kept as examples in test_config.py."""

import copy
import math
import re
from fractions import Fraction

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cli import ROOT, templog
from collector.config import Config, ConfigError, load_config
from collector.durations import LONGEST_MS, format_duration, parse_duration

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(SETTINGS, max_examples=200)  # each example writes and loads a file

# --- durations -------------------------------------------------------------------------------------------------------

UNITS = st.sampled_from(["ms", "s", "m", "h", "d", "w"])
NUMBERS = st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,12})?", fullmatch=True)
DURATIONS = st.lists(st.tuples(NUMBERS, UNITS), min_size=1, max_size=4).map(
    lambda parts: "".join(n + u for n, u in parts))
NEAR_DURATIONS = st.text(alphabet="0123456789.smhdw +-eE_:٣\n", max_size=30)
ANY_DURATION = st.one_of(DURATIONS, NEAR_DURATIONS, st.text(max_size=80))


@SETTINGS
@given(ANY_DURATION)
@example("99999999999999999999d")
@example("1000000w")
@example("0.0000000001s")
@example("0.001ms")
@example("9" * 400 + "d")
@example("nan")
@example("1e400s")
@example("1h 30m")
def test_any_text_is_a_bounded_duration_or_a_value_error_saying_which_text(text):
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        message = str(exc)
        assert "duration" in message and "\n" not in message, message
        assert repr(text.strip()) in message or len(text.strip()) > 64, message
        return
    assert isinstance(seconds, float) and math.isfinite(seconds)
    assert seconds == 0 or 0.001 <= seconds <= LONGEST_MS / 1000


@SETTINGS
@given(DURATIONS)
def test_format_duration_round_trips_every_whole_millisecond(text):
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    if seconds * 1000 != round(seconds * 1000):
        return  # finer than a millisecond: format_duration has no exact form for it
    formatted = format_duration(seconds)
    assert re.fullmatch(r"0|[0-9]+(ms|s|m|h|d)", formatted)
    assert parse_duration(formatted) == seconds


@SETTINGS
@given(st.integers(min_value=1, max_value=LONGEST_MS))
def test_the_same_duration_written_two_ways_is_the_same_float(ms):
    """Digits are read exactly: 1001ms and 1.001s give one float (the float arithmetic of 1001 * 0.001 would not)."""
    assert parse_duration(f"{ms}ms") == parse_duration(f"{ms // 1000}.{ms % 1000:03d}s") == float(Fraction(ms, 1000))


# --- the config loader -----------------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
    st.text(max_size=20), st.sampled_from(["10s", "0", "0.001ms", "1000000w", "${X}", "${X:-1}", "2026-02-30", ".nan",
                                           "simulated", "v1", "http://localhost:1", "", "a\\b", "x\ny"]),
    st.dates(),
)
KEYS = st.one_of(st.text(max_size=12), st.integers(), st.sampled_from(
    ["collector", "sensors", "influxdb", "mqtt", "name", "type", "interval", "timeout", "tags", "port", "host"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=25)
ENVIRON = st.dictionaries(st.sampled_from(["X", "INFLUX_URL", "INFLUX_API", "INFLUX_ORG", "INFLUX_BUCKET",
                                           "INFLUX_TOKEN",
                                           "INFLUX_TOKEN_FILE", "TEMPLOG_OUTBOX"]),
                          st.text(max_size=20)
                          | st.sampled_from(["8086", "v1", ".inf", "[[[[", "&a [*a]", "0x" + "f" * 30]))
COMMITTED = yaml.safe_load((ROOT / "config.yaml").read_text())


def paths_in(value, prefix=()):
    """Every key path in a YAML structure, as tuples of keys and list indices."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield prefix + (key,)
        yield from paths_in(child, prefix + (key,))


COMMITTED_PATHS = list(paths_in(COMMITTED))


def holder(document, path):
    """The dict or list that holds `path`'s last key, or None where an earlier mutation removed the path."""
    parent = document
    for key in path[:-1]:
        if not holds(parent, key):
            return None
        parent = parent[key]
    return parent if holds(parent, path[-1]) else None


def holds(container, key) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container)


@st.composite
def mutated_configs(draw, paths=COMMITTED_PATHS):
    """The committed config.yaml with one or two keys' values replaced by arbitrary ones, deleted or renamed."""
    document = copy.deepcopy(COMMITTED)
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths))
        parent = holder(document, path)
        if parent is None:
            continue
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif isinstance(parent, dict):
            value = parent.pop(path[-1])
            if action == "rename":
                parent[draw(KEYS)] = value
        else:
            del parent[path[-1]]
    return document


def loads_or_refuses(path, environ=None) -> None:
    """The loader's contract: a Config, or a ConfigError that is one line naming the file."""
    try:
        assert isinstance(load_config(path, environ=environ or {}), Config)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)


def write_yaml(directory, document) -> str:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8", errors="surrogatepass")
    return path


@FILE_SETTINGS
@given(document=VALUES)
def test_any_yaml_document_is_a_config_or_a_config_error(tmp_path_factory, document):
    loads_or_refuses(write_yaml(tmp_path_factory.getbasetemp(), document))


@FILE_SETTINGS
@given(document=mutated_configs(), environ=ENVIRON)
@example(document=COMMITTED, environ={"INFLUX_TOKEN_FILE": "\n"})  # found by hypothesis: a message over two lines
def test_the_committed_config_with_arbitrary_values_is_a_config_or_a_config_error(tmp_path_factory, document, environ):
    loads_or_refuses(write_yaml(tmp_path_factory.getbasetemp(), document), environ)


@FILE_SETTINGS
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(b"\xff\xfe")
@example(b"a: \x00")
@example(b"a: &a [*a]")
@example(b"[" * 5000)
@example(b"{? [a]: b}")
def test_any_bytes_are_a_config_or_a_config_error(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "config.yaml"
    path.write_bytes(content)
    loads_or_refuses(path)


NOT_RUN = {("influxdb", "url"), ("collector", "outbox")}  # the CLI examples neither reach out nor write outside tmp


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=mutated_configs([p for p in COMMITTED_PATHS if p[:2] not in NOT_RUN]),
       command=st.sampled_from(["check", "read"]))
def test_the_cli_exits_0_1_or_2_on_arbitrary_configs_and_never_shows_a_traceback(tmp_path_factory, document, command):
    directory = tmp_path_factory.getbasetemp()
    env = {"INFLUX_URL": "http://127.0.0.1:9", "TEMPLOG_OUTBOX": str(directory / "outbox.sqlite")}  # 9: nothing there
    done = templog(command, "-c", str(write_yaml(directory, document)), env=env, timeout=30)
    assert done.returncode in (0, 1, 2) and "Traceback" not in done.stderr, done.stderr
    if done.returncode == 2:
        assert done.stderr.count("\n") == 1, done.stderr

"""Line protocol: every point templog renders means the same on InfluxDB 1.x, 2.x and 3.x, and what cannot is refused.

Two reference parsers, written here from the parsers' source (never copied), read each rendered line back:
- `parse_v2`, InfluxDB 2.x (and 1.x, which shares the file): influxdata/influxdb@v2.7.12:models/points.go
  (ParsePointsWithPrecision, scanLine, skipWhitespace, scanMeasurement, scanTagsKey, scanTagsValue, unescapeTag:
  a character after a backslash is skipped when scanning; only `\\,`, `\\ ` and, in tags and field keys, `\\=` are
  unescaped; a tab stays in a tag; a newline ends the line; a line starting with `#` is a comment).
- `parse_v3`, InfluxDB 3.x: influxdata/influxdb@v3.9.6:core/influxdb_line_protocol/src/lib.rs (trim_leading,
  measurement, tag_key, tag_value, field_key, escaped_value, escape_or_fallback, whitespace,
  is_whitespace_boundary_char: a space, tab or newline ends a text, only spaces part the sections, `\\\\` is one
  backslash, a text ending in a backslash is an error).
A handful of points also go through a real influxd 1.6, written by `templog run` and read back with InfluxQL.
"""

import itertools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, wait_until
from collector.config import ConfigError, InfluxConfig, load_config
from collector.influx import InfluxV1
from collector.lineprotocol import ESCAPES, MEASUREMENT, Point, Series, tag_key_problem, text_problem
from collector.readings import Reading, reading_point
from collector.runner import point_tags

# Biased towards what the line protocol treats specially, then anything Unicode has.
TRICKY = st.sampled_from(list(",= \\\"'#_\n\r\t\x00\x85\u2028\u00a0é中😀") + ["time", "celsius", "sensor", "_field"])
TEXT = st.lists(TRICKY | st.characters(), min_size=0, max_size=12).map("".join) | st.text(max_size=300)
TAGS = st.dictionaries(TEXT, TEXT, max_size=3)
VALID_CHARS = st.sampled_from(list(",= \"'#_é中😀\u00a0")) | st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\\")
VALID_TEXT = st.lists(VALID_CHARS, min_size=1, max_size=20).map("".join)
VALID_NAMES = VALID_TEXT.map(str.strip).filter(bool)
VALID_TAGS = st.dictionaries(VALID_TEXT.filter(lambda key: not tag_key_problem(key) and key != "host"),
                             VALID_TEXT, max_size=3)
STAMP = 1_700_000_000_000_000_000


class Malformed(Exception):
    """The parser refuses the line, or reads no point in it (a comment)."""


def parse_v2(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """(measurement, tags, fields as text, timestamp) of one line, as InfluxDB 2.x's models/points.go reads it."""
    if "\n" in line:
        raise Malformed("scanLine: a newline ends the line")
    i = 0
    while i < len(line) and line[i] in " \t\0":  # skipWhitespace
        i += 1
    if line[i:i + 1] == "#":
        raise Malformed("a comment")

    def scan(stops: str, errors: str = "") -> str:
        """Up to the next stop that no backslash precedes (the Go code's `buf[i-1] != '\\\\'` test)."""
        nonlocal i
        start = i
        while i < len(line) and not (line[i] in stops + errors and (i == start or line[i - 1] != "\\")):
            i += 1
        if i < len(line) and line[i] in errors or i == start:
            raise Malformed(f"at {i}")
        return line[start:i]

    def unescape(text: str, codes: str) -> str:
        for char in codes:
            text = text.replace("\\" + char, char)
        return text

    measurement = unescape(scan(", "), ", ")
    tags: dict[str, str] = {}
    while line[i:i + 1] == ",":
        i += 1
        key = unescape(scan("=", errors=" ,"), ", =")
        i += 1
        value = unescape(scan(", ", errors="="), ", =")
        if key in tags:
            raise Malformed("duplicate tags")
        tags[key] = value
    fields = _fields(line, i, lambda text: unescape(text, ", ="), " \t")
    return measurement, tags, *fields


def parse_v3(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """(measurement, tags, fields as text, timestamp) of one line, as InfluxDB 3.x's influxdb_line_protocol reads
    it."""
    boundary = " \t\n"
    i = 0
    while i < len(line) and line[i] in boundary:  # trim_leading
        i += 1
    if line[i:i + 1] == "#":
        raise Malformed("a comment")

    def text(stops: str, escapable: str) -> str:
        """escape_or_fallback: plain characters up to a boundary or a stop; a backslash escapes one of `escapable`,
        and before anything else is itself."""
        nonlocal i
        out = []
        while i < len(line) and line[i] not in boundary + stops:
            if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in escapable:
                out.append(line[i + 1])
                i += 2
            else:
                out.append(line[i])
                i += 1
        result = "".join(out)
        if not result or result.endswith("\\"):
            raise Malformed(f"empty or ending in a backslash at {i}")
        return result

    measurement = text(",\0", ", \\")
    tags: dict[str, str] = {}
    while line[i:i + 1] == ",":
        i += 1
        key = text("=", "\\,= ")
        if line[i:i + 1] != "=":
            raise Malformed("expected =")
        i += 1
        tags[key] = text(",", "\\,= ")
    return measurement, tags, *_fields(line, i, None, " ", field_key=lambda j: _v3_key(line, j))


def _v3_key(line: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(line) and line[i] not in " \t\n=":
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in "\\,= ":
            out.append(line[i + 1])
            i += 2
        else:
            out.append(line[i])
            i += 1
    if not out or out[-1] == "\\":
        raise Malformed("field key")
    return "".join(out), i


def _fields(line: str, i: int, unescape_key, spaces: str, field_key=None) -> tuple[dict[str, str], int]:
    """The field set (numbers: no quotes) and the timestamp, after the whitespace that ends the series."""
    if line[i:i + 1] not in tuple(spaces):
        raise Malformed(f"expected whitespace at {i}")
    while i < len(line) and line[i] in spaces:
        i += 1
    fields: dict[str, str] = {}
    while True:
        if field_key is None:
            start = i
            while i < len(line) and not (line[i] == "=" and line[i - 1] != "\\"):
                i += 1
            key = unescape_key(line[start:i])
        else:
            key, i = field_key(i)
        if line[i:i + 1] != "=":
            raise Malformed("expected =")
        start = i = i + 1
        while i < len(line) and line[i] not in ", ":
            i += 1
        fields[key] = line[start:i]
        if line[i:i + 1] != ",":
            break
        i += 1
    if line[i:i + 1] != " ":
        raise Malformed("expected a space before the timestamp")
    stamp = line[i + 1:]
    if not stamp.isdigit():
        raise Malformed(f"timestamp {stamp!r}")
    return fields, int(stamp)


def read_back(line: str) -> tuple:
    """What both parsers read in the line; they must agree."""
    v2, v3 = parse_v2(line), parse_v3(line)
    assert v2 == v3, line
    return v2


@settings(max_examples=300, deadline=None)
@given(measurement=TEXT | VALID_TEXT, tags=TAGS | VALID_TAGS)
def test_any_series_renders_a_line_both_parsers_read_back_or_is_refused_clearly(measurement, tags):
    try:
        point = Point(Series(measurement, tags), {"celsius": 21.5}, STAMP)
        line = point.line()
    except ValueError as exc:
        assert str(exc).startswith(("measurement ", "tag key ", "tag value ")), exc
        problems = [text_problem(measurement, "measurement")]
        problems += [text_problem(k, "tag key") or text_problem(v, "tag value") for k, v in tags.items() if v != ""]
        assert any(problems), exc  # refused only for a reason the rule gives
        return
    assert read_back(line) == (measurement, {k: v for k, v in tags.items() if v != ""}, {"celsius": "21.5"}, STAMP)


@settings(max_examples=200, deadline=None)
@given(key=TEXT, value=st.integers(-2**63, 2**63 - 1) | st.floats())
def test_any_field_renders_or_is_refused_clearly(key, value):
    try:
        line = Point(Series(MEASUREMENT, {"sensor": "a"}), {key: value}, STAMP).line()
    except ValueError as exc:
        assert str(exc).startswith(("field key ", "field ")), exc
        return
    text = f"{value}i" if isinstance(value, int) else repr(value)
    assert read_back(line) == (MEASUREMENT, {"sensor": "a"}, {key: text}, STAMP)


@pytest.mark.parametrize("value", ["a\tb", "\tb", "a\nb", "a\\", "a\\,b", "a\\\\b"])
def test_what_is_refused_in_a_tag_is_what_the_parsers_read_differently(value):
    """A tab, a newline or a backslash where it matters, escaped by the table alone (no escape exists for a tab or a
    newline; a backslash reads differently), is a different point on 2.x than on 3.x, or none on one of them."""
    with pytest.raises(ValueError, match="tag value"):
        Series(MEASUREMENT, {"room": value})
    line = f"{MEASUREMENT},room={value.translate(ESCAPES['tag value'])} celsius=1.5 {STAMP}"
    answers = []
    for parse in (parse_v2, parse_v3):
        try:
            answers.append(parse(line)[1].get("room"))
        except Malformed:
            answers.append(None)
    assert answers[0] != answers[1] or answers[0] != value, answers


def test_a_measurement_starting_with_a_hash_is_refused_as_both_parsers_read_a_comment():
    with pytest.raises(ValueError, match="comment"):
        Series("#temperature", {})
    for parse in (parse_v2, parse_v3):
        with pytest.raises(Malformed, match="comment"):
            parse(f"#temperature celsius=1.5 {STAMP}")


def accepted_config(tmp_path_factory, name: str, collector_tags: dict, sensor_tags: dict):
    """The loaded config with one simulated sensor of that name and those tags, or None where the config refuses
    them."""
    document = {"collector": {"tags": collector_tags, "time_floor": "1970-01-01"},
                "sensors": [{"name": name, "type": "simulated", "tags": sensor_tags}]}
    path = tmp_path_factory.getbasetemp() / "tags.yaml"
    path.write_text(yaml.safe_dump(document))  # ASCII with escapes: YAML would fold a raw U+0085 into a space
    try:
        return load_config(path, environ={})
    except ConfigError as exc:
        assert exc.path.startswith(("collector.tags", "sensors[0].name", "sensors[0].tags")), str(exc)
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, collector_tags=TAGS, sensor_tags=TAGS)
def test_names_and_tags_the_config_accepts_parse_back_to_the_same_tags(tmp_path_factory, name, collector_tags,
                                                                       sensor_tags):
    config = accepted_config(tmp_path_factory, name, collector_tags, sensor_tags)
    if config is None:
        return
    tags = point_tags(config, config.sensors[0])
    _, parsed, _, _ = read_back(reading_point(Series(MEASUREMENT, tags), Reading(name, 10, 20.0)).line())
    assert parsed == tags and parsed["sensor"] == name


TIMESTAMPS = itertools.count(1_700_000_000_000_000_000, 1_000_000_000)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=VALID_NAMES, sensor_tags=VALID_TAGS)
def test_a_real_influxd_stores_exactly_the_tags_the_config_accepts(tmp_path_factory, influxd, database, name,
                                                                   sensor_tags):
    config = accepted_config(tmp_path_factory, name, {"host": "pi"}, sensor_tags)
    assert config is not None
    tags = point_tags(config, config.sensors[0])
    stamp = next(TIMESTAMPS)
    influxd.query(f'CREATE DATABASE "{database}"')
    client = InfluxV1(InfluxConfig(url=influxd.url, api="v1", bucket=database, retention=0))
    try:
        client.write([reading_point(Series(MEASUREMENT, tags), Reading(name, stamp, 20.0)).line()])
    finally:
        client.close()
    result = influxd.query(f'SELECT * FROM "{MEASUREMENT}" WHERE time = {stamp} GROUP BY *', db=database)
    [series] = result["results"][0]["series"]
    assert {k: v for k, v in series["tags"].items() if v} == tags  # GROUP BY * lists other points' keys as ""
    assert series["values"] == [[stamp, 20.0]]


# The hardest text the config accepts, each where it matters most: first or last in a value, beside its escape.
HARD_NAME = 'a "q", b=c #1 é中'
HARD_TAGS = {"key with space": " leading space", "k,=y": "trailing space ", "é中": "=equals first",
             "room": "comma,=both", "hash": "#hash", "quote": 'quote"d\'', "emoji": "ünï cödé 😀 ="}


def test_templog_run_writes_the_hardest_accepted_tags_and_influxd_gives_them_back_exactly(tmp_path, influxd,
                                                                                          database):
    """Through the whole path: config -> Series -> outbox -> sender -> influxd 1.6; read back with InfluxQL."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "influxdb": {"url": influxd.url, "api": "v1", "bucket": database, "retention": "0"},
        "collector": {"tags": {"host": "lab, rack=1 "}, "outbox": str(tmp_path / "outbox.sqlite")},
        "sensors": [{"name": HARD_NAME, "type": "simulated", "interval": "1s", "tags": HARD_TAGS}]}))

    def series() -> list[dict]:
        result = influxd.query(f'SELECT * FROM "{MEASUREMENT}" GROUP BY *', db=database)["results"][0]
        return result.get("series", [])

    running = start_run(config)
    try:
        wait_until(lambda: any(len(s["values"]) >= 2 for s in series()), what="two points in influxd")
    finally:
        code, stderr = stop_run(running)
    assert code == 0, stderr
    [stored] = series()
    assert stored["tags"] == {**HARD_TAGS, "host": "lab, rack=1 ", "sensor": HARD_NAME}

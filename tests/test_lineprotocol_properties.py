"""Line-protocol escaping: every sensor name and tag the config accepts reaches InfluxDB as the same tags.

The round trip is checked with a small parser written here from InfluxDB's line protocol reference
(https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/, "Special characters"):
in measurements, comma and space are escaped; in tag keys, tag values and field keys, comma, equals sign and space;
a backslash before any other character is a literal backslash; "line protocol does not support the newline
character" in tag or field values. A handful of examples also go through a real influxd.
"""

import itertools

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config import ConfigError, InfluxConfig, load_config
from collector.influx import InfluxV1
from collector.lineprotocol import MEASUREMENT, series_key, tag_key_problem, tag_text_problem, temperature_line
from collector.runner import point_tags

# Biased towards what the line protocol treats specially, then anything Unicode has.
TRICKY = st.sampled_from(list(",= \\\"'#_\n\r\t\x00\x85\u2028\u00a0é中😀") + ["time", "celsius", "sensor", "_field"])
TEXT = st.lists(TRICKY | st.characters(), min_size=0, max_size=12).map("".join) | st.text(max_size=300)
TAGS = st.dictionaries(TEXT, TEXT, max_size=3)
VALID_CHARS = st.sampled_from(list(",= \"'#_é中😀\u00a0")) | st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\\")
VALID_TEXT = st.lists(VALID_CHARS, min_size=1, max_size=20).map("".join)
VALID_NAMES = VALID_TEXT.map(str.strip).filter(bool)
VALID_TAGS = st.dictionaries(VALID_TEXT.filter(lambda key: not tag_key_problem(key) and key not in ("sensor", "host")),
                             VALID_TEXT, max_size=3)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """(measurement, tags, fields as text, timestamp) of one line of line protocol, strictly by the reference."""
    assert not any(c in line for c in "\n\r\t"), f"raw newline, carriage return or tab in {line!r}"
    pos = 0

    def token(escapable: str) -> str:
        """Characters up to the next unescaped comma, space or (outside measurements) equals sign."""
        nonlocal pos
        stops = escapable
        out = []
        while pos < len(line) and line[pos] not in stops:
            if line[pos] == "\\" and pos + 1 < len(line) and line[pos + 1] in escapable:
                pos += 1
            out.append(line[pos])
            pos += 1
        return "".join(out)

    def expect(char: str) -> None:
        nonlocal pos
        assert line[pos:pos + 1] == char, f"expected {char!r} at {pos} of {line!r}"
        pos += 1

    measurement = token(", ")
    tags: dict[str, str] = {}
    while line[pos:pos + 1] == ",":
        expect(",")
        key = token(",= ")
        expect("=")
        value = token(",= ")
        assert key and value and key not in tags, line
        tags[key] = value
    expect(" ")
    fields: dict[str, str] = {}
    while True:
        key = token(",= ")
        expect("=")
        fields[key] = token(", ")
        if line[pos:pos + 1] != ",":
            break
        expect(",")
    expect(" ")
    timestamp = line[pos:]
    assert timestamp.isdigit(), line
    return measurement, tags, fields, int(timestamp)


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


@settings(max_examples=300, deadline=None)
@given(tags=TAGS)
def test_tags_that_pass_the_checks_parse_back_to_themselves(tags):
    accepted = {k: v for k, v in tags.items() if not tag_key_problem(k) and not tag_text_problem(v)}
    line = temperature_line(series_key(MEASUREMENT, accepted), 21.5, 1_700_000_000_000_000_000)
    assert parse_line(line) == (MEASUREMENT, accepted, {"celsius": "21.5"}, 1_700_000_000_000_000_000)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT, collector_tags=TAGS, sensor_tags=TAGS)
def test_names_and_tags_the_config_accepts_parse_back_to_the_same_tags(tmp_path_factory, name, collector_tags,
                                                                       sensor_tags):
    config = accepted_config(tmp_path_factory, name, collector_tags, sensor_tags)
    if config is None:
        return
    sensor = config.sensors[0]
    tags = point_tags(config, sensor)
    _, parsed, _, _ = parse_line(temperature_line(series_key(MEASUREMENT, tags), 20.0, 10))
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
        client.write([temperature_line(series_key(MEASUREMENT, tags), 20.0, stamp)])
    finally:
        client.close()
    result = influxd.query(f'SELECT * FROM "{MEASUREMENT}" WHERE time = {stamp} GROUP BY *', db=database)
    [series] = result["results"][0]["series"]
    assert {k: v for k, v in series["tags"].items() if v} == tags  # GROUP BY * lists other points' keys as ""
    assert series["values"] == [[stamp, 20.0]]

"""The MQTT payload parser under arbitrary input: `extract(payload, field)` gives a finite float or refuses with
MalformedPayload and a short message; never another exception (which, raised in paho's network thread, would
stop every mqtt sensor), never NaN or infinity, never a recursion."""

import json
import math
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.sensors.mqtt import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, MalformedPayload, extract, extract_sample

EXAMPLES = settings(max_examples=200, deadline=None)

# Pieces that hostile or broken publishers send: brackets, quotes, escapes, JSON's non-standard constants, numbers
# beyond a float, digit strings beyond Python's int-string conversion limit (4300 digits), control characters.
PIECES = ["[", "]", "{", "}", '"', "\\", ":", ",", " ", "\n", "NaN", "Infinity", "-Infinity", "1e999", "-1e999",
          "9" * 5000, "0." + "1" * 5000, "true", "false", "null", "-", "+", ".", "e", "21.5", "-3", "0x10", "1_000",
          '"temperature"', '"DS18B20"', '"Temperature"', '"tC"', "\\u0000", "\\ud800", "\x00", "\u0663\u0662", "\ufeff",
          "\u200b" * 80, "[" * 1000, '{"temperature":' * 500]
FIELD_PATHS = st.lists(st.sampled_from(["temperature", "DS18B20", "Temperature", "tC", "a", ""]) | st.text(max_size=4),
                       min_size=1, max_size=4).map(".".join)
FIELDS = st.none() | FIELD_PATHS  # None: the payload is the number
JSONISH = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=60).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["temperature", "DS18B20", "Temperature", "tC", "a"]) | st.text(max_size=4), children,
        max_size=4),
    max_leaves=20)


def outcome(payload: bytes, field: str | None) -> float | None:
    """The value, or None for a refusal; any other exception fails the test."""
    try:
        value = extract(payload, field)
    except MalformedPayload as exc:
        assert 0 < len(str(exc)) <= 200, str(exc)  # a message fit for one log line
        return None
    assert type(value) is float and math.isfinite(value), value
    return value


@EXAMPLES
@given(st.binary(max_size=200), FIELDS)
def test_any_bytes_give_a_value_or_a_refusal(payload, field):
    outcome(payload, field)


@EXAMPLES
@given(JSONISH, FIELDS)
def test_any_json_ish_text_gives_a_value_or_a_refusal(text, field):
    outcome(text.encode("utf-8", errors="surrogatepass"), field)


@EXAMPLES
@given(JSON_VALUES, FIELDS)
# a long field of characters repr() writes as \U0001xxxx: quoted whole, the message was 202 characters (CI)
@example({"temperature": None, "DS18B20": None, "Temperature": None},
         ".".join(["\U0001342f\U00016fa0\U00018cd6\U00018d09"] * 3))
def test_any_json_document_gives_a_value_or_a_refusal(document, field):
    outcome(json.dumps(document).encode(), field)  # json.dumps writes NaN and Infinity for such floats


@EXAMPLES
@given(JSON_VALUES, FIELD_PATHS, FIELD_PATHS)  # drawn, not filtered: two filters dropped 3 in 4 (a health check)
def test_any_document_with_a_humidity_field_gives_the_temperature_or_a_refusal_and_the_humidity_or_why_not(
        document, field, humidity_field):
    """The humidity never refuses a payload: a missing or non-numeric one is None with a reason, the temperature as
    `extract` has it."""
    payload = json.dumps(document).encode()
    try:
        sample, no_humidity = extract_sample(payload, field, humidity_field)
    except MalformedPayload:
        assert outcome(payload, field) is None
        return
    assert sample.celsius == outcome(payload, field)
    assert (sample.humidity is None) == (no_humidity is not None)
    assert sample.humidity is None or (type(sample.humidity) is float and math.isfinite(sample.humidity))


@EXAMPLES
@given(st.lists(st.text(min_size=1, max_size=6).filter(lambda key: "." not in key), min_size=1, max_size=5),
       st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6), JSON_VALUES)
def test_a_number_at_the_field_path_is_found(path, celsius, sibling):
    document = celsius
    for key in reversed(path):
        document = {"other": sibling, key: document}
    assert outcome(json.dumps(document).encode(), ".".join(path)) == celsius


@EXAMPLES
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["", " ", "\n", "\r\n"]))
def test_a_bare_number_is_its_value(celsius, padding):
    assert outcome(f"{padding}{celsius!r}{padding}".encode(), None) == celsius


@pytest.mark.parametrize("payload, field, words", [
    (b"[" * 100_000, "temperature", "over the 65,536-byte bound"),
    (b"[" * 60_000, "temperature", f"nests deeper than {MAX_JSON_DEPTH} levels"),
    (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "a", "nests deeper"),
    (b"x" * (10 * 1024 * 1024), None, "over the 65,536-byte bound"),
    (b"\xff\xfe21.5", None, "not UTF-8 text (byte 0xff at offset 0)"),
    (b'{"temperature": NaN}', "temperature", "not a finite number"),
    (b'{"temperature": -Infinity}', "temperature", "not a finite number"),
    (b'{"temperature": 1e999}', "temperature", "not a finite number"),
    (b'{"temperature": ' + b"9" * 5000 + b"}", "temperature", "not a finite number"),
    (b"1e999", None, "not a finite number"),
    (b"9" * 5000, None, "not a finite number"),
    (b"nan", None, "not a number"), (b"inf", None, "not a number"), (b"1_000", None, "not a number"),
    (b'{"temperature": 20, "t": "\\' + b"[" * 100, "temperature", "not JSON"),  # brackets in an unterminated string
])
def test_hostile_payloads_are_refused_with_a_reason(payload, field, words):
    with pytest.raises(MalformedPayload, match=re.escape(words)):
        extract(payload, field)


def test_brackets_inside_strings_do_not_count_as_nesting():
    payload = json.dumps({"note": "[" * 1000 + "{" * 1000, "temperature": 19.5}).encode()
    assert len(payload) <= MAX_PAYLOAD_BYTES and extract(payload, "temperature") == 19.5


def test_a_number_elsewhere_in_the_document_cannot_break_the_field_that_is_read():
    """Devices send NaN for a failed secondary sensor, and counters can be long; only the field read matters."""
    payload = b'{"pressure": NaN, "uptime": ' + b"7" * 5000 + b', "temperature": 21.25}'
    assert extract(payload, "temperature") == 21.25


def test_discover_bounds_payloads_as_a_sensor_does():
    """`discover --mqtt` listens to every topic on the broker: a hostile payload there is no candidate, not a crash."""
    from collector.discover import temperature_field

    assert temperature_field(b"[" * 100_000) == (False, None)
    assert temperature_field(b"1" * (70 * 1024)) == (False, None)
    assert temperature_field(b'{"DS18B20": {"Temperature": 21}}') == (True, "DS18B20.Temperature")

import math

import pytest

from collector.lineprotocol import fields_line, series_key, temperature_line
from collector.readings import implausible


@pytest.mark.parametrize("value, words", [
    (math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "infinite"),
    (151.0, "outside the plausible range"), (-60.5, "outside"), ("21", "not a number"),
])
def test_implausible_values_are_refused_with_a_reason(value, words):
    assert words in implausible(value, -60, 150)


@pytest.mark.parametrize("value", [-60, 0, 21.5, 150])
def test_plausible_values_pass(value):
    assert implausible(value, -60, 150) is None


def test_line_protocol_escapes_tags_and_sorts_them():
    key = series_key("temperature", {"sensor": "living room, north=1", "host": "pi", "room": 'say "hi"'})
    assert key == r'temperature,host=pi,room=say\ "hi",sensor=living\ room\,\ north\=1'
    assert temperature_line(key, 21.5, 1_700_000_000_000_000_000) == key + " celsius=21.5 1700000000000000000"


def test_integral_celsius_is_still_a_float_field():
    assert temperature_line("t,sensor=a", 21, 10).endswith(" celsius=21.0 10")


def test_fields_line_writes_ints_as_integers():
    assert fields_line("templog,host=pi", {"reads_ok": 3, "latency_s": 0.25}, 5) == (
        "templog,host=pi reads_ok=3i,latency_s=0.25 5")


def test_empty_tag_values_are_left_out():
    assert series_key("temperature", {"host": "", "sensor": "a"}) == "temperature,sensor=a"

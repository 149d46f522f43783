import math

import pytest

from collector.lineprotocol import Point, Series
from collector.readings import Reading, implausible, point_reading, reading_point


@pytest.mark.parametrize("value, words", [
    (math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "infinite"),
    (151.0, "outside the plausible range"), (-60.5, "outside"), ("21", "not a number"),
])
def test_implausible_values_are_refused_with_a_reason(value, words):
    reason = implausible(value, -60, 150)
    assert reason is not None, f"{value!r} passed as plausible"
    assert words in reason


@pytest.mark.parametrize("value", [-60, 0, 21.5, 150])
def test_plausible_values_pass(value):
    assert implausible(value, -60, 150) is None


def test_line_protocol_escapes_tags_and_sorts_them():
    series = Series("temperature", {"sensor": "living room, north=1", "host": "pi", "room": 'say "hi"'})
    assert series.key == r'temperature,host=pi,room=say\ "hi",sensor=living\ room\,\ north\=1'
    reading = Reading("living room, north=1", 1_700_000_000_000_000_000, 21.5)
    assert reading_point(series, reading).line() == series.key + " celsius=21.5 1700000000000000000"


def test_a_reading_maps_to_its_point_and_back():
    reading = Reading("desk", 10, 21.5)
    point = reading_point(Series("temperature", {"sensor": "desk", "host": "pi"}), reading)
    assert point.fields == {"celsius": 21.5} and point.time_ns == 10
    assert point_reading(point) == reading
    assert point_reading(Point(Series("templog", {"sensor": "desk"}), {"reads_ok": 1}, 10)) is None  # health


def test_integral_celsius_is_still_a_float_field():
    assert Point(Series("t", {"sensor": "a"}), {"celsius": 21.0}, 10).line().endswith(" celsius=21.0 10")


def test_ints_are_written_as_integers_and_floats_as_floats():
    assert Point(Series("templog", {"host": "pi"}), {"reads_ok": 3, "latency_s": 0.25}, 5).line() == (
        "templog,host=pi reads_ok=3i,latency_s=0.25 5")


def test_empty_tag_values_are_left_out():
    series = Series("temperature", {"host": "", "sensor": "a"})
    assert series.key == "temperature,sensor=a" and series.tags == {"sensor": "a"}


@pytest.mark.parametrize("fields, words", [
    ({}, "without fields"), ({"room": 1.0}, "also a tag key"), ({"celsius": math.nan}, "not a finite number"),
    ({"celsius": "21"}, "not a finite number"), ({"a\tb": 1.0}, "field key"), ({"a\\": 1.0}, "backslash"),
])
def test_a_field_that_cannot_travel_is_refused_clearly(fields, words):
    with pytest.raises(ValueError, match=words):
        Point(Series("temperature", {"sensor": "a", "room": "x"}), fields, 10).line()

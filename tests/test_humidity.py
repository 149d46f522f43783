"""Humidity beside the temperature: the dew point, each quantity's own plausibility check, and calibration
(issue 12, items 1, 3 and 4)."""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.config import ConfigError, load_config
from collector.config_types import Calibration
from collector.outbox import Outbox
from collector.read_check import judge
from collector.readings import MAGNUS_B, MAGNUS_C, Reading, dew_point
from collector.sensors import Sample

S = 1_000_000_000
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the dew point ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("celsius", "humidity", "published"), [
    (20, 50, 9.27),  # 1728.org/dewpoint.htm's worked example (Magnus with 17.27 / 237.3 °C: 0.02 °C apart)
    (30, 50, 18.4),  # the usual dew-point tables, to 0.1 °C
    (25, 60, 16.7),
    (10, 80, 6.7),
    (0, 100, 0.0),  # saturated air: the dew point is the temperature
])
def test_the_dew_point_matches_published_values(celsius, humidity, published):
    assert dew_point(celsius, humidity) == pytest.approx(published, abs=0.05)


@SETTINGS
@given(st.floats(min_value=-45, max_value=60), st.floats(min_value=0.5, max_value=100))
def test_the_dew_point_is_never_above_the_temperature_and_gives_the_humidity_back(celsius, humidity):
    """Magnus inverted: the saturation pressure at the dew point over that at the temperature is the humidity."""
    point = dew_point(celsius, humidity)
    assert point is not None and point <= celsius + 1e-9
    back = 100 * math.exp(MAGNUS_B * point / (MAGNUS_C + point) - MAGNUS_B * celsius / (MAGNUS_C + celsius))
    assert back == pytest.approx(humidity, rel=1e-9)


def test_dry_air_has_no_dew_point():
    assert dew_point(21.0, 0.0) is None


def test_at_and_below_the_magnus_pole_read_and_run_give_the_temperature_without_a_dew_point(write_config, tmp_path):
    """valid_min lowered to -250 lets -243.12 °C (= -c) through: the dew point there divided by zero, which killed
    read's thread ("no reading within the timeout") and failed run's commit of every sensor's reading each tick."""
    config = write_config("collector: {interval: 200ms}\nsensors:\n"
                          "  - {name: cold, type: simulated, base: -243.12, amplitude: 0, noise: 0, humidity: 50, "
                          "valid_min: -250}\n  - {name: room, type: simulated}\n")
    done = templog("read", "--json", "-c", str(config))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    cold = json.loads(done.stdout)[0]
    assert (cold["celsius"], cold["dewpoint"], cold["error"]) == (-243.12, None, None) and cold["humidity"] > 0
    running = start_run(config)
    outbox = tmp_path / "data/outbox.sqlite"

    def both_written() -> bool:
        lines = [p.line for p in Outbox(str(outbox)).oldest(1000)] if outbox.exists() else []
        return any("sensor=cold " in line for line in lines) and any("sensor=room " in line for line in lines)

    wait_until(both_written, what="both sensors' readings in the outbox")
    code, log = stop_run(running)
    assert code == 0 and "failed" not in log, log


# --- each quantity's plausibility, calibration ------------------------------------------------------------------------

def one_sensor(write_config, entry: str):
    return load_config(write_config(f"sensors:\n  - {entry}\n"), environ={}).sensors[0]


def test_humidity_outside_0_to_100_drops_the_humidity_and_keeps_the_temperature(write_config):
    config = one_sensor(write_config, "{name: h, type: simulated, humidity: 50}")
    _, refused = judge(Sample(21.5, 100.0001), 0.01, config, 10 * S)
    assert refused is not None and "100.0001 %RH is outside 0…100 %RH" in refused.reason  # not rounded onto 100
    for humidity in (100.5, -0.1, float("nan")):
        reading, refused = judge(Sample(21.5, humidity), 0.01, config, 10 * S)
        assert reading is not None and (reading.celsius, reading.humidity, reading.dewpoint) == (21.5, None, None)
        assert refused is not None and refused.counter == "humidity_refused"
        assert refused.reason.startswith("humidity refused: ") and "the temperature is kept" in refused.reason
    reading, refused = judge(Sample(21.5, 100.0), 0.01, config, 10 * S)
    assert refused is None and reading is not None and reading.humidity == 100.0
    assert reading.dewpoint == pytest.approx(21.5)


def test_a_humidity_the_sensor_could_not_read_keeps_the_temperature_and_says_why(write_config):
    """A BME280 whose humidity file fails while its temperature reads (on c786767 the whole read failed)."""
    config = one_sensor(write_config, "{name: h, type: simulated, humidity: 50, calibrate: {offset: 0.5}}")
    reading, refused = judge(Sample(21.5, humidity_error="in_humidityrelative_input: EIO"), 0.01, config, 10 * S)
    assert reading is not None and (reading.celsius, reading.humidity) == (22.0, None)
    assert refused is not None and (refused.kind, refused.counter) == ("humidity", "humidity_refused")
    assert refused.reason == "humidity not read: in_humidityrelative_input: EIO; the temperature is kept"


def test_calibration_applies_before_the_plausibility_ranges(write_config):
    offset = one_sensor(write_config, "{name: t, type: simulated, valid_max: 30, calibrate: {offset: -0.3}, "
                                      "humidity: 50, humidity_offset: 2.5}")
    reading, refused = judge(Sample(21.5, 40.0), 0.01, offset, 10 * S)
    assert refused is None and reading is not None
    assert reading.celsius == pytest.approx(21.2) and reading.humidity == 42.5
    reading, refused = judge(Sample(30.2, 98.0), 0.01, offset, 10 * S)  # 29.9 °C passes; 100.5 %RH does not
    assert reading is not None and reading.celsius == pytest.approx(29.9) and reading.humidity is None
    assert refused is not None and "100.5 %RH" in refused.reason
    points = one_sensor(write_config, "{name: t, type: simulated, valid_max: 100, "
                                      "calibrate: {points: [[0.4, 0.0], [99.1, 100.0]]}}")
    for measured, true in ((0.4, 0.0), (99.1, 100.0), (49.75, 50.0)):
        reading, _ = judge(Sample(measured), 0.01, points, 10 * S)
        assert reading is not None and reading.celsius == pytest.approx(true)
    _, refused = judge(Sample(99.5), 0.01, points, 10 * S)  # 100.4 °C after calibration: above valid_max
    assert refused is not None and refused.kind == "refused" and "100.4" in refused.reason


@pytest.mark.parametrize(("calibrate", "key_path", "words"), [
    ("{offset: x}", "sensors[0].calibrate.offset", "expected a number, got str 'x'"),
    ("{offset: 1e-3}", "sensors[0].calibrate.offset", "got str '1e-3': YAML took it for text; write 0.001"),
    ("{offset: 25}", "sensors[0].calibrate.offset", "within ±20 °C"),
    ("{offset: .nan}", "sensors[0].calibrate.offset", "finite"),
    ("{scale: 2}", "sensors[0].calibrate.scale", "unknown key (expected one of: offset, points)"),
    ("{}", "sensors[0].calibrate", "give one of offset and points"),
    ("{offset: 1, points: [[0, 0], [1, 1]]}", "sensors[0].calibrate", "give one of offset and points"),
    ("-0.3", "sensors[0].calibrate", "expected {offset: X} or {points:"),
    ("{points: [[0, 0]]}", "sensors[0].calibrate.points", "expected two [measured, true] pairs"),
    ("{points: [[0, 0], [1]]}", "sensors[0].calibrate.points[1]", "expected [measured, true]"),
    ("{points: [[0, 0], [1, a]]}", "sensors[0].calibrate.points[1][1]", "expected a number"),
    ("{points: [[5, 0], [5, 1]]}", "sensors[0].calibrate.points", "the two measured values must differ"),
    ("{points: [[0, 0], [10, -10]]}", "sensors[0].calibrate.points", "scale of -1"),
    ("{points: [[0, 50], [10, 60]]}", "sensors[0].calibrate.points", "offset of 50.0 °C"),
    ("{points: [[0, 0], [1, 2.0000001]]}", "sensors[0].calibrate.points", "scale of 2.0000001, outside 0.5…2"),
    ("{points: [[-1.0e+308, -1.0e+308], [1.0e+308, 1.0e+308]]}", "sensors[0].calibrate.points", "too far apart"),
])
def test_bad_calibration_is_a_config_error_naming_its_key(write_config, calibrate, key_path, words):
    path = write_config(f"sensors:\n  - {{name: t, type: simulated, calibrate: {calibrate}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.path == key_path and words in caught.value.problem
    done = templog("check", "-c", str(path))
    assert done.returncode == 2 and f"{key_path}: " in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("entry", "key_path", "words"), [
    ("humidity_min: -1", "sensors[0].humidity_min", "from 0 to 100 %RH"),
    ("humidity_max: 101", "sensors[0].humidity_max", "from 0 to 100 %RH"),
    ("humidity_min: 70, humidity_max: 30", "sensors[0].humidity_max", "must be above humidity_min (70)"),
    ("humidity_offset: 60", "sensors[0].humidity_offset", "within ±50 %RH"),
    ("humidity_offset: 50.0000001", "sensors[0].humidity_offset", "got 50.0000001"),
    ("humidity: 120", "sensors[0].humidity", "from 0 to 100 %RH"),
])
def test_bad_humidity_keys_are_config_errors_naming_their_key(write_config, entry, key_path, words):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(f"sensors:\n  - {{name: t, type: simulated, {entry}}}\n"), environ={})
    assert caught.value.path == key_path and words in caught.value.problem


CALIBRATE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["offset", "points", "x"]), inner,
                                                                max_size=3),
    max_leaves=10)


@SETTINGS
@given(CALIBRATE_VALUES)
def test_any_calibrate_value_is_a_calibration_or_a_config_error_naming_calibrate(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("calibrate") / "config.yaml"
    path.write_text(yaml.safe_dump({"sensors": [{"name": "t", "type": "simulated", "calibrate": value}]}))
    try:
        calibration = load_config(path, environ={}).sensors[0].calibration
    except ConfigError as exc:
        assert exc.path.startswith("sensors[0].calibrate"), exc
        return
    assert isinstance(calibration, Calibration) and 0.5 <= calibration.scale <= 2 and abs(calibration.offset) <= 20


# --- on a real process ----------------------------------------------------------------------------------------------

def test_read_json_gives_humidity_and_dew_point_only_for_sensors_that_measure_humidity(write_config):
    config = write_config("sensors:\n  - {name: greenhouse, type: simulated, humidity: 65, noise: 0}\n"
                          "  - {name: desk, type: simulated}\n")
    done = templog("read", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    greenhouse, desk = json.loads(done.stdout)
    assert set(greenhouse) == {"sensor", "celsius", "humidity", "dewpoint", "error"}
    assert 55 <= greenhouse["humidity"] <= 75 and greenhouse["error"] is None
    assert greenhouse["dewpoint"] == Reading("greenhouse", 0, greenhouse["celsius"], greenhouse["humidity"]).dewpoint
    assert greenhouse["dewpoint"] == pytest.approx(dew_point(greenhouse["celsius"], greenhouse["humidity"]), abs=0.005)
    assert set(desk) == {"sensor", "celsius", "error"}
    text = templog("read", "-c", str(config)).stdout  # a second read: the simulated humidity's noise moved on
    assert re.search(r"^greenhouse  -?\d+\.\d\d °C, \d+\.\d %RH, dew point -?\d+\.\d\d °C$", text, re.MULTILINE), text
    assert re.search(r"^desk        -?\d+\.\d\d °C$", text, re.MULTILINE), text


def test_run_writes_humidity_and_dew_point_on_the_reading_and_refuses_only_the_humidity_it_must(write_config,
                                                                                                  tmp_path):
    """A humidity offset pushing readings over 100 %RH: the temperature goes on being written, without humidity;
    the refusal is logged once and counted."""
    config = write_config("collector: {interval: 200ms, health_interval: 1s}\nsensors:\n"
                          "  - {name: wet, type: simulated, humidity: 95, humidity_offset: 10, "
                          "calibrate: {offset: 1}}\n"
                          "  - {name: room, type: simulated, humidity: 45, seed: 3}\n")
    running = start_run(config)
    outbox = tmp_path / "data/outbox.sqlite"

    def lines(start: str) -> list[str]:
        if not outbox.exists():
            return []
        return [p.line for p in Outbox(str(outbox)).oldest(10**5) if p.line.startswith(start)]

    def refusals_counted() -> int:
        counts = [re.search(r"[ ,]humidity_refused=(\d+)i", line) for line in lines("templog,host=")
                  if ",sensor=wet " in line]
        return max((int(m.group(1)) for m in counts if m), default=0)

    wait_until(lambda: len(lines("temperature,")) >= 10 and refusals_counted() >= 3,
               what="readings of both and three refusals counted")
    code, log = stop_run(running)
    assert code == 0, log
    wet, room = ([line for line in lines("temperature,") if f"sensor={name} " in line] for name in ("wet", "room"))
    assert wet and all(" celsius=" in line and "humidity=" not in line and "dewpoint=" not in line for line in wet)
    assert room and all("humidity=" in line and "dewpoint=" in line for line in room)
    assert log.count("wet: humidity refused: ") == 1, log

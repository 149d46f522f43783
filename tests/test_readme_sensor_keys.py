"""README's table of type-specific sensor keys against the code: each sensor type's `Settings` (its keys, their
defaults) and its physical range, so that the docs and the loader cannot drift apart (issue 11 item 10).

The table's "keys" cell names each key in backticks; what is in parentheses after a key describes it (examples in
backticks too, and "default X"; "default `<sysfs>/...`" for a path under `collector.sysfs`). A key the cell names
outside parentheses must be a field of the type's `Settings`, and every field must be named.
"""

import dataclasses
import re
from pathlib import Path

import pytest

from collector.sensors.base import UNDER_SYSFS
from collector.sensors.registry import SENSOR_TYPES

README = Path(__file__).resolve().parent.parent / "README.md"
KEY = re.compile(r"`([a-z_][a-z0-9_]*)`")
DEFAULT = re.compile(r"`([a-z_][a-z0-9_]*)` \((?:[^()]*?[,;] )?default `?([^;,)`]+)`?[;,)]")
RANGE = re.compile(r"^(-?\d+)…(-?\d+) °C$")


def type_rows() -> dict[str, tuple[str, str]]:
    """type -> (keys cell, physical range cell), from the table after "Type-specific keys:"."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("Type-specific keys:"):].split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def without_parentheses(text: str) -> str:
    depth, kept = 0, []
    for char in text:
        depth += char == "("
        if depth == 0:
            kept.append(char)
        depth -= char == ")" and depth > 0
    return "".join(kept)


def test_the_table_has_one_row_per_sensor_type():
    assert sorted(type_rows()) == sorted(SENSOR_TYPES)


@pytest.mark.parametrize("name", sorted(SENSOR_TYPES))
def test_a_types_row_names_exactly_its_settings_keys_with_their_defaults_and_its_range(name):
    keys_cell, range_cell = type_rows()[name]
    sensor_type = SENSOR_TYPES[name]
    fields = {f.name: f for f in dataclasses.fields(sensor_type.settings)}
    assert set(KEY.findall(without_parentheses(keys_cell))) == set(fields)
    for key, documented in DEFAULT.findall(keys_cell):
        default = fields[key].default
        assert default is not dataclasses.MISSING, f"{name}.{key}: README gives a default, the code has none"
        if UNDER_SYSFS in fields[key].metadata:  # a path under collector.sysfs: the loader derives it from that
            default = f"<sysfs>/{fields[key].metadata[UNDER_SYSFS]}"
        assert (float(documented) == default if isinstance(default, (int, float)) else documented == default), \
            f"{name}.{key}: README says default {documented}, the code {default!r}"
    documented_range = RANGE.match(range_cell)
    assert documented_range, f"{name}: README's range cell {range_cell!r} is not `low…high °C`"
    low, high = documented_range.groups()
    assert (float(low), float(high)) == sensor_type.valid_range

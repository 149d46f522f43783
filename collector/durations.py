"""Duration strings as users write them in config and on the command line: `500ms`, `10s`, `1h30m`, `0`.

The digits are read exactly (as whole multiples of 10**-64 ms, finer than any digit a duration's text can hold), so
texts that mean the same duration give the same float, and format_duration's output parses back to it. Integers,
not fractions.Fraction: the same exact sum, without importing fractions and decimal into every command.
"""

import re

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_FORMS = "use e.g. 500ms, 10s, 5m, 2h, 30d, 1h30m or 0"
_LONGEST_TEXT = 64  # far beyond any sensible duration; also keeps int() below Python's 4300-digit limit
_MS = 10**_LONGEST_TEXT  # one millisecond in the exact unit: a text of 64 characters has fewer decimals than that

SHORTEST_MS = 1  # the finest step: anything shorter but not 0 is a typo, and would round to 0 ns somewhere
LONGEST_MS = 36500 * _UNIT_MS["d"]  # 100 years: every duration fits InfluxDB's int64 nanoseconds (292 years)


def parse_duration(text: str) -> float:
    """Seconds in `text`: 0, or between 1ms and 36500d. Anything else raises ValueError saying what is wrong."""
    text = text.strip()
    if len(text) > _LONGEST_TEXT:
        raise ValueError(f"invalid duration {text[:_LONGEST_TEXT]!r}...: too long ({_FORMS})")
    if text == "0":
        return 0.0
    pos, total = 0, 0  # in units of 1 / _MS ms
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        whole, _, decimals = match.group(1).partition(".")
        total += int(whole + decimals) * 10 ** (_LONGEST_TEXT - len(decimals)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"invalid duration {text!r} ({_FORMS})")
    if 0 < total < SHORTEST_MS * _MS:
        raise ValueError(f"duration {text!r} is shorter than 1ms, the shortest there is")
    if total > LONGEST_MS * _MS:
        raise ValueError(f"duration {text!r} is longer than 36500d (100 years), the longest there is")
    return total / (1000 * _MS)  # int / int is the float nearest the exact quotient, as float(Fraction) is


def format_duration(seconds: float) -> str:
    """The shortest exact duration string for `seconds` (inverse of parse_duration for whole milliseconds)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0"
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def describe_retention(seconds: float) -> str:
    return format_duration(seconds) if seconds else "forever"

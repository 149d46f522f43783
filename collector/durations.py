"""Duration strings as users write them in config and on the command line: `500ms`, `10s`, `1h30m`, `0`."""

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError naming the accepted forms."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"invalid duration {text!r} (use e.g. 500ms, 10s, 5m, 2h, 30d, 1h30m or 0)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact duration string for `seconds` (inverse of parse_duration)."""
    if seconds == 0:
        return "0"
    ms = round(seconds * 1000)
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def describe_retention(seconds: float) -> str:
    return format_duration(seconds) if seconds else "forever"

"""What every sensor type shares: the read interface, its errors and sysfs-style file helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from collector.config import SensorConfig


class SensorError(Exception):
    """A read failed; the message says why in words a user can act on."""


class SettingError(ValueError):
    """A type-specific key is invalid; raised from a Settings dataclass's __post_init__."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class Sensor(Protocol):
    def read_celsius(self) -> float: ...


@dataclass(frozen=True)
class SensorType:
    settings: type  # frozen dataclass of the type's own keys
    create: Callable[["SensorConfig"], Sensor]
    valid_range: tuple[float, float]  # physically possible °C; readings outside are refused


def read_number(text: str, source: str) -> float:
    """The number in a sysfs-style file's content."""
    try:
        return float(text.strip())
    except ValueError:
        raise SensorError(f"{source} does not hold a number: {text.strip()[:40]!r}") from None


def read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise SensorError(f"{path} does not exist") from None
    except OSError as exc:
        raise SensorError(f"cannot read {path}: {exc.strerror or exc}") from None

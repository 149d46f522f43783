"""A program's output: `command` as a shell string or an argv list; `pattern` picks the number."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from collector.sensors.base import SensorError, SensorType, SettingError

FIRST_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


@dataclass(frozen=True)
class Settings:
    command: str | list[str]
    pattern: str = FIRST_NUMBER

    def __post_init__(self):
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise SettingError("pattern", f"invalid regular expression: {exc}") from None
        if compiled.groups != 1:
            raise SettingError("pattern", f"needs exactly one group (...) around the number, has {compiled.groups}")


class CommandSensor:
    def __init__(self, settings: Settings, timeout: float):
        self.settings = settings
        self.pattern = re.compile(settings.pattern)
        self.timeout = timeout

    def read_celsius(self) -> float:
        command = self.settings.command
        shell = isinstance(command, str)
        try:
            done = subprocess.run(command if shell else list(command), shell=shell, capture_output=True,
                                  text=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SensorError(f"command did not finish within {self.timeout:g}s") from None
        except OSError as exc:
            raise SensorError(f"cannot run command: {exc.strerror or exc}") from None
        if done.returncode != 0:
            detail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
            raise SensorError(f"command exited with status {done.returncode}: {detail[0][:200]}")
        match = self.pattern.search(done.stdout)
        if not match:
            raise SensorError(f"pattern {self.settings.pattern!r} found no number in output {done.stdout.strip()[:80]!r}")
        try:
            return float(match.group(1))
        except ValueError:
            raise SensorError(f"pattern matched {match.group(1)!r}, which is not a number") from None


SENSOR_TYPE = SensorType(Settings, lambda config, shared: CommandSensor(config.settings, config.timeout), (-60.0, 150.0))

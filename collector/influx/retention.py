"""Retention changes in words, the same for a v1 database and a v2 bucket. Durations in seconds, 0 = forever."""

from __future__ import annotations

from collector.durations import describe_retention


def shortens(current: float, wanted: float) -> bool:
    return wanted != 0 and (current == 0 or wanted < current)


def deletion(wanted: float, where: str) -> str:
    """What shortening to `wanted` makes InfluxDB do: `where` is "of every measurement in database x" or the like."""
    return f"InfluxDB will delete the points older than {describe_retention(wanted)}, {where}"


def change(current: float, wanted: float) -> str:
    return f"from {describe_retention(current)} to {describe_retention(wanted)}"


def differs(subject: str, current: float, wanted: float, scope: str,
            applies: str = "templog run applies it") -> str:
    """`check`'s line for a retention that differs from the config: `subject` such as "bucket 'x': retention" and,
    when the change shortens it, what InfluxDB then deletes (`scope` as for `deletion`); `applies` what run does."""
    problem = (f"{subject} is {describe_retention(current)}, config says {describe_retention(wanted)} "
               f"({applies}")
    if shortens(current, wanted):
        problem += f"; then {deletion(wanted, scope)}"
    return problem + ")"


def when_missing(wanted: float | None) -> str:
    """What `check` says becomes of a missing bucket or database.

    Only a configured retention lets templog create one."""
    if wanted is None:
        return "create it, or set influxdb.retention and templog run creates it with that retention"
    return "templog run creates it"


def create_missing(wanted: float | None) -> str:
    """What a failed write says to do about a missing bucket or database (templog creates one only at start)."""
    return "create it" + (", or set influxdb.retention and restart: templog then creates it" if wanted is None else "")

"""What tests read straight from an outbox's file: the collector itself never reads the rejected points back."""

import contextlib
import sqlite3

from collector.outbox import Outbox


def rejected(outbox: Outbox) -> list[tuple[str, str]]:
    """The points set aside as rejected, oldest first, as (line, reason), through a connection of the test's own
    (committed rows only, as the outbox's own connection would see them between calls)."""
    with contextlib.closing(sqlite3.connect(outbox.path)) as db:
        return db.execute("SELECT line, reason FROM rejected ORDER BY id").fetchall()

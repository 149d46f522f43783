"""The root of every error templog raises on purpose. A leaf: it imports nothing of templog, so any module may use it.

Each part of templog defines its own subclasses beside the code that raises them (the config's, the outbox's, a
sensor's, InfluxDB's); each builds its message, which says what failed in words a user can act on, from what
the raiser hands it. A subclass raised while handling another exception keeps it as its cause (`raise ... from
exc`): the CLI prints the message alone, and under -v the traceback with its causes too (collector/cli.py).
"""


class TemplogError(Exception):
    """An error templog knows and explains: its message is what the user sees."""

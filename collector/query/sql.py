"""SQL (InfluxDB 3, whose query engine is Apache DataFusion): quoting, and the query texts of `templog history` and
the Grafana SQL alert rules. Each measurement is a table; `time` is a timestamp in nanoseconds without a zone (UTC),
each tag and field a column. Identifiers go in double quotes, string literals in single quotes, each quote doubled:
DataFusion's SQL reads no backslash escapes in either (sqlparser's GenericDialect, which DataFusion parses with)."""

from __future__ import annotations

from collector.lineprotocol import MEASUREMENT


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string(text: str) -> str:
    """A SQL string literal that reads back as `text`."""
    return "'" + text.replace("'", "''") + "'"


def readings(columns: str, where: str) -> str:
    """`columns` of the temperature readings `where` a condition holds."""
    return f"SELECT {columns} FROM {quote_ident(MEASUREMENT)} WHERE {where}"

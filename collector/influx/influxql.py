"""InfluxQL quoting (InfluxDB 1.x): identifiers in double quotes, string literals in single quotes, each with its
quote and the backslash escaped. Pure text, apart from the client (v1.py) so that building a query needs no HTTP."""


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

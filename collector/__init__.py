"""templog: read temperature sensors on a wall-clock schedule and deliver every reading to InfluxDB."""

__version__ = "0.1.0"
BUILD_DATE = "2026-11-27"  # the default time floor: no reading can honestly be stamped before this release

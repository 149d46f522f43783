"""templog: read temperature sensors on a wall-clock schedule and deliver every reading to InfluxDB."""

__version__ = "0.1.0"

"""The `templog` command line: run, read, check, health, history, report, grafana, discover. Exit codes: 0 ok,
1 failure, 2 bad usage/config.

A command imports what it alone uses in its own function: the scheduler and the sender in `run`, the Grafana
renderer in `grafana`, the sysfs scan and paho in `discover`, the outbox (and SQLite) in the commands that open it,
the history module in `history` and `check`, the report's modules in `report`; an InfluxDB client's module
(urllib3, influxdb-client) is imported by `collector.influx.connect` when one is made. So `health`, which Docker's
HEALTHCHECK runs every 30 s, and `read` start in a fraction of the time and memory (BENCHMARKS.md "Command
start-up", bench/startup.py); tests/test_cli_imports.py checks it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from collector import __version__, logs
from collector.durations import parse_duration
from collector.errors import TemplogError
from collector.ticks import NS_PER_S, parse_time_ns, rfc3339, utc_text

if TYPE_CHECKING:
    import datetime as dt

    from collector.config_types import Config
    from collector.outbox import Outbox
    from collector.outbox_lock import OutboxLock
    from collector.query import HistoryQuery, Row
    from collector.report import SensorLimits
    from collector.runner import StopRequest
    from collector.sensors import Shared
    from collector.stats import Stats

log = logging.getLogger("templog")


SENDER_LINGER_S = 0.25  # after a reading arrives, wait this long for the rest of its tick: one write per tick
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: a closed terminal or ssh session
MQTT_STOP_S = 1.0  # after the collector's own bounded shutdown: a broker that does not answer must not hold the exit
SECOND_SIGNAL_AFTER_S = 0.5  # a signal this long after the first is the user insisting: exit at once
# collector.lineprotocol.READING_FIELDS, written out: `--help` imports no more than the parser (dataclasses, there)
HISTORY_FIELDS = ("celsius", "humidity", "dewpoint")
REPORT_FORMATS = ("text", "csv", "json", "html")
OWN_TIMEOUT_GRACE_S = 1.0  # `read`/`check`: beyond the longest timeout, for a sensor's own timeout handling
MAX_REPORT_DAYS = 3660  # ten years: the longest range a report covers (each day is queried)
DAY_NS = 86_400 * NS_PER_S


class UsageError(TemplogError):
    """Bad command-line input: exit 2."""


class NoSysfs(TemplogError):
    """`discover` has no sysfs tree to scan: exit 1."""


class NoReadings(TemplogError):
    """`report` found no reading of any selected sensor in its range: exit 1, nothing written."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.quiet and args.verbose:
        parser.error("-q/--quiet and -v/--verbose contradict each other: give one of them")
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logs.configure(level)
    logging.getLogger("influxdb_client").setLevel(logging.WARNING)
    # after argparse, which answers --help and bad usage itself: the config module brings PyYAML and dataclasses
    from collector.config import ConfigError, load_config

    try:
        if args.command == "discover":
            return cmd_discover(args)
        config = load_config(args.config)
        hide_secrets(config)
        return COMMANDS[args.command](config, args)
    # one line naming what failed; its traceback, with the causes, only under -v (at DEBUG)
    except (ConfigError, UsageError) as exc:
        print(f"templog: {exc}", file=sys.stderr)
        logs.log_traceback(log, exc)
        return 2
    except Exception as exc:
        if _said_in_its_own_words(exc):
            print(f"templog: {args.command}: {exc}", file=sys.stderr)
        else:
            print(f"templog: {args.command}: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        logs.log_traceback(log, exc)
        return 1
    except KeyboardInterrupt:
        return 130


def hide_secrets(config: Config) -> None:
    """Every secret of the config masked in -v tracebacks from the start, not only once a client met a failure: the
    InfluxDB credentials (and a v1 password alone) and the MQTT password."""
    if config.influxdb is not None:
        credentials = config.influxdb.credentials()
        logs.hide(credentials, credentials.partition(":")[2])
    if config.mqtt is not None:
        logs.hide(config.mqtt.credentials())


def _said_in_its_own_words(exc: Exception) -> bool:
    """One of templog's errors (such as an outbox in use, damaged, or at a path no outbox can live at), an OSError or
    SQLite's (e.g. an outbox that cannot be created or opened). SQLite's module is looked up, not imported: only a
    command that imported it can raise its errors, and `read` and `--help` need none."""
    sqlite3 = sys.modules.get("sqlite3")
    return isinstance(exc, (TemplogError, OSError)) or (sqlite3 is not None and isinstance(exc, sqlite3.Error))


def _parser() -> argparse.ArgumentParser:
    def options(defaults: bool) -> argparse.ArgumentParser:
        """The options every command takes, before or after its name (after it, absent ones keep what came before)."""
        common = argparse.ArgumentParser(add_help=False)
        missing: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
        common.add_argument("-c", "--config", help="config file (default: $TEMPLOG_CONFIG, else ./config.yaml)",
                            **missing)
        common.add_argument("-v", "--verbose", action="store_true", help="debug logging", **missing)
        common.add_argument("-q", "--quiet", action="store_true",
                            help="log only warnings and errors (not each reading)", **missing)
        return common

    common = options(defaults=False)
    parser = argparse.ArgumentParser(prog="templog", parents=[options(defaults=True)],
                                     description="Temperature logger: sensors -> durable outbox -> InfluxDB")
    parser.add_argument("--version", action="version", version=f"templog {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="collect forever, until SIGINT/SIGTERM")
    read = sub.add_parser("read", parents=[common], help="read every sensor once and print it; writes nothing")
    read.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sub.add_parser("check", parents=[common],
                   help="validate config, read sensors, check InfluxDB; exit 0 if all is well")
    sub.add_parser("health", parents=[common],
                   help="exit 0 while a running collector ticks and its outbox is draining or empty (for HEALTHCHECK)")
    history = sub.add_parser("history", parents=[common], help="print readings from InfluxDB or the local outbox")
    history._negative_number_matcher = re.compile(r"^-\d")  # so `--since -1h` reaches history_query, which explains
    history.add_argument("--since", help="how far back, e.g. 1h, 7d (default 1h)")
    history.add_argument("--start", help="RFC 3339 time or date, e.g. 2026-11-27T08:00:00Z")
    history.add_argument("--stop", help="RFC 3339 time or date (default: now)")
    history.add_argument("--sensor", action="append", default=[], help="only this sensor (repeatable)")
    history.add_argument("--field", choices=HISTORY_FIELDS, default=HISTORY_FIELDS[0],
                         help="which of a reading's values: °C, %%RH or the dew point in °C (default celsius); "
                              "readings without it give no row")
    history.add_argument("--every", help="aggregate to mean/min/max per window, e.g. 15m")
    history.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report = sub.add_parser("report", parents=[common],
                            help="the daily compliance record: per sensor and day, completeness, min/max/mean, MKT, "
                                 "excursions")
    report._negative_number_matcher = re.compile(r"^-\d")  # as history's: `--since -1h` is explained
    report.add_argument("--since", help="how far back, e.g. 7d (default: today in --tz, from its midnight)")
    report.add_argument("--start", help="RFC 3339 time, or a date: its midnight in --tz, e.g. 2026-11-27")
    report.add_argument("--stop", help="RFC 3339 time, or a date: its midnight in --tz (default: now)")
    report.add_argument("--sensor", action="append", default=[], help="only this sensor (repeatable)")
    report.add_argument("--tz", default="UTC", help="the days' time zone, an IANA name such as Europe/Berlin "
                                                    "(default UTC)")
    report.add_argument("--format", choices=REPORT_FORMATS, default=REPORT_FORMATS[0])
    report.add_argument("--output", metavar="FILE", help="write the report to FILE (whole, or not at all); "
                                                         "default: stdout")
    grafana = sub.add_parser(
        "grafana", parents=[common],
        help="render Grafana's alert rules and dashboards from the config's sensors and thresholds")
    grafana.add_argument("--output", metavar="PATH",
                         help="a directory: write every provisioning file under it; a file: the alert rules; "
                              "default: print the alert rules")
    grafana.add_argument("--previous", metavar="DIR",
                         help="the provisioning directory as Grafana last read it: also delete the rules, contact "
                              "point and policies it provisioned that this rendering no longer has")
    discover = sub.add_parser("discover", parents=[common], help="list sensors on this machine as config entries")
    discover.add_argument("--mqtt", type=float, metavar="SECONDS",
                          help="also listen this long on the broker of the config's mqtt: section")
    return parser


def cmd_discover(args) -> int:
    # only `discover` scans sysfs and renders YAML; paho (collector.mqtt) is for --mqtt alone
    from collector.config import DEFAULT_PATH, load_config, named_config_file
    from collector.config_types import SYSFS
    from collector.discover import find_sensors, listen_mqtt, render_yaml, unique_names
    from collector.mqtt import MqttHub

    if args.mqtt is not None and not 0 < args.mqtt <= 3600:
        raise UsageError("discover --mqtt: listen for a number of seconds between 0 and 3600")
    if args.mqtt is None and named_config_file(args.config) is None and not os.path.lexists(DEFAULT_PATH):
        entries = find_sensors(SYSFS)  # a new user, who has no config yet
    else:
        # as every command loads it (a file that is missing or invalid is exit 2), but it may have no sensors yet
        config = load_config(args.config, sensors_required=False)
        hide_secrets(config)
        sysfs = config.collector.sysfs
        if os.path.isdir(sysfs):
            entries = find_sensors(sysfs)
        else:
            missing = (f"collector.sysfs {sysfs} is not a folder: nothing to scan (the kernel mounts sysfs at "
                       f"{SYSFS}; in a container, bind it and set collector.sysfs to where)")
            if args.mqtt is None:
                raise NoSysfs(missing)
            log.warning("%s; listening on MQTT only", missing)  # what the user asked for still answers
            entries = []
        if args.mqtt is not None:
            if config.mqtt is None:
                raise UsageError(f"discover --mqtt: {config.file} has no mqtt: section naming the broker")
            entries = unique_names(entries + listen_mqtt(MqttHub(config.mqtt), args.mqtt))
    print(render_yaml(entries))
    return 0


def cmd_grafana(config: Config, args) -> int:
    from pathlib import Path

    from collector import grafana as grafana_files  # the renderer is a thousand lines only `grafana` runs

    previous = None
    if args.previous is not None:  # read before writing: --previous may be the --output directory itself
        previous, warnings = grafana_files.read_previous(args.previous)
        for warning in warnings:
            log.warning("%s", warning)
    if args.output is None:
        sys.stdout.write(grafana_files.alert_rules_yaml(config, previous))
    elif os.path.isdir(args.output) or not args.output.endswith((".yaml", ".yml")):
        os.makedirs(args.output, exist_ok=True)
        for path in grafana_files.write_provisioning(config, args.output, os.environ, previous):
            log.info("wrote %s", path)
    else:
        Path(args.output).write_text(grafana_files.alert_rules_yaml(config, previous), encoding="utf-8")
    return 0


def cmd_run(config: Config, args) -> int:
    # the scheduler (the `schedule` package), the reader threads and the sender are only `run`'s
    from collector.delivery import Sender
    from collector.influx import connect
    from collector.runner import SHUTDOWN_S, Collector, StopRequest
    from collector.sensors import create_sensor
    from collector.stats import Stats

    stop = StopRequest()
    stop_on_signals(stop)
    lock, outbox = open_outbox_for_run(config)  # may take seconds (quick_check, repair): a signal meanwhile waits
    if stop.requested:  # asked to stop while opening: nothing started yet, nothing to flush
        log.info("%s during start-up, stopping; %d point(s) wait in the outbox", stop.reason, outbox.depth)
        outbox.close()
        lock.release()
        return 0
    stats = Stats()
    shared = sensors_shared(config, stats)
    sensors = {s.name: create_sensor(s, shared) for s in config.sensors}
    shared.start()
    sender = None
    if config.influxdb is not None:
        client = connect(config.influxdb, *tag_keys(config))
        sender = Sender(outbox, client, config.influxdb.batch_size, stats, linger_s=SENDER_LINGER_S)
    else:
        log.info("no influxdb section: readings stay in the outbox (at most %d points)", outbox.max_points)
    collector = Collector(config, sensors, outbox, sender, stats=stats, mqtt=shared.hub)
    collector.run(stop)
    mqtt_stop = threading.Thread(target=shared.stop, name="mqtt stop", daemon=True)
    mqtt_stop.start()
    mqtt_stop.join(max(0.0, min(MQTT_STOP_S, stop.deadline(SHUTDOWN_S + MQTT_STOP_S) - time.monotonic())))
    outbox.close()
    lock.release()
    return 0


def sensors_shared(config: Config, stats: Stats) -> Shared:
    """What the config's sensors share: the counters and, when one reads MQTT, the one broker connection, made here
    for the sensors to use (paho is imported then only: `read` of a config without mqtt sensors never loads it)."""
    from collector.sensors import Shared

    if config.mqtt is None or not any(s.type == "mqtt" for s in config.sensors):
        return Shared(stats)
    from collector.mqtt import MqttHub

    return Shared(stats, MqttHub(config.mqtt, stats))


def open_outbox_for_run(config: Config) -> tuple[OutboxLock, Outbox]:
    """Before anything else: a path `run` can use, no other run on it, and an outbox repaired if it was damaged."""
    from collector.outbox import Outbox, OutboxUnusable, unusable_reason
    from collector.outbox_lock import OutboxLock

    path = config.collector.outbox
    reason = unusable_reason(path)
    if reason:
        raise OutboxUnusable(path, reason)
    try:
        lock = OutboxLock(path)
    except OSError as exc:
        raise OutboxUnusable(path, exc.strerror or str(exc)) from exc
    return lock, Outbox(path, config.collector.max_points, config.collector.max_age, repair=True)


def stop_on_signals(stop: StopRequest) -> None:
    """The first SIGINT, SIGTERM or SIGHUP requests `stop`: `run` shuts down within its bound and exits 0. A second
    exits at once, with 128 + the signal's number as a shell reports it (130 for Ctrl-C): nothing is lost, every
    reading is committed to the outbox before anything else, so the outbox is as a kill would leave it.

    The handler runs between two bytecodes of the main thread, maybe in the middle of a write to stderr: a log call
    there can raise "reentrant call inside BufferedWriter". So it does not log: the first signal is logged by the
    main thread once it sees `stop`; the second is one raw write to fd 2, and the exit comes whatever it raised.
    Nor does it take a lock: it may have interrupted the holder (the main thread in `stop.wait`, or the handler of
    the signal before). It notes the request and writes a byte to a pipe; the thread `signal-relay` reads it and
    sets `stop`."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def relay() -> None:
        while os.read(wake_read, 64):
            stop.set()

    threading.Thread(target=relay, name="signal-relay", daemon=True).start()

    def on_signal(signum, _frame):
        name = signal.Signals(signum).name
        # `timeout`, and a terminal's Ctrl-C, signal the process and then its group: one request arriving twice
        # within moments is not a second request
        if stop.at is not None and stop.clock() - stop.at >= SECOND_SIGNAL_AFTER_S:
            try:
                os.write(2, f"{utc_text(time.time_ns(), milliseconds=True)} WARNING {name} received again: exiting "
                            "at once; what was not delivered waits in the outbox\n".encode())
            finally:
                try:
                    end_commands()  # os._exit skips the atexit handler that ends running commands' process groups
                finally:
                    os._exit(128 + signum)
        stop.note(f"{name} received")
        try:
            os.write(wake_write, b"\0")
        except BlockingIOError:  # the pipe is full of earlier wake-ups: the relay is already woken
            pass

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)


def end_commands() -> None:
    """End the process groups of command sensors still running. Their module is imported (by the sensor registry)
    only for a config with command sensors: without it loaded, no command is running."""
    command = sys.modules.get("collector.sensors.command")
    if command is not None:
        command.end_all()


def read_all(config: Config) -> list[dict]:
    """Read every sensor once, concurrently, each within its timeout, judged as `run` judges a read: the spec's
    `read --json` records."""
    from collector.read_check import judge, measure
    from collector.sensors import create_sensor
    from collector.stats import Stats

    results: dict[str, dict] = {}
    shared = sensors_shared(config, Stats())
    sensors = {s.name: create_sensor(s, shared) for s in config.sensors}
    shared.start()

    def read_one(sensor_config):
        reading, refused = judge(*measure(sensors[sensor_config.name]), sensor_config, time.time_ns())
        record = {"sensor": sensor_config.name, "celsius": None if reading is None else reading.celsius,
                  "error": None if refused is None else refused.reason}
        if sensor_config.measures_humidity:
            record["humidity"] = None if reading is None else reading.humidity
            record["dewpoint"] = None if reading is None else reading.dewpoint
        results[sensor_config.name] = record

    threads = [threading.Thread(target=read_one, args=(s,), daemon=True) for s in config.sensors]
    for thread in threads:
        thread.start()
    # they all read at once; the grace lets a sensor that enforces its own timeout (a command's group ended, TERM
    # then KILL) say why, rather than being reported as merely late
    deadline = time.monotonic() + max((s.timeout for s in config.sensors), default=0.0) + OWN_TIMEOUT_GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    shared.stop()
    return [results.get(s.name) or {"sensor": s.name, "celsius": None,
                                    "error": f"no reading within the {s.timeout:g}s timeout",
                                    **({"humidity": None, "dewpoint": None} if s.measures_humidity else {})}
            for s in config.sensors]


def cmd_read(config: Config, args) -> int:
    records = read_all(config)
    if args.json:
        import json

        print(json.dumps(records, indent=2))
    else:
        width = max(len(r["sensor"]) for r in records)
        for r in records:
            said = [f"{r['celsius']:.2f} °C"] if r["celsius"] is not None else []
            if r.get("humidity") is not None:
                said.append(f"{r['humidity']:.1f} %RH")
            if r.get("dewpoint") is not None:
                said.append(f"dew point {r['dewpoint']:.2f} °C")
            if r["error"] is not None:
                said.append(f"error: {r['error']}")
            print(f"{r['sensor'].ljust(width)}  {', '.join(said)}")
    return 0 if all(r["error"] is None for r in records) else 1


def tag_keys(config: Config) -> tuple[set[str], set[str]]:
    """The configured tag keys the readings carry besides sensor and host, and those the health points carry."""
    return {*config.collector.tags, *(key for sensor in config.sensors for key in sensor.tags)}, \
        set(config.collector.tags)


def cmd_check(config: Config, args) -> int:
    problems = [f"sensor {r['sensor']}: {r['error']}" for r in read_all(config) if r["error"]]
    problems += check_outbox(config.collector.outbox)
    if config.influxdb is None:
        print(f"ok: no influxdb section; readings stay in the outbox {config.collector.outbox}")
    else:
        from collector.influx import connect

        client = connect(config.influxdb, *tag_keys(config))  # api v3 checks its tables' columns
        try:
            problems += client.problems()
        finally:
            client.close()
    for line in problems:
        print(f"problem: {line}")
    if not problems:
        print(f"ok: {config.file} is valid, {len(config.sensors)} sensor(s) read"
              + (f", InfluxDB at {config.influxdb.url} ready" if config.influxdb else ""))
    return 1 if problems else 0


def check_outbox(path: str) -> list[str]:
    """Print the outbox's report, changing nothing; a path `run` could not use, or a damaged file, is a problem."""
    import sqlite3

    from collector.outbox import Outbox, OutboxError, OutboxUnusable, unusable_reason

    reason = unusable_reason(path)
    if reason:
        return [str(OutboxUnusable(path, reason))]
    if not os.path.exists(path):
        return []
    try:
        outbox = Outbox(path, read_only=True)
        outbox.verify()
        print(outbox_report(outbox))
        outbox.close()
    except OutboxError as exc:
        logs.log_traceback(log, exc, "the problem below")
        return [str(exc)]
    except sqlite3.Error as exc:  # e.g. a folder `check` may not create SQLite's -shm file in
        logs.log_traceback(log, exc, "the problem below")
        return [f"collector.outbox: cannot read {path}: {exc}"]
    return []


def outbox_report(outbox: Outbox) -> str:
    """One line on the outbox: depth, oldest point, last delivery and last delivery error."""

    state = outbox.state()
    oldest = outbox.oldest_time_ns()
    parts = [f"outbox: {outbox.depth} point(s) waiting" + (f", oldest from {rfc3339(oldest)}" if oldest else "")]
    if state.get("last_delivery_ns"):
        parts.append(f"last delivery {rfc3339(int(state['last_delivery_ns']))}")
    if state.get("last_delivery_error"):
        parts.append(f"last delivery error at {rfc3339(int(state['last_delivery_error_ns']))}: "
                     f"{state['last_delivery_error']}")
    return "; ".join(parts)


def cmd_health(config: Config, args) -> int:
    from collector.health import judge
    from collector.outbox import Outbox, OutboxError

    if not os.path.exists(config.collector.outbox):
        print(f"unhealthy: no outbox at {config.collector.outbox}; is templog run running?")
        return 1
    try:
        outbox = Outbox(config.collector.outbox, read_only=True)
        verdict = judge(outbox.state(), outbox.depth, config.influxdb is not None, time.time_ns())
    except OutboxError as exc:
        print(f"unhealthy: {exc}")
        logs.log_traceback(log, exc)
        return 1
    print(("healthy: " if verdict.healthy else "unhealthy: ") + verdict.message)
    return 0 if verdict.healthy else 1


def cmd_history(config: Config, args) -> int:
    from collector.history import from_outbox, write
    from collector.influx import InfluxError, connect
    from collector.outbox import Outbox

    query = history_query(args, time.time_ns())
    configured = [s.name for s in config.sensors]
    for name in query.sensors:
        if name not in configured:  # it may have been renamed or removed while its readings remain: look anyway
            log.warning("history: sensor %r is not in %s (its sensors: %s); looking for its readings anyway",
                        name, config.file, ", ".join(configured))
    with contextlib.ExitStack() as cleanup:  # on any exit: the rows' stream first, then what it reads from
        rows: Iterator[Row]
        if config.influxdb is None:
            source = f"the outbox {config.collector.outbox}"
            if os.path.exists(config.collector.outbox):
                outbox = cleanup.enter_context(contextlib.closing(Outbox(config.collector.outbox, read_only=True)))
                rows = cleanup.enter_context(contextlib.closing(from_outbox(outbox, query)))
            else:
                log.info("no outbox at %s: no readings yet", config.collector.outbox)  # and none made for them
                rows = iter(())
        else:
            client = cleanup.enter_context(contextlib.closing(connect(config.influxdb)))
            source = client.describe()
            rows = cleanup.enter_context(contextlib.closing(client.history(query)))
        try:
            count = write(rows, query.columns, args.format, sys.stdout)
            sys.stdout.flush()
        except InfluxError as exc:
            print(f"templog: history: {source}, {query.describe()}: {exc}", file=sys.stderr)
            logs.log_traceback(log, exc)
            return 1
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, and let nothing write there again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    log.info("history: %d row(s) from %s: %s", count, source, query.describe())
    return 0


def history_query(args, now_ns: int) -> HistoryQuery:
    from collector.query import HistoryQuery

    start, stop = time_range(args, now_ns, "history")
    every = _parse_duration(args.every, "--every", "history") if args.every else 0.0
    if args.every and every <= 0:
        raise UsageError("history: --every must be a positive duration such as 15m")
    _check_sensor_names(args.sensor, "history")
    return HistoryQuery(start, stop, tuple(args.sensor), every, args.field)


def time_range(args, now_ns: int, command: str, tz: dt.tzinfo | None = None) -> tuple[int, int]:
    """[start, stop) in ns from `--since` or `--start`/`--stop`, as `command` names them in its messages.

    Without a zone (history) a date is its midnight UTC and the default is the hour before the stop; with one
    (report) a date is its midnight in that zone and the default starts at the midnight of the stop's day."""
    from collector.query import LAST_STOP_NS

    if args.since and (args.start or args.stop):
        raise UsageError(f"{command}: use either --since or --start/--stop")
    stop = _parse_time(args.stop, "--stop", command, tz) if args.stop else now_ns
    if stop > LAST_STOP_NS:
        raise UsageError(f"{command}: the stop, {echo(args.stop)}, is after {rfc3339(LAST_STOP_NS)}: InfluxDB "
                         "stores times as 64-bit nanoseconds, which end there")
    if stop <= 0:
        raise UsageError(f"{command}: the stop, {echo(args.stop)}, is not after {rfc3339(0)}{_in_utc(stop)}")
    if args.start:
        start = _parse_time(args.start, "--start", command, tz)
    elif args.since or tz is None:
        since = args.since or "1h"
        if since.startswith("-"):
            raise UsageError(f"{command}: --since {since}: give how far back as a positive duration, e.g. "
                             f"--since {since[1:]}")
        since_s = _parse_duration(since, "--since", command)
        if since_s * NS_PER_S > stop:
            raise UsageError(f"{command}: --since {since} reaches back before 1970-01-01")
        start = stop - round(since_s * NS_PER_S)
    else:
        start = _day_start_ns(stop - 1, tz)  # a stop at midnight: the whole day before it
    if start < 0:
        # a date in a zone east of UTC (1970-01-01 in Europe/Berlin) is before the epoch too: say when it is in UTC
        raise UsageError(f"{command}: the start, {echo(args.start)}, is before {rfc3339(0)}{_in_utc(start)}")
    if start >= stop:
        raise UsageError(f"{command}: the start must be before the stop")
    return start, stop


def _in_utc(time_ns: int) -> str:
    import datetime as dt

    try:
        moment = dt.datetime.fromtimestamp(time_ns // NS_PER_S, dt.timezone.utc)
    except (ValueError, OverflowError, OSError):  # 0001-01-01 east of UTC is in year 0, which datetime has not
        return ""
    return f" (it is {moment.isoformat()[:19]}Z in UTC)"


def echo(text: str, limit: int = 60) -> str:
    """The user's `text` for a message, cut to `limit` characters: a 5,000-character argument is not echoed whole."""
    return text if len(text) <= limit else text[:limit] + "…"


def _check_sensor_names(names: list[str], command: str) -> None:
    if any(not name.strip() for name in names):
        raise UsageError(f"{command}: --sensor needs a sensor's name (as in the config), got an empty one")


def _parse_duration(text: str, option: str, command: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{command}: {option}: {exc}") from exc


def _parse_time(text: str, option: str, command: str, tz: dt.tzinfo | None) -> int:
    """An RFC 3339 time; one without an offset (a bare date is its midnight) is read in `tz` (without one: UTC), so
    `2026-10-25` and `2026-10-25T00:00` are the same moment."""
    import datetime as dt

    try:
        return parse_time_ns(text, tz or dt.timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"{command}: {option}: invalid time {echo(text)!r} "
                         "(use RFC 3339, e.g. 2026-11-27T08:00:00Z, or a date)") from exc


def _day_start_ns(time_ns: int, tz: dt.tzinfo) -> int:
    import datetime as dt

    from collector.report.days import midnight_ns

    return midnight_ns(dt.datetime.fromtimestamp(time_ns // NS_PER_S, tz).date(), tz)


def cmd_report(config: Config, args) -> int:
    import functools
    import io

    from collector.history import from_outbox
    from collector.influx import InfluxError, connect
    from collector.outbox import Outbox
    from collector.report.days import zone
    from collector.report.figures import figures
    from collector.report.outbox_source import OutboxSource
    from collector.report.output import check_output, write_whole

    if args.output is not None:  # before any query: a report with nowhere to go is not worked out
        if not args.output:
            raise UsageError("report: --output needs a file name")
        check_output(args.output)
    try:
        tz = zone(args.tz)
    except ValueError as exc:
        raise UsageError(f"report: --tz: unknown time zone {echo(args.tz)!r} (an IANA name such as Europe/Berlin "
                         "or UTC)") from exc
    start, stop = time_range(args, time.time_ns(), "report", tz)
    if stop - start > MAX_REPORT_DAYS * DAY_NS:  # a query per day: 1970 to 2262 would be ~106,000 of them
        days = (stop - start) / DAY_NS
        raise UsageError(f"report: the range from {rfc3339(start)} to {rfc3339(stop)} is {days:,.0f} days; "
                         f"a report covers at most {MAX_REPORT_DAYS:,} days (ten years): split it into several "
                         "reports, each with its own --start and --stop")
    limits = report_limits(config, args.sensor)
    if args.format == "html":  # before any query: a missing charting library is said at once
        from collector.report import html

        html.require_charting()
    span = f"from {rfc3339(start)} to {rfc3339(stop)}"
    sensors = "sensor(s) " + ", ".join(limit.name for limit in limits)
    out = io.StringIO()  # the report is small (days x sensors rows): written whole, or not at all
    with contextlib.ExitStack() as cleanup:
        if config.influxdb is None:
            described = f"the outbox {config.collector.outbox}"
            if not os.path.exists(config.collector.outbox):
                raise NoReadings(f"no readings of {sensors} {span}: there is no outbox at {config.collector.outbox} "
                                 "yet")
            outbox = cleanup.enter_context(contextlib.closing(Outbox(config.collector.outbox, read_only=True)))
            source: Any = OutboxSource(outbox)
            history: Any = functools.partial(from_outbox, outbox)
        else:
            source = cleanup.enter_context(contextlib.closing(connect(config.influxdb)))
            described = source.describe()
            history = source.history
        try:
            rows = list(figures(source, limits, start, stop, tz))
            if not any(row.readings for row in rows):
                raise NoReadings(f"no readings of {sensors} {span} in {described}")
            if args.format == "html":
                html.write_html(rows, limits, history, start, stop, args.tz, described, out)
            else:
                from collector.report.formats import write

                write(rows, limits, args.format, out)
        except InfluxError as exc:
            print(f"templog: report: {described}, {sensors} {span}: {exc}", file=sys.stderr)
            logs.log_traceback(log, exc)
            return 1
    if args.output is not None:
        write_whole(args.output, out.getvalue())
    else:
        try:
            sys.stdout.write(out.getvalue())
            sys.stdout.flush()
        except BrokenPipeError:  # as history: the reader went away; let nothing write there again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    log.info("report: %d row(s) of %s %s from %s", len(rows), sensors, span, described)
    return 0


def report_limits(config: Config, names: list[str]) -> tuple[SensorLimits, ...]:
    """The sensors the report is about, by name: those named (each must be configured: its interval gives the
    ticks), else every configured one."""
    from collector.report import SensorLimits

    _check_sensor_names(names, "report")
    configured = {s.name: s for s in config.sensors}
    for name in names:
        if name not in configured:
            raise UsageError(f"report: --sensor {name}: no such sensor in {config.file} (its sensors: "
                             f"{', '.join(sorted(configured))}); the report needs a sensor's interval and thresholds")
    chosen = sorted(set(names) or configured)
    return tuple(SensorLimits(name, configured[name].interval, configured[name].min, configured[name].max)
                 for name in chosen)


COMMANDS = {"run": cmd_run, "read": cmd_read, "check": cmd_check, "health": cmd_health, "history": cmd_history,
            "report": cmd_report, "grafana": cmd_grafana}

"""`templog report`'s command line as a real process: where --output writes (a symlink's file, a FIFO, a device, a
regular file replaced whole), offset-less times read in --tz, the longest range, and messages that stay short and
true."""

import json
import os
import stat

import pytest

from cli import templog
from collector.outbox import Outbox
from collector.ticks import parse_time_ns
from temperature_points import temperature
from test_report import FRIDGE, fill, report

RANGE = ("--start", "2026-03-10", "--stop", "2026-03-12")


def expected_text(config) -> str:
    done = report(config, *RANGE, "--format", "json")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_symlink_is_followed_and_the_file_it_points_to_replaced(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    real = tmp_path / "reports" / "march.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    done = report(config, *RANGE, "--format", "json", "--output", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == expected_text(config)
    assert sorted(p.name for p in real.parent.iterdir()) == ["march.json"]  # no temporary file left


def test_a_fifo_is_written_straight_through_to_its_reader(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there: the report's open does not wait
    try:
        done = report(config, *RANGE, "--format", "json", "--output", str(fifo))
        assert done.returncode == 0, done.stderr
        received = b""
        while chunk := os.read(reader, 65536):  # the report is far below a pipe's buffer; then EOF: it closed
            received += chunk
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received.decode() == expected_text(config)


def test_dev_stdout_is_written_to_not_replaced(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, *RANGE, "--format", "json", "--output", "/dev/stdout")
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected_text(config)
    assert os.path.islink("/dev/stdout")


def test_a_full_device_is_one_line_naming_it_and_exit_1(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, *RANGE, "--output", "/dev/full")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "templog: report: --output /dev/full: No space left on device\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_regular_file_keeps_its_permission_bits_and_the_temporary_file_is_unique(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    (tmp_path / "report.json.tmp").mkdir()  # another report's, say: a fixed name beside it would collide
    done = report(config, *RANGE, "--format", "json", "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text() == expected_text(config)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "data", "report.json", "report.json.tmp"]


def test_a_new_file_gets_the_umask_s_mode(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    target = tmp_path / "new.json"
    umask = os.umask(0o027)
    try:
        done = report(config, *RANGE, "--format", "json", "--output", str(target))
    finally:
        os.umask(umask)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # as `> new.json` in a shell would make it, not mkstemp's 0600


@pytest.mark.parametrize("output, code, message", [
    ("", 2, "templog: report: --output needs a file name\n"),
    ("{tmp_path}", 1, "templog: report: --output {tmp_path}: is a directory; give a file's name\n"),
    ("{tmp_path}/nowhere/report.json", 1, "templog: report: --output {tmp_path}/nowhere/report.json: no directory "
                                          "{tmp_path}/nowhere to write it in\n"),
])
def test_an_output_that_cannot_be_a_file_is_one_line_before_any_query(tmp_path, output, code, message):
    """No file name at all is bad usage (the spec's 2); a directory, or one that is not there, is the file system as it
    is now, like any path that cannot be written (1): a share mounted later makes the same command right."""
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, *RANGE, "--output", output.format(tmp_path=tmp_path))
    assert done.returncode == code and done.stdout == ""
    assert done.stderr == message.format(tmp_path=tmp_path)


def fill_berlin_autumn(tmp_path):
    """Readings on Europe/Berlin's 2026-10-25 (25 hours: CEST until 03:00, then CET): one at 00:30 local, which is
    22:30 UTC the day before, and one at 23:30 local, which is 22:30 UTC."""
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature("fridge", parse_time_ns("2026-10-24T22:30:00Z"), 5.0),
                   temperature("fridge", parse_time_ns("2026-10-25T22:30:00Z"), 6.0)])
    outbox.close()
    config = tmp_path / "config.yaml"
    config.write_text("collector: {outbox: data/outbox.sqlite, interval: 10s}\n"
                      "sensors:\n  - {name: fridge, type: simulated, min: 2, max: 8}\n")
    return config


@pytest.mark.parametrize("start, stop", [("2026-10-25T00:00", "2026-10-26T00:00"),
                                         ("2026-10-25 00:00:00", "2026-10-26 00:00:00"),
                                         ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")])
def test_a_time_without_an_offset_is_read_in_tz_as_a_date_is(tmp_path, start, stop):
    config = fill_berlin_autumn(tmp_path)
    by_date = json.loads(report(config, "--tz", "Europe/Berlin", "--start", "2026-10-25", "--stop", "2026-10-26",
                                "--format", "json").stdout)
    done = report(config, "--tz", "Europe/Berlin", "--start", start, "--stop", stop, "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows == by_date
    assert [(r["day"], r["readings"], r["expected"]) for r in rows] == [("2026-10-25", 2, 25 * 360)]


def test_history_keeps_reading_an_offset_less_time_as_utc(tmp_path):
    config = fill_berlin_autumn(tmp_path)
    done = templog("history", "-c", str(config), "--start", "2026-10-24T22:30", "--stop", "2026-10-24T22:31",
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [row["time"] for row in json.loads(done.stdout)] == ["2026-10-24T22:30:00Z"]


def test_a_range_over_ten_years_is_refused_naming_the_limit(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, "--start", "1970-01-02", "--stop", "2262-04-10")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("templog: report: the range from 1970-01-02T00:00:00Z to 2262-04-10T00:00:00Z is 106,749 "
                           "days; a report covers at most 3,660 days (ten years): split it into several reports, "
                           "each with its own --start and --stop\n")


def test_ten_years_is_still_a_report(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, "--sensor", "fridge", "--start", "2016-03-12", "--stop", "2026-03-12", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 + 3652  # the header, a row per day


def test_a_long_tz_is_not_echoed_whole(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, "--tz", "A" * 5000)
    assert done.returncode == 2
    assert done.stderr == (f"templog: report: --tz: unknown time zone '{'A' * 60}…' (an IANA name such as "
                           "Europe/Berlin or UTC)\n")


def test_a_start_before_the_epoch_in_its_zone_says_when_that_is_in_utc(tmp_path):
    config = fill(tmp_path, {"fridge": FRIDGE})
    done = report(config, "--start", "1970-01-01", "--stop", "1970-01-02", "--tz", "Europe/Berlin")
    assert done.returncode == 2
    assert done.stderr == ("templog: report: the start, 1970-01-01, is before 1970-01-01T00:00:00Z (it is "
                           "1969-12-31T23:00:00Z in UTC)\n")

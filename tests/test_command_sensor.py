"""Command sensors on real processes: no process of a command outlives its read or templog, output is bounded,
and the output parser gives a number or a clear refusal for any input."""

import json
import os
import re
import subprocess
import sys
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from cli import ROOT, start_run, stop_run, templog, wait_until
from collector.sensors import SensorError, SettingError
from collector.sensors.command import FIRST_NUMBER, OUTPUT_LIMIT, Settings, parse_output


def marker() -> str:
    """A sleep duration no other process on the machine uses, to find a command's processes in /proc."""
    return f"{100 + uuid.uuid4().int % 10**6 / 10**7:.7f}"


def processes_with(*markers: str) -> list[str]:
    """The command lines of live processes that mention a marker (a zombie's cmdline is empty: it is not found)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmdline for m in markers):
            found.append(f"{pid}: {cmdline}")
    return found


def leftover_commands(**commands: str) -> tuple[str, dict[str, str]]:
    """Sensors whose commands would leave processes behind, each marked; the config's sensors part and markers."""
    marks = {name: marker() for name in ("ignores_term", "timeout", "pipeline", "background")}
    entries = {
        # Ended by SIGKILL after the grace. First, so that `read` (which waits for each sensor in turn, each up
        # to its timeout) exits during that grace: only templog's exit can then end it.
        "ignores_term": f"trap '' TERM; sleep {marks['ignores_term']}",
        "timeout": f"sleep {marks['timeout']}",
        "pipeline": f"sleep {marks['pipeline']} | cat",
        "background": f"sleep {marks['background']} & echo 21",
        **commands,
    }
    sensors = "".join(f"  - {{name: {name}, type: command, command: {json.dumps(command)}}}\n"
                      for name, command in entries.items())
    return sensors, marks


def test_read_leaves_no_process_behind_and_a_background_child_does_not_cost_the_reading(write_config):
    sensors, marks = leftover_commands()
    config = write_config(f"collector: {{timeout: 1s, outbox: outbox.sqlite}}\nsensors:\n{sensors}")
    done = templog("read", "--json", "-c", str(config))
    wait_until(lambda: not processes_with(*marks.values()), timeout=5, what="the commands' processes to end")
    records = {r["sensor"]: r for r in json.loads(done.stdout)}
    assert records["background"] == {"sensor": "background", "celsius": 21.0, "error": None}
    for name in ("timeout", "pipeline"):
        assert records[name]["error"] == "command did not finish within 1s"
    assert records["ignores_term"]["celsius"] is None


def test_run_stopped_by_sigterm_leaves_no_process_behind(write_config):
    """Every read's group ends with its read; one still in flight at SIGTERM ends with templog."""
    sensors, marks = leftover_commands(not_utf8=r"printf '\377 21\n'")
    config = write_config(f"collector: {{interval: 2s, timeout: 1s, outbox: outbox.sqlite}}\nsensors:\n{sensors}")
    running = start_run(config)
    wait_until(lambda: "background: 21.00 °C" in running.log and "timeout: read failed" in running.log
               and "not_utf8: read failed" in running.log, what="the commands' first reads")
    wait_until(lambda: "ignores_term: read failed" in running.log, what="the read of a command ignoring SIGTERM")
    wait_until(lambda: processes_with(marks["timeout"]), what="the next read of the timing-out command")
    code, log = stop_run(running)
    assert code == 0
    assert "not_utf8: read failed: output is not UTF-8 text" in log
    assert "Traceback" not in log
    wait_until(lambda: not processes_with(*marks.values()), timeout=5, what="the commands' processes to end")


def peak_rss_kib(tmp_path, *args: str) -> tuple[int, str]:
    """Run templog to its end: its peak resident memory in KiB (from wait4, which reaps it) and its stdout."""
    out = tmp_path / "stdout"
    with open(out, "w") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=ROOT, stdout=stdout,
                                   stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait for it again
    return usage.ru_maxrss, out.read_text()


def test_endless_and_huge_output_is_refused_and_memory_stays_bounded(write_config, tmp_path):
    small = write_config("sensors:\n  - {name: small, type: command, command: 'echo 21'}\n", "small.yaml")
    huge = write_config("sensors:\n"
                        "  - {name: endless, type: command, command: 'yes 21'}\n"
                        "  - {name: huge, type: command, command: 'yes 21 | head -c 100000000'}\n"
                        "  - {name: noisy, type: command, command: 'yes noise | head -n 10000000 >&2; "
                        "echo no sensor on bus 1 >&2; exit 3'}\n", "huge.yaml")
    baseline, _ = peak_rss_kib(tmp_path, "read", "--json", "-c", str(small))
    peak, stdout = peak_rss_kib(tmp_path, "read", "--json", "-c", str(huge))
    records = {r["sensor"]: r for r in json.loads(stdout)}
    for name in ("endless", "huge"):
        assert records[name]["error"] == (f"command printed more than {OUTPUT_LIMIT // 1024} KiB; "
                                          "refused (not a reading)")
    assert records["noisy"]["error"] == "command exited with status 3: no sensor on bus 1"  # 60 MB of stderr before
    assert peak < baseline + 10 * 1024, f"peak RSS {peak} KiB, against {baseline} KiB for one small read"


# The output parser: any output and any pattern the config accepts give a finite float or a SensorError.

PATTERN_PARTS = st.sampled_from([r"(\d+)", r"(\S+)", r"(.*)", r"([-+0-9.eE_]+)", r"(\d+)?", r"(x)?", r"(nan|inf)",
                                 r"([0-9]{300,})", r"(\w*)", FIRST_NUMBER, r"(\d+(?:\.\d+)?)"])


@st.composite
def patterns(draw) -> re.Pattern:
    group = draw(PATTERN_PARTS)
    return re.compile(re.escape(draw(st.text(max_size=3))) + group + re.escape(draw(st.text(max_size=3))))


OUTPUTS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode()),
    st.from_regex(r"\A[-+]?[0-9]{1,400}(\.[0-9]{0,400})?([eE][-+]?[0-9]{1,6})?\Z").map(str.encode),  # 1e999: inf
    st.sampled_from([b"nan", b"inf", b"-Infinity", b"1" * 5000, b"1e999", b"temp=\xff21", b"\xef\xbb\xbf21"]),
)


@settings(max_examples=300, deadline=None)
@given(OUTPUTS, patterns())
def test_any_output_gives_a_finite_number_or_a_sensor_error(output, pattern):
    try:
        value = parse_output(output, pattern)
    except SensorError as exc:
        assert str(exc)
    else:
        assert isinstance(value, float) and abs(value) < float("inf")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), st.sampled_from(["(a{4294967296})", "(" * 1000 + ")" * 1000, "((a)", "a"])))
def test_any_pattern_is_accepted_or_refused_as_a_setting(pattern):
    try:
        Settings(command="true", pattern=pattern)
    except SettingError as exc:
        assert exc.key == "pattern"

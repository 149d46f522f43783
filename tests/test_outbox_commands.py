"""The outbox as the commands use it, on real processes: one `run` per outbox, paths no outbox can live at refused
by `check` and `run` alike, and `history`, `check`, `health` that never change (or create) an outbox."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from cli import start_run, stop_run, templog, wait_until

LOCAL = "collector: {interval: 200ms}\nsensors:\n  - {name: s0, type: simulated}\n"


def templog_each(*argvs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """Several templog commands at once (independent of each other): the suite stays fast."""
    with ThreadPoolExecutor(len(argvs)) as pool:
        return list(pool.map(lambda argv: templog(*argv, timeout=30), argvs))


def test_a_second_run_on_the_same_outbox_exits_1_naming_it_and_the_pid_of_the_first(write_config, tmp_path):
    config = write_config(LOCAL)
    outbox_path = tmp_path / "data/outbox.sqlite"
    first = start_run(config)
    wait_until(lambda: "collecting" in first.log, what="the first run to start")
    second = templog("run", "-c", str(config), timeout=30)
    assert second.returncode == 1
    assert second.stderr.splitlines() == [f"templog: run: the outbox {outbox_path} is in use by another templog run "
                                          f"(pid {first.pid}); one run per outbox"]
    commands = ("read", "check", "health", "history")  # these take no lock
    for command, done in zip(commands, templog_each(*((c, "-c", str(config)) for c in commands)), strict=True):
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    (tmp_path / "another-name.sqlite").symlink_to(outbox_path)  # the same outbox under another name
    linked = write_config(LOCAL.replace("{interval: 200ms}", "{interval: 200ms, outbox: another-name.sqlite}"),
                          name="linked.yaml")
    through_link = templog("run", "-c", str(linked), timeout=30)
    assert through_link.returncode == 1 and f"(pid {first.pid})" in through_link.stderr, through_link.stderr
    first.kill()  # SIGKILL: the kernel drops the lock with the process
    third = start_run(config)
    wait_until(lambda: "collecting" in third.log, what="a run after kill -9")
    code, log = stop_run(third)
    assert code == 0, log


@pytest.fixture
def unwritable_directory(tmp_path):
    """A folder nobody may create files in: mode 0500 and, for root (whom modes do not bind), immutable."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o500)
    immutable = os.access(path, os.W_OK)
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o700)


def unusable_paths(tmp_path, unwritable_directory) -> dict[str, tuple[str, str]]:
    """name -> (outbox path, the reason `run` and `check` give)."""
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "loop.sqlite").symlink_to("loop.sqlite")
    (tmp_path / "dangling.sqlite").symlink_to("nowhere/outbox.sqlite")
    long_name = "o" * 250 + ".sqlite"
    return {
        "a symlink loop": (f"{tmp_path}/loop.sqlite", "it is a symbolic link to nothing, or a loop of them"),
        "a dangling symlink": (f"{tmp_path}/dangling.sqlite", "it is a symbolic link to nothing, or a loop of them"),
        "a name too long": (f"{tmp_path}/{long_name}", "its file name is too long"),
        "under a regular file": (f"{tmp_path}/a-file/outbox.sqlite", f"{tmp_path}/a-file is not a directory"),
        "in /proc": ("/proc/templog/outbox.sqlite", "cannot create files in /proc"),
        "a directory": (f"{tmp_path}/a-folder", "it is a directory"),
        "in an unwritable directory": (f"{unwritable_directory}/outbox.sqlite",
                                       f"cannot create files in {unwritable_directory}"),
    }


def test_check_and_run_refuse_an_outbox_path_run_cannot_use(write_config, tmp_path, unwritable_directory):
    cases = unusable_paths(tmp_path, unwritable_directory)
    configs = [write_config(f"collector: {{outbox: '{path}'}}\nsensors:\n  - {{name: s0, type: simulated}}\n",
                            name=f"config{i}.yaml") for i, (path, _) in enumerate(cases.values())]
    done = templog_each(*(("check", "-c", str(c)) for c in configs), *(("run", "-c", str(c)) for c in configs))
    checks, runs = done[:len(configs)], done[len(configs):]
    for (name, (path, reason)), checked, ran in zip(cases.items(), checks, runs, strict=True):
        assert checked.returncode == 1, name
        assert f"problem: collector.outbox: cannot use {path}: {reason}" in checked.stdout, (name, checked.stdout)
        assert ran.returncode == 1, name
        [line] = ran.stderr.splitlines()
        assert line.startswith(f"templog: run: collector.outbox: cannot use {path}: {reason}"), (name, line)


def test_history_check_and_health_change_nothing_in_an_outbox_left_by_a_kill(write_config, tmp_path):
    """After kill -9 the last commits are in the -wal file only: a read-write open would checkpoint them into the
    main file and remove the -wal; a read-only one reads them where they are."""
    config = write_config(LOCAL)
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    wait_until(lambda: running.log.count("°C at") >= 3, what="readings")
    running.kill()
    data_files = (outbox_path, tmp_path / "data/outbox.sqlite-wal")  # (the -shm is SQLite's shared index, not data)
    before = [p.read_bytes() for p in data_files]
    assert len(before[1]) > 0
    history, check, health = templog_each(("history", "-c", str(config), "--since", "1h", "--format", "json"),
                                          ("check", "-c", str(config)), ("health", "-c", str(config)))
    assert history.returncode == 0 and history.stdout.count('"sensor": "s0"') >= 3
    assert check.returncode == 0, check.stdout
    assert health.stdout.startswith(("healthy: ", "unhealthy: ")) and "damaged" not in health.stdout
    assert [p.read_bytes() for p in data_files] == before


def test_history_without_an_outbox_prints_no_readings_and_creates_none(write_config, tmp_path):
    config = write_config(LOCAL)
    done = templog("history", "-c", str(config), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data").exists()
    assert done.stdout.strip() == "[]"
    assert f"no outbox at {tmp_path}/data/outbox.sqlite" in done.stderr

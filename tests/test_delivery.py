"""The sender against a scripted writer: which points go, in what order, what waits, and what is logged."""

import logging
import threading

import pytest

from cli import wait_until
from collector.delivery import ANSWERED_BUSY_CAP_S, PROBE_EVERY_S, RETRY_AFTER_CAP_S, Backoff, Sender
from collector.influx.errors import (
    Expired,
    QueryFailed,
    Rejected,
    ServerError,
    Throttled,
    TooLarge,
    Unauthorized,
    Unreachable,
)
from collector.outbox import Outbox
from collector.stats import Stats
from outbox_rows import rejected
from temperature_points import temperature


class ScriptedWriter:
    """Answers each write from a script of errors (None = accepted); refuses any batch holding a poisoned line."""

    def __init__(self, script=(), poisoned=(), max_batch=None, probes=()):
        self.script = list(script)
        self.poisoned = set(poisoned)
        self.max_batch = max_batch
        self.probes = list(probes)  # what each probe answers; then: it answers
        self.accepted: list[str] = []
        self.calls = 0
        self.probed = 0

    def write(self, lines):
        self.calls += 1
        if self.script:
            error = self.script.pop(0)
            if error is not None:
                raise error
        if self.max_batch and len(lines) > self.max_batch:
            raise TooLarge(413, "request too large")
        if self.poisoned & set(lines):
            raise Rejected(400, "field type conflict")
        self.accepted.extend(lines)

    def ensure_retention(self):
        return "ok"

    def probe(self, timeout):
        self.probed += 1
        return self.probes.pop(0) if self.probes else True


def filled_outbox(tmp_path, n):
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    points = [temperature("a", i, i + 0.5) for i in range(n)]
    outbox.append(points)
    return outbox, [point.line() for point in points]


def test_drain_delivers_everything_in_order_in_batches(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 25)
    writer = ScriptedWriter()
    stats = Stats()
    assert Sender(outbox, writer, 10, stats).drain() == 25
    assert writer.accepted == lines and writer.calls == 3
    assert outbox.depth == 0 and stats.get("points_delivered") == 25


def test_a_failed_write_keeps_the_batch(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 5)
    writer = ScriptedWriter([ServerError(503, "busy")])
    sender = Sender(outbox, writer, 10, Stats())
    with pytest.raises(ServerError):
        sender.drain()
    assert outbox.depth == 5
    sender.drain()
    assert writer.accepted == lines


def test_a_malformed_point_is_isolated_and_its_neighbours_delivered(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 16)
    writer = ScriptedWriter(poisoned=[lines[5], lines[11]])
    stats = Stats()
    Sender(outbox, writer, 16, stats).drain()
    assert writer.accepted == [line for i, line in enumerate(lines) if i not in (5, 11)]
    assert [line for line, _ in rejected(outbox)] == [lines[5], lines[11]]
    assert stats.get("points_rejected") == 2 and outbox.depth == 0


def test_too_large_batches_are_split(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 20)
    writer = ScriptedWriter(max_batch=6)
    Sender(outbox, writer, 20, Stats()).drain()
    assert writer.accepted == lines


def run_until_drained(sender):
    """Run the sender loop with instant waits; it stops once it goes idle after a successful drain."""
    stop = threading.Event()
    waits = []

    class InstantStop:
        def is_set(self):
            return stop.is_set()

        def wait(self, seconds):
            waits.append(seconds)
            return False

    sender.wake = type("Wake", (), {"wait": lambda self, t: stop.set(), "clear": lambda self: None})()
    sender.run(InstantStop())
    return waits


def test_one_error_line_per_episode_however_the_messages_vary(tmp_path, caplog):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([ServerError(503, f"busy, request {i}") for i in range(5)]
                            + [Unauthorized(401, "unauthorized"), None])
    with caplog.at_level(logging.INFO):
        run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(rng=lambda: 0.0)))
    assert caplog.text.count("delivery to InfluxDB failed") == 2  # the 503 episode, then the 401 one
    assert "delivery to InfluxDB no longer fails with HTTP 503 (after 5 occurrence(s))" in caplog.text
    assert ("delivery resumed (it had failed with HTTP 401); 3 point(s) to deliver (after 1 occurrence(s))"
            in caplog.text)
    assert caplog.text.count("delivered a backlog of 3 point(s), waiting since") == 1
    assert writer.accepted == lines


def test_a_long_failure_episode_is_logged_every_ten_minutes_with_a_count(tmp_path, caplog, monkeypatch):
    outbox, lines = filled_outbox(tmp_path, 3)
    now = [0.0]
    # a failed attempt a minute for 25 minutes, as a capped backoff gives
    writer = ScriptedWriter([Unreachable("http://influx", OSError(f"refused (minute {minute})"))
                             for minute in range(25)] + [None])
    sender = Sender(outbox, writer, 10, Stats(), Backoff(base=60, cap=60, rng=lambda: 1.0), log_clock=lambda: now[0])
    original = writer.write

    def write_a_minute_later(lines):
        now[0] += 60
        return original(lines)

    monkeypatch.setattr(writer, "write", write_a_minute_later)
    with caplog.at_level(logging.INFO):
        run_until_drained(sender)
    failed = [r.getMessage() for r in caplog.records if "delivery to InfluxDB failed" in r.getMessage()]
    assert len(failed) == 3  # minute 1, then after 10 and 20 minutes, each with how many attempts it stands for
    assert failed[1].endswith("(minute 10) (10 time(s) since the last report)")
    assert failed[2].endswith("(minute 20) (10 time(s) since the last report)")
    assert ("delivery resumed (it had failed with network errors); 3 point(s) to deliver (after 25 occurrence(s))"
            in caplog.text)


def test_after_no_answer_a_long_backoff_is_cut_short_by_a_probe_that_answers(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([Unreachable("http://influx", OSError("refused"))], probes=[False, False, True])
    waits = run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(base=120, cap=120, rng=lambda: 1.0)))
    assert waits == [PROBE_EVERY_S] * 3  # probed every few seconds; the third answered: retried then, not at 120 s
    assert writer.probed == 3 and writer.accepted == lines


@pytest.mark.parametrize("error", [Unauthorized(401, "unauthorized"),
                                   ServerError(503, "busy", retry_after=30.0)],
                         ids=["answered", "retry-after"])
def test_no_probe_when_influxdb_answered_or_asked_to_wait(tmp_path, error):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([error])
    waits = run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(base=120, cap=120, rng=lambda: 1.0)))
    assert writer.probed == 0 and len(waits) == 1 and waits[0] >= 30


def test_run_retries_with_backoff_honouring_retry_after_then_resumes(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([Throttled(429, "too many requests", retry_after=7.0),
                             Unreachable("http://influx", OSError("refused")), None])
    waits = run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(base=1, cap=60, rng=lambda: 1.0)))
    assert waits == [7.0, 2.0]  # Retry-After honoured; then exponential (2nd failure: 2 s)
    assert writer.accepted == lines


def test_backoff_is_exponential_capped_and_jittered():
    low = Backoff(base=1, cap=60, rng=lambda: 0.0)
    high = Backoff(base=1, cap=60, rng=lambda: 1.0)
    assert [high.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [low.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]
    assert high.delay(20) == 60
    assert high.delay(100_000) == 60  # a day-long outage must not overflow the exponent
    assert low.delay(1, retry_after=30) == 30


class RetentionWriter(ScriptedWriter):
    """Like InfluxDB 1.x: points before `cutoff` are dropped with a partial-write 400 whose message hides any
    malformed point in the same batch."""

    def __init__(self, cutoff, poisoned=()):
        super().__init__(poisoned=poisoned)
        self.cutoff = cutoff

    def write(self, lines):
        self.calls += 1
        expired = [line for line in lines if int(line.rsplit(" ", 1)[1]) < self.cutoff]
        good = [line for line in lines if line not in expired and line not in self.poisoned]
        self.accepted.extend(good)
        if expired:
            raise Expired(400, f"partial write: points beyond retention policy dropped={len(expired)}",
                          dropped=len(expired))
        if len(good) < len(lines):
            raise Rejected(400, "unable to parse")


def test_points_beyond_retention_do_not_block_the_outbox(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 4)
    stats = Stats()
    Sender(outbox, RetentionWriter(cutoff=10), 10, stats).drain()
    assert outbox.depth == 0 and stats.get("points_beyond_retention") == 4 and stats.get("points_delivered") == 0


def test_a_malformed_point_hidden_behind_a_retention_message_is_still_set_aside(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 8)
    writer = RetentionWriter(cutoff=2, poisoned=[lines[5]])
    stats = Stats()
    Sender(outbox, writer, 8, stats).drain()
    assert [line for line, _ in rejected(outbox)] == [lines[5]]
    assert set(writer.accepted) == {lines[i] for i in (2, 3, 4, 6, 7)}
    assert stats.get("points_beyond_retention") == 2 and stats.get("points_delivered") == 5


class RefusingRetention(ScriptedWriter):
    """A writer whose retention call fails with each of `failures` in turn, then succeeds."""

    def __init__(self, failures):
        super().__init__()
        self.failures = list(failures)
        self.retention_calls = 0

    def ensure_retention(self):
        self.retention_calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


@pytest.mark.parametrize("refusal", [Rejected(422, "invalid retention rule"),
                                     QueryFailed("not implemented: ALTER RETENTION POLICY"),
                                     ValueError("Expecting value: line 1 column 1 (char 0)")],
                         ids=["v2-422", "v1-influxql-error", "proxy-page"])
def test_a_refused_retention_is_logged_once_and_delivery_goes_ahead(tmp_path, caplog, refusal):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = RefusingRetention([refusal])
    with caplog.at_level(logging.INFO):
        run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(rng=lambda: 0.0)))
    assert writer.accepted == lines and outbox.depth == 0
    assert writer.retention_calls == 1  # not retried before every drain: at the next start
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "setting the retention (influxdb.retention) was refused, delivering anyway" in error.getMessage()
    assert str(refusal) in error.getMessage()


def test_a_retention_failing_like_the_writes_is_retried_with_delivery(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = RefusingRetention([Unreachable("http://influx", OSError("refused")),
                                ServerError(503, "busy")])
    run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(rng=lambda: 0.0)))
    assert writer.retention_calls == 3 and writer.accepted == lines


def test_while_influxdb_answers_5xx_or_429_retries_stay_within_a_few_seconds(tmp_path):
    """However long InfluxDB answers 503 (or 429), the next attempt is never more than ANSWERED_BUSY_CAP_S away, so
    delivery resumes within 10 s of it taking writes again; and never faster than half that, not to hammer it."""
    outbox, lines = filled_outbox(tmp_path, 3)
    errors = [ServerError(503, "busy")] * 15 + [Throttled(429, "too many requests")] * 5
    for jitter in (lambda: 0.0, lambda: 1.0):
        writer = ScriptedWriter(list(errors))
        waits = run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(rng=jitter)))
        assert len(waits) == 20 and max(waits) <= ANSWERED_BUSY_CAP_S < 10
        assert min(waits[5:]) >= ANSWERED_BUSY_CAP_S / 2  # once grown: one request per several seconds
        assert writer.accepted == lines and writer.probed == 0
        outbox.append([temperature("a", i, i + 0.5) for i in range(len(lines))])


def test_a_retry_after_is_honoured_up_to_its_cap(tmp_path):
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([Throttled(429, "too many requests", retry_after=3600.0)])
    waits = run_until_drained(Sender(outbox, writer, 10, Stats(), Backoff(rng=lambda: 1.0)))
    assert waits == [RETRY_AFTER_CAP_S] and writer.accepted == lines


def test_an_outbox_emptied_by_its_bounds_during_an_outage_does_not_end_it(tmp_path, caplog, monkeypatch):
    """Nothing delivered is no sign InfluxDB is back: the episode and its error stay until a write succeeds."""
    outbox, lines = filled_outbox(tmp_path, 3)
    writer = ScriptedWriter([Unreachable("http://influx", OSError("refused"))])
    original = writer.write

    def fail_then_lose_everything_to_the_bound(lines):
        try:
            original(lines)
        finally:
            outbox.acknowledge(outbox.oldest(100))  # as max_age would drop them meanwhile

    monkeypatch.setattr(writer, "write", fail_then_lose_everything_to_the_bound)
    sender = Sender(outbox, writer, 10, Stats(), Backoff(rng=lambda: 0.0))
    with caplog.at_level(logging.INFO):
        run_until_drained(sender)
    assert "delivery resumed" not in caplog.text and "delivered a backlog" not in caplog.text
    assert outbox.state()["last_delivery_error"].startswith("cannot reach http://influx")
    outbox.append([temperature("a", 0, 0.5)])  # the next reading, and InfluxDB answers
    with caplog.at_level(logging.INFO):
        run_until_drained(sender)
    assert "delivery resumed (it had failed with network errors)" in caplog.text
    assert outbox.state()["last_delivery_error"] == ""


def outbox_workers():
    return [t for t in threading.enumerate() if t.name.startswith("outbox-worker")]


def test_the_last_drain_ends_the_outbox_worker_thread(tmp_path):
    """The worker is not a daemon: left running, the interpreter would join it at exit."""
    outbox, lines = filled_outbox(tmp_path, 25)
    before = set(outbox_workers())
    sender = Sender(outbox, ScriptedWriter(), 10, Stats())
    sender.drain()
    assert set(outbox_workers()) - before  # it did work
    sender.last_drain(deadline=float("inf"))
    wait_until(lambda: not set(outbox_workers()) - before, timeout=5, what="the outbox worker to end")

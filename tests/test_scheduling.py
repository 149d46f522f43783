"""The no-drift property, proved on an injected clock over simulated days."""

from itertools import pairwise

from collector.scheduling import WallClockScheduler
from collector.ticks import after_clock_jump, next_tick_after, tick_to_run

S = 1_000_000_000
START = 1_764_201_603 * S + 123_456_789  # an arbitrary, unaligned moment


class FakeClock:
    def __init__(self, now_ns: int):
        self.now = now_ns

    def __call__(self) -> int:
        return self.now


def run_for(scheduler: WallClockScheduler, clock: FakeClock, seconds: int) -> None:
    """Drive the scheduler as the real loop does: sleep until the next due tick, run what is pending."""
    end = clock.now + seconds * S
    while True:
        idle = scheduler.idle_seconds
        assert idle is not None, "the scheduler has no job"
        wake = clock.now + max(0, round(idle * S))
        if wake >= end:
            break
        clock.now = wake
        scheduler.run_pending()


def test_24_hours_at_10s_is_exactly_8640_aligned_ticks_even_when_each_run_takes_time():
    clock = FakeClock(START)
    scheduler = WallClockScheduler(clock)
    ticks = []

    def slow_job(tick_ns, skipped):
        ticks.append((tick_ns, skipped))
        clock.now += 3 * S + 7_654_321  # each run takes 3.0077 s: stock `schedule` would drift by that every tick

    scheduler.every(10).do(slow_job)
    run_for(scheduler, clock, 86400)
    assert len(ticks) == 8640
    assert all(tick % (10 * S) == 0 and skipped == 0 for tick, skipped in ticks)
    assert [b - a for (a, _), (b, _) in pairwise(ticks)] == [10 * S] * 8639


def test_sub_second_and_mixed_intervals_stay_on_their_own_grid():
    clock = FakeClock(START)
    scheduler = WallClockScheduler(clock)
    seen: dict[float, list[int]] = {0.5: [], 7: []}
    for interval in seen:
        scheduler.every(interval).do(lambda tick, skipped, interval=interval: seen[interval].append(tick))
    run_for(scheduler, clock, 3600)
    assert len(seen[0.5]) == 7200 and all(t % (S // 2) == 0 for t in seen[0.5])
    assert len(seen[7]) in (514, 515) and all(t % (7 * S) == 0 for t in seen[7])


def test_a_late_run_skips_missed_ticks_instead_of_queueing_them():
    clock = FakeClock(START)
    scheduler = WallClockScheduler(clock)
    runs = []
    job = scheduler.every(10)
    job.do(lambda tick, skipped: runs.append((tick, skipped)))
    first_due = job.due_ns
    clock.now = first_due + 35 * S  # the process was stalled for 3.5 intervals
    scheduler.run_pending()
    scheduler.run_pending()
    assert runs == [(first_due + 30 * S, 3)]  # one run, for the latest tick that has passed; 3 ticks skipped
    assert job.due_ns == first_due + 40 * S


def test_clock_jumping_back_does_not_stall_the_scheduler():
    clock = FakeClock(START)
    scheduler = WallClockScheduler(clock)
    runs = []
    scheduler.every(10).do(lambda tick, skipped: runs.append(tick))
    run_for(scheduler, clock, 60)
    clock.now -= 3600 * S  # NTP steps the clock back an hour
    run_for(scheduler, clock, 30)
    assert len(runs) == 6 + 3
    assert runs[6:] == [runs[5] - 3600 * S + k * 10 * S for k in range(3)]  # on the grid, in the new time


def test_tick_arithmetic():
    assert next_tick_after(25 * S, 10 * S) == 30 * S
    assert next_tick_after(30 * S, 10 * S) == 40 * S
    assert tick_to_run(30 * S, 31 * S, 10 * S) == (30 * S, 0)
    assert tick_to_run(30 * S, 52 * S, 10 * S) == (50 * S, 2)
    assert after_clock_jump(30 * S, 25 * S, 10 * S) == 30 * S
    assert after_clock_jump(1000 * S, 25 * S, 10 * S) == 30 * S
    assert after_clock_jump(1000 * S, 20 * S, 10 * S) == 20 * S


def test_idle_seconds_counts_to_the_next_tick():
    clock = FakeClock(100 * S + S // 4)
    scheduler = WallClockScheduler(clock)
    scheduler.every(5).do(lambda tick, skipped: None)
    assert scheduler.idle_seconds == 4.75


def test_clock_jumping_forward_gives_one_read_not_a_burst_of_catch_up_ticks():
    clock = FakeClock(START)
    scheduler = WallClockScheduler(clock)
    runs = []
    scheduler.every(10).do(lambda tick, skipped: runs.append((tick, skipped)))
    run_for(scheduler, clock, 60)
    clock.now += 3600 * S  # NTP steps the clock forward an hour
    run_for(scheduler, clock, 25)
    after = runs[6:]
    assert after[0] == (runs[5][0] + 3600 * S, 359)  # one read for the latest tick; 359 skipped, reported
    assert [skipped for _, skipped in after[1:]] == [0, 0]

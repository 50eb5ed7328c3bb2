"""Records far ahead of their stream: a jump is kept, a lone one dead-lettered, nothing locks."""

from __future__ import annotations

import contextlib
import doctest
import pickle
import time
from typing import Any

import pytest

from citywatch.events import Air
from flows.sources import Batch, DecodingSource, PartitionState
from flows.sources import horizon as horizon_module
from flows.sources.horizon import CONFIRM, MAX_HELD, Horizon
from sinks.redis_sink import NOT_COUNTED
from tests.flows.test_city_units import Records, toy_router
from tests.flows.toy import MIN, T0

H = 60 * MIN


def air(ts: int, station: str = "S1") -> Air:
    return Air(ts=ts, station=station, pm25=10.0)


def run(
    events: list[Any], *, size: int = 7, live: bool = False, resume_every: int | None = None
) -> list[Batch]:
    """Every batch of one partition over ``events``; with ``resume_every`` the partition is
    rebuilt from its snapshot after that many batches, again and again (a crash and resume)."""
    router = toy_router(progress_ms=None)
    src = DecodingSource(Records(live=live, p0=events), batch_size=size, splitter=router)
    state: PartitionState | None = None
    part = src.build_part("in", "p0", state)
    out: list[Batch] = []
    with contextlib.suppress(StopIteration):
        for _ in range(10_000):
            got = part.next_batch()
            out += got
            if (live and part.reader.at >= len(events)) or (out and out[-1].is_last):  # type: ignore[attr-defined]
                break
            if resume_every and len(out) % resume_every == 0:
                state = pickle.loads(pickle.dumps(part.snapshot()))  # noqa: S301
                part = src.build_part("in", "p0", state)
    return out


def accepted(batches: list[Batch]) -> list[int]:
    """The ts of every routed event, in order."""
    return [x[1].ts for b in batches for xs in b.groups.values() for x in xs if type(x) is tuple]


def dead(batches: list[Batch]) -> list[tuple[int, str]]:
    return [(d.seq, d.dead.reason) for b in batches for d in b.dead]


def check_accounting(batches: list[Batch], n_input: int) -> None:
    """One offset per record and per decision: valid + dead == input, offsets in order."""
    offsets: list[int] = []
    valid = 0
    for b in batches:
        assert b.start == (offsets[-1] + 1 if offsets else 0)
        offsets += range(b.start, b.start + len(b.codes))
        valid += sum(1 for c in b.codes if c != NOT_COUNTED)
        seqs = [d.seq for d in b.dead]
        assert seqs == sorted(seqs)
        assert all(b.start <= s < b.start + len(b.codes) for s in seqs)
        assert all(b.codes[s - b.start] == NOT_COUNTED for s in seqs)
    assert valid + sum(len(b.dead) for b in batches) == n_input


def test_the_module_example_runs() -> None:
    assert doctest.testmod(horizon_module).failed == 0


def test_after_a_quiet_day_the_stream_goes_on() -> None:
    """A recording quiet for 30 h: today's code rejected every later record as ahead of the
    newest accepted one, forever (a real GPS file lost 103,309 of 217,653 fixes)."""
    before = [air(T0 + i * MIN) for i in range(60)]
    after = [air(T0 + 30 * H + i * MIN) for i in range(60)]
    out = run(before + after)
    assert dead(out) == []
    assert accepted(out) == [e.ts for e in before + after]
    assert out[-1].high_ts == after[-1].ts
    check_accounting(out, 120)


def test_a_sparse_stream_that_jumps_again_and_again_loses_nothing() -> None:
    """A real station log (five-cities, Guangzhou, April 2014): one reading 124 h after the
    last, four more 138 h later, then hourly again 44 h after those. Every later record is
    beyond the one before, so none was a lone far-future record."""
    hours = [0, 1, 2, 126, 264, 265, 266, 267, *range(311, 340)]
    events = [air(T0 + h * H) for h in hours]
    out = run(events, size=5)
    assert dead(out) == []
    assert accepted(out) == [e.ts for e in events]
    check_accounting(out, len(events))


def test_a_lone_record_before_a_real_jump_goes_the_jump_stays() -> None:
    events = [air(T0 + i * MIN) for i in range(20)]
    events.append(air(T0 + 100 * H, "S9"))  # a clock set wrong, just before a quiet day
    events += [air(T0 + 30 * H + i * MIN) for i in range(20)]
    out = run(events)
    [(_, reason)] = dead(out)
    assert reason.startswith(f"ts: {T0 + 100 * H} is ")
    assert accepted(out) == [e.ts for e in events if e.station == "S1"]
    check_accounting(out, len(events))


def test_a_lone_far_future_record_is_dead_lettered_and_never_moves_event_time() -> None:
    events = [air(T0 + i * MIN) for i in range(40)]
    events.insert(20, air(T0 + 100 * H, "S9"))  # a clock set wrong, once
    out = run(events)
    (_, reason), *rest = dead(out)
    assert rest == []
    assert reason.startswith(f"ts: {T0 + 100 * H} is 99.7 h ahead of the event time")
    n = CONFIRM
    assert reason.endswith(
        f"{n} of the {n} valid records after it did not follow: a lone far-future record"
    )
    assert accepted(out) == [e.ts for e in events if e.station == "S1"]
    assert max(b.high_ts for b in out) == T0 + 39 * MIN
    check_accounting(out, 41)


def test_records_after_a_jump_that_interleave_with_stragglers_still_confirm_it() -> None:
    before = [air(T0 + i * MIN) for i in range(30)]
    after = [air(T0 + 40 * H + i * MIN) for i in range(30)]
    straggler = air(T0 + 29 * MIN + 30_000, "S2")  # one late record of the old day, in between
    events = [*before, *after[:3], straggler, *after[3:]]
    out = run(events)
    # The straggler is processed before the jump is confirmed (it was in time then).
    assert dead(out) == []
    assert sorted(accepted(out)) == sorted(e.ts for e in events)
    check_accounting(out, len(events))


def test_a_record_within_a_day_of_the_stream_later_is_still_a_lone_one() -> None:
    """25 h ahead when it came: the hourly records after it carry on where they were, so it
    was not a jump, even though the stream comes within 24 h of it (accepting it then would
    make every later record 23 h late)."""
    events = [air(T0), air(T0 + 25 * H, "S9")] + [air(T0 + i * H) for i in range(1, 12)]
    out = run(events, size=3)
    [(_, reason)] = dead(out)
    assert reason.startswith(f"ts: {T0 + 25 * H} is 25.0 h ahead")
    assert accepted(out) == [e.ts for e in events if e.station == "S1"]
    check_accounting(out, len(events))


def test_at_the_end_a_jump_with_a_follower_is_kept_a_lone_last_record_is_not() -> None:
    base = [air(T0 + i * MIN) for i in range(10)]
    jump = [air(T0 + 50 * H), air(T0 + 50 * H + MIN)]
    out = run(base + jump)
    assert dead(out) == []
    assert accepted(out)[-2:] == [T0 + 50 * H, T0 + 50 * H + MIN]
    out = run([*base, air(T0 + 50 * H)])
    (_, reason), *rest = dead(out)
    assert rest == []
    assert "the input ended before" in reason
    assert out[-1].is_last
    assert out[-1].high_ts == T0 + 9 * MIN
    check_accounting(out, 11)


def test_a_resumed_partition_decides_exactly_as_the_uninterrupted_one() -> None:
    events: list[Any] = [air(T0 + i * MIN, f"S{i % 3}") for i in range(50)]
    events[10:10] = [air(T0 + 70 * H, "X")]  # lone
    events[30:30] = [air(T0 + 40 * H + i * MIN, f"S{i % 3}") for i in range(20)]  # a jump
    events.append(b"{broken")  # type: ignore[arg-type]
    reference = run(events, size=4)
    for every in (1, 2, 3):
        resumed = run(events, size=4, resume_every=every)
        assert dead(resumed) == dead(reference)
        assert accepted(resumed) == accepted(reference)
        assert [b.codes for b in resumed] == [b.codes for b in reference]
    assert next(r for _, r in dead(reference)).endswith("a lone far-future record")
    check_accounting(reference, len(events))


def test_many_far_records_at_once_stay_bounded() -> None:
    """Votes decide within about 2 x ``confirm`` records; past ``MAX_HELD`` held at once (a
    rule that never decides, as here) the oldest goes anyway."""
    h = Horizon(24 * H, confirm=10_000)
    for i in range(MAX_HELD + 1):
        h.vote(T0 + 100 * H + i * MIN)
        h.hold(air(T0 + 100 * H + i * MIN), b"{}", T0)
    decided = h.decide(T0)
    assert decided is not None
    assert decided[0].event.ts == T0 + 100 * H
    assert decided[1] is not None
    assert f"more than {MAX_HELD} far-ahead records waited at once" in decided[1]
    assert len(h.held) == MAX_HELD


def test_a_live_stream_judges_the_future_by_the_wall_clock() -> None:
    now = int(time.time() * 1000)
    events = [air(now - 48 * H), air(now - MIN), air(now + 30 * H, "S9"), air(now + 10 * MIN)]
    out = run(events, live=True)
    # A day of silence locks nothing; only the record a day ahead of the clock is refused.
    assert accepted(out) == [now - 48 * H, now - MIN, now + 10 * MIN]
    [(_, reason)] = dead(out)
    assert reason.startswith(f"ts: {now + 30 * H} is 30.0 h ahead of the wall clock")


def test_tolerance_must_be_positive() -> None:
    with pytest.raises(ValueError, match="future_tolerance_ms"):
        Horizon(0)

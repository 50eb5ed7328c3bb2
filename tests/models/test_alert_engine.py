"""The alert engine's rules, one behaviour per test, in event time."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywatch.alerts import Alert, AlertState, Level, Signal, Subject, episode_id, fingerprint
from citywatch.tiers import Location
from models.alert_engine import (
    AlertEngine,
    EngineSnapshot,
    FloodGuard,
    LatenessGate,
    RulePolicy,
    Silence,
)

M = 60_000
S1 = Subject("station", "S1")


def sig(rule: str = "air.spike", ts: int = 0, level: Level = Level.YELLOW, **kw: object) -> Signal:
    kw.setdefault("subject", S1)
    return Signal(rule=rule, ts=ts, level=level, **kw)  # type: ignore[arg-type]


def test_first_active_signal_fires_with_a_deterministic_id() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(sig(ts=5 * M, score=0.7, title="突增", district="崇川区"))
    assert a.state is AlertState.FIRING
    assert a.id == episode_id(fingerprint("air.spike", S1), 5 * M)
    assert (a.version, a.count, a.first_ts, a.last_ts) == (1, 1, 5 * M, 5 * M)
    assert (a.score, a.title, a.district) == (0.7, "突增", "崇川区")


def test_repeat_is_deduplicated_and_refreshed_after_refresh_ms() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(refresh_ms=5 * M)})
    eng.on_signal(sig(ts=0))
    assert eng.on_signal(sig(ts=1 * M)) == []
    assert eng.on_signal(sig(ts=2 * M)) == []
    (a,) = eng.on_signal(sig(ts=5 * M))
    assert (a.version, a.count, a.last_ts) == (2, 4, 5 * M)


def test_debounce_needs_persistence_and_a_clear_drops_the_pending_episode() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(for_ms=2 * M, for_count=3)})
    assert eng.on_signal(sig(ts=0)) == []
    assert eng.on_signal(sig(ts=1 * M)) == []
    (a,) = eng.on_signal(sig(ts=2 * M))
    assert a.first_ts == 0
    assert a.count == 3
    assert a.version == 1
    # A flicker that clears before the `for` holds never fires.
    eng2 = AlertEngine({"air.spike": RulePolicy(for_ms=2 * M, for_count=3)})
    eng2.on_signal(sig(ts=0))
    assert eng2.on_signal(sig(ts=1 * M, active=False)) == []
    assert eng2.on_signal(sig(ts=2 * M)) == []
    assert eng2.tracks[fingerprint("air.spike", S1)].alert.first_ts == 2 * M


def test_escalation_is_immediate_and_deescalation_waits() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(deescalate_ms=10 * M, refresh_ms=60 * M)})
    eng.on_signal(sig(ts=0, level=Level.YELLOW))
    (up,) = eng.on_signal(sig(ts=1 * M, level=Level.RED))
    assert (up.level, up.version) == (Level.RED, 2)
    assert eng.on_signal(sig(ts=2 * M, level=Level.YELLOW)) == []
    assert eng.on_signal(sig(ts=8 * M, level=Level.YELLOW)) == []
    (down,) = eng.on_signal(sig(ts=12 * M, level=Level.YELLOW))
    assert (down.level, down.version) == (Level.YELLOW, 3)


def test_explicit_clear_resolves_and_a_return_within_the_window_reopens_it() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(quiet_ms=20 * M)})
    (a,) = eng.on_signal(sig(ts=0))
    (r,) = eng.on_signal(sig(ts=3 * M, active=False))
    assert (r.id, r.state, r.version, r.last_ts) == (a.id, AlertState.RESOLVED, 2, 3 * M)
    (b,) = eng.on_signal(sig(ts=4 * M, level=Level.RED))  # back 1 min later: the same alert
    assert (b.id, b.state, b.version, b.count, b.level) == (
        a.id,
        AlertState.FIRING,
        3,
        2,
        Level.RED,
    )
    eng.on_signal(sig(ts=5 * M, active=False))
    # Back after the window (20 min after the clear): a new episode, a new id.
    (c,) = eng.on_signal(sig(ts=5 * M + 20 * M + 1))
    assert c.id != a.id
    assert (c.version, c.first_ts) == (1, 25 * M + 1)


def test_auto_resolve_after_quiet_period_in_event_time() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(quiet_ms=20 * M)})
    eng.on_signal(sig(ts=0))
    eng.on_signal(sig(ts=1 * M))
    assert eng.advance(21 * M) == []
    (r,) = eng.advance(21 * M + 1)
    assert r.state is AlertState.RESOLVED
    assert r.last_ts == 1 * M
    assert r.count == 2
    assert eng.tracks == {}


def test_quiet_gap_resolves_before_a_new_episode_even_without_a_watermark() -> None:
    eng = AlertEngine({"air.spike": RulePolicy(quiet_ms=20 * M)})
    (a,) = eng.on_signal(sig(ts=0))
    # Quiet past the horizon (20 min), back within the reopen window after it (20 min more).
    r, b = eng.on_signal(sig(ts=30 * M))
    assert (r.id, r.state, r.version, r.last_ts) == (a.id, AlertState.RESOLVED, 2, 0)
    assert (b.id, b.state, b.version, b.first_ts) == (a.id, AlertState.FIRING, 3, 0)
    # Quiet past the horizon and the window: resolved, then a new episode.
    r2, c = eng.on_signal(sig(ts=30 * M + 40 * M + 1))
    assert (r2.id, r2.state, r2.version) == (a.id, AlertState.RESOLVED, 4)
    assert c.id != a.id
    assert (c.state, c.first_ts, c.version) == (AlertState.FIRING, 70 * M + 1, 1)


def test_faulty_sensor_inhibits_its_own_pollution_alerts_only() -> None:
    eng = AlertEngine()
    eng.on_signal(sig("air.stuck", ts=0))
    assert eng.on_signal(sig("air.exceedance", ts=1 * M)) == []
    assert eng.stats["inhibited"] == 1
    other = eng.on_signal(sig("air.exceedance", ts=1 * M, subject=Subject("station", "S2")))
    assert len(other) == 1
    eng.on_signal(sig("air.stuck", ts=2 * M, active=False))
    assert len(eng.on_signal(sig("air.exceedance", ts=3 * M))) == 1


def test_silence_mutes_until_expiry_then_emits_the_current_state() -> None:
    eng = AlertEngine()
    eng.set_silences([Silence("s1", until_ms=10 * M, reason="维护", rule="air.spike")])
    assert eng.on_signal(sig(ts=0)) == []
    assert eng.on_signal(sig(ts=5 * M)) == []
    assert eng.stats["silenced"] >= 1
    (a,) = eng.advance(10 * M)
    assert (a.version, a.count, a.first_ts) == (1, 2, 0)
    other = eng.on_signal(sig("air.stuck", ts=10 * M))
    assert len(other) == 1  # the silence matched its rule only


def test_new_silences_emit_only_what_a_silence_held_back() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(sig(ts=0))
    assert eng.on_signal(sig(ts=1 * M)) == []  # a change within the refresh interval: held
    # Silences are read when a process starts; an unrelated (or empty) set must not flush
    # held changes early, or a resumed run would differ from an uninterrupted one.
    assert eng.set_silences([]) == []
    assert eng.set_silences([Silence("s1", until_ms=60 * M, rule="air.stuck")]) == []
    eng.set_silences([Silence("s2", until_ms=60 * M, rule="air.spike")])
    assert eng.on_signal(sig(ts=2 * M, level=Level.RED)) == []  # escalation, silenced
    (b,) = eng.set_silences([])  # lifted by the officer: the held-back version now
    assert (b.id, b.version, b.level) == (a.id, 2, Level.RED)
    assert eng.set_silences([]) == []


def test_alert_fired_and_resolved_inside_a_silence_is_never_emitted() -> None:
    eng = AlertEngine()
    eng.set_silences([Silence("s1", until_ms=60 * M, subject_id="S1")])
    eng.on_signal(sig(ts=0))
    assert eng.on_signal(sig(ts=1 * M, active=False)) == []
    assert eng.advance(61 * M) == []


def test_silence_from_stored_json() -> None:
    s = Silence.from_dict("x", {"until_ms": 5, "matcher": {"rule": "air.spike"}, "reason": "r"})
    assert (s.rule, s.subject_id, s.until_ms, s.reason) == ("air.spike", None, 5, "r")
    with pytest.raises(ValueError, match="until_ms"):
        Silence.from_dict("y", {"until": "tomorrow"})


def test_locate_fills_district_town_and_grid() -> None:
    def locate(lat: float, lon: float) -> Location:
        return Location("通州区", "T32061201", "G0042-0068") if lat > 32 else Location()

    eng = AlertEngine(locate=locate)
    (a,) = eng.on_signal(
        sig("vehicle.dwell", ts=0, subject=Subject("vehicle", "V1"), lat=32.1, lon=121.0)
    )
    assert (a.district, a.town, a.grid) == ("通州区", "T32061201", "G0042-0068")
    (b,) = eng.on_signal(sig("air.spike", ts=0, lat=31.9, lon=121.0, district="崇川区"))
    assert (b.district, b.town, b.grid) == ("崇川区", None, None)


def test_a_town_of_another_district_is_not_taken() -> None:
    eng = AlertEngine(locate=lambda lat, lon: Location("通州区", "T32061201", "G1"))
    (a,) = eng.on_signal(sig("air.spike", ts=0, lat=32.1, lon=121.0, district="崇川区"))
    assert (a.district, a.town, a.grid) == ("崇川区", None, "G1")


def test_snapshot_restore_continues_identically() -> None:
    signals = [sig(ts=i * M, level=Level(1 + (i // 7) % 4)) for i in range(40)]
    signals += [sig("air.drift", ts=45 * M)]
    full = AlertEngine()
    out_full = full.on_signals(signals) + full.advance(200 * M)
    part = AlertEngine()
    out_part = part.on_signals(signals[:17])
    snap = pickle.loads(pickle.dumps(part.snapshot()))  # noqa: S301 - our own bytes
    assert isinstance(snap, EngineSnapshot)
    resumed = AlertEngine(snapshot=snap)
    out_part += resumed.on_signals(signals[17:]) + resumed.advance(200 * M)
    assert out_part == out_full
    assert [a.version for a in out_full if a.fingerprint == out_full[0].fingerprint] == sorted(
        a.version for a in out_full if a.fingerprint == out_full[0].fingerprint
    )


def test_snapshot_is_not_changed_by_later_signals() -> None:
    eng = AlertEngine()
    eng.on_signal(sig(ts=0))
    snap = eng.snapshot()
    before = copy.deepcopy(snap)
    eng.on_signal(sig(ts=1 * M, level=Level.RED))
    eng.advance(500 * M)
    assert snap == before


def test_scores_are_clamped_into_unit_interval() -> None:
    (a,) = AlertEngine().on_signal(sig(ts=0, score=float("nan")))
    assert a.score == 0.0


def test_flood_guard_groups_a_burst_of_one_area() -> None:
    eng = AlertEngine()
    guard = FloodGuard(limit=10, window_ms=10 * M)
    incidents: list[Signal] = []
    for i in range(12):
        (a,) = eng.on_signal(
            sig(ts=i * 30_000, subject=Subject("station", f"S{i}"), district="海门区")
        )
        incidents += guard.observe(a)
    assert len(incidents) == 2  # the 11th opens the incident, the 12th extends it
    first, second = incidents
    assert first.subject == second.subject
    assert first.rule == "incident.correlated"
    assert first.evidence["alerts"] == 11
    assert second.evidence["alerts"] == 12
    (inc,) = eng.on_signal(first)
    assert inc.district == "海门区"
    # A long burst keeps counting but lists only the first max_members ids.
    small = FloodGuard(limit=2, window_ms=10 * M, max_members=3)
    last: list[Signal] = []
    for i in range(8):
        (a,) = eng.on_signal(
            sig(ts=i * 1000, subject=Subject("station", f"B{i}"), district="启东市")
        )
        last = small.observe(a) or last
    assert last[0].evidence["alerts"] == 8
    assert len(last[0].evidence["members"]) == 3
    # Another district and a slow trickle never trigger it.
    quiet = FloodGuard(limit=10, window_ms=10 * M)
    for i in range(30):
        (a,) = eng.on_signal(
            sig(ts=i * 2 * M, subject=Subject("station", f"Q{i}"), district="如东县")
        )
        assert quiet.observe(a) == []


def test_lateness_gate_counts_from_the_newest_seen() -> None:
    g = LatenessGate(lateness_ms=10 * M)
    assert g.admit(100 * M) is None
    assert g.admit(91 * M) is None
    reason = g.admit(89 * M)
    assert reason is not None
    assert reason.startswith("late:")
    assert g.high_ts == 100 * M


_signal = st.tuples(
    st.integers(0, 3),  # minutes since the previous signal (0: the same event time)
    st.sampled_from(["air.spike", "air.stuck", "air.exceedance"]),
    st.sampled_from(["S1", "S2"]),
    st.booleans(),  # active
    st.integers(1, 4),  # level
    st.integers(0, 5),  # 0: event time advances to this signal's ts before it
)
#: S2 reports every 2 minutes (its quiet horizon: 2.5 intervals when longer than quiet_ms).
INTERVALS = {"S1": None, "S2": 2 * M}
POLICIES = {
    "air.spike": RulePolicy(for_count=2, quiet_ms=3 * M, refresh_ms=2 * M),
    "air.stuck": RulePolicy(quiet_ms=4 * M, reopen_ms=2 * M),
    "air.exceedance": RulePolicy(
        quiet_ms=6 * M, reopen_ms=0, inhibited_by=frozenset({"air.stuck"})
    ),
}


def _play(eng: AlertEngine, steps: list[Signal | int]) -> list[Alert]:
    out: list[Alert] = []
    for x in steps:
        out += eng.advance(x) if isinstance(x, int) else eng.on_signal(x)
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(_signal, max_size=80), st.integers(0, 100))
def test_engine_invariants_on_random_signal_sequences(
    draws: list[tuple[int, str, str, bool, int, int]], cut: int
) -> None:
    steps: list[Signal | int] = []
    ts = 0
    for gap, rule, sid, active, level, tick in draws:
        ts += gap * M
        if tick == 0:
            steps.append(ts)
        subject = Subject("station", sid)
        steps.append(
            sig(rule, ts, Level(level), subject=subject, active=active, interval_ms=INTERVALS[sid])
        )
    end = ts + 60 * M
    steps.append(end)
    eng = AlertEngine(POLICIES)
    out = _play(eng, steps)

    seen: set[tuple[str, int]] = set()
    by_id: dict[str, list[Alert]] = {}
    last_of_fp: dict[str, Alert] = {}
    for a in out:
        assert (a.id, a.version) not in seen  # no version is emitted twice
        seen.add((a.id, a.version))
        assert a.first_ts <= a.last_ts
        pol = POLICIES[a.rule]
        every = INTERVALS[a.subject.id]
        prev = by_id.get(a.id, [])
        if prev:
            assert a.first_ts == prev[0].first_ts
            assert a.count >= prev[-1].count
            if prev[-1].state is AlertState.RESOLVED:
                # Reopened: only as firing, within the window after the resolve's end (the
                # clear, or the quiet horizon after the last active signal).
                assert a.state is AlertState.FIRING
                limit = pol.horizon(every) + pol.reopen_window(every)
                assert a.last_ts <= prev[-1].last_ts + limit
        else:
            before = last_of_fp.get(a.fingerprint)
            if before is not None:
                # A new episode of a fingerprint only after the old one resolved and its
                # reopen window passed.
                assert before.state is AlertState.RESOLVED
                assert a.first_ts > before.last_ts + pol.reopen_window(every)
        by_id.setdefault(a.id, []).append(a)
        last_of_fp[a.fingerprint] = a
    for versions in by_id.values():
        # Versions of one id are 1, 2, 3, ... (a reopen continues them).
        assert [a.version for a in versions] == list(range(1, len(versions) + 1))
        assert versions[-1].state is AlertState.RESOLVED  # event time moved on: all resolved
    assert eng.tracks == {}
    assert eng.closed == {}  # and every reopen window is over: nothing kept
    assert eng.next_due() is None
    # A snapshot taken anywhere, pickled and restored, continues identically.
    k = min(cut, len(steps))
    first = AlertEngine(POLICIES)
    part = _play(first, steps[:k])
    snap = pickle.loads(pickle.dumps(first.snapshot()))  # noqa: S301 - our own bytes
    again = AlertEngine(POLICIES, snapshot=snap)
    assert part + _play(again, steps[k:]) == out

"""The alert engine's time follows the source: quiet horizons in missed intervals, reopening.

An hourly station's readings are an hour apart; a fixed 30-minute quiet period resolved its
alert between every two readings and raised a new one at the next (thousands of alerts for a
few hundred real runs). These tests hold the engine to the source's cadence.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import fields, replace

import pytest

from citywatch.alerts import Alert, AlertState, Level, Signal, Subject
from models.alert_engine import (
    DEFAULT_POLICIES,
    AlertEngine,
    EngineSnapshot,
    FloodGuard,
    RulePolicy,
    Silence,
    Track,
)

M = 60_000
H = 60 * M
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
S1 = Subject("station", "S1")
RULE = "air.exceedance"  # default quiet_ms: 20 min


def hourly(h: float, *, active: bool = True, level: Level = Level.ORANGE, **kw: object) -> Signal:
    """A finding of an hourly station ``h`` hours after T0."""
    kw.setdefault("subject", S1)
    kw.setdefault("interval_ms", H)
    return Signal(RULE, ts=T0 + int(h * H), active=active, level=level, **kw)  # type: ignore[arg-type]


def ids(alerts: list[Alert]) -> set[str]:
    return {a.id for a in alerts}


def test_a_sparse_hourly_condition_for_ten_hours_is_one_alert() -> None:
    eng = AlertEngine()
    out: list[Alert] = []
    for h in range(10):
        out += eng.on_signal(hourly(h, evidence={"pm25": 120 + h}))
        out += eng.advance(T0 + h * H + 59 * M)  # event time moves on between the readings
    assert len(ids(out)) == 1
    assert all(a.is_firing for a in out)
    # the same level and score, the same evidence fields: a version at 0 h, a heartbeat at 6 h
    assert [(a.version, a.count, a.last_ts) for a in out] == [(1, 1, T0), (2, 7, T0 + 6 * H)]
    (now,) = eng.touched.values()  # the newest values, with the version last emitted
    assert (now.version, now.count, now.first_ts, now.last_ts) == (2, 10, T0, T0 + 9 * H)
    assert now.evidence == {"pm25": 129}
    # The source's cadence is what counts: the same readings without it are ten alerts.
    blind = AlertEngine()
    old: list[Alert] = []
    for h in range(10):
        old += blind.on_signal(hourly(h, interval_ms=None))
        old += blind.advance(T0 + h * H + 59 * M)
    assert len({a.id for a in old}) == 10


def test_it_resolves_after_the_missed_intervals_without_a_reading() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    eng.on_signal(hourly(1))
    # One reading missing (2 h gap) is no resolve; 2.5 intervals after the last reading is.
    assert eng.advance(T0 + 1 * H + 150 * M) == []
    (r,) = eng.advance(T0 + 1 * H + 150 * M + 1)
    assert (r.id, r.state, r.last_ts, r.count) == (a.id, AlertState.RESOLVED, T0 + 1 * H, 2)
    assert eng.tracks == {}


def test_a_missed_reading_within_the_horizon_keeps_the_alert() -> None:
    eng = AlertEngine()
    out = eng.on_signal(hourly(0)) + eng.on_signal(hourly(2))  # the 1 h reading is missing
    out += eng.advance(T0 + 2 * H + 30 * M)
    assert [a.state for a in out] == [AlertState.FIRING]  # the 2 h reading changed nothing
    assert [(a.id, a.last_ts) for a in eng.touched.values()] == [(out[0].id, T0 + 2 * H)]


def test_missed_intervals_is_a_policy_and_quiet_ms_stays_the_least_horizon() -> None:
    pol = RulePolicy(quiet_ms=20 * M, missed_intervals=1.5)
    assert pol.horizon(H) == 90 * M
    assert pol.horizon(M) == 20 * M  # a dense source: quiet_ms as before
    assert pol.horizon(None) == 20 * M
    eng = AlertEngine({RULE: pol})
    eng.on_signal(hourly(0))
    assert eng.advance(T0 + 90 * M) == []
    assert [a.state for a in eng.advance(T0 + 90 * M + 1)] == [AlertState.RESOLVED]
    with pytest.raises(ValueError, match="missed_intervals"):
        RulePolicy(missed_intervals=0)
    with pytest.raises(ValueError, match="reopen_ms"):
        RulePolicy(reopen_ms=-1)


def test_the_newest_stated_interval_counts_and_nonsense_is_ignored() -> None:
    eng = AlertEngine()
    eng.on_signal(hourly(0))
    eng.on_signal(hourly(1, interval_ms=None))  # unknown this time: the known one stays
    eng.on_signal(hourly(1.5, interval_ms=-5))
    (t,) = eng.tracks.values()
    assert t.interval_ms == H
    eng.on_signal(hourly(2, interval_ms=10 * M))  # the station now reports every 10 min
    (t,) = eng.tracks.values()
    assert eng.resolves_at(t) == T0 + 2 * H + 25 * M + 1


def test_an_explicit_clear_resolves_at_once() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    (r,) = eng.on_signal(hourly(1, active=False))
    assert (r.id, r.state, r.version, r.last_ts) == (a.id, AlertState.RESOLVED, 2, T0 + H)
    assert eng.advance(T0 + 5 * H) == []


def test_a_return_within_the_window_reopens_the_same_alert() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0, title="PM2.5 超标", evidence={"pm25": 130}))
    (a2,) = eng.on_signal(hourly(1))
    (r,) = eng.on_signal(hourly(2, active=False))
    # The window is the quiet horizon (2.5 h) after the clear.
    (b,) = eng.on_signal(hourly(4.5, level=Level.RED, evidence={"pm25": 260}))
    assert b.id == a.id
    assert (b.state, b.version) == (AlertState.FIRING, r.version + 1)
    assert (b.first_ts, b.count, b.last_ts) == (T0, 3, T0 + 4.5 * H)
    assert (b.level, b.evidence, b.title) == (Level.RED, {"pm25": 260}, "PM2.5 超标")
    assert eng.stats["reopened"] == 1
    # It is live again: repeats dedupe into it, it resolves again, versions go on.
    out = eng.on_signal(hourly(5.5, level=Level.RED)) + eng.advance(T0 + 9 * H)
    assert [(x.id, x.version, x.state) for x in out] == [
        (a.id, 5, AlertState.FIRING),
        (a.id, 6, AlertState.RESOLVED),
    ]
    assert a2.version == 2


def test_a_return_after_an_auto_resolve_reopens_within_the_window_after_the_horizon() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    # Resolved at 2.5 h; the window runs 2.5 h from there: a return at 5 h is the same alert.
    (r,) = eng.advance(T0 + 3 * H)
    (b,) = eng.on_signal(hourly(5))
    assert (r.version, b.id, b.version, b.state) == (2, a.id, 3, AlertState.FIRING)


def test_a_return_after_the_window_is_a_new_alert() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    eng.on_signal(hourly(1, active=False))
    assert eng.advance(T0 + 3.5 * H) == []
    assert eng.closed  # still within the window (it ends at 3.5 h): kept
    eng.advance(T0 + 3.5 * H + 1)
    assert eng.closed == {}  # over: dropped
    (b,) = eng.on_signal(hourly(3.6))
    assert b.id != a.id
    assert (b.version, b.first_ts) == (1, T0 + 3.6 * H)
    # Without a watermark in between, the signal's own event time decides alike.
    eng2 = AlertEngine()
    (c,) = eng2.on_signal(hourly(0))
    eng2.on_signal(hourly(1, active=False))
    (d,) = eng2.on_signal(hourly(3.6))
    assert d.id != c.id


def test_reopen_ms_sets_the_window_and_zero_only_joins_the_same_instant() -> None:
    eng = AlertEngine({RULE: RulePolicy(quiet_ms=20 * M, reopen_ms=0)})
    (a,) = eng.on_signal(hourly(0))
    eng.on_signal(hourly(1, active=False))
    (b,) = eng.on_signal(hourly(1))  # the same event time as the clear: never a second id
    assert (b.id, b.version) == (a.id, 3)
    eng.on_signal(hourly(1, active=False))
    (c,) = eng.on_signal(Signal(RULE, S1, T0 + H + 1, interval_ms=H))  # 1 ms later: new
    assert c.id != a.id


def test_a_same_instant_clear_and_return_never_repeats_an_id_version() -> None:
    eng = AlertEngine()
    out: list[Alert] = []
    for active in (True, False, True, False, True):
        out += eng.on_signal(hourly(0, active=active))
    out += eng.advance(T0 + 10 * H)
    pairs = [(a.id, a.version) for a in out]
    assert len(pairs) == len(set(pairs)) == 6
    assert len(ids(out)) == 1
    assert [a.version for a in out] == [1, 2, 3, 4, 5, 6]


def test_resolved_tracks_are_kept_only_for_their_window_and_next_due_says_when() -> None:
    eng = AlertEngine()
    for n in range(50):
        s = Subject("station", f"S{n}")
        eng.on_signal(hourly(0, subject=s))
        eng.on_signal(hourly(1, subject=s, active=False))
    assert len(eng.closed) == 50
    assert eng.next_due() == T0 + H + 150 * M + 1  # when the windows end
    assert eng.advance(T0 + H + 150 * M) == []
    assert len(eng.closed) == 50
    eng.advance(T0 + H + 150 * M + 1)
    assert eng.closed == {}
    assert eng.next_due() is None


def test_a_time_for_never_needs_more_readings_than_the_source_gives() -> None:
    # An hourly reading stands for its hour: a 30 min `for` holds with the first reading.
    short = AlertEngine({RULE: RulePolicy(for_ms=30 * M, for_count=3)})
    assert len(short.on_signal(hourly(0))) == 1
    # A 3 h `for` holds with the third hourly reading, even if for_count asks for 5.
    long = AlertEngine({RULE: RulePolicy(for_ms=3 * H, for_count=5)})
    assert long.on_signal(hourly(0)) == []
    assert long.on_signal(hourly(1)) == []
    (a,) = long.on_signal(hourly(2))
    assert (a.first_ts, a.count) == (T0, 3)
    # A minute source (interval known) under the same `for` needs its 180 readings.
    dense = AlertEngine({RULE: RulePolicy(for_ms=3 * H, for_count=5)})
    fired = [
        m
        for m in range(200)
        if dense.on_signal(Signal(RULE, S1, T0 + m * M, level=Level.ORANGE, interval_ms=M))
    ]
    assert fired[0] == 179
    # A count alone (for_ms 0) is a count: two hourly readings.
    count = AlertEngine({RULE: RulePolicy(for_count=2)})
    assert count.on_signal(hourly(0)) == []
    assert len(count.on_signal(hourly(1))) == 1


def test_a_pending_episode_of_a_sparse_source_waits_for_its_next_reading() -> None:
    eng = AlertEngine({RULE: RulePolicy(for_ms=2 * H)})
    assert eng.on_signal(hourly(0)) == []
    assert eng.advance(T0 + 2 * H) == []  # not dropped at quiet_ms (20 min)
    assert len(eng.on_signal(hourly(1))) == 1


def test_reopen_inside_a_silence_is_held_and_its_resolve_is_not_repeated() -> None:
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    (r,) = eng.on_signal(hourly(1, active=False))
    eng.set_silences([Silence("s", until_ms=T0 + 6 * H, rule=RULE)])
    assert eng.on_signal(hourly(2)) == []  # reopened, silenced
    assert eng.on_signal(hourly(3, active=False)) == []  # Redis has it resolved already
    assert eng.on_signal(hourly(4)) == []  # reopened again, still silenced
    (b,) = eng.advance(T0 + 6 * H)  # the silence ends while it fires: let out
    assert (b.id, b.state, b.version, b.count) == (a.id, AlertState.FIRING, r.version + 1, 3)


def test_a_reopened_alert_is_not_news_to_the_flood_guard() -> None:
    eng = AlertEngine()
    guard = FloodGuard(limit=1, window_ms=H)
    (a,) = eng.on_signal(hourly(0, district="崇川区"))
    assert guard.observe(a) == []
    eng.on_signal(hourly(0.5, active=False, district="崇川区"))
    (b,) = eng.on_signal(hourly(1, district="崇川区"))
    assert b.id == a.id
    assert guard.observe(b) == []  # one alert, not a burst of two


def test_a_pickled_snapshot_mid_stream_gives_identical_later_output() -> None:
    signals: list[Signal | int] = []
    for h in range(30):
        # Runs with gaps: a missing reading, clears, returns within and after the windows.
        if h in (4, 5, 11, 12, 13, 14, 15, 22):
            continue
        active = h not in (8, 19)
        level = Level.RED if h % 7 == 0 else Level.ORANGE
        signals += [hourly(h, active=active, level=level), T0 + h * H + 30 * M]
        signals.append(hourly(h, subject=Subject("station", "S2"), interval_ms=None))
    signals.append(T0 + 40 * H)

    def play(eng: AlertEngine, items: list[Signal | int]) -> list[Alert]:
        out: list[Alert] = []
        for x in items:
            out += eng.advance(x) if isinstance(x, int) else eng.on_signal(x)
        return out

    full = play(AlertEngine(), signals)
    assert len(ids([a for a in full if a.subject == S1])) == 2
    assert any(a.version > 1 and a.is_firing for a in full)  # a reopen happened
    for cut in range(0, len(signals), 3):
        first = AlertEngine()
        head = play(first, signals[:cut])
        snap = pickle.loads(pickle.dumps(first.snapshot()))  # noqa: S301 - our own bytes
        assert isinstance(snap, EngineSnapshot)
        again = AlertEngine(snapshot=snap)
        assert head + play(again, signals[cut:]) == full, cut


def test_snapshots_from_before_reopening_still_load() -> None:
    eng = AlertEngine()
    eng.on_signal(hourly(0))
    (t,) = eng.tracks.values()
    # A Track pickled before interval_ms, is_reopened, reopen_until and emitted existed.
    old = Track.__new__(Track)
    old.__setstate__([getattr(t, f.name) for f in fields(Track)][:-4])
    assert old == replace(t, interval_ms=None, emitted=None)
    # An EngineSnapshot pickled before `closed` existed.
    snap = EngineSnapshot.__new__(EngineSnapshot)
    snap.__setstate__([{"x": old}, {}, 0, {}])  # type: ignore[attr-defined]
    resumed = AlertEngine(snapshot=snap)
    assert resumed.closed == {}
    assert resumed.next_due() == T0 + 20 * M + 1  # unknown cadence: quiet_ms
    # A Track from before `emitted` only: its next repeat counts as material (emitted).
    eng = AlertEngine()
    (first,) = eng.on_signal(hourly(0))
    (t,) = eng.tracks.values()
    no_emitted = Track.__new__(Track)
    no_emitted.__setstate__([getattr(t, f.name) for f in fields(Track)][:-1])
    eng.tracks = {first.fingerprint: no_emitted}
    assert [a.version for a in eng.on_signal(hourly(1))] == [2]


def test_default_policies_all_take_the_sources_cadence() -> None:
    for rule, pol in DEFAULT_POLICIES.items():
        assert pol.horizon(H) >= 150 * M, rule
        assert pol.horizon(None) == pol.quiet_ms, rule


# -- a version is news: material changes, heartbeats ------------------------------------------


def versions(out: list[Alert]) -> list[tuple[int, float, int]]:
    """(hours after T0 of last_ts, score, version) of each version."""
    return [((a.last_ts - T0) // H, a.score, a.version) for a in out]


def test_an_hourly_alert_gets_a_version_for_news_and_a_heartbeat_otherwise() -> None:
    eng = AlertEngine()
    out: list[Alert] = []
    scores = [0.50, 0.55, 0.58, 0.61, 0.40, 0.42, 0.45, 0.47, 0.49, 0.48, 0.52, 0.53, 0.54, 0.55]
    for h, score in enumerate(scores):
        out += eng.on_signal(hourly(h, score=score, evidence={"aqi": 160 + h}))
    # 0 h first; 3 h: 0.61 is 0.11 above the version's 0.50; 4 h: 0.40 is 0.21 below 0.61;
    # the hours after move less than 0.1 from 0.40 until 10 h (0.52), the heartbeat's hour too
    # (6 h after 4 h); nothing more by 13 h.
    assert versions(out) == [(0, 0.5, 1), (3, 0.61, 2), (4, 0.4, 3), (10, 0.52, 4)]
    out = eng.on_signal(hourly(14, score=0.55, evidence={"aqi": 174, "pm10": 300}))
    assert versions(out) == [(14, 0.55, 5)]  # other evidence fields: news
    out = eng.on_signal(hourly(15, score=0.55, evidence={"aqi": 175, "pm10": 310}))
    assert out == []
    out = eng.on_signal(hourly(16, score=0.55, level=Level.RED, evidence={"aqi": 175}))
    assert [(a.level, a.version) for a in out] == [(Level.RED, 6)]  # a level: at once
    assert eng.touched == {}
    eng.on_signal(hourly(17, score=0.56, level=Level.RED, evidence={"aqi": 176}))
    (touched,) = eng.touched.values()
    assert (touched.version, touched.last_ts, touched.count) == (6, T0 + 17 * H, 18)
    # The resolve carries the newest values, and the touched entry goes with it.
    (r,) = eng.advance(T0 + 17 * H + 150 * M + 1)
    assert (r.state, r.version, r.last_ts, r.count, r.score) == (
        AlertState.RESOLVED,
        7,
        T0 + 17 * H,
        18,
        0.56,
    )
    assert eng.touched == {}


def test_the_heartbeat_follows_the_policy_and_a_source_without_a_cadence_keeps_refresh_ms() -> None:
    pol = RulePolicy(quiet_ms=20 * M, heartbeat_intervals=3, score_band=0.5)
    eng = AlertEngine({RULE: pol})
    out: list[Alert] = []
    for h in range(8):
        out += eng.on_signal(hourly(h, score=0.1 * (h % 3)))
    assert [a.last_ts // H - T0 // H for a in out] == [0, 3, 6]
    # No interval known (a minute source of another model): every refresh_ms, as before.
    eng = AlertEngine()
    out = []
    for m in range(12):
        out += eng.on_signal(Signal(RULE, S1, T0 + m * M, level=Level.ORANGE))
    assert [(a.last_ts - T0) // M for a in out] == [0, 5, 10]
    with pytest.raises(ValueError, match="score_band"):
        RulePolicy(score_band=-0.1)
    with pytest.raises(ValueError, match="heartbeat_intervals"):
        RulePolicy(heartbeat_intervals=math.inf)


def test_touched_is_what_a_caller_may_write_without_a_version() -> None:
    """The flow drains ``touched`` after each batch; what it holds is always the newest merged
    state of an open alert, with the version last emitted."""
    eng = AlertEngine()
    (a,) = eng.on_signal(hourly(0))
    assert eng.touched == {}
    eng.on_signal(hourly(1))
    eng.touched.clear()  # the caller took it
    eng.on_signal(hourly(2, evidence={}))
    assert [(t.id, t.version, t.count) for t in eng.touched.values()] == [(a.id, 1, 3)]
    # A silenced alert's merged state is no news either: nothing is touched while muted.
    quiet = AlertEngine()
    quiet.set_silences([Silence("s", T0 + 24 * H, rule=RULE)])
    assert quiet.on_signal(hourly(0)) == []
    assert quiet.on_signal(hourly(1)) == []
    assert quiet.touched == {}

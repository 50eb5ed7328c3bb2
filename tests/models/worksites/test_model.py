"""Crafted streams: orders issued and lifted mid-stream, flicker, night shifts, single channels."""

from __future__ import annotations

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Air, Hotline
from models.worksites import ResumptionConfig, WorksiteResumption
from tests.models.worksites.conftest import (
    MIN,
    T0,
    Harness,
    lift,
    make_model,
    power,
    quiet,
    sites,
    suspend,
    video,
    working,
)

#: 2026-11-02 23:00 Asia/Shanghai.
NIGHT = T0 + 13 * 60 * MIN


def active(sigs: list[Signal]) -> list[Signal]:
    return [s for s in sigs if s.active]


def clears(sigs: list[Signal]) -> list[Signal]:
    return [s for s in sigs if not s.active]


def test_no_order_means_no_state_and_no_signal(harness: Harness) -> None:
    sigs = harness.feed(working(T0, 30))
    assert sigs == []
    assert harness.states == {}


def test_street_cameras_and_other_kinds_are_not_routed(model: WorksiteResumption) -> None:
    model.route(suspend(T0))
    assert model.route(video(T0, persons=9, site=None)) is None
    assert model.route(power(T0, 40.0, site=None)) is None
    assert model.route(Air(ts=T0, station="S1", pm25=30.0)) is None
    assert model.route(video(T0, persons=9)) == "W1"
    assert model.watches("W1", T0)
    assert not model.watches("W2", T0)


def test_resumption_mid_order_fires_fast_and_clears_when_work_stops(harness: Harness) -> None:
    start = T0 + 30 * MIN
    stream = [suspend(T0), *quiet(T0, 30), *working(start, 20), *quiet(start + 20 * MIN, 20)]
    sigs = harness.feed(stream)
    fired = active(sigs)
    assert fired, "resumption not detected"
    assert (fired[0].ts - start) // MIN <= 1  # a crew with machines: CUSUM fires at once
    assert fired[0].subject == Subject("site", "W1")
    assert fired[0].rule == "worksite.resumption"
    assert fired[0].evidence["channels"] == ["video_cusum"]  # power needs 120 s above idle
    assert fired[0].level == Level.YELLOW
    both = [s for s in fired if {"video_cusum", "power"} <= set(s.evidence["channels"])]
    assert both
    assert both[0].level == Level.ORANGE
    assert both[0].ts - fired[0].ts <= 3 * MIN
    assert fired[0].evidence["machinery"] == 1
    assert fired[0].evidence["idle_kw"] == 5.0
    assert (fired[0].lat, fired[0].lon, fired[0].district) == (32.0, 120.9, "崇川区")
    assert all(0.0 <= s.score <= 1.0 for s in fired)
    # one update per window at most, and one clear after the quiet windows
    assert len({s.ts // MIN for s in fired}) == len(fired)
    (clear,) = clears(sigs)
    assert clear.evidence["reason"] == "activity stopped"
    stop = start + 20 * MIN
    assert stop <= clear.ts <= stop + 7 * MIN


def test_a_guard_right_after_the_clear_does_not_reopen_the_episode(harness: Harness) -> None:
    """Found on simulator seed 104: the drained-but-high CUSUM re-fired on 2 persons."""
    # a long closed period teaches a near-zero baseline, so the capped CUSUM drains slowly
    stream = [suspend(T0), *(video(T0 + i * MIN + 1000) for i in range(60))]
    stream += working(T0 + 60 * MIN, 60, persons=20, machinery=2, kw=None)
    stream += [video(T0 + (120 + i) * MIN + 1000) for i in range(8)]  # clear at window 126
    stream += [video(T0 + (128 + i) * MIN + 1000, persons=2) for i in range(2)]
    stream += [video(T0 + (130 + i) * MIN + 1000) for i in range(10)]
    sigs = harness.feed(stream)
    (clear,) = clears(sigs)
    assert clear.ts < T0 + 128 * MIN
    assert all(s.ts <= clear.ts for s in active(sigs))


def test_quiet_closed_site_with_guards_and_flicker_never_fires(harness: Harness) -> None:
    stream: list = [suspend(T0)]
    for i in range(600):
        ts = T0 + i * MIN
        # guards walking by, a 1-frame person burst every ~20 min, a misdetected machine rarely
        p = 2 if i % 5 == 0 else 0
        if i % 23 == 0:
            p = 4
        m = 1 if i % 97 == 0 else 0
        stream.append(video(ts + 1000, persons=p, vehicles=1 if i % 31 == 0 else 0, machinery=m))
        stream.append(power(ts + 2000, 5.0 + (i % 3) * 0.5))
    assert harness.feed(stream) == []


def test_order_lifted_mid_episode_clears_and_stops_routing(harness: Harness) -> None:
    stream = [suspend(T0), *working(T0 + MIN, 10), lift(T0 + 11 * MIN), *working(T0 + 12 * MIN, 10)]
    sigs = harness.feed(stream)
    assert active(sigs)
    (clear,) = clears(sigs)
    assert clear.evidence["reason"] == "order lifted"
    assert clear.ts == T0 + 11 * MIN
    assert all(s.ts <= T0 + 11 * MIN for s in sigs)
    assert harness.model.is_idle(harness.states["W1"])


def test_work_before_the_order_and_after_the_lift_is_legal(harness: Harness) -> None:
    stream = [*working(T0, 20), suspend(T0 + 20 * MIN), *quiet(T0 + 20 * MIN, 30)]
    stream += [lift(T0 + 50 * MIN), *working(T0 + 51 * MIN, 30)]
    assert harness.feed(stream) == []


def test_order_expiry_clears_by_record_and_by_watermark(model: WorksiteResumption) -> None:
    until = T0 + 15 * MIN
    h = Harness(model)
    sigs = h.feed([suspend(T0, until=until), *working(T0 + MIN, 20)])
    assert active(sigs)
    (clear,) = clears(sigs)
    assert clear.evidence["reason"] == "order expired"
    assert clear.ts >= until
    # with no record after expiry, the watermark resolves it
    h2 = Harness(make_model())
    sigs2 = h2.feed([suspend(T0, until=until), *working(T0 + MIN, 13)], watermark_ms=until + MIN)
    assert [s.evidence["reason"] for s in clears(sigs2)] == ["order expired"]


def test_cameras_going_offline_resolve_on_watermark(harness: Harness) -> None:
    sigs = harness.feed([suspend(T0), *working(T0 + MIN, 10)], watermark_ms=T0 + 30 * MIN)
    assert clears(sigs)[0].evidence["reason"] == "activity stopped (no data)"


def test_power_only_resumption(harness: Harness) -> None:
    stream = [suspend(T0)]
    for i in range(30):
        ts = T0 + i * MIN
        stream.append(video(ts + 1000))  # cameras see nothing (covered, or work indoors)
        stream.append(power(ts + 2000, 5.0 if i < 10 else 25.0))
    fired = active(harness.feed(stream))
    assert fired[0].evidence["channels"] == ["power"]
    assert fired[0].level == Level.YELLOW
    # above the threshold at minute 10, held for power_for_s = 120 s
    assert fired[0].ts == T0 + 12 * MIN + 2000
    assert fired[0].evidence["power_above_s"] == 120


def test_power_spike_shorter_than_n_minutes_is_ignored(harness: Harness) -> None:
    stream = [suspend(T0)]
    for i in range(30):
        stream.append(power(T0 + i * MIN, 30.0 if i in (10, 11, 20) else 5.0))
    assert harness.feed(stream) == []


def test_video_only_persistence_without_machinery(harness: Harness) -> None:
    stream = [suspend(T0)]
    for i in range(20):
        stream.append(video(T0 + i * MIN + 1000, persons=4 if i >= 5 else 0))
    fired = active(harness.feed(stream))
    assert fired
    assert "video_persistence" in fired[0].evidence["channels"]
    assert fired[0].evidence["active_windows"] >= 4
    assert (fired[0].ts - T0) // MIN == 8  # the m-th (4th) active window: 5, 6, 7, 8


def test_night_shift_is_one_level_higher(model: WorksiteResumption) -> None:
    day = Harness(model).feed([suspend(T0), *working(T0 + MIN, 5)])
    night_model = make_model()
    night = Harness(night_model).feed([suspend(NIGHT), *working(NIGHT + MIN, 5)])
    assert active(day)[0].level == Level.YELLOW
    assert not active(day)[0].evidence["night"]
    first = active(night)[0]
    assert first.level == Level.ORANGE
    assert first.evidence["night"]
    assert first.evidence["local_hour"] == 23
    assert active(night)[-1].level == Level.RED  # video + power at night
    assert "夜间" in first.title
    assert first.score > active(day)[0].score


def test_noise_complaint_nearby_corroborates(model: WorksiteResumption) -> None:
    h = Harness(model)
    complaint = Hotline(
        ts=NIGHT + 2 * MIN,
        ticket="T1",
        text="工地晚上施工噪音扰民",
        category="噪声",
        lat=32.001,
        lon=120.901,
    )
    far = Hotline(
        ts=NIGHT + 2 * MIN,
        ticket="T2",
        text="工地晚上施工噪音扰民",
        category="噪声",
        lat=32.3,
        lon=121.3,
    )
    other = Hotline(ts=NIGHT + 2 * MIN, ticket="T3", text="路灯坏了", lat=32.0, lon=120.9)
    assert model.route(complaint) is None  # no site suspended yet
    sigs = h.feed([suspend(NIGHT), complaint, far, other])
    assert sigs == []
    assert h.states["W1"].complaints == 1
    sigs = h.feed([video(NIGHT + 3 * MIN + i * MIN, persons=4) for i in range(4)])
    first = active(sigs)[0]
    assert first.evidence["complaints"] == 1
    assert first.level == Level.RED  # video only, +1 night, +1 complaint


def test_flickering_machinery_detections_need_persistence(harness: Harness) -> None:
    stream: list = [suspend(T0)]
    for i in range(60):
        stream.append(video(T0 + i * MIN + 1000, machinery=1 if i % 6 == 0 else 0))
    assert harness.feed(stream) == []


def test_late_video_record_still_counts_for_persistence(harness: Harness) -> None:
    stream = [suspend(T0), *(video(T0 + i * MIN, persons=4) for i in (1, 3, 4))]
    stream += [video(T0 + 2 * MIN + 5000, persons=4, camera="C2")]  # late, other camera
    fired = active(harness.feed(stream))
    assert fired
    assert fired[0].evidence["channels"] == ["video_persistence"]


def test_unknown_site_and_learned_power_baseline(harness: Harness) -> None:
    stream = [suspend(T0, site="W9")]
    for i in range(20):
        stream.append(power(T0 + i * MIN, 8.0 if i < 8 else 40.0, meter="MX", site="W9"))
    fired = active(harness.feed(stream))
    assert fired[0].evidence["idle_kw"] == 8.0  # the minimum of the first 5 readings
    assert fired[0].lat is None
    assert fired[0].title.startswith("W9")


def test_missing_kw_does_not_raise_or_break_a_run(harness: Harness) -> None:
    stream = [suspend(T0)]
    for i in range(10):
        stream.append(power(T0 + i * MIN, None if i % 2 else 30.0))
    fired = active(harness.feed(stream))
    assert fired  # readings at 0, 2, 4 min are above: 240 s > 120 s


def test_config_validation_names_the_field() -> None:
    import pytest

    for kwargs, field in (
        ({"m": 6, "n": 5}, "m, n"),
        ({"window_s": 0}, "window_s"),
        ({"power_rel": -1.0}, "power_rel"),
        ({"night_start_h": 24}, "night_start_h"),
        ({"cusum_h": 0.0}, "h:"),
    ):
        with pytest.raises(ValueError, match=field):
            ResumptionConfig(**kwargs)  # type: ignore[arg-type]


def test_a_newly_suspended_site_may_wind_down_for_settle_s() -> None:
    def run(stream: list) -> list[Signal]:
        # default settle_s = 2400; W2's order, the first the model sees, is a standing one
        return Harness(WorksiteResumption(sites())).feed([suspend(T0 - 120 * MIN, "W2"), *stream])

    # the crew keeps working for 25 minutes after the order, then leaves: legal wind-down
    assert run([suspend(T0), *working(T0, 25), *quiet(T0 + 25 * MIN, 60)]) == []
    # still working 45 minutes after the order: resumption, seen right after the settle period
    fired = active(run([suspend(T0), *working(T0, 60)]))
    assert fired
    assert T0 + 40 * MIN <= fired[0].ts <= T0 + 42 * MIN


def test_standing_orders_at_start_up_get_no_wind_down() -> None:
    """Orders replayed when the stream starts were issued earlier: work right after them counts."""
    model = WorksiteResumption(sites())
    stream = [suspend(T0, "W2"), suspend(T0 + 30_000), *working(T0 + MIN, 10)]
    fired = active(Harness(model).feed(stream))
    assert fired
    assert fired[0].ts <= T0 + 3 * MIN
    assert model.gate.first_ms == T0


def test_lost_meter_readings_do_not_split_a_power_only_episode(harness: Harness) -> None:
    stream = [suspend(T0)]
    for i in range(60):
        ts = T0 + i * MIN
        stream.append(video(ts + 1000))  # cameras covered: zeros
        if i < 40 and not (10 <= i < 17 or 25 <= i < 31):  # two 6-7 minute meter outages
            stream.append(power(ts + 2000, 5.0 if i < 3 else 60.0))
        elif i >= 40:
            stream.append(power(ts + 2000, 5.0))
    sigs = harness.feed(stream)
    assert len([s for s in sigs if s.active and s.ts == s.evidence["since_ts"]]) == 1
    assert all("power" in s.evidence["channels"] for s in active(sigs))
    (clear,) = clears(sigs)
    assert T0 + 40 * MIN <= clear.ts <= T0 + 47 * MIN  # resolved by readings back at idle


def test_a_meter_gone_silent_while_high_resolves_after_stale_and_quiet_windows(
    harness: Harness,
) -> None:
    stream = [suspend(T0)]
    for i in range(40):
        stream.append(video(T0 + i * MIN + 1000))
        if i < 10:
            stream.append(power(T0 + i * MIN + 2000, 60.0))
    (clear,) = clears(harness.feed(stream))
    # held while the last word is "working" and recent (stale_windows = 10), then quiet
    assert T0 + (9 + 10) * MIN < clear.ts <= T0 + (9 + 10 + 2) * MIN


def test_late_meter_readings_do_not_break_a_power_run(harness: Harness) -> None:
    stream = [suspend(T0), *(power(T0 + i * MIN + 2000, 60.0) for i in range(10))]
    stream.insert(6, power(T0 + 2000, 5.0))  # a stale idle reading delivered late
    stream += [video(T0 + i * MIN + 1000) for i in range(10, 14)]
    sigs = harness.feed(stream)
    assert clears(sigs) == []
    assert len([s for s in sigs if s.active and s.ts == s.evidence["since_ts"]]) == 1
    assert all(s.evidence["channels"] == ["power"] for s in sigs)
    assert [(s.ts - T0) // MIN for s in sigs] == list(range(2, 14))  # one update per window
    assert sigs[-1].evidence["power_above_s"] >= 12 * 60  # the run never broke (old: 479)

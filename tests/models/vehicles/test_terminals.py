"""Real hazmat terminals on crafted trajectories: sleep-mode reporting, GPS jumps, missing speed,
irregular sampling, a silence that ends elsewhere.

There is no real GPS trajectory among the project's recorded data sets, so these behaviours are
tested on trajectories written here, as a JT/T 808 terminal produces them: 10-s fixes while the
ignition is on, one fix every 5-60 minutes while it is off.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from citywatch.alerts import Alert, AlertState, Signal
from citywatch.events import Gps
from citywatch.registry import Registry, Vehicle
from models.alert_engine import AlertEngine
from models.vehicles.model import DwellModel, VehicleState
from models.vehicles.stay_point import StayPointDetector
from tests.models.vehicles.trajectories import T0, Fix, at

MIN = 60_000
HOUR = 60 * MIN


def registry(sleep_s: float | None = None) -> Registry:
    v = Vehicle(id="V1", plate="苏F12345", sleep_interval_s=sleep_s)
    return Registry(vehicles={"V1": v})


def drive_in(minutes: float = 3.0) -> list[Fix]:
    """Approaching the spot from 2 km north at ~40 km/h, a fix every 10 s."""
    n = round(minutes * 6)
    return [at(-n * 10 + k * 10, north_m=2000.0 * (n - k) / n) for k in range(n)]


def parked(hours: float, every_min: float, *, awake_s: int = 60) -> list[Fix]:
    """Halted at (LAT0, LON0): ``awake_s`` of 10-s fixes, then one fix every ``every_min``."""
    out = [at(k * 10, north_m=random.Random(k).gauss(0, 5)) for k in range(awake_s // 10)]
    t = awake_s
    while t + every_min * 60 <= hours * 3600:
        t += round(every_min * 60)
        out.append(at(t, north_m=random.Random(t).gauss(0, 5)))
    return out


def leave(after_s: float) -> list[Fix]:
    """Waking up, then driving off east: 10-s fixes from ``after_s``."""
    wake = [at(after_s + k * 10) for k in range(9)]
    return wake + [at(after_s + 90 + k * 10, east_m=120.0 * (k + 1)) for k in range(30)]


def run(
    fixes: list[Fix], reg: Registry, *, speed: float | None = 0.0
) -> tuple[list[Signal], list[Alert], VehicleState]:
    """The fixes through the dwell model and the alert engine as the flow runs them: event time
    ticks every minute (a busy partition), ``on_watermark`` before the fix that crosses it."""
    model = DwellModel(reg)
    state = model.new_state("V1")
    engine = AlertEngine()
    signals: list[Signal] = []
    alerts: dict[str, Alert] = {}

    def emit(out: list[Signal]) -> None:
        signals.extend(out)
        for s in out:
            for a in engine.on_signal(s):
                alerts[a.id] = a

    tick = fixes[0][0] // MIN * MIN + MIN
    for ts, lat, lon in [*fixes, (fixes[-1][0] + 3 * HOUR, 0.0, 0.0)]:
        while tick <= ts:
            emit(model.on_watermark(state, tick))
            for a in engine.advance(tick - 11 * MIN):
                alerts[a.id] = a
            tick += MIN
        if lat:
            emit(model.update(state, Gps(ts=ts, vehicle="V1", lat=lat, lon=lon, speed_kmh=speed)))
    return signals, list(alerts.values()), state


def dwell(signals: list[Signal]) -> list[Any]:
    return [(s.active, s.evidence["start_ms"], s.evidence.get("end_ms")) for s in signals]


@pytest.mark.parametrize("declared", [1800.0, None])
def test_a_truck_parked_six_hours_with_sleep_fixes_is_one_dwell_from_its_first_fix(
    declared: float | None,
) -> None:
    fixes = drive_in() + parked(6, 30) + leave(6 * 3600 + 60)
    signals, alerts, state = run(fixes, registry(declared))
    first = T0  # the first fix at the spot
    assert {s.evidence["start_ms"] for s in signals} == {first}
    assert [s.active for s in signals][-1] is False
    assert all(s.active for s in signals[:-1])
    end = signals[-1].evidence["end_ms"]
    assert 6 * HOUR <= end - first <= 6 * HOUR + 3 * MIN  # it left when the fixes said so
    (alert,) = alerts  # one alert: the engine never saw it quiet between the sleep fixes
    assert alert.state is AlertState.RESOLVED
    assert alert.level.name == "RED"  # unregistered spot, more than 2 h
    assert state.det.sleep_ms == 1800_000 or declared is None


def test_a_declared_sleeper_is_alerted_when_the_threshold_passes_not_at_its_next_fix() -> None:
    # Halted for 60 s, then silent for 30 min: unregistered spot, suspicious at 15 min.
    fixes = drive_in() + parked(2, 30) + leave(2 * 3600 + 60)
    signals, _, _ = run(fixes, registry(1800.0))
    first = next(s for s in signals if s.active)
    assert first.ts - T0 == 15 * MIN  # from the believed presence, at the minute tick
    assert first.evidence["last_fix_ms"] - T0 < 2 * MIN


def test_the_old_rule_lost_the_sleeping_truck() -> None:
    """What the fixed 600-s gap rule saw: every sleep fix a new candidate, never a stop."""
    fixes = drive_in() + parked(6, 30)
    det = StayPointDetector()
    stops = [det.update(*f) for f in fixes]
    assert any(s is not None for s in stops)  # now: the learned sleep keeps the stay
    assert 30 * MIN <= det.sleep_ms <= 31 * MIN  # learned from the first silence


def test_a_gps_jump_during_sleep_does_not_end_the_stay() -> None:
    stay = parked(4, 30)
    k = len(stay) // 2
    t_jump = stay[k][0] + 60_000
    jump = (t_jump, *at(0, north_m=5_000.0, east_m=3_000.0)[1:])
    fixes = drive_in() + stay[: k + 1] + [jump] + stay[k + 1 :] + leave(4 * 3600 + 60)
    signals, alerts, state = run(fixes, registry(1800.0))
    assert {s.evidence["start_ms"] for s in signals} == {T0}
    assert len(alerts) == 1
    assert state.det.outliers == 1


def test_a_jump_of_an_awake_terminal_does_not_end_the_stay() -> None:
    stay = [at(k * 10, north_m=random.Random(k).gauss(0, 5)) for k in range(360)]
    stay[200] = (stay[200][0], *at(0, north_m=-8_000.0)[1:])
    signals, alerts, state = run(drive_in() + stay + leave(3600), registry())
    assert {s.evidence["start_ms"] for s in signals} == {T0}
    assert len(alerts) == 1
    assert state.det.outliers == 1


def test_missing_speed_changes_nothing() -> None:
    fixes = drive_in() + parked(3, 15) + leave(3 * 3600 + 60)
    with_speed = run(fixes, registry(900.0), speed=0.0)[0]
    without = run(fixes, registry(900.0), speed=None)[0]
    assert with_speed == without
    assert with_speed


def test_irregular_sampling_is_one_stay() -> None:
    rng = random.Random(5)
    stay: list[Fix] = []
    t = 0.0
    while t < 50 * 60:
        t += rng.choice([1, 2, 3, 5, 5, 8, 15, 30, 45])
        if rng.random() < 0.1:
            continue  # lost
        stay.append(at(t, north_m=rng.gauss(0, 8), east_m=rng.gauss(0, 8)))
    signals, alerts, _ = run(drive_in() + stay + leave(50 * 60 + 30), registry())
    (start,) = {s.evidence["start_ms"] for s in signals}
    assert T0 - MIN <= start <= stay[0][0]  # the approach's last fixes may be within R
    assert len(alerts) == 1
    assert signals[-1].active is False


def test_a_silence_that_ends_outside_the_radius_ends_one_interval_after_the_last_fix() -> None:
    # Declared 30 min: fixes at the spot until 61 min, then the next fix 40 min later, 2 km off.
    stay = parked(1.1, 30)
    last = stay[-1][0]
    away = [(last + 40 * MIN + k * 10_000, *at(0, east_m=2_000.0 + 100 * k)[1:]) for k in range(6)]
    signals, _, _ = run(drive_in() + stay + away, registry(1800.0))
    clear = signals[-1]
    assert clear.active is False
    assert clear.evidence["end_ms"] == last + 30 * MIN  # not the fix 40 min later
    assert clear.evidence["closed_by"] == "left"


def test_a_silence_longer_than_the_interval_allows_ends_the_stay_at_the_interval() -> None:
    stay = parked(1.1, 30)
    last = stay[-1][0]
    signals, alerts, _ = run(drive_in() + stay, registry(1800.0))  # then nothing for hours
    clear = signals[-1]
    assert (clear.active, clear.evidence["closed_by"]) == (False, "gap")
    assert clear.evidence["end_ms"] == last + 30 * MIN
    assert clear.ts <= last + 70 * MIN + MIN  # said once event time passed S = 2E + G
    assert len(alerts) == 1


def test_an_awake_terminal_keeps_the_old_gap_rule() -> None:
    """No sleep declared or seen: a stop that goes dark for more than G ends at its last fix."""
    stay = [at(k * 10) for k in range(120)]  # 20 min of 10-s fixes
    signals, _, state = run(drive_in() + stay, registry())
    clear = signals[-1]
    assert (clear.active, clear.evidence["closed_by"]) == (False, "gap")
    assert clear.evidence["end_ms"] == stay[-1][0]
    assert state.det.sleep_ms == 0

"""StayPointDetector against a batch reference, on crafted and generated trajectories."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.vehicles.stay_point import M_PER_DEG_LAT, StayPointDetector, Stop

from .trajectories import LAT0, LON0, T0, Fix, RefStop, at, generate, reference_stops

R, T, G = 150.0, 180.0, 600.0


def north(dt_s: float, metres: float) -> Fix:
    """Due north of the origin: planar and haversine distances agree exactly."""
    return (T0 + round(dt_s * 1000), LAT0 + metres / M_PER_DEG_LAT, LON0)


def run(fixes: list[Fix], det: StayPointDetector | None = None) -> list[RefStop]:
    """Stream ``fixes`` and return the stops in the reference's shape (confirm time included).

    Confirmations are read from ``in_stop`` (a fix that ends one stop and confirms the next
    returns only the ended one); every open Stop returned must match a confirmation.
    """
    det = det or StayPointDetector(R, T, G)
    confirmed: dict[int, int] = {}
    out: list[RefStop] = []

    def closed(s: Stop) -> None:
        assert s.end_ms is not None
        out.append(
            RefStop(
                s.start_ms,
                confirmed.pop(s.start_ms),
                s.end_ms,
                s.closed_by,
                s.n_fixes,
                s.lat,
                s.lon,
            )
        )

    for ts, lat, lon in fixes:
        s = det.update(ts, lat, lon)
        if s is not None and s.end_ms is not None:
            closed(s)
        if det.in_stop and det.start_ms not in confirmed:
            confirmed[det.start_ms] = ts
        if s is not None and s.end_ms is None:
            assert confirmed[s.start_ms] == ts
    last = det.close()
    if last is not None:
        closed(last)
    assert not confirmed, "every confirmed stop is closed exactly once"
    return out


def same(a: list[RefStop], b: list[RefStop]) -> None:
    assert [(s.start_ms, s.confirm_ms, s.end_ms, s.closed_by, s.n_fixes) for s in a] == [
        (s.start_ms, s.confirm_ms, s.end_ms, s.closed_by, s.n_fixes) for s in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x.lat == pytest.approx(y.lat, abs=1e-9)
        assert x.lon == pytest.approx(y.lon, abs=1e-9)


# -- crafted ---------------------------------------------------------------------------------


def test_stop_confirmed_at_t_and_ends_at_first_fix_outside() -> None:
    fixes = [at(10 * i, north_m=(i % 3) * 5.0) for i in range(30)] + [at(300, north_m=400)]
    got = run(fixes)
    assert len(got) == 1
    stop = got[0]
    assert stop.start_ms == T0
    assert stop.confirm_ms == T0 + 180_000  # the first fix with ts - start >= T
    assert stop.end_ms == T0 + 300_000  # leaving time = the first fix outside R
    assert stop.closed_by == "left"
    assert stop.n_fixes == 30
    same(got, reference_stops(fixes, R, T, G))


def test_shorter_than_t_is_no_stop() -> None:
    fixes = [at(10 * i) for i in range(18)] + [at(180, north_m=500)]  # 170 s < 180 s
    assert run(fixes) == []


def test_radius_boundary_is_inclusive() -> None:
    # A truck flickering between two spots R apart: one stop when R is inside, none when not
    # (scikit-mobility's rule, without outlier dropping).
    raw = StayPointDetector(R, T, G, drop_outliers=False)
    inside = [north(10 * i, (i % 2) * (R - 0.01)) for i in range(20)] + [north(200, 1000)]
    got = run(inside, raw)
    assert [(s.start_ms, s.n_fixes) for s in got] == [(T0, 20)]
    same(got, reference_stops(inside, R, T, G, drop_outliers=False))
    outside = [north(10 * i, (i % 2) * (R + 0.01)) for i in range(20)]
    assert run(outside, StayPointDetector(R, T, G, drop_outliers=False)) == []
    assert reference_stops(outside, R, T, G, drop_outliers=False) == []


def test_boundary_with_outlier_dropping_needs_two_fixes_outside() -> None:
    stay = [north(10 * i, (i % 2) * (R - 0.01)) for i in range(20)]
    got = run([*stay, north(200, R + 0.01), north(210, R + 0.01)])
    assert [(s.n_fixes, s.end_ms, s.closed_by) for s in got] == [(20, T0 + 200_000, "left")]
    # one fix just outside, then back just inside: an outlier, the stop goes on
    got = run([*stay, north(200, R + 0.01), north(210, R - 0.01)])
    assert [(s.n_fixes, s.end_ms, s.closed_by) for s in got] == [(21, T0 + 210_000, "flush")]


def test_a_single_multipath_fix_neither_ends_a_stop_nor_restarts_a_candidate() -> None:
    det = StayPointDetector(R, T, G)
    fixes = [north(10 * i, 0) for i in range(10)] + [north(100, 230)]  # 230 m glitch, at 100 s
    fixes += [north(10 * i, 0) for i in range(11, 40)] + [north(400, 240)]  # again at 400 s
    fixes += [north(10 * i, 0) for i in range(41, 60)]
    got = run(fixes, det)
    assert [(s.start_ms, s.confirm_ms, s.n_fixes) for s in got] == [(T0, T0 + 180_000, 58)]
    assert det.outliers == 2
    same(got, reference_stops(fixes, R, T, G))


def test_gap_splits_a_stop_and_ends_it_at_the_last_fix_before() -> None:
    fixes = [at(10 * i) for i in range(30)]  # 0..290 s
    fixes += [at(290 + 601 + 10 * i) for i in range(30)]  # 601 s later, same place
    got = run(fixes)
    assert [(s.start_ms - T0, s.end_ms - T0 if s.end_ms else None, s.closed_by) for s in got] == [
        (0, 290_000, "gap"),
        (891_000, 1_181_000, "flush"),
    ]
    same(got, reference_stops(fixes, R, T, G))


def test_a_fix_outside_then_a_gap_ends_the_stop_at_that_fix() -> None:
    fixes = [at(10 * i) for i in range(30)] + [at(300, 500), at(300 + 601, 0)]
    got = run(fixes)
    assert [(s.end_ms, s.closed_by) for s in got] == [(T0 + 300_000, "left")]
    same(got, reference_stops(fixes, R, T, G))


def test_flush_settles_a_pending_fix_outside() -> None:
    det = StayPointDetector(R, T, G)
    for i in range(30):
        det.update(*at(10 * i))
    assert det.update(*at(300, 500)) is None
    assert det.flush(T0 + 900_000) is None  # exactly G after the pending fix
    stop = det.flush(T0 + 900_001)
    assert stop is not None
    assert (stop.end_ms, stop.closed_by) == (T0 + 300_000, "left")


def test_gap_of_exactly_g_does_not_split() -> None:
    fixes = [at(0), at(10), at(610), at(620)]
    got = run(fixes)
    assert [(s.start_ms, s.n_fixes) for s in got] == [(T0, 4)]


def test_jitter_within_radius_keeps_one_stop() -> None:
    import random

    rng = random.Random(3)
    fixes = [at(10 * i, rng.gauss(0, 15), rng.gauss(0, 15)) for i in range(360)]
    fixes.append(at(3600, 2000))
    got = run(fixes)
    assert len(got) == 1
    assert got[0].end_ms == T0 + 3_600_000
    assert got[0].n_fixes == 360
    # the centroid averages the jitter out: within a few metres of the true spot
    assert abs(got[0].lat - LAT0) * M_PER_DEG_LAT < 3.0


def test_out_of_order_and_duplicate_fixes_are_dropped_and_counted() -> None:
    det = StayPointDetector(R, T, G)
    fixes = [at(10 * i) for i in range(20)]
    fixes.insert(10, fixes[5])  # late
    fixes.insert(3, fixes[2])  # duplicate
    run(fixes, det)
    assert det.dropped == 2
    same(run(fixes), run(sorted(set(fixes))))


def test_flush_closes_a_stop_when_the_vehicle_goes_dark() -> None:
    det = StayPointDetector(R, T, G)
    for i in range(30):
        det.update(*at(10 * i))
    assert det.in_stop
    assert det.flush(T0 + 290_000 + 600_000) is None  # exactly G: still waiting
    stop = det.flush(T0 + 290_000 + 600_001)
    assert stop is not None
    assert (stop.end_ms, stop.closed_by) == (T0 + 290_000, "gap")
    assert not det.in_stop
    assert det.flush(T0 + 10**9) is None
    # the next fix starts a fresh candidate
    assert det.update(*at(5000)) is None
    assert det.n_fixes == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"radius_m": 0}, "radius_m"),
        ({"min_duration_s": -1}, "min_duration_s"),
        ({"max_gap_s": float("nan")}, "max_gap_s"),
    ],
)
def test_bad_parameters_are_rejected_by_name(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        StayPointDetector(**kwargs)


# -- generated -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("drop", [True, False])
def test_matches_batch_reference_on_generated_trajectories(seed: int, drop: bool) -> None:
    fixes = generate(seed)
    expected = reference_stops(fixes, R, T, G, drop_outliers=drop)
    assert expected, "the generator makes stops"
    same(run(fixes, StayPointDetector(R, T, G, drop_outliers=drop)), expected)


@pytest.mark.parametrize(("r", "t", "g"), [(50.0, 60.0, 120.0), (300.0, 900.0, 1800.0)])
def test_matches_batch_reference_with_other_parameters(r: float, t: float, g: float) -> None:
    for seed in range(100, 110):
        fixes = generate(seed)
        same(run(fixes, StayPointDetector(r, t, g)), reference_stops(fixes, r, t, g))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-20_000, 120_000), st.floats(-250, 250), st.floats(-250, 250)),
        max_size=80,
    )
)
def test_matches_batch_reference_on_arbitrary_fixes(steps: list[tuple[int, float, float]]) -> None:
    fixes: list[Fix] = []
    t = T0
    for dt, n_m, e_m in steps:  # negative steps make out-of-order fixes
        t += dt
        fixes.append(at((t - T0) / 1000, n_m, e_m))
    same(
        run(fixes, StayPointDetector(100.0, 60.0, 90.0)), reference_stops(fixes, 100.0, 60.0, 90.0)
    )


# -- contract --------------------------------------------------------------------------------


def _pickled(obj: StayPointDetector) -> StayPointDetector:
    return pickle.loads(pickle.dumps(obj))  # noqa: S301 (our own bytes)


@pytest.mark.parametrize("copier", [_pickled, copy.deepcopy])
def test_copy_mid_stream_gives_identical_later_output(
    copier: Callable[[StayPointDetector], StayPointDetector],
) -> None:
    fixes = generate(7)
    det = StayPointDetector(R, T, G)
    half = len(fixes) // 2
    for f in fixes[:half]:
        det.update(*f)
    twin = copier(det)
    assert [det.update(*f) for f in fixes[half:]] == [twin.update(*f) for f in fixes[half:]]


def test_state_is_small() -> None:
    det = StayPointDetector()
    for f in generate(1):
        det.update(*f)
    assert len(pickle.dumps(det)) < 300


def test_generated_trajectories_cover_every_case() -> None:
    """Guard for the generator: the reference comparison exercises gaps, leaves, drops."""
    kinds: set[str] = set()
    dropped = outliers = 0
    for seed in range(60):
        det = StayPointDetector(R, T, G)
        kinds.update(s.closed_by for s in run(generate(seed), det))
        dropped += det.dropped
        outliers += det.outliers
    assert kinds == {"left", "gap", "flush"}
    assert dropped > 50
    assert outliers > 20


# -- arrival_ms ------------------------------------------------------------------------------


def test_arrival_survives_a_candidate_restarted_by_jitter_after_a_slow_approach() -> None:
    det = StayPointDetector(R, T, G)
    det.update(*north(0, -145))  # anchored short of the spot
    for i in range(1, 16):
        assert det.update(*north(10 * i, 0)) is None  # standing at the spot
    det.update(*north(160, 8))  # 153 m from the anchor, twice: not an outlier,
    det.update(*north(170, 8))  # so the candidate (150 s < T) restarts at 160 s
    assert det.start_ms == T0 + 160_000
    assert det.arrival_ms == T0
    stop = None
    for i in range(18, 40):
        stop = det.update(*north(10 * i, 0)) or stop
    assert stop is not None
    assert stop.start_ms == T0 + 160_000  # what a stop is does not change
    assert det.arrival_ms == T0


def test_arrival_is_the_anchor_while_driving() -> None:
    det = StayPointDetector(R, T, G)
    for i in range(200):  # 15 km/h: candidates last ~40 s and fail
        det.update(*north(10 * i, 41.7 * i))
        assert det.arrival_ms == det.start_ms


def test_arrival_is_less_than_t_plus_g_before_the_anchor() -> None:
    earlier = 0
    for seed in range(30):
        det = StayPointDetector(R, T, G)
        for f in generate(seed):
            det.update(*f)
            assert det.start_ms - det.min_duration_ms - det.max_gap_ms < det.arrival_ms
            assert det.arrival_ms <= det.start_ms
            earlier += det.arrival_ms < det.start_ms
    assert earlier > 0

"""Running statistics against numpy on prefixes, the calibration's meaning, and what each
detector finds (and does not)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from models.detect import (
    Ensemble,
    FlatLine,
    LevelShift,
    Mahalanobis,
    Resolution,
    RobustZ,
    Seasonal,
    TailCalibrator,
    Trend,
    VarianceShift,
)
from models.detect.base import surprise_upper, surprise_z
from models.detect.ensemble import _fisher_surprise

HOUR = 3_600_000
MIN_MS = 60_000


def gauss(n: int, seed: int = 1, mu: float = 10.0, sd: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [mu + rng.gauss(0.0, sd) for _ in range(n)]


# -- numpy on prefixes ------------------------------------------------------------------------


def test_robust_z_warmup_location_is_the_running_mean() -> None:
    xs = gauss(80, seed=3)
    d = RobustZ(half_life=1e9, warmup=80)
    for n, x in enumerate(xs, 1):
        d.learn_one(x)
        assert d.location == pytest.approx(float(np.mean(xs[:n])), rel=1e-9)


def test_level_shift_warmup_means_are_the_running_mean() -> None:
    xs = gauss(60, seed=4)
    d = LevelShift(1e8, 1e9, warmup=60)
    for n, x in enumerate(xs, 1):
        d.learn_one(x)
        assert d.fast == pytest.approx(float(np.mean(xs[:n])), rel=1e-9)
        assert d.slow == pytest.approx(float(np.mean(xs[:n])), rel=1e-9)


def test_variance_shift_warmup_means_are_numpys() -> None:
    xs = gauss(60, seed=5)
    d = VarianceShift(1e8, 1e9, warmup=60, clip=1e9, floor_share=1e-9)
    for n, x in enumerate(xs, 1):
        d.learn_one(x)
        if n >= 2:
            steps = np.abs(np.diff(xs[:n]))
            assert d.mean_step == pytest.approx(float(np.mean(steps)), rel=1e-9)
            assert d.slow == pytest.approx(float(np.mean(np.log(steps))), rel=1e-9)
            assert d.fast == pytest.approx(float(np.mean(np.log(steps))), rel=1e-9)


def test_flat_line_repeat_rate_is_the_share_of_repeats() -> None:
    rng = random.Random(6)
    xs = [float(rng.choice((1, 1, 1, 2))) for _ in range(300)]
    d = FlatLine(half_life=1e12, warmup=1, hold=1e9)
    for n, x in enumerate(xs, 1):
        d.learn_one(x)
        if n >= 2:
            rep = np.array(xs[1:n]) == np.array(xs[: n - 1])
            # a running mean over the pairs, the prior 0.5 weighing one pair
            assert d.p_repeat == pytest.approx((0.5 + rep.sum()) / (1 + len(rep)), rel=1e-9)


def test_mahalanobis_warmup_locations_and_learned_correlation() -> None:
    rng = np.random.default_rng(7)
    cov = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, -0.2], [-0.3, -0.2, 1.0]])
    xs = rng.multivariate_normal([5.0, -2.0, 100.0], cov, size=20_000)
    m = Mahalanobis(3, half_life=1e9, warmup=100)
    for n, row in enumerate(xs[:100], 1):
        m.learn_one(row.tolist())
        assert m.loc == pytest.approx(xs[:n].mean(axis=0).tolist(), rel=1e-9)
    for row in xs[100:]:
        m.learn_one(row.tolist())
    np.testing.assert_allclose(m.correlation(), np.corrcoef(xs.T), atol=0.05)


def test_calibrator_counts_match_numpy() -> None:
    rng = np.random.default_rng(8)
    s = rng.exponential(2.0, size=5000)
    c = TailCalibrator(half_life=1e12)
    for v in s:
        c.learn(float(v))
    assert c.phi == pytest.approx((np.sum(s > c.u) + 30 * math.exp(-c.u)) / (5000 + 30))
    for edge in (0.0, 3.0, 7.0, 12.0):
        assert c.empirical(edge) == pytest.approx(float(np.mean(s >= edge)), rel=1e-9)


def test_resolution_is_numpys_smallest_step_on_a_grid() -> None:
    rng = np.random.default_rng(9)
    xs = np.round(np.cumsum(rng.normal(0, 0.3, 2000)), 1)
    r = Resolution()
    for v in xs:
        r.learn(float(v))
    d = np.abs(np.diff(xs))
    assert r.quantum == pytest.approx(float(d[d > 1e-9].min()), rel=1e-6)


# -- calibration --------------------------------------------------------------------------------


def test_surprise_is_minus_log_of_the_normal_tail() -> None:
    assert math.exp(-surprise_z(1.96)) == pytest.approx(0.05, rel=1e-3)
    assert math.exp(-surprise_upper(3.0)) == pytest.approx(0.00135, rel=1e-2)
    assert surprise_upper(-1.0) == 0.0
    big = [surprise_z(z) for z in (10.0, 24.9, 25.1, 100.0, 1e6)]
    assert big == sorted(big)
    assert all(math.isfinite(v) for v in big)


def test_calibrator_is_nominal_without_data() -> None:
    c = TailCalibrator()
    for s in (3.0, 6.9, 12.0):
        assert c.p(s) == pytest.approx(math.exp(-s), rel=1e-6)


def test_calibrated_score_means_what_it_says_on_heavy_tails() -> None:
    """On Student-t noise a normal z says 0.999 far too often; the calibrated score does not."""
    rng = np.random.default_rng(10)
    xs = 10.0 + rng.standard_t(3, size=60_000)
    d = RobustZ(warmup=50)
    scores = np.array([d.update(float(x)) for x in xs])[20_000:]
    for level in (0.99, 0.999):
        assert np.mean(scores >= level) == pytest.approx(1.0 - level, rel=0.6)


# -- what each detector finds --------------------------------------------------------------------


def test_robust_z_flags_a_spike_not_its_neighbours() -> None:
    d = RobustZ()
    for x in gauss(3000):
        d.learn_one(x)
    assert d.score_one(10.5) < 0.9
    assert d.score_one(18.0) > 0.9999


def test_level_shift_flags_a_lasting_shift_and_accepts_it_later() -> None:
    d = LevelShift(max_hold=100)
    for x in gauss(3000):
        d.learn_one(x)
    scores = [d.update(x) for x in gauss(600, seed=2, mu=12.0)]
    assert max(scores[:40]) > 0.999
    assert max(scores[-100:]) < 0.999


def test_variance_shift_flags_a_noisier_series() -> None:
    d = VarianceShift()
    for x in gauss(5000):
        d.learn_one(x)
    scores = [d.update(x) for x in gauss(200, seed=2, sd=4.0)]
    assert max(scores) > 0.9999


def test_variance_shift_ignores_spikes_and_shifts_and_accepts_a_lasting_change() -> None:
    d = VarianceShift(max_hold=300)
    xs = gauss(6000)
    for i, x in enumerate(xs):
        if i > 3000 and i % 400 == 0:
            x += 30.0  # a spike: two big steps
        if i > 3000 and i % 400 == 200:
            xs[i:] = [v + 20.0 for v in xs[i:]]  # a level shift: one big step
            x = xs[i]
        s = d.update(x)
        if i > 3000:
            assert s < 0.999, i
    later = [d.update(x) for x in gauss(3000, seed=3, sd=4.0)]
    assert max(later[:200]) > 0.9999
    assert max(later[-500:]) < 0.999  # four times the noise for a while is the new normal


def test_variance_shift_calmer_is_flagged_only_when_asked() -> None:
    up, both = VarianceShift(), VarianceShift(side="both")
    for x in gauss(5000):
        up.learn_one(x)
        both.learn_one(x)
    calm = gauss(300, seed=4, sd=0.1)
    assert max(up.update(x) for x in calm) < 0.99
    assert max(both.update(x) for x in calm) > 0.999


def test_seasonal_knows_the_hour() -> None:
    d = Seasonal()
    rng = random.Random(11)
    for h in range(24 * 28):
        busy = 8 <= (h + 8) % 24 < 18  # 08:00-18:00 Beijing time
        d.learn_one((100.0 if busy else 5.0) + rng.gauss(0, 2.0), h * HOUR)
    t_night = (24 * 28 + 3) * HOUR - 8 * HOUR  # 03:00 local (UTC+8)
    t_day = (24 * 28 + 12) * HOUR - 8 * HOUR
    assert d.score_one(100.0, t_day) < 0.99
    assert d.score_one(100.0, t_night) > 0.9999
    assert d.predict(t_night) == pytest.approx(5.0, abs=1.5)


def test_seasonal_learns_the_same_cycle_at_any_cadence() -> None:
    for step in (MIN_MS, 15 * MIN_MS, HOUR):
        d = Seasonal()
        for i in range(14 * 24 * HOUR // step):
            t = i * step
            d.learn_one(10.0 + 5.0 * math.sin(2 * math.pi * t / (24 * HOUR)), t)
        t = 14 * 24 * HOUR + 6 * HOUR - 8 * HOUR
        assert d.predict(t) == pytest.approx(
            10.0 + 5.0 * math.sin(2 * math.pi * t / (24 * HOUR)), abs=1.0
        )


def test_flat_line_flags_a_frozen_sensor_on_a_coarse_grid() -> None:
    d = FlatLine()
    rng = random.Random(12)
    natural = [
        d.update(round(8.0 + 0.3 * math.sin(i / 30) + rng.gauss(0, 0.1), 1)) for i in range(8000)
    ]
    scores = [d.update(8.2) for _ in range(120)]
    assert scores[3] < 0.99  # a few repeats are ordinary on a 0.1 grid
    assert scores[-1] > 0.99
    assert scores[-1] > max(natural[2000:])  # longer than any natural run scores higher


def test_flat_line_min_run_ignores_short_runs() -> None:
    rng = random.Random(16)
    d, d3 = FlatLine(), FlatLine(min_run=3)
    for _ in range(3000):
        x = round(rng.gauss(10.0, 1.0), 3)
        d.update(x)
        d3.update(x)
    x = 10.5
    d.update(x)
    d3.update(x)
    one, one3 = d.update(x), d3.update(x)  # a first repeat
    two, two3 = d.update(x), d3.update(x)
    three3 = d3.update(x)
    assert one > 0.9  # a continuous series: even one repeat is rare
    assert two > 0.99
    assert one3 == 0.0
    assert two3 == 0.0
    assert three3 > 0.999


def test_mahalanobis_flags_channels_breaking_their_relation() -> None:
    rng = np.random.default_rng(13)
    m = Mahalanobis(("ph", "redox"))
    for _ in range(5000):
        u = rng.normal()
        m.learn_one({"ph": 8.0 + 0.1 * u, "redox": 750.0 + 10.0 * u + rng.normal(0, 1.0)})
    assert m.score_one({"ph": 8.15, "redox": 765.0}) < 0.999
    assert m.score_one({"ph": 8.15, "redox": 735.0}) > 0.9999
    assert m.score_one({"ph": 8.0, "redox": None}) < 0.99  # one channel judged alone


def test_ensemble_combination_rules() -> None:
    ps = [0.5, 0.001, 1.0, 1.0, 1.0]
    assert Ensemble(combine="bonferroni")._combine(ps) == pytest.approx(0.005)
    hmp = Ensemble(combine="hmp")._combine(ps)
    assert hmp == pytest.approx(5.0 / (2.0 + 1000.0 + 3.0))
    assert hmp < 0.005  # never above Bonferroni
    f = Ensemble(combine="fisher")
    assert f._combine([1.0] * 5) == pytest.approx(1.0)
    assert f._combine([0.01] * 5) < 0.01 * 5
    # chi-squared with 10 degrees of freedom, P(X >= 20) = 0.0292527
    assert f._combine([math.exp(-2.0)] * 5) == pytest.approx(0.0292527, rel=1e-5)
    # the default: twice the smaller of the harmonic mean of all five and the (calibrated,
    # before any data nominal) Fisher p of the members that see a lasting deviation
    e = Ensemble()
    assert e.names == ("robust_z", "variance_shift", "seasonal", "flat_line", "trend")
    assert e.agree == ("seasonal", "trend")
    assert e._combine([1.0] * 5) == 1.0
    two = {"a": RobustZ(), "b": RobustZ()}
    fisher = Ensemble(two, combine="fisher")._combine([0.01, 0.01])
    assert fisher == pytest.approx(1e-4 * (1.0 - math.log(1e-4)))  # chi-squared, 4 d.o.f.
    assert e._combine([0.01] * 5) == pytest.approx(2.0 * fisher)
    # robust_z and flat_line are outside ``agree``: their agreement is no Fisher evidence
    assert e._combine([0.2, 1.0, 1.0, 0.2, 1.0]) == pytest.approx(2.0 * 5.0 / (10.0 + 3.0))
    assert e._combine([1e-6, 1.0, 1.0, 1.0, 1.0]) == pytest.approx(2.0 * 5.0 / (1e6 + 4.0))
    # custom members: every member agrees unless told otherwise
    assert Ensemble(two).agree == ("a", "b")
    assert Ensemble(two, agree=["b"]).agree == ("b",)
    with pytest.raises(ValueError, match="agree"):
        Ensemble(two, agree=["c"])
    with pytest.raises(ValueError, match="combine"):
        Ensemble(combine="max")  # type: ignore[arg-type]


def test_ensemble_fisher_calibration_learns_that_agreement_is_usual_here() -> None:
    """Two members that watch the same thing are surprised together; nominal Fisher counts that
    as two findings, the calibrated statistic learns that it is one."""
    e = Ensemble({"a": RobustZ(warmup=10), "b": RobustZ(warmup=10, half_life=2.5)})
    rng = random.Random(21)
    for _ in range(5000):
        e.update(10.0 + rng.gauss(0.0, 1.0))
    cal = e.calibrator
    assert cal is not None
    s = _fisher_surprise([0.01, 0.01])  # both at 1%: nominally p = 0.00102
    assert math.exp(-s) == pytest.approx(1e-4 * (1.0 - math.log(1e-4)), rel=1e-9)
    assert cal.p(s) > 3.0 * math.exp(-s)


def test_trend_flags_a_slow_drift_beyond_the_natural_wander() -> None:
    rng = random.Random(22)
    walk = 0.0
    xs = []
    for _ in range(6000):  # a wandering level (sd 1 over 200 readings) plus noise
        walk = 0.995 * walk + rng.gauss(0.0, 0.1)
        xs.append(10.0 + walk + rng.gauss(0.0, 0.3))
    tr = Trend()
    natural = [tr.update(x) for x in xs]
    drift = [10.0 + walk + rng.gauss(0.0, 0.3) + 0.05 * i for i in range(200)]  # +10 in 200
    scores = [tr.update(x) for x in drift]
    assert max(scores[:20]) < 0.99  # not yet
    assert max(scores) > 0.999
    assert max(scores) > max(natural[2000:])


def test_trend_compares_with_the_level_lag_readings_ago() -> None:
    tr = Trend(lag=10, warmup=20, smooth_half_life=1e-9)  # no smoothing: the level is x
    for i in range(30):
        tr.learn_one(float(i % 3))
    assert tr.level == pytest.approx(2.0)
    assert tr.ring[tr._i] == pytest.approx(float((30 - 10) % 3))  # the level 10 readings ago


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RobustZ(half_life=0), "half_life"),
        (lambda: RobustZ(side="left"), "side"),  # type: ignore[arg-type]
        (lambda: LevelShift(10, 5), "fast_half_life"),
        (lambda: VarianceShift(warmup=1), "warmup"),
        (lambda: VarianceShift(side="left"), "side"),  # type: ignore[arg-type]
        (lambda: FlatLine(p_min=0.9, p_max=0.5), "p_min"),
        (lambda: FlatLine(min_run=0), "min_run"),
        (lambda: Seasonal(clip=0), "clip"),
        (lambda: Mahalanobis(1), "channels"),
        (lambda: TailCalibrator(u=0), "u"),
        (lambda: Ensemble({}), "members"),
        (lambda: Trend(lag=1), "lag"),
        (lambda: Trend(lag=100, warmup=50), "warmup"),
        (lambda: Trend(smooth_half_life=0), "smooth_half_life"),
    ],
)
def test_bad_parameters_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()  # type: ignore[operator]


def test_calibrator_folds_zero_surprises_exactly() -> None:
    """Zero surprises are counted and folded in later; the result is the same as one by one."""
    rng = np.random.default_rng(14)
    s = np.where(rng.random(3000) < 0.7, 0.0, rng.exponential(3.0, 3000))
    lazy = TailCalibrator(half_life=500)
    eager = TailCalibrator(half_life=500, alarm_weight=1.0 - 1e-12)  # no zero shortcut
    for i, v in enumerate(s):
        lazy.learn(float(v))
        eager.learn(float(v))
        if i % 97 == 0:
            for q in (0.5, 3.0, 9.0, 20.0):
                assert lazy.p(q) == pytest.approx(eager.p(q), rel=1e-9)
    assert lazy.phi == pytest.approx(eager.phi, rel=1e-9)


@pytest.mark.parametrize("alarm_weight", [1.0, 0.1])
def test_calibrator_update_is_p_then_learn(alarm_weight: float) -> None:
    """The hot path's short cut gives the same p and the same state as p() then learn()."""
    rng = np.random.default_rng(15)
    kinds = rng.integers(0, 4, 6000)
    s = np.where(kinds == 0, 0.0, np.where(kinds == 1, rng.exponential(1.0, 6000), 0.0))
    s = np.where(kinds == 2, rng.exponential(8.0, 6000), s)
    s = np.where(kinds == 3, rng.uniform(0.0, 2.3, 6000), s)
    fused = TailCalibrator(half_life=300, alarm_weight=alarm_weight)
    split = TailCalibrator(half_life=300, alarm_weight=alarm_weight)
    for v in s.tolist():
        p = split.p(v) if v > 0.0 else 1.0
        split.learn(v, p)
        assert fused.update(v) == p
    assert fused.counts == split.counts
    assert (fused.total, fused.w_exc, fused.m1, fused.m2) == (
        split.total,
        split.w_exc,
        split.m1,
        split.m2,
    )

"""RobustZ under its legacy name (models.robust_z): the z-scores models were tuned with.

The calibrated score and the contract of every detector are tested in tests/models/detect/;
here: the legacy defaults and the z-score statistics models use (z_of, learn_value).
"""

from __future__ import annotations

import copy
import math
import pickle
import random

import numpy as np
import pytest

from models.robust_z import RobustZ


def _series(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [10.0 + rng.gauss(0.0, 1.0) for _ in range(n)]


def test_location_and_scale_track_a_gaussian() -> None:
    d = RobustZ(half_life=200, warmup=20)
    for x in _series(5000):
        d.learn_one(x)
    assert d.location == pytest.approx(10.0, abs=0.2)
    assert d.scale == pytest.approx(1.0, rel=0.15)


def test_warmup_running_mean_matches_numpy_on_every_prefix() -> None:
    xs = _series(50, seed=3)
    d = RobustZ(half_life=1e9, warmup=50)
    for n, x in enumerate(xs, 1):
        d.learn_one(x)
        assert d.location == pytest.approx(float(np.mean(xs[:n])), rel=1e-9)


def test_score_is_zero_in_warmup_and_for_missing() -> None:
    d = RobustZ(warmup=5)
    for x in (1.0, 2.0, 3.0, 4.0):
        d.learn_one(x)
        assert d.score_one(100.0) == 0.0
    d.learn_one(5.0)
    assert d.score_one(100.0) > 0.9
    assert d.score_one(None) == 0.0
    assert d.score_one(math.nan) == 0.0
    d.learn_one(None)
    d.learn_one(math.inf)
    assert d.n == 5


def test_legacy_defaults_one_half_life_and_no_automatic_floor() -> None:
    d = RobustZ(half_life=40)
    assert d.half_life == d.scale_half_life == 40.0
    assert d.resolution is None
    for _ in range(100):
        d.learn_one(3.0)
    assert d.scale == pytest.approx(1e-12)  # min_scale alone floors it, as models set it


def test_z_of_and_learn_value_are_the_z_scores_of_the_library_detector() -> None:
    from models.detect import RobustZ as Library

    a = RobustZ(half_life=30, warmup=10, min_scale=0.05)
    b = Library(30, warmup=10, min_scale=0.05, scale_half_life=30, quantum_floor=0, rel_floor=0)
    for x in _series(500, seed=4):
        assert a.z_of(x) == b.z_of(x)
        a.learn_value(x)
        b.learn_value(x)


def test_single_outlier_hardly_moves_the_estimates() -> None:
    d = RobustZ(half_life=30, warmup=10)
    for x in _series(500):
        d.learn_one(x)
    loc, scale = d.location, d.scale
    d.learn_one(1e9)
    assert abs(d.location - loc) < 0.2
    assert d.scale < scale * 1.2


def test_level_shift_is_absorbed() -> None:
    d = RobustZ(half_life=20, warmup=10)
    for x in _series(300):
        d.learn_one(x)
    assert d.score_one(30.0) > 0.9
    for x in _series(300, seed=2):
        d.learn_one(x + 20.0)
    assert d.score_one(30.0) < 0.2


def test_one_sided_and_log1p() -> None:
    up = RobustZ(half_life=50, warmup=10, side="up", log1p=True)
    down = RobustZ(half_life=50, warmup=10, side="down", log1p=True)
    for x in _series(300):
        up.learn_one(x)
        down.learn_one(x)
    assert up.score_one(100.0) > 0.9
    assert up.score_one(0.5) == 0.0
    assert down.score_one(0.5) > 0.9
    assert down.score_one(100.0) == 0.0
    # log1p keeps the sign: a negative reading is far below, not clamped to zero
    assert down.z_one(-5.0) < down.z_one(0.0) < 0.0


def test_constant_series_uses_min_scale() -> None:
    d = RobustZ(warmup=5, min_scale=0.5)
    for _ in range(100):
        d.learn_one(3.0)
    assert d.scale == 0.5
    assert d.z_one(4.0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"half_life": 0}, "half_life"),
        ({"warmup": 0}, "warmup"),
        ({"clip": -1.0}, "clip"),
        ({"min_scale": -1.0}, "min_scale"),
        ({"side": "sideways"}, "side"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RobustZ(**kwargs)  # type: ignore[arg-type]


# -- the detector contract ----------------------------------------------------------------


def test_pickle_and_deepcopy_mid_stream_give_identical_later_scores() -> None:
    xs = _series(400, seed=5)
    d = RobustZ(half_life=40, warmup=20)
    for x in xs[:200]:
        d.learn_one(x)
    clones = [pickle.loads(pickle.dumps(d)), copy.deepcopy(d)]  # noqa: S301
    for x in xs[200:]:
        want = d.score_one(x)
        d.learn_one(x)
        for c in clones:
            assert c.score_one(x) == want
            c.learn_one(x)


def test_same_input_same_output_and_score_changes_nothing() -> None:
    xs: list[float | None] = [*_series(300, seed=9), None, math.nan, -3.0, 1e12]
    a, b = RobustZ(warmup=10), RobustZ(warmup=10)
    for x in xs:
        before = pickle.dumps(a)
        sa = a.score_one(x)
        assert pickle.dumps(a) == before
        assert sa == b.score_one(x)
        assert isinstance(sa, float)
        assert math.isfinite(sa)
        assert 0.0 <= sa <= 1.0
        a.learn_one(x)
        b.learn_one(x)

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.worksites.cusum import OneSidedCusum


def reference(xs: list[float], mu0: float, k: float, h: float, alpha: float, mu_max: float):
    """Straight transcription of the recursion, with numpy floats, for every prefix."""
    s, mu, out = np.float64(0.0), np.float64(mu0), []
    for x in xs:
        s = np.minimum(2 * h, np.maximum(0.0, s + x - mu - k))
        if s == 0.0:
            mu = np.clip(mu + alpha * (x - mu), 0.0, mu_max)
        out.append((float(s), float(mu)))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), max_size=80))
def test_matches_reference_on_every_prefix(xs: list[int]) -> None:
    c = OneSidedCusum(mu0=0.5, k=1.5, h=8.0, alpha=0.1, mu_max=2.0)
    ref = reference([float(x) for x in xs], 0.5, 1.5, 8.0, 0.1, 2.0)
    for x, (s, mu) in zip(xs, ref, strict=True):
        c.learn_one(x)
        assert math.isclose(c.s, s, abs_tol=1e-9)
        assert math.isclose(c.mu, mu, abs_tol=1e-9)
        assert c.alarm == (s >= 8.0)


def test_heavy_window_alarms_at_once_and_flicker_does_not() -> None:
    c = OneSidedCusum(mu0=0.5, k=1.5, h=8.0)
    for x in [0, 2, 0, 0, 3, 0, 1, 0, 2, 0] * 5:  # guards and a flickering person box
        c.learn_one(x)
        assert not c.alarm
    assert c.score_one(14.0) == 1.0
    assert c.score_one(3.0) < 1.0


def test_baseline_learns_only_in_control_and_is_capped() -> None:
    c = OneSidedCusum(mu0=0.5, k=1.0, h=6.0, alpha=0.5, mu_max=2.0)
    for _ in range(50):
        c.learn_one(20.0)  # an episode never moves the baseline
    assert c.mu == 0.5
    c2 = OneSidedCusum(mu0=0.5, k=10.0, h=6.0, alpha=0.5, mu_max=2.0)
    for _ in range(50):
        c2.learn_one(5.0)  # in control (large k), but the cap holds
    assert c2.mu == 2.0


def test_statistic_is_capped_so_it_recovers_quickly() -> None:
    c = OneSidedCusum(mu0=0.0, k=1.0, h=6.0, alpha=0.0)
    for _ in range(500):
        c.learn_one(30.0)
    assert c.s == 12.0
    for _ in range(7):
        c.learn_one(0.0)
    assert not c.alarm


def test_score_does_not_change_state_and_handles_missing() -> None:
    c = OneSidedCusum()
    c.learn_one(3.0)
    before = pickle.dumps(c)
    assert 0.0 <= c.score_one(100.0) <= 1.0
    assert c.score_one(None) == 0.0
    assert c.score_one(math.nan) == 0.0
    c.learn_one(None)
    c.learn_one(math.inf)
    assert pickle.dumps(c) == before


def test_pickle_and_deepcopy_round_trip() -> None:
    c = OneSidedCusum()
    for x in (0, 4, 9):
        c.learn_one(x)
    for twin in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c)):  # noqa: S301
        assert twin == c
        twin.learn_one(5)
        c2 = copy.deepcopy(c)
        c2.learn_one(5)
        assert twin == c2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"h": 0.0}, "h:"),
        ({"k": -1.0}, "k:"),
        ({"mu0": math.nan}, "mu0:"),
        ({"alpha": 2.0}, "alpha:"),
        ({"mu0": 3.0, "mu_max": 1.0}, "mu_max:"),
        ({"h": 5.0, "s_max": 1.0}, "s_max:"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        OneSidedCusum(**kwargs)

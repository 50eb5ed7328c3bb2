"""The detector contract, for every detector of models/detect (and the legacy RobustZ name).

Each case is a factory and a stream maker; streams are noisy, have missing values (None, NaN,
inf), negative values and event times, so every check below runs on realistic input.
"""

from __future__ import annotations

import copy
import math
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from models.detect import (
    Ensemble,
    FlatLine,
    LevelShift,
    Mahalanobis,
    RobustZ,
    Seasonal,
    Trend,
    VarianceShift,
)
from models.robust_z import RobustZ as LegacyRobustZ

MIN_MS = 60_000
T0 = 1_793_548_800_000
MISSING: tuple[Any, ...] = (None, math.nan, math.inf, -math.inf)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]
    vector: bool = False

    def value(self, x: float | None, i: int) -> Any:
        """The reading for this detector: a float, or a 3-channel list for Mahalanobis."""
        if not self.vector:
            return x
        if x is None or not math.isfinite(x):
            return [x, x, x]
        return [x, 2.0 * x + 0.1 * math.sin(i), -x + 0.05 * math.cos(i * 1.3)]


CASES = [
    Case("robust_z", lambda: RobustZ(warmup=20)),
    Case("legacy_robust_z", lambda: LegacyRobustZ(warmup=20)),
    Case("level_shift", lambda: LevelShift(warmup=30)),
    Case("variance_shift", lambda: VarianceShift(warmup=30)),
    Case("seasonal", lambda: Seasonal(warmup_ms=6 * 3_600_000)),
    Case("flat_line", lambda: FlatLine(warmup=20)),
    Case("trend", lambda: Trend(lag=50)),
    Case("ensemble", Ensemble),
    Case("mahalanobis", lambda: Mahalanobis(("a", "b", "c"), warmup=30), vector=True),
]
IDS = [c.name for c in CASES]


def noisy(n: int, seed: int = 1) -> Iterator[tuple[float | None, int]]:
    """A daily cycle with noise, negative values, an outlier or two, a burst of noise and
    missing readings."""
    rng = random.Random(seed)
    for i in range(n):
        t = T0 + i * MIN_MS
        if i % 97 == 13:
            yield rng.choice(MISSING), t
            continue
        x = -3.0 + 2.0 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0.0, 0.3)
        if 2600 <= i < 2700:
            x += rng.gauss(0.0, 3.0)
        if i % 500 == 499:
            x += 25.0
        yield round(x, 2), t


def run(
    case: Case, det: Any, stream: list[tuple[float | None, int]], start: int = 0
) -> list[float]:
    return [det.update(case.value(x, start + i), t) for i, (x, t) in enumerate(stream)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scores_are_builtin_floats_in_unit_interval_never_one(case: Case) -> None:
    det = case.make()
    scores = run(case, det, list(noisy(3000)))
    assert all(type(s) is float and math.isfinite(s) and 0.0 <= s < 1.0 for s in scores)
    assert max(scores) > 0.99  # the outliers (or the burst) are seen


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_score_one_changes_nothing_and_update_is_score_then_learn(case: Case) -> None:
    det = case.make()
    stream = list(noisy(1500))
    run(case, det, stream)
    other = copy.deepcopy(det)
    before = pickle.dumps(det)
    x, t = case.value(1.5, 1500), T0 + 1500 * MIN_MS
    s = det.score_one(x, t)
    assert pickle.dumps(det) == before
    assert other.update(x, t) == s
    det.learn_one(x, t)
    assert pickle.dumps(det) == pickle.dumps(other)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pickle_mid_stream_gives_identical_later_scores(case: Case) -> None:
    stream = list(noisy(4000, seed=5))
    det = case.make()
    run(case, det, stream[:2000])
    twin = pickle.loads(pickle.dumps(det))  # noqa: S301 (our own bytes)
    assert run(case, det, stream[2000:], 2000) == run(case, twin, stream[2000:], 2000)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_deterministic(case: Case) -> None:
    stream = list(noisy(2500, seed=9))
    assert run(case, case.make(), stream) == run(case, case.make(), stream)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_values_score_zero_and_are_not_learned(case: Case) -> None:
    det = case.make()
    run(case, det, list(noisy(1500)))
    before = pickle.dumps(det)
    for bad in MISSING:
        x = case.value(bad, 0)
        assert det.score_one(x, T0) == 0.0
        det.learn_one(x, T0 + 1500 * MIN_MS)
        assert pickle.dumps(det) == before, bad
        assert det.update(x, T0 + 1500 * MIN_MS) == 0.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inputs_are_not_mutated(case: Case) -> None:
    det = case.make()
    for i, (x, t) in enumerate(noisy(600)):
        v = case.value(x, i)
        snapshot = copy.deepcopy(v)
        det.update(v, t)
        assert repr(v) == repr(snapshot)
    if case.vector:
        reading = {"a": 1.0, "b": 2.0, "c": None}
        det.update(reading, T0)
        assert reading == {"a": 1.0, "b": 2.0, "c": None}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_zero_in_warmup(case: Case) -> None:
    det = case.make()
    assert det.score_one(case.value(1e6, 0), T0) == 0.0
    det.learn_one(case.value(1.0, 0), T0)
    assert det.score_one(case.value(1e6, 1), T0 + MIN_MS) == 0.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_constant_series_gives_no_high_scores(case: Case) -> None:
    det = case.make()
    scores = run(case, det, [(7.0, T0 + i * MIN_MS) for i in range(3000)])
    assert max(scores) < 0.99


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_quantized_series_is_not_an_anomaly(case: Case) -> None:
    """A coarse sensor: a slow wave on a 0.1 grid sits still, then steps one quantum."""
    det = case.make()
    stream = [
        (round(8.0 + 0.3 * math.sin(2 * math.pi * i / 700), 1), T0 + i * MIN_MS)
        for i in range(6000)
    ]
    scores = run(case, det, stream)
    assert max(scores) < 1.0
    assert sum(s >= 0.999 for s in scores) / len(scores) < 0.01


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.name.startswith("legacy")], ids=lambda c: c.name
)
def test_a_flat_stretch_then_one_quantum_is_ordinary(case: Case) -> None:
    """After a long flat stretch the next quantum step is not a thousand-sigma event."""
    det = case.make()
    rng = random.Random(3)
    x = 8.0
    stream = []
    for i in range(3000):
        if i % 40 == 0:
            x = round(x + rng.choice((-0.1, 0.1)), 1)
        stream.append((x, T0 + i * MIN_MS))
    stream += [(x, T0 + (3000 + i) * MIN_MS) for i in range(30)]
    run(case, det, stream)
    assert det.score_one(case.value(round(x + 0.1, 1), 3030), T0 + 3030 * MIN_MS) < 0.999

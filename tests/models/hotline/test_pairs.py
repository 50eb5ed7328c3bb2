from __future__ import annotations

import itertools
import random

import pytest

from models.hotline.pairs import FEATURES, MEASURED, SIGNS, PairModel

BASE = dict(
    text=0.3,
    near=0.8,
    unplaced=0.0,
    same_place=0.0,
    recent=0.7,
    category=0.8,
    dept=0.6,
    caller=0.0,
)
MONOTONE = [f for f in MEASURED if SIGNS[f] > 0]


def _grid(model: PairModel, name: str) -> list[float]:
    return [model.probability({**BASE, name: v / 10}) for v in range(11)]


@pytest.mark.parametrize("name", MONOTONE)
def test_probability_never_falls_as_agreement_rises(name: str) -> None:
    ps = _grid(PairModel(), name)
    assert all(b >= a for a, b in itertools.pairwise(ps)), (name, ps)


def test_monotone_after_adversarial_decisions() -> None:
    """Officers' decisions that contradict the features cannot flip a sign."""
    m = PairModel(learning_rate=0.5)
    rng = random.Random(1)
    for _ in range(300):
        x = {f: rng.random() for f in MEASURED}
        m.learn(x, duplicate=x["text"] < 0.5)  # "less text agreement = duplicate"
    for name in MONOTONE:
        ps = _grid(m, name)
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(ps)), name
    assert all(w >= 0 for f, w in m.weights().items() if SIGNS[f] > 0)


def test_merges_raise_and_splits_lower_the_probability() -> None:
    x = {**BASE, "text": 0.1}
    up, down = PairModel(), PairModel()
    p0 = up.probability(x)
    for _ in range(20):
        up.learn(x, duplicate=True)
        down.learn(x, duplicate=False)
    assert up.probability(x) > p0 > down.probability(x)
    assert up.n_learned == 20


def test_fast_path_equals_the_dict_path() -> None:
    m = PairModel()
    rng = random.Random(2)
    for _ in range(50):
        x = {f: rng.random() for f in MEASURED}
        v = [x[f] for f in MEASURED]
        assert m.logit_measured(v) == pytest.approx(m.logit(x))


def test_probability_is_a_builtin_float_in_the_open_unit_interval() -> None:
    m = PairModel()
    for x in ({f: 0.0 for f in MEASURED}, {f: 1.0 for f in MEASURED}):
        p = m.probability(x)
        assert type(p) is float
        assert 0.0 < p < 1.0


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        PairModel(weights={"smell": 1.0})
    with pytest.raises(ValueError, match="threshold"):
        PairModel(threshold=1.0)
    assert len(FEATURES) == len(PairModel().w)

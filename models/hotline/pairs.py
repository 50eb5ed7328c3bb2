"""The duplicate probability of two tickets: pair features and an online logistic regression.

Two tickets report one problem when they say the same thing about the same place at about the
same time. :func:`pair_features` measures each part on [0, 1]:

=============  =================================================================================
``text``       cosine of the two BM25 vectors of the problem text (place names masked out: the
               place is measured below, and two problems at one address share its words)
``near``       ``1 - d / 1000 m`` (0 beyond 1 km; d less half the coarser precision)
``unplaced``   1 when the distance is unknown (a side has no place, or only a vague one)
``same_place`` 1 when both name the same community, landmark or corner (gazetteer ids)
``recent``     ``1 - log1p(gap in minutes) / log1p(2 days)``
``category``   agreement of the categories: 1 or 0 where both are known (given at intake or
               confirmed by an officer since), else the product of the routing model's
               predicted distributions summed over categories
``dept``       agreement of the departments (finer than categories): the predicted ones, or
               mostly the one an officer dispatched the ticket to, once that happened
``caller``     1 for one caller calling again
``far``        1 when both are placed well and more than 1.5 km apart (known far, not unknown)
``conflict``   1 when both categories were given at intake and differ
=============  =================================================================================

Derived: with ``gate = sqrt(text) * max(near, same_place, unplaced / 2)`` (the words agreeing
at one place; where the place is unknown the words must carry the decision),
``text_place = gate``, ``category_place = gate * category`` and ``recent_place = gate *
recent``: category and time count double only where the words agree at one place (two
problems at one address, minutes apart, share the place and the time but not the words).

:class:`PairModel` is ``p = sigmoid(w . x + b)``. Its weights start from a fit on simulated
tickets of the tuning families (``benchmarks/fit_hotline.py``; held-out families were never
seen) and learn online from the officers' merge and split decisions (SGD on the log loss).
Every weight has a fixed sign (more text or place agreement never lowers ``p``, a longer gap
never raises it); an update that would flip a sign stops at zero, so ``p`` stays monotone in
each feature whatever the decisions were. ``threshold`` is the probability above which a pair
is called a duplicate: the one that maximised pairwise F1 on the tuning fit.

>>> m = PairModel()
>>> close = dict(text=0.6, near=0.9, unplaced=0.0, same_place=1.0, recent=0.9, category=1.0,
...              dept=0.8, caller=0.0, far=0.0, conflict=0.0)
>>> far = dict(close, near=0.0, same_place=0.0, far=1.0)
>>> m.probability(close) > m.threshold > m.probability(far)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = [
    "DEFAULT_BIAS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS",
    "FEATURES",
    "MEASURED",
    "SIGNS",
    "PairModel",
]

#: Features measured on a pair, then the ones derived from them (place = max(near, same_place):
#: words, category or recency agreeing *at one place* are much more than each alone).
MEASURED: Final[tuple[str, ...]] = (
    "text",
    "near",
    "unplaced",
    "same_place",
    "recent",
    "category",
    "dept",
    "caller",
    "far",
    "conflict",
)
FEATURES: Final[tuple[str, ...]] = (*MEASURED, "text_place", "category_place", "recent_place")
#: Sign each weight is held to (+1: non-negative, -1: non-positive, 0: free).
SIGNS: Final[dict[str, int]] = {
    f: (0 if f == "unplaced" else -1 if f in ("far", "conflict") else 1) for f in FEATURES
}
#: Fitted by ``benchmarks/fit_hotline.py --seeds 1-5 --days 14`` (tuning families only,
#: after three days of warm-up; 5089 candidate pairs, 2036 duplicates). ``conflict`` is 0:
#: pairs whose categories conflict are never compared (``dedup.py``), so the fit never saw one.
DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "text": 0.0,
    "near": 0.45,
    "unplaced": -4.028,
    "same_place": 0.0,
    "recent": 6.287,
    "category": 2.989,
    "dept": 1.405,
    "caller": 4.138,
    "far": -2.654,
    "conflict": 0.0,
    "text_place": 6.252,
    "category_place": 2.837,
    "recent_place": 8.276,
}
DEFAULT_BIAS: Final = -8.353
#: Maximises the pairwise F1 of the clusters the model builds on the tuning runs (0.952 there;
#: candidate-pair F1 0.955).
DEFAULT_THRESHOLD: Final = 0.55


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class PairModel:
    """Online logistic regression with sign-constrained weights (see the module docstring)."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        bias: float = DEFAULT_BIAS,
        threshold: float = DEFAULT_THRESHOLD,
        learning_rate: float = 0.05,
        l2: float = 1e-4,
    ) -> None:
        w = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(w) - set(FEATURES)
        if unknown:
            msg = f"weights: unknown features {sorted(unknown)}"
            raise ValueError(msg)
        if not 0.0 < threshold < 1.0:
            msg = f"threshold: must be in (0, 1), got {threshold!r}"
            raise ValueError(msg)
        self.w = [float(w.get(f, 0.0)) for f in FEATURES]
        self.bias = float(bias)
        self.threshold = float(threshold)
        self.learning_rate = learning_rate
        self.l2 = l2
        self.n_learned = 0

    @staticmethod
    def vector(x: Mapping[str, float]) -> list[float]:
        """The feature vector: the measured features, then the derived ones."""
        v = [float(x.get(f, 0.0)) for f in MEASURED]
        # words agreeing at one place (an unknown place counts half: the words must carry it)
        gate = math.sqrt(max(0.0, v[0])) * max(v[1], v[3], 0.5 * v[2])
        return [*v, gate, gate * v[5], gate * v[4]]

    def logit(self, x: Mapping[str, float]) -> float:
        return self.bias + sum(w * v for w, v in zip(self.w, self.vector(x), strict=True))

    def logit_measured(self, v: list[float]) -> float:
        """:meth:`logit` of the measured features in :data:`MEASURED` order (the fast path)."""
        w = self.w
        text, near, unplaced, same_place, recent, category, dept, caller, far, conflict = v
        place = max(near, same_place, 0.5 * unplaced)
        return (
            self.bias
            + w[0] * text
            + w[1] * near
            + w[2] * unplaced
            + w[3] * same_place
            + w[4] * recent
            + w[5] * category
            + w[6] * dept
            + w[7] * caller
            + w[8] * far
            + w[9] * conflict
            + place * math.sqrt(text) * (w[10] + w[11] * category + w[12] * recent)
        )

    def probability_measured(self, v: list[float]) -> float:
        return _sigmoid(self.logit_measured(v))

    @property
    def threshold_logit(self) -> float:
        return self.logit_of(self.threshold)

    @staticmethod
    def logit_of(p: float) -> float:
        return math.log(p / (1.0 - p))

    def probability(self, x: Mapping[str, float]) -> float:
        """P(duplicate | features), a builtin float in (0, 1)."""
        return _sigmoid(self.logit(x))

    def learn(self, x: Mapping[str, float], duplicate: bool, weight: float = 1.0) -> None:
        """One SGD step on the log loss towards an officer's decision (merge = duplicate)."""
        v = self.vector(x)
        g = (self.probability(x) - (1.0 if duplicate else 0.0)) * weight
        lr = self.learning_rate
        for i, f in enumerate(FEATURES):
            w = self.w[i] - lr * (g * v[i] + self.l2 * self.w[i])
            sign = SIGNS[f]
            if sign > 0:
                w = max(0.0, w)
            elif sign < 0:
                w = min(0.0, w)
            self.w[i] = w
        self.bias -= lr * g
        self.n_learned += 1

    def weights(self) -> dict[str, float]:
        return dict(zip(FEATURES, self.w, strict=True))

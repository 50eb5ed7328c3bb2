"""One-sided (upper) CUSUM of a count-like series against a slowly learned baseline.

Page's CUSUM for an upward shift: ``s = max(0, s + x - mu - k)``; an alarm when ``s >= h``.
``mu`` is the in-control mean ("the site's closed baseline"); it is learned by a small EWMA,
but only while the statistic is at zero (in control), and it is capped at ``mu_max`` so that a
resumed site can never teach the detector that work is normal. ``s`` is capped at ``s_max`` so
that, after a long episode, the statistic falls back below ``h`` within a few quiet windows.

>>> c = OneSidedCusum(mu0=0.5, k=1.0, h=6.0)
>>> for x in (0, 1, 0, 0):
...     c.learn_one(x)
>>> c.alarm
False
>>> round(c.score_one(9.0), 3)   # one busy window would raise the alarm
1.0
>>> c.learn_one(4.0); c.learn_one(4.0); c.learn_one(4.0)
>>> c.alarm, round(c.s, 2)
(True, 7.64)
"""

from __future__ import annotations

import math

from models.base import Detector

__all__ = ["OneSidedCusum"]


class OneSidedCusum(Detector):
    """Upper CUSUM; ``score_one`` is ``min(1, s'/h)`` where ``s'`` is the statistic after ``x``.

    Parameters
    ----------
    mu0
        Prior in-control mean (the closed baseline before any data).
    k
        Allowance (slack) per observation: half the shift to detect, in units of ``x``.
    h
        Decision threshold: the alarm holds while ``s >= h``.
    alpha
        EWMA weight of baseline learning (only while ``s == 0``).
    mu_max
        Cap of the learned baseline.
    s_max
        Cap of the statistic (``None``: ``2 * h``).

    The score is 0.0 for ``None`` and never above 1.0; it says how far the statistic is towards
    the threshold, so 1.0 means "this observation would raise (or keep) the alarm".
    """

    __slots__ = ("alpha", "h", "k", "mu", "mu_max", "n", "s", "s_max")

    def __init__(
        self,
        *,
        mu0: float = 0.5,
        k: float = 1.0,
        h: float = 6.0,
        alpha: float = 0.05,
        mu_max: float = 3.0,
        s_max: float | None = None,
    ) -> None:
        if not (math.isfinite(mu0) and mu0 >= 0.0):
            msg = f"mu0: must be finite and >= 0, got {mu0!r}"
            raise ValueError(msg)
        if not (math.isfinite(k) and k >= 0.0):
            msg = f"k: must be finite and >= 0, got {k!r}"
            raise ValueError(msg)
        if not (math.isfinite(h) and h > 0.0):
            msg = f"h: must be finite and > 0, got {h!r}"
            raise ValueError(msg)
        if not 0.0 <= alpha <= 1.0:
            msg = f"alpha: must be in [0, 1], got {alpha!r}"
            raise ValueError(msg)
        if not (math.isfinite(mu_max) and mu_max >= mu0):
            msg = f"mu_max: must be finite and >= mu0 ({mu0}), got {mu_max!r}"
            raise ValueError(msg)
        cap = 2.0 * h if s_max is None else s_max
        if not (math.isfinite(cap) and cap >= h):
            msg = f"s_max: must be finite and >= h ({h}), got {s_max!r}"
            raise ValueError(msg)
        self.k = float(k)
        self.h = float(h)
        self.alpha = float(alpha)
        self.mu_max = float(mu_max)
        self.s_max = float(cap)
        # learned state
        self.mu = float(mu0)
        self.s = 0.0
        self.n = 0

    def _next(self, x: float) -> float:
        return min(self.s_max, max(0.0, self.s + x - self.mu - self.k))

    def learn_one(self, x: float | None) -> None:
        """Fold in one observation; ``None`` and non-finite values are ignored."""
        if x is None or not math.isfinite(x):
            return
        self.s = self._next(x)
        self.n += 1
        if self.s == 0.0:
            self.mu = min(self.mu_max, max(0.0, self.mu + self.alpha * (x - self.mu)))

    def score_one(self, x: float | None) -> float:
        """``min(1, s'/h)`` for the statistic ``s'`` that ``x`` would give; state unchanged."""
        if x is None or not math.isfinite(x):
            return 0.0
        return float(min(1.0, self._next(x) / self.h))

    @property
    def alarm(self) -> bool:
        """True while the statistic is at or above the threshold."""
        return self.s >= self.h

    def __getstate__(self) -> tuple[float, ...]:
        return (self.k, self.h, self.alpha, self.mu_max, self.s_max, self.mu, self.s, self.n)

    def __setstate__(self, st: tuple[float, ...]) -> None:
        self.k, self.h, self.alpha, self.mu_max, self.s_max, self.mu, self.s = st[:7]
        self.n = int(st[7])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OneSidedCusum):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OneSidedCusum(mu={self.mu:.3g}, s={self.s:.3g}, h={self.h:g}, n={self.n})"

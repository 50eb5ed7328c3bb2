"""TailCalibrator: turns a detector's surprise into a tail probability learned from the series.

A detector's *surprise* ``s = -ln p_nominal`` is exact only when its nominal model holds (a
normal law for a z-score, a geometric run length for a flat line). Real series have heavier
tails, autocorrelation and quantization, so the calibrator learns the distribution of ``s``
on the series itself, peaks-over-threshold style (Pickands; SPOT, Siffer et al. 2017):

* a fixed threshold ``u`` (default ``-ln 0.1``: the nominal 10% tail);
* ``phi``: the exponentially weighted share of surprises above ``u``;
* the excesses ``y = s - u`` follow a generalized Pareto law whose shape ``xi`` and scale
  ``sigma`` come from the weighted first two moments of ``y`` (method of moments; ``xi`` is
  clipped to ``[0, 0.45]``: never a bounded tail, which would claim p = 0);
* ``p(s) = phi * (1 + xi * y / sigma) ** (-1 / xi)`` above ``u`` (``phi * exp(-y / sigma)``
  when ``xi == 0``), and a straight line from 1 at ``s = 0`` to ``phi`` at ``u`` below it.

Priors: both ``phi`` and the excess moments start at the nominal model (``phi = e^-u``,
excesses exponential with mean 1) with a few pseudo-observations that never decay, so a
detector is sensibly calibrated from its first reading, and a series that never exceeds
``u`` (a constant one) still gets a finite, not a zero, tail. When the nominal model holds,
``p(s) = e^-s`` exactly.

Heavier than any such fit: an exponentially weighted histogram of the surprises (1-nat bins,
then logarithmic up to :data:`MAX_SURPRISE`) gives the empirical share at or above ``s``, and
``p`` is the larger of the two. A steel plant switching its load a few times a day makes
huge z-scores part of its normal; the share says so where the fit cannot.

A few wild readings cannot teach the fit that wild is normal: excesses are winsorized at
``y_cap``. Readings alarming at ``p < alarm_p`` can be learned at a lower ``alarm_weight``
(1 by default): at 1/10, anomalies that recur in up to ~1% of the readings stay alarming
instead of becoming the series' normal, at the price of more false alarms on series whose
tails are heavier than the fit (on the real series of ``benchmarks/eval_detectors.py`` the
false positive rate at 0.999 rose from 0.2% to 0.8% with 1/10, for no better AUC).

>>> c = TailCalibrator()
>>> round(c.p(6.9), 4)   # nominal: e^-6.9
0.001
>>> for i in range(5000):           # a series whose surprises run 3x the nominal
...     c.learn(3.0 * ((i * 7919) % 1000) / 1000 * 2.3)
>>> c.p(6.9) > 0.01
True
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["MAX_SURPRISE", "P_FLOOR", "TailCalibrator"]

#: The smallest tail probability reported: scores stay below 1.0 (at most 1 - 1e-12).
P_FLOOR: Final = 1e-12
#: Surprises are capped here (nats). Far above ``-ln P_FLOOR`` (27.6): a calibrated tail can
#: be heavy, and a frozen sensor's surprise keeps growing for hours.
MAX_SURPRISE: Final = 10_000.0
_XI_MAX: Final = 0.2
#: Histogram of surprises: 1-nat bins up to _LINEAR, then _PER_DECADE log bins per decade.
_LINEAR: Final = 60
_PER_DECADE: Final = 10
_LOG_BINS: Final = int(_PER_DECADE * math.log10(MAX_SURPRISE / _LINEAR)) + 1
_EDGES: Final[tuple[float, ...]] = tuple(float(i) for i in range(_LINEAR)) + tuple(
    _LINEAR * 10.0 ** (k / _PER_DECADE) for k in range(_LOG_BINS + 1)
)
_NBINS: Final = len(_EDGES) - 1


def _bin(s: float) -> int:
    """Histogram bin of a surprise (the last bin holds everything above its lower edge)."""
    if s < _LINEAR:
        return int(s) if s > 0.0 else 0
    k = _LINEAR + int(_PER_DECADE * math.log10(s / _LINEAR))
    return k if k < _NBINS else _NBINS - 1


class TailCalibrator:
    """Learned tail of a surprise statistic (see the module docstring).

    Parameters
    ----------
    half_life
        Readings after which a learned surprise's weight halves (> 0).
    u
        Threshold in nats (> 0); surprises above it are the tail that is modelled.
    prior_weight
        Pseudo-readings of the nominal exceedance share ``e^-u`` (>= 0).
    prior_excess_weight
        Pseudo-excesses of the nominal exponential tail (> 0).
    y_cap
        Excesses are winsorized here when learned (> 0).
    alarm_p, alarm_weight
        A surprise whose tail probability is below ``alarm_p`` is learned at weight
        ``alarm_weight`` (in ``[0, 1]``).
    """

    __slots__ = (
        "_a",
        "_fit",
        "_g",
        "_zeros",
        "alarm_p",
        "alarm_weight",
        "counts",
        "half_life",
        "m1",
        "m2",
        "phi0",
        "prior_excess_weight",
        "prior_weight",
        "total",
        "u",
        "w_exc",
        "y_cap",
    )

    def __init__(
        self,
        half_life: float = 3000.0,
        *,
        u: float = math.log(10.0),
        prior_weight: float = 30.0,
        prior_excess_weight: float = 5.0,
        y_cap: float = 15.0,
        alarm_p: float = 1e-3,
        alarm_weight: float = 1.0,
    ) -> None:
        if not half_life > 0:
            msg = f"half_life: must be > 0, got {half_life!r}"
            raise ValueError(msg)
        if not u > 0:
            msg = f"u: must be > 0, got {u!r}"
            raise ValueError(msg)
        if not prior_weight >= 0 or not prior_excess_weight > 0:
            msg = (
                f"prior_weight/prior_excess_weight: need >= 0 and > 0, "
                f"got {prior_weight!r}/{prior_excess_weight!r}"
            )
            raise ValueError(msg)
        if not y_cap > 0:
            msg = f"y_cap: must be > 0, got {y_cap!r}"
            raise ValueError(msg)
        if not (0.0 <= alarm_p <= 1.0 and 0.0 <= alarm_weight <= 1.0):
            msg = f"alarm_p/alarm_weight: must be in [0, 1], got {alarm_p!r}/{alarm_weight!r}"
            raise ValueError(msg)
        self.half_life = float(half_life)
        self.u = float(u)
        self.prior_weight = float(prior_weight)
        self.prior_excess_weight = float(prior_excess_weight)
        self.y_cap = float(y_cap)
        self.alarm_p = float(alarm_p)
        self.alarm_weight = float(alarm_weight)
        self.phi0 = math.exp(-self.u)
        self._a = 1.0 - math.pow(0.5, 1.0 / self.half_life)
        # Exponentially weighted sums by the growing-weight trick: a new surprise weighs _g,
        # and _g grows by 1 / (1 - a) per reading (ratios are what count; no decay loop).
        # The histogram of surprises, its total, and the excesses' weight and moments:
        self.counts = [0.0] * _NBINS
        self.total = 0.0
        self.w_exc = 0.0
        self.m1 = 0.0
        self.m2 = 0.0
        self._g = 1.0
        #: zero surprises learned but not yet added (a flat line's every non-repeat): counted
        #: here, folded in by the next non-zero one; p() reads them as if folded
        self._zeros = 0
        self._fit = (0.0, 1.0)  # (xi, sigma) of the excesses, refreshed when one is learned

    def _pending(self) -> tuple[float, float]:
        """(growth factor, total weight) with the pending zero surprises folded in."""
        k = self._zeros
        if k == 0:
            return self._g, self.total
        r = 1.0 / (1.0 - self._a)
        rk = r**k
        added = self._g * r * (rk - 1.0) / (r - 1.0) if r != 1.0 else self._g * k
        return self._g * rk, self.total + added

    def _fold(self) -> None:
        g, total = self._pending()
        self.counts[0] += total - self.total
        self.total = total
        self._g = g
        self._zeros = 0

    @property
    def phi(self) -> float:
        """Share of surprises above ``u`` (with the prior)."""
        g, total = self._pending()
        pw = self.prior_weight * g
        return (self.w_exc + pw * self.phi0) / (total + pw) if total + pw > 0 else self.phi0

    @property
    def shape(self) -> tuple[float, float]:
        """``(xi, sigma)`` of the generalized Pareto law of the excesses."""
        return self._fit

    def _refit(self) -> None:
        pe = self.prior_excess_weight * self._g
        we = self.w_exc + pe
        m = (self.m1 + pe) / we  # nominal excesses: Exp(1), E[y] = 1, E[y^2] = 2
        v = (self.m2 + 2.0 * pe) / we - m * m
        if v <= 0.0 or m <= 0.0:
            self._fit = (0.0, max(m, 1e-9))
            return
        r = m * m / v
        xi = 0.5 * (1.0 - r)
        if xi <= 0.0:
            self._fit = (0.0, m)
        else:
            if xi > _XI_MAX:
                xi = _XI_MAX
            # keep the mean excess right for the clipped shape: sigma = m (1 - xi)
            self._fit = (xi, m * (1.0 - xi))

    def empirical(self, s: float) -> float:
        """Share of the learned surprises at or above ``s`` (weighted; linear within a bin)."""
        total = self._pending()[1] if self._zeros else self.total
        if total <= 0.0 or s <= 0.0:
            return 1.0 if total > 0.0 else 0.0
        b = _bin(s)
        lo, hi = _EDGES[b], _EDGES[b + 1]
        inside = (hi - s) / (hi - lo)
        if inside < 0.0:
            inside = 0.0
        c = self.counts
        return (sum(c[b + 1 :]) + inside * c[b]) / total

    def p(self, s: float) -> float:
        """Tail probability of a surprise ``s`` (nats), in ``[P_FLOOR, 1]``.

        The larger of the generalized Pareto tail and the empirical share: the fit
        extrapolates where data is thin, the share holds where the series is heavier.
        """
        p = self._p_fit(s)
        e = self.empirical(s) if s > self.u else 0.0
        if e > p:
            p = e
        return p if p > P_FLOOR else P_FLOOR

    def _p_fit(self, s: float) -> float:
        u = self.u
        g, total = self._pending() if self._zeros else (self._g, self.total)
        pw = self.prior_weight * g
        tot = total + pw
        phi = (self.w_exc + pw * self.phi0) / tot if tot > 0 else self.phi0
        if s <= u:
            if s <= 0.0:
                return 1.0
            return 1.0 - (1.0 - phi) * s / u
        y = s - u
        xi, sigma = self._fit
        if xi == 0.0:
            e = y / sigma
            p = phi * math.exp(-e) if e < 700.0 else 0.0
        else:
            p = phi * (1.0 + xi * y / sigma) ** (-1.0 / xi)
        return p

    def _grow(self) -> float:
        """The weight of the surprise being learned: one reading heavier than the last
        (renormalizing every sum when the weights grow large)."""
        g = self._g / (1.0 - self._a)
        if g > 1e200:
            self.counts = [c / g for c in self.counts]
            self.total /= g
            self.w_exc /= g
            self.m1 /= g
            self.m2 /= g
            g = 1.0
        self._g = g
        return g

    def update(self, s: float) -> float:
        """``p(s)``, then learn ``s``: the same as ``learn(s, p(s))``, in one call (the hot
        path of every detector; surprises in the body of the law take a short cut)."""
        if s <= 0.0:
            if self.alarm_weight == 1.0 and s == 0.0:
                self._zeros += 1
            else:
                self.learn(s, 1.0)
            return 1.0
        u = self.u
        if s > u or self._zeros or s >= _LINEAR:
            p = self.p(s)
            self.learn(s, p)
            return p
        # s in (0, u]: p on the straight line to phi; learning touches one linear bin
        g = self._g
        total = self.total
        pw = self.prior_weight * g
        tot = total + pw
        phi = (self.w_exc + pw * self.phi0) / tot if tot > 0 else self.phi0
        p = 1.0 - (1.0 - phi) * s / u
        if p < P_FLOOR:
            p = P_FLOOR
        g = self._grow()
        self.counts[int(s)] += g  # below u: full weight, in one of the 1-nat bins
        self.total += g
        return p

    def learn(self, s: float, p: float | None = None) -> None:
        """Learn one surprise (the detector's, for a reading it learns).

        ``p`` is the surprise's tail probability before learning (computed when None): a
        reading alarming at ``p < alarm_p`` is learned at ``alarm_weight``, so anomalies teach
        the calibration slowly (a recurring extreme still becomes normal, ten times later).
        """
        if s == 0.0 and self.alarm_weight == 1.0:
            self._zeros += 1  # the commonest surprise, counted now, added with the next one
            return
        if self._zeros:
            self._fold()
        wt = 1.0
        if self.alarm_weight < 1.0 and s > self.u:
            if p is None:
                p = self.p(s)
            if p < self.alarm_p:
                wt = self.alarm_weight
        gw = self._grow() * wt
        self.counts[_bin(s)] += gw
        self.total += gw
        if s > self.u:
            y = s - self.u
            if y > self.y_cap:
                y = self.y_cap
            self.w_exc += gw
            self.m1 += gw * y
            self.m2 += gw * y * y
            self._refit()

    def __repr__(self) -> str:
        xi, sigma = self._fit
        return f"TailCalibrator(phi={self.phi:.3g}, xi={xi:.3g}, sigma={sigma:.3g})"

"""The detector protocol: river's ``learn_one``/``score_one``, event time, a calibrated score.

Every detector in :mod:`models.detect` turns each reading into a *surprise* ``s`` (in nats:
``-ln`` of the reading's tail probability under the detector's nominal model, e.g. a normal
law for a z-score), and a :class:`~models.detect.calibrate.TailCalibrator` maps ``s`` to the
tail probability ``p`` *under the detector's own recent behaviour on this series*:

    score = 1 - p,   p = P(a surprise at least this large | the series' recent normal data)

so a score of 0.999 means "about 1 reading in 1,000 of this series scores this high when
nothing is wrong". Scores of every detector share that meaning and can be compared, combined
(:class:`~models.detect.ensemble.Ensemble`) and thresholded the same way: at a cadence of
``r`` readings a day, a threshold ``1 - p`` gives about ``p * r`` false alarms a day.

Contract (tests/models/detect/test_contract.py checks it for every detector):

* ``learn_one(x, t=None)`` changes only ``self``; ``score_one(x, t=None)`` changes nothing and
  returns a builtin float in ``[0, 1)`` (never exactly 1.0: ``p`` is floored at
  :data:`P_FLOOR`); ``update(x, t=None)`` scores then learns (one call, one computation).
* ``x`` is a number; ``None``, NaN and +-inf are *missing*: not learned, score 0.0.
  Negative values are ordinary values. Inputs are never mutated.
* ``t`` is event time in epoch milliseconds; detectors that need it (seasonal) say so, the
  others ignore it. No clocks, no RNG, no I/O: the same inputs give the same scores.
* 0.0 during warm-up. Picklable at any point: a copy continues with identical scores.

>>> import math
>>> clean(3), clean(None), clean(math.nan), clean(-math.inf), clean(-2.5)
(3.0, None, None, None, -2.5)
>>> round(surprise_z(1.96), 2)   # -ln P(|Z| >= 1.96) = -ln 0.05
3.0
>>> abs(surprise_z(25.0 - 1e-9) - surprise_z(25.0)) < 0.01   # the asymptote joins smoothly
True
"""

from __future__ import annotations

import abc
import math
from typing import Final

from models.detect.calibrate import MAX_SURPRISE, P_FLOOR, TailCalibrator

__all__ = [
    "ABS_TO_SIGMA",
    "MAX_SURPRISE",
    "P_FLOOR",
    "TINY_SCALE",
    "Detector",
    "SurpriseDetector",
    "clean",
    "ew_rate",
    "huber_ew",
    "require_fast_slow",
    "require_non_negative",
    "require_positive",
    "scale_floor",
    "surprise_upper",
    "surprise_z",
    "threshold_for",
]

#: The last-resort scale floor (a series that never moved and sits at zero).
TINY_SCALE: Final = 1e-12

#: The calibration before any data: the nominal tail (``p = e^-s``).
_NOMINAL: Final = TailCalibrator()
_INV_SQRT2: Final = 1.0 / math.sqrt(2.0)
_HALF_LN_2PI: Final = 0.5 * math.log(2.0 * math.pi)
_LN2: Final = math.log(2.0)
#: E|X - mu| = sigma * sqrt(2 / pi) for a normal law: a standard deviation is this times a
#: mean absolute deviation.
ABS_TO_SIGMA: Final = math.sqrt(math.pi / 2.0)


def threshold_for(false_alarms_per_day: float, cadence_s: float) -> float:
    """The score threshold that gives about ``false_alarms_per_day`` alarming readings a day
    on normal data, for a series with one reading every ``cadence_s`` seconds.

    A calibrated score of ``1 - p`` is reached by a share ``p`` of normal readings, so at
    ``86400 / cadence_s`` readings a day the threshold is ``1 - false_alarms_per_day *
    cadence_s / 86400``. Alarms of one episode come in runs; an alert engine that groups them
    turns these into fewer alerts, never more.

    >>> round(threshold_for(1.0, 60), 6)       # 1-min readings, one false alarm a day
    0.999306
    >>> round(threshold_for(0.1, 3600), 6)     # hourly readings, one every ten days
    0.995833
    """
    if not false_alarms_per_day > 0 or not cadence_s > 0:
        msg = (
            f"false_alarms_per_day/cadence_s: must be > 0, "
            f"got {false_alarms_per_day!r}/{cadence_s!r}"
        )
        raise ValueError(msg)
    p = false_alarms_per_day * cadence_s / 86_400.0
    return 1.0 - p if p < 1.0 else 0.0


def require_positive(**values: float) -> None:
    """Raise ValueError naming the first value that is not > 0 (NaN included)."""
    for name, value in values.items():
        if not value > 0:
            msg = f"{name}: must be > 0, got {value!r}"
            raise ValueError(msg)


def require_non_negative(**values: float) -> None:
    """Raise ValueError naming the first value that is not >= 0 (NaN included)."""
    for name, value in values.items():
        if not value >= 0:
            msg = f"{name}: must be >= 0, got {value!r}"
            raise ValueError(msg)


def require_fast_slow(fast: float, slow: float) -> None:
    """Raise ValueError unless ``0 < fast < slow`` (two half-lives)."""
    if not 0 < fast < slow:
        msg = f"fast_half_life/slow_half_life: need 0 < fast < slow, got {fast!r}/{slow!r}"
        raise ValueError(msg)


def scale_floor(quantum: float, rel_floor: float, level: float) -> float:
    """The floor of a scale: ``quantum`` (already in scale units), ``rel_floor * |level|``,
    and :data:`TINY_SCALE`, whichever is largest."""
    r = rel_floor * (level if level >= 0.0 else -level)
    f = quantum if quantum > r else r
    return f if f > TINY_SCALE else TINY_SCALE


def huber_ew(
    level: float, x: float, rate: float, noise_dev: float, clip: float, floor: float
) -> float:
    """``level`` moved toward ``x`` at ``rate``, the residual clipped at ``clip`` short-term
    noise scales (``noise_dev``, a mean absolute deviation, as a standard deviation; the scale
    at least ``floor``): one spike moves an exponentially weighted level little."""
    lim = clip * noise_dev * ABS_TO_SIGMA
    if lim < clip * floor:
        lim = clip * floor
    r = x - level
    if r > lim:
        r = lim
    elif r < -lim:
        r = -lim
    return level + rate * r


def ew_rate(half_life: float) -> float:
    """Weight of a new value in an exponentially weighted mean with this half-life (values)."""
    return 1.0 - math.pow(0.5, 1.0 / half_life)


def clean(x: object) -> float | None:
    """``x`` as a builtin float, or None when it is missing (None, NaN, +-inf, not a number)."""
    if x is None:
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if v != v or v == math.inf or v == -math.inf:
        return None
    return v


def surprise_upper(z: float) -> float:
    """``-ln P(Z >= z)`` for a standard normal ``Z`` (0 for ``z <= 0``), capped."""
    if z <= 0.0:
        return 0.0
    if z < 25.0:
        return -math.log(0.5 * math.erfc(z * _INV_SQRT2))
    # Mills ratio: P(Z >= z) ~ phi(z) / z for large z (relative error < 0.2% here)
    s = 0.5 * z * z + math.log(z) + _HALF_LN_2PI
    return s if s < MAX_SURPRISE else MAX_SURPRISE


def surprise_z(z: float) -> float:
    """``-ln P(|Z| >= |z|)`` for a standard normal ``Z``: the two-sided surprise of a z-score."""
    a = z if z >= 0.0 else -z
    if a < 25.0:
        return -math.log(math.erfc(a * _INV_SQRT2))
    s = 0.5 * a * a + math.log(a) + _HALF_LN_2PI - _LN2
    return s if s < MAX_SURPRISE else MAX_SURPRISE


class Detector(abc.ABC):
    """The protocol every detector follows (see the module docstring)."""

    __slots__ = ()

    @abc.abstractmethod
    def p_one(self, x: float | None, t: int | None = None) -> float:
        """Tail probability of ``x`` under the recent behaviour: 1.0 in warm-up or missing."""

    @abc.abstractmethod
    def learn_one(self, x: float | None, t: int | None = None) -> None:
        """Learn ``x`` (missing values are ignored)."""

    def update_p(self, x: float | None, t: int | None = None) -> float:
        """``p_one`` then ``learn_one``; subclasses compute it once."""
        p = self.p_one(x, t)
        self.learn_one(x, t)
        return p

    def score_one(self, x: float | None, t: int | None = None) -> float:
        """``1 - p_one(x, t)``: in [0, 1), higher = rarer under the series' normal behaviour."""
        return 1.0 - self.p_one(x, t)

    def update(self, x: float | None, t: int | None = None) -> float:
        """Score ``x``, then learn it: ``score_one`` followed by ``learn_one``."""
        return 1.0 - self.update_p(x, t)


class SurpriseDetector(Detector):
    """A detector that computes a surprise and calibrates it (see the module docstring).

    Subclasses implement :meth:`surprise` (pure) and :meth:`learn_surprise` (learn ``x``
    given its already computed surprise) and have ``calibrator`` (None until the protocol
    first learns: models that only use a detector's statistic carry no calibration state)
    and ``calibration_half_life`` slots.
    """

    __slots__ = ()

    calibrator: TailCalibrator | None
    calibration_half_life: float

    def _calibrator(self) -> TailCalibrator:
        c = self.calibrator
        if c is None:
            c = TailCalibrator(self.calibration_half_life)
            self.calibrator = c  # type: ignore[misc]  # a slot of every subclass
        return c

    def _calibrated_p(self, s: float) -> float:
        """The tail probability of the surprise ``s``, then learn it (the hot path)."""
        cal = self.calibrator
        if cal is None:
            cal = self._calibrator()
        return cal.update(s)

    def _p(self, s: float) -> float:
        c = self.calibrator
        return _NOMINAL.p(s) if c is None else c.p(s)

    @abc.abstractmethod
    def surprise(self, x: float, t: int | None) -> float | None:
        """Surprise (nats) of a finite ``x`` under the current state; None in warm-up."""

    @abc.abstractmethod
    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        """Learn a finite ``x`` whose surprise (None in warm-up) was ``s``."""

    def p_one(self, x: float | None, t: int | None = None) -> float:
        v = clean(x)
        if v is None:
            return 1.0
        s = self.surprise(v, t)
        if s is None:
            return 1.0
        return self._p(s)

    def learn_one(self, x: float | None, t: int | None = None) -> None:
        v = clean(x)
        if v is None:
            return
        s = self.surprise(v, t)
        if s is not None:
            self._calibrator().learn(s)
        self.learn_surprise(v, t, s)

    def update_p(self, x: float | None, t: int | None = None) -> float:
        v = clean(x)
        if v is None:
            return 1.0
        return self.update_p_value(v, t)

    def update_p_value(self, v: float, t: int | None) -> float:
        """``update_p`` of an already cleaned (builtin, finite) value."""
        s = self.surprise(v, t)
        if s is None:
            self.learn_surprise(v, t, None)
            return 1.0
        p = self._calibrated_p(s)
        self.learn_surprise(v, t, s)
        return p

"""VarianceShift: the series got noisier (or calmer) than it usually is, and stays so.

A burst of noise (a loose contact, a failing pump, a sensor at the end of its life) hardly
shows in any single reading, but the size of successive steps ``|x_t - x_{t-1}|`` grows for
as long as it lasts. VarianceShift keeps a *fast* (``fast_half_life``) and a *slow*
(``slow_half_life``) exponentially weighted mean of that step size and scores their log ratio
``ln(fast / slow)`` against its own learned spread (self-tuning, like
:class:`~models.detect.level_shift.LevelShift`): two-sided, so a sensor that suddenly stops
varying shows too (a frozen one is :class:`~models.detect.flat_line.FlatLine`'s, which says it
sooner). Steps are clipped at ``clip`` times the slow mean (one spike is two big steps, not a
noisier series), step means are floored at half the series' quantum and at ``rel_floor`` of
the level (a coarse sensor's steps are 0 or one quantum), and the slow mean is frozen while
the ratio's surprise is above ``hold`` nats. The score is calibrated on the series. A level
shift is one large step: it barely moves the ratio. ``t`` is not used.

>>> import math
>>> d = VarianceShift(warmup=50)
>>> for i in range(3000):
...     d.learn_one(10.0 + 0.1 * math.sin(i * 2.1))
>>> before = d.score_one(10.05)
>>> scores = [d.update(10.0 + 0.6 * math.sin(i * 2.1)) for i in range(60)]   # 6x noisier
>>> before < 0.9, max(scores) > 0.999
(True, True)
"""

from __future__ import annotations

import math

from models.detect.base import (
    SurpriseDetector,
    ew_rate,
    require_fast_slow,
    require_non_negative,
    require_positive,
    scale_floor,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["VarianceShift"]

_ABS_TO_SIGMA = 1.2533141373155003


class VarianceShift(SurpriseDetector):
    """Fast-over-slow mean step size, as a self-tuning log ratio.

    Parameters
    ----------
    fast_half_life, slow_half_life
        Half-lives in readings, ``0 < fast < slow``.
    warmup
        Readings learned before scores are non-zero.
    clip
        A step enters the means clipped at ``clip`` times the slow mean.
    hold
        Surprise (nats) above which the slow mean is frozen.
    ratio_half_life
        Half-life (readings) of the log ratio's learned spread.
    rel_floor
        Step means are at least this share of the level.
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_af",
        "_ar",
        "_as",
        "_n",
        "calibration_half_life",
        "calibrator",
        "clip",
        "fast",
        "fast_half_life",
        "hold",
        "level",
        "prev",
        "ratio_dev",
        "ratio_half_life",
        "rel_floor",
        "resolution",
        "slow",
        "slow_half_life",
        "warmup",
    )

    def __init__(
        self,
        fast_half_life: float = 32.0,
        slow_half_life: float = 1000.0,
        *,
        warmup: int = 100,
        clip: float = 4.0,
        hold: float = 6.9,
        ratio_half_life: float = 2000.0,
        rel_floor: float = 1e-4,
        calibration_half_life: float = 3000.0,
    ) -> None:
        require_fast_slow(fast_half_life, slow_half_life)
        require_positive(clip=clip, hold=hold, ratio_half_life=ratio_half_life)
        require_non_negative(rel_floor=rel_floor)
        if warmup < 2:
            msg = f"warmup: must be >= 2, got {warmup!r}"
            raise ValueError(msg)
        self.fast_half_life = float(fast_half_life)
        self.slow_half_life = float(slow_half_life)
        self.ratio_half_life = float(ratio_half_life)
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.hold = float(hold)
        self.rel_floor = float(rel_floor)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        self.resolution = Resolution()
        self._af = ew_rate(self.fast_half_life)
        self._as = ew_rate(self.slow_half_life)
        self._ar = ew_rate(self.ratio_half_life)
        self._n = 0
        self.prev: float | None = None
        self.level = 0.0
        self.fast = 0.0
        self.slow = 0.0
        self.ratio_dev = 0.0

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def _floor(self) -> float:
        return scale_floor(0.5 * self.resolution.quantum, self.rel_floor, self.level)

    def _step(self, x: float) -> float:
        prev = self.prev
        if prev is None:
            return 0.0
        d = x - prev if x >= prev else prev - x
        lim = self.clip * (self.slow if self.slow > self._floor() else self._floor())
        return d if d < lim else lim

    def _ratio(self, fast: float) -> float:
        f = self._floor()
        slow = self.slow if self.slow > f else f
        return math.log((fast if fast > f else f) / slow)

    def surprise(self, x: float, t: int | None) -> float | None:
        if self._n < self.warmup:
            return None
        fast = self.fast + self._af * (self._step(x) - self.fast)
        dev = self.ratio_dev * _ABS_TO_SIGMA
        return surprise_z(self._ratio(fast) / (dev if dev > 0.05 else 0.05))

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        self.resolution.learn(x)
        n = self._n + 1
        self._n = n
        step = self._step(x)
        self.prev = x
        inv = 1.0 / n
        self.level += (inv if inv > self._as else self._as) * (x - self.level)
        if n == 1:
            return
        inv = 1.0 / (n - 1)  # steps seen
        if n <= self.warmup:
            self.fast += (inv if inv > self._af else self._af) * (step - self.fast)
            self.slow += (inv if inv > self._as else self._as) * (step - self.slow)
            r = self._ratio(self.fast)
            self.ratio_dev += inv * ((r if r >= 0.0 else -r) - self.ratio_dev)
            return
        self.fast += self._af * (step - self.fast)
        if s is not None and s > self.hold:
            return
        self.slow += self._as * (step - self.slow)
        r = self._ratio(self.fast)
        ar = r if r >= 0.0 else -r
        dev = self.ratio_dev * _ABS_TO_SIGMA
        lim = 3.0 * (dev if dev > 0.05 else 0.05)
        self.ratio_dev += self._ar * ((ar if ar < lim else lim) - self.ratio_dev)

    def __repr__(self) -> str:
        return f"VarianceShift(fast={self.fast:.4g}, slow={self.slow:.4g}, n={self._n})"

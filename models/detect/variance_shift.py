"""VarianceShift: the series got noisier than it usually is, and stays so.

A burst of noise (a loose contact, a failing pump, a sensor at the end of its life) hardly
shows in any single reading, but the size of successive steps ``|x_t - x_{t-1}|`` grows for
as long as it lasts. VarianceShift works on the *logarithm* of the step size: a noisier
series moves ``E[ln |step|]`` up by exactly the log of the noise ratio, whatever the noise's
law, and one spike (two big steps) moves a mean of logs by little, so no clipping is needed.

It keeps a *fast* (``fast_half_life`` steps) and a *slow* (``slow_half_life``) exponentially
weighted mean of ``l = ln max(|step|, floor)`` and scores their difference against its own
learned spread (self-tuning, like :class:`~models.detect.level_shift.LevelShift`), one-sided
by default (``side="up"``: noisier; ``"both"`` also flags a series that got calmer, which a
frozen sensor does first: :class:`~models.detect.flat_line.FlatLine` says that sooner and
better). The spread is at least what the fast mean of independent steps would show
(``sd(l) * sqrt(a / (2 - a))``), so a series whose noise level never changes cannot make
every change look huge.

Floors: a step counts as at least half the series' quantum (a coarse sensor's steps are 0 or
one quantum), ``floor_share`` of its mean step size and ``rel_floor`` of its level; until the
series has moved at all there is nothing to score. While the surprise is above ``hold`` nats
the slow mean and the spread are frozen (a burst is not absorbed into its own reference);
after ``max_hold`` such steps the new noise level is accepted. The score is calibrated on the
series (:class:`~models.detect.calibrate.TailCalibrator`). A level shift is one large step: it
barely moves a mean of logs. ``t`` is not used.

On the real series of ``benchmarks/eval_detectors.py`` this replaced a fast-over-slow mean of
*clipped* steps, whose clip (4 times the slow mean) capped the ratio a burst could reach:
window AUC for injected noise went from 0.87 to 0.97.

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
from typing import Literal

from models.detect.base import (
    ABS_TO_SIGMA,
    SurpriseDetector,
    ew_rate,
    require_fast_slow,
    require_non_negative,
    require_positive,
    surprise_upper,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["VarianceShift"]


#: the smallest spread of the log-ratio (nats): a 5% change of the noise level is not news
_MIN_DEV = 0.05

Side = Literal["up", "down", "both"]


class VarianceShift(SurpriseDetector):
    """Fast-minus-slow mean log step size, against its own learned spread.

    Parameters
    ----------
    fast_half_life, slow_half_life
        Half-lives in steps, ``0 < fast < slow``.
    warmup
        Steps learned (once the series has moved) before scores are non-zero (>= 2).
    clip
        A step enters the mean step size (the reference of ``floor_share``) clipped at
        ``clip`` times that mean.
    hold
        Surprise (nats) above which the slow mean and the spread are frozen.
    max_hold
        Steps a burst may freeze them before the new noise level is accepted (>= 1).
    ratio_half_life
        Half-life (steps) of the learned spread of the fast-minus-slow difference.
    side
        ``"up"`` (default: noisier), ``"down"`` (calmer) or ``"both"``.
    floor_share
        A step counts as at least this share of the mean step size (> 0).
    rel_floor
        A step counts as at least this share of the level (>= 0).
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
        "floor_share",
        "held",
        "hold",
        "level",
        "max_hold",
        "mean_step",
        "prev",
        "ratio_dev",
        "ratio_half_life",
        "rel_floor",
        "resolution",
        "side",
        "slow",
        "slow_half_life",
        "slow_sq",
        "steps",
        "warmup",
    )

    def __init__(
        self,
        fast_half_life: float = 32.0,
        slow_half_life: float = 1000.0,
        *,
        warmup: int = 100,
        clip: float = 10.0,
        hold: float = 6.9,
        max_hold: int = 1000,
        ratio_half_life: float = 2000.0,
        side: Side = "up",
        floor_share: float = 0.05,
        rel_floor: float = 1e-4,
        calibration_half_life: float = 3000.0,
    ) -> None:
        require_fast_slow(fast_half_life, slow_half_life)
        require_positive(
            clip=clip,
            hold=hold,
            max_hold=max_hold,
            ratio_half_life=ratio_half_life,
            floor_share=floor_share,
        )
        require_non_negative(rel_floor=rel_floor)
        if warmup < 2:
            msg = f"warmup: must be >= 2, got {warmup!r}"
            raise ValueError(msg)
        if side not in ("up", "down", "both"):
            msg = f"side: must be 'up', 'down' or 'both', got {side!r}"
            raise ValueError(msg)
        self.fast_half_life = float(fast_half_life)
        self.slow_half_life = float(slow_half_life)
        self.ratio_half_life = float(ratio_half_life)
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.hold = float(hold)
        self.max_hold = int(max_hold)
        self.side: Side = side
        self.floor_share = float(floor_share)
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
        self.mean_step = 0.0  # EW mean |step| (clipped): the reference of floor_share
        #: log steps learned (the series has moved), their fast and slow means, the slow
        #: mean square (for the spread of independent steps), the learned spread
        self.steps = 0
        self.fast = 0.0
        self.slow = 0.0
        self.slow_sq = 0.0
        self.ratio_dev = 0.0
        self.held = 0

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def _log_step(self, x: float) -> float | None:
        """``ln`` of the floored step to ``x``; None before the series has moved."""
        prev = self.prev
        if prev is None:
            return None
        d = x - prev if x >= prev else prev - x
        f = 0.5 * self.resolution.quantum
        g = self.floor_share * self.mean_step
        if g > f:
            f = g
        lv = self.level
        g = self.rel_floor * (lv if lv >= 0.0 else -lv)
        if g > f:
            f = g
        if f <= 0.0:
            return None
        return math.log(d if d > f else f)

    def spread(self) -> float:
        """The spread of ``fast - slow``: learned, at least that of independent steps."""
        v = self.slow_sq - self.slow * self.slow
        a = self._af
        f = math.sqrt(v * a / (2.0 - a)) if v > 0.0 else 0.0
        if f < _MIN_DEV:
            f = _MIN_DEV
        d = self.ratio_dev * ABS_TO_SIGMA
        return d if d > f else f

    def _surprise_of(self, z: float) -> float:
        side = self.side
        if side == "up":
            return surprise_upper(z)
        if side == "down":
            return surprise_upper(-z)
        return surprise_z(z)

    def surprise(self, x: float, t: int | None) -> float | None:
        if self.steps < self.warmup:
            return None
        ls = self._log_step(x)
        if ls is None:
            return None
        fast = self.fast + self._af * (ls - self.fast)
        return self._surprise_of((fast - self.slow) / self.spread())

    def update_p_value(self, v: float, t: int | None) -> float:
        # the log step computed once for the surprise and the learning (the hot path)
        q = self.resolution.quantum
        ls = self._log_step(v)
        s: float | None = None
        if self.steps >= self.warmup and ls is not None:
            fast = self.fast + self._af * (ls - self.fast)
            s = self._surprise_of((fast - self.slow) / self.spread())
            p = self._calibrated_p(s)
        else:
            p = 1.0
        self.resolution.learn(v)
        if self.resolution.quantum != q:  # a new quantum: a new floor of the step
            ls = self._log_step(v)
        self._learn(v, s, ls)
        return p

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        self.resolution.learn(x)
        self._learn(x, s, self._log_step(x))

    def _learn(self, x: float, s: float | None, ls: float | None) -> None:
        """Learn ``x`` (already learned by the resolution), whose log step is ``ls``."""
        prev = self.prev
        self.prev = x
        n = self._n + 1
        self._n = n
        inv = 1.0 / n
        self.level += (inv if inv > self._as else self._as) * (x - self.level)
        if prev is not None:
            d = x - prev if x >= prev else prev - x
            m = self.mean_step
            lim = self.clip * m
            if n > 10 and m > 0.0 and d > lim:
                d = lim
            a = 1.0 / (n - 1)
            self.mean_step += (a if a > self._as else self._as) * (d - m)
        if ls is None:
            return
        k = self.steps + 1
        self.steps = k
        if k == 1:
            self.fast = self.slow = ls
            self.slow_sq = ls * ls
            return
        if k <= self.warmup:
            inv = 1.0 / k
            af = inv if inv > self._af else self._af
            a_s = inv if inv > self._as else self._as
            self.fast += af * (ls - self.fast)
            self.slow += a_s * (ls - self.slow)
            self.slow_sq += a_s * (ls * ls - self.slow_sq)
            r = self.fast - self.slow
            self.ratio_dev += inv * ((r if r >= 0.0 else -r) - self.ratio_dev)
            return
        self.fast += self._af * (ls - self.fast)
        if s is not None and s > self.hold:
            self.held += 1
            if self.held >= self.max_hold:  # a lasting change: accept the new noise level
                self.slow = self.fast
                self.held = 0
            return
        self.held = 0
        a_s = self._as
        self.slow += a_s * (ls - self.slow)
        self.slow_sq += a_s * (ls * ls - self.slow_sq)
        r = self.fast - self.slow
        ar = r if r >= 0.0 else -r
        lim = 3.0 * self.spread()
        self.ratio_dev += self._ar * ((ar if ar < lim else lim) - self.ratio_dev)

    def __repr__(self) -> str:
        return (
            f"VarianceShift(fast={self.fast:.4g}, slow={self.slow:.4g}, side={self.side!r}, "
            f"n={self._n})"
        )

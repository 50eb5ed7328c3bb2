"""LevelShift: a self-tuning change-point detector (fast minus slow mean, learned scale).

Two exponentially weighted means of the series, ``fast`` (half-life ``fast_half_life``) and
``slow`` (``slow_half_life``): their gap ``d = fast - slow`` stays near zero while the level
holds and opens up after a lasting shift or during a trend, by about the shift itself once
``fast`` has caught up. The detector is *self-tuning*: it learns how large ``d`` normally is
on this series (an exponentially weighted mean absolute gap, updates clipped at ``clip``
times it), so a wandering series needs a larger shift than a steady one, and the surprise of
``d / scale`` is calibrated on the series like every detector here.

Robustness: a reading enters ``fast`` clipped at ``clip`` short-term scales around it, so
one spike moves it little (spikes are :class:`~models.detect.robust_z.RobustZ`'s job) while a
lasting shift keeps pushing. Scales are floored at half a quantum of the series (a sustained
one-quantum step on a coarse grid is not a change) and at ``rel_floor * |slow|``.

After a change: while the gap's surprise is above ``hold`` nats the slow mean is frozen,
so a shift is not absorbed into its own reference; after ``max_hold`` such readings the
detector accepts the new level (``slow = fast``) and starts over, as a change-point
detector does. The score is that of the gap *after* the reading is taken in.

>>> d = LevelShift(warmup=50)
>>> for i in range(1000):
...     d.learn_one(10.0 + (i % 3) * 0.2)
>>> scores = [d.update(12.0 + (i % 3) * 0.2) for i in range(20)]   # the level jumps by 2
>>> max(scores[:2]) < 0.99, max(scores) > 0.999
(True, True)
"""

from __future__ import annotations

from models.detect.base import (
    ABS_TO_SIGMA,
    SurpriseDetector,
    ew_rate,
    huber_ew,
    require_fast_slow,
    require_non_negative,
    require_positive,
    scale_floor,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["LevelShift"]


class LevelShift(SurpriseDetector):
    """Fast-minus-slow mean gap against its own learned scale.

    Parameters
    ----------
    fast_half_life, slow_half_life
        Half-lives in readings, ``0 < fast < slow``.
    warmup
        Readings learned before scores are non-zero (>= 1).
    clip
        Clip of readings (in short-term scales) and of gap-scale updates (in gap scales).
    hold
        Gap surprise (nats) above which the slow mean is frozen.
    max_hold
        Readings a change may hold the slow mean before the new level is accepted (>= 1).
    gap_half_life
        Half-life (readings) of the learned gap scale; None: ``10 * slow_half_life``.
    rel_floor
        The scales are at least this share of ``|slow|`` (>= 0).
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_af",
        "_ag",
        "_as",
        "_n",
        "calibration_half_life",
        "calibrator",
        "clip",
        "fast",
        "fast_half_life",
        "gap_dev",
        "gap_half_life",
        "held",
        "hold",
        "max_hold",
        "noise_dev",
        "rel_floor",
        "resolution",
        "slow",
        "slow_half_life",
        "warmup",
    )

    def __init__(
        self,
        fast_half_life: float = 8.0,
        slow_half_life: float = 200.0,
        *,
        warmup: int = 100,
        clip: float = 3.0,
        hold: float = 6.9,
        max_hold: int = 200,
        gap_half_life: float | None = None,
        rel_floor: float = 1e-3,
        calibration_half_life: float = 3000.0,
    ) -> None:
        ghl = 10.0 * slow_half_life if gap_half_life is None else gap_half_life
        require_fast_slow(fast_half_life, slow_half_life)
        require_positive(clip=clip, hold=hold, gap_half_life=ghl, warmup=warmup, max_hold=max_hold)
        require_non_negative(rel_floor=rel_floor)
        self.fast_half_life = float(fast_half_life)
        self.slow_half_life = float(slow_half_life)
        self.gap_half_life = float(ghl)
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.hold = float(hold)
        self.max_hold = int(max_hold)
        self.rel_floor = float(rel_floor)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        self.resolution = Resolution()
        self._af = ew_rate(self.fast_half_life)
        self._as = ew_rate(self.slow_half_life)
        self._ag = ew_rate(self.gap_half_life)
        self._n = 0
        self.fast = 0.0
        self.slow = 0.0
        self.noise_dev = 0.0  # EW mean |x - fast|: short-term noise
        self.gap_dev = 0.0  # EW mean |fast - slow|: the normal gap
        self.held = 0

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def _floor(self) -> float:
        return scale_floor(0.5 * self.resolution.quantum, self.rel_floor, self.slow)

    def _fast_after(self, x: float) -> float:
        return huber_ew(self.fast, x, self._af, self.noise_dev, self.clip, self._floor())

    def gap_scale(self) -> float:
        """The learned normal gap, floored."""
        g = self.gap_dev * ABS_TO_SIGMA
        f = self._floor()
        return g if g > f else f

    def surprise(self, x: float, t: int | None) -> float | None:
        if self._n < self.warmup:
            return None
        return surprise_z((self._fast_after(x) - self.slow) / self.gap_scale())

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        self.resolution.learn(x)
        n = self._n + 1
        self._n = n
        if n == 1:
            self.fast = self.slow = x
            return
        if n <= self.warmup:
            inv = 1.0 / n
            af = inv if inv > self._af else self._af
            a_s = inv if inv > self._as else self._as
            self.noise_dev += af * (abs(x - self.fast) - self.noise_dev)
            self.fast += af * (x - self.fast)
            self.slow += a_s * (x - self.slow)
            g = self.fast - self.slow
            self.gap_dev += inv * (abs(g) - self.gap_dev)
            return
        noise = abs(x - self.fast)
        lim_n = self.clip * (self.noise_dev if self.noise_dev > 0.0 else self._floor())
        self.noise_dev += self._af * ((noise if noise < lim_n else lim_n) - self.noise_dev)
        self.fast = self._fast_after(x)
        gap = self.fast - self.slow
        if s is not None and s > self.hold:
            self.held += 1
            if self.held >= self.max_hold:  # a change that lasts: accept the new level
                self.slow = self.fast
                self.held = 0
            return
        self.held = 0
        self.slow += self._as * (self.fast - self.slow)
        ag = gap if gap >= 0.0 else -gap
        lim_g = self.clip * self.gap_scale()
        self.gap_dev += self._ag * ((ag if ag < lim_g else lim_g) - self.gap_dev)

    def __repr__(self) -> str:
        return (
            f"LevelShift(fast_half_life={self.fast_half_life}, "
            f"slow_half_life={self.slow_half_life}, fast={self.fast:.4g}, slow={self.slow:.4g})"
        )

"""Trend: the level now against the level ``lag`` readings ago, against their usual gap.

A slow drift (a fouling probe, a sensor losing calibration, a leak that grows) moves the level
a little every reading: no single reading and no step is unusual, and a detector that keeps a
running reference (:class:`~models.detect.level_shift.LevelShift`) partly follows it. Trend
compares the smoothed level now, ``m_t`` (an exponentially weighted mean, half-life
``smooth_half_life`` readings), with the smoothed level ``lag`` readings ago, kept in a ring of
``lag`` floats: ``D = m_t - m_{t - lag}`` is the change over the last ``lag`` readings, which is
what a drift of that time scale adds up to and what the series' natural wander rarely reaches.

Self-tuning: ``D`` is scaled by its own learned spread on this series (an exponentially
weighted mean of ``|D|``, updates clipped at ``clip`` spreads, frozen while the surprise is above
``hold`` nats), so a wandering series needs a larger drift than a steady one; the two-sided
surprise is calibrated on the series like every detector here. A reading enters ``m`` clipped
at ``clip`` short-term noise scales around it (a spike moves it little). Scales are floored at
half the series' quantum and ``rel_floor`` of the level.

``lag`` sets the time scale: a drift much faster than ``lag`` readings is a level shift
(LevelShift sees it sooner), a much slower one is diluted. The default 200 is the slow
half-life of LevelShift. After a step the gap stays open for ``lag`` readings (the ring still
holds the old level), so an alarm lasts about that long. Memory: ``lag`` floats. ``t`` is not
used; readings are the clock (missing ones are skipped).

>>> d = Trend(lag=100)
>>> for i in range(2000):
...     d.learn_one(10.0 + (i * 7 % 5) * 0.2)
>>> scores = [d.update(10.0 + (i * 7 % 5) * 0.2 + 0.02 * i) for i in range(150)]
>>> max(scores[:20]) < 0.99, max(scores) > 0.999     # +0.02 a reading: 3 after 150
(True, True)
"""

from __future__ import annotations

from models.detect.base import (
    ABS_TO_SIGMA,
    SurpriseDetector,
    ew_rate,
    huber_ew,
    require_non_negative,
    require_positive,
    scale_floor,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["Trend"]


class Trend(SurpriseDetector):
    """Change of the smoothed level over ``lag`` readings, against its learned spread.

    Parameters
    ----------
    lag
        Readings between the two levels compared (>= 2): the time scale of the drift.
    smooth_half_life
        Half-life (readings) of the smoothed level (> 0).
    warmup
        Readings learned before scores are non-zero (None: ``lag + lag // 2``; at least
        ``lag + 2``).
    clip
        Clip of readings (in short-term noise scales) and of spread updates (in spreads).
    hold
        Surprise (nats) above which the spread is not learned.
    spread_half_life
        Half-life (readings) of the learned spread (None: ``10 * lag``).
    rel_floor
        The scales are at least this share of ``|level|`` (>= 0).
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_a",
        "_ad",
        "_i",
        "_n",
        "calibration_half_life",
        "calibrator",
        "clip",
        "dev",
        "hold",
        "lag",
        "level",
        "noise_dev",
        "rel_floor",
        "resolution",
        "ring",
        "smooth_half_life",
        "spread_half_life",
        "warmup",
    )

    def __init__(
        self,
        lag: int = 200,
        *,
        smooth_half_life: float = 8.0,
        warmup: int | None = None,
        clip: float = 3.0,
        hold: float = 6.9,
        spread_half_life: float | None = None,
        rel_floor: float = 1e-3,
        calibration_half_life: float = 3000.0,
    ) -> None:
        if not isinstance(lag, int) or lag < 2:
            msg = f"lag: must be an integer >= 2, got {lag!r}"
            raise ValueError(msg)
        wu = lag + lag // 2 if warmup is None else warmup
        shl = 10.0 * lag if spread_half_life is None else spread_half_life
        require_positive(smooth_half_life=smooth_half_life, clip=clip, hold=hold)
        require_positive(spread_half_life=shl)
        require_non_negative(rel_floor=rel_floor)
        if wu < lag + 2:
            msg = f"warmup: must be >= lag + 2 = {lag + 2}, got {wu!r}"
            raise ValueError(msg)
        self.lag = lag
        self.smooth_half_life = float(smooth_half_life)
        self.spread_half_life = float(shl)
        self.warmup = int(wu)
        self.clip = float(clip)
        self.hold = float(hold)
        self.rel_floor = float(rel_floor)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        self.resolution = Resolution()
        self._a = ew_rate(self.smooth_half_life)
        self._ad = ew_rate(self.spread_half_life)
        self._n = 0
        self._i = 0  # the ring slot of the level ``lag`` readings ago (and of the next one)
        self.ring = [0.0] * lag
        self.level = 0.0
        self.noise_dev = 0.0  # EW mean |x - level|: short-term noise
        self.dev = 0.0  # EW mean |D|: the usual change over ``lag`` readings

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def _floor(self) -> float:
        return scale_floor(0.5 * self.resolution.quantum, self.rel_floor, self.level)

    def _level_after(self, x: float) -> float:
        return huber_ew(self.level, x, self._a, self.noise_dev, self.clip, self._floor())

    def spread(self) -> float:
        """The usual change over ``lag`` readings (a standard deviation), floored."""
        d = self.dev * ABS_TO_SIGMA
        f = self._floor()
        return d if d > f else f

    def surprise(self, x: float, t: int | None) -> float | None:
        if self._n < self.warmup:
            return None
        return surprise_z((self._level_after(x) - self.ring[self._i]) / self.spread())

    def update_p_value(self, v: float, t: int | None) -> float:
        # surprise() with its floor computed once (the hot path), then learn
        if self._n < self.warmup:
            self.learn_surprise(v, t, None)
            return 1.0
        f = self._floor()
        la = huber_ew(self.level, v, self._a, self.noise_dev, self.clip, f)
        d = self.dev * ABS_TO_SIGMA
        s = surprise_z((la - self.ring[self._i]) / (d if d > f else f))
        p = self._calibrated_p(s)
        self.learn_surprise(v, t, s)
        return p

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        self.resolution.learn(x)
        n = self._n + 1
        self._n = n
        i = self._i
        if n == 1:
            self.level = x
        elif n <= self.warmup:
            inv = 1.0 / n
            a = inv if inv > self._a else self._a
            r = x - self.level
            self.noise_dev += a * ((r if r >= 0.0 else -r) - self.noise_dev)
            self.level += a * r
        else:
            f = self._floor()  # the level is still the old one: one floor for both
            r = x - self.level
            ar = r if r >= 0.0 else -r
            lim = self.clip * (self.noise_dev if self.noise_dev > 0.0 else f)
            self.noise_dev += self._a * ((ar if ar < lim else lim) - self.noise_dev)
            self.level = huber_ew(self.level, x, self._a, self.noise_dev, self.clip, f)
        level = self.level
        if n > self.lag:  # the ring is full: the change over lag readings is defined
            d = level - self.ring[i]
            ad = d if d >= 0.0 else -d
            k = n - self.lag
            if k <= self.warmup - self.lag:
                self.dev += (ad - self.dev) / k
            elif s is None or s <= self.hold:
                lim = self.clip * self.spread()
                self.dev += self._ad * ((ad if ad < lim else lim) - self.dev)
        self.ring[i] = level
        i += 1
        self._i = 0 if i == self.lag else i

    def __repr__(self) -> str:
        return f"Trend(lag={self.lag}, level={self.level:.4g}, n={self._n})"

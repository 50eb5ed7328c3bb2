"""FlatLine: a run of identical readings, judged against the series' own repeat rate.

Coarse sensors repeat values naturally (water temperature on a 0.1 degC grid repeats 84% of
the minutes), so a fixed run length cries wolf on them and misses a frozen precise sensor.
FlatLine learns ``p``, the exponentially weighted share of readings equal to the previous one
(equal up to float noise, :func:`~models.detect.resolution.same`), and scores a run of ``r``
repeats by its surprise under a geometric law, ``s = r * -ln p`` with ``p`` as it was when
the run began, clamped to ``[p_min, p_max]``. The surprise is calibrated on the series
(:class:`~models.detect.calibrate.TailCalibrator`), which learns how much longer real runs
are than geometric (repeats cluster: quiet nights, slow drifts on a coarse grid).

While a run's surprise is above ``hold`` nats the repeat rate is not learned, so a stuck
sensor does not teach the detector that repeating is normal. A series that has never varied
scores 0 (constant is its normal behaviour; it is stuck only once it has moved and stops).
Missing readings neither extend nor break a run. ``t`` is not used.

>>> d = FlatLine(warmup=20)
>>> for i in range(2000):          # varies every reading, on a grid
...     d.learn_one(float(i % 7))
>>> [round(d.update(3.0), 3) for _ in range(4)][-1] > 0.999   # 3, 3, 3, 3: stuck
True
>>> q = FlatLine(warmup=20)
>>> for i in range(2000):          # a coarse sensor that repeats 4 readings in 5
...     q.learn_one(float(i // 5 % 3))
>>> q.update(2.0) < 0.9            # a repeat is ordinary here
True
"""

from __future__ import annotations

import math

from models.detect.base import SurpriseDetector, ew_rate
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import same

__all__ = ["FlatLine"]


class FlatLine(SurpriseDetector):
    """Run length of identical readings against the learned repeat rate.

    Parameters
    ----------
    half_life
        Readings after which an old reading's weight in the repeat rate halves (> 0).
    warmup
        Readings learned before scores are non-zero (>= 1).
    p_min, p_max
        Clamp of the repeat rate used for a run (``0 < p_min <= p_max < 1``): ``p_min`` keeps
        one repeat of a continuous series from being a certainty of a fault.
    hold
        Surprise (nats) of the current run above which the repeat rate stops learning.
    local_half_life, local_weight
        A second, short-memory repeat rate (half-life in readings) and its weight in the
        rate a run is judged by (0: the long-run rate alone, the default; on the real series
        of ``benchmarks/eval_detectors.py`` the local rate found fewer stuck sensors).
    min_run
        Repeats before a run counts at all (>= 1; shorter runs score 0). The default 1
        judges every run; the :class:`~models.detect.ensemble.Ensemble` uses 3: one or two
        repeats are never a frozen sensor, and counting them adds chance evidence to every
        stretch of a continuous series (on the real series of
        ``benchmarks/eval_detectors.py`` 3 found more stuck sensors, alone and in the
        ensemble).
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_a",
        "_al",
        "_n",
        "calibration_half_life",
        "calibrator",
        "changed",
        "half_life",
        "hold",
        "local_half_life",
        "local_weight",
        "min_run",
        "nlog_p",
        "p_local",
        "p_max",
        "p_min",
        "p_repeat",
        "prev",
        "run",
        "warmup",
    )

    def __init__(
        self,
        half_life: float = 1000.0,
        *,
        warmup: int = 60,
        p_min: float = 1e-3,
        p_max: float = 0.995,
        hold: float = 9.0,
        local_half_life: float = 30.0,
        local_weight: float = 0.0,
        min_run: int = 1,
        calibration_half_life: float = 3000.0,
    ) -> None:
        if not half_life > 0:
            msg = f"half_life: must be > 0, got {half_life!r}"
            raise ValueError(msg)
        if warmup < 1:
            msg = f"warmup: must be >= 1, got {warmup!r}"
            raise ValueError(msg)
        if not 0.0 < p_min <= p_max < 1.0:
            msg = f"p_min/p_max: need 0 < p_min <= p_max < 1, got {p_min!r}/{p_max!r}"
            raise ValueError(msg)
        if not hold > 0 or not local_half_life > 0:
            msg = f"hold/local_half_life: must be > 0, got {hold!r}/{local_half_life!r}"
            raise ValueError(msg)
        if min_run < 1:
            msg = f"min_run: must be >= 1, got {min_run!r}"
            raise ValueError(msg)
        if not 0.0 <= local_weight <= 1.0:
            msg = f"local_weight: must be in [0, 1], got {local_weight!r}"
            raise ValueError(msg)
        self.half_life = float(half_life)
        self.warmup = int(warmup)
        self.p_min = float(p_min)
        self.p_max = float(p_max)
        self.hold = float(hold)
        self.min_run = int(min_run)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        self._a = ew_rate(self.half_life)
        self.local_half_life = float(local_half_life)
        self.local_weight = float(local_weight)
        self._al = ew_rate(self.local_half_life)
        self._n = 0
        self.prev: float | None = None
        #: whether the series ever varied
        self.changed = False
        self.run = 0
        self.p_repeat = 0.5
        self.p_local = 0.5
        self.nlog_p = math.log(2.0)

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def _nlog(self) -> float:
        lw = self.local_weight
        p = lw * self.p_local + (1.0 - lw) * self.p_repeat
        if p < self.p_min:
            p = self.p_min
        elif p > self.p_max:
            p = self.p_max
        return -math.log(p)

    def surprise(self, x: float, t: int | None) -> float | None:
        if self._n < self.warmup:
            return None
        prev = self.prev
        if prev is None or not same(x, prev) or not self.changed:
            return 0.0  # a series that never varied is not stuck: constant is its normal
        run = self.run + 1
        if run < self.min_run:
            return 0.0
        return run * (self.nlog_p if run > 1 else self._nlog())

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        prev = self.prev
        self._learn(x, prev is not None and same(x, prev))

    def update_p_value(self, v: float, t: int | None) -> float:
        # the repeat test once for both the surprise and the learning (the hot path)
        prev = self.prev
        repeat = prev is not None and same(v, prev)
        if self._n < self.warmup:
            self._learn(v, repeat)
            return 1.0
        if repeat and self.changed and self.run + 1 >= self.min_run:
            run = self.run + 1
            s = run * (self.nlog_p if run > 1 else self._nlog())
        else:
            s = 0.0
        cal = self.calibrator
        if cal is None:
            cal = self._calibrator()
        p = cal.update(s)
        self._learn(v, repeat)
        return p

    def _learn(self, x: float, repeat: bool) -> None:
        n = self._n + 1
        self._n = n
        first = self.prev is None
        self.prev = x
        if first:
            return
        if repeat:
            self.run += 1
            if self.run == 1:
                self.nlog_p = self._nlog()
        else:
            self.changed = True
            self.run = 0
        if self.run * self.nlog_p > self.hold:
            return
        # a running mean over the pairs seen (the prior 0.5 weighs one pair), then EW
        a = 1.0 / n if 1.0 / n > self._a else self._a
        ind = 1.0 if repeat else 0.0
        self.p_repeat += a * (ind - self.p_repeat)
        if self.local_weight > 0.0:
            a = 1.0 / n if 1.0 / n > self._al else self._al
            self.p_local += a * (ind - self.p_local)

    def __repr__(self) -> str:
        return (
            f"FlatLine(half_life={self.half_life}, warmup={self.warmup}, "
            f"p_repeat={self.p_repeat:.3g}, run={self.run})"
        )

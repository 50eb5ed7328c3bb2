"""RobustZ: a robust streaming z-score with an automatic, quantization-aware scale floor.

Location and scale are exponentially weighted, each update *Huber-clipped*: a residual larger
than ``clip`` scales moves the estimates by at most ``clip`` scales, so one outlier barely
changes them while a lasting level shift is absorbed within a few ``half_life``. The scale is
an exponentially weighted mean absolute deviation converted to a standard deviation
(``x 1.2533`` for a normal law), floored at the largest of

* ``min_scale`` (absolute, in the units the detector works in; 0 by default),
* ``quantum_floor`` times the series' quantum, learned online
  (:class:`~models.detect.resolution.Resolution`): after a flat stretch a one-quantum step
  is a z of at most 1, never 1e9,
* ``rel_floor`` times ``|location|``: a series that never moved still has a scale.

``z = (x - location) / scale``; its two-sided normal surprise (one-sided with ``side``) is
calibrated on the series (:class:`~models.detect.calibrate.TailCalibrator`), so
``score = 1 - p`` with ``p`` the share of readings this far out under the recent behaviour.
``log1p=True`` works on ``sign(x) * log1p(|x|)`` (concentrations, counts; negative values
keep their sign). The first ``warmup`` values learn plain running means and score 0.

Cost: about 3 µs per ``update`` in CPython; state is a dozen floats.

>>> d = RobustZ(half_life=20, warmup=10)
>>> for i in range(500):
...     d.learn_one(10.0 + (i % 5) * 0.5)
>>> d.score_one(11.0) < 0.9
True
>>> d.score_one(30.0) > 0.999
True
>>> d.learn_one(1e6)          # one wild value hardly moves the location
>>> round(d.location, 1)
11.1
>>> flat = RobustZ(warmup=10)
>>> for i in range(300):       # a quantized series that mostly sits still
...     flat.learn_one(6.5 if i % 50 else 6.6)
>>> flat.score_one(6.6) < 0.999   # one quantum up is ordinary, not z ~ 1e9
True
"""

from __future__ import annotations

import math
from typing import Literal

from models.detect.base import (
    ABS_TO_SIGMA,
    TINY_SCALE,
    SurpriseDetector,
    clean,
    ew_rate,
    require_non_negative,
    require_positive,
    surprise_upper,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["RobustZ", "Side"]


Side = Literal["both", "up", "down"]


class RobustZ(SurpriseDetector):
    """Huber-clipped exponentially weighted z-score with a calibrated score.

    Parameters
    ----------
    half_life
        Values after which an old value's weight in the location halves (> 0).
    warmup
        Values learned before scores are non-zero (>= 1); plain running means meanwhile.
    clip
        Residuals are clipped at ``clip`` scales before updating (> 0).
    min_scale
        Absolute floor of the scale (>= 0), in the units the detector works in.
    side
        ``"both"`` (default), ``"up"`` (only high values are anomalous) or ``"down"``.
    log1p
        Work on ``sign(x) * log1p(|x|)`` instead of ``x``.
    scale_half_life
        Half-life of the scale (> 0); None: ``half_life``.
    quantum_floor
        The scale is at least this many quanta of the series (>= 0; 0 disables).
    rel_floor
        The scale is at least this share of ``|location|`` (>= 0; 0 disables).
    calibration_half_life
        Half-life (values) of the score's calibration.
    """

    __slots__ = (
        "_a",
        "_as",
        "_n",
        "calibration_half_life",
        "calibrator",
        "clip",
        "half_life",
        "location",
        "log1p",
        "mean_abs_dev",
        "min_scale",
        "quantum_floor",
        "rel_floor",
        "resolution",
        "scale_half_life",
        "side",
        "warmup",
    )

    def __init__(
        self,
        half_life: float = 2.0,
        *,
        warmup: int = 30,
        clip: float = 3.0,
        min_scale: float = 0.0,
        side: Side = "both",
        log1p: bool = False,
        scale_half_life: float | None = 500.0,
        quantum_floor: float = 1.0,
        rel_floor: float = 1e-3,
        calibration_half_life: float = 3000.0,
    ) -> None:
        shl = half_life if scale_half_life is None else scale_half_life
        require_positive(half_life=half_life, scale_half_life=shl, clip=clip, warmup=warmup)
        require_non_negative(min_scale=min_scale, quantum_floor=quantum_floor, rel_floor=rel_floor)
        if side not in ("both", "up", "down"):
            msg = f"side: must be 'both', 'up' or 'down', got {side!r}"
            raise ValueError(msg)
        self.half_life = float(half_life)
        self.scale_half_life = float(shl)
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.min_scale = float(min_scale)
        self.side: Side = side
        self.log1p = bool(log1p)
        self.quantum_floor = float(quantum_floor)
        self.rel_floor = float(rel_floor)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        # no floor, no quantum to learn (and nothing to pickle)
        self.resolution = Resolution() if self.quantum_floor > 0.0 else None
        self._a = ew_rate(self.half_life)
        self._as = ew_rate(self.scale_half_life)
        self._n = 0
        self.location = 0.0
        self.mean_abs_dev = 0.0

    @property
    def n(self) -> int:
        """Number of values learned."""
        return self._n

    @property
    def scale(self) -> float:
        """The current robust standard deviation, floored (see the module docstring)."""
        s = self.mean_abs_dev * ABS_TO_SIGMA
        f = self.min_scale if self.min_scale > TINY_SCALE else TINY_SCALE
        res = self.resolution
        if res is not None:
            q = res.quantum * self.quantum_floor
            if q > f:
                f = q
        r = self.rel_floor * (self.location if self.location >= 0.0 else -self.location)
        if r > f:
            f = r
        return s if s > f else f

    # -- the low-level API (for models that both test and learn one transformed value) -------

    def transform(self, x: float | None) -> float | None:
        """The value the detector works on (signed ``log1p`` if set); None when missing."""
        v = clean(x)
        if v is None or not self.log1p:
            return v
        return math.log1p(v) if v >= 0.0 else -math.log1p(-v)

    def learn_value(self, v: float) -> None:
        """Learn an already transformed, finite value (no calibration step)."""
        if self.resolution is not None:
            self.resolution.learn(v)
        n = self._n + 1
        self._n = n
        if n == 1:
            self.location = v
            return
        r = v - self.location
        if n <= self.warmup:
            inv = 1.0 / n
            a = inv if inv > self._a else self._a
            a_s = inv if inv > self._as else self._as
            self.location += a * r
            self.mean_abs_dev += a_s * (abs(r) - self.mean_abs_dev)
            return
        self._learn_residual(r, self.scale)

    def _learn_residual(self, r: float, scale: float) -> None:
        """Learn a residual past the warm-up, clipped at ``clip`` scales."""
        lim = self.clip * scale
        ar = r if r >= 0.0 else -r
        if ar > lim:
            r = lim if r > 0 else -lim
            ar = lim
        self.location += self._a * r
        self.mean_abs_dev += self._as * (ar - self.mean_abs_dev)

    def z_of(self, v: float) -> float:
        """Signed robust z of an already transformed value; 0.0 in warm-up."""
        if self._n < self.warmup:
            return 0.0
        return (v - self.location) / self.scale

    def z_one(self, x: float | None) -> float:
        """Signed robust z of ``x``; 0.0 in warm-up or when missing."""
        v = self.transform(x)
        return 0.0 if v is None else self.z_of(v)

    # -- the detector protocol ---------------------------------------------------------------

    def surprise(self, x: float, t: int | None) -> float | None:
        if self._n < self.warmup:
            return None
        if self.log1p:
            x = math.log1p(x) if x >= 0.0 else -math.log1p(-x)
        z = (x - self.location) / self.scale
        side = self.side
        if side == "both":
            return surprise_z(z)
        return surprise_upper(z if side == "up" else -z)

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        if self.log1p:
            x = math.log1p(x) if x >= 0.0 else -math.log1p(-x)
        self.learn_value(x)

    def update_p_value(self, v: float, t: int | None) -> float:
        # the transform and the scale computed once for the surprise and the learning (the
        # hot path): the scale changes only if this reading confirms a new quantum
        if self.log1p:
            v = math.log1p(v) if v >= 0.0 else -math.log1p(-v)
        n = self._n
        if n < self.warmup:
            self.learn_value(v)
            return 1.0
        scale = self.scale
        z = (v - self.location) / scale
        side = self.side
        if side == "both":
            s = surprise_z(z)
        else:
            s = surprise_upper(z if side == "up" else -z)
        p = self._calibrated_p(s)
        if n == 0:  # a warm-up of zero readings: the first one sets the location
            self.learn_value(v)
            return p
        res = self.resolution
        if res is not None:
            q = res.quantum
            res.learn(v)
            if res.quantum != q:
                scale = self.scale
        self._n = n + 1
        self._learn_residual(v - self.location, scale)
        return p

    def __repr__(self) -> str:
        return (
            f"RobustZ(half_life={self.half_life}, warmup={self.warmup}, clip={self.clip}, "
            f"min_scale={self.min_scale}, side={self.side!r}, log1p={self.log1p}, "
            f"scale_half_life={self.scale_half_life})"
        )

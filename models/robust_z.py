"""RobustZ: a robust, adaptive streaming z-score for any numeric series.

Location and scale are exponentially weighted, but each update is *Huber-clipped*: a
residual larger than ``clip`` scales moves the estimates by at most ``clip`` scales, so a
single outlier barely changes them, while a lasting level shift is absorbed within a few
``half_life`` (the clipped steps keep pushing, and the scale grows while they do).

The scale is an exponentially weighted mean absolute deviation, converted to a standard
deviation (``x 1.2533`` for a normal law) and floored at ``min_scale`` so a constant or
coarsely quantized series does not turn every small change into an infinite z.

Score: ``z = (x - location) / scale`` (one-sided variants keep only the named direction) and
``score = z**2 / (z**2 + z_half**2)``, so 0 means "typical", 0.5 means ``|z| == z_half``
(default 4) and the score tends to 1 as ``|z|`` grows. It is 0.0 during the first ``warmup``
values and for ``None``/NaN. :meth:`z_one` returns the signed z itself (0.0 in warm-up).

Cost: about 1 µs per ``learn_one`` and per ``score_one`` in CPython; state is five floats.

>>> d = RobustZ(half_life=20, warmup=10)
>>> for i in range(200):
...     d.learn_one(10.0 + (i % 5) * 0.5)
>>> d.score_one(11.0) < 0.1
True
>>> d.score_one(30.0) > 0.9
True
>>> d.learn_one(1e6)          # one wild value hardly moves the location
>>> round(d.location, 1)
11.1
"""

from __future__ import annotations

import math
from typing import Final, Literal

from models.base import Detector

__all__ = ["RobustZ"]

#: E|X - mu| = sigma * sqrt(2 / pi) for a normal law: scale = MAD_mean * this.
_ABS_TO_SIGMA: Final = math.sqrt(math.pi / 2.0)

Side = Literal["both", "up", "down"]


class RobustZ(Detector):
    """Huber-clipped exponentially weighted z-score.

    Parameters
    ----------
    half_life
        Number of values after which an old value's weight halves (> 0).
    warmup
        Values learned before scores are non-zero (>= 1). During warm-up the estimates are
        plain running means (faster start-up, no clipping).
    clip
        Residuals are clipped at ``clip`` scales before updating (> 0); lower = more robust,
        slower to follow a genuine shift.
    z_half
        The ``|z|`` whose score is 0.5 (> 0).
    min_scale
        Floor of the scale, in the units of ``x`` (>= 0), e.g. the quantum of a sensor.
    side
        ``"both"`` (default), ``"up"`` (only high values are anomalous) or ``"down"``.
    log1p
        Work on ``log1p(max(x, 0))`` instead of ``x`` (concentrations, counts); ``min_scale``
        then applies to the transformed value.
    """

    __slots__ = (
        "_a",
        "_n",
        "clip",
        "half_life",
        "location",
        "log1p",
        "mean_abs_dev",
        "min_scale",
        "side",
        "warmup",
        "z_half",
    )

    def __init__(
        self,
        half_life: float = 60.0,
        *,
        warmup: int = 30,
        clip: float = 3.0,
        z_half: float = 4.0,
        min_scale: float = 1e-9,
        side: Side = "both",
        log1p: bool = False,
    ) -> None:
        if not half_life > 0:
            msg = f"half_life: must be > 0, got {half_life!r}"
            raise ValueError(msg)
        if warmup < 1:
            msg = f"warmup: must be >= 1, got {warmup!r}"
            raise ValueError(msg)
        if not clip > 0:
            msg = f"clip: must be > 0, got {clip!r}"
            raise ValueError(msg)
        if not z_half > 0:
            msg = f"z_half: must be > 0, got {z_half!r}"
            raise ValueError(msg)
        if not min_scale >= 0:
            msg = f"min_scale: must be >= 0, got {min_scale!r}"
            raise ValueError(msg)
        if side not in ("both", "up", "down"):
            msg = f"side: must be 'both', 'up' or 'down', got {side!r}"
            raise ValueError(msg)
        self.half_life = float(half_life)
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.z_half = float(z_half)
        self.min_scale = float(min_scale)
        self.side: Side = side
        self.log1p = bool(log1p)
        # learned state
        self._a = 1.0 - 0.5 ** (1.0 / self.half_life)
        self._n = 0
        self.location = 0.0
        self.mean_abs_dev = 0.0

    @property
    def n(self) -> int:
        """Number of values learned."""
        return self._n

    @property
    def scale(self) -> float:
        """The current robust standard deviation (>= ``min_scale``)."""
        s = self.mean_abs_dev * _ABS_TO_SIGMA
        return s if s > self.min_scale else self.min_scale

    def transform(self, x: float | None) -> float | None:
        """The value the detector works on (``log1p`` if set); None for missing/non-finite.

        With :meth:`z_of` and :meth:`learn_value` a caller that both scores and learns a value
        transforms it once (a hot-path saving; ``score_one``/``learn_one`` are the API).
        """
        if x is None or x != x or x in (math.inf, -math.inf):
            return None
        if self.log1p:
            return math.log1p(x) if x > 0.0 else 0.0
        return float(x)

    def learn_one(self, x: float | None) -> None:
        v = self.transform(x)
        if v is not None:
            self.learn_value(v)

    def learn_value(self, v: float) -> None:
        """Learn an already transformed, finite value."""
        n = self._n + 1
        self._n = n
        if n == 1:
            self.location = v
            return
        r = v - self.location
        if n <= self.warmup:
            a = 1.0 / n if 1.0 / n > self._a else self._a
            self.location += a * r
            self.mean_abs_dev += a * (abs(r) - self.mean_abs_dev)
            return
        a = self._a
        lim = self.clip * self.scale
        ar = abs(r)
        if ar > lim:
            r = lim if r > 0 else -lim
            ar = lim
        self.location += a * r
        self.mean_abs_dev += a * (ar - self.mean_abs_dev)

    def z_one(self, x: float | None) -> float:
        """Signed robust z of ``x`` against the current estimates; 0.0 in warm-up or for None."""
        v = self.transform(x)
        if v is None or self._n < self.warmup:
            return 0.0
        return (v - self.location) / self.scale

    def z_of(self, v: float) -> float:
        """Signed robust z of an already transformed value; 0.0 in warm-up."""
        if self._n < self.warmup:
            return 0.0
        s = self.mean_abs_dev * _ABS_TO_SIGMA
        return (v - self.location) / (s if s > self.min_scale else self.min_scale)

    def score_one(self, x: float | None) -> float:
        z = self.z_one(x)
        if self.side == "up":
            if z <= 0.0:
                return 0.0
        elif self.side == "down":
            if z >= 0.0:
                return 0.0
        z2 = z * z
        if z2 == math.inf:
            return 1.0
        return z2 / (z2 + self.z_half * self.z_half)

    def __repr__(self) -> str:
        return (
            f"RobustZ(half_life={self.half_life}, warmup={self.warmup}, clip={self.clip}, "
            f"z_half={self.z_half}, min_scale={self.min_scale}, side={self.side!r}, "
            f"log1p={self.log1p})"
        )

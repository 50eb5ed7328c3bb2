"""Drift of one station against its neighbours: fast-minus-slow EWMA of the log ratio.

A drifting analyser (gain creeping up or down over hours to days) looks normal to its own
z-score: the level is plausible and moves smoothly. Against its neighbours it does not: the
log ratio ``r = log1p(x) - median(log1p(neighbours))`` has a station-specific but stable mean
(siting), which a drifting gain walks away from. The tracker keeps a *fast* and a *slow* EWMA
of ``r``; ``d = fast - slow`` is near 0 for a healthy station and grows with drift
(reported on real data, not measured here: AUC 0.80, against 0.49 for a single-station
z-score).

The slow mean is a running mean until its half-life takes over and, once warmed up, learns
only while the fast mean stays within ``band`` of it, so a drift walking away is not absorbed
into its own reference (and is frozen entirely with ``hold_slow``).

Updates are clipped at ``clip`` around the slow mean, so a local plume of an hour (a few
large residuals) hardly moves ``fast``. Score: ``d**2 / (d**2 + threshold**2)`` (0.5 at the
threshold); 0.0 until ``warmup`` residuals were seen.

>>> t = DriftTracker(fast_half_life=60, slow_half_life=1440, warmup=60)
>>> for _ in range(600):
...     _ = t.update(0.10)           # a stable +10% siting offset: no drift
>>> abs(t.deviation) < 1e-9
True
>>> for i in range(600):
...     _ = t.update(0.10 + i * 0.001)   # gain creeping up 0.1% a minute
>>> t.deviation > 0.15
True
"""

from __future__ import annotations

from models.air.compact import Compact

__all__ = ["DriftTracker"]


class DriftTracker(Compact):
    """Fast and slow EWMAs of a log ratio (half-lives in readings)."""

    __slots__ = (
        "_af",
        "_as",
        "band",
        "clip",
        "fast",
        "n",
        "slow",
        "threshold",
        "warmup",
    )

    def __init__(
        self,
        fast_half_life: float = 120.0,
        slow_half_life: float = 2880.0,
        *,
        warmup: int = 360,
        clip: float = 0.5,
        threshold: float = 0.2,
        band: float | None = None,
    ) -> None:
        if not 0 < fast_half_life < slow_half_life:
            msg = (
                f"fast_half_life/slow_half_life: need 0 < fast < slow, "
                f"got {fast_half_life!r}/{slow_half_life!r}"
            )
            raise ValueError(msg)
        self._af = 1.0 - 0.5 ** (1.0 / fast_half_life)
        self._as = 1.0 - 0.5 ** (1.0 / slow_half_life)
        self.warmup = warmup
        self.band = band
        self.clip = clip
        self.threshold = threshold
        self.fast = 0.0
        self.slow = 0.0
        self.n = 0

    @property
    def deviation(self) -> float:
        """``fast - slow`` (log units: 0.18 is about +20%); 0.0 in warm-up."""
        return self.fast - self.slow if self.n >= self.warmup else 0.0

    def score(self) -> float:
        d = self.deviation
        return d * d / (d * d + self.threshold * self.threshold)

    def update(self, r: float, *, hold_slow: bool = False) -> float:
        """Learn one log ratio; return the new deviation.

        ``hold_slow`` freezes the slow mean (while drift is alarmed, so the reference does not
        chase the drifting sensor and clear the alarm while the fault persists).
        """
        n = self.n + 1
        self.n = n
        if n == 1:
            self.fast = self.slow = r
            return 0.0
        lo, hi = self.slow - self.clip, self.slow + self.clip
        if r < lo:
            r = lo
        elif r > hi:
            r = hi
        a_f = self._af if n > self.warmup else max(self._af, 1.0 / n)
        self.fast += a_f * (r - self.fast)
        # the slow mean is a running mean until its half-life takes over, and after warm-up it
        # learns only while the fast mean stays within ``band`` of it: a drift walking away
        # is not absorbed into its own reference
        a_s = max(self._as, 1.0 / n)
        in_band = self.band is None or n <= self.warmup or abs(self.fast - self.slow) < self.band
        if not hold_slow and in_band:
            self.slow += a_s * (r - self.slow)
        return self.fast - self.slow if n >= self.warmup else 0.0

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
large residuals) hardly moves ``fast``. Score: ``d**2 / (d**2 + limit**2)`` (0.5 at the
limit); 0.0 until ``warmup`` residuals were seen.

Stations wander against their neighbours by very different amounts (a reference analyser a
few per cent, a low-cost optical sensor whose response to humidity differs from its
neighbours' tens of per cent), so the alarm limit is ``max(threshold, k * noise)``: ``noise``
is the mean ``|d|`` of the station's own ordinary days (learned at the slow rate, not while
held), ``k`` the caller's.

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

__all__ = ["DriftTracker", "DriftWatch"]


class DriftTracker(Compact):
    """Fast and slow EWMAs of a log ratio (half-lives in readings)."""

    __slots__ = (
        "_af",
        "_as",
        "band",
        "clip",
        "fast",
        "k",
        "n",
        "noise",
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
        k: float = 0.0,
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
        self.k = k
        self.fast = 0.0
        self.slow = 0.0
        self.n = 0
        #: mean |fast - slow| of ordinary (not held) readings after warm-up, learned at the slow
        #: rate from a prior of a quarter of the threshold
        self.noise = threshold * 0.25

    @property
    def deviation(self) -> float:
        """``fast - slow`` (log units: 0.18 is about +20%); 0.0 in warm-up."""
        return self.fast - self.slow if self.n >= self.warmup else 0.0

    def limit(self) -> float:
        """The alarm limit: ``threshold``, or ``k`` times the station's own noise if larger
        (the noise is learned from deviations within half the limit: a deviation building up
        does not raise its own limit)."""
        lim = self.k * self.noise
        return lim if lim > self.threshold else self.threshold

    def score(self) -> float:
        d = self.deviation
        lim = self.limit()
        return d * d / (d * d + lim * lim)

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
        if n < self.warmup:
            return 0.0
        d = self.fast - self.slow
        ad = d if d >= 0.0 else -d
        if not hold_slow and ad < 0.5 * self.limit():
            # ordinary days only: a deviation building up must not raise its own limit
            self.noise += self._as * (ad - self.noise)
        return d


class DriftWatch(Compact):
    """Both views of a drift at one time scale (hours, or days): the level and the
    PM2.5/PM10 ratio against the neighbours, each beyond its limit (its threshold, or ``k``
    times the station's own noise if larger). The caller counts ``streak``: readings beyond
    towards ``for_n`` before a drift starts, calm readings towards ``clear_n`` while it is on.

    >>> w = DriftWatch(DriftTracker(5, 50, warmup=10, threshold=0.2, k=4),
    ...                DriftTracker(5, 50, warmup=10, threshold=0.1, k=4), for_n=3, clear_n=3)
    >>> any(w.observe(0.0, None, True, False, 0.2) for _ in range(30))
    False
    >>> [w.observe(0.8, None, True, False, 0.2) for _ in range(8)].index(True)   # readings
    5
    """

    __slots__ = ("clear_n", "for_n", "level", "ratio", "streak")

    def __init__(
        self, level: DriftTracker, ratio: DriftTracker, *, for_n: int, clear_n: int
    ) -> None:
        self.level = level
        self.ratio = ratio
        self.for_n = for_n
        self.clear_n = clear_n
        self.streak = 0

    def observe(
        self, r: float, rq: float | None, level_ok: bool, hold: bool, level_floor: float
    ) -> bool:
        """Learn a level log ratio ``r`` (if ``level_ok``) and a ratio deviation ``rq`` (or
        None); whether either view is beyond its limit now (the level limit never below
        ``level_floor``). ``hold``: a drift (or a plume) is on: the references stay put."""
        lv, rv = self.level, self.ratio
        d = lv.update(r, hold_slow=hold) if level_ok else lv.deviation
        dq = rv.update(rq, hold_slow=hold) if rq is not None else 0.0
        lim = lv.limit()
        if lim < level_floor:
            lim = level_floor
        return abs(d) > lim or abs(dq) > rv.limit()

    def calm(self, level_floor: float) -> bool:
        """Whether both views are within 60 % of their limits."""
        lim = max(self.level.limit(), level_floor)
        return (
            abs(self.level.deviation) < 0.6 * lim
            and abs(self.ratio.deviation) < 0.6 * self.ratio.limit()
        )

    def strength(self, level_floor: float) -> tuple[float, str]:
        """(deviation over limit, view) of the view further beyond its limit."""
        lim = max(self.level.limit(), level_floor)
        a = abs(self.level.deviation) / lim
        b = abs(self.ratio.deviation) / self.ratio.limit()
        return (b, "ratio") if b > a else (a, "level")

"""Surge detection: more tickets of one category in one district than the time of day explains.

:class:`SurgeDetector` counts tickets per key (``f"{district}/{category}"``) in a sliding
window of ``window_ms`` and asks how surprising that count is under the key's baseline:

* The **baseline rate** of a key (tickets per day) is a Gamma posterior: the key's tickets
  *before* the window (exponentially forgotten, half-life ``half_life_days``), plus a prior
  of ``prior_days`` days at the rate the key would have if districts and categories were
  independent (city rate x category share x district share, all from baseline tickets), so a
  new district/category pair starts at a sensible rate; floored at ``min_rate_per_day``.
* **Time of day**: the expected count in a window is the rate times the window's share of a
  day's calls, from a 24-hour profile (Beijing time) that starts as :data:`DEFAULT_PROFILE`
  (few calls at night, peaks mid-morning) and learns from every *complete* day of baseline
  tickets, pooled over keys.
* **Tail**: the count's upper-tail probability under the negative binomial (Gamma-Poisson)
  predictive, which is wider than a Poisson while the baseline is still uncertain; the Gamma
  shape is capped at ``max_shape`` (days differ: weather, holidays), so it never gets thin.

A key starts surging when ``p <= alpha``, ``count >= min_count`` and ``count >= min_ratio *
expected`` (practical, not only statistical, significance); it stops when
``p > release_alpha`` (hysteresis). Tickets counted while surging feed the baseline at weight
``surge_weight`` only, so a surge does not teach itself to be normal.

``score`` = ``-log10(p) / (2 * -log10(alpha))`` clipped to [0, 1]: 0.5 at the firing
threshold, 1.0 at ``alpha**2``.

>>> det = SurgeDetector()
>>> t0 = 1_762_041_600_000              # Monday 08:00 Beijing
>>> hour = 3_600_000
>>> for day in range(3):                # three quiet days: ~one noise ticket an hour
...     for h in range(10):
...         _ = det.update(t0 + day * 24 * hour + h * hour, "崇川区", "noise")
>>> burst = [det.update(t0 + 3 * 24 * hour + i * 60_000, "崇川区", "noise") for i in range(8)]
>>> [s is not None and s.active for s in burst]
[False, False, False, False, True, True, True, True]
>>> burst[-1].key, burst[-1].count
('崇川区/noise', 8)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from models.hotline.validate import require

__all__ = [
    "DEFAULT_PROFILE",
    "NOISE_PROFILE",
    "SurgeConfig",
    "SurgeDetector",
    "SurgeStatus",
    "nbinom_sf",
]

_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_BEIJING_OFFSET_MS: Final = 8 * _HOUR_MS

#: Share of a day's hotline calls per hour of day (Beijing time), a typical 12345 curve.
DEFAULT_PROFILE: Final[tuple[float, ...]] = tuple(
    w / 100.0
    for w in (
        0.8,
        0.5,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        3.0,
        6.0,
        8.2,
        8.6,
        8.0,
        5.6,
        6.0,
        7.2,
        7.4,
        7.0,
        6.0,
        4.6,
        4.4,
        4.0,
        3.0,
        1.9,
        1.2,
    )
)


#: Noise complaints come in the evening and at night (people at home, trying to sleep).
NOISE_PROFILE: Final[tuple[float, ...]] = tuple(
    w / 100.0
    for w in (
        3.0,
        2.0,
        1.5,
        1.0,
        0.8,
        1.0,
        1.5,
        2.5,
        4.0,
        5.0,
        5.2,
        5.0,
        4.0,
        4.2,
        4.6,
        4.6,
        4.4,
        4.2,
        4.0,
        5.0,
        6.5,
        8.0,
        8.5,
        6.0,
    )
)


def nbinom_sf(k: int, r: float, p: float) -> float:
    """P(X >= k) for X ~ NegBin(r, p) (failures before the r-th success, success prob ``p``).

    Its mean is ``r (1 - p) / p``; as r grows with the mean fixed it tends to a Poisson.

    >>> round(nbinom_sf(0, 2.0, 0.5), 6), round(nbinom_sf(1, 2.0, 0.5), 6)
    (1.0, 0.75)
    """
    if k <= 0:
        return 1.0
    if not (r > 0.0 and 0.0 < p <= 1.0):
        msg = f"nbinom_sf: need r > 0 and 0 < p <= 1, got r={r!r}, p={p!r}"
        raise ValueError(msg)
    if p == 1.0:
        return 0.0
    q = 1.0 - p
    mean = r * q / p
    log_pmf0 = r * math.log(p)
    if k <= mean + 1.0:  # the tail is large: 1 - cdf loses nothing
        pmf, cdf = math.exp(log_pmf0), 0.0
        for x in range(k):
            cdf += pmf
            pmf *= (x + r) / (x + 1) * q
        return min(1.0, max(0.0, 1.0 - cdf))
    # The tail is small: sum it directly from pmf(k), terms shrink geometrically past the mode.
    log_pmf_k = (
        math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + log_pmf0 + k * math.log(q)
    )
    pmf = math.exp(log_pmf_k)
    total, x = 0.0, k
    while pmf > 1e-18 * max(total, 1e-300) and x < k + 10_000:
        total += pmf
        pmf *= (x + r) / (x + 1) * q
        x += 1
    return min(1.0, total)


@dataclass(frozen=True, slots=True)
class SurgeConfig:
    """Hyperparameters of :class:`SurgeDetector` (validated on construction)."""

    window_ms: int = 2 * _HOUR_MS
    alpha: float = 1e-4
    release_alpha: float = 0.05
    min_count: int = 5
    half_life_days: float = 14.0
    prior_days: float = 1.0
    min_rate_per_day: float = 1.0
    surge_weight: float = 0.2
    profile: tuple[float, ...] = DEFAULT_PROFILE
    #: Categories whose calls keep other hours than ``profile`` (fixed, not learned).
    category_profiles: tuple[tuple[str, tuple[float, ...]], ...] = (("noise", NOISE_PROFILE),)
    profile_prior: float = 200.0
    #: Pseudo-tickets per category and per district smoothing their shares in the prior.
    share_pseudo: float = 5.0
    #: Practical significance: the count must also be this many times the expected count.
    min_ratio: float = 3.0
    #: Cap on the Gamma shape of the baseline rate: day-to-day variation (weather, holidays)
    #: never lets the predictive tail get thinner than a rate known to about +-22%.
    max_shape: float = 20.0

    def __post_init__(self) -> None:
        checks = (
            ("window_ms", self.window_ms > 0),
            ("alpha", 0.0 < self.alpha < 1.0),
            ("release_alpha", self.alpha <= self.release_alpha < 1.0),
            ("min_count", self.min_count >= 1),
            ("half_life_days", self.half_life_days > 0),
            ("prior_days", self.prior_days > 0),
            ("min_rate_per_day", self.min_rate_per_day > 0),
            ("surge_weight", 0.0 <= self.surge_weight <= 1.0),
            ("profile", len(self.profile) == 24 and all(w > 0 for w in self.profile)),
            (
                "category_profiles",
                all(len(p) == 24 and all(w > 0 for w in p) for _, p in self.category_profiles),
            ),
            ("profile_prior", self.profile_prior > 0),
            ("min_ratio", self.min_ratio >= 1.0),
            ("share_pseudo", self.share_pseudo > 0),
            ("max_shape", self.max_shape > 0),
        )
        require(self, checks)


@dataclass(frozen=True, slots=True)
class SurgeStatus:
    """One key's surge state after a ticket or a watermark: emitted while surging and once
    when it ends (``active=False``). ``started_ts`` is when this surge began."""

    key: str
    district: str
    category: str
    ts: int
    active: bool
    count: int
    expected: float
    p_value: float
    score: float
    started_ts: int


@dataclass(slots=True)
class _Key:
    window: deque[tuple[int, float]] = field(default_factory=deque)  # (ts, baseline weight)
    n: float = 0.0  # forgotten count of tickets that left the window
    n_ts: int = 0  # event time n was decayed to
    surging_since: int | None = None


class SurgeDetector:
    """Per district/category surge detection against a time-of-day baseline."""

    def __init__(self, config: SurgeConfig | None = None) -> None:
        self.config = config or SurgeConfig()
        total = sum(self.config.profile)
        self._hour_n = [w / total * self.config.profile_prior for w in self.config.profile]
        self._profile_cache: tuple[list[float], list[float]] | None = None
        self._margin_cache: tuple[int, int, int] | None = None
        # Today's baseline tickets per hour: merged into the profile when the day is complete
        # (a partial day would make the hours still to come look quiet).
        self._today: list[float] = [0.0] * 24
        self._today_day = -1
        self._keys: dict[str, _Key] = {}
        # Forgotten baseline counts of the margins: "*" (all), "c:<category>", "d:<district>",
        # as (count, event time it was decayed to).
        self._margins: dict[str, tuple[float, int]] = {}
        self._exposure = 0.0  # forgotten day-equivalents of baseline history
        self._fixed = {
            c: [w / sum(p) for w in p] for c, p in self.config.category_profiles
        }  # category -> its own fixed profile
        self._cat_exposure = dict.fromkeys(self._fixed, 0.0)
        # Tickets still inside the window, in arrival order, to fold into the margins on time.
        self._pending: deque[tuple[int, str, str, float]] = deque()
        self._edge: int | None = None  # baseline history covers event time up to here
        self.watermark_ms = 0

    # -- time of day ---------------------------------------------------------------------

    def _profile(self) -> list[float]:
        """The learned 24-hour profile (recomputed only when a complete day was merged in)."""
        cached: tuple[list[float], list[float]] | None = getattr(self, "_profile_cache", None)
        if cached is not None and cached[0] is self._hour_n:
            return cached[1]
        total = sum(self._hour_n)
        profile = [n / total for n in self._hour_n]
        self._profile_cache = (self._hour_n, profile)
        return profile

    def _share(self, t0: int, t1: int, profile: list[float]) -> float:
        """Day-equivalents of calls expected between t0 and t1 (fraction of a day's calls)."""
        share = 0.0
        t = t0
        while t < t1:
            local = t + _BEIJING_OFFSET_MS
            hour = (local // _HOUR_MS) % 24
            nxt = min(t1, t - local % _HOUR_MS + _HOUR_MS)
            share += profile[hour] * (nxt - t) / _HOUR_MS
            t = nxt
        return share

    def _decay(self, dt_ms: int) -> float:
        return 0.5 ** (dt_ms / (self.config.half_life_days * _DAY_MS)) if dt_ms > 0 else 1.0

    def _advance_edge(self, edge: int, profile: list[float]) -> None:
        if self._edge is None:  # history starts with the first ticket, not a window earlier
            self._edge = max(edge, self.watermark_ms)
            return
        if edge <= self._edge:
            return
        span = edge - self._edge
        decay = self._decay(span)
        self._exposure = self._exposure * decay + self._share(self._edge, edge, profile)
        for c, fixed in self._fixed.items():
            self._cat_exposure[c] = self._cat_exposure[c] * decay + self._share(
                self._edge, edge, fixed
            )
        self._edge = edge
        while self._pending and self._pending[0][0] < edge:
            ts, district, category, weight = self._pending.popleft()
            for m in ("*", f"c:{category}", f"d:{district}"):
                n, last = self._margins.get(m, (0.0, ts))
                self._margins[m] = (n * self._decay(ts - last) + weight, max(last, ts))

    def _fold(self, key: _Key, district: str, category: str, ts: int, weight: float) -> None:
        """Move one ticket (filed at ``ts``) from the window into the baseline history."""
        key.n = key.n * self._decay(ts - key.n_ts) + weight
        key.n_ts = max(key.n_ts, ts)
        if weight >= 1.0:
            local = ts + _BEIJING_OFFSET_MS
            day = local // _DAY_MS
            if day > self._today_day:
                if self._today_day >= 0 and day == self._today_day + 1:
                    self._hour_n = [n + t for n, t in zip(self._hour_n, self._today, strict=True)]
                self._today = [0.0] * 24
                self._today_day = day
            if day == self._today_day:
                self._today[(local // _HOUR_MS) % 24] += 1.0

    def _roll(self, key: str, k: _Key, now: int) -> None:
        horizon = now - self.config.window_ms
        if not k.window or k.window[0][0] >= horizon:
            return
        district, _, category = key.partition("/")
        while k.window and k.window[0][0] < horizon:
            ts, w = k.window.popleft()
            self._fold(k, district, category, ts, w)

    # -- scoring -----------------------------------------------------------------------------

    def _prior_rate(self, district: str, category: str) -> float:
        """The key's rate per day if districts and categories were independent: the city's
        rate times the category's share times the district's share (each smoothed with
        ``share_pseudo`` pseudo-tickets, so a few early tickets do not decide them)."""
        total = self._margins.get("*", (0.0, 0))[0]
        if self._exposure <= 0 or total <= 0:
            return 0.0
        n_cat, n_dist = self._margin_counts()
        k = self.config.share_pseudo
        cat_n = self._margins.get(f"c:{category}", (0.0, 0))[0]
        dist_n = self._margins.get(f"d:{district}", (0.0, 0))[0]
        cat = (cat_n + k) / (total + k * (n_cat + 1))
        dist = (dist_n + k) / (total + k * (n_dist + 1))
        return total / self._exposure * cat * dist

    def _margin_counts(self) -> tuple[int, int]:
        """How many categories and districts have a margin (recounted only when one is new)."""
        cached: tuple[int, int, int] | None = getattr(self, "_margin_cache", None)
        if cached is not None and cached[0] == len(self._margins):
            return cached[1], cached[2]
        n_cat = sum(1 for m in self._margins if m.startswith("c:"))
        n_dist = sum(1 for m in self._margins if m.startswith("d:"))
        self._margin_cache = (len(self._margins), n_cat, n_dist)
        return n_cat, n_dist

    def _expected(self, k: _Key, key: str, now: int) -> tuple[float, float]:
        """(shape a, rate b) of the Gamma posterior of the key's rate per day."""
        cfg = self.config
        edge = self._edge if self._edge is not None else now
        district, _, category = key.partition("/")
        exposure = self._cat_exposure.get(category, self._exposure)
        n = k.n * self._decay(edge - k.n_ts) if k.n_ts else 0.0
        prior_rate = max(cfg.min_rate_per_day, self._prior_rate(district, category))
        a = n + cfg.prior_days * prior_rate
        b = exposure + cfg.prior_days
        if a / b < cfg.min_rate_per_day:
            a = cfg.min_rate_per_day * b
        if a > cfg.max_shape:
            b *= cfg.max_shape / a
            a = cfg.max_shape
        return a, b

    def _status(self, key: str, k: _Key, now: int, lazy: bool = False) -> tuple[int, float, float]:
        """(count, expected, p-value) of the key's window; ``lazy``: a count that could not
        start a surge (below ``min_count`` or ``min_ratio`` times the expectation) gets p = 1
        without computing the tail."""
        cfg = self.config
        category = key.partition("/")[2]
        profile = self._fixed.get(category) or self._profile()
        a, b = self._expected(k, key, now)
        e = self._share(now - cfg.window_ms, now, profile)
        count = len(k.window)
        expected = a / b * e
        if lazy and (count < cfg.min_count or count < cfg.min_ratio * expected):
            return count, expected, 1.0
        return count, expected, nbinom_sf(count, a, b / (b + e))

    def _score(self, p_value: float) -> float:
        s = -math.log10(max(p_value, 1e-300)) / (2.0 * -math.log10(self.config.alpha))
        return min(1.0, max(0.0, s))

    # -- the two entry points ----------------------------------------------------------------

    def update(self, ts: int, district: str, category: str) -> SurgeStatus | None:
        """Count one ticket; returns the key's status if it is (or just stopped) surging."""
        cfg = self.config
        self.watermark_ms = max(self.watermark_ms, ts)
        key = f"{district}/{category}"
        k = self._keys.get(key)
        if k is None:
            k = self._keys[key] = _Key(n_ts=0)
        self._advance_edge(self.watermark_ms - cfg.window_ms, self._profile())
        self._roll(key, k, self.watermark_ms)
        weight = cfg.surge_weight if k.surging_since is not None else 1.0
        k.window.append((ts, weight))
        self._pending.append((ts, district, category, weight))
        lazy = k.surging_since is None
        count, expected, p_value = self._status(key, k, self.watermark_ms, lazy)
        return self._transition(key, k, ts, count, expected, p_value)

    def advance(self, watermark_ms: int) -> list[SurgeStatus]:
        """Event time reached ``watermark_ms``: end surges whose windows emptied out, and drop
        keys with nothing in their window and no history worth keeping."""
        if watermark_ms <= self.watermark_ms:
            return []
        self.watermark_ms = watermark_ms
        self._advance_edge(watermark_ms - self.config.window_ms, self._profile())
        out: list[SurgeStatus] = []
        for key, k in list(self._keys.items()):
            if k.surging_since is None and not k.window:
                continue
            self._roll(key, k, watermark_ms)
            if k.surging_since is not None:
                count, expected, p_value = self._status(key, k, watermark_ms)
                st = self._transition(key, k, watermark_ms, count, expected, p_value)
                if st is not None and not st.active:
                    out.append(st)
        return out

    def _transition(
        self, key: str, k: _Key, ts: int, count: int, expected: float, p_value: float
    ) -> SurgeStatus | None:
        cfg = self.config
        district, _, category = key.partition("/")
        if k.surging_since is None:
            if (
                p_value <= cfg.alpha
                and count >= cfg.min_count
                and count >= cfg.min_ratio * expected
            ):
                k.surging_since = ts
                # The tickets that made the surge should not teach the baseline either.
                k.window = deque((t, min(w, cfg.surge_weight)) for t, w in k.window)
            else:
                return None
        elif p_value > cfg.release_alpha:
            started = k.surging_since
            k.surging_since = None
            return SurgeStatus(
                key, district, category, ts, False, count, expected, p_value, 0.0, started
            )
        return SurgeStatus(
            key,
            district,
            category,
            ts,
            True,
            count,
            expected,
            p_value,
            self._score(p_value),
            k.surging_since,
        )

    def is_surging(self, district: str, category: str) -> bool:
        k = self._keys.get(f"{district}/{category}")
        return k is not None and k.surging_since is not None

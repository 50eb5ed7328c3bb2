"""Mahalanobis: several correlated channels of one station, judged together.

Each channel is standardized against its own short-term level: ``z_i = (x_i - loc_i) /
scale_i`` with a Huber-clipped exponentially weighted location (``half_life``) and mean
absolute deviation (``scale_half_life``), the scale floored at the channel's quantum and
``rel_floor`` of its level, as in :class:`~models.detect.robust_z.RobustZ`. An exponentially
weighted covariance ``C`` of the clipped ``z`` (``cov_half_life``) learns how the channels
normally move together (pH with redox, chlorine on two probes, flow on two lines). The
squared Mahalanobis distance ``d2 = z' C^-1 z`` of a reading is large when channels move
more than usual *or* against their usual relation (a contamination changes several at once
in a way they never change together). ``d2`` has a chi-squared law with ``m`` degrees of
freedom for ``m`` observed channels under the nominal model; its upper-tail surprise
(Wilson-Hilferty) is calibrated on the series like every detector here.

``C`` is regularized (``ridge`` on the diagonal of its correlation form); complete readings
are folded into it in batches of ``refresh`` (one matrix product) and it is inverted then,
so the per-reading cost is the standardization and one quadratic form. Missing channels
(None, NaN, inf) are left out of that reading: the distance uses the observed channels'
block of ``C``; a reading with no channel is missing as a whole. Each channel's quantum is
the smallest step it has taken (readings closer than 1e-7 of their size count as equal).

Readings are a sequence aligned with ``channels``, or a mapping from channel name to value
(absent names are missing). ``t`` is not used.

>>> import math
>>> m = Mahalanobis(("a", "b"), warmup=50)
>>> for i in range(3000):
...     u = math.sin(i * 0.37) + 0.3 * math.sin(i * 1.91)
...     m.learn_one((10.0 + u, 20.0 + 2.0 * u + 0.05 * math.sin(i * 2.7)))
>>> m.score_one({"a": 10.5, "b": 21.0}) < 0.99       # both up, as they go together
True
>>> m.score_one({"a": 10.5, "b": 19.0}) > 0.999      # against their relation
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from models.detect.base import (
    ABS_TO_SIGMA,
    clean,
    ew_rate,
    require_non_negative,
    require_positive,
    scale_floor,
    surprise_upper,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import EQUAL_REL

__all__ = ["Mahalanobis", "Reading"]

Reading = Sequence[float | None] | Mapping[str, float | None]
F64 = npt.NDArray[np.float64]

_INF: Final = math.inf


class Mahalanobis:
    """Robust Mahalanobis distance of standardized channels, calibrated.

    Parameters
    ----------
    channels
        Channel names (or their number, for positional readings); at least 2.
    half_life, scale_half_life, cov_half_life
        Half-lives in readings of the channels' location, their scale, and the covariance.
    warmup
        Readings learned before scores are non-zero.
    clip
        Huber clip of every update, in channel scales.
    ridge
        Added to the diagonal of the correlation before inverting (> 0).
    refresh
        Complete readings folded into the covariance at once, between two inversions.
    quantum_floor, rel_floor
        Channel scale floors: quanta of the channel, share of ``|location|``.
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_a",
        "_as",
        "_bc",
        "_buf",
        "_inv",
        "_n",
        "calibrator",
        "channels",
        "clip",
        "count",
        "cov",
        "cov_weight",
        "dev",
        "k",
        "loc",
        "prev",
        "quantum",
        "quantum_floor",
        "refresh",
        "rel_floor",
        "ridge",
        "warmup",
    )

    def __init__(
        self,
        channels: int | Sequence[str],
        *,
        half_life: float = 30.0,
        scale_half_life: float = 1000.0,
        cov_half_life: float = 2000.0,
        warmup: int = 200,
        clip: float = 4.0,
        ridge: float = 0.05,
        refresh: int = 32,
        quantum_floor: float = 1.0,
        rel_floor: float = 1e-3,
        calibration_half_life: float = 3000.0,
    ) -> None:
        names = (
            tuple(f"x{i}" for i in range(channels))
            if isinstance(channels, int)
            else tuple(channels)
        )
        if len(names) < 2 or len(set(names)) != len(names):
            msg = f"channels: need at least 2 distinct channels, got {names!r}"
            raise ValueError(msg)
        require_positive(
            half_life=half_life,
            scale_half_life=scale_half_life,
            cov_half_life=cov_half_life,
            clip=clip,
            ridge=ridge,
            refresh=refresh,
        )
        require_non_negative(quantum_floor=quantum_floor, rel_floor=rel_floor)
        if warmup < 2:
            msg = f"warmup: must be >= 2, got {warmup!r}"
            raise ValueError(msg)
        k = len(names)
        self.channels = names
        self.k = k
        self.warmup = int(warmup)
        self.clip = float(clip)
        self.ridge = float(ridge)
        self.refresh = int(refresh)
        self.quantum_floor = float(quantum_floor)
        self.rel_floor = float(rel_floor)
        self.calibrator = TailCalibrator(calibration_half_life)
        self._a = ew_rate(half_life)
        self._as = ew_rate(scale_half_life)
        self._bc = 1.0 - ew_rate(cov_half_life)
        self._n = 0
        self.loc = [0.0] * k
        self.dev = [0.0] * k
        self.count = [0] * k
        self.prev: list[float | None] = [None] * k
        self.quantum = [math.inf] * k
        #: weighted mean of z z' over complete readings, and its total (decayed) weight
        self.cov = np.eye(k)
        self.cov_weight = 0.0
        self._buf: list[list[float]] = []
        #: observed-channel pattern -> (indices, inverse of that block); cleared on refresh
        self._inv: dict[tuple[bool, ...], tuple[list[int], F64]] = {}

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    # -- helpers -----------------------------------------------------------------------------

    def values(self, x: Reading) -> list[float | None]:
        """The reading aligned with ``channels``: builtin floats, None where missing."""
        if isinstance(x, Mapping):
            return [clean(x.get(c)) for c in self.channels]
        if len(x) != self.k:
            msg = f"x: expected {self.k} values ({', '.join(self.channels)}), got {len(x)}"
            raise ValueError(msg)
        # builtin finite floats pass as they are (the common case), anything else is cleaned
        return [v if type(v) is float and -_INF < v < _INF else clean(v) for v in x]

    def scale(self, i: int) -> float:
        """Channel ``i``'s robust standard deviation, floored."""
        s = self.dev[i] * ABS_TO_SIGMA
        q = self.quantum[i]
        f = scale_floor(
            q * self.quantum_floor if q < math.inf else 0.0, self.rel_floor, self.loc[i]
        )
        return s if s > f else f

    def correlation(self) -> F64:
        """The learned correlation of the standardized channels (a copy)."""
        d = np.sqrt(np.maximum(np.diag(self.cov), 1e-12))
        return self.cov / np.outer(d, d)  # type: ignore[no-any-return]

    def _inverse(self, mask: tuple[bool, ...]) -> tuple[list[int], F64]:
        hit = self._inv.get(mask)
        if hit is not None:
            return hit
        idx = [i for i, m in enumerate(mask) if m]
        c = self.correlation()[np.ix_(idx, idx)]
        c[np.diag_indices_from(c)] += self.ridge
        inv: F64 = np.linalg.inv(c).astype(np.float64)
        self._inv[mask] = (idx, inv)
        return idx, inv

    def _surprise(self, vals: list[float | None], scales: list[float]) -> float | None:
        if self._n < self.warmup:
            return None
        loc = self.loc
        zs = [None if x is None else (x - loc[i]) / scales[i] for i, x in enumerate(vals)]
        mask = tuple(z is not None for z in zs)
        m = sum(mask)
        if m == 0:
            return None
        idx, inv = self._inverse(mask)
        z = np.array([zs[i] for i in idx])
        d2 = float(z @ inv @ z)
        # Wilson-Hilferty: (d2/m)^(1/3) is nearly normal for a chi-squared law with m dof
        c = 2.0 / (9.0 * m)
        zz = ((d2 / m) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
        return surprise_upper(zz)

    def _learn(self, vals: list[float | None], scales: list[float]) -> None:
        if all(x is None for x in vals):
            return
        self._n += 1
        clip = self.clip
        zrow: list[float] = []
        complete = True
        for i, x in enumerate(vals):
            if x is None:
                complete = False
                continue
            prev = self.prev[i]
            self.prev[i] = x
            if prev is not None:
                d = x - prev if x >= prev else prev - x
                if d < self.quantum[i] and d > EQUAL_REL * max(abs(x), abs(prev)):
                    self.quantum[i] = d
            c = self.count[i] + 1
            self.count[i] = c
            if c == 1:
                self.loc[i] = x
                complete = False
                continue
            # running means while a channel is young, then exponentially weighted
            inv = 1.0 / c
            a = inv if inv > self._a else self._a
            a_s = inv if inv > self._as else self._as
            sc = scales[i]
            z = (x - self.loc[i]) / sc
            zc = z if -clip <= z <= clip else (clip if z > 0.0 else -clip)
            step = (zc if c > self.warmup else z) * sc
            self.loc[i] += a * step
            self.dev[i] += a_s * ((step if step >= 0.0 else -step) - self.dev[i])
            zrow.append(zc)
        if complete:
            self._buf.append(zrow)
            if len(self._buf) >= self.refresh:
                self._fold()

    def _fold(self) -> None:
        """Fold the buffered complete readings into the covariance; invert afresh."""
        z = np.array(self._buf)
        self._buf = []
        m = len(z)
        w = self._bc ** np.arange(m - 1, -1, -1, dtype=np.float64)
        keep = self._bc**m * self.cov_weight
        total = keep + float(w.sum())
        self.cov = (keep * self.cov + (z.T * w) @ z) / total
        self.cov_weight = total
        self._inv = {}

    # -- the protocol ------------------------------------------------------------------------

    def _scales(self) -> list[float]:
        return [self.scale(i) for i in range(self.k)]

    def p_one(self, x: Reading, t: int | None = None) -> float:
        """Tail probability of the reading under the recent behaviour (1.0 in warm-up)."""
        s = self._surprise(self.values(x), self._scales())
        return 1.0 if s is None else self.calibrator.p(s)

    def score_one(self, x: Reading, t: int | None = None) -> float:
        """``1 - p_one``: in [0, 1), higher = rarer."""
        return 1.0 - self.p_one(x, t)

    def learn_one(self, x: Reading, t: int | None = None) -> None:
        """Learn the reading (missing channels are left out)."""
        vals = self.values(x)
        scales = self._scales()
        s = self._surprise(vals, scales)
        if s is not None:
            self.calibrator.learn(s)
        self._learn(vals, scales)

    def update_p(self, x: Reading, t: int | None = None) -> float:
        """``p_one`` then ``learn_one``, computed once."""
        vals = self.values(x)
        scales = self._scales()
        s = self._surprise(vals, scales)
        if s is None:
            self._learn(vals, scales)
            return 1.0
        p = self.calibrator.update(s)
        self._learn(vals, scales)
        return p

    def update(self, x: Reading, t: int | None = None) -> float:
        """Score, then learn the reading."""
        return 1.0 - self.update_p(x, t)

    def __repr__(self) -> str:
        return f"Mahalanobis({', '.join(self.channels)}; n={self._n})"

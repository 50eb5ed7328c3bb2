"""Document frequencies learned online from the ticket stream, and BM25 ticket vectors.

Which words carry a ticket's meaning is a property of the stream, not of a lexicon: "希望",
"处理", "反映" are in most tickets and say nothing; "打桩机" or a community's name are rare and
say a lot. :class:`DocFreq` counts, per hashed feature, how many tickets contained it, with
exponential forgetting (half-life ``half_life_days``): vocabulary drifts (a new estate, a
season's complaints) and the state stays a fixed-size array however long the stream runs.

The weight of a feature is BM25's inverse document frequency
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` (``N``: forgotten ticket count), and a ticket's
vector is BM25's saturated term frequency times idf, L2-normalised, so the dot product of two
vectors is their cosine similarity in [0, 1].

>>> from models.hotline.text import features
>>> df = DocFreq()
>>> for i in range(50):
...     df.add(features(f"希望尽快处理，第{i}号"), ts=0)
>>> common, rare = features("希望尽快处理"), features("打桩机")
>>> float(df.idf(common.ids).mean()) < float(df.idf(rare.ids).mean())
True
>>> v = df.vector(features("工地打桩机夜间施工"))
>>> round(float(v.dot(v)), 6)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from models.hotline.text import BITS, TextFeatures

__all__ = ["DocFreq", "SparseVector"]

_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sorted unique feature ids and their weights (L2 norm 1, or empty)."""

    ids: npt.NDArray[np.int64]
    w: npt.NDArray[np.float32]

    def dot(self, other: SparseVector) -> float:
        """Sum of products over shared ids (the cosine when both are normalised)."""
        a, b = self, other
        if len(a.ids) == 0 or len(b.ids) == 0:
            return 0.0
        if len(a.ids) < len(b.ids):
            a, b = b, a
        ids = a.ids
        pos = ids.searchsorted(b.ids)
        # past the end: any other index misses too (b's id is above every id of a)
        np.minimum(pos, len(ids) - 1, out=pos)
        hit = ids[pos] == b.ids
        return float(np.dot(a.w[pos[hit]], b.w[hit]))

    def dots(self, others: list[SparseVector]) -> list[float]:
        """:meth:`dot` with each of ``others``, in one vectorised pass (a ticket is compared
        with several candidates; a pass per pair costs more in calls than in arithmetic)."""
        ids = self.ids
        if len(others) <= 1 or len(ids) == 0:
            return [self.dot(o) for o in others]
        their = np.concatenate([o.ids for o in others])
        w = np.concatenate([o.w for o in others])
        seg = np.repeat(np.arange(len(others)), [len(o.ids) for o in others])
        pos = ids.searchsorted(their)
        np.minimum(pos, len(ids) - 1, out=pos)
        hit = ids[pos] == their
        out: list[float] = np.bincount(
            seg[hit], weights=self.w[pos[hit]] * w[hit], minlength=len(others)
        ).tolist()
        return out

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, k: int) -> SparseVector:
        """The ``k`` heaviest features, renormalised (a compact stand-in for the cosine)."""
        if len(self.ids) <= k:
            return self
        keep = np.sort(np.argpartition(-self.w, k)[:k])
        w = self.w[keep]
        s = float(np.sqrt(np.dot(w, w)))
        return SparseVector(self.ids[keep], w / s if s > 0 else w)


class DocFreq:
    """Forgetting document-frequency counts over hashed features (fixed memory)."""

    def __init__(self, half_life_days: float = 7.0, k1: float = 1.2, b: float = 0.5) -> None:
        if not half_life_days > 0:
            msg = f"half_life_days: must be > 0, got {half_life_days!r}"
            raise ValueError(msg)
        self.half_life_ms = half_life_days * _DAY_MS
        self.k1, self.b = k1, b
        # Counts in units of a growing weight: a ticket at event time ts adds
        # 2 ** ((ts - t0) / half_life); rescaled before the weights get large.
        self._df = np.zeros(1 << BITS, dtype=np.float32)
        self._n = 0.0
        self._len = 0.0  # weighted sum of document lengths (for the average)
        self._t0: int | None = None
        self._unit = 1.0

    @property
    def n(self) -> float:
        """Forgotten ticket count (tickets of the last ~1.4 half-lives weigh most)."""
        return self._n / self._unit

    @property
    def avg_len(self) -> float:
        return self._len / self._n if self._n > 0 else 1.0

    def _weight(self, ts: int) -> float:
        if self._t0 is None:
            self._t0 = ts
        w = 2.0 ** ((ts - self._t0) / self.half_life_ms)
        if w > 1e4:  # rescale: keep float32 counts well inside their precision
            self._df *= np.float32(1.0 / w)
            self._n /= w
            self._len /= w
            self._unit /= w
            self._t0 = ts
            w = 1.0
        self._unit = max(self._unit, w)  # the weight of "now" (the newest ticket)
        return float(w)

    def add(self, f: TextFeatures, ts: int) -> None:
        """Count one ticket's features (each once, whatever its count)."""
        w = self._weight(ts)
        self._df[f.ids] += np.float32(w)
        self._n += w
        self._len += w * f.n_tokens

    def df(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Forgotten document frequencies of ``ids`` (same units as :attr:`n`)."""
        return self._df[ids].astype(np.float64) / self._unit

    def idf(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        n = self.n
        d = self.df(ids)
        return np.log1p((n - d + 0.5) / (d + 0.5))

    def vector(self, f: TextFeatures, top: int | None = None) -> SparseVector:
        """The ticket's BM25 vector, L2-normalised (``top``: only its ``top`` heaviest
        features, normalised among themselves, as :meth:`SparseVector.top` would)."""
        if len(f.ids) == 0:
            return SparseVector(f.ids, np.zeros(0, np.float32))
        k1, b = self.k1, self.b
        norm = k1 * (1.0 - b + b * f.n_tokens / max(self.avg_len, 1.0))
        tf = f.counts.astype(np.float64)
        w = self.idf(f.ids) * tf * (k1 + 1.0) / (tf + norm)
        ids = f.ids
        if top is not None and len(ids) > top:
            keep = np.sort(np.argpartition(-w, top)[:top])
            ids, w = ids[keep], w[keep]
        s = math.sqrt(float(np.dot(w, w)))
        if s <= 0.0:
            return SparseVector(ids, np.zeros(len(ids), np.float32))
        return SparseVector(ids, (w / s).astype(np.float32))

    def rarity(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Share of tickets *without* each feature (1 = never seen; 0 = in every ticket)."""
        n = self.n
        if n <= 0:
            return np.ones(len(ids))
        return np.clip(1.0 - self.df(ids) / n, 0.0, 1.0)

"""Routing: which category a ticket is and which department should handle it, learned online.

:class:`Router` is a multinomial logistic regression (softmax) over hashed features, one head
per target (``category``, ``dept``), trained by stochastic gradient descent with a per-feature
AdaGrad step. Its input is the ticket's problem text (the BM25 vector of ``docfreq.py``) and its
place (``district=...`` and ``town=...`` tokens): the same problem goes to a district's own
城管局 in one district and another's in the next, so place matters as much as words.

Labels are whatever officers decide: the label set grows when a new department or category
appears in a decision (no list is needed up front; a registry's department list, when given,
is only the order new heads start in). A dispatch is one step towards its department; a
correction (a second dispatch of the same ticket to another department) is a label like any
other, with twice the weight, since someone checked.

Weights live in one matrix of ``2**bits`` rows (features hashed, folded from the text's
space) and a column per label of every head, float32: 32,768 x 40 labels is 5 MB, whatever
the stream's length.

>>> import numpy as np
>>> r = Router(bits=12)
>>> noise = SparseVector(np.array([1, 2, 3]), np.array([0.6, 0.6, 0.5], dtype=np.float32))
>>> water = SparseVector(np.array([7, 8, 9]), np.array([0.6, 0.6, 0.5], dtype=np.float32))
>>> for _ in range(20):
...     r.learn(noise, {"dept": "市公安局"})
...     r.learn(water, {"dept": "市水务集团"})
>>> [(d, round(p, 2) > 0.8) for d, p in r.predict(water, "dept")[:1]]
[('市水务集团', True)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from models.hotline.docfreq import SparseVector

__all__ = ["Router"]

_ROUTE_BITS: Final = 15
Sparse = SparseVector


class _Head:
    """One softmax: its labels and where their columns are in the router's weight matrix."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.cols: list[int] = []
        self.index: dict[str, int] = {}
        self._at: npt.NDArray[np.intp] | None = None

    @property
    def at(self) -> npt.NDArray[np.intp]:
        """``cols`` as an index array (kept until a label is added)."""
        at = getattr(self, "_at", None)
        if at is None or len(at) != len(self.cols):
            at = self._at = np.array(self.cols, dtype=np.intp)
        return at


class Router:
    """Online softmax routing heads over hashed features (see the module docstring)."""

    def __init__(
        self,
        bits: int = _ROUTE_BITS,
        learning_rate: float = 0.5,
        heads: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.learning_rate = learning_rate
        self._heads: dict[str, _Head] = {}
        # One weight matrix for every head's labels (one row gather serves all heads),
        # grown a column at a time; rows are hashed features.
        self.W = np.zeros((1 << bits, 0), dtype=np.float32)
        self.b = np.zeros(0, dtype=np.float32)
        self._g = np.full(1 << bits, 1e-3, dtype=np.float32)  # AdaGrad accumulators per row
        for name, labels in (heads or {}).items():
            for lab in labels:
                self._add(name, lab)
        self.n_learned = 0

    def labels(self, head: str) -> list[str]:
        h = self._heads.get(head)
        return list(h.labels) if h is not None else []

    def _add(self, head: str, label: str) -> int:
        """The column of ``head``'s ``label`` (added if new); returns its index in the head."""
        h = self._heads.get(head)
        if h is None:
            h = self._heads[head] = _Head()
        i = h.index.get(label)
        if i is not None:
            return i
        col = self.W.shape[1]
        self.W = np.concatenate((self.W, np.zeros((self.W.shape[0], 1), dtype=np.float32)), axis=1)
        self.b = np.append(self.b, np.float32(0.0))
        h.index[label] = len(h.labels)
        h.labels.append(label)
        h.cols.append(col)
        return h.index[label]

    def _rows(self, x: Sparse) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        # Folding may map two ids to one row: a prediction adds both (exact); a learning step
        # then updates that row once (a rare, small approximation, cheaper than merging).
        return x.ids.astype(np.int64, copy=False) & self.mask, x.w

    def _logits(
        self, rows: npt.NDArray[np.int64], vals: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        return (vals @ self.W[rows]).astype(np.float64) + self.b

    @staticmethod
    def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        e: npt.NDArray[np.float64] = np.exp(z - z.max())
        out: npt.NDArray[np.float64] = e / e.sum()
        return out

    def predict(self, x: Sparse, head: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely labels of ``head`` with their probabilities (empty: untrained)."""
        return self.predict_heads(x, (head,), k)[head]

    def predict_heads(
        self, x: Sparse, heads: tuple[str, ...], k: int = 3
    ) -> dict[str, list[tuple[str, float]]]:
        """:meth:`predict` for several heads at once (the rows are gathered once)."""
        out: dict[str, list[tuple[str, float]]] = {}
        rows, vals = self._rows(x)
        z = self._logits(rows, vals) if len(rows) and self.W.shape[1] else None
        for head in heads:
            h = self._heads.get(head)
            if h is None or not h.labels or z is None:
                out[head] = []
                continue
            p = self._softmax(z[h.at])
            ps = p.tolist()
            out[head] = [(h.labels[i], ps[i]) for i in np.argsort(-p)[:k].tolist()]
        return out

    def distribution(self, x: Sparse, head: str) -> dict[str, float]:
        """Every label's probability (for agreement between two tickets)."""
        return dict(self.predict(x, head, k=1 << 30))

    def learn(self, x: Sparse, targets: Mapping[str, str], weight: float = 1.0) -> None:
        """One step towards each head's target label (new labels are added)."""
        if len(x.ids) == 0:
            return
        ys = {head: self._add(head, label) for head, label in targets.items() if label}
        if not ys:
            return
        rows, vals = self._rows(x)
        block = self.W[rows]  # the rows this ticket touches, every column
        z = (vals @ block).astype(np.float64) + self.b
        g = np.zeros(self.W.shape[1], dtype=np.float32)  # d loss / d logits, every column
        for head, y in ys.items():
            h = self._heads[head]
            p = self._softmax(z[h.at])
            p[y] -= 1.0
            g[h.at] = p * weight
        # the gradient of row r is vals[r] * g: AdaGrad accumulates vals[r]**2 * |g|**2
        acc = self._g[rows] + vals * vals * np.float32(np.dot(g, g))
        self._g[rows] = acc
        step = (self.learning_rate / np.sqrt(acc)) * vals
        self.W[rows] = block - step[:, None] * g[None, :]
        self.b -= self.learning_rate * 0.1 * g
        self.n_learned += 1

    @staticmethod
    def entropy(dist: list[tuple[str, float]]) -> float:
        return -sum(p * math.log(p) for _, p in dist if p > 0)

"""Streaming near-duplicate clustering of hotline tickets.

Several citizens report one problem in their own words, naming the place differently, within
hours; some call again the next day. :class:`DuplicateClusterer` finds them in one pass over
the live tickets (the last ``window_ms``, two days):

1. **Candidates** (who is compared at all), the union of:
   - *place*: tickets placed within ``radius_m`` (cells of ``cell_deg``), filed at most
     ``place_window_ms`` (3 h) apart;
   - *named place*: tickets placed by the same road, community or landmark of the gazetteer
     (text-only addresses that are placed only to a road);
   - *text*: MinHash LSH over the rarer features of the problem text (``bands`` bands of
     ``rows`` hashes): the same problem told with the same rare words where one side has no
     usable place (a ticket placed well looks only among tickets that are not: its placed
     twins are found by place, and two placed tickets far apart are not duplicates);
   - *caller*: the same (hashed) caller.
   At most ``max_candidates`` of them, the most recent first.
2. **Probability** of each candidate pair: ``pairs.PairModel`` on ``pairs.pair_features``
   (text, place, time, category, caller), calibrated; a pair is a duplicate when it reaches
   the model's ``threshold``. Two tickets filed under different categories (by the
   call-taker at intake, or by the officer who dispatched one since) are not compared (two
   problems, as far as the people who heard or read them can tell).
3. **Clusters** (average linkage): a ticket joins a cluster only if its mean logit against
   the cluster's live members (the last 8) reaches the threshold, not just against one of
   them (one wrong link would chain two problems into one); it joins the cluster of its most
   probable duplicate, and a second cluster it matches merges in only when the mean reaches
   ``merge_threshold`` (0.8). Merges are a union by earliest canonical, live members
   relabelled small-to-large. The **canonical** ticket is the cluster's earliest.

Memory is bounded: a ticket leaves the index ``window_ms`` after it was filed (event time);
a cluster is closed (reported in ``closed``) once its last live ticket left; at most
``max_live`` tickets are held whatever the rate. The clusterer takes :class:`TicketFeatures`
already computed (text vector, place, predicted category): ``model.HotlineModel`` builds them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from citywatch.geo import haversine_m
from models.hotline.docfreq import SparseVector
from models.hotline.pairs import MEASURED, PairModel
from models.hotline.validate import require

__all__ = [
    "ClusterInfo",
    "DedupConfig",
    "DedupResult",
    "DuplicateClusterer",
    "TicketFeatures",
    "band_keys",
    "dispatched",
    "measure",
    "pair_features",
]

_M_PER_DEG: Final = 111_320.0
_LOG_WINDOW: Final = math.log1p(2 * 24 * 60)  # two days, in minutes
# MinHash: h_k(x) = high 32 bits of (a_k x + b_k) mod 2**64 (multiply-shift, a_k odd),
# fixed constants (the same in every process)
_RNG: Final = np.random.Generator(np.random.PCG64(20261202))
_A: Final = _RNG.integers(1, 1 << 62, 64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B: Final = _RNG.integers(0, 1 << 62, 64, dtype=np.uint64)
_SHIFT32: Final = np.uint64(32)


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """Hyperparameters of :class:`DuplicateClusterer` (validated on construction)."""

    window_ms: int = 2 * 86_400_000
    place_window_ms: int = 3 * 3_600_000
    radius_m: float = 1000.0
    cell_deg: float = 0.005
    #: Placements less exact than this are not indexed by cell (towns, districts).
    max_precision_m: float = 2000.0
    bands: int = 12
    rows: int = 2
    #: A feature in at most this share of tickets takes part in MinHash.
    rare_share: float = 0.02
    max_candidates: int = 32
    #: At most this many tickets from one LSH band (the newest).
    band_bucket: int = 8
    #: A ticket that also belongs to a second cluster merges the two only at this duplicate
    #: probability (average over that cluster's members); joining one needs the pair model's
    #: threshold.
    merge_threshold: float = 0.8
    max_members: int = 50
    max_live: int = 100_000

    def __post_init__(self) -> None:
        checks = (
            ("window_ms", self.window_ms > 0),
            ("place_window_ms", 0 < self.place_window_ms <= self.window_ms),
            ("radius_m", self.radius_m > 0),
            ("cell_deg", 0 < self.cell_deg < 1),
            ("max_precision_m", self.max_precision_m > 0),
            ("bands", self.bands >= 0),
            ("rows", self.rows >= 1 and self.bands * self.rows <= len(_A)),
            ("rare_share", 0.0 < self.rare_share <= 1.0),
            ("max_candidates", self.max_candidates >= 1),
            ("band_bucket", self.band_bucket >= 1),
            ("merge_threshold", 0.0 < self.merge_threshold < 1.0),
            ("max_members", self.max_members >= 1),
            ("max_live", self.max_live >= 1),
        )
        require(self, checks)


@dataclass(slots=True)
class TicketFeatures:
    """What the clusterer keeps of a live ticket (its text only as a BM25 vector)."""

    id: str
    ts: int
    vec: SparseVector
    lat: float | None = None
    lon: float | None = None
    #: how far off (lat, lon) may be: 0 for coordinates sent with the ticket
    precision_m: float = math.inf
    #: gazetteer place key: a community/landmark/site id, "corner:<road>|<road>", "road:<id>"
    place_key: str | None = None
    caller: str | None = None
    #: category given at intake, or confirmed by an officer since ("" = none)
    category: str = ""
    #: predicted category and department distributions (top few), for agreement; once an
    #: officer dispatched the ticket, ``dept_dist`` is mostly that department (:func:`dispatched`)
    cat_dist: dict[str, float] = field(default_factory=dict)
    dept_dist: dict[str, float] = field(default_factory=dict)
    band_keys: tuple[int, ...] = ()
    grid: str | None = None
    district: str | None = None
    #: ids this ticket was matched to at intake (for an officer's split to learn from)
    matched: tuple[str, ...] = ()
    #: the best candidate below the threshold (a split with no match learns from it)
    runner_up: str | None = None

    @property
    def point(self) -> tuple[float, float] | None:
        """(lat, lon) when placed well enough to compare distances (within 2 km), else None."""
        if self.lat is None or self.lon is None or self.precision_m > 2000.0:
            return None
        return self.lat, self.lon

    @property
    def well_placed(self) -> bool:
        return self.point is not None

    @property
    def effective_category(self) -> str:
        if self.category:
            return self.category
        if self.cat_dist:
            c, p = max(self.cat_dist.items(), key=lambda kv: kv[1])
            if p >= 0.5:
                return c
        return ""


#: An index key: a cell (an integer, cheap to hash: a ticket looks up dozens of cells) or
#: ``(kind, value)``: "p" named place, "b"/"B" LSH band (among all / among the unplaced),
#: "u" caller.
_IndexKey = int | tuple[str, object]


def _cell_key(row: int, col: int) -> int:
    return (row << 24) | (col & 0xFFFFFF)


def band_keys(ids: npt.NDArray[np.int64], bands: int, rows: int) -> tuple[int, ...]:
    """MinHash LSH keys of a feature set: one key per band of ``rows`` minimum hashes.

    >>> import numpy as np
    >>> a = band_keys(np.arange(100), 8, 2)
    >>> b = band_keys(np.arange(5, 100), 8, 2)
    >>> len(a), len(set(a) & set(b)) > 0
    (8, True)
    """
    if len(ids) == 0 or bands == 0:
        return ()
    k = bands * rows
    x = ids.astype(np.uint64)[:, None]
    # (unsigned integer arrays wrap silently: no np.errstate needed)
    mins = ((x * _A[None, :k] + _B[None, :k]) >> _SHIFT32).min(axis=0).tolist()
    out = []
    for i in range(bands):
        h = i
        for j in range(rows):
            h = (h << 32) | mins[i * rows + j]
        out.append(h)
    return tuple(out)


def measure(a: TicketFeatures, b: TicketFeatures, text: float | None = None) -> list[float]:
    """The measured pair features in ``pairs.MEASURED`` order; ``text`` None computes the
    cosine, a number stands in for it (1.0: its upper bound, to skip hopeless pairs cheaply)."""
    if text is None:
        text = max(0.0, min(1.0, a.vec.dot(b.vec)))
    pa, pb = a.point, b.point
    if pa is not None and pb is not None:
        # flat-earth distance: exact to 0.1% below 10 km, a third of haversine's cost
        dy = (pa[0] - pb[0]) * _M_PER_DEG
        dx = (pa[1] - pb[1]) * _M_PER_DEG * math.cos(math.radians(pa[0]))
        # a road-level placement may be anywhere along the road: discount half its precision
        slack = 0.5 * (a.precision_m if a.precision_m > b.precision_m else b.precision_m)
        d = max(0.0, math.sqrt(dx * dx + dy * dy) - slack)
        near = max(0.0, 1.0 - d / 1000.0)
        unplaced = 0.0 if slack <= 500.0 else 0.5
        far = 1.0 if d > 1500.0 else 0.0
    else:
        near, unplaced, far = 0.0, 1.0, 0.0
    same_place = 0.0
    if a.place_key is not None and a.place_key == b.place_key:
        same_place = 0.5 if a.place_key.startswith("road:") else 1.0
    gap_min = abs(a.ts - b.ts) / 60_000.0
    recent = max(0.0, 1.0 - math.log1p(gap_min) / _LOG_WINDOW)
    caller = 1.0 if a.caller and a.caller == b.caller else 0.0
    conflict = 1.0 if a.category and b.category and a.category != b.category else 0.0
    return [
        text,
        near,
        unplaced,
        same_place,
        recent,
        _agreement(a, b),
        _overlap(a.dept_dist, b.dept_dist),
        caller,
        far,
        conflict,
    ]


def pair_features(a: TicketFeatures, b: TicketFeatures) -> dict[str, float]:
    """The features of ``pairs.PairModel`` for tickets ``a`` and ``b`` (each in [0, 1])."""
    return dict(zip(MEASURED, measure(a, b), strict=True))


def _overlap(da: dict[str, float], db: dict[str, float]) -> float:
    """P(same label) under two predicted distributions; 0.5 when either knows nothing."""
    if not da or not db:
        return 0.5
    s = 0.0
    get = db.get
    for c, p in da.items():
        s += p * get(c, 0.0)
    return min(1.0, s)


#: How far an officer's first dispatch is trusted (about one in twelve is corrected later).
DISPATCH_TRUST: Final = 0.9


def dispatched(dist: dict[str, float], dept: str) -> dict[str, float]:
    """A department distribution once an officer dispatched the ticket to ``dept``: mostly
    that department (about one first dispatch in twelve is corrected later).

    >>> dispatched({"A": 0.8, "B": 0.2}, "B")
    {'A': 0.08, 'B': 0.92}
    """
    out = {d: round((1.0 - DISPATCH_TRUST) * p, 6) for d, p in dist.items()}
    out[dept] = round(out.get(dept, 0.0) + DISPATCH_TRUST, 6)
    return out


def _agreement(a: TicketFeatures, b: TicketFeatures) -> float:
    if a.category and b.category:
        return 1.0 if a.category == b.category else 0.0
    da = {a.category: 1.0} if a.category else a.cat_dist
    db = {b.category: 1.0} if b.category else b.cat_dist
    return _overlap(da, db)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """A cluster as reported: canonical ticket, where and when, size and (capped) members."""

    canonical: str
    size: int
    members: tuple[str, ...]
    first_ts: int
    last_ts: int
    lat: float | None
    lon: float | None
    grid: str | None
    category: str


@dataclass(frozen=True, slots=True)
class DedupResult:
    """The verdict on one ticket.

    ``duplicate_of`` is the most probable earlier duplicate (None: the ticket is new);
    ``matches`` every live ticket it matched; ``probability`` the best match's duplicate
    probability (``similarity`` is the same number, the older name); ``cluster`` the
    ticket's cluster after the update; ``merged`` the canonical ids of clusters this ticket
    merged into it; ``closed`` clusters that expired on the way; ``candidates`` how many
    tickets it was compared with.
    """

    ticket: str
    duplicate_of: str | None
    matches: tuple[str, ...]
    probability: float
    cluster: ClusterInfo
    merged: tuple[str, ...] = ()
    closed: tuple[ClusterInfo, ...] = ()
    distance_m: float | None = None
    candidates: int = 0

    @property
    def similarity(self) -> float:
        return self.probability

    @property
    def canonical(self) -> str:
        return self.cluster.canonical

    @property
    def size(self) -> int:
        return self.cluster.size

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


@dataclass(slots=True)
class _Cluster:
    head: TicketFeatures  # the canonical (earliest) ticket
    last_ts: int
    size: int = 1
    members: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)

    @property
    def canonical(self) -> str:
        return self.head.id

    @property
    def first_ts(self) -> int:
        return self.head.ts

    def info(self) -> ClusterInfo:
        h = self.head
        return ClusterInfo(
            canonical=h.id,
            size=self.size,
            members=tuple(self.members),
            first_ts=h.ts,
            last_ts=self.last_ts,
            lat=h.lat,
            lon=h.lon,
            grid=h.grid,
            category=h.effective_category,
        )


class DuplicateClusterer:
    """Online near-duplicate clustering: candidates, calibrated pair probability, clusters.

    State: the live tickets and their index entries (cells, named places, LSH bands,
    callers), an arrival-ordered queue for expiry, ticket -> cluster and the clusters with
    live members. All plain containers: pickles and deep-copies.
    """

    def __init__(self, config: DedupConfig | None = None, pairs: PairModel | None = None) -> None:
        self.config = config or DedupConfig()
        self.pairs = pairs or PairModel()
        cell_m = self.config.cell_deg * _M_PER_DEG * math.cos(math.radians(32.0))
        self._cell_m = cell_m
        self._live: dict[str, TicketFeatures] = {}
        # key -> live tickets by id (a dict: ordered, O(1) removal)
        self._index: dict[_IndexKey, dict[str, TicketFeatures]] = {}
        self._queue: deque[str] = deque()
        self._cluster_of: dict[str, str] = {}
        self._clusters: dict[str, _Cluster] = {}
        self.watermark_ms = 0

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        # state pickled before index buckets held the tickets themselves (id -> None) and
        # cells were keyed ("c", (row, col))
        index: dict[_IndexKey, dict[str, TicketFeatures]] = {}
        for key, bucket in self._index.items():
            if isinstance(key, tuple) and key[0] == "c":
                key = _cell_key(*key[1])  # type: ignore[misc]
            index[key] = {t: self._live[t] if x is None else x for t, x in bucket.items()}
        self._index = index

    def __len__(self) -> int:
        """The number of live tickets."""
        return len(self._queue)

    @property
    def n_clusters(self) -> int:
        return len(self._clusters)

    def get(self, ticket_id: str) -> TicketFeatures | None:
        return self._live.get(ticket_id)

    def cluster(self, ticket_id: str) -> ClusterInfo | None:
        """The cluster of a live ticket, or None once it expired."""
        c = self._cluster_of.get(ticket_id)
        return self._clusters[c].info() if c is not None else None

    def members(self, ticket_id: str) -> list[TicketFeatures]:
        """The live tickets of ``ticket_id``'s cluster."""
        c = self._cluster_of.get(ticket_id)
        if c is None:
            return []
        return [self._live[t] for t in self._clusters[c].live if t in self._live]

    # -- candidates ------------------------------------------------------------------------

    def _cell(self, f: TicketFeatures) -> tuple[int, int] | None:
        p = f.point
        if p is None or f.precision_m > self.config.max_precision_m:
            return None
        return int(p[0] // self.config.cell_deg), int(p[1] // self.config.cell_deg)

    def _keys(self, f: TicketFeatures) -> Iterator[_IndexKey]:
        cell = self._cell(f)
        if cell is not None:
            yield _cell_key(*cell)
        if f.place_key is not None:
            yield ("p", f.place_key)
        for k in f.band_keys:
            yield ("b", k)
        if not f.well_placed:
            for k in f.band_keys:
                yield ("B", k)
        if f.caller:
            yield ("u", f.caller)

    def _lookups(self, f: TicketFeatures) -> Iterator[tuple[str, object]]:
        """The index keys ``f`` looks up besides its cells: its named place, its caller, and
        its LSH bands among every ticket if ``f`` has no usable place, else only among the
        tickets without one (a placed twin is found by its place: two placed tickets far
        apart are not duplicates, whatever their words)."""
        if f.place_key is not None:
            yield ("p", f.place_key)
        band = "B" if f.well_placed else "b"
        for k in f.band_keys:
            yield (band, k)
        if f.caller:
            yield ("u", f.caller)

    def candidates(self, f: TicketFeatures) -> list[TicketFeatures]:
        """Live tickets worth comparing with ``f``, most recent first, capped (tickets filed
        under another category than ``f``'s are not compared, so not fetched).

        Index buckets are in arrival order, so each is read from its newest end and left as
        soon as it is older than its window (or has given ``max_candidates``).
        """
        cfg = self.config
        cap = cfg.max_candidates
        idx = self._index
        found: dict[str, TicketFeatures] = {}
        category = f.category

        me = f.id

        def take(bucket: dict[str, TicketFeatures], oldest: int, most: int) -> None:
            n = 0
            for t, x in reversed(bucket.items()):  # every ticket in a bucket is live
                if t == me:
                    continue
                if x.ts < oldest:
                    break
                if category and x.category and x.category != category:
                    continue  # filed as another problem: never compared
                found[t] = x
                n += 1
                if n >= most:
                    break

        cell = self._cell(f)
        if cell is not None:
            r0, c0 = cell
            reach_m = cfg.radius_m + 0.5 * min(f.precision_m, cfg.max_precision_m)
            kc = max(1, math.ceil(reach_m / self._cell_m))  # cells are narrower than tall
            kr = max(1, math.ceil(reach_m / (cfg.cell_deg * _M_PER_DEG)))
            oldest = f.ts - cfg.place_window_ms
            for r in range(r0 - kr, r0 + kr + 1):
                for c in range(c0 - kc, c0 + kc + 1):
                    bucket = idx.get(_cell_key(r, c))
                    if bucket:
                        take(bucket, oldest, cap)
        oldest = f.ts - cfg.window_ms
        for key in self._lookups(f):
            bucket = idx.get(key)
            if bucket:
                if key[0] == "p" and str(key[1]).startswith("road:"):
                    # a road is a place as wide as its length: like cells, a few hours back
                    take(bucket, f.ts - cfg.place_window_ms, cap)
                else:
                    # an LSH band shared by many is a common phrase: its newest few suffice
                    take(bucket, oldest, cap if key[0] in "pu" else cfg.band_bucket)
        out = sorted(found.values(), key=lambda x: -x.ts)
        return out[:cap]

    def _hopeful(self, f: TicketFeatures, cands: list[TicketFeatures]) -> list[TicketFeatures]:
        """The candidates that could reach the threshold with the best words, category and
        department (vectorised upper bound over place, time and caller: most are far)."""
        if len(cands) <= 8:  # the caller's own bound is as cheap for a few
            return cands
        pm = self.pairs
        w = pm.w
        key = f.place_key
        caller_f = f.caller
        rows = []
        for c in cands:
            p = c.point
            pk = c.place_key
            rows.append(
                (
                    p[0] if p is not None else 0.0,
                    p[1] if p is not None else 0.0,
                    c.precision_m,
                    c.ts,
                    (
                        (0.5 if pk.startswith("road:") else 1.0)
                        if pk is not None and pk == key
                        else 0.0
                    ),
                    1.0 if caller_f and c.caller == caller_f else 0.0,
                    1.0 if p is not None else 0.0,
                )
            )
        lat, lon, prec, ts, same_place, caller, placed = np.array(rows, dtype=np.float64).T
        here = f.point
        if here is not None:
            # (plain ufuncs: np.where and np.nan_to_num cost more than the arithmetic here)
            dy = (lat - here[0]) * _M_PER_DEG
            dx = (lon - here[1]) * _M_PER_DEG * math.cos(math.radians(here[0]))
            slack = 0.5 * np.maximum(prec, f.precision_m)
            d = np.maximum(0.0, np.sqrt(dx * dx + dy * dy) - slack)
            near = np.maximum(0.0, 1.0 - d / 1000.0) * placed
            unplaced = (1.0 - placed) + placed * (0.5 * (slack > 500.0))
            far = placed * (d > 1500.0)
        else:
            near = np.zeros(len(cands))
            unplaced = np.ones(len(cands))
            far = np.zeros(len(cands))
        recent = np.maximum(0.0, 1.0 - np.log1p(np.abs(ts - f.ts) / 60_000.0) / _LOG_WINDOW)
        place = np.maximum(np.maximum(near, same_place), 0.5 * unplaced)
        # text = category = dept = 1: their upper bounds (all their weights are >= 0)
        z = (
            pm.bias
            + w[0]
            + w[1] * near
            + w[2] * unplaced
            + w[3] * same_place
            + w[4] * recent
            + w[5]
            + w[6]
            + w[7] * caller
            + w[8] * far  # no conflict term: candidates never conflict (``candidates``)
            + place * (w[10] + w[11] + w[12] * recent)
        )
        keep = np.flatnonzero(z >= pm.threshold_logit)
        return [cands[i] for i in keep.tolist()]

    # -- the update ------------------------------------------------------------------------

    def update(self, f: TicketFeatures) -> DedupResult:
        """Cluster one ticket; expires what fell out of the window by its ``ts`` first."""
        closed = self.expire(f.ts)
        if f.id in self._cluster_of:  # a re-delivered ticket: report, change nothing
            info = self._clusters[self._cluster_of[f.id]].info()
            return DedupResult(f.id, None, (), 0.0, info, closed=tuple(closed))
        pairs = self.pairs
        thr = pairs.threshold_logit
        best: TicketFeatures | None = None
        best_p = 0.0
        runner: tuple[float, str] | None = None
        matches: list[TicketFeatures] = []
        cands = self.candidates(f)
        hopeful = self._hopeful(f, cands)
        bounded = hopeful is not cands  # the vectorised bound already dropped the hopeless
        logits: dict[str, float] = {}
        todo: list[tuple[TicketFeatures, list[float]]] = []
        for cand in hopeful:
            if abs(f.ts - cand.ts) > self.config.window_ms:
                continue
            if f.category and cand.category and f.category != cand.category:
                continue  # filed as two different problems
            v = measure(f, cand, 1.0)
            if not bounded and pairs.logit_measured(v) < thr:
                continue  # not a duplicate even with the same words: skip the cosine
            todo.append((cand, v))
        cosines = f.vec.dots([cand.vec for cand, _ in todo])
        for (cand, v), cos in zip(todo, cosines, strict=True):
            v[0] = max(0.0, min(1.0, cos))
            z = logits[cand.id] = pairs.logit_measured(v)
            p = 1.0 / (1.0 + math.exp(-z))
            if z >= thr:
                matches.append(cand)
                if p > best_p:
                    best, best_p = cand, p
            elif runner is None or p > runner[0]:
                runner = (p, cand.id)
        # Average linkage: a cluster is joined only if the ticket is a duplicate of its live
        # members on average, not of one of them (one wrong link would chain two problems).
        scores = self._cluster_scores(f, matches, thr, logits)
        joined = [c for c, z in scores.items() if z >= thr]
        matches = [m for m in matches if self._cluster_of[m.id] in joined]
        if best is not None and self._cluster_of[best.id] not in joined:
            best = max(matches, key=lambda m: self._p(f, m)) if matches else None
            best_p = self._p(f, best) if best is not None else 0.0
        f.matched = tuple(m.id for m in matches)
        f.runner_up = runner[1] if runner is not None else None
        self._insert(f)
        while len(self._queue) > self.config.max_live:  # a flood: shed the oldest
            shed = self._evict(self._queue.popleft())
            if shed is not None:
                closed.append(shed)
        merged: list[str] = []
        # the ticket joins its best cluster; others merge in only if it belongs to them too
        # by the stricter merge threshold
        merge_z = self.pairs.logit_of(self.config.merge_threshold)
        if joined:
            first = self._cluster_of[best.id] if best is not None else joined[0]
            roots = [first, *(c for c in joined if c != first and scores[c] >= merge_z)]
            for other in sorted(roots, key=lambda c: (self._clusters[c].first_ts, c)):
                absorbed = self._union(self._cluster_of[f.id], other)
                if absorbed is not None and absorbed != f.id:
                    merged.append(absorbed)
        cluster = self._clusters[self._cluster_of[f.id]]
        dist = None
        pa, pb = f.point, (best.point if best is not None else None)
        if pa is not None and pb is not None:
            dist = haversine_m(pa[0], pa[1], pb[0], pb[1])
        return DedupResult(
            ticket=f.id,
            duplicate_of=best.id if best is not None else None,
            matches=tuple(m.id for m in matches),
            probability=best_p if best is not None else (runner[0] if runner else 0.0),
            cluster=cluster.info(),
            merged=tuple(merged),
            closed=tuple(closed),
            distance_m=dist,
            candidates=len(cands),
        )

    def _p(self, a: TicketFeatures, b: TicketFeatures) -> float:
        return self.pairs.probability_measured(measure(a, b))

    def _cluster_scores(
        self,
        f: TicketFeatures,
        matches: list[TicketFeatures],
        thr: float,
        known: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Mean logit of ``f`` against the live members (at most 8) of each matched cluster
        (``known``: logits already computed, by ticket id)."""
        known = known or {}
        out: dict[str, float] = {}
        for root in {self._cluster_of[m.id] for m in matches}:
            live = self._clusters[root].live[-8:]
            zs = [
                known[t] if t in known else self.pairs.logit_measured(measure(f, self._live[t]))
                for t in live
                if t in self._live
            ]
            out[root] = sum(zs) / len(zs) if zs else thr - 1.0
        return out

    def _insert(self, f: TicketFeatures) -> None:
        self._live[f.id] = f
        index = self._index
        for key in self._keys(f):
            bucket = index.get(key)
            if bucket is None:
                index[key] = {f.id: f}
            else:
                bucket[f.id] = f
        self._queue.append(f.id)
        self._cluster_of[f.id] = f.id
        self._clusters[f.id] = _Cluster(head=f, last_ts=f.ts, members=[f.id], live=[f.id])

    def _union(self, a: str, b: str) -> str | None:
        """Merge the clusters of canonical ids ``a`` and ``b``; returns the absorbed canonical."""
        ca, cb = self._clusters[a], self._clusters[b]
        if ca is cb:
            return None
        keep, gone = (
            (ca, cb) if (ca.first_ts, ca.canonical) <= (cb.first_ts, cb.canonical) else (cb, ca)
        )
        for tid in gone.live:
            self._cluster_of[tid] = keep.canonical
        keep.live.extend(gone.live)
        keep.size += gone.size
        room = self.config.max_members - len(keep.members)
        if room > 0:
            keep.members.extend(gone.members[:room])
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        del self._clusters[gone.canonical]
        return gone.canonical

    # -- expiry ----------------------------------------------------------------------------

    def expire(self, watermark_ms: int) -> list[ClusterInfo]:
        """Drop tickets filed more than ``window_ms`` before ``watermark_ms``.

        Returns the clusters that lost their last live ticket (closed for good).
        """
        if watermark_ms > self.watermark_ms:
            self.watermark_ms = watermark_ms
        horizon = self.watermark_ms - self.config.window_ms
        closed: list[ClusterInfo] = []
        q, live = self._queue, self._live
        while q and live[q[0]].ts < horizon:
            info = self._evict(q.popleft())
            if info is not None:
                closed.append(info)
        return closed

    def _evict(self, tid: str) -> ClusterInfo | None:
        f = self._live.pop(tid)
        for key in self._keys(f):
            bucket = self._index.get(key)
            if bucket is not None:
                bucket.pop(tid, None)
                if not bucket:
                    del self._index[key]
        cid = self._cluster_of.pop(tid)
        c = self._clusters[cid]
        c.live.remove(tid)
        if c.live:
            return None
        del self._clusters[cid]
        return c.info()

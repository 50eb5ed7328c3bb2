"""Streaming near-duplicate clustering of hotline tickets.

Several citizens report one incident (a smell, a noisy site) in their own words, from a
slightly different spot, within hours. :class:`DuplicateClusterer` finds them in one pass:

1. **Blocking** by place and time: a ticket is compared only with the live tickets of its own
   city-grid cell and the neighbouring cells (``citywatch.geo.grid_cell``, ~1.2 km), filed at
   most ``window_ms`` earlier, and at most ``radius_m`` away. Blocking does most of the work:
   "same problem, different place" never meets.
2. **Similarity** inside the block (:func:`similarity`): the Dice coefficient of character
   bigrams (``ngram.py``), blended with the overlap of topic cues (``cues.py``) and
   penalised when the categories differ or the topics are disjoint: "same place, different
   problem" shares the address's characters but not its cues.
3. **Clusters**: a ticket that matches (similarity >= ``threshold``) joins the cluster of its
   best match; if it matches tickets of several clusters they merge (union by earliest
   canonical, live members relabelled small-to-large). The **canonical** ticket of a cluster
   is its earliest ticket, so it is stable as the cluster grows.

Each ticket is either new (``duplicate_of is None``) or ``duplicate_of`` its best match.
Memory is bounded: a ticket leaves the index ``window_ms`` after it was filed (event time),
and a cluster is closed (reported in ``closed``) once its last live ticket left; at most
``max_live`` tickets are held whatever the rate.

>>> from citywatch.events import Hotline
>>> t0 = 1_762_012_800_000
>>> dc = DuplicateClusterer()
>>> r1 = dc.update(Hotline(ts=t0, ticket="T1", text="幸福路12号工地夜间施工噪音扰民",
...                        category="noise", lat=32.01, lon=120.86))
>>> r2 = dc.update(Hotline(ts=t0 + 600_000, ticket="T2",
...                        text="幸福路12号的工地晚上一直施工，噪音很大",
...                        category="noise", lat=32.0103, lon=120.8602))
>>> r3 = dc.update(Hotline(ts=t0 + 900_000, ticket="T3", text="幸福路12号门口垃圾堆放没人清理",
...                        category="garbage", lat=32.0101, lon=120.8601))
>>> r1.duplicate_of, r2.duplicate_of, r2.canonical, r2.size, r3.duplicate_of
(None, 'T1', 'T1', 2, None)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from citywatch.events import Hotline
from citywatch.geo import GRID_DEG, grid_cell, haversine_m
from models.hotline.cues import DOMAIN_CUES, TOPIC_CUES, extract_cues
from models.hotline.ngram import dice, shingles
from models.hotline.validate import require

__all__ = [
    "ClusterInfo",
    "DedupConfig",
    "DedupResult",
    "DuplicateClusterer",
    "TicketFeatures",
    "similarity",
]

Cell = tuple[int, int] | str

_M_PER_DEG: Final = 111_320.0


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """Hyperparameters of :class:`DuplicateClusterer` (validated on construction).

    ``threshold`` applies to :func:`similarity`; ``cue_weight`` is the share of the topic-cue
    Jaccard in it; ``category_penalty`` and ``disjoint_penalty`` multiply it when the
    categories differ or the topic cues are disjoint; ``max_members`` caps the member ids a
    cluster reports (its ``size`` still counts all).
    """

    window_ms: int = 3 * 3_600_000
    radius_m: float = 600.0
    n: int = 2
    threshold: float = 0.3
    cue_weight: float = 0.35
    category_bonus: float = 0.1
    category_penalty: float = 0.5
    disjoint_penalty: float = 0.5
    distance_weight: float = 0.3
    same_caller_bonus: float = 0.2
    max_members: int = 50
    max_live: int = 100_000

    def __post_init__(self) -> None:
        checks = (
            ("window_ms", self.window_ms > 0),
            ("radius_m", self.radius_m > 0),
            ("n", self.n >= 1),
            ("threshold", 0.0 < self.threshold <= 1.0),
            ("cue_weight", 0.0 <= self.cue_weight <= 1.0),
            ("category_bonus", 0.0 <= self.category_bonus <= 1.0),
            ("category_penalty", 0.0 <= self.category_penalty <= 1.0),
            ("distance_weight", 0.0 <= self.distance_weight <= 1.0),
            ("disjoint_penalty", 0.0 <= self.disjoint_penalty <= 1.0),
            ("same_caller_bonus", 0.0 <= self.same_caller_bonus <= 1.0),
            ("max_members", self.max_members >= 1),
            ("max_live", self.max_live >= 1),
        )
        require(self, checks)


@dataclass(slots=True)
class TicketFeatures:
    """What the clusterer keeps of a live ticket (its text only as n-grams and cues)."""

    id: str
    ts: int
    lat: float | None
    lon: float | None
    cell: Cell
    category: str
    grams: frozenset[str]
    topics: frozenset[str]
    caller: str | None = None
    grid: str | None = None

    @classmethod
    def of(cls, t: Hotline, n: int = 2) -> TicketFeatures:
        lat, lon = t.lat, t.lon
        cell: Cell
        if lat is not None and lon is not None:
            cell = grid_cell(lat, lon)
        else:
            parsed = _parse_grid(t.grid)
            if parsed is not None:
                cell = parsed
                lat = 31.6 + (parsed[0] + 0.5) * GRID_DEG
                lon = 120.2 + (parsed[1] + 0.5) * GRID_DEG
            else:
                cell = f"nowhere/{t.category}"
        topics = extract_cues(t.text) & TOPIC_CUES
        return cls(
            id=t.ticket,
            ts=t.ts,
            lat=lat,
            lon=lon,
            cell=cell,
            category=t.category,
            grams=shingles(t.text, n),
            topics=topics,
            caller=t.caller,
            grid=t.grid,
        )


def _parse_grid(grid: str | None) -> tuple[int, int] | None:
    """``"G0034-0059"`` -> (34, 59); anything else -> None."""
    if not grid or grid[0] != "G" or "-" not in grid:
        return None
    row, _, col = grid[1:].partition("-")
    if not (row.isdigit() and col.isdigit()):
        return None
    return int(row), int(col)


def similarity(
    a: TicketFeatures, b: TicketFeatures, cfg: DedupConfig, distance_m: float | None = None
) -> float:
    """How likely ``a`` and ``b`` report the same problem, in [0, 1] (blocking checked apart).

    ``s = (1 - w) * dice(bigrams) + w * jaccard(problem cues)`` (``w = cue_weight``; domain
    cues such as 施工 stand in when a side names no problem; the text part alone when a side
    has no topic cue); times ``disjoint_penalty`` when both have cues and share none; plus
    ``category_bonus`` when both have the same category, times ``category_penalty`` when they
    differ; times ``1 - distance_weight * d / radius_m`` for tickets ``d`` metres apart; plus
    ``same_caller_bonus`` for one caller calling again.
    Clipped to [0, 1].
    """
    s = dice(a.grams, b.grams)
    pa, pb = a.topics - DOMAIN_CUES, b.topics - DOMAIN_CUES
    if not (pa and pb):  # no problem named on one side: compare domains (施工, 垃圾 ...)
        pa, pb = a.topics, b.topics
    if pa and pb:
        common = len(pa & pb)
        jac = common / len(pa | pb)
        s = (1.0 - cfg.cue_weight) * s + cfg.cue_weight * jac
        if common == 0:
            s *= cfg.disjoint_penalty
    if a.category and b.category:
        if a.category == b.category:
            s += cfg.category_bonus
        else:
            s *= cfg.category_penalty
    if distance_m is not None:
        s *= 1.0 - cfg.distance_weight * min(1.0, distance_m / cfg.radius_m)
    if a.caller and a.caller == b.caller:
        s += cfg.same_caller_bonus
    return min(1.0, s)


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

    ``duplicate_of`` is the best-matching earlier ticket (None: the ticket is new);
    ``matches`` every live ticket it matched; ``similarity`` the best match's score;
    ``cluster`` the ticket's cluster after the update; ``merged`` the canonical ids of
    clusters this ticket merged into it; ``closed`` clusters that expired on the way.
    """

    ticket: str
    duplicate_of: str | None
    matches: tuple[str, ...]
    similarity: float
    cluster: ClusterInfo
    merged: tuple[str, ...] = ()
    closed: tuple[ClusterInfo, ...] = ()
    distance_m: float | None = None

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
            category=h.category,
        )


class DuplicateClusterer:
    """Online near-duplicate clustering with blocking, n-gram similarity and a canonical ticket.

    State: the live tickets by cell, an arrival-ordered queue for expiry, ticket -> cluster
    and the clusters with live members. All plain containers: pickles and deep-copies.
    """

    def __init__(self, config: DedupConfig | None = None) -> None:
        self.config = config or DedupConfig()
        cell_m = GRID_DEG * _M_PER_DEG * math.cos(math.radians(32.7))
        #: How many cells around the ticket's own cell can hold a ticket within radius_m.
        self._reach = max(1, math.ceil(self.config.radius_m / cell_m))
        self._cells: dict[Cell, list[TicketFeatures]] = {}
        self._queue: deque[TicketFeatures] = deque()
        self._cluster_of: dict[str, str] = {}
        self._clusters: dict[str, _Cluster] = {}
        self.watermark_ms = 0

    def __len__(self) -> int:
        """The number of live tickets."""
        return len(self._queue)

    @property
    def n_clusters(self) -> int:
        return len(self._clusters)

    def cluster(self, ticket_id: str) -> ClusterInfo | None:
        """The cluster of a live ticket, or None once it expired."""
        c = self._cluster_of.get(ticket_id)
        return self._clusters[c].info() if c is not None else None

    # -- candidates ------------------------------------------------------------------------

    def _candidates(self, f: TicketFeatures) -> list[TicketFeatures]:
        if isinstance(f.cell, str):
            return list(self._cells.get(f.cell, ()))
        r0, c0 = f.cell
        k = self._reach
        out: list[TicketFeatures] = []
        for r in range(r0 - k, r0 + k + 1):
            for c in range(c0 - k, c0 + k + 1):
                bucket = self._cells.get((r, c))
                if bucket:
                    out.extend(bucket)
        return out

    def _distance(self, a: TicketFeatures, b: TicketFeatures) -> float | None:
        if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
            return None
        return haversine_m(a.lat, a.lon, b.lat, b.lon)

    # -- the update ------------------------------------------------------------------------

    def update(self, ticket: Hotline) -> DedupResult:
        """Cluster one ticket; expires what fell out of the window by its ``ts`` first."""
        cfg = self.config
        closed = self.expire(ticket.ts)
        if ticket.ticket in self._cluster_of:  # a re-delivered ticket: report, change nothing
            info = self._clusters[self._cluster_of[ticket.ticket]].info()
            return DedupResult(ticket.ticket, None, (), 0.0, info, closed=tuple(closed))
        f = TicketFeatures.of(ticket, cfg.n)
        best: TicketFeatures | None = None
        best_s = -1.0
        best_d: float | None = None
        matches: list[TicketFeatures] = []
        for cand in self._candidates(f):
            if abs(f.ts - cand.ts) > cfg.window_ms:
                continue
            d = self._distance(f, cand)
            if d is not None and d > cfg.radius_m:
                continue
            s = similarity(f, cand, cfg, d)
            if s >= cfg.threshold:
                matches.append(cand)
                if s > best_s:
                    best, best_s, best_d = cand, s, d
        self._insert(f)
        while len(self._queue) > cfg.max_live:  # a flood: shed the oldest, memory stays bounded
            shed = self._evict(self._queue.popleft())
            if shed is not None:
                closed.append(shed)
        merged: list[str] = []
        root = f.id
        if matches:
            roots = {self._cluster_of[m.id] for m in matches}
            for other in sorted(roots, key=lambda c: (self._clusters[c].first_ts, c)):
                absorbed = self._union(root, other)
                if absorbed is not None and absorbed != f.id:
                    merged.append(absorbed)
                root = self._cluster_of[f.id]
        cluster = self._clusters[self._cluster_of[f.id]]
        return DedupResult(
            ticket=f.id,
            duplicate_of=best.id if best is not None else None,
            matches=tuple(m.id for m in matches),
            similarity=max(0.0, best_s),
            cluster=cluster.info(),
            merged=tuple(merged),
            closed=tuple(closed),
            distance_m=best_d,
        )

    def _insert(self, f: TicketFeatures) -> None:
        self._cells.setdefault(f.cell, []).append(f)
        self._queue.append(f)
        self._cluster_of[f.id] = f.id
        self._clusters[f.id] = _Cluster(
            head=f,
            last_ts=f.ts,
            members=[f.id],
            live=[f.id],
        )

    def _union(self, a: str, b: str) -> str | None:
        """Merge the clusters of canonical ids ``a`` and ``b``; returns the absorbed canonical."""
        ca, cb = self._clusters[a], self._clusters[b]
        if ca is cb:
            return None
        keep, gone = (
            (ca, cb)
            if (ca.first_ts, ca.canonical) <= (cb.first_ts, cb.canonical)
            else (
                cb,
                ca,
            )
        )
        # Relabel the smaller live set (small-to-large keeps merges O(n log n) overall).
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
        q = self._queue
        while q and q[0].ts < horizon:
            info = self._evict(q.popleft())
            if info is not None:
                closed.append(info)
        return closed

    def _evict(self, f: TicketFeatures) -> ClusterInfo | None:
        bucket = self._cells.get(f.cell)
        if bucket is not None:
            bucket.remove(f)
            if not bucket:
                del self._cells[f.cell]
        cid = self._cluster_of.pop(f.id)
        c = self._clusters[cid]
        c.live.remove(f.id)
        if c.live:
            return None
        del self._clusters[cid]
        return c.info()

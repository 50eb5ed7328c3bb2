"""Online clustering of abnormal dwell points into ranked candidate workshop sites.

Unregistered "small chemical" workshops show up as spots where *different* hazmat vehicles keep
stopping for a long time with no registered place there. Every visit (one stop of one vehicle
outside registered places that reached the dwell policy's first threshold) is assigned to the
nearest candidate within ``join_m`` of its centre, or founds a new candidate (leader clustering;
the centre is the running mean of its visits, re-bucketed in a grid as it moves). Candidates are
ranked lexicographically by distinct vehicles, then visits, then total dwell seconds; those
with at least ``min_vehicles`` distinct vehicles are eligible for the top ``top_k``.

A visit is counted once, when it is first reported; later reports of the same visit (same
vehicle, same arrival time) only add dwell time, so candidates appear while trucks are still
there. State is bounded: past ``max_candidates`` the weakest, longest-idle candidates are
forgotten (never one in the current top or with an open visit).

:meth:`WorkshopRanker.visit` returns the ranking changes it causes as :class:`RankChange`
values: a candidate entering the top (``entered``), one in the top whose counts changed
(``updated``), one pushed out (``left``).

>>> r = WorkshopRanker(top_k=2, min_vehicles=2)
>>> r.visit("V1", 1_000, 1_000, 32.0, 120.9, 1800.0)
[]
>>> [(c.kind, c.candidate.n_vehicles) for c in r.visit("V2", 5_000, 5_000, 32.0004, 120.9, 900.0)]
[('entered', 2)]
>>> top = r.top()[0]
>>> (top.id, top.visits, top.dwell_s)
('spot-1', 2, 2700.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from models.vehicles.slots import CompactSlots

__all__ = ["Candidate", "RankChange", "WorkshopRanker"]

_M_PER_DEG: Final = 111_320.0
#: Bucket size of the candidate grid in degrees (~550 m): must exceed ``join_m``.
_CELL_DEG: Final = 0.005
#: How many distinct vehicle ids a candidate remembers (beyond it, it only counts).
_MAX_IDS: Final = 64


class Candidate(CompactSlots):
    """One candidate site: centre, visits, distinct vehicles, total dwell seconds."""

    __slots__ = (
        "dwell_s",
        "first_ms",
        "id",
        "last_ms",
        "lat",
        "lon",
        "n_vehicles",
        "vehicles",
        "visits",
    )

    def __init__(self, cid: str, lat: float, lon: float, ts: int) -> None:
        self.id = cid
        self.lat = lat
        self.lon = lon
        self.visits = 0
        self.n_vehicles = 0
        self.vehicles: set[str] = set()
        self.dwell_s = 0.0
        self.first_ms = ts
        self.last_ms = ts

    def rank_key(self) -> tuple[int, int, float, str]:
        # The id breaks ties deterministically (older candidates have smaller numbers).
        return (self.n_vehicles, self.visits, self.dwell_s, _neg_id(self.id))

    def __repr__(self) -> str:
        return (
            f"Candidate({self.id!r}, lat={self.lat:.6f}, lon={self.lon:.6f}, "
            f"vehicles={self.n_vehicles}, visits={self.visits}, dwell_s={self.dwell_s:.0f})"
        )


def _neg_id(cid: str) -> str:
    # Sorting descending on the key must put the *older* candidate first on ties: invert the
    # zero-padded sequence number so that a smaller number sorts larger.
    num = cid.rpartition("-")[2]
    return f"{10**12 - int(num):013d}" if num.isdigit() else cid


@dataclass(frozen=True, slots=True)
class RankChange:
    """A change of the top list: ``kind`` is ``entered``, ``updated`` or ``left``."""

    kind: str
    candidate: Candidate
    rank: int  # 1-based rank after the change; 0 for ``left``


class WorkshopRanker:
    """Leader clustering of dwell visits plus a top-k ranking (see the module docstring).

    Parameters
    ----------
    join_m
        A visit joins the nearest candidate whose centre is within this many metres.
    top_k
        How many candidates are reported.
    min_vehicles
        Distinct vehicles a candidate needs to be reported at all.
    max_candidates
        Bound on remembered candidates; the weakest idle ones are forgotten beyond it.
    """

    def __init__(
        self,
        *,
        join_m: float = 150.0,
        top_k: int = 20,
        min_vehicles: int = 2,
        max_candidates: int = 20_000,
    ) -> None:
        if not (0 < join_m < _CELL_DEG * _M_PER_DEG * 0.8):
            msg = f"join_m: must be in (0, {_CELL_DEG * _M_PER_DEG * 0.8:.0f}), got {join_m!r}"
            raise ValueError(msg)
        if top_k < 1 or min_vehicles < 1 or max_candidates < top_k:
            msg = (
                f"top_k/min_vehicles/max_candidates: need top_k >= 1, min_vehicles >= 1, "
                f"max_candidates >= top_k, got {top_k}/{min_vehicles}/{max_candidates}"
            )
            raise ValueError(msg)
        self.join_m = float(join_m)
        self.top_k = top_k
        self.min_vehicles = min_vehicles
        self.max_candidates = max_candidates
        self.candidates: dict[str, Candidate] = {}
        self._grid: dict[tuple[int, int], list[str]] = {}
        # vehicle -> (arrival ms, candidate id, dwell seconds already counted)
        self._open: dict[str, tuple[int, str, float]] = {}
        self._top: list[str] = []
        self._seq = 0
        #: Event time of the last periodic re-report of the top (kept for the model).
        self.refreshed_ms = 0

    # -- input -------------------------------------------------------------------------------

    def visit(
        self,
        vehicle: str,
        start_ms: int,
        ts: int,
        lat: float,
        lon: float,
        dwell_s: float,
        *,
        ended: bool = False,
    ) -> list[RankChange]:
        """Report that ``vehicle``, arrived at ``start_ms``, has dwelt ``dwell_s`` at (lat, lon).

        Repeat reports of the same visit add only the extra dwell; ``ended`` closes the visit.
        """
        if not (math.isfinite(lat) and math.isfinite(lon) and math.isfinite(dwell_s)):
            return []
        dwell_s = max(0.0, dwell_s)
        known = self._open.get(vehicle)
        new_visit = known is None or known[0] != start_ms
        if known is not None and not new_visit and known[1] in self.candidates:
            cand = self.candidates[known[1]]
            cand.dwell_s += max(0.0, dwell_s - known[2])
            counted = max(dwell_s, known[2])
        else:
            cand = self._assign(lat, lon, ts)
            cand.visits += 1
            if vehicle not in cand.vehicles:
                cand.n_vehicles += 1
                if len(cand.vehicles) < _MAX_IDS:
                    cand.vehicles.add(vehicle)
            cand.dwell_s += dwell_s
            counted = dwell_s
            new_visit = True
        cand.last_ms = max(cand.last_ms, ts)
        if ended:
            self._open.pop(vehicle, None)
        else:
            self._open[vehicle] = (start_ms, cand.id, counted)
        changes = self._rerank(cand if new_visit else None)
        if len(self.candidates) > self.max_candidates:
            self._evict()
        return changes

    def expires_at(self, max_open_ms: int) -> int | None:
        """The least ``now_ms`` at which :meth:`expire` forgets an open visit (None: none open)."""
        due: int | None = None
        for _, cid, _ in self._open.values():
            c = self.candidates.get(cid)
            at = 0 if c is None else c.last_ms + max_open_ms + 1
            due = at if due is None or at < due else due
        return due

    def expire(self, now_ms: int, max_open_ms: int) -> None:
        """Forget open visits not reported for ``max_open_ms`` (their end was never seen)."""
        stale = [
            v
            for v, (_, cid, _) in self._open.items()
            if cid not in self.candidates or now_ms - self.candidates[cid].last_ms > max_open_ms
        ]
        for v in stale:
            del self._open[v]

    # -- output ------------------------------------------------------------------------------

    def top(self, k: int | None = None) -> list[Candidate]:
        """The current top ``k`` (default ``top_k``) eligible candidates, best first."""
        eligible = [c for c in self.candidates.values() if c.n_vehicles >= self.min_vehicles]
        eligible.sort(key=Candidate.rank_key, reverse=True)
        return eligible[: self.top_k if k is None else k]

    def ranked(self) -> list[Candidate]:
        """All candidates, eligible or not, best first (for evaluation and inspection)."""
        return sorted(self.candidates.values(), key=Candidate.rank_key, reverse=True)

    # -- internals ---------------------------------------------------------------------------

    def _assign(self, lat: float, lon: float, ts: int) -> Candidate:
        r0, c0 = math.floor(lat / _CELL_DEG), math.floor(lon / _CELL_DEG)
        kx = _M_PER_DEG * math.cos(math.radians(lat))
        best: Candidate | None = None
        best_d2 = self.join_m * self.join_m
        for r in (r0 - 1, r0, r0 + 1):
            for c in (c0 - 1, c0, c0 + 1):
                for cid in self._grid.get((r, c), ()):
                    cand = self.candidates[cid]
                    dy = (cand.lat - lat) * _M_PER_DEG
                    dx = (cand.lon - lon) * kx
                    d2 = dx * dx + dy * dy
                    if d2 <= best_d2:
                        best, best_d2 = cand, d2
        if best is None:
            self._seq += 1
            best = Candidate(f"spot-{self._seq}", lat, lon, ts)
            self.candidates[best.id] = best
            self._grid.setdefault((r0, c0), []).append(best.id)
            return best
        # Move the centre to the mean of its visits (this one included) and re-bucket it.
        old = (math.floor(best.lat / _CELL_DEG), math.floor(best.lon / _CELL_DEG))
        w = best.visits
        best.lat = (best.lat * w + lat) / (w + 1)
        best.lon = (best.lon * w + lon) / (w + 1)
        new = (math.floor(best.lat / _CELL_DEG), math.floor(best.lon / _CELL_DEG))
        if new != old:
            self._grid[old].remove(best.id)
            if not self._grid[old]:
                del self._grid[old]
            self._grid.setdefault(new, []).append(best.id)
        return best

    def _rerank(self, touched: Candidate | None) -> list[RankChange]:
        top = self.top()
        ids = [c.id for c in top]
        before = set(self._top)
        after = set(ids)
        changes: list[RankChange] = []
        for rank, cand in enumerate(top, 1):
            if cand.id not in before:
                changes.append(RankChange("entered", cand, rank))
            elif touched is not None and cand.id == touched.id:
                changes.append(RankChange("updated", cand, rank))
        for cid in self._top:
            if cid not in after and cid in self.candidates:
                changes.append(RankChange("left", self.candidates[cid], 0))
        self._top = ids
        return changes

    def _evict(self) -> None:
        keep = set(self._top) | {cid for _, cid, _ in self._open.values()}
        victims = sorted(
            (c for c in self.candidates.values() if c.id not in keep),
            key=lambda c: (c.n_vehicles, c.visits, c.last_ms),
        )
        for cand in victims[: max(1, len(self.candidates) // 10)]:
            del self.candidates[cand.id]
            cell = (math.floor(cand.lat / _CELL_DEG), math.floor(cand.lon / _CELL_DEG))
            bucket = self._grid.get(cell)
            if bucket is not None and cand.id in bucket:
                bucket.remove(cand.id)
                if not bucket:
                    del self._grid[cell]

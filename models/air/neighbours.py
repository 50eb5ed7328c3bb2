"""Neighbour sets of air stations and the robust median of their current readings.

Each station's neighbours are its ``k`` nearest other stations within ``radius_m`` (built once
from the registry; O(n) numpy work per station, 2,000 stations in well under a second). Optional
``same_group`` keeps neighbours inside one group (e.g. a district) when the dataflow partitions
stations by group.

>>> from citywatch.registry import Station
>>> st = [Station(id=f"S{i}", lat=32.0, lon=120.9 + 0.01 * i) for i in range(5)]
>>> idx = NeighbourIndex.build(st, k=2, radius_m=5_000)
>>> [n for n, _, _ in idx.of("S0")]
['S1', 'S2']
>>> median([3.0, 1.0, 2.0, 10.0])
2.5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from citywatch.geo import EARTH_R_M, bearing_deg
from citywatch.registry import Station

__all__ = ["NeighbourIndex", "median"]

Neighbour = tuple[str, float, float]  # (station id, distance m, bearing deg from the station)


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (mean of the two middle values when even)."""
    n = len(values)
    if n < 3:  # one or two neighbours: the common case of sparse networks, no sort
        return values[0] if n == 1 else (values[0] + values[1]) / 2.0
    s = sorted(values)
    n = len(s)
    h = n // 2
    return s[h] if n % 2 else (s[h - 1] + s[h]) / 2.0


class NeighbourIndex:
    """Station id -> up to ``k`` nearest neighbours ``(id, distance_m, bearing_deg)``."""

    __slots__ = ("k", "neighbours", "radius_m")

    def __init__(self, neighbours: dict[str, tuple[Neighbour, ...]], k: int, radius_m: float):
        self.neighbours = neighbours
        self.k = k
        self.radius_m = radius_m

    def of(self, station_id: str) -> tuple[Neighbour, ...]:
        """Neighbours of a station, nearest first; empty for an unknown station."""
        return self.neighbours.get(station_id, ())

    @classmethod
    def build(
        cls,
        stations: Iterable[Station],
        *,
        k: int = 8,
        radius_m: float = 20_000.0,
        same_group: Callable[[Station], str] | None = None,
    ) -> NeighbourIndex:
        sts = list(stations)
        if k < 1:
            msg = f"k: must be >= 1, got {k}"
            raise ValueError(msg)
        if not sts:
            return cls({}, k, radius_m)
        lat = np.radians(np.array([s.lat for s in sts], dtype=np.float64))
        lon = np.radians(np.array([s.lon for s in sts], dtype=np.float64))
        groups = [same_group(s) for s in sts] if same_group else None
        out: dict[str, tuple[Neighbour, ...]] = {}
        for i, s in enumerate(sts):
            dlat = lat - lat[i]
            dlon = lon - lon[i]
            a = np.sin(dlat / 2) ** 2 + np.cos(lat[i]) * np.cos(lat) * np.sin(dlon / 2) ** 2
            dist = 2 * EARTH_R_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
            dist[i] = np.inf
            if groups is not None:
                dist[[j for j, g in enumerate(groups) if g != groups[i]]] = np.inf
            order = np.argsort(dist, kind="stable")[:k]
            nbs = []
            for j in order:
                d = float(dist[j])
                if d > radius_m:
                    break
                o = sts[int(j)]
                nbs.append((o.id, d, bearing_deg(s.lat, s.lon, o.lat, o.lon)))
            out[s.id] = tuple(nbs)
        return cls(out, k, radius_m)

"""A grid spatial index over registered places and sensitive zones: what is at a point.

The index buckets every place and zone into all grid cells its circle touches, so a lookup
reads one cell and checks a handful of circles. Built once from the registry (3,000 places and
a few thousand zones build in milliseconds); a lookup costs a few microseconds and runs once per
stop, not per fix.

>>> from citywatch.registry import Place, Zone
>>> idx = PlaceIndex(
...     places=[Place(id="E1", name="化工厂", lat=32.0, lon=120.9, category="enterprise")],
...     zones=[Zone(id="Z1", name="小学", lat=32.01, lon=120.9, category="school")],
... )
>>> idx.lookup(32.0005, 120.9).place.id
'E1'
>>> idx.lookup(32.0105, 120.9).zone.category
'school'
>>> idx.lookup(32.3, 121.3).place is None
True
>>> idx.lookup(32.002, 120.9).gate.id  # 222 m: outside the 150-m place, in its gate band
'E1'

"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from citywatch.geo import EARTH_R_M
from citywatch.registry import Place, Zone

__all__ = ["CELL_DEG", "Context", "PlaceIndex"]

#: Cell size in degrees (~1.1 km north-south); circles larger than a cell span several cells.
CELL_DEG: Final = 0.01
_M_PER_DEG: Final = EARTH_R_M * math.pi / 180.0


@dataclass(frozen=True, slots=True)
class Context:
    """What surrounds a point: the nearest registered place and sensitive zone containing it,
    and the nearest place whose *gate band* it is in (outside the place, within
    ``gate_factor`` x its radius: where trucks queue before they are let in).

    ``place``/``zone``/``gate`` are None when there is none; distances are to their centres.
    """

    place: Place | None = None
    place_m: float = math.inf
    zone: Zone | None = None
    zone_m: float = math.inf
    gate: Place | None = None
    gate_m: float = math.inf


def _dist_m(lat0: float, lon0: float, lat: float, lon: float) -> float:
    dy = (lat - lat0) * _M_PER_DEG
    dx = (lon - lon0) * _M_PER_DEG * math.cos(math.radians((lat + lat0) / 2.0))
    return math.sqrt(dx * dx + dy * dy)


class PlaceIndex:
    """Places and zones bucketed by grid cell; :meth:`lookup` returns the containing ones.

    A point is *at* a place (or *in* a zone) when its distance to the centre is at most the
    entry's ``radius_m`` plus ``margin_m`` (GPS error and the stop centroid's own spread).
    When several contain the point the nearest wins.
    """

    def __init__(
        self,
        places: Iterable[Place] = (),
        zones: Iterable[Zone] = (),
        *,
        margin_m: float = 0.0,
        gate_factor: float = 2.0,
    ) -> None:
        if not (margin_m >= 0 and math.isfinite(margin_m)):
            msg = f"margin_m: must be a finite number >= 0, got {margin_m!r}"
            raise ValueError(msg)
        if not (gate_factor >= 1 and math.isfinite(gate_factor)):
            msg = f"gate_factor: must be a finite number >= 1, got {gate_factor!r}"
            raise ValueError(msg)
        self.margin_m = float(margin_m)
        self.gate_factor = float(gate_factor)
        self._places: dict[tuple[int, int], list[Place]] = {}
        self._zones: dict[tuple[int, int], list[Zone]] = {}
        for p in places:
            self._add(self._places, p, p.lat, p.lon, p.radius_m * self.gate_factor)
        for z in zones:
            self._add(self._zones, z, z.lat, z.lon, z.radius_m)

    @staticmethod
    def cell(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG)

    def _add(
        self,
        buckets: dict[tuple[int, int], list[Place]] | dict[tuple[int, int], list[Zone]],
        item: Place | Zone,
        lat: float,
        lon: float,
        radius_m: float,
    ) -> None:
        reach = radius_m + self.margin_m
        dlat = reach / _M_PER_DEG
        dlon = reach / (_M_PER_DEG * max(0.01, math.cos(math.radians(lat))))
        r0, c0 = self.cell(lat - dlat, lon - dlon)
        r1, c1 = self.cell(lat + dlat, lon + dlon)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                buckets.setdefault((r, c), []).append(item)  # type: ignore[arg-type]

    def lookup(self, lat: float, lon: float) -> Context:
        """The nearest place, zone and gate band containing the point."""
        key = self.cell(lat, lon)
        margin = self.margin_m
        place, place_m = None, math.inf
        gate, gate_m = None, math.inf
        for p in self._places.get(key, ()):
            d = _dist_m(p.lat, p.lon, lat, lon)
            if d <= p.radius_m + margin:
                if d < place_m:
                    place, place_m = p, d
            elif d <= p.radius_m * self.gate_factor + margin and d < gate_m:
                gate, gate_m = p, d
        zone, zone_m = None, math.inf
        for z in self._zones.get(key, ()):
            d = _dist_m(z.lat, z.lon, lat, lon)
            if d <= z.radius_m + margin and d < zone_m:
                zone, zone_m = z, d
        return Context(place, place_m, zone, zone_m, gate, gate_m)

    def __len__(self) -> int:
        ids = {id(x) for cell in self._places.values() for x in cell}
        ids.update(id(x) for cell in self._zones.values() for x in cell)
        return len(ids)

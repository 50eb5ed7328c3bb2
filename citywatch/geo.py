"""Small geographic helpers shared by simulators and models (WGS-84, metres).

>>> round(haversine_m(32.0, 120.9, 32.0, 121.0))
9430
>>> grid_id(32.0, 120.9)
'G0034-0059'
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "GRID_DEG",
    "bearing_deg",
    "grid_cell",
    "grid_id",
    "haversine_m",
    "offset",
    "point_in_polygon",
]

EARTH_R_M: Final = 6_371_008.8
#: Grid cell size in degrees: over the Nantong box (1.1 x 1.7 deg) about 14,000 cells of ~1.2 km.
GRID_DEG: Final = 0.0117
_ORIGIN_LAT: Final = 31.6
_ORIGIN_LON: Final = 120.2


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north, in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of (lat, lon) (flat-earth, < 50 km)."""
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def grid_cell(lat: float, lon: float) -> tuple[int, int]:
    """(row, col) of the city grid cell holding the point."""
    return int((lat - _ORIGIN_LAT) // GRID_DEG), int((lon - _ORIGIN_LON) // GRID_DEG)


def grid_id(lat: float, lon: float) -> str:
    """The city grid cell id (``G{row:04d}-{col:04d}``) holding the point."""
    r, c = grid_cell(lat, lon)
    return f"G{r:04d}-{c:04d}"


def point_in_polygon(lat: float, lon: float, ring: list[tuple[float, float]]) -> bool:
    """Even-odd test; ``ring`` is a list of (lon, lat) pairs as in GeoJSON."""
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside

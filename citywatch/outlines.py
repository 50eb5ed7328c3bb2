"""Outlines for the maps: districts, towns and grids from the operator's GeoJSON.

No redistributable official outline of Nantong's districts, towns and grids exists for us to
ship, so the operator supplies one with the registry (docs/contracts.md, "Outlines"):
``outlines.geojson`` holding all three levels (``properties.level`` on each feature), or one
file per level (``outlines-district.geojson``, ``outlines-town.geojson``,
``outlines-grid.geojson``). Each file declares its coordinate system at the top level,
``"coordinate_system": "WGS-84"`` or ``"GCJ-02"`` (the offset system of Chinese web maps);
GCJ-02 is converted to WGS-84 on load, so everything downstream is WGS-84 like the events.
A bad file is refused with one line naming the file, the feature and the problem.

>>> doc = {"type": "FeatureCollection", "coordinate_system": "GCJ-02", "features": [
...   {"type": "Feature", "properties": {"level": "district", "name": "崇川区"},
...    "geometry": {"type": "Polygon", "coordinates": [[[120.8, 32.0], [120.9, 32.0],
...                 [120.9, 32.1], [120.8, 32.0]]]}}]}
>>> o = parse_outlines(doc, "outlines.geojson")
>>> d = o.districts[0]
>>> d.name, d.polygons[0][0][0]  # moved back by GCJ-02's offset (~470 m here)
('崇川区', (120.795618, 32.002029))
>>> bad = {**doc, "coordinate_system": "BD-09"}
>>> parse_outlines(bad, "outlines.geojson")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
citywatch.errors.SchemaError: outlines: outlines.geojson: coordinate_system 'BD-09' is not ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from citywatch.errors import SchemaError
from citywatch.geo import GRID_DEG
from citywatch.registry import Registry

__all__ = [
    "LEVELS",
    "OUTLINE_FILES",
    "Outlines",
    "Shape",
    "gcj02_to_wgs84",
    "load_outlines",
    "outlines_from_registry",
    "parse_outlines",
    "wgs84_to_gcj02",
]

LEVELS: Final = ("district", "town", "grid")
#: The file names looked for beside the registry: one with every level, or one per level.
OUTLINE_FILES: Final = ("outlines.geojson", *(f"outlines-{lv}.geojson" for lv in LEVELS))

Ring = tuple[tuple[float, float], ...]  # (lon, lat) pairs, as in GeoJSON
Polygon = tuple[Ring, ...]  # the outer ring, then holes

_WGS84_NAMES: Final = frozenset(
    {"WGS84", "WGS 84", "EPSG:4326", "URN:OGC:DEF:CRS:OGC:1.3:CRS84", "URN:OGC:DEF:CRS:EPSG::4326"}
)
_GCJ02_NAMES: Final = frozenset({"GCJ02", "GCJ 02"})
_LATTICE: Final = re.compile(r"^G\d{4}-\d{4}$")


@dataclass(frozen=True, slots=True)
class Shape:
    """One outline: ``id`` (a district's name, a town's or grid's id), a display ``name``, the
    ``district`` and ``town`` it lies in (when given), and its polygons in WGS-84."""

    level: str
    id: str
    name: str
    district: str
    town: str
    polygons: tuple[Polygon, ...]

    def feature(self) -> dict[str, Any]:
        props = {"level": self.level, "id": self.id, "name": self.name}
        if self.district:
            props["district"] = self.district
        if self.town:
            props["town"] = self.town
        polys = [[[list(p) for p in ring] for ring in poly] for poly in self.polygons]
        geometry = (
            {"type": "Polygon", "coordinates": polys[0]}
            if len(polys) == 1
            else {"type": "MultiPolygon", "coordinates": polys}
        )
        return {"type": "Feature", "properties": props, "geometry": geometry}


@dataclass(slots=True)
class Outlines:
    """The three levels; ``source`` says where they came from (a path, or ``simulated``);
    ``declared`` the coordinate systems the files declared (all served as WGS-84)."""

    districts: list[Shape] = field(default_factory=list)
    towns: list[Shape] = field(default_factory=list)
    grids: list[Shape] = field(default_factory=list)
    source: str = ""
    declared: tuple[str, ...] = ()

    @property
    def simulated(self) -> bool:
        return self.source == "simulated"

    def level(self, level: str) -> list[Shape]:
        return {"district": self.districts, "town": self.towns, "grid": self.grids}[level]

    def geojson(self, level: str) -> dict[str, Any]:
        """One level as a WGS-84 FeatureCollection (``properties``: level, id, name, ...)."""
        return {
            "type": "FeatureCollection",
            "coordinate_system": "WGS-84",
            "features": [s.feature() for s in self.level(level)],
        }

    def summary(self) -> dict[str, Any]:
        return {
            "source": "simulated" if self.simulated else "registry",
            "simulated": self.simulated,
            "declared": list(self.declared),
            "levels": {lv: len(self.level(lv)) for lv in LEVELS},
        }


# -- GCJ-02 -------------------------------------------------------------------------------------

_A: Final = 6378245.0  # the Krasovsky ellipsoid GCJ-02 is defined on
_EE: Final = 0.00669342162296594323


def _delta(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02's offset (dlon, dlat) in degrees at a WGS-84 point (the published algorithm)."""
    x, y = lon - 105.0, lat - 35.0
    s6x, s2x = math.sin(6.0 * x * math.pi), math.sin(2.0 * x * math.pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * s6x + 20.0 * s2x) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * s6x + 20.0 * s2x) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * math.pi)
    dlon = (dlon * 180.0) / (_A / sq * math.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """A WGS-84 point in GCJ-02 (points outside China are not offset).

    >>> [round(v, 6) for v in wgs84_to_gcj02(121.5272106, 31.1774276)]  # Shanghai
    [121.531542, 31.175304]
    """
    if not _in_china(lon, lat):
        return lon, lat
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """A GCJ-02 point in WGS-84: the forward offset inverted by fixed-point iteration (to
    about 1e-9 degrees, a millimetre; the one-step inverse common in the wild is off by up
    to a few metres).

    >>> [round(v, 7) for v in gcj02_to_wgs84(121.531541859215, 31.17530398364597)]
    [121.5272106, 31.1774276]
    """
    if not _in_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < 1e-10 and abs(dlat) < 1e-10:
            break
    return wlon, wlat


def _in_china(lon: float, lat: float) -> bool:
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


# -- loading ------------------------------------------------------------------------------------


def load_outlines(directory: Path) -> Outlines | None:
    """The outlines beside a registry: ``outlines.geojson`` and/or the per-level files in
    ``directory`` (None when there is none). Raises :class:`SchemaError` on a bad file."""
    found = [directory / name for name in OUTLINE_FILES if (directory / name).is_file()]
    if not found:
        return None
    out = Outlines(source=", ".join(str(p) for p in found))
    declared: list[str] = []
    for path in found:
        try:
            doc = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        except orjson.JSONDecodeError as exc:
            msg = f"outlines: {path.name}: not valid JSON ({exc})"
            raise SchemaError(msg) from exc
        except OSError as exc:
            msg = f"outlines: {path.name}: cannot read ({exc.strerror})"
            raise SchemaError(msg) from exc
        stem = path.name.removesuffix(".geojson")
        level = stem.split("-", 1)[1] if "-" in stem else None
        part = parse_outlines(doc, path.name, level=level)
        out.districts += part.districts
        out.towns += part.towns
        out.grids += part.grids
        declared += part.declared
    for lv in LEVELS:
        _no_duplicates(out.level(lv), "the outline files")
    out.declared = tuple(dict.fromkeys(declared))
    return out


def parse_outlines(doc: Any, where: str, *, level: str | None = None) -> Outlines:
    """One outline document (see the module docstring). ``level``: the level every feature
    has (a per-level file); a feature's own ``properties.level`` must then agree."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        msg = f"outlines: {where}: not a GeoJSON FeatureCollection"
        raise SchemaError(msg)
    system = _coordinate_system(doc, where)
    features = doc.get("features")
    if not isinstance(features, list):
        msg = f"outlines: {where}: 'features' must be a list"
        raise SchemaError(msg)
    out = Outlines(source=where, declared=(system,))
    for i, f in enumerate(features):
        shape = _shape(f, i, where, level, system)
        out.level(shape.level).append(shape)
    for lv in LEVELS:
        _no_duplicates(out.level(lv), where)
    return out


def _coordinate_system(doc: Mapping[str, Any], where: str) -> str:
    raw = doc.get("coordinate_system")
    if raw is None:
        crs = doc.get("crs")
        name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
        if isinstance(name, str) and name.upper() in _WGS84_NAMES:
            return "WGS-84"
        msg = (
            f"outlines: {where}: no coordinate_system: declare "
            '"coordinate_system": "WGS-84" or "GCJ-02" at the top level'
        )
        raise SchemaError(msg)
    key = str(raw).strip().upper().replace("-", "").replace("_", "")
    if key in {n.replace("-", "") for n in _WGS84_NAMES} or key == "WGS84":
        return "WGS-84"
    if key in _GCJ02_NAMES or key == "GCJ02":
        return "GCJ-02"
    msg = f"outlines: {where}: coordinate_system {str(raw)[:40]!r} is not WGS-84 or GCJ-02"
    raise SchemaError(msg)


def _shape(f: Any, i: int, where: str, level: str | None, system: str) -> Shape:
    props = f.get("properties") if isinstance(f, dict) else None
    props = props if isinstance(props, dict) else {}
    ident = _text(props.get("id")) or _text(props.get("name")) or _text(props.get("code"))
    label = f"{where} feature {i}" + (f" ({ident[:40]})" if ident else "")

    def bad(problem: str) -> SchemaError:
        return SchemaError(f"outlines: {label}: {problem}")

    if not isinstance(f, dict) or f.get("type") != "Feature":
        msg = "not a GeoJSON Feature"
        raise bad(msg)
    lv = _text(props.get("level")) or level
    if lv not in LEVELS:
        msg = f"level {lv!r} is not one of {', '.join(LEVELS)} (properties.level)"
        raise bad(msg)
    if level is not None and lv != level:
        msg = f"level {lv!r} in a file of {level} outlines"
        raise bad(msg)
    name = _text(props.get("name"))
    key = name if lv == "district" else _text(props.get("id"))
    if not key:
        need = "properties.name" if lv == "district" else "properties.id"
        msg = f"a {lv} needs {need}"
        raise bad(msg)
    try:
        polygons = _polygons(f.get("geometry"), system)
    except ValueError as exc:
        msg = f"geometry: {exc}"
        raise bad(msg) from exc
    return Shape(
        level=lv,
        id=key,
        name=name or key,
        district=_text(props.get("district")) or (key if lv == "district" else ""),
        town=_text(props.get("town")),
        polygons=polygons,
    )


def _polygons(geometry: Any, system: str) -> tuple[Polygon, ...]:
    if not isinstance(geometry, dict):
        msg = "missing (a Polygon or MultiPolygon is needed)"
        raise ValueError(msg)
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polys = [coords]
    elif kind == "MultiPolygon" and isinstance(coords, list):
        polys = coords
    else:
        msg = f"type {str(kind)[:20]!r} is not Polygon or MultiPolygon"
        raise ValueError(msg)
    if not polys:
        msg = "no polygons"
        raise ValueError(msg)
    return tuple(_polygon(p, n, system) for n, p in enumerate(polys))


def _polygon(rings: Any, n: int, system: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        msg = f"polygon {n} has no rings"
        raise ValueError(msg)
    out = []
    for r, ring in enumerate(rings):
        where = f"polygon {n} ring {r}"
        if not isinstance(ring, list) or len(ring) < 4:
            size = len(ring) if isinstance(ring, list) else 0
            msg = f"{where} has {size} positions (a ring needs at least 4, the last = the first)"
            raise ValueError(msg)
        pts = [_position(p, where) for p in ring]
        if pts[0] != pts[-1]:
            msg = f"{where} is not closed (its last position differs from its first)"
            raise ValueError(msg)
        if system == "GCJ-02":
            pts = [gcj02_to_wgs84(lon, lat) for lon, lat in pts]
        out.append(tuple((round(lon, 6), round(lat, 6)) for lon, lat in pts))
    return tuple(out)


def _position(p: Any, where: str) -> tuple[float, float]:
    ok = isinstance(p, list) and len(p) >= 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p[:2])
    if ok:
        lon, lat = float(p[0]), float(p[1])
        if math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90:
            return lon, lat
    msg = f"{where}: position {str(p)[:40]} is not [longitude, latitude]"
    raise ValueError(msg)


def _text(v: Any) -> str:
    return str(v).strip() if isinstance(v, str | int) and not isinstance(v, bool) else ""


def _no_duplicates(shapes: Iterable[Shape], where: str) -> None:
    seen: set[str] = set()
    for s in shapes:
        if s.id in seen:
            msg = f"outlines: {where}: two {s.level} outlines have the id {s.id[:40]!r}"
            raise SchemaError(msg)
        seen.add(s.id)


def outlines_from_registry(registry: Registry) -> Outlines:
    """Outlines drawn from a registry's own shapes (``source`` ``simulated``): district
    outlines, towns' and grids' rings, and for a grid without rings on the city lattice
    (``G<row>-<col>``, :func:`citywatch.geo.grid_id`) its lattice square."""
    out = Outlines(source="simulated", declared=("WGS-84",))
    out.districts = [
        Shape("district", d.name, d.name, d.name, "", (d.rings,))
        for d in registry.districts
        if d.rings
    ]
    out.towns = [
        Shape("town", t.id, t.name, t.district, "", (t.rings,))
        for t in registry.towns.values()
        if t.rings
    ]
    half = GRID_DEG / 2
    for g in registry.grids.values():
        rings = g.rings
        if not rings and _LATTICE.match(g.id):
            lon0, lat0 = round(g.lon - half, 5), round(g.lat - half, 5)
            lon1, lat1 = round(g.lon + half, 5), round(g.lat + half, 5)
            rings = (((lon0, lat0), (lon1, lat0), (lon1, lat1), (lon0, lat1), (lon0, lat0)),)
        if rings:
            out.grids.append(Shape("grid", g.id, g.id, g.district, g.town, (rings,)))
    return out

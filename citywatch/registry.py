"""Reference data: what the city knows about its stations, places, zones, sites and vehicles.

Flows load it at start and hand the parts to models. A registry is either a **directory**
(what the simulator writes; one JSON object per line, except the GeoJSON and region.json)::

    stations.jsonl      Station     air-quality stations (national, micro, lowcost)
    places.jsonl        Place       registered enterprises, depots, fuel stations
    zones.jsonl         Zone        sensitive zones: school, hospital, residential, water
    sites.jsonl         Site        work sites with their cameras and meters
    vehicles.jsonl      Vehicle     registered hazmat vehicles
    districts.geojson               district outlines (FeatureCollection, properties.name)
    towns.jsonl         Town        towns/streets (镇/街道): the lowest tier with a centre
    localities.jsonl    Locality    names in addresses: communities, roads, landmarks
    grids.jsonl         Grid        grids (网格): the cells grid workers cover
    water_stations.jsonl WaterStation drinking-water quality stations
    region.json                     optional: {"lat_min":..,"lat_max":..,"lon_min":..,"lon_max":..}

or **one file** (what ``citywatch import`` writes): JSON Lines with a ``type`` on every line
(``region``, ``station``, ``place``, ``zone``, ``site``, ``vehicle``, ``town``, ``grid``,
``water_station``, ``district`` with ``name``, ``code``, ``rings``), or one JSON object with lists
(``{"stations": [...], "places": [...], ..., "districts": [...] or a GeoJSON
FeatureCollection, "region": {...} or [lat_min, lat_max, lon_min, lon_max]}``).
``docs/evaluation.md`` has examples.

The **region** (the box the decoder accepts coordinates in) comes from the settings when set
there, else the registry's explicit ``region``, else the bounding box of its located entities
widened by :data:`REGION_MARGIN_KM` (:func:`region_for`).

Unregistered workshops are *not* here: they are the hidden truth, written by the simulator
next to its labels. Suspension orders are not here either: they arrive as ``order`` events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
import orjson

from citywatch.errors import ConfigError, SchemaError
from citywatch.events import Region
from citywatch.geo import point_in_polygon
from citywatch.tiers import Grid, Location, Locator, Town

__all__ = [
    "REGION_MARGIN_KM",
    "District",
    "Grid",
    "Locality",
    "Place",
    "Registry",
    "Site",
    "Station",
    "Town",
    "Vehicle",
    "WaterStation",
    "Zone",
    "region_for",
]

#: A derived region is the entities' bounding box widened by this much on every side.
REGION_MARGIN_KM: Final = 30.0

StationKind = Literal["national", "micro", "lowcost"]


class Station(msgspec.Struct, frozen=True, kw_only=True):
    """An air-quality station.

    ``kind``: ``national`` (reference analysers, hourly averages published), ``micro``
    (small sensor stations, 1-5 min), ``lowcost`` (optical sensors, irregular, gaps).
    ``interval_s``: the declared reporting interval in seconds, when known (None: learn it
    from the stream).
    """

    id: str
    lat: float
    lon: float
    district: str = ""
    grid: str = ""
    kind: StationKind = "micro"
    interval_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class Place(msgspec.Struct, frozen=True, kw_only=True):
    """A registered place where hazmat vehicles normally stop."""

    id: str
    name: str
    lat: float
    lon: float
    category: Literal["enterprise", "depot", "fuel"]
    radius_m: float = 150.0
    district: str = ""


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """A sensitive zone: a hazmat vehicle dwelling within ``radius_m`` is abnormal."""

    id: str
    name: str
    lat: float
    lon: float
    category: Literal["school", "hospital", "residential", "water"]
    radius_m: float = 300.0
    district: str = ""


class Site(msgspec.Struct, frozen=True, kw_only=True):
    """A work site, its cameras and meters; ``idle_kw`` is the nominal idle draw if known."""

    id: str
    name: str
    lat: float
    lon: float
    district: str = ""
    grid: str = ""
    cameras: tuple[str, ...] = ()
    meters: tuple[str, ...] = ()
    idle_kw: float | None = None


class Vehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A hazmat vehicle. ``sleep_interval_s``: how often its terminal reports while the
    ignition is off (JT/T 808 sleep reporting, 5-60 min), when known; else it is learned."""

    id: str
    plate: str
    un: str | None = None
    depot: str | None = None
    sleep_interval_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] | None = None


class WaterStation(msgspec.Struct, frozen=True, kw_only=True):
    """A drinking-water quality station (its readings are ``water`` events).

    ``kind``: ``source`` (raw water intake), ``plant`` (a treatment plant's outlet) or
    ``network`` (a node of the distribution network). ``name`` is what the duty officer reads.
    Kept apart from the air ``Station``: the air models read every ``stations`` entry.
    """

    id: str
    lat: float
    lon: float
    name: str = ""
    district: str = ""
    grid: str = ""
    kind: Literal["source", "plant", "network"] = "network"


class District(msgspec.Struct, frozen=True, kw_only=True):
    """A district and its outline: a list of rings of (lon, lat), the first one outer."""

    name: str
    code: str
    rings: tuple[tuple[tuple[float, float], ...], ...]

    def contains(self, lat: float, lon: float) -> bool:
        if not self.rings or not point_in_polygon(lat, lon, list(self.rings[0])):
            return False
        return not any(point_in_polygon(lat, lon, list(h)) for h in self.rings[1:])


class Locality(msgspec.Struct, frozen=True, kw_only=True):
    """A name citizens use in addresses: a residential community (``community``), a road
    (``road``, with its centre line ``line`` of (lon, lat) points), a landmark (market, park,
    mall ...) or a town not in ``towns``. ``town`` names the town it lies in."""

    id: str
    name: str
    kind: Literal["town", "community", "road", "landmark"]
    lat: float
    lon: float
    district: str = ""
    town: str = ""
    line: tuple[tuple[float, float], ...] = ()
    aliases: tuple[str, ...] = ()


T = TypeVar("T", bound=msgspec.Struct)


class Registry(msgspec.Struct, kw_only=True):
    """All reference data, indexed by id."""

    stations: dict[str, Station] = msgspec.field(default_factory=dict)
    places: dict[str, Place] = msgspec.field(default_factory=dict)
    zones: dict[str, Zone] = msgspec.field(default_factory=dict)
    sites: dict[str, Site] = msgspec.field(default_factory=dict)
    vehicles: dict[str, Vehicle] = msgspec.field(default_factory=dict)
    districts: list[District] = msgspec.field(default_factory=list)
    towns: dict[str, Town] = msgspec.field(default_factory=dict)
    grids: dict[str, Grid] = msgspec.field(default_factory=dict)
    water_stations: dict[str, WaterStation] = msgspec.field(default_factory=dict)
    localities: dict[str, Locality] = msgspec.field(default_factory=dict)
    #: An explicit region box (lat_min, lat_max, lon_min, lon_max), or None to derive one.
    region: tuple[float, float, float, float] | None = None

    def district_of(self, lat: float, lon: float) -> str | None:
        """The name of the district containing the point, or None."""
        for d in self.districts:
            if d.contains(lat, lon):
                return d.name
        return None

    def locator(self) -> Locator:
        """A point -> district, town, grid lookup over this registry (build it once)."""
        return Locator(((d.name, d.rings) for d in self.districts), self.towns, self.grids)

    def locate(self, lat: float, lon: float) -> Location:
        """District, town and grid of a point (builds a :class:`Locator` each call: for a
        few lookups; hot paths keep ``locator()``)."""
        return self.locator().locate(lat, lon)

    def centres(self) -> list[dict[str, str]]:
        """The command centres this registry knows: the city, one per district (county),
        one per town; each ``{"id", "name", "district"}`` (``citywatch.tiers`` ids)."""
        out = [{"id": "city", "name": "市中心", "district": ""}]
        out += [
            {"id": f"county:{d.name}", "name": d.name, "district": d.name} for d in self.districts
        ]
        out += [
            {"id": f"town:{t.id}", "name": t.name, "district": t.district}
            for t in self.towns.values()
        ]
        return out

    def site_of_camera(self) -> dict[str, str]:
        """camera id -> site id, for every camera registered at a site."""
        return {c: s.id for s in self.sites.values() for c in s.cameras}

    def site_of_meter(self) -> dict[str, str]:
        return {m: s.id for s in self.sites.values() for m in s.meters}

    def points(self) -> Iterator[tuple[float, float]]:
        """(lat, lon) of every located entity: stations, places, zones, sites, outlines."""
        for group in (
            self.stations,
            self.places,
            self.zones,
            self.sites,
            self.towns,
            self.water_stations,
        ):
            for e in group.values():
                yield e.lat, e.lon
        for d in self.districts:
            for ring in d.rings:
                for lon, lat in ring:
                    yield lat, lon

    def derived_region(
        self, margin_km: float = REGION_MARGIN_KM
    ) -> tuple[float, float, float, float] | None:
        """The explicit region, else the entities' bounding box widened by ``margin_km``
        (None when nothing is located)."""
        if self.region is not None:
            return self.region
        pts = list(self.points())
        if not pts:
            return None
        lats = [p[0] for p in pts]
        lons = [p[1] for p in pts]
        dlat = margin_km / 111.2
        mid = math.radians((min(lats) + max(lats)) / 2)
        dlon = margin_km / (111.2 * max(math.cos(mid), 0.05))
        return (
            max(-90.0, min(lats) - dlat),
            min(90.0, max(lats) + dlat),
            max(-180.0, min(lons) - dlon),
            min(180.0, max(lons) + dlon),
        )

    # -- files -------------------------------------------------------------------------------

    def dump(self, directory: str | Path) -> None:
        """Write the registry files into ``directory`` (created if needed); deterministic."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        _write_jsonl(d / "stations.jsonl", self.stations.values())
        _write_jsonl(d / "places.jsonl", self.places.values())
        _write_jsonl(d / "zones.jsonl", self.zones.values())
        _write_jsonl(d / "sites.jsonl", self.sites.values())
        _write_jsonl(d / "vehicles.jsonl", self.vehicles.values())
        if self.towns:
            _write_jsonl(d / "towns.jsonl", self.towns.values())
        if self.grids:
            _write_jsonl(d / "grids.jsonl", self.grids.values())
        if self.water_stations:
            _write_jsonl(d / "water_stations.jsonl", self.water_stations.values())
        if self.localities:
            _write_jsonl(d / "localities.jsonl", self.localities.values())
        (d / "districts.geojson").write_bytes(
            orjson.dumps(districts_geojson(self.districts), option=orjson.OPT_INDENT_2)
        )
        if self.region is not None:
            (d / "region.json").write_bytes(orjson.dumps(_region_dict(self.region)))

    def dump_file(self, path: str | Path) -> None:
        """Write the registry as one JSON Lines file (a ``type`` on every line); deterministic."""
        lines = []
        if self.region is not None:
            lines.append(orjson.dumps({"type": "region", **_region_dict(self.region)}))
        for typ, group in _TYPED:
            for item in getattr(self, group).values():
                lines.append(_typed(typ, item))
        for d in self.districts:
            lines.append(_typed("district", d))
        Path(path).write_bytes(b"".join(x + b"\n" for x in lines))

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        """Read a registry directory or single file (see the module docstring); missing
        files in a directory give empty parts, bad lines raise :class:`SchemaError`."""
        d = Path(path)
        if d.is_file():
            return _load_file(d)
        if not d.is_dir():
            msg = (
                f"registry: {str(d)!r} not found "
                "(expected a directory or a .json/.jsonl registry file)"
            )
            raise SchemaError(msg)
        reg = cls(
            stations={s.id: s for s in _read_jsonl(d / "stations.jsonl", Station)},
            places={p.id: p for p in _read_jsonl(d / "places.jsonl", Place)},
            zones={z.id: z for z in _read_jsonl(d / "zones.jsonl", Zone)},
            sites={s.id: s for s in _read_jsonl(d / "sites.jsonl", Site)},
            vehicles={v.id: v for v in _read_jsonl(d / "vehicles.jsonl", Vehicle)},
            towns={t.id: t for t in _read_jsonl(d / "towns.jsonl", Town)},
            grids={g.id: g for g in _read_jsonl(d / "grids.jsonl", Grid)},
            water_stations={w.id: w for w in _read_jsonl(d / "water_stations.jsonl", WaterStation)},
            localities={x.id: x for x in _read_jsonl(d / "localities.jsonl", Locality)},
        )
        geo = d / "districts.geojson"
        if geo.exists():
            reg.districts = parse_districts(_json(geo))
        region = d / "region.json"
        if region.exists():
            reg.region = _parse_region(_json(region), "region.json")
        return reg


def districts_geojson(districts: Iterable[District]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": d.name, "code": d.code},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[list(p) for p in ring] for ring in d.rings],
                },
            }
            for d in districts
        ],
    }


def parse_districts(doc: Any) -> list[District]:
    try:
        out = []
        for f in doc["features"]:
            geom = f["geometry"]
            if geom["type"] != "Polygon":
                msg = f"districts: geometry type {geom['type']!r} is not Polygon"
                raise SchemaError(msg)
            rings = tuple(
                tuple((float(x), float(y)) for x, y in ring) for ring in geom["coordinates"]
            )
            props = f.get("properties") or {}
            out.append(
                District(name=str(props["name"]), code=str(props.get("code", "")), rings=rings)
            )
        return out
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"districts: malformed GeoJSON ({exc!r})"
        raise SchemaError(msg) from exc


_ENC = msgspec.json.Encoder()


def _write_jsonl(path: Path, items: Iterable[msgspec.Struct]) -> None:
    with path.open("wb") as fh:
        for item in items:
            fh.write(_ENC.encode(item))
            fh.write(b"\n")


def _read_jsonl(path: Path, typ: type[T]) -> Iterator[T]:
    if not path.exists():
        return
    dec = msgspec.json.Decoder(typ)
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield dec.decode(line)
            except msgspec.DecodeError as exc:
                msg = f"registry: {path.name} line {n}: {exc}"
                raise SchemaError(msg) from exc


# -- one-file registries and the region --------------------------------------------------------

#: line ``type`` -> registry attribute (districts are a list, handled apart)
_TYPED: Final = (
    ("station", "stations"),
    ("place", "places"),
    ("zone", "zones"),
    ("site", "sites"),
    ("vehicle", "vehicles"),
    ("town", "towns"),
    ("grid", "grids"),
    ("water_station", "water_stations"),
    ("locality", "localities"),
)
_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "station": Station,
    "place": Place,
    "zone": Zone,
    "site": Site,
    "vehicle": Vehicle,
    "town": Town,
    "grid": Grid,
    "water_station": WaterStation,
    "locality": Locality,
    "district": District,
}
_GROUPS: Final = {group for _, group in _TYPED} | {"districts", "region"}
_REGION_KEYS: Final = ("lat_min", "lat_max", "lon_min", "lon_max")


def _typed(typ: str, item: msgspec.Struct) -> bytes:
    return orjson.dumps({"type": typ, **msgspec.to_builtins(item)})


def _region_dict(r: Sequence[float]) -> dict[str, float]:
    return dict(zip(_REGION_KEYS, r, strict=True))


def _json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        msg = f"registry: {path.name}: invalid JSON ({exc})"
        raise SchemaError(msg) from exc


def _parse_region(value: Any, where: str) -> tuple[float, float, float, float]:
    """``{"lat_min":..,...}`` or ``[lat_min, lat_max, lon_min, lon_max]``, checked."""
    try:
        if isinstance(value, dict):
            nums = [float(value[k]) for k in _REGION_KEYS]
        else:
            nums = [float(x) for x in value]
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"registry: {where}: region needs {', '.join(_REGION_KEYS)} (got {value!r})"
        raise SchemaError(msg) from exc
    if len(nums) != 4:
        msg = f"registry: {where}: region needs 4 numbers, got {value!r}"
        raise SchemaError(msg)
    lat0, lat1, lon0, lon1 = nums
    if not (-90 <= lat0 < lat1 <= 90 and -180 <= lon0 < lon1 <= 180):
        msg = f"registry: {where}: region {nums} is not lat_min < lat_max, lon_min < lon_max"
        raise SchemaError(msg)
    return lat0, lat1, lon0, lon1


def _add(reg: Registry, typ: str, obj: dict[str, Any], where: str) -> None:
    if typ == "region":
        reg.region = _parse_region(obj, where)
        return
    cls = _TYPES.get(typ)
    if cls is None:
        msg = f"registry: {where}: unknown type {typ!r} (one of region, {', '.join(_TYPES)})"
        raise SchemaError(msg)
    try:
        item = msgspec.convert(obj, cls)
    except msgspec.ValidationError as exc:
        msg = f"registry: {where}: {typ}: {exc}"
        raise SchemaError(msg) from exc
    if isinstance(item, District):
        reg.districts.append(item)
    else:
        getattr(reg, dict(_TYPED)[typ])[item.id] = item  # type: ignore[attr-defined]


def _load_file(path: Path) -> Registry:
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    reg = Registry()
    try:
        whole: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        whole = None  # JSON Lines (or broken: the lines say where)
    if isinstance(whole, dict) and "type" not in whole and set(whole) & _GROUPS:
        unknown = sorted(set(whole) - _GROUPS)
        if unknown:
            msg = f"registry: {path.name}: unknown key(s) {', '.join(unknown)} ({sorted(_GROUPS)})"
            raise SchemaError(msg)
        for group, items in whole.items():
            if group == "region":
                reg.region = _parse_region(items, f"{path.name} region")
            elif group == "districts" and isinstance(items, dict):
                reg.districts = parse_districts(items)
            elif not isinstance(items, list):
                msg = f"registry: {path.name}: {group} must be a list"
                raise SchemaError(msg)
            else:
                typ = group.removesuffix("s")
                for i, obj in enumerate(items):
                    _add(reg, typ, obj, f"{path.name} {group}[{i}]")
        return reg
    if isinstance(whole, list):
        rows: Iterable[tuple[str, Any]] = (
            (f"{path.name} item {i}", o) for i, o in enumerate(whole)
        )
    else:
        rows = _jsonl_rows(path.name, data)
    for where, obj in rows:
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            msg = f"registry: {where}: expected an object with a 'type' field"
            raise SchemaError(msg)
        body = {k: v for k, v in obj.items() if k != "type"}
        _add(reg, obj["type"], body, where)
    return reg


def _jsonl_rows(name: str, data: bytes) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {n}"
        try:
            yield where, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            msg = f"registry: {where}: invalid JSON ({exc})"
            raise SchemaError(msg) from exc


def region_for(explicit: Sequence[float] | None, registry: Registry) -> Region:
    """The region box a flow decodes with: ``explicit`` (the settings' ``region``) when
    given, else the registry's (explicit or derived, see :meth:`Registry.derived_region`).

    >>> reg = Registry(stations={"S": Station(id="S", lat=30.66, lon=104.03)})
    >>> r = region_for(None, reg)
    >>> (round(r.lat_min, 2), round(r.lat_max, 2), r.contains(30.7, 104.1))
    (30.39, 30.93, True)
    >>> try:
    ...     region_for(None, Registry())
    ... except ConfigError as exc:
    ...     print(str(exc)[:45])
    region: not set and the registry locates noth
    """
    box = tuple(explicit) if explicit is not None else registry.derived_region()
    if box is None:
        msg = (
            "region: not set and the registry locates nothing: set region = "
            "[lat_min, lat_max, lon_min, lon_max] in the settings (or CW_REGION), or give a "
            "registry with located stations/places/sites or a region entry"
        )
        raise ConfigError(msg)
    return Region(*box)

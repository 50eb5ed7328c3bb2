"""Reference data: what the city knows about its stations, places, zones, sites and vehicles.

The simulator writes a registry directory; flows load it at start and hand the parts to models.
Files (one JSON object per line, except the GeoJSON)::

    stations.jsonl      Station     air-quality stations (national and micro)
    places.jsonl        Place       registered enterprises, depots, fuel stations
    zones.jsonl         Zone        sensitive zones: school, hospital, residential, water
    sites.jsonl         Site        work sites with their cameras and meters
    vehicles.jsonl      Vehicle     registered hazmat vehicles
    districts.geojson               district outlines (FeatureCollection, properties.name)

Unregistered workshops are *not* here: they are the hidden truth, written by the simulator
next to its labels. Suspension orders are not here either: they arrive as ``order`` events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import orjson

from citywatch.errors import SchemaError
from citywatch.geo import point_in_polygon

__all__ = [
    "District",
    "Place",
    "Registry",
    "Site",
    "Station",
    "Vehicle",
    "Zone",
]


class Station(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    lat: float
    lon: float
    district: str = ""
    grid: str = ""
    kind: Literal["national", "micro"] = "micro"


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
    id: str
    plate: str
    un: str | None = None
    depot: str | None = None


class District(msgspec.Struct, frozen=True, kw_only=True):
    """A district and its outline: a list of rings of (lon, lat), the first one outer."""

    name: str
    code: str
    rings: tuple[tuple[tuple[float, float], ...], ...]

    def contains(self, lat: float, lon: float) -> bool:
        if not self.rings or not point_in_polygon(lat, lon, list(self.rings[0])):
            return False
        return not any(point_in_polygon(lat, lon, list(h)) for h in self.rings[1:])


T = TypeVar("T", bound=msgspec.Struct)


class Registry(msgspec.Struct, kw_only=True):
    """All reference data, indexed by id."""

    stations: dict[str, Station] = msgspec.field(default_factory=dict)
    places: dict[str, Place] = msgspec.field(default_factory=dict)
    zones: dict[str, Zone] = msgspec.field(default_factory=dict)
    sites: dict[str, Site] = msgspec.field(default_factory=dict)
    vehicles: dict[str, Vehicle] = msgspec.field(default_factory=dict)
    districts: list[District] = msgspec.field(default_factory=list)

    def district_of(self, lat: float, lon: float) -> str | None:
        """The name of the district containing the point, or None."""
        for d in self.districts:
            if d.contains(lat, lon):
                return d.name
        return None

    def site_of_camera(self) -> dict[str, str]:
        """camera id -> site id, for every camera registered at a site."""
        return {c: s.id for s in self.sites.values() for c in s.cameras}

    def site_of_meter(self) -> dict[str, str]:
        return {m: s.id for s in self.sites.values() for m in s.meters}

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
        (d / "districts.geojson").write_bytes(
            orjson.dumps(districts_geojson(self.districts), option=orjson.OPT_INDENT_2)
        )

    @classmethod
    def load(cls, directory: str | Path) -> Registry:
        """Read a registry directory; missing files give empty parts, bad lines raise."""
        d = Path(directory)
        if not d.is_dir():
            msg = f"registry: {str(d)!r} is not a directory"
            raise SchemaError(msg)
        reg = cls(
            stations={s.id: s for s in _read_jsonl(d / "stations.jsonl", Station)},
            places={p.id: p for p in _read_jsonl(d / "places.jsonl", Place)},
            zones={z.id: z for z in _read_jsonl(d / "zones.jsonl", Zone)},
            sites={s.id: s for s in _read_jsonl(d / "sites.jsonl", Site)},
            vehicles={v.id: v for v in _read_jsonl(d / "vehicles.jsonl", Vehicle)},
        )
        geo = d / "districts.geojson"
        if geo.exists():
            reg.districts = parse_districts(orjson.loads(geo.read_bytes()))
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

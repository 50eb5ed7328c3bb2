"""Three-tier command: the city centre, county (district) centres and town centres, over grids.

The platform we model runs one city centre, ten county/district centres and ~96 town (street)
centres over ~14,000 grids. This module holds what every part shares about that:

- :class:`Town` and :class:`Grid`, the reference data of the two lower tiers (in the registry);
- :class:`Locator`: a point -> its district, town and grid (grid ids, polygons, or the
  nearest town centre of the district, whichever the registry has);
- centres: ``city``, ``county:<district>``, ``town:<town id>``, and the chain a work order
  escalates along when it is overdue (town -> county -> city);
- which tier handles a rule by default (:data:`DEFAULT_RULE_TIERS`, overridable in settings).

>>> centre_id(Tier.TOWN, district="崇川区", town="T320602001")
'town:T320602001'
>>> escalation_chain("town:T320602001", district="崇川区")
['town:T320602001', 'county:崇川区', 'city']
>>> tier_for_rule("hotline.duplicate"), tier_for_rule("incident.correlated")
(<Tier.TOWN: 'town'>, <Tier.CITY: 'city'>)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from citywatch.geo import grid_cell, grid_id, haversine_m, point_in_polygon

__all__ = [
    "DEFAULT_RULE_TIERS",
    "Grid",
    "Location",
    "Locator",
    "Tier",
    "Town",
    "centre_id",
    "centre_tier",
    "escalation_chain",
    "in_scope",
    "is_centre_id",
    "parse_rule_tiers",
    "parse_tier_seconds",
    "route",
    "tier_for_rule",
]

Ring = tuple[tuple[float, float], ...]  # (lon, lat) pairs, as in GeoJSON


class Tier(enum.StrEnum):
    CITY = "city"
    COUNTY = "county"
    TOWN = "town"


class Town(msgspec.Struct, frozen=True, kw_only=True):
    """A town or street (镇/街道): the lowest tier with a command centre."""

    id: str
    name: str
    district: str
    lat: float
    lon: float
    #: The outline, rings of (lon, lat), the first outer; may be empty (then: nearest centre).
    rings: tuple[Ring, ...] = ()


class Grid(msgspec.Struct, frozen=True, kw_only=True):
    """A grid (网格): the cell one grid worker covers; ``town`` is its town's id."""

    id: str
    town: str
    district: str = ""
    lat: float
    lon: float
    rings: tuple[Ring, ...] = ()


@dataclass(frozen=True, slots=True)
class Location:
    district: str | None = None
    town: str | None = None
    grid: str | None = None


#: Rule (or rule family, ending with ".") -> the tier whose centre gets its work orders.
#: Local, quick problems go to the town; technical ones (a faulty analyser, a truck) to the
#: county's bureaus; what spans districts or sources to the city.
DEFAULT_RULE_TIERS: Final[Mapping[str, Tier]] = {
    "hotline.": Tier.TOWN,
    "worksite.": Tier.TOWN,
    "vehicle.": Tier.COUNTY,
    "air.": Tier.COUNTY,
    "air.episode": Tier.CITY,
    "water.": Tier.COUNTY,
    "incident.": Tier.CITY,
}


def tier_for_rule(rule: str, table: Mapping[str, Tier] = DEFAULT_RULE_TIERS) -> Tier:
    """The tier that handles ``rule``: an exact entry, else its family (``air.``), else city."""
    if rule in table:
        return table[rule]
    family = rule.split(".", 1)[0] + "."
    return table.get(family, Tier.CITY)


def centre_id(tier: Tier, *, district: str | None = None, town: str | None = None) -> str:
    """The id of the centre of ``tier`` for a place; a missing lower level falls upwards."""
    if tier is Tier.TOWN and town:
        return f"town:{town}"
    if tier in (Tier.TOWN, Tier.COUNTY) and district:
        return f"county:{district}"
    return "city"


def centre_tier(centre: str) -> Tier:
    """The tier of a centre id (``city``, ``county:...``, ``town:...``)."""
    return Tier(centre.split(":", 1)[0]) if ":" in centre else Tier.CITY


def escalation_chain(centre: str, *, district: str | None) -> list[str]:
    """``centre`` and the centres above it, in the order an overdue order climbs."""
    chain = [centre]
    if centre.startswith("town:") and district:
        chain.append(f"county:{district}")
    if chain[-1] != "city":
        chain.append("city")
    return chain


def route(
    rule: str,
    *,
    district: str | None,
    town: str | None,
    table: Mapping[str, Tier] = DEFAULT_RULE_TIERS,
) -> str:
    """The centre a work order belongs to by rule and place (before any escalation).

    >>> route("hotline.duplicate", district="崇川区", town="T32060201")
    'town:T32060201'
    >>> route("air.spike", district="崇川区", town="T32060201"), route("air.spike", district=None,
    ...     town=None)
    ('county:崇川区', 'city')
    """
    return centre_id(tier_for_rule(rule, table), district=district, town=town)


def is_centre_id(text: str) -> bool:
    """Whether ``text`` has the form of a centre id (``city``, ``county:X``, ``town:X``)."""
    if text == "city":
        return True
    kind, sep, rest = text.partition(":")
    return bool(sep) and kind in ("county", "town") and bool(rest.strip()) and rest == rest.strip()


def in_scope(centre: str, scope: str, *, district: str | None) -> bool:
    """Whether an order owned by ``centre`` (in ``district``) is in the queues ``scope`` sees:
    the city sees every centre, a county its own and its district's towns, a town its own.

    >>> [in_scope(c, "county:崇川区", district="崇川区") for c in ("county:崇川区", "town:T1",
    ...     "city", "county:海门区")]
    [True, True, False, False]
    >>> in_scope("town:T1", "town:T1", district=None), in_scope("town:T1", "city", district=None)
    (True, True)
    """
    if not scope or scope == "city" or centre == scope:
        return True
    if scope.startswith("county:") and centre.startswith("town:"):
        return district == scope[len("county:") :]
    return False


def parse_rule_tiers(entries: Iterable[str]) -> dict[str, Tier]:
    """``["hotline.=county", "air.episode=city"]`` -> the rule table with these overrides over
    :data:`DEFAULT_RULE_TIERS`. Raises ValueError naming the bad entry.

    >>> parse_rule_tiers(["hotline.=county"])["hotline."]
    <Tier.COUNTY: 'county'>
    """
    table = dict(DEFAULT_RULE_TIERS)
    for entry in entries:
        rule, sep, tier = (x.strip() for x in entry.partition("="))
        if not sep or not rule or tier not in _TIERS:
            msg = f"{entry!r} is not rule=tier (tier one of {', '.join(_TIERS)})"
            raise ValueError(msg)
        table[rule] = Tier(tier)
    return table


def parse_tier_seconds(entries: Iterable[str]) -> dict[Tier, float]:
    """``["town=900", "county=1800"]`` -> {Tier.TOWN: 900.0, ...}; ValueError on a bad entry.

    >>> parse_tier_seconds(["town=900", "city = 3600"])
    {<Tier.TOWN: 'town'>: 900.0, <Tier.CITY: 'city'>: 3600.0}
    """
    out: dict[Tier, float] = {}
    for entry in entries:
        tier, sep, value = (x.strip() for x in entry.partition("="))
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or tier not in _TIERS or not 0 < seconds < float("inf"):
            msg = f"{entry!r} is not tier=seconds (tier one of {', '.join(_TIERS)}, seconds > 0)"
            raise ValueError(msg)
        out[Tier(tier)] = seconds
    return out


_TIERS: Final = tuple(t.value for t in Tier)


class Locator:
    """Point -> :class:`Location` from the registry's districts, towns and grids.

    Grids: by polygon when they have outlines (bucketed by lattice cell), else by the city
    lattice id (:func:`citywatch.geo.grid_id`) when those ids are registered. Town: the
    grid's town, else the town polygon holding the point, else the nearest town centre of
    the point's district. District: the grid's, else the district polygon's.
    """

    def __init__(
        self,
        districts: Iterable[tuple[str, tuple[Ring, ...]]],
        towns: Mapping[str, Town],
        grids: Mapping[str, Grid],
    ) -> None:
        self.districts = [(name, rings) for name, rings in districts if rings]
        self.towns = towns
        self.grids = grids
        self._towns_of: dict[str, list[Town]] = {}
        for t in towns.values():
            self._towns_of.setdefault(t.district, []).append(t)
        self._buckets: dict[tuple[int, int], list[Grid]] = {}
        for g in grids.values():
            if g.rings:
                for cell in _cells(g.rings[0]):
                    self._buckets.setdefault(cell, []).append(g)

    def locate(self, lat: float, lon: float) -> Location:
        grid = self._grid(lat, lon)
        if grid is not None:
            return Location(grid.district or self._district(lat, lon), grid.town, grid.id)
        district = self._district(lat, lon)
        return Location(district, self._town(lat, lon, district), None)

    def _grid(self, lat: float, lon: float) -> Grid | None:
        if self._buckets:
            for g in self._buckets.get(grid_cell(lat, lon), ()):
                if _inside(lat, lon, g.rings):
                    return g
            return None
        return self.grids.get(grid_id(lat, lon))

    def _district(self, lat: float, lon: float) -> str | None:
        for name, rings in self.districts:
            if _inside(lat, lon, rings):
                return name
        return None

    def _town(self, lat: float, lon: float, district: str | None) -> str | None:
        cands = self._towns_of.get(district or "", []) if district else list(self.towns.values())
        for t in cands:
            if t.rings and _inside(lat, lon, t.rings):
                return t.id
        if not cands or district is None:  # outside every district: no nearest guess
            return None
        return min(cands, key=lambda t: haversine_m(lat, lon, t.lat, t.lon)).id


def _inside(lat: float, lon: float, rings: tuple[Ring, ...]) -> bool:
    if not rings or not point_in_polygon(lat, lon, list(rings[0])):
        return False
    return not any(point_in_polygon(lat, lon, list(h)) for h in rings[1:])


def _cells(ring: Ring) -> Iterable[tuple[int, int]]:
    """The lattice cells a ring's bounding box touches (for the bucket index)."""
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    r0, c0 = grid_cell(min(lats), min(lons))
    r1, c1 = grid_cell(max(lats), max(lons))
    span = max(r1 - r0, c1 - c0)
    if span > 200:  # a huge polygon is no grid: bucket nothing
        return ()
    return ((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))

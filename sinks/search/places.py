"""Where documents are, for search: place tokens, and the registry's place names.

Callers name one place in many ways: one says 琅晖公寓, the next 解放路194号, a third the
market across the road. So besides its words, each document is indexed with **place tokens**
(:func:`place_text`): the cell of a ~400 m grid it lies in (from its coordinates), its town
and its district. Search uses them two ways:

- a query word that is a place name of the registry (:class:`Gazetteer`: exactly, or a town
  without its 街道/镇) also matches documents *at* the place: within :data:`NEAR_M` of a
  community or landmark, :data:`ROAD_M` of a road's centre line, or placed in the town or
  district. A name at more than :data:`MAX_SPOTS` spots (人民路 in every town) places nothing;
- documents near the ones that matched (another caller at the same place) rank first among
  those with only some of the words (:mod:`sinks.search.engine`).

>>> from citywatch.registry import Locality, Registry
>>> from citywatch.tiers import Town
>>> reg = Registry(
...     towns={"T1": Town(id="T1", name="如城街道", district="如皋市", lat=32.4, lon=120.6)},
...     localities={"C1": Locality(id="C1", name="琅晖公寓", kind="community", lat=32.39,
...                                lon=120.57, district="如皋市", town="T1")})
>>> g = Gazetteer.from_registry(reg)
>>> g.get("琅晖公寓").holds(place_text(32.392, 120.571, "", ""))
True
>>> g.get("如城").holds(place_text(None, None, "T1", "如皋市"))
True
>>> g.get("噪声") is None
True
>>> g.names_in("住在琅晖公寓3栋，如城街道")
['琅晖公寓']
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from citywatch.geo import offset
from citywatch.registry import Registry
from sinks.search.tokens import simplified

__all__ = [
    "CELL_DEG",
    "MAX_SPOTS",
    "NEAR_M",
    "ROAD_M",
    "Gazetteer",
    "Place",
    "cells_near",
    "place_text",
]

#: The grid of place tokens: cells of this many degrees (about 440 m north-south, 380 m
#: east-west at 32°N). Changing it changes the index (its schema version).
CELL_DEG: Final = 0.004
#: A document within this distance of a community, a landmark or a found document is near.
NEAR_M: Final = 500.0
#: ... and within this distance of a road's centre line is on it.
ROAD_M: Final = 300.0
#: A name at more spots than this is too common to place anything (a plain word).
MAX_SPOTS: Final = 12
#: A place covering more cells than this is placed by its town and district only.
MAX_CELLS: Final = 400
_TOWN_SUFFIXES: Final = ("镇街道", "街道", "镇", "乡")
_NOT_ALNUM: Final = re.compile(r"[^0-9a-z]+")
#: Longest place name :meth:`Gazetteer.names_in` finds.
_MAX_NAME: Final = 10


def _cell(lat: float, lon: float) -> str:
    return f"c{math.floor((lat + 90.0) / CELL_DEG)}x{math.floor((lon + 180.0) / CELL_DEG)}"


def _town_token(town: str) -> str:
    return "tn" + _NOT_ALNUM.sub("", town.lower())


def _district_token(district: str) -> str:
    return "dn" + "".join(simplified(district).split())


def place_text(lat: float | None, lon: float | None, town: str, district: str) -> str:
    """The place tokens of a document (its cell, town and district), space separated.

    >>> place_text(32.0, 120.8, "T-01", "崇川区")
    'c30500x75200 tnt01 dn崇川区'
    """
    out = []
    if lat is not None and lon is not None and math.isfinite(lat) and math.isfinite(lon):
        out.append(_cell(lat, lon))
    if town:
        out.append(_town_token(town))
    if district:
        out.append(_district_token(district))
    return " ".join(out)


def _box(lat: float, lon: float, metres: float) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) of the square ``metres`` around a point."""
    north, east = offset(lat, lon, metres, metres)
    return (2 * lat - north, north, 2 * lon - east, east)


def _cells_in(lat0: float, lat1: float, lon0: float, lon1: float) -> list[str]:
    r0, r1 = math.floor((lat0 + 90.0) / CELL_DEG), math.floor((lat1 + 90.0) / CELL_DEG)
    c0, c1 = math.floor((lon0 + 180.0) / CELL_DEG), math.floor((lon1 + 180.0) / CELL_DEG)
    if (r1 - r0 + 1) * (c1 - c0 + 1) > MAX_CELLS:
        return []
    return [f"c{r}x{c}" for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def cells_near(lat: float, lon: float, metres: float = NEAR_M) -> list[str]:
    """The cell tokens within about ``metres`` of a point (the cells its box touches).

    >>> cells_near(32.0, 120.8, 100.0)
    ['c30499x75199', 'c30499x75200', 'c30500x75199', 'c30500x75200']
    """
    return _cells_in(*_box(lat, lon, metres))


def _line_cells(line: Iterable[tuple[float, float]], metres: float) -> list[str]:
    """The cells within ``metres`` of a centre line of (lon, lat) points."""
    out: list[str] = []
    for (lon0, lat0), (lon1, lat1) in itertools.pairwise(line):
        a = _box(min(lat0, lat1), min(lon0, lon1), metres)
        b = _box(max(lat0, lat1), max(lon0, lon1), metres)
        out += _cells_in(a[0], b[1], a[2], b[3])
    return out


@dataclass(frozen=True, slots=True)
class Place:
    """Where a place name is, as place tokens: cells, or its town or district."""

    tokens: frozenset[str]

    def holds(self, place: str) -> bool:
        """Whether a document with place tokens ``place`` (:func:`place_text`) is here."""
        return any(t in self.tokens for t in place.split())


@dataclass(slots=True)
class Gazetteer:
    """Place name (simplified, lower case) -> :class:`Place`."""

    places: dict[str, Place] = field(default_factory=dict)
    #: Names with spots (roads, communities, landmarks), for :meth:`names_in`.
    spots: frozenset[str] = frozenset()

    @classmethod
    def from_registry(cls, reg: Registry) -> Gazetteer:
        cells: dict[str, list[list[str]]] = {}
        towns: dict[str, set[str]] = {}

        def key(name: str) -> str:
            return simplified(name).strip().lower()

        for d in reg.districts:
            towns.setdefault(key(d.name), set()).add(_district_token(d.name))
        for t in reg.towns.values():
            for name in {t.name, _short(t.name)}:
                towns.setdefault(key(name), set()).add(_town_token(t.id))
        for x in reg.localities.values():
            if x.kind == "town":
                spot = _cells_in(*_box(x.lat, x.lon, 4 * NEAR_M))
            elif x.kind == "road" and len(x.line) >= 2:
                spot = _line_cells(x.line, ROAD_M)
            else:
                spot = cells_near(x.lat, x.lon, NEAR_M)
            for name in {x.name, *x.aliases}:
                if len(key(name)) >= 2 and spot:
                    cells.setdefault(key(name), []).append(spot)
        places: dict[str, Place] = {}
        for name in {*cells, *towns}:
            spots = cells.get(name, [])
            toks = set(towns.get(name, ()))
            if len(spots) <= MAX_SPOTS:
                toks.update(c for s in spots for c in s)
            if 0 < len(toks) <= 4 * MAX_CELLS:
                places[name] = Place(frozenset(toks))
        named = frozenset(n for n, s in cells.items() if len(s) <= MAX_SPOTS and n in places)
        return cls(places, named)

    def get(self, word: str) -> Place | None:
        """The place ``word`` names (as typed; folded like the index), or None."""
        return self.places.get(simplified(word).strip().lower())

    def names_in(self, text: str) -> list[str]:
        """The names of roads, communities and landmarks in ``text`` (simplified, lower
        case), longest first where they overlap, in order."""
        t = simplified(text).lower()
        out: list[str] = []
        i = 0
        while i < len(t) - 1:
            for n in range(min(_MAX_NAME, len(t) - i), 1, -1):
                if t[i : i + n] in self.spots:
                    out.append(t[i : i + n])
                    i += n - 1
                    break
            i += 1
        return list(dict.fromkeys(out))

    def __len__(self) -> int:
        return len(self.places)


def _short(town: str) -> str:
    """How people say a town: 城东街道 -> 城东, 西亭镇 -> 西亭 (two characters at least)."""
    for suffix in _TOWN_SUFFIXES:
        if town.endswith(suffix) and len(town) - len(suffix) >= 2:
            return town[: -len(suffix)]
    return town

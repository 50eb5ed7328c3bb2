"""Stays in a vehicle's fixes, the simple way the simulator tests look for them."""

from __future__ import annotations

from collections.abc import Iterator

from citywatch.events import Gps
from citywatch.geo import haversine_m


def stays(fixes: list[Gps], within_m: float) -> Iterator[tuple[Gps, Gps]]:
    """(first, last) fix of each run of fixes within ``within_m`` of the run's first fix."""
    i = 0
    while i < len(fixes):
        j = i
        a = fixes[i]
        while (
            j + 1 < len(fixes)
            and haversine_m(a.lat, a.lon, fixes[j + 1].lat, fixes[j + 1].lon) < within_m
        ):
            j += 1
        yield a, fixes[j]
        i = j + 1

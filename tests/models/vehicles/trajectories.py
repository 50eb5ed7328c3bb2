"""Trajectory helpers for the vehicle tests: crafted and generated fixes, a batch reference."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from citywatch.geo import haversine_m, offset

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
LAT0, LON0 = 32.0, 120.9

Fix = tuple[int, float, float]


@dataclass(frozen=True)
class RefStop:
    start_ms: int
    confirm_ms: int
    end_ms: int | None
    closed_by: str
    n_fixes: int
    lat: float
    lon: float


def reference_stops(
    fixes: list[Fix],
    radius_m: float,
    min_s: float,
    gap_s: float,
    *,
    drop_outliers: bool = True,
    sleep_s: float = 0.0,
    learn: bool = True,
) -> list[RefStop]:
    """Batch stay points: greedy segments of fixes within R of the segment's first fix.

    Written independently of the detector: whole-trajectory scans, haversine distances.
    Out-of-order and duplicate fixes (ts <= the newest kept) are dropped first. With
    ``drop_outliers`` a fix outside R is skipped when the next fix (within S of it) is back
    within R. A segment at the end of the data that is a stop is reported as closed by "flush"
    at its last fix.

    Terminals that sleep: E (``sleep_s``, learned upwards with ``learn``) is how long the
    terminal may be silent while the vehicle stands; S = 2E + G. A silence of more than S
    ends a segment ("gap", at its last fix + E) unless the segment is not a stop yet and the
    fix after it is back within R (and the silence is at most an hour + G): then E becomes the
    silence and the segment goes on. A silence of 4 minutes or more ending within R teaches E
    either way. A segment that is left after a silence ends no later than max(E, G) after its
    last fix.
    """
    clean: list[Fix] = []
    for f in fixes:
        if not clean or f[0] > clean[-1][0]:
            clean.append(f)
    out: list[RefStop] = []
    n = len(clean)
    min_ms, gap_ms = round(min_s * 1000), round(gap_s * 1000)
    sleep_ms, max_ms = round(sleep_s * 1000), 3_600_000

    def near(a: int, b: int) -> bool:
        return haversine_m(clean[a][1], clean[a][2], clean[b][1], clean[b][2]) <= radius_m

    i = 0
    while i < n:
        members = [i]
        j = i + 1
        by = "flush"
        learned = sleep_ms
        while j < n:
            allowed = gap_ms + 2 * sleep_ms
            silence = clean[j][0] - clean[members[-1]][0]
            if silence > allowed:
                standing = near(i, j)
                is_stop = clean[members[-1]][0] - clean[i][0] >= min_ms
                if standing and learn and not is_stop and silence <= max_ms + gap_ms:
                    sleep_ms = max(sleep_ms, min(max_ms, silence))
                    allowed = gap_ms + 2 * sleep_ms
                else:
                    by = "gap"
                    if standing and learn:
                        learned = max(sleep_ms, min(max_ms, silence))
                    break
            if near(i, j):
                if learn and silence >= 240_000:
                    sleep_ms = max(sleep_ms, min(max_ms, silence))
                members.append(j)
            elif (
                drop_outliers
                and j + 1 < n
                and clean[j + 1][0] - clean[j][0] <= allowed
                and near(i, j + 1)
            ):
                pass  # a one-fix excursion
            else:
                by = "left"
                break
            j += 1
        seg = [clean[k] for k in members]
        if seg[-1][0] - seg[0][0] >= min_ms:
            confirm = next(f[0] for f in seg if f[0] - seg[0][0] >= min_ms)
            if by == "left":
                end = min(clean[j][0], seg[-1][0] + max(sleep_ms, gap_ms))
            else:
                end = seg[-1][0] + (sleep_ms if by == "gap" else 0)
            lat = sum(f[1] for f in seg) / len(seg)
            lon = sum(f[2] for f in seg) / len(seg)
            out.append(RefStop(seg[0][0], confirm, end, by, len(seg), lat, lon))
        sleep_ms = max(sleep_ms, learned)
        i = j
    return out


def generate(seed: int, n_legs: int = 12) -> list[Fix]:
    """A truck's day: drives (10 s fixes, 20-70 km/h) and stops (jitter, outliers), with gaps,
    crawling, stops right on the radius, duplicate and out-of-order fixes."""
    rng = random.Random(seed)
    fixes: list[Fix] = []
    t = T0
    lat, lon = LAT0 + rng.uniform(-0.2, 0.2), LON0 + rng.uniform(-0.2, 0.2)
    heading = rng.uniform(0, 2 * math.pi)
    for _ in range(n_legs):
        # drive
        speed = rng.uniform(20, 70) / 3.6
        for _ in range(rng.randint(3, 60)):
            heading += rng.gauss(0, 0.3)
            lat, lon = offset(
                lat, lon, 10 * speed * math.cos(heading), 10 * speed * math.sin(heading)
            )
            t += 10_000 + rng.randint(-500, 500)
            fixes.append((t, lat, lon))
        # stop
        kind = rng.random()
        sigma = rng.choice([3.0, 8.0, 20.0, 45.0])
        dur = rng.choice([30, 120, 170, 180, 190, 600, 1800, 5400])
        steps = dur // 10
        for k in range(steps):
            t += 10_000 if kind > 0.1 else rng.randint(1_000, 60_000)
            if kind < 0.15 and k == steps // 2:
                t += rng.choice([300_000, 600_000, 601_000, 900_000, 3_600_000])  # a gap
            n_m, e_m = rng.gauss(0, sigma), rng.gauss(0, sigma)
            if rng.random() < 0.02:
                n_m += rng.choice([-1, 1]) * rng.uniform(100, 400)  # multipath outlier
            if kind > 0.9:  # crawling in a queue
                n_m += 4.0 * k
            fixes.append((t, *offset(lat, lon, n_m, e_m)))
    # duplicates and out-of-order deliveries
    for _ in range(len(fixes) // 50):
        k = rng.randrange(1, len(fixes))
        if rng.random() < 0.5:
            fixes.insert(k, fixes[k - 1])
        else:
            fixes[k - 1], fixes[k] = fixes[k], fixes[k - 1]
    return fixes


def at(dt_s: float, north_m: float = 0.0, east_m: float = 0.0) -> Fix:
    """A fix ``dt_s`` after T0, offset from (LAT0, LON0) in metres."""
    lat, lon = offset(LAT0, LON0, north_m, east_m)
    return (T0 + round(dt_s * 1000), lat, lon)

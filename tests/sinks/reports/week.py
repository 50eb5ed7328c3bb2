"""A simulated fortnight in Redis, written through the real sink: alerts of every rule (with
the evidence the models give), hotline tickets, hourly AQI observations, and the officers'
work on the alerts applied through the real state machine.

Two weeks, so every figure has a previous period to compare with: the week before
``WEEK`` and ``WEEK`` itself (Monday 2026-11-02 00:00 +08:00).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import redis

from citywatch.alerts import (
    Alert,
    AlertState,
    Level,
    Observation,
    Subject,
    episode_id,
    fingerprint,
)
from citywatch.events import Hotline
from citywatch.registry import Registry, Zone
from citywatch.settings import Settings
from simulators.geography import Geography
from simulators.officers import simulate_officers
from simulators.towns import build_towns
from sinks.redis_sink import RedisSink, TicketRecord

H = 3_600_000
DAY = 24 * H
#: Monday 2026-11-02 00:00 Asia/Shanghai.
WEEK = 1_793_548_800_000
START = WEEK - 7 * DAY
END = WEEK + 7 * DAY
DISTRICTS = ("崇川区", "通州区", "海门区", "如皋市")


def registry() -> Registry:
    """The simulated Nantong districts and towns, and the zones the dwell alerts name."""
    towns = {t.id: t for t in build_towns()}
    zones = {
        f"ZN{i:05d}": Zone(
            id=f"ZN{i:05d}", name=f"第{i}小学", lat=32.0, lon=120.9, category="school"
        )
        for i in range(1, 6)
    }
    return Registry(districts=list(Geography().districts), towns=towns, zones=zones)


def _places() -> list[tuple[str, str, float, float]]:
    """(district, town id, lat, lon): the first two towns of each district, at their centre."""
    out = []
    for d in DISTRICTS:
        towns = [t for t in build_towns() if t.district == d][:2]
        out += [(d, t.id, t.lat, t.lon) for t in towns]
    return out


def _alert(
    rule: str,
    kind: str,
    sid: str,
    first: int,
    hours: float,
    level: Level,
    place: tuple[str, str, float, float],
    evidence: dict[str, Any],
    *,
    firing: bool = False,
) -> Alert:
    subject = Subject(kind, sid)
    fp = fingerprint(rule, subject)
    district, town, lat, lon = place
    return Alert(
        id=episode_id(fp, first),
        fingerprint=fp,
        rule=rule,
        level=level,
        state=AlertState.FIRING if firing else AlertState.RESOLVED,
        subject=subject,
        first_ts=first,
        last_ts=first + int(hours * H),
        lat=lat,
        lon=lon,
        district=district,
        town=town,
        title=rule,
        evidence=evidence,
        score=0.5,
    )


def alerts(week_start: int, rng: random.Random, busy: float) -> list[Alert]:
    """One week of alerts of every rule; ``busy`` scales how many."""
    places = _places()
    out: list[Alert] = []

    def at(day: int, hour: float) -> int:
        return week_start + day * DAY + int(hour * H)

    def n(k: int) -> int:
        return max(1, round(k * busy))

    for i in range(n(2)):
        d = DISTRICTS[i % len(DISTRICTS)]
        place = (d, "", 0.0, 0.0)
        out.append(
            _alert("air.episode", "district", d, at(1 + 2 * i, 8), 10 + 3 * i, Level.ORANGE,
                   place, {"stations": 3, "share_elevated": 0.67, "median_ratio": 1.8})
        )  # fmt: skip
    for i, rule in enumerate(("air.stuck", "air.range", "air.drift", "air.stuck")[: n(4)]):
        sid = f"ST{i % 3 + 1:05d}"
        ev = {"channels": ["pm25"]} if rule != "air.drift" else {"log_ratio_shift": 0.3}
        out.append(_alert(rule, "station", sid, at(i, 3), 2 + i * 1.5, Level.BLUE, places[i], ev))
    for i in range(n(5)):
        out.append(
            _alert("air.exceedance", "station", f"ST{i + 1:05d}", at(i % 7, 12), 2, Level.YELLOW,
                   places[i % len(places)], {"aqi": 120 + i, "category": "轻度污染"})
        )  # fmt: skip
    for i in range(n(2)):
        out.append(
            _alert("air.spike", "station", f"ST{i + 4:05d}", at(i + 2, 15), 1, Level.ORANGE,
                   places[i], {"pm25": 160.0, "excess_ugm3": 90.0, "z": 4.1})
        )  # fmt: skip
    contexts = ("school", "water", "residential", "hospital", "unregistered")
    for i in range(n(8)):
        vid = f"HV{i % 5 + 1:05d}"  # 8 alerts over 5 vehicles: some repeat
        ctx = contexts[i % len(contexts)]
        ev: dict[str, Any] = {"context": ctx, "dwell_s": 1200.0 + 300 * i, "un": "1203"}
        if ctx != "unregistered":
            ev["ref"] = f"ZN{i % 5 + 1:05d}"
        lvl = (Level.RED, Level.ORANGE, Level.YELLOW)[i % 3]
        d, town, lat, lon = places[i % len(places)]
        out.append(
            _alert("vehicle.dwell", "vehicle", vid, at(i % 7, 10 + i), 0.5, lvl,
                   (d, town, lat + 0.01 * i, lon), ev)
        )  # fmt: skip
    for i in range(n(2)):
        vids = [f"HV{k:05d}" for k in range(i + 1, i + 4)]
        out.append(
            _alert("vehicle.workshop", "spot", f"spot-{i + 1}", at(2 + i, 9), 30, Level.YELLOW,
                   places[-1 - i], {"rank": i + 1, "vehicles": 3, "visits": 3 + i,
                   "dwell_s": 16000.0, "first_ms": at(0, 9), "last_ms": at(3, 9),
                   "vehicle_ids": vids}, firing=i == 0)
        )  # fmt: skip
    for i in range(n(4)):
        night = i % 2 == 1
        out.append(
            _alert("worksite.resumption", "site", f"SITE{i % 3 + 1:05d}",
                   at(i, 23 if night else 10), 3, Level.ORANGE if night else Level.YELLOW,
                   places[(2 * i) % len(places)],
                   {"channels": ["video_persistence", "power"] if night else ["power"],
                    "night": night, "complaints": 2 if night else 0})
        )  # fmt: skip
    out.append(
        _alert("hotline.surge", "district", f"{DISTRICTS[0]}/odor", at(3, 14), 2, Level.ORANGE,
               (DISTRICTS[0], "", 0.0, 0.0), {"count": 10, "expected": 0.5, "p_value": 1e-9,
               "window_s": 7200, "district": DISTRICTS[0], "category": "odor"})
    )  # fmt: skip
    for i in range(n(3)):
        out.append(
            _alert("hotline.duplicate", "ticket", f"T{week_start}{i}", at(i + 1, 11), 4,
                   Level.YELLOW, places[i], {"size": 3 + i, "category": "noise",
                   "similarity": 0.8, "first_ts": at(i + 1, 9)})
        )  # fmt: skip
    return out


def tickets(week_start: int, rng: random.Random, per_day: int) -> list[Hotline]:
    places = _places()
    cats = ("noise", "odor", "garbage", "traffic", "construction", "water")
    out = []
    for day in range(7):
        for k in range(per_day):
            _d, _town, lat, lon = places[rng.randrange(len(places))]
            ts = week_start + day * DAY + rng.randrange(DAY)
            out.append(
                Hotline(
                    ts=ts,
                    ticket=f"{ts}{k:03d}",
                    text="小区附近夜间噪声扰民",
                    category=cats[rng.randrange(len(cats))],
                    lat=lat + rng.uniform(-0.004, 0.004),
                    lon=lon + rng.uniform(-0.004, 0.004),
                    grid=None,
                )
            )
    return out


def hourly(week_start: int, rng: random.Random, base: float) -> list[Observation]:
    """12 stations (3 per district), one AQI per station per hour."""
    out = []
    places = _places()
    for s in range(12):
        d, _, lat, lon = places[(s // 3) * 2]
        for h in range(7 * 24):
            aqi = max(10, round(base + 40 * ((h % 24) in range(7, 10)) + rng.gauss(0, 20)))
            level = 1 + sum(aqi > x for x in (50, 100, 150, 200, 300))
            out.append(
                Observation(
                    "air.hourly",
                    Subject("station", f"ST{s + 1:05d}"),
                    week_start + h * H,
                    {
                        "aqi": aqi,
                        "level": level,
                        "category": "",
                        "primary": ["pm25"] if aqi > 50 else [],
                        "pm25": aqi * 0.7,
                    },
                    lat=lat,
                    lon=lon,
                    district=d,
                )
            )
    return out


def write_fortnight(
    settings: Settings, *, observations: bool = True, seed: int = 7
) -> dict[str, Any]:
    """Write the fortnight into ``settings``' Redis; returns what was written."""
    rng = random.Random(seed)
    url = settings.redis_url or ""
    part = RedisSink(url, settings.keys, run_id="week").build("out", 0, 1)
    items: list[Any] = []
    written: list[Alert] = []
    for start, busy, per_day, base in ((START, 0.6, 20, 55.0), (WEEK, 1.0, 30, 70.0)):
        written += alerts(start, rng, busy)
        items += [TicketRecord(t) for t in tickets(start, rng, per_day)]
        if observations:
            items += hourly(start, rng, base)
    items += written
    for i in range(0, len(items), 2000):
        part.write_batch(items[i : i + 2000])  # type: ignore[attr-defined]
    part.close()  # type: ignore[attr-defined]
    client = redis.Redis.from_url(url)
    client.hset(settings.keys.counts, "watermark_ms", END - 60_000)
    client.close()
    actions = simulate_officers([a.to_dict() for a in written], seed=seed, until_ms=END - 60_000)
    from citywatch.commands.officers import apply_actions

    done = asyncio.run(apply_actions(settings, actions, until_ms=END - 60_000))
    return {"alerts": written, "actions": actions, "applied": done}

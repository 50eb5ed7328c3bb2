"""12345 hotline tickets: Chinese complaint texts from templates per category, with places.

Background tickets arrive with the day's rhythm (few at night, peaks late morning and
afternoon; noise complaints shift to the evening), spread over the city with the population.
Background tickets never accidentally duplicate one another: a ticket drawn within 1.5 km and
3 hours of another of the same category is moved. So every real duplicate is a planned one:

- duplicate clusters: several callers (one sometimes calling twice) report one incident within
  minutes to an hour, in other words (other templates, other details) and naming the place
  differently ("幸福小区3栋", "人民路与工农路交叉口", "金沙幸福小区东门"), with 30-300 m of
  place jitter;
- hard negatives (not duplicates): same place, other problem; same problem, other place 3+ km
  away, at the same time and in similar words;
- surges: many tickets of one category in one district within an hour or two, at distinct places.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from citywatch.events import Hotline, encode
from citywatch.geo import grid_id, haversine_m, offset
from simulators.city import City
from simulators.clock import DAY_MS, HOUR_MS, MINUTE_MS, TZ, local_hour, weekday
from simulators.seeds import derive, entity_hash, py_rng
from simulators.stream import Chunk

__all__ = ["CATEGORIES", "HotlineStream", "Poi", "Ticket", "TicketWriter"]

#: Category code -> Chinese name (the ``category`` field carries the code).
CATEGORIES: Final[dict[str, str]] = {
    "noise": "噪声扰民",
    "odor": "异味废气",
    "garbage": "垃圾清运",
    "traffic": "交通秩序",
    "construction": "施工扬尘",
    "water": "供水问题",
    "vending": "占道经营",
    "streetlight": "路灯故障",
}
_SHARES: Final = {
    "noise": 0.2,
    "garbage": 0.15,
    "traffic": 0.12,
    "construction": 0.12,
    "odor": 0.08,
    "water": 0.1,
    "vending": 0.13,
    "streetlight": 0.1,
}
_HOURLY: Final = (
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.2,
    0.4,
    0.7,
    0.95,
    1.0,
    1.0,
    0.9,
    0.7,
    0.85,
    0.95,
    1.0,
    0.95,
    0.85,
    0.75,
    0.75,
    0.7,
    0.55,
    0.4,
    0.25,
)
_SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "src": ("广场舞音响", "夜间施工机械", "餐饮店排风机", "装修电钻", "KTV音乐", "货车装卸"),
    "time": ("每天晚上", "凌晨两三点", "今晚十点以后", "一大早六点", "这几天", "刚才"),
    "smell": ("化工异味", "刺鼻的气味", "臭鸡蛋味", "油漆味", "烧塑料的味道"),
    "feeling": ("头晕恶心", "呛得喘不过气", "窗户都不敢开", "眼睛刺痛", "孩子咳嗽"),
    "days": ("两", "三", "好几", "四五"),
}
TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "noise": (
        "{place}{time}有{src}噪音，声音很大，严重影响休息，请相关部门尽快处理。",
        "反映{place}附近{src}噪声扰民，{time}一直吵，老人小孩都睡不着。",
        "来电人称{place}{src}太吵了，{time}还在响，希望管一管。",
        "{place}{src}噪音扰民问题，{time}持续，多次反映未解决，要求处理。",
    ),
    "odor": (
        "{place}附近闻到一股{smell}，{feeling}，怀疑有企业偷排，请环保部门查看。",
        "来电反映{place}空气中有{smell}，{feeling}，已经持续一段时间了。",
        "{place}{time}有刺鼻{smell}，{feeling}，请尽快派人检查。",
        "市民反映{place}周边{smell}很重，{feeling}，不知道哪里排出来的。",
    ),
    "garbage": (
        "{place}垃圾{days}天没人清运，堆成小山，臭气熏天。",
        "反映{place}的垃圾桶满了没人收，周边卫生很差。",
        "{place}有人乱倒建筑垃圾，影响通行，请处理。",
    ),
    "traffic": (
        "{place}{time}堵车严重，红绿灯时间不合理，建议调整。",
        "来电称{place}路口车辆乱停乱放，造成拥堵。",
        "{place}信号灯坏了，路口很乱，容易出事故。",
    ),
    "construction": (
        "{place}工地扬尘很大，没有洒水降尘，灰尘飘进家里。",
        "反映{place}施工渣土车带泥上路，路面很脏。",
        "{place}工地围挡破损，{time}扬尘严重。",
    ),
    "water": (
        "{place}{time}停水了，没有接到通知，请问什么时候恢复。",
        "{place}自来水发黄有异味，不敢饮用。",
        "{place}水压太低，高层用不上水。",
    ),
    "vending": (
        "{place}有流动摊贩占道经营，{time}很乱，影响通行。",
        "反映{place}附近夜市摊位占用人行道，油烟很大。",
    ),
    "streetlight": (
        "{place}路灯不亮好几天了，晚上很黑，不安全。",
        "{place}一排路灯{time}都不亮，请维修。",
    ),
}
NIGHT_WORK_TEMPLATES: Final = (
    "{place}的{site}半夜还在施工，机器轰隆隆响，吵得根本睡不着，不是说停工了吗？",
    "反映{site}夜间违规施工，{place}这边{time}挖掘机一直在响，请执法部门查处。",
    "{place}附近{site}明明贴了停工通知，晚上偷偷开工，噪音和灰尘都很大。",
)
_GATES: Final = ("东门", "南门", "西门", "北门", "正门")


@dataclass(frozen=True, slots=True)
class Poi:
    """A named place: how callers may describe it."""

    lat: float
    lon: float
    district: str
    town: str
    community: str
    road: str
    cross: str
    number: int
    building: int

    def describe(self, variant: int) -> str:
        v = variant % 6
        if v == 0:
            return f"{self.district}{self.town}{self.community}"
        if v == 1:
            return f"{self.community}{self.building}栋"
        if v == 2:
            return f"{self.road}与{self.cross}交叉口"
        if v == 3:
            return f"{self.community}{_GATES[self.building % len(_GATES)]}"
        if v == 4:
            return f"{self.road}{self.number}号{self.community}旁边"
        return f"{self.town}{self.road}附近"


@dataclass(frozen=True, slots=True)
class Ticket:
    ts: int
    id: str
    text: str
    category: str
    lat: float
    lon: float
    caller: str

    def encode(self) -> bytes:
        return encode(
            Hotline(
                ts=self.ts,
                ticket=self.id,
                text=self.text,
                category=self.category,
                lat=self.lat,
                lon=self.lon,
                grid=grid_id(self.lat, self.lon),
                caller=self.caller,
            )
        )


class TicketWriter:
    """Builds tickets; ids and callers are hashes, so they never reveal which are planned."""

    def __init__(self, city: City, seed: int) -> None:
        self.city, self.seed = city, seed

    def poi(self, rng: random.Random, lat: float, lon: float) -> Poi:
        geo = self.city.geo
        d = geo.district_at(lat, lon)
        return Poi(
            lat=lat,
            lon=lon,
            district=d,
            town=geo.spec(d).town,
            community=geo.community(rng),
            road=geo.road(rng),
            cross=geo.road(rng),
            number=rng.randrange(1, 300),
            building=rng.randrange(1, 40),
        )

    def ticket_id(self, ts: int, key: str) -> str:
        from datetime import datetime

        day = datetime.fromtimestamp(ts / 1000, TZ).strftime("%Y%m%d")
        return f"{day}{derive(self.seed, 'ticket', key) % 10**10:010d}"

    def caller(self, key: str) -> str:
        return f"{derive(self.seed, 'caller', key):016x}"

    def text(
        self, rng: random.Random, category: str, place: str, slots: dict[str, str] | None = None
    ) -> str:
        tmpl = rng.choice(TEMPLATES[category])
        fill = {k: rng.choice(v) for k, v in _SLOTS.items()}
        fill.update(slots or {})
        return tmpl.format(place=place, **fill)

    def make(
        self,
        rng: random.Random,
        key: str,
        ts: int,
        category: str,
        poi: Poi,
        *,
        jitter_m: float = 0.0,
        variant: int | None = None,
        slots: dict[str, str] | None = None,
        text: str | None = None,
        caller: str | None = None,
    ) -> Ticket:
        lat, lon = poi.lat, poi.lon
        if jitter_m > 0:
            r = jitter_m * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            lat, lon = offset(lat, lon, r * math.cos(a), r * math.sin(a))
        place = poi.describe(rng.randrange(6) if variant is None else variant)
        body = text if text is not None else self.text(rng, category, place, slots)
        return Ticket(
            ts=ts,
            id=self.ticket_id(ts, key),
            text=body,
            category=category,
            lat=round(lat, 6),
            lon=round(lon, 6),
            caller=caller or self.caller(key),
        )


def background(
    city: City, seed: int, start_ms: int, end_ms: int, avoid: list[Ticket]
) -> list[Ticket]:
    """The day's ordinary tickets (no accidental duplicates among them or with ``avoid``)."""
    rng = py_rng(seed, "hotline-background")
    writer = TicketWriter(city, seed)
    per_day = city.profile.count("tickets_per_day", city.scale, 60)
    total_w = sum(_HOURLY)
    out: list[Ticket] = []
    recent: dict[str, list[Ticket]] = {c: [] for c in CATEGORIES}
    for old in avoid:
        recent.setdefault(old.category, []).append(old)
    cats = list(_SHARES)
    t = start_ms
    n = 0
    while True:
        h = local_hour(t)
        rate_per_ms = per_day * _HOURLY[int(h)] / total_w / HOUR_MS
        if weekday(t) >= 5:
            rate_per_ms *= 0.85
        t += max(1, round(rng.expovariate(rate_per_ms)))
        if t >= end_ms:
            break
        h = local_hour(t)
        weights = [_SHARES[c] * (3.0 if c == "noise" and (h >= 21 or h < 6) else 1.0) for c in cats]
        cat = rng.choices(cats, weights)[0]
        for _ in range(8):
            lat, lon = city.geo.sample(rng, urban=0.8)
            if not any(
                abs(o.ts - t) < 3 * HOUR_MS and haversine_m(lat, lon, o.lat, o.lon) < 1500
                for o in recent[cat]
            ):
                break
        n += 1
        tk = writer.make(rng, f"bg{n}", t, cat, writer.poi(rng, lat, lon))
        recent[cat] = [o for o in recent[cat] if t - o.ts < 3 * HOUR_MS or o.ts > t] + [tk]
        out.append(tk)
    return out


class HotlineStream:
    kind = "hotline"

    def __init__(
        self, city: City, seed: int, start_ms: int, end_ms: int, planned: list[Ticket]
    ) -> None:
        tickets = [t for t in planned if start_ms <= t.ts < end_ms]
        tickets += background(city, seed, start_ms, end_ms, tickets)
        tickets.sort(key=lambda t: (t.ts, t.id))
        self.tickets = tickets
        self.by_window: dict[int, Chunk] = {}
        for tk in tickets:
            w = tk.ts - tk.ts % MINUTE_MS
            self.by_window.setdefault(w, Chunk()).add(tk.ts, entity_hash(tk.id), tk.encode())
        _ = DAY_MS

    def chunk(self, w0: int) -> Chunk:
        return self.by_window.get(w0, Chunk())

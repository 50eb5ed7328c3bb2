"""12345 hotline tickets: Chinese complaint texts from templates per category, with places.

Background tickets arrive with the day's rhythm (few at night, peaks late morning and
afternoon; noise complaints shift to the evening), spread over the city with the population.
Background tickets never accidentally duplicate one another: a ticket drawn within 600 m and
2 hours of another of the same category is moved. So every real duplicate is a planned one:

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
from datetime import datetime
from typing import Final

from citywatch.events import Hotline, encode
from citywatch.geo import grid_id, haversine_m, offset
from citywatch.partitioning import partition_key
from simulators.city import City
from simulators.clock import HOUR_MS, MINUTE_MS, TZ, local_hour, weekday
from simulators.seeds import derive, entity_hash, py_rng
from simulators.stream import Chunk

#: Every ticket travels in one partition (citywatch.partitioning).
HOTLINE_KEY = entity_hash(partition_key("hotline", ""))

__all__ = ["CATEGORIES", "HotlineStream", "Poi", "Problem", "Ticket", "TicketWriter"]

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
    "smell": ("化工异味", "刺鼻的气味", "臭鸡蛋味", "油漆味", "烧塑料的味道"),
    "feeling": ("头晕恶心", "呛得喘不过气", "窗户都不敢开", "眼睛刺痛", "孩子咳嗽"),
    "days": ("两", "三", "好几", "四五"),
}
_TIME_NIGHT: Final = ("凌晨两三点", "今晚十点以后", "半夜", "每天晚上")
_TIME_MORNING: Final = ("一大早六点", "早上", "每天早上", "这几天")
_TIME_DAY: Final = ("刚才", "这几天", "今天一天", "每天")
#: category -> problems -> paraphrases. One incident is one problem: the callers of a
#: duplicate cluster use different paraphrases of the same problem (and the same ``src`` or
#: ``smell``); tickets about different problems are not duplicates even at the same place.
TEMPLATES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "noise": (
        (
            "{place}{time}有{src}噪音，声音很大，严重影响休息，请相关部门尽快处理。",
            "反映{place}附近{src}噪声扰民，{time}一直吵，老人小孩都睡不着。",
            "来电人称{place}{src}太吵了，{time}还在响，希望管一管。",
            "{place}{src}噪音扰民问题，{time}持续，多次反映未解决，要求处理。",
        ),
    ),
    "odor": (
        (
            "{place}附近闻到一股{smell}，{feeling}，怀疑有企业偷排，请环保部门查看。",
            "来电反映{place}空气中有{smell}，{feeling}，已经持续一段时间了。",
            "{place}{time}有刺鼻{smell}，{feeling}，请尽快派人检查。",
            "市民反映{place}周边{smell}很重，{feeling}，不知道哪里排出来的。",
        ),
    ),
    "garbage": (
        (
            "{place}垃圾{days}天没人清运，堆成小山，臭气熏天。",
            "反映{place}的垃圾桶满了没人收，周边卫生很差。",
            "{place}生活垃圾好几天没拉走了，味道很大，请环卫处理。",
        ),
        (
            "{place}有人乱倒建筑垃圾，影响通行，请处理。",
            "反映{place}路边被倾倒了大量装修垃圾，没人管。",
            "{place}夜里有车偷倒渣土垃圾，堆在路边。",
        ),
    ),
    "traffic": (
        (
            "{place}信号灯坏了，路口很乱，容易出事故。",
            "反映{place}红绿灯不亮，车辆抢行很危险。",
            "{place}路口红绿灯{time}一直黄闪，请尽快维修。",
        ),
        (
            "来电称{place}路口车辆乱停乱放，造成拥堵。",
            "{place}两边停满了车，公交车都过不去。",
            "反映{place}违停严重，{time}堵得走不动。",
        ),
    ),
    "construction": (
        (
            "{place}工地扬尘很大，没有洒水降尘，灰尘飘进家里。",
            "反映{place}施工现场尘土飞扬，没有采取降尘措施。",
            "{place}工地{time}灰很大，窗台上一层土，请管一管。",
        ),
        (
            "反映{place}施工渣土车带泥上路，路面很脏。",
            "{place}渣土车没有覆盖，一路撒土。",
            "{place}工地出来的土方车把路面弄得全是泥。",
        ),
    ),
    "water": (
        (
            "{place}{time}停水了，没有接到通知，请问什么时候恢复。",
            "反映{place}突然没水了，也没有停水通知。",
            "{place}整栋楼都停水，{time}到现在还没来水。",
        ),
        (
            "{place}自来水发黄有异味，不敢饮用。",
            "反映{place}水龙头放出来的水浑浊发黄。",
            "{place}自来水有股怪味，烧开了也有。",
        ),
        (
            "{place}水压太低，高层用不上水。",
            "反映{place}楼上水压不够，热水器都打不着火。",
        ),
    ),
    "vending": (
        (
            "{place}有流动摊贩占道经营，{time}很乱，影响通行。",
            "反映{place}路边摆摊卖菜的太多，把路都堵了。",
            "{place}一到{time}就有小商贩占道，行人只能走机动车道。",
        ),
        (
            "反映{place}附近夜市摊位占用人行道，油烟很大。",
            "{place}烧烤摊每天晚上占道经营，油烟熏得没法开窗。",
            "{place}路边夜宵摊位太多，油烟和垃圾都很严重。",
        ),
    ),
    "streetlight": (
        (
            "{place}路灯不亮好几天了，晚上很黑，不安全。",
            "{place}一排路灯{time}都不亮，请维修。",
            "反映{place}路灯坏了，晚上走路看不见。",
        ),
    ),
}


def time_phrase(rng: random.Random, ts: int) -> str:
    """A time expression that fits the hour the caller calls at."""
    h = local_hour(ts)
    if h >= 21.0 or h < 5.0:
        return rng.choice(_TIME_NIGHT)
    if h < 10.0:
        return rng.choice(_TIME_MORNING)
    return rng.choice(_TIME_DAY)


@dataclass(frozen=True, slots=True)
class Problem:
    """One concrete problem: category, which paraphrase family, and its fixed details."""

    category: str
    index: int
    slots: tuple[tuple[str, str], ...]

    @classmethod
    def draw(cls, rng: random.Random, category: str, index: int | None = None) -> Problem:
        n = len(TEMPLATES[category])
        i = rng.randrange(n) if index is None else index % n
        slots = tuple(sorted((k, rng.choice(v)) for k, v in _SLOTS.items()))
        return cls(category, i, slots)

    def paraphrases(self) -> tuple[str, ...]:
        return TEMPLATES[self.category][self.index]


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
            return f"{self.road}{self.number}号{self.community}"
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

    def __init__(self, city: City, seed: int, salt: str = "") -> None:
        # the salt (scenario and start) keeps ids of different runs apart
        self.city, self.seed, self.salt = city, seed, salt

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
        day = datetime.fromtimestamp(ts / 1000, TZ).strftime("%Y%m%d")
        return f"{day}{derive(self.seed, 'ticket', self.salt, key) % 10**10:010d}"

    def caller(self, key: str) -> str:
        return f"{derive(self.seed, 'caller', self.salt, key):016x}"

    def text(
        self,
        rng: random.Random,
        problem: Problem,
        place: str,
        ts: int,
        paraphrase: int | None = None,
    ) -> str:
        forms = problem.paraphrases()
        tmpl = forms[rng.randrange(len(forms)) if paraphrase is None else paraphrase % len(forms)]
        return tmpl.format(place=place, time=time_phrase(rng, ts), **dict(problem.slots))

    def make(
        self,
        rng: random.Random,
        key: str,
        ts: int,
        problem: Problem,
        poi: Poi,
        *,
        jitter_m: float = 0.0,
        variant: int | None = None,
        paraphrase: int | None = None,
        text: str | None = None,
        caller: str | None = None,
    ) -> Ticket:
        lat, lon = poi.lat, poi.lon
        if jitter_m > 0:
            r = jitter_m * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            lat, lon = offset(lat, lon, r * math.cos(a), r * math.sin(a))
        place = poi.describe(rng.randrange(6) if variant is None else variant)
        body = text if text is not None else self.text(rng, problem, place, ts, paraphrase)
        return Ticket(
            ts=ts,
            id=self.ticket_id(ts, key),
            text=body,
            category=problem.category,
            lat=round(lat, 6),
            lon=round(lon, 6),
            caller=caller or self.caller(key),
        )


#: Background tickets of one category are never this close in space and time: every closer
#: pair involves a planned (labelled or hard-negative) ticket.
BACKGROUND_GAP_M: Final = 600.0
BACKGROUND_GAP_MS: Final = 2 * HOUR_MS
_CELL: Final = 0.01  # degrees (about 1 km): 3 x 3 cells cover BACKGROUND_GAP_M


class _Recent:
    """Recent tickets per (category, cell), for the no-accidental-duplicate rule."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, int, int], list[tuple[int, float, float]]] = {}

    def add(self, cat: str, ts: int, lat: float, lon: float) -> None:
        key = (cat, int(lat / _CELL), int(lon / _CELL))
        self.cells.setdefault(key, []).append((ts, lat, lon))

    def clashes(self, cat: str, ts: int, lat: float, lon: float) -> bool:
        r, c = int(lat / _CELL), int(lon / _CELL)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for t, la, lo in self.cells.get((cat, r + dr, c + dc), ()):
                    if (
                        abs(t - ts) < BACKGROUND_GAP_MS
                        and haversine_m(lat, lon, la, lo) < BACKGROUND_GAP_M
                    ):
                        return True
        return False


def background(
    city: City, seed: int, start_ms: int, end_ms: int, avoid: list[Ticket], salt: str = ""
) -> list[Ticket]:
    """The run's ordinary tickets (no accidental duplicates among them or with ``avoid``)."""
    rng = py_rng(seed, "hotline-background")
    writer = TicketWriter(city, seed, salt)
    per_day = city.profile.count("tickets_per_day", city.scale, 60)
    total_w = sum(_HOURLY)
    out: list[Ticket] = []
    recent = _Recent()
    for old in avoid:
        recent.add(old.category, old.ts, old.lat, old.lon)
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
        for attempt in range(30):
            lat, lon = city.geo.sample(rng, urban=0.8 if attempt < 10 else 0.0)
            if not recent.clashes(cat, t, lat, lon):
                break
        else:
            continue  # the city is saturated with this complaint right now: nobody calls
        n += 1
        tk = writer.make(rng, f"bg{n}", t, Problem.draw(rng, cat), writer.poi(rng, lat, lon))
        recent.add(cat, t, tk.lat, tk.lon)
        out.append(tk)
    return out


class HotlineStream:
    kind = "hotline"

    def __init__(
        self,
        city: City,
        seed: int,
        start_ms: int,
        end_ms: int,
        planned: list[Ticket],
        salt: str = "",
    ) -> None:
        tickets = [t for t in planned if start_ms <= t.ts < end_ms]
        tickets += background(city, seed, start_ms, end_ms, tickets, salt)
        tickets.sort(key=lambda t: (t.ts, t.id))
        self.tickets = tickets
        self.by_window: dict[int, Chunk] = {}
        for tk in tickets:
            w = tk.ts - tk.ts % MINUTE_MS
            self.by_window.setdefault(w, Chunk()).add(tk.ts, HOTLINE_KEY, tk.encode())

    def chunk(self, w0: int) -> Chunk:
        return self.by_window.get(w0, Chunk())

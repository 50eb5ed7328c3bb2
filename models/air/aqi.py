"""Air Quality Index per HJ 633-2012, with the breakpoint table versioned (HJ 633-2026).

IAQI of one pollutant is linear between the breakpoints of its table,
``IAQI = (I_hi - I_lo) / (BP_hi - BP_lo) * (C - BP_lo) + I_lo``, rounded *up* to an integer
(the standard: "进位取整数"); a concentration on a breakpoint takes that breakpoint's index, one
above it starts the next segment. Concentrations above the last breakpoint give 500.
AQI is the largest IAQI; the primary pollutant(s) are those with that IAQI when AQI > 50.

Two forms:

* **hourly** (real-time report): SO2, NO2, CO and O3 use their 1-hour tables; PM10 and PM2.5,
  which have no 1-hour table, use the 24-hour table on the 1-hour concentration (the national
  real-time release practice). SO2 above 800 µg/m³ (end of its 1-hour table) is indexed on the
  24-hour table, as the standard prescribes.
* **daily**: SO2, NO2, CO, PM10, PM2.5 24-hour means and the day's maximum 8-hour O3 mean; an
  8-hour O3 above 800 µg/m³ is indexed on the day's maximum 1-hour O3 instead.

Validity (GB 3095-2012 §7): an hourly mean needs >= 45 minutes of data, a 24-hour mean >= 20
hourly means, an 8-hour O3 mean >= 6 hourly means.

HJ 633-2026 (in force 2026-03-01) moves the IAQI-100 breakpoint of PM2.5 from 75 to 60 µg/m³
and of PM10 from 150 to 120 µg/m³; all other breakpoints are unchanged. :func:`table_for` picks
the table in force at an event time.

>>> aqi = hourly_aqi({"pm25": 80.0, "pm10": 100.0, "no2": 40.0}, HJ633_2012)
>>> aqi.aqi, aqi.category.name_zh, aqi.primary
(107, '轻度污染', ('pm25',))
>>> hourly_aqi({"pm25": 80.0}, HJ633_2026).aqi     # stricter PM2.5 table
119
>>> iaqi(75.0, HJ633_2012.pm25_24h), iaqi(75.1, HJ633_2012.pm25_24h)
(100, 101)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from models.air.compact import Compact

__all__ = [
    "CATEGORIES",
    "HJ633_2012",
    "HJ633_2026",
    "POLLUTANTS",
    "TABLES",
    "AqiResult",
    "BreakpointTable",
    "Category",
    "category_of",
    "daily_aqi",
    "hourly_aqi",
    "hourly_aqi_of",
    "iaqi",
    "iaqi_memo",
    "table_for",
]

#: Pollutant keys as in :class:`citywatch.events.Air` (``co`` in mg/m³, the rest µg/m³).
POLLUTANTS: Final[tuple[str, ...]] = ("pm25", "pm10", "no2", "so2", "o3", "co")

IAQI_STEPS: Final[tuple[int, ...]] = (0, 50, 100, 150, 200, 300, 400, 500)

Breakpoints = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BreakpointTable:
    """One version of the IAQI breakpoint table; each tuple aligns with :data:`IAQI_STEPS`.

    Tuples shorter than :data:`IAQI_STEPS` end where the standard's column ends (SO2 1-hour at
    800, O3 8-hour at 800): the caller switches tables above that, see the module docstring.
    """

    name: str
    effective_ms: int
    so2_24h: Breakpoints
    so2_1h: Breakpoints
    no2_24h: Breakpoints
    no2_1h: Breakpoints
    pm10_24h: Breakpoints
    co_24h: Breakpoints
    co_1h: Breakpoints
    o3_1h: Breakpoints
    o3_8h: Breakpoints
    pm25_24h: Breakpoints


HJ633_2012: Final = BreakpointTable(
    name="HJ 633-2012",
    effective_ms=1_356_969_600_000,  # 2013-01-01 Asia/Shanghai (in force 2016 nationwide)
    so2_24h=(0, 50, 150, 475, 800, 1600, 2100, 2620),
    so2_1h=(0, 150, 500, 650, 800),
    no2_24h=(0, 40, 80, 180, 280, 565, 750, 940),
    no2_1h=(0, 100, 200, 700, 1200, 2340, 3090, 3840),
    pm10_24h=(0, 50, 150, 250, 350, 420, 500, 600),
    co_24h=(0, 2, 4, 14, 24, 36, 48, 60),
    co_1h=(0, 5, 10, 35, 60, 90, 120, 150),
    o3_1h=(0, 160, 200, 300, 400, 800, 1000, 1200),
    o3_8h=(0, 100, 160, 215, 265, 800),
    pm25_24h=(0, 35, 75, 115, 150, 250, 350, 500),
)

HJ633_2026: Final = BreakpointTable(
    name="HJ 633-2026",
    effective_ms=1_772_294_400_000,  # 2026-03-01 00:00 Asia/Shanghai
    so2_24h=HJ633_2012.so2_24h,
    so2_1h=HJ633_2012.so2_1h,
    no2_24h=HJ633_2012.no2_24h,
    no2_1h=HJ633_2012.no2_1h,
    pm10_24h=(0, 50, 120, 250, 350, 420, 500, 600),
    co_24h=HJ633_2012.co_24h,
    co_1h=HJ633_2012.co_1h,
    o3_1h=HJ633_2012.o3_1h,
    o3_8h=HJ633_2012.o3_8h,
    pm25_24h=(0, 35, 60, 115, 150, 250, 350, 500),
)

#: Every known table, oldest first.
TABLES: Final[tuple[BreakpointTable, ...]] = (HJ633_2012, HJ633_2026)


def table_for(ts_ms: int) -> BreakpointTable:
    """The table in force at event time ``ts_ms`` (the oldest one before any is in force)."""
    chosen = TABLES[0]
    for t in TABLES:
        if ts_ms >= t.effective_ms:
            chosen = t
    return chosen


@dataclass(frozen=True, slots=True)
class Category:
    """An AQI category: level 1-6, Chinese name, colour name and RGB hex of the standard."""

    level: int
    name_zh: str
    colour_zh: str
    rgb: str
    aqi_max: int


CATEGORIES: Final[tuple[Category, ...]] = (
    Category(1, "优", "绿色", "#00E400", 50),
    Category(2, "良", "黄色", "#FFFF00", 100),
    Category(3, "轻度污染", "橙色", "#FF7E00", 150),
    Category(4, "中度污染", "红色", "#FF0000", 200),
    Category(5, "重度污染", "紫色", "#99004C", 300),
    Category(6, "严重污染", "褐红色", "#7E0023", 10**9),
)


def category_of(aqi: int) -> Category:
    """The category of an AQI value (0-50 优 ... > 300 严重污染)."""
    for c in CATEGORIES:
        if aqi <= c.aqi_max:
            return c
    return CATEGORIES[-1]  # pragma: no cover - the last aqi_max is unbounded


def iaqi(c: float | None, bps: Breakpoints) -> int | None:
    """The individual index of concentration ``c`` on one breakpoint column.

    None for a missing, NaN or negative concentration; 500 beyond the last IAQI-500
    breakpoint; None beyond a column that ends early (SO2 1-hour, O3 8-hour): switch tables.
    """
    if c is None or c != c or c < 0.0:
        return None
    if c == 0.0:
        return 0
    for i in range(1, len(bps)):
        hi = bps[i]
        if c <= hi:
            lo = bps[i - 1]
            i_lo, i_hi = IAQI_STEPS[i - 1], IAQI_STEPS[i]
            value = (i_hi - i_lo) / (hi - lo) * (c - lo) + i_lo
            # A tiny tolerance keeps float noise (e.g. 100.00000000001) from rounding up.
            return math.ceil(value - 1e-9)
    if len(bps) < len(IAQI_STEPS):
        return None
    return 500


@dataclass(frozen=True, slots=True)
class AqiResult:
    """AQI with its parts; ``aqi`` is None when no pollutant had a valid value."""

    aqi: int | None
    iaqi: Mapping[str, int]
    primary: tuple[str, ...]
    table: str

    @property
    def category(self) -> Category:
        return category_of(self.aqi or 0)

    @property
    def exceeding(self) -> tuple[str, ...]:
        """Pollutants whose IAQI is above 100 (超标污染物)."""
        return tuple(p for p in POLLUTANTS if self.iaqi.get(p, 0) > 100)


def _result(parts: dict[str, int], table: BreakpointTable) -> AqiResult:
    if not parts:
        return AqiResult(None, parts, (), table.name)
    top = max(parts.values())
    primary = tuple(p for p in POLLUTANTS if parts.get(p) == top) if top > 50 else ()
    return AqiResult(top, parts, primary, table.name)


def hourly_aqi(conc: Mapping[str, float | None], table: BreakpointTable) -> AqiResult:
    """Real-time (1-hour) AQI of 1-hour mean concentrations keyed as :data:`POLLUTANTS`."""
    parts: dict[str, int] = {}
    so2 = conc.get("so2")
    v = iaqi(so2, table.so2_1h)
    if v is None and so2 is not None and so2 > table.so2_1h[-1]:
        v = iaqi(so2, table.so2_24h)
    _put(parts, "so2", v)
    _put(parts, "no2", iaqi(conc.get("no2"), table.no2_1h))
    _put(parts, "co", iaqi(conc.get("co"), table.co_1h))
    _put(parts, "o3", iaqi(conc.get("o3"), table.o3_1h))
    _put(parts, "pm10", iaqi(conc.get("pm10"), table.pm10_24h))
    _put(parts, "pm25", iaqi(conc.get("pm25"), table.pm25_24h))
    return _result(parts, table)


#: Memo of :func:`iaqi` per breakpoint column (hourly averages repeat the same values).
_MEMO: dict[Breakpoints, dict[float, int | None]] = {}
_MEMO_MAX: Final = 4096


def iaqi_memo(c: float, bps: Breakpoints) -> int | None:
    """:func:`iaqi`, memoized per column (bounded)."""
    memo = _MEMO.get(bps)
    if memo is None:
        memo = _MEMO[bps] = {}
    v = memo.get(c, -1)
    if v == -1:
        v = iaqi(c, bps)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[c] = v
    return v


def hourly_aqi_of(values: Sequence[float | None], table: BreakpointTable) -> AqiResult:
    """:func:`hourly_aqi` of hourly means aligned with :data:`POLLUTANTS` (None: no valid
    mean), memoized: the path of an hourly average, one call per reading.

    >>> hourly_aqi_of((80.0, 100.0, 40.0, None, None, None), HJ633_2012).aqi
    107
    """
    parts: dict[str, int] = {}
    for i, c in enumerate(values):
        if c is None:
            continue
        if i == 0:
            v = iaqi_memo(c, table.pm25_24h)
        elif i == 1:
            v = iaqi_memo(c, table.pm10_24h)
        elif i == 2:
            v = iaqi_memo(c, table.no2_1h)
        elif i == 3:
            v = iaqi_memo(c, table.so2_1h)
            if v is None and c > table.so2_1h[-1]:
                v = iaqi_memo(c, table.so2_24h)
        elif i == 4:
            v = iaqi_memo(c, table.o3_1h)
        else:
            v = iaqi_memo(c, table.co_1h)
        if v is not None:
            parts[POLLUTANTS[i]] = v
    return _result(parts, table)


def daily_aqi(
    conc_24h: Mapping[str, float | None],
    o3_8h_max: float | None,
    o3_1h_max: float | None,
    table: BreakpointTable,
) -> AqiResult:
    """Daily AQI of 24-hour means, the day's max 8-hour O3 and (for O3 > 800) max 1-hour O3."""
    parts: dict[str, int] = {}
    _put(parts, "so2", iaqi(conc_24h.get("so2"), table.so2_24h))
    _put(parts, "no2", iaqi(conc_24h.get("no2"), table.no2_24h))
    _put(parts, "co", iaqi(conc_24h.get("co"), table.co_24h))
    _put(parts, "pm10", iaqi(conc_24h.get("pm10"), table.pm10_24h))
    _put(parts, "pm25", iaqi(conc_24h.get("pm25"), table.pm25_24h))
    o3 = iaqi(o3_8h_max, table.o3_8h)
    if o3 is None and o3_8h_max is not None and o3_8h_max > table.o3_8h[-1]:
        o3 = iaqi(o3_1h_max if o3_1h_max is not None else o3_8h_max, table.o3_1h)
    _put(parts, "o3", o3)
    return _result(parts, table)


def _put(parts: dict[str, int], key: str, value: int | None) -> None:
    if value is not None:
        parts[key] = value


HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
#: Asia/Shanghai is UTC+8 all year: days (for the 24-hour form) start at local midnight.
TZ_OFFSET_MS: Final = 8 * HOUR_MS
_NAN: Final = math.nan


@dataclass(frozen=True, slots=True)
class HourMean:
    """The valid 1-hour means of one clock hour (pollutants with too few readings left out)."""

    start_ms: int
    means: Mapping[str, float]
    readings: int


class AqiAccumulator(Compact):
    """Per-station running sums turning readings into hourly and daily AQI inputs.

    :meth:`add` takes the concentrations of one reading (aligned with :data:`POLLUTANTS`,
    None = missing or rejected by QC) and the time it covers (``cover_ms``: the station's
    interval, at most an hour), and returns the clock hours it closed, each with the means of
    the pollutants whose readings cover at least ``min_cover_ms`` (45 minutes: 45 one-minute
    readings, 18 of a 2.5-minute sensor, one hourly average). Closed hours also
    feed the day: :attr:`last_day` holds the :class:`AqiResult` of the last closed local day
    (Asia/Shanghai), computed from pollutants with at least ``min_hours_per_day`` hourly means
    (O3: the day's maximum 8-hour mean, each needing ``min_hours_per_8h`` hourly means).

    Readings must arrive in time order per station; a reading older than the open hour is
    ignored (returns nothing). State: about 40 numbers.

    >>> acc = AqiAccumulator()
    >>> closed = [h for m in range(61)
    ...           for h in acc.add(m * 60_000, (40.0, 80.0, None, None, None, None))]
    >>> [(h.start_ms, dict(h.means), h.readings) for h in closed]
    [(0, {'pm25': 40.0, 'pm10': 80.0}, 60)]
    """

    __slots__ = (
        "day",
        "day_hours",
        "day_sums",
        "hour",
        "hour_counts",
        "hour_cover",
        "hour_sums",
        "last_day",
        "min_cover_ms",
        "min_hours_per_8h",
        "min_hours_per_day",
        "o3_1h_max",
        "o3_8h_max",
        "o3_ring",
        "readings",
    )

    def __init__(
        self,
        *,
        min_cover_ms: int = 45 * 60_000,
        min_hours_per_day: int = 20,
        min_hours_per_8h: int = 6,
    ) -> None:
        self.min_cover_ms = min_cover_ms
        self.min_hours_per_day = min_hours_per_day
        self.min_hours_per_8h = min_hours_per_8h
        self.hour = -1
        self.readings = 0
        self.hour_sums = [0.0] * 6
        self.hour_counts = [0] * 6
        self.hour_cover = [0] * 6
        self.day = -1
        self.day_sums = [0.0] * 6
        self.day_hours = [0] * 6
        self.o3_ring = [_NAN] * 8
        self.o3_8h_max = _NAN
        self.o3_1h_max = _NAN
        self.last_day: AqiResult | None = None

    def add(
        self,
        ts_ms: int,
        values: tuple[float | None, ...] | list[float | None],
        cover_ms: int = 60_000,
    ) -> list[HourMean]:
        hour = ts_ms // HOUR_MS
        if hour < self.hour:
            return []
        closed: list[HourMean] = []
        if hour != self.hour:
            if self.hour >= 0:
                closed.append(self._close_hour(hour))
            self.hour = hour
        self.readings += 1
        sums, counts, cover = self.hour_sums, self.hour_counts, self.hour_cover
        for i in range(6):
            v = values[i]
            if v is not None:
                sums[i] += v
                counts[i] += 1
                cover[i] += cover_ms
        return closed

    def flush(self, now_ms: int) -> list[HourMean]:
        """Close the open hour once event time ``now_ms`` is past its end (a station that
        stops reporting, or the end of a replay); later readings of that hour are ignored."""
        hour = now_ms // HOUR_MS
        if self.hour < 0 or hour <= self.hour:
            return []
        closed = [self._close_hour(hour)]
        self.hour = hour
        return closed

    def _close_hour(self, next_hour: int) -> HourMean:
        means: dict[str, float] = {}
        for i, p in enumerate(POLLUTANTS):
            if self.hour_cover[i] >= self.min_cover_ms:
                means[p] = self.hour_sums[i] / self.hour_counts[i]
        out = HourMean(self.hour * HOUR_MS, means, self.readings)
        self._feed_day(self.hour, means)
        # hours skipped by a gap still shift the 8-hour O3 window
        for h in range(self.hour + 1, min(next_hour, self.hour + 9)):
            self._feed_day(h, {})
        self.hour_sums = [0.0] * 6
        self.hour_counts = [0] * 6
        self.hour_cover = [0] * 6
        self.readings = 0
        return out

    def _feed_day(self, hour: int, means: Mapping[str, float]) -> None:
        day = (hour * HOUR_MS + TZ_OFFSET_MS) // DAY_MS
        if day != self.day:
            if self.day >= 0:
                self.last_day = self._close_day()
            self.day = day
            self.day_sums = [0.0] * 6
            self.day_hours = [0] * 6
            self.o3_8h_max = _NAN
            self.o3_1h_max = _NAN
        for i, p in enumerate(POLLUTANTS):
            v = means.get(p)
            if v is not None:
                self.day_sums[i] += v
                self.day_hours[i] += 1
        o3 = means.get("o3", _NAN)
        ring = self.o3_ring
        ring.pop(0)
        ring.append(o3)
        if o3 == o3 and not o3 <= self.o3_1h_max:
            self.o3_1h_max = o3
        valid = [x for x in ring if x == x]
        if len(valid) >= self.min_hours_per_8h:
            m8 = sum(valid) / len(valid)
            if not m8 <= self.o3_8h_max:
                self.o3_8h_max = m8

    def _close_day(self) -> AqiResult:
        conc: dict[str, float | None] = {}
        for i, p in enumerate(POLLUTANTS):
            if self.day_hours[i] >= self.min_hours_per_day:
                conc[p] = self.day_sums[i] / self.day_hours[i]
        o3_8 = self.o3_8h_max if self.o3_8h_max == self.o3_8h_max else None
        o3_1 = self.o3_1h_max if self.o3_1h_max == self.o3_1h_max else None
        # the day's O3 counts only if enough of its hours had O3 at all
        if self.day_hours[4] < self.min_hours_per_day:
            o3_8 = o3_1 = None
        start_ms = self.day * DAY_MS - TZ_OFFSET_MS
        return daily_aqi(conc, o3_8, o3_1, table_for(start_ms))

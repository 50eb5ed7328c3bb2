"""AQI per HJ 633-2012 / HJ 633-2026: every breakpoint edge of both tables, by hand."""

from __future__ import annotations

import pytest

from models.air.aqi import (
    CATEGORIES,
    HJ633_2012,
    HJ633_2026,
    IAQI_STEPS,
    AqiAccumulator,
    BreakpointTable,
    category_of,
    daily_aqi,
    hourly_aqi,
    iaqi,
    table_for,
)

# The standard's Table 1, typed in again by hand (not copied from the module).
TABLE_2012 = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 160, 215, 265, 800),
    "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
}
TABLE_2026 = dict(
    TABLE_2012,
    pm25_24h=(0, 35, 60, 115, 150, 250, 350, 500),
    pm10_24h=(0, 50, 120, 250, 350, 420, 500, 600),
)
EDGES = [
    (table, col, i)
    for table, typed in ((HJ633_2012, TABLE_2012), (HJ633_2026, TABLE_2026))
    for col, bps in typed.items()
    for i in range(len(bps))
]


@pytest.mark.parametrize(("table", "col", "i"), EDGES)
def test_every_breakpoint_edge(table: BreakpointTable, col: str, i: int) -> None:
    typed = (TABLE_2012 if table is HJ633_2012 else TABLE_2026)[col]
    bps = getattr(table, col)
    assert bps == typed
    assert iaqi(float(typed[i]), bps) == IAQI_STEPS[i]
    if i + 1 < len(typed):
        # just above a breakpoint the next segment starts and the index rounds up
        assert iaqi(typed[i] + 1e-6 * (typed[i + 1] - typed[i]), bps) == IAQI_STEPS[i] + 1
    if i > 0:
        mid = (typed[i - 1] + typed[i]) / 2
        assert iaqi(mid, bps) == (IAQI_STEPS[i - 1] + IAQI_STEPS[i]) // 2


def test_hand_computed_values() -> None:
    # PM2.5 80 on HJ 633-2012: 100 + 50/40 * 5 = 106.25 -> 107; on 2026: 100 + 50/55 * 20 -> 119
    assert iaqi(80.0, HJ633_2012.pm25_24h) == 107
    assert iaqi(80.0, HJ633_2026.pm25_24h) == 119
    # PM10 130: 50 + 50/100 * 80 = 90 (2012); 100 + 50/130 * 10 = 103.8 -> 104 (2026)
    assert iaqi(130.0, HJ633_2012.pm10_24h) == 90
    assert iaqi(130.0, HJ633_2026.pm10_24h) == 104
    # CO 1-hour 7.3 mg/m3: 50 + 50/5 * 2.3 = 73
    assert iaqi(7.3, HJ633_2012.co_1h) == 73


def test_above_the_top_and_columns_that_end_early() -> None:
    assert iaqi(900.0, HJ633_2012.pm25_24h) == 500
    assert iaqi(801.0, HJ633_2012.so2_1h) is None
    assert iaqi(801.0, HJ633_2012.o3_8h) is None
    assert iaqi(None, HJ633_2012.pm25_24h) is None
    assert iaqi(-1.0, HJ633_2012.pm25_24h) is None
    assert iaqi(float("nan"), HJ633_2012.pm25_24h) is None


def test_hourly_form_switches_so2_to_the_24h_table_above_800() -> None:
    r = hourly_aqi({"so2": 900.0}, HJ633_2012)
    # 24-hour column: 200 + 100/800 * 100 = 212.5 -> 213
    assert r.aqi == 213
    assert r.iaqi == {"so2": 213}


def test_aqi_primary_and_category() -> None:
    r = hourly_aqi({"pm25": 30.0, "pm10": 40.0, "no2": 20.0}, HJ633_2012)
    assert r.aqi == 43
    assert r.primary == ()  # AQI <= 50: no primary pollutant
    assert r.category.name_zh == "优"
    r = hourly_aqi({"pm25": 115.0, "pm10": 250.0}, HJ633_2012)
    assert r.aqi == 150
    assert r.primary == ("pm25", "pm10")
    assert r.exceeding == ("pm25", "pm10")
    assert r.category.name_zh == "轻度污染"
    assert hourly_aqi({}, HJ633_2012).aqi is None


@pytest.mark.parametrize(
    ("aqi", "name", "colour"),
    [
        (0, "优", "绿色"),
        (50, "优", "绿色"),
        (51, "良", "黄色"),
        (100, "良", "黄色"),
        (101, "轻度污染", "橙色"),
        (150, "轻度污染", "橙色"),
        (151, "中度污染", "红色"),
        (200, "中度污染", "红色"),
        (201, "重度污染", "紫色"),
        (300, "重度污染", "紫色"),
        (301, "严重污染", "褐红色"),
        (500, "严重污染", "褐红色"),
    ],
)
def test_categories(aqi: int, name: str, colour: str) -> None:
    c = category_of(aqi)
    assert (c.name_zh, c.colour_zh) == (name, colour)
    assert c in CATEGORIES


def test_table_for_switches_on_2026_03_01_shanghai() -> None:
    switch = 1_772_294_400_000  # 2026-03-01T00:00+08:00
    assert table_for(switch - 1) is HJ633_2012
    assert table_for(switch) is HJ633_2026
    assert table_for(0) is HJ633_2012


def test_daily_form_uses_8h_o3_and_falls_back_to_1h_above_800() -> None:
    r = daily_aqi({"pm25": 75.0, "pm10": 150.0}, 160.0, 250.0, HJ633_2012)
    assert r.iaqi == {"pm10": 100, "pm25": 100, "o3": 100}
    r = daily_aqi({}, 850.0, 1100.0, HJ633_2012)
    # 1-hour O3 1100: 400 + 100/200 * 100 = 450
    assert r.iaqi == {"o3": 450}


# -- the accumulator: validity of hours and days ---------------------------------------------

MIN = 60_000
HOUR = 3_600_000
DAY0 = 1_793_548_800_000  # 2026-11-02T00:00+08:00


def _reading(pm25: float | None, o3: float | None = None) -> tuple[float | None, ...]:
    return (pm25, None, None, None, o3, None)


def test_hour_needs_45_readings() -> None:
    acc = AqiAccumulator()
    closed = []
    for m in range(44):
        closed += acc.add(DAY0 + m * MIN, _reading(50.0))
    closed += acc.add(DAY0 + HOUR, _reading(10.0))
    assert len(closed) == 1
    assert dict(closed[0].means) == {}
    assert closed[0].readings == 44
    for m in range(1, 46):
        closed += acc.add(DAY0 + HOUR + m * MIN, _reading(20.0))
    closed += acc.add(DAY0 + 2 * HOUR, _reading(10.0))
    assert closed[1].means["pm25"] == pytest.approx((10.0 + 45 * 20.0) / 46)


def test_out_of_order_reading_is_ignored() -> None:
    acc = AqiAccumulator()
    acc.add(DAY0 + HOUR, _reading(50.0))
    assert acc.add(DAY0, _reading(500.0)) == []
    assert acc.hour_sums[0] == 50.0


def test_day_closes_at_shanghai_midnight_with_20_valid_hours() -> None:
    acc = AqiAccumulator(min_cover_ms=1)
    for h in range(24):
        pm = 100.0 if h < 20 else None
        acc.add(DAY0 + h * HOUR, _reading(pm, o3=160.0))
    acc.add(DAY0 + 24 * HOUR, _reading(1.0))  # closes hour 23
    assert acc.last_day is None  # the day closes with the first hour of the next day
    acc.add(DAY0 + 25 * HOUR, _reading(1.0))
    day = acc.last_day
    assert day is not None
    # PM2.5 100 on HJ 633-2026 (Nov 2026): 100 + 50/55 * 40 = 136.4 -> 137; O3 8h 160 -> 100
    assert day.iaqi == {"pm25": 137, "o3": 100}
    assert day.table == "HJ 633-2026"


def test_day_with_19_hours_has_no_daily_value() -> None:
    acc = AqiAccumulator(min_cover_ms=1)
    for h in range(19):
        acc.add(DAY0 + h * HOUR, _reading(100.0))
    acc.add(DAY0 + 30 * HOUR, _reading(1.0))
    assert acc.last_day is not None
    assert acc.last_day.aqi is None

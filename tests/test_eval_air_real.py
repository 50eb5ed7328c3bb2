"""The real-data air benchmark's own logic: labels derived from the data, and what counts
against the injection (benchmarks/eval_air_real.py; the run itself is a benchmark, not a test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from citywatch.registry import Registry, Station
from simulators.labels import Label
from simulators.scoring import AlertView

ROOT = Path(__file__).resolve().parents[1]
H = 3_600_000
T0 = 1_388_505_600_000  # 2014-01-01 00:00 +08:00, a clock hour


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_air_real", ROOT / "benchmarks" / "eval_air_real.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_air_real"] = module
    spec.loader.exec_module(module)
    return module


def _data(
    bench: ModuleType, values: dict[str, list[float | None]], interval_s: float = 3600
) -> object:
    reg = Registry(
        stations={
            s: Station(id=s, lat=30.6, lon=104.0, district="C", interval_s=interval_s)
            for s in values
        }
    )
    step = int(interval_s * 1000)
    recs = []
    for s, vs in values.items():
        for k, v in enumerate(vs):
            if v is not None:
                recs.append(
                    (
                        T0 + k * step,
                        orjson.dumps({"kind": "air", "ts": T0 + k * step, "station": s, "pm25": v}),
                    )
                )
    recs.sort()
    return bench.Data("t", [r for _, r in recs], reg, bench.CST)


def test_exceedance_and_episode_labels_follow_hj633_on_pm25(bench: ModuleType) -> None:
    # IAQI 100 is 75 ug/m3; 150 is 115. A: over 100 in hours 1-2 and 4; B and C: over 150 in
    # hours 5-8 (with A: the city median is over 150 there, for 4 h); hour 3 is missing at A.
    a = [50, 80, 90, None, 76, 120, 130, 140, 150, 20]
    b = [50, 50, 50, 50, 50, 116, 200, 200, 200, 20]
    c = [50, 50, 50, 50, 50, 116, 200, 200, 110, 20]
    data = _data(bench, {"A": a, "B": b, "C": c})
    exceed, episodes = bench.derived_labels(data, bench.hourly_aqi(data))
    got = [(x.subject_id, (x.start_ms - T0) // H, (x.end_ms - T0) // H) for x in exceed]
    assert got == [("A", 1, 3), ("A", 4, 9), ("B", 5, 9), ("C", 5, 9)]
    assert exceed[0].params["aqi_max"] == 119  # 90 ug/m3 -> IAQI 118.75, rounded up
    assert [((x.start_ms - T0) // H, (x.end_ms - T0) // H) for x in episodes] == [(5, 9)]
    assert episodes[0].subject_id == "C"  # the district


def test_hourly_values_of_minute_data_need_45_minutes(bench: ModuleType) -> None:
    # 150 s readings: 24 an hour; the second hour has only 12 (30 minutes): no value
    first = [100.0] * 24
    second = [100.0] * 12 + [None] * 12
    data = _data(bench, {"S": first + second}, interval_s=150)
    assert bench.hourly_means(data)["S"] == {T0: {"pm25": 100.0}}


def test_the_hourly_aqi_takes_pm10_where_it_is_measured(bench: ModuleType) -> None:
    reg = Registry(stations={"L": Station(id="L", lat=57.1, lon=-2.1, interval_s=150)})
    recs = [
        orjson.dumps(
            {"kind": "air", "ts": T0 + k * 150_000, "station": "L", "pm25": 30.0, "pm10": 210.0}
        )
        for k in range(24)
    ]
    data = bench.Data("l", recs, reg, bench.CST)
    # PM2.5 30 is IAQI 43; PM10 210 on the 24-hour table is 100 + 50/100 * 60 = 130
    assert bench.hourly_aqi(data) == {"L": {T0: 130}}
    exceed, _ = bench.derived_labels(data, bench.hourly_aqi(data))
    assert [(x.subject_id, x.params["aqi_max"]) for x in exceed] == [("L", 130)]


def test_fault_precision_leaves_out_what_the_clean_data_explains(bench: ModuleType) -> None:
    lab = Label(
        rule="air.stuck", subject_kind="station", subject_id="A", start_ms=10 * H, end_ms=20 * H
    )
    hit = AlertView("1", "air.stuck", "A", 12 * H, 14 * H)
    real = AlertView("2", "air.stuck", "A", 100 * H, 110 * H)  # the data's own flat line
    false = AlertView("3", "air.stuck", "B", 50 * H, 51 * H)
    clean = bench._index([AlertView("c", "air.stuck", "A", 101 * H, 109 * H)])
    t = bench.fault_tally("air.stuck", [hit, real, false], clean, [lab])
    assert (t.labels, t.alerts, t.explained, t.true_alerts, t.detected) == (1, 3, 1, 1, 1)
    assert t.prf()[:2] == (0.5, 1.0)  # 1 true of the 2 not explained by the data
    assert t.delays == [2 * H]
    late = bench.fault_tally("air.stuck", [hit], {}, [lab], deadline_ms=H)
    assert late.detected == 0  # outside the deadline (drift: 72 h) it is not detected

"""Lateness per reporting interval: a national station's hourly average arrives after its hour
has ended, behind the minute stations of its partition, and is processed, not dead-lettered;
a lone record hours behind still is, with its reason."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from citywatch.alerts import Alert
from citywatch.events import Air
from citywatch.registry import Registry, Station
from citywatch.settings import Settings
from flows.run import RunOptions, reporting_intervals, run_city
from flows.sources import Batch, DecodingSource
from models.alert_engine import LatenessGate
from tests.flows.conftest import counts
from tests.flows.test_city_units import Records, toy_router

MIN = 60_000
HOUR = 60 * MIN
LATENESS = 10 * MIN
T = 1_795_800_000_000 // HOUR * HOUR


# -- the gate ---------------------------------------------------------------------------------


def test_a_declared_interval_widens_the_allowance_of_that_entity_only() -> None:
    g = LatenessGate(LATENESS, intervals={("air", "N1"): HOUR, ("air", "M1"): MIN})
    assert g.admit(T + 5 * HOUR) is None
    # an hourly average: its hour ended an hour after its stamp, published within the next
    assert g.admit(T + 3 * HOUR + 10 * MIN, ("air", "N1")) is None  # 1 h 50 min behind
    assert g.admit(T + 3 * HOUR - 10 * MIN, ("air", "N1")) is None  # 2 h 10 min: the edge
    far = g.admit(T + 2 * HOUR, ("air", "N1"))
    assert far == (
        f"late: ts {T + 2 * HOUR} is 10800.0 s behind the newest seen ({T + 5 * HOUR}), "
        "lateness 600.0 s + twice its reporting interval 3600 s"
    )
    # a minute station: two minutes more than the lateness; an undeclared one: the lateness
    assert g.admit(T + 5 * HOUR - 12 * MIN, ("air", "M1")) is None
    assert g.admit(T + 5 * HOUR - 13 * MIN, ("air", "M1")) is not None
    assert g.admit(T + 5 * HOUR - 11 * MIN, ("air", "S9")) is not None
    assert g.admit(T + 5 * HOUR - 11 * MIN, ("gps", "N1")) is not None  # another kind's N1
    assert g.high_ts == T + 5 * HOUR  # a late record never moves event time


def test_the_registry_gives_the_declared_intervals() -> None:
    reg = Registry(
        stations={
            "N1": Station(id="N1", lat=32.0, lon=120.9, kind="national", interval_s=3600),
            "L1": Station(id="L1", lat=32.0, lon=120.9, kind="lowcost", interval_s=148.5),
            "M1": Station(id="M1", lat=32.0, lon=120.9),
        }
    )
    assert reporting_intervals(reg) == {("air", "N1"): 3_600_000, ("air", "L1"): 148_500}


# -- the decoding partition -------------------------------------------------------------------


def air(station: str, ts: int, pm25: float = 30.0) -> Air:
    return Air(ts=ts, station=station, pm25=pm25, pm10=60.0)


def read_all(events: list[Any], intervals: dict[tuple[str, str], int]) -> list[Batch]:
    src = DecodingSource(
        Records(p=events),
        batch_size=7,
        lateness_ms=LATENESS,
        splitter=toy_router(),
        intervals=intervals,
    )
    part, out = src.build_part("in", "p", None), []
    with contextlib.suppress(StopIteration):
        while True:
            out += part.next_batch()
    return out


def minutes(start: int, n: int, station: str = "M1") -> list[Air]:
    return [air(station, start + i * MIN) for i in range(n)]


def test_the_partition_admits_an_hourly_average_behind_the_minute_stations() -> None:
    """The fast loop and the slow one (while a far-future record is held) both give the
    hourly record its allowance; it is caused at the partition's event time."""
    hourly = air("N1", T, pm25=200.0)
    lone = air("M1", T + 30 * MIN + 30_000)
    far = air("M1", T + 30 * HOUR)  # held: the records after it vote it a lone record
    events = [
        *minutes(T + 30 * MIN, 40),  # the minute stations run up to T + 69 min
        hourly,  # 69 min behind: the fast loop
        *minutes(T + 70 * MIN, 150),  # on to T + 219 min
        lone,  # a minute station's record more than 3 h behind
        far,
        air("N1", T + 2 * HOUR),  # 1 h 39 min behind, while ``far`` is held: the slow loop
        *minutes(T + 220 * MIN, 10),
    ]
    batches = read_all(events, {("air", "N1"): HOUR, ("air", "M1"): MIN})
    seen = [
        (item[1].station, item[1].ts, item[3])
        for b in batches
        for items in b.groups.values()
        for item in items
        if type(item) is tuple
    ]
    assert ("N1", T, T + 69 * MIN) in seen  # processed, caused at the event time then
    assert ("N1", T + 2 * HOUR, T + 219 * MIN) in seen
    dead = [d.dead.reason for b in batches for d in b.dead]
    assert len(dead) == 2
    assert dead[0] == (
        f"late: ts {lone.ts} is 11310.0 s behind the newest seen ({T + 219 * MIN}), "
        "lateness 600.0 s + twice its reporting interval 60 s"
    )
    assert "lone far-future record" in dead[1]
    # without the declared intervals the hourly records are late, as before
    plain = [d.dead.reason for b in read_all(events, {}) for d in b.dead]
    assert len(plain) == 4
    assert sum(r.endswith("lateness 600.0 s") for r in plain) == 3


# -- the live flow: Redis in, every registered model, Redis out ---------------------------------


def live_stream(t0: int) -> tuple[list[bytes], dict[str, int], int]:
    """Seven hours of an air partition as a live feed delivers it, in arrival order.

    Four micro stations every minute; a low-cost sensor every 150 s that loses its
    connection for 4 minutes and re-sends the readings it held; two national stations whose
    hourly averages (stamped at the hour's start) arrive 65 min (N1, a platform publishing
    just after the hour) and 90 min (N2, CNEMC's usual half hour) after their stamp; N1 reads
    heavy pollution (PM2.5 180 µg/m³), N2's PM10 analyser an impossible 9999. At the end, two
    lone records 3 h or more behind the newest ``ts``: a micro station's and a national
    station's (N3) of three hours ago.
    """
    arrivals: list[tuple[int, int, dict[str, Any]]] = []

    def add(arrive: int, rec: dict[str, Any]) -> None:
        arrivals.append((arrive, len(arrivals), {"kind": "air", **rec}))

    for m in range(7 * 60):
        for i, sid in enumerate(("M1", "M2", "M3", "M4")):
            ts = t0 + m * MIN + i * 1000
            pm = 30.0 + i + (m * 7 + i * 3) % 11  # real sensors never read flat for hours
            add(ts, {"station": sid, "ts": ts, "pm25": pm, "pm10": 2 * pm})
    for k in range(7 * 24):
        ts = t0 + k * 150_000
        lost = t0 + 2 * HOUR <= ts < t0 + 2 * HOUR + 4 * MIN  # sent on reconnection
        pm = 28.0 + (k * 5) % 9
        add(t0 + 2 * HOUR + 4 * MIN + 500 if lost else ts, {"station": "L1", "ts": ts, "pm25": pm})
    for h in range(6):
        ts = t0 + h * HOUR
        add(ts + 65 * MIN, {"station": "N1", "ts": ts, "pm25": 180.0 + h, "pm10": 250.0 - h})
        add(ts + 90 * MIN, {"station": "N2", "ts": ts, "pm25": 33.0 + h, "pm10": 9999.0})
    arrivals.sort(key=lambda a: (a[0], a[1]))
    newest = max(r["ts"] for _, _, r in arrivals)
    lone = {"M1": newest - 3 * HOUR, "N3": newest // HOUR * HOUR - 3 * HOUR}
    records = [orjson.dumps(r) for _, _, r in arrivals]
    records.append(orjson.dumps({"kind": "air", "station": "M1", "ts": lone["M1"], "pm25": 5.0}))
    records.append(orjson.dumps({"kind": "air", "station": "N3", "ts": lone["N3"], "pm25": 5.0}))
    return records, lone, newest


def city_registry(directory: Path) -> Path:
    def st(sid: str, kind: str, interval: float, dlon: float) -> Station:
        return Station(
            id=sid,
            lat=32.0,
            lon=120.85 + dlon,
            district="崇川区",
            kind=kind,  # type: ignore[arg-type]
            interval_s=interval,
        )

    stations = [
        st("M1", "micro", 60, 0.00),
        st("M2", "micro", 60, 0.01),
        st("M3", "micro", 60, 0.02),
        st("M4", "micro", 60, 0.03),
        st("L1", "lowcost", 150, 0.015),
        st("N1", "national", 3600, 0.005),
        st("N2", "national", 3600, 0.025),
        st("N3", "national", 3600, 0.035),
    ]
    Registry(stations={s.id: s for s in stations}).dump(directory)
    return directory


@pytest.mark.integration
def test_live_hourly_averages_behind_minute_stations_reach_the_air_model(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    t0 = (int(time.time() * 1000) - 9 * HOUR) // HOUR * HOUR  # live: the past, never the future
    records, lone, newest = live_stream(t0)
    keys = settings.keys
    pipe = redis_client.pipeline()
    for r in records:
        pipe.xadd(keys.inbound("air"), {"r": r})
    pipe.execute()

    opts = RunOptions(
        source="redis",
        kinds=("air",),
        idle_stop_s=1.0,
        registry_dir=str(city_registry(tmp_path / "registry")),
    )
    assert run_city(settings.with_(batch_size=300, epoch_s=1.0), opts) == 0

    dead: Any = redis_client.xrange(keys.deadletter)
    letters = {orjson.loads(f[b"raw"])["station"]: f[b"reason"].decode() for _, f in dead}
    # nothing of the hourly stations or of the low-cost sensor's late uploads is lost ...
    assert sorted(letters) == ["M1", "N3"]
    # ... and the lone records 3 h behind are late, with their allowances
    assert letters["M1"] == (
        f"late: ts {lone['M1']} is 10800.0 s behind the newest seen ({newest}), "
        "lateness 600.0 s + twice its reporting interval 60 s"
    )
    assert letters["N3"] == (
        f"late: ts {lone['N3']} is {(newest - lone['N3']) / 1000:.1f} s behind the newest seen "
        f"({newest}), lateness 600.0 s + twice its reporting interval 3600 s"
    )
    c = counts(redis_client, keys)
    assert (c["records"], c["in:air"], c["dead:late"]) == (len(records), len(records) - 2, 2)

    # The air model saw every hourly value as it came, an hour and more after its stamp:
    # N1's heavy pollution is an hourly exceedance, N2's impossible PM10 a range fault, each
    # dated by the first hour that showed it (its stamp, not its arrival) and carried on to
    # the last hour; N1's alert holds as one from one late value to the next.
    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    for rule, sid in (("air.exceedance", "N1"), ("air.range", "N2")):
        got = [a for a in alerts if a.rule == rule and a.subject.id == sid]
        assert got, (rule, sid)
        assert min(a.first_ts for a in got) == t0  # one hourly value covers its hour
        # The stream has the versions (news and heartbeats); the alert's hash, which the
        # console's snapshot reads, has the hour it was last seen.
        latest = Alert.from_json(redis_client.hget(keys.alert(got[-1].id), "a"))  # type: ignore[arg-type]
        assert (latest.version, latest.last_ts) == (got[-1].version, t0 + 5 * HOUR)
        assert max(a.last_ts for a in got) <= t0 + 5 * HOUR
    exceedance = [a for a in alerts if a.rule == "air.exceedance" and a.subject.id == "N1"]
    assert len({a.id for a in exceedance}) == 1
    assert exceedance[-1].is_firing

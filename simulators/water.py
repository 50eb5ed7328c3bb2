"""Drinking-water quality stations: one reading a minute, seeded anomalies with their labels.

The stations (a few treatment-plant outlets, the rest network nodes; 300 at scale 1) join
the registry as ``water_stations``. What makes the readings look real (and what a model must
cope with), per station:

- levels of its own (plants: more chlorine and flow; network: less), slow wander of every
  channel over hours, a daily water-demand curve in the flow (morning and evening peaks) with
  the chlorine residual sagging when water sits in the pipes at night;
- the analysers' grids: 0.1 °C, 0.01 pH, 1 µS/cm, 0.001 NTU, 0.01 mg/L, 1 mV, 1 m³/h, so
  quiet channels repeat for long runs;
- hydraulic blips twice a day (a pump switch: flow steps, turbidity lifts for a few minutes):
  hard negatives for an event detector;
- missing values: single channels (0.2%) and whole readings (0.1%).

Anomalies (knobs ``water_events``, ``water_stuck``, ``water_range`` of the scenario):

- **event** (``water.event``): a contamination or treatment failure: turbidity up several
  times, conductivity up, chlorine residual and redox down, pH shifted, ramping in over a few
  minutes, 20-120 minutes long; labelled ``water.range`` too when it crosses a limit;
- **stuck** (``water.stuck``): one analyser frozen on its last value for 5-10 hours;
- **range** (``water.range`` and ``water.event``): one channel stepping beyond its GB 5749
  limit (pH above 8.5, turbidity above 1 NTU, chlorine below 0.05 mg/L) for 30-90 minutes.

Generators are pure: ``chunk(w0)`` depends only on the seed, the plan and ``w0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from citywatch.events import WATER_CHANNELS, Water, encode
from citywatch.geo import grid_id
from citywatch.partitioning import partition_key
from citywatch.registry import WaterStation
from simulators.city import City
from simulators.clock import DAY_MS, HOUR_MS, MINUTE_MS, TZ_OFFSET_MS
from simulators.labels import Label
from simulators.seeds import entity_hash, np_rng, py_rng
from simulators.stream import Chunk

__all__ = ["STATIONS_AT_SCALE_1", "WaterAnomaly", "WaterStream"]

STATIONS_AT_SCALE_1: Final = 300
CHANNELS: Final = WATER_CHANNELS
GRID: Final = (0.1, 0.01, 1.0, 0.001, 0.01, 1.0, 1.0)
_DECIMALS: Final = (1, 2, 0, 3, 2, 0, 0)
#: GB 5749-2022 limits the range anomalies cross (channel index -> (low, high)).
_LIMITS: Final = {1: (6.5, 8.5), 3: (None, 1.0), 4: (0.05, None)}
_PERIODS_H: Final = np.array([3.1, 7.7, 17.0])
Arr = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class WaterAnomaly:
    """One injected anomaly at station index ``station``: ``kind`` event / stuck / range."""

    station: int
    kind: str
    t0: int
    t1: int
    channel: int = 0
    #: event: multiplier of its effects; range: the level the channel steps to
    size: float = 1.0


def _demand(hod: Arr) -> Arr:
    """Relative water demand by local hour: low at night, morning and evening peaks."""
    morning = np.exp(-0.5 * ((hod - 7.5) / 1.3) ** 2)
    evening = np.exp(-0.5 * ((hod - 19.0) / 1.8) ** 2)
    return 0.55 + 0.55 * morning + 0.45 * evening


class WaterStream:
    kind = "water"

    def __init__(
        self,
        city: City,
        seed: int,
        start_ms: int,
        end_ms: int,
        *,
        events: int = 0,
        stuck: int = 0,
        range_: int = 0,
        lead_s: int = 2 * 3600,
        time_scale: float = 1.0,
        start_window_s: int = 0,
    ) -> None:
        self.seed, self.start_ms, self.end_ms = seed, start_ms, end_ms
        rng = py_rng(seed, "water-stations")
        n = max(12, round(STATIONS_AT_SCALE_1 * city.scale))
        geo = city.geo
        self.ids: list[str] = []
        for i in range(n):
            kind = "plant" if i < max(2, n // 20) else "network"
            lat, lon = geo.sample(rng, urban=0.5 if kind == "plant" else 0.75)
            district = geo.district_at(lat, lon)
            name = (
                f"{geo.spec(district).town}水厂出厂水"
                if kind == "plant"
                else f"{geo.community(rng)}管网监测点"
            )
            sid = f"WQ{i + 1:04d}"
            city.registry.water_stations[sid] = WaterStation(
                id=sid,
                name=name,
                lat=lat,
                lon=lon,
                district=district,
                grid=grid_id(lat, lon),
                kind=kind,  # type: ignore[arg-type]
            )
            self.ids.append(sid)
        self.hashes = [entity_hash(partition_key("water", s)) for s in self.ids]
        self.phase = [entity_hash(s) % MINUTE_MS for s in self.ids]
        r = np_rng(seed, "water-levels")
        plant = np.array([i < max(2, n // 20) for i in range(n)])
        self.level = np.stack(
            [
                r.uniform(14.0, 18.0, n),  # temp_c
                r.uniform(7.0, 7.6, n),  # ph
                r.uniform(300.0, 480.0, n),  # conductivity
                np.where(plant, r.uniform(0.05, 0.1, n), r.uniform(0.1, 0.3, n)),  # turbidity
                np.where(plant, r.uniform(0.6, 0.9, n), r.uniform(0.25, 0.5, n)),  # chlorine
                r.uniform(600.0, 700.0, n),  # redox
                np.where(plant, r.uniform(2000.0, 5000.0, n), r.uniform(80.0, 400.0, n)),
            ],
            axis=1,
        )
        #: per station and channel: amplitude of the slow wander, and of the reading noise
        self.wander = self.level * np.array([0.01, 0.004, 0.01, 0.08, 0.04, 0.01, 0.04])
        self.noise = (
            np.array([0.02, 0.004, 0.5, 0.003, 0.004, 0.6, 0.0])[None, :] + 0.0 * self.level
        )
        self.noise[:, 6] = self.level[:, 6] * 0.015
        self.wphase = r.uniform(0, 2 * np.pi, (n, len(CHANNELS), len(_PERIODS_H)))
        self.blips = r.uniform(5.0, 23.0, (n, 2))  # local hours of the two daily pump switches
        self.anomalies = self._plan(events, stuck, range_, lead_s, time_scale, start_window_s)
        self.labels = self._labels()

    # -- the plan ------------------------------------------------------------------------------

    def _plan(
        self, events: int, stuck: int, range_: int, lead_s: int, ts: float, window_s: int
    ) -> list[WaterAnomaly]:
        rng = py_rng(self.seed, "water-plan")
        free = list(range(len(self.ids)))
        rng.shuffle(free)
        out: list[WaterAnomaly] = []
        span = self.end_ms - self.start_ms
        lo = self.start_ms + min(lead_s * 1000, span // 4)

        def when(dur: int) -> int:
            if window_s > 0:
                return lo + rng.randrange(0, window_s * 1000)
            hi = max(lo, self.end_ms - dur - 10 * MINUTE_MS)
            return rng.randrange(lo, hi + 1)

        def station() -> int:
            if not free:
                msg = "plan: more water anomalies than stations; raise the scale"
                raise ValueError(msg)
            return free.pop()

        def minutes(a: float, b: float, floor: float = 3.0) -> int:
            return round(max(rng.uniform(a, b) * ts, floor) * MINUTE_MS)

        for _ in range(events):
            d = minutes(20, 120)
            t0 = when(d)
            out.append(WaterAnomaly(station(), "event", t0, t0 + d, size=rng.uniform(0.6, 1.5)))
        for _ in range(stuck):
            d = minutes(300, 600, floor=300.0)
            t0 = when(d)
            out.append(WaterAnomaly(station(), "stuck", t0, t0 + d, channel=rng.randrange(7)))
        for _ in range(range_):
            d = minutes(30, 90)
            t0 = when(d)
            ch = rng.choice(sorted(_LIMITS))
            if ch == 1:
                level = rng.uniform(8.7, 9.2)
            elif ch == 3:
                level = rng.uniform(1.3, 2.5)
            else:
                level = rng.uniform(0.0, 0.03)
            out.append(WaterAnomaly(station(), "range", t0, t0 + d, channel=ch, size=level))
        return out

    def _labels(self) -> list[Label]:
        out: list[Label] = []
        for a in self.anomalies:
            st = self.ids[a.station]
            end = min(a.t1, self.end_ms)
            if a.kind == "stuck":
                out.append(
                    Label(
                        rule="water.stuck",
                        subject_kind="water_station",
                        subject_id=st,
                        start_ms=a.t0,
                        end_ms=end,
                        params={"channel": CHANNELS[a.channel], "level": "blue"},
                    )
                )
                continue
            channels = [CHANNELS[a.channel]] if a.kind == "range" else list(CHANNELS[1:6])
            out.append(
                Label(
                    rule="water.event",
                    subject_kind="water_station",
                    subject_id=st,
                    start_ms=a.t0,
                    end_ms=end,
                    params={"cause": a.kind, "channels": channels},
                )
            )
            if a.kind == "range" or self._crosses_limit(a):
                out.append(
                    Label(
                        rule="water.range",
                        subject_kind="water_station",
                        subject_id=st,
                        start_ms=a.t0,
                        end_ms=end,
                        params={"channels": channels},
                    )
                )
        return out

    def _crosses_limit(self, a: WaterAnomaly) -> bool:
        lv = self.level[a.station]  # as _apply changes them, at full strength
        turb = lv[3] * (1.0 + 2.0 * a.size) + 0.5 * a.size
        chl = lv[4] * max(0.0, 1.0 - 0.7 * min(a.size, 1.0))
        ph = lv[1] - 0.2 * a.size
        return bool(turb > 0.9 or chl < 0.07 or ph < 6.6)

    # -- the readings ---------------------------------------------------------------------------

    def _clean(self, w0: int) -> Arr:
        """Quantized fault-free readings of every station and channel in the minute ``w0``."""
        n = len(self.ids)
        t = w0 + np.array(self.phase, dtype=np.float64)
        t_h = t / HOUR_MS
        hod = ((t + TZ_OFFSET_MS) % DAY_MS) / HOUR_MS
        ang = 2 * np.pi * t_h[:, None, None] / _PERIODS_H[None, None, :] + self.wphase
        slow = np.sin(ang).sum(axis=2) * math.sqrt(2.0 / len(_PERIODS_H))
        demand = _demand(hod)
        rng = np_rng(self.seed, "water", w0)
        x = self.level + self.wander * slow + rng.normal(0.0, 1.0, (n, 7)) * self.noise
        x[:, 0] += 0.15 * np.sin(2 * np.pi * (hod - 15.0) / 24.0)  # warmest mid-afternoon
        x[:, 6] *= demand
        x[:, 4] *= 1.0 - 0.12 * (1.0 - demand / 1.1)  # residual sags while water sits
        for k in range(2):  # pump switches: a flow step and a short turbidity lift
            dh = hod - self.blips[:, k]
            on = (dh >= 0) & (dh < 0.25)
            x[:, 6] *= np.where(on, 1.25, 1.0)
            x[:, 3] += np.where(on, 0.04 * np.exp(-dh * 12.0), 0.0)
        out: Arr = x
        return out

    def _apply(self, x: Arr, w0: int) -> None:
        for a in self.anomalies:
            s = a.station
            t = w0 + self.phase[s]
            if not a.t0 <= t < a.t1:
                continue
            ramp = min(1.0, (t - a.t0) / (4 * MINUTE_MS) + 0.25)
            if a.kind == "event":
                k = a.size * ramp
                x[s, 3] += 0.5 * k + x[s, 3] * 2.0 * k
                x[s, 2] *= 1.0 + 0.08 * k
                x[s, 4] *= max(0.0, 1.0 - 0.7 * min(k, 1.0))
                x[s, 5] -= 60.0 * k
                x[s, 1] -= 0.2 * k
            elif a.kind == "range":
                c = a.channel
                x[s, c] = x[s, c] + (a.size - x[s, c]) * min(1.0, (t - a.t0) / (10 * MINUTE_MS))
            else:  # stuck: the analyser repeats what it read when it froze
                x[s, a.channel] = self._frozen(a)

    def _frozen(self, a: WaterAnomaly) -> float:
        t = a.t0 - MINUTE_MS
        w = t - t % MINUTE_MS
        return float(self._clean(w)[a.station, a.channel])

    def chunk(self, w0: int) -> Chunk:
        x = self._clean(w0)
        self._apply(x, w0)
        rng = np_rng(self.seed, "water-missing", w0)
        gone = rng.random(x.shape) < 0.002
        silent = rng.random(len(self.ids)) < 0.001
        out = Chunk()
        for s, sid in enumerate(self.ids):
            ts = w0 + self.phase[s]
            if ts < self.start_ms or ts >= self.end_ms or silent[s]:
                continue
            vals: dict[str, float | None] = {}
            for c, ch in enumerate(CHANNELS):
                v = float(x[s, c])
                vals[ch] = (
                    None
                    if gone[s, c]
                    else max(0.0, round(round(v / GRID[c]) * GRID[c], _DECIMALS[c]))
                )
            out.add(ts, self.hashes[s], encode(Water(ts=ts, station=sid, **vals)))
        return out

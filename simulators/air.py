"""Air-quality stations: one reading a minute per station, with a shared regional weather.

What makes it look real (and what a model must cope with):

- diurnal cycles per pollutant (PM night peak and afternoon dilution, NO2/CO rush hours, O3
  afternoon peak anticorrelated with NO2), quieter traffic on weekends;
- regional weather shared by all stations (one regional process plus one per district), so
  neighbours move together; station-level slow variation and measurement noise on top;
- wind speed and direction from one regional field, per station exposure and vane noise;
- quantization as analysers produce it: PM and NO2 integers, SO2 and O3 in ppb steps converted
  to µg/m³ (so low values repeat naturally for long runs), CO in 0.1 mg/m³ steps;
- missing values: single readings (``null``), nightly zero/span calibration of the gas analysers
  at national stations (10 minutes of ``null``), short outages of micro sensors.

Injected truth: plumes (local sources, real pollution), regional episodes (real pollution),
and sensor faults (stuck, drift, gross range, PM2.5 > PM10 inversion) applied to the *measured*
values only. Exceedance labels are computed from the fault-free values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from citywatch.events import Air, encode
from citywatch.partitioning import partition_key
from simulators.air_realism import (
    AIR_STATIONS,
    ANALYSER,
    DISTRICT,
    REGIONAL,
    STATION,
    AirRealism,
    Gaps,
    Spectral,
    Uploads,
    diurnal_pm,
    fronts,
)
from simulators.aqi import LEVEL_OF_CATEGORY, aqi, category
from simulators.city import City
from simulators.clock import DAY_MS, HOUR_MS, MINUTE_MS, TZ_OFFSET_MS
from simulators.labels import Label
from simulators.seeds import entity_hash, np_rng
from simulators.stream import Chunk

__all__ = [
    "AirStream",
    "Episode",
    "Fault",
    "Plume",
    "declare_stations",
    "regional_wind",
    "station_kinds",
]

Arr = npt.NDArray[np.float64]
POLLUTANTS: Final = ("pm25", "pm10", "no2", "so2", "o3", "co")
CHANNELS: Final = (*POLLUTANTS, "temp_c", "rh", "wind_ms", "wind_deg")
#: What freezes in a stuck fault: the whole analyser rack, or the optical PM counter alone.
STUCK_CHANNELS: Final[dict[str, tuple[str, ...]]] = {"all": POLLUTANTS, "pm": ("pm25", "pm10")}
#: What an optical low-cost sensor reports (no gas analysers, no wind vane).
LOWCOST_CHANNELS: Final = ("pm25", "pm10", "temp_c", "rh")
#: A labelled PM2.5 > PM10 fault: PM2.5 above INVERSION_REL x PM10 + INVERSION_ABS (µg/m³),
#: twice what the two analysers' uncertainty lets a clean hour show
INVERSION_REL: Final = 1.2
INVERSION_ABS: Final = 8.0
#: Declared reporting intervals by station kind (``Station.interval_s``) in ``"real"`` mode.
INTERVAL_S: Final = {"national": 3600.0, "micro": 60.0, "lowcost": 150.0}
_PERIODS_H: Final = np.array([7.3, 13.1, 29.0, 57.0])
_STATION_PERIODS_H: Final = np.array([2.1, 4.7, 9.4])


@dataclass(frozen=True, slots=True)
class Plume:
    """A local source next to one station: real pollution, PM2.5 peaking ``peak`` µg/m³ above."""

    station: int
    t0: int
    t1: int
    peak: float


@dataclass(frozen=True, slots=True)
class Episode:
    """A regional episode: PM in ``districts`` ramps up to ``factor`` x normal and back."""

    districts: tuple[int, ...]
    t0: int
    t_full: int
    t_fade: int
    t1: int
    factor: float


@dataclass(frozen=True, slots=True)
class Fault:
    """A sensor fault on the measured values: stuck (``channel`` "all" or "pm"), drift,
    range, inversion."""

    station: int
    kind: str
    t0: int
    t1: int
    channel: str = "pm25"
    value: float = 0.0  # range: the gross value; drift: relative drift per hour


def _smooth(phases: Arr, periods: Arr, t_h: Arr) -> Arr:
    """Sum of sinusoids, unit variance: rows of ``phases`` are independent processes."""
    ang = 2 * np.pi * t_h[None, :, None] / periods[None, None, :] + phases[:, None, :]
    return np.sin(ang).sum(axis=2) * math.sqrt(2.0 / len(periods))  # type: ignore[no-any-return]


def _bump(h: Arr, centre: float, width: float) -> Arr:
    d = np.abs(h - centre)
    d = np.minimum(d, 24.0 - d)
    return np.exp(-0.5 * (d / width) ** 2)


def regional_wind(seed: int, ts_ms: int) -> tuple[float, float]:
    """(speed m/s, direction the wind comes from in degrees) of the regional field at ``ts_ms``."""
    ph = np_rng(seed, "air-weather").uniform(0, 2 * np.pi, (6, len(_PERIODS_H)))
    t = np.array([ts_ms / HOUR_MS])
    w = _smooth(ph[3:4], _PERIODS_H, t)[0, 0]
    d = _smooth(ph[4:5], _PERIODS_H, t)[0, 0]
    return max(0.3, 2.6 + 1.3 * float(w)), float((35.0 + 80.0 * d) % 360.0)


def station_kinds(city: City, seed: int, realism: AirRealism) -> tuple[list[str], list[bool]]:
    """(kind, interval declared?) of every station under ``realism``: national stay national,
    a share of the micro stations are low-cost sensors; drawn from ``(seed, "air-kinds")``."""
    n = len(city.station_ids)
    r = np_rng(seed, "air-kinds")
    lowcost = (~city.station_national) & (r.random(n) < realism.lowcost_share)
    declared = r.random(n) < realism.declared_share
    kinds = [
        "national" if nat else ("lowcost" if low else "micro")
        for nat, low in zip(city.station_national.tolist(), lowcost.tolist(), strict=True)
    ]
    return kinds, declared.tolist()


def declare_stations(city: City, seed: int, realism: AirRealism) -> None:
    """Write the stations' kinds and (for a share of them) reporting intervals into the
    registry; nothing changes in ``"ideal"`` mode."""
    if realism.name == "ideal":
        return
    kinds, declared = station_kinds(city, seed, realism)
    reg = city.registry
    for sid, kind, dec in zip(city.station_ids, kinds, declared, strict=True):
        st = reg.stations[sid]
        interval = INTERVAL_S[kind] if kind != "national" or realism.hourly_national else 60.0
        reg.stations[sid] = msgspec.structs.replace(
            st,
            kind=kind,
            interval_s=interval if dec else None,
        )


class AirStream:
    kind = "air"

    def __init__(
        self,
        city: City,
        seed: int,
        start_ms: int,
        end_ms: int,
        *,
        pollution: float = 1.0,
        plumes: tuple[Plume, ...] = (),
        episodes: tuple[Episode, ...] = (),
        faults: tuple[Fault, ...] = (),
        realism: AirRealism = AIR_STATIONS["ideal"],
    ) -> None:
        self.city, self.seed = city, seed
        self.realism = realism
        self.start_ms, self.end_ms = start_ms, end_ms
        self.pollution = pollution
        self.plumes, self.episodes, self.faults = plumes, episodes, faults
        self.ids = city.station_ids
        n = len(self.ids)
        self.hashes = [entity_hash(s) for s in self.ids]
        stations = city.registry.stations
        # Partitioned as the flow keys air: by district (citywatch.partitioning).
        self.part_keys = [
            entity_hash(partition_key("air", s, district=stations[s].district)) for s in self.ids
        ]
        self.int_phase = [h % MINUTE_MS for h in self.hashes]
        self.phase = np.array(self.int_phase, dtype=np.int64)
        self.district = np.array(city.station_district, dtype=np.int64)
        self.national = city.station_national
        r = np_rng(seed, "air-stations")
        self.f_pm = r.lognormal(0.0, 0.18, n)
        self.ratio10 = r.uniform(1.45, 1.9, n)
        self.road = r.lognormal(0.0, 0.3, n)
        self.f_so2 = r.lognormal(0.0, 0.25, n)
        self.t_off = r.normal(0.0, 0.5, n)
        self.exposure = r.uniform(0.6, 1.3, n)
        self.sigma = np.where(self.national, 0.04, 0.09)
        self.cal_min = r.integers(60, 240, n)  # minute of the local day of the gas calibration
        self.st_phase = r.uniform(0, 2 * np.pi, (n, len(_STATION_PERIODS_H)))
        self.weather_phase = np_rng(seed, "air-weather").uniform(0, 2 * np.pi, (6, len(_PERIODS_H)))
        self.district_phase = np_rng(seed, "air-districts").uniform(
            0, 2 * np.pi, (len(city.geo.specs), len(_PERIODS_H))
        )
        self._cache: tuple[int, dict[str, Arr], dict[str, Arr]] | None = None
        self._hourly: tuple[int, dict[str, list[float | None]]] | None = None
        # how the stations report ("real" mode: air_realism.py)
        kinds, _ = station_kinds(city, seed, realism)
        self.lowcost = np.array([k == "lowcost" for k in kinds], dtype=bool)
        self.hourly = self.national & realism.hourly_national
        self.calibrated = realism.weather == "calibrated"
        if self.calibrated:
            self.sigma = np.where(self.national, 0.04, np.where(self.lowcost, 0.15, 0.09))
            rc = np_rng(seed, "air-weather-cal")
            self.reg_proc = Spectral(rc, 1, *REGIONAL)
            self.dist_proc = Spectral(rc, len(city.geo.specs), *DISTRICT)
            self.st_proc = Spectral(rc, n, *STATION)
            self.coarse_proc = Spectral(rc, 1, 1.0, 12.0)
            # reference stations' PM10/PM2.5: fine-dominated city air, coarse share varying
            self.coarse0 = rc.uniform(0.12, 0.45, n)
        rates = np.where(self.national, realism.national_gap_rate, realism.micro_gap_rate)
        self.gaps = (
            Gaps(seed, rates, realism.platform_outage_rate, self.hourly)
            if rates.any() or realism.platform_outage_rate > 0
            else None
        )
        self.uploads = (
            Uploads(seed, ~self.hourly, realism.late_share) if realism.late_share > 0 else None
        )
        self.low_period = int(realism.lowcost_interval_s * 1000)
        self.low_phase = np.array([h % self.low_period for h in self.hashes], dtype=np.int64)

    # -- the model ---------------------------------------------------------------------------

    def _true(self, h0: int) -> dict[str, Arr]:
        """Fault-free quantized readings of every station for the 60 minutes from ``h0``."""
        n = len(self.ids)
        t = h0 + np.arange(60, dtype=np.int64) * MINUTE_MS
        t_h = t / HOUR_MS
        hod = ((t + TZ_OFFSET_MS) % DAY_MS) / HOUR_MS
        dow = ((t + TZ_OFFSET_MS) // DAY_MS + 3) % 7
        weekend = (dow >= 5).astype(np.float64)
        rng = np_rng(self.seed, "air", h0)
        g = _smooth(self.weather_phase, _PERIODS_H, t_h)  # rows: pm, temp, rh, wind, dir, spare
        dist = _smooth(self.district_phase, _PERIODS_H, t_h)[self.district]
        st = _smooth(self.st_phase, _STATION_PERIODS_H, t_h)
        front = np.zeros(60)
        if self.calibrated:
            front = fronts(self.seed, t)
            reg = self.reg_proc.at(t_h)[0] + front
            dist = self.dist_proc.at(t_h)[self.district]
            log_load = reg[None, :] + dist + self.st_proc.at(t_h)
            load = np.exp(log_load) * self.pollution
            st = np.zeros((n, 60))  # the station process is in the load already
        else:
            load = np.exp(0.28 * g[0][None, :] + 0.14 * dist) * self.pollution
        ep = np.ones((n, 60))
        calm = np.ones((n, 60))  # episodes come with stagnant air: the wind drops
        for e in self.episodes:
            ramp = np.interp(t, [e.t0, e.t_full, e.t_fade, e.t1], [0.0, 1.0, 1.0, 0.0])
            mask = np.isin(self.district, e.districts)
            ep[mask] *= 1.0 + (e.factor - 1.0) * ramp[None, :]
            calm[mask] *= 1.0 - 0.55 * ramp[None, :]
        rush_wd = _bump(hod, 8.0, 1.2) + 0.9 * _bump(hod, 18.0, 1.5)
        rush = (1 - weekend) * rush_wd + weekend * 0.5 * _bump(hod, 11.0, 3.0)
        if self.calibrated:
            di_pm = diurnal_pm(hod) * (1.0 - 0.05 * weekend)
        else:
            di_pm = (
                1.0
                + 0.22 * _bump(hod, 8.5, 1.6)
                + 0.35 * _bump(hod, 21.0, 2.5)
                - 0.18 * _bump(hod, 14.5, 2.5)
            ) * (1.0 - 0.05 * weekend)

        def noise(scale: float = 1.0) -> Arr:
            return np.exp(rng.normal(0.0, 1.0, (n, 60)) * self.sigma[:, None] * scale)

        pm25 = 38.0 * self.f_pm[:, None] * di_pm[None, :] * load * ep * np.exp(0.1 * st) * noise()
        plume = np.zeros((n, 60))
        for p in self.plumes:
            plume[p.station] += p.peak * _plume_shape(t + self.phase[p.station], p.t0, p.t1)
        pm25 = pm25 + plume
        if self.calibrated:  # analysers read a few tenths of µg/m³ either way at any level
            pm25 = np.maximum(pm25 + rng.normal(0.0, 1.0, (n, 60)), 0.0)
        if self.calibrated:
            # coarse share: lower in humid, stagnant, episode air (fine particles dominate)
            # at reference stations (an optical counter's ratio is set by its algorithm)
            # the coarse share follows the regional aerosol: every station sees it
            shared = 0.5 * self.coarse_proc.at(t_h, np.zeros(1, dtype=np.int64))
            coarse = self.coarse0[:, None] * np.exp(shared) / ep
            coarse_opt = (self.ratio10[:, None] - 1.0) * np.exp(shared)
            ratio = 1.0 + np.where(self.national[:, None], coarse, coarse_opt)
        else:
            ratio = self.ratio10[:, None]
        pm10 = pm25 * ratio * (1.0 + 0.15 * rush[None, :]) * noise() + 0.4 * plume
        if self.calibrated:
            pm10 = pm10 + rng.normal(0.0, 1.5, (n, 60))
        if self.realism.natural_inversion:
            # reference stations: two analysers, two errors (constant within the hour, so the
            # hourly averages keep them); one optical counter (micro, low-cost) never inverts
            ra = np_rng(self.seed, "air-analyser", h0)
            s25, s10, s_abs = ANALYSER
            # Student t (3 degrees of freedom, sd as given): now and then an hour far off
            g25, g10 = (
                ra.standard_t(3, n) * s25 / math.sqrt(3),
                ra.standard_t(3, n) * s10 / math.sqrt(3),
            )
            e25 = np.exp(g25)[:, None] * pm25 + ra.normal(0, s_abs, n)[:, None]
            e10 = np.exp(g10)[:, None] * pm10 + ra.normal(0, s_abs, n)[:, None]
            ref = self.national[:, None]
            # an unlabelled inversion stays within the two analysers' uncertainty (8 % + 4
            # µg/m³ here; the t tails would now and then go beyond, which is a fault's to do)
            e25 = np.minimum(e25, e10 * 1.08 + 4.0)
            pm25 = np.where(ref, np.maximum(e25, 0.0), pm25)
            pm10 = np.where(ref, np.maximum(e10, 0.0), np.maximum(pm10, pm25 + 2.0))
        else:
            pm10 = np.maximum(pm10, pm25 + 2.0)
        gas_load = np.sqrt(load)
        no2 = 28.0 * self.road[:, None] * (0.6 + 0.6 * rush[None, :]) * gas_load * noise(1.5)
        no2 = no2 + plume / 6.0
        o3 = 18.0 + 75.0 * _bump(hod, 14.5, 2.8)[None, :] * np.clip(1 - 0.004 * no2, 0.3, 1)
        o3 = o3 * np.exp(0.1 * g[0][None, :]) * noise(1.5)
        so2 = 7.0 * self.f_so2[:, None] * (1 + 0.2 * _bump(hod, 10.0, 3.0)[None, :]) * noise(2.0)
        so2 = so2 + plume / 12.0
        co = 0.55 * (1 + 0.25 * rush[None, :]) * gas_load * noise(1.5) + plume / 300.0
        temp = 12.0 + 4.5 * np.cos(2 * np.pi * (hod - 14.5) / 24)[None, :] + 1.5 * g[1][None, :]
        temp = temp + self.t_off[:, None] + rng.normal(0.0, 0.2, (n, 60))
        rh = 72.0 - 14.0 * np.cos(2 * np.pi * (hod - 14.5) / 24)[None, :] + 6.0 * g[2][None, :]
        rh = np.clip(rh + rng.normal(0.0, 2.0, (n, 60)), 25.0, 100.0)
        wind = np.maximum(0.3, 2.6 + 1.3 * g[3] - 1.5 * front)[None, :] * self.exposure[:, None]
        wind = wind * calm
        wind = np.clip(wind * np.exp(rng.normal(0.0, 0.15, (n, 60))), 0.0, 30.0)
        wdir = (35.0 + 80.0 * g[4])[None, :] + rng.normal(0.0, 12.0, (n, 60))
        out = {
            "pm25": np.round(pm25),
            "pm10": np.round(pm10),
            "no2": np.round(no2),
            "so2": np.round(np.round(so2 / 2.62) * 2.62),
            "o3": np.round(np.round(o3 / 1.96) * 1.96),
            "co": np.round(co, 1),
            "temp_c": np.round(temp, 1),
            "rh": np.round(rh),
            "wind_ms": np.round(wind, 1),
            "wind_deg": np.round(wdir % 360.0) % 360.0,
        }
        # missing values: single readings, nightly gas calibration, micro-sensor outages
        for ch in CHANNELS:
            out[ch][rng.random((n, 60)) < 0.003] = np.nan
        mod = (((t + TZ_OFFSET_MS) % DAY_MS) // MINUTE_MS)[None, :]
        cal = (
            self.national[:, None]
            & (mod >= self.cal_min[:, None])
            & (mod < self.cal_min[:, None] + 10)
        )
        for ch in ("no2", "so2", "o3", "co"):
            out[ch][cal] = np.nan
        outage_start = rng.integers(0, 60, n)
        outage_len = rng.integers(5, 16, n)
        has_outage = (~self.national) & (rng.random(n) < 0.01)
        m = np.arange(60)[None, :]
        blk = (
            has_outage[:, None]
            & (m >= outage_start[:, None])
            & (m < (outage_start + outage_len)[:, None])
        )
        for ch in POLLUTANTS:
            out[ch][blk] = np.nan
        if self.gaps is not None:  # whole hours without a reading ("real" mode)
            gone = self.gaps.missing(h0)
            for ch in CHANNELS:
                out[ch][gone] = np.nan
        # a plume or episode never goes missing at its station in its first minutes: keeps
        # the truth visible (a real analyser could drop out, but then there is no label to hit)
        return out

    def _measured(self, h0: int, true: dict[str, Arr]) -> dict[str, Arr]:
        meas = {k: v.copy() for k, v in true.items()}
        t = h0 + np.arange(60, dtype=np.int64) * MINUTE_MS
        for f in self.faults:
            s = f.station
            ts = t + self.phase[s]  # the records' own timestamps: labels are exact
            cols = (ts >= f.t0) & (ts < f.t1)
            if not cols.any():
                continue
            if f.kind == "stuck":
                frozen = self._frozen(f)
                for ch in STUCK_CHANNELS[f.channel]:
                    meas[ch][s, cols] = frozen[ch]
            elif f.kind == "range":
                rng = np_rng(self.seed, "air-fault", f.station, f.t0, h0)
                first = int(np.flatnonzero(cols)[0])
                hit = cols & (rng.random(60) < 0.75)
                if ts[first] - f.t0 < MINUTE_MS:
                    hit[first] = True
                meas[f.channel][s, hit] = f.value
            elif f.kind == "drift":
                gain = 1.0 + f.value * (ts[cols] - f.t0) / HOUR_MS
                meas[f.channel][s, cols] = np.round(true[f.channel][s, cols] * gain, 0)
            elif f.kind == "inversion":
                rng = np_rng(self.seed, "air-fault", f.station, f.t0, h0)
                ratio = rng.uniform(0.55, 0.8, int(cols.sum()))
                pm25 = meas["pm25"][s, cols]
                # the PM10 channel reads low by more than the two analysers' uncertainty
                # (twice the 8 % + 4 µg/m³ a clean hour may show): at 15 µg/m³ a 0.8 ratio
                # alone would be an inversion nobody can tell from noise
                low = np.minimum(pm25 * ratio, (pm25 - INVERSION_ABS) / INVERSION_REL)
                meas["pm10"][s, cols] = np.round(np.maximum(low, 0.0))
        return meas

    def _frozen(self, f: Fault) -> dict[str, float]:
        first = f.t0 - self.int_phase[f.station]  # minute slot of the first stuck record
        if first % MINUTE_MS:
            first += MINUTE_MS - first % MINUTE_MS
        h0 = first - first % HOUR_MS
        true = self._true(h0)
        m = (first - h0) // MINUTE_MS
        out = {}
        for ch in POLLUTANTS:
            row = true[ch][f.station]
            vals = row[: m + 1][~np.isnan(row[: m + 1])]
            fallback = row[~np.isnan(row)]
            v = vals[-1] if len(vals) else (fallback[0] if len(fallback) else 10.0)
            out[ch] = float(v)
        return out

    def hour(self, h0: int) -> tuple[dict[str, Arr], dict[str, Arr]]:
        """(true, measured) arrays [station, minute] of the hour starting at ``h0``; cached."""
        if self._cache is None or self._cache[0] != h0:
            true = self._true(h0)
            self._cache = (h0, true, self._measured(h0, true))
        return self._cache[1], self._cache[2]

    # -- the stream --------------------------------------------------------------------------

    def chunk(self, w0: int) -> Chunk:
        h0 = w0 - w0 % HOUR_MS
        m = (w0 - h0) // MINUTE_MS
        _, meas = self.hour(h0)
        cols = {ch: meas[ch][:, m].tolist() for ch in CHANNELS}
        out = Chunk()
        gone = self.gaps.missing(h0) if self.gaps is not None else None
        held: npt.NDArray[np.bool_] | None = None
        resend: list[tuple[int, list[int]]] = []
        if self.uploads is not None:
            held, resend = self.uploads.state(w0)
        if m == 0 and self.hourly.any() and self.start_ms <= h0 < self.end_ms:
            hourly = self.hourly_values(h0)
            for s in np.flatnonzero(self.hourly).tolist():
                if gone is None or not gone[s]:
                    vals = {ch: hourly[ch][s] for ch in CHANNELS}
                    enc = encode(Air(ts=h0, station=self.ids[s], **vals))
                    out.add(h0, self.part_keys[s], enc)
        for s, sid in enumerate(self.ids):
            if self.hourly[s] or (held is not None and held[s]) or (gone is not None and gone[s]):
                continue  # hourly, holding its readings back, or in a gap (no record at all)
            self._emit(out, s, sid, w0, cols)
        for s, minutes in resend:  # buffered readings sent on reconnection: late
            if gone is not None and gone[s]:
                continue
            for mm in minutes:
                c = {ch: meas[ch][:, (mm - h0) // MINUTE_MS].tolist() for ch in CHANNELS}
                self._emit(out, s, self.ids[s], mm, c)
        return out

    def _emit(self, out: Chunk, s: int, sid: str, w0: int, cols: dict[str, list[float]]) -> None:
        """The readings of station ``s`` taken in the minute from ``w0`` (one for a minute
        station, 0-1 for a low-cost sensor at its jittered ~150 s steps)."""
        if not self.lowcost[s]:
            ts = w0 + int(self.phase[s])
            if self.start_ms <= ts < self.end_ms:
                vals = {ch: _num(cols[ch][s]) for ch in CHANNELS}
                out.add(ts, self.part_keys[s], encode(Air(ts=ts, station=sid, **vals)))
            return
        period, phase = self.low_period, int(self.low_phase[s])
        k0 = -((phase - w0) // period)  # first step at or after w0 (before its jitter)
        for k in (k0 - 1, k0, k0 + 1):
            mix = _mix(k * 0x9E3779B97F4A7C15 + self.hashes[s])
            if mix % 20 == 0:  # 5 % of the readings are lost
                continue
            ts = phase + k * period + (mix % 30_001) - 15_000
            if not (w0 <= ts < w0 + MINUTE_MS) or not (self.start_ms <= ts < self.end_ms):
                continue
            vals = {ch: _num(cols[ch][s]) if ch in LOWCOST_CHANNELS else None for ch in CHANNELS}
            out.add(ts, self.part_keys[s], encode(Air(ts=ts, station=sid, **vals)))

    def hourly_values(self, h0: int) -> dict[str, list[float | None]]:
        """What the hourly stations publish for the hour from ``h0``: the mean of the
        analysers' (measured) minute values, with at least 45 valid minutes, rounded as the
        network publishes them (CO to 0.1 mg/m³, the rest to integers; wind direction is the
        vector mean). Every station has a value; only hourly ones are published."""
        if self._hourly is not None and self._hourly[0] == h0:
            return self._hourly[1]
        _, meas = self.hour(h0)
        out: dict[str, list[float | None]] = {}
        for ch in CHANNELS:
            x = meas[ch]
            ok = ~np.isnan(x)
            cnt = ok.sum(axis=1)
            if ch == "wind_deg":
                rad = np.deg2rad(np.where(ok, x, 0.0))
                mean = np.rad2deg(np.arctan2(np.sin(rad).sum(axis=1), np.cos(rad).sum(axis=1)))
                mean = np.round(mean % 360.0) % 360.0
            else:
                mean = np.where(ok, x, 0.0).sum(axis=1) / np.maximum(cnt, 1)
                mean = np.round(mean, 1 if ch in ("co", "temp_c", "wind_ms") else 0)
            out[ch] = [float(v) if c >= 45 else None for v, c in zip(mean, cnt, strict=True)]
        self._hourly = (h0, out)
        return out

    # -- ground truth ------------------------------------------------------------------------

    def hourly_aqi(self) -> dict[int, list[tuple[int, int, str | None]]]:
        """station index -> [(hour start, AQI, primary)] of the fault-free readings, for every
        clock hour of the run with at least 45 valid minutes of each pollutant counted (the
        pollutants the station measures: PM alone for a low-cost sensor)."""
        out: dict[int, list[tuple[int, int, str | None]]] = {s: [] for s in range(len(self.ids))}
        h = self.start_ms - self.start_ms % HOUR_MS
        while h < self.end_ms:
            true, _ = self.hour(h)
            t = h + np.arange(60, dtype=np.int64)[None, :] * MINUTE_MS + self.phase[:, None]
            inside = (t >= self.start_ms) & (t < self.end_ms)
            means: dict[str, list[float | None]] = {}
            for ch in POLLUTANTS:
                ok = inside & ~np.isnan(true[ch])
                cnt = ok.sum(axis=1)
                tot = np.where(ok, true[ch], 0.0).sum(axis=1)
                means[ch] = [
                    float(tot[i] / cnt[i]) if cnt[i] >= 45 else None for i in range(len(cnt))
                ]
            for s in out:
                # a low-cost sensor has no gas analysers: its AQI is the one of its PM
                chans = LOWCOST_CHANNELS[:2] if self.lowcost[s] else POLLUTANTS
                value, primary = aqi({ch: means[ch][s] for ch in chans})
                out[s].append((h, value, primary))
            h += HOUR_MS
        return out

    def exceedance_labels(self) -> list[Label]:
        """One label per run of consecutive clock hours whose fault-free AQI exceeds 100.

        Hours that overlap a stuck or gross-range fault of the station are left out: such faults
        mute the station's pollution alerts (docs/models/air.md), so a correct model reports none.
        """
        labels: list[Label] = []
        reg = self.city.registry
        muted: dict[int, list[tuple[int, int]]] = {}
        for f in self.faults:
            if f.kind in ("stuck", "range"):
                muted.setdefault(f.station, []).append((f.t0, f.t1))
        for s, hours in self.hourly_aqi().items():
            st = reg.stations[self.ids[s]]
            runs: list[list[tuple[int, int, str | None]]] = []
            for item in hours:
                if item[1] <= 100:
                    continue
                if any(t0 < item[0] + HOUR_MS and item[0] < t1 for t0, t1 in muted.get(s, ())):
                    continue
                if runs and runs[-1][-1][0] + HOUR_MS == item[0]:
                    runs[-1].append(item)
                else:
                    runs.append([item])
            for run in runs:
                worst = max(run, key=lambda x: x[1])
                name, cls = category(worst[1])
                labels.append(
                    Label(
                        rule="air.exceedance",
                        subject_kind="station",
                        subject_id=st.id,
                        start_ms=max(run[0][0], self.start_ms),
                        end_ms=min(run[-1][0] + HOUR_MS, self.end_ms),
                        params={
                            "category": name,
                            "class": cls,
                            "level": LEVEL_OF_CATEGORY[cls],
                            "aqi_max": worst[1],
                            "primary": worst[2],
                            "hours": len(run),
                            "lat": st.lat,
                            "lon": st.lon,
                            "district": st.district,
                        },
                    )
                )
        return labels


def _plume_shape(t: npt.NDArray[np.int64], t0: int, t1: int) -> Arr:
    dur = max(t1 - t0, 1)
    up, down = t0 + 0.15 * dur, t0 + 0.7 * dur
    return np.interp(t, [t0 - 1, t0, up, down, t1], [0.0, 0.25, 1.0, 1.0, 0.0])


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of ``x`` (per-reading jitter, loss)."""
    m = 0xFFFFFFFFFFFFFFFF
    x &= m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def _num(x: float) -> float | None:
    return None if x != x else x

"""How real air-quality stations report: cadences, gaps, late uploads, and a weather calibrated
on real hourly data (``benchmarks/calibrate_air.py``).

``Scenario.air_stations`` picks a bundle from :data:`AIR_STATIONS`:

- ``"ideal"``: every station reports once a minute, the weather is the smooth sum of a few
  sinusoids of the first simulator (the bars of the air models were set on it);
- ``"calibrated"``: the ideal cadence with the calibrated weather (below);
- ``"real"``: national stations publish **hourly averages** (one record per clock hour, stamped
  at the hour's start, as the national network and the five-cities files do), micro stations
  report every minute, a fifth of the micro stations are **low-cost optical sensors** reporting
  irregularly (about every 150 s, jittered, some readings lost); stations **miss whole hours**
  (gap rate and lengths as measured on the real data, and hours when every national station is
  missing at once: the publishing platform, not the analysers); national PM2.5 and PM10 come from
  two analysers with their own errors, so **PM2.5 > PM10 within uncertainty** happens in humid,
  fine-particle hours and is not a fault; micro and low-cost sensors lose their connection for
  a few minutes and **re-send the buffered readings late** (after newer records of other
  stations, up to 4 minutes late); the weather is **calibrated**: a regional process with the
  real data's autocorrelation, district and station processes, cold fronts that clean the air
  within hours and let it build up again over days (the heavy tails of real hour-to-hour
  changes), and the diurnal profile fitted across the four cities.

Everything is a pure function of (seed, station, time): a window can be generated alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.clock import DAY_MS, HOUR_MS, MINUTE_MS, TZ_OFFSET_MS
from simulators.seeds import np_rng

__all__ = [
    "AIR_STATIONS",
    "DIURNAL_PM",
    "AirRealism",
    "Gaps",
    "Spectral",
    "Uploads",
    "diurnal_pm",
    "fronts",
]

Arr = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AirRealism:
    """How the stations of a run report (see the module docstring)."""

    name: str
    #: "smooth" (the first simulator's sinusoids) or "calibrated" (fitted on real hourly data).
    weather: str = "smooth"
    #: National stations publish one hourly average per clock hour instead of minute readings.
    hourly_national: bool = False
    #: Share of the micro stations that are low-cost optical sensors (irregular, ~150 s).
    lowcost_share: float = 0.0
    lowcost_interval_s: float = 150.0
    #: Share of stations whose reporting interval is declared in the registry (the rest: None).
    declared_share: float = 0.0
    #: Whole-hour gaps per station-day (national; micro and low-cost get ``micro_gap_rate``).
    national_gap_rate: float = 0.0
    micro_gap_rate: float = 0.0
    #: Probability per day of a platform outage: every national station misses 1-3 hours.
    platform_outage_rate: float = 0.0
    #: Two analysers, two errors: national hourly PM2.5 may exceed PM10 within uncertainty.
    natural_inversion: bool = False
    #: Share of micro / low-cost station-days with a 2-4 minute connection loss whose readings
    #: are re-sent on reconnection (late, after newer records).
    late_share: float = 0.0


AIR_STATIONS: Final[dict[str, AirRealism]] = {
    "ideal": AirRealism("ideal"),
    # the calibrated weather alone, every station still once a minute: tells what the weather
    # does to a model apart from the cadences and gaps
    "calibrated": AirRealism("calibrated", weather="calibrated"),
    "real": AirRealism(
        "real",
        weather="calibrated",
        hourly_national=True,
        lowcost_share=0.2,
        declared_share=0.5,
        national_gap_rate=0.5,
        micro_gap_rate=0.2,
        platform_outage_rate=0.1,
        natural_inversion=True,
        late_share=0.3,
    ),
}

# -- calibrated weather (benchmarks/calibrate_air.py measures the real data and this) -----------

#: Diurnal PM profile, log-harmonic:
#: ``log p(h) = A1 cos(2pi (h - P1)/24) + A2 cos(4pi (h - P2)/24)``
#: fitted to the mean of the four cities' profiles (five-cities data, 11 series, 2013-2015;
#: per-city fits in docs/simulators.md): high in the evening and night, a morning shoulder at
#: 8-9 h, low in the afternoon. The second harmonic (peaks near 9 h and 21 h) holds in every
#: city; the first one's size and phase vary most between them.
DIURNAL_PM: Final = (0.058, 2.6, 0.057, 9.3)

#: Log-PM2.5 processes: (sd, correlation time in hours) of the regional, district and station
#: parts; with the fronts and the diurnal cycle they give the real lag-1 / lag-24
#: autocorrelation and within-month spread of hourly log PM2.5.
REGIONAL: Final = (0.42, 28.0)
DISTRICT: Final = (0.14, 10.0)
STATION: Final = (0.12, 3.0)
#: Cold fronts: probability per day, log drop (lo, hi), hours to fall (lo, hi), hours to
#: build up again (lo, hi). They give hour-to-hour changes their heavy lower tail.
FRONTS: Final = (0.35, (0.6, 1.5), (0.5, 3.0), (24.0, 72.0))
#: Hourly analyser error of a national station (log sd), PM2.5 and PM10, plus an absolute
#: part in µg/m³ (beta attenuation monitors: a few µg/m³ at low loads).
ANALYSER: Final = (0.05, 0.06, 2.0)


def diurnal_pm(hod: Arr, params: tuple[float, float, float, float] = DIURNAL_PM) -> Arr:
    """Multiplicative diurnal PM factor at local hours ``hod`` (mean of the log: 0)."""
    a1, p1, a2, p2 = params
    return np.exp(
        a1 * np.cos(2 * np.pi * (hod - p1) / 24.0) + a2 * np.cos(4 * np.pi * (hod - p2) / 24.0)
    )


class Spectral:
    """Independent stationary Gaussian-like processes as pure functions of time.

    Each row is a sum of ``k`` sinusoids with periods log-spaced from 1 h to 60 days (each row's
    jittered, so no period is shared and none locks onto the day), random phases and
    amplitudes following the spectrum of an Ornstein-Uhlenbeck process with correlation time
    ``tau_h`` (Rayleigh-distributed so the sum is close to Gaussian), scaled to unit variance
    in expectation, times ``sd``. No state: any window can be computed alone.
    """

    def __init__(self, rng: np.random.Generator, rows: int, sd: float, tau_h: float, k: int = 40):
        periods = np.geomspace(1.0, 60 * 24.0, k)
        step = math.log(periods[1] / periods[0])
        omega = 2 * np.pi / periods
        d_omega = omega * step  # log-spaced: bandwidth proportional to frequency
        weight = d_omega * tau_h / (1.0 + (omega * tau_h) ** 2)  # OU spectrum x bandwidth
        weight = weight / weight.sum()
        amp = np.sqrt(2.0 * weight)[None, :] * rng.rayleigh(1.0 / math.sqrt(2.0), (rows, k))
        jitter = np.exp(rng.uniform(-step / 2, step / 2, (rows, k)))
        self.omega = omega[None, :] * jitter
        self.amp = amp * sd
        self.phase = rng.uniform(0, 2 * np.pi, (rows, k))

    def at(self, t_h: Arr, rows: npt.NDArray[np.int64] | None = None) -> Arr:
        """[row, time] values at hours ``t_h`` (epoch hours), all rows or ``rows``."""
        amp = self.amp if rows is None else self.amp[rows]
        ph = self.phase if rows is None else self.phase[rows]
        om = self.omega if rows is None else self.omega[rows]
        ang = t_h[None, :, None] * om[:, None, :] + ph[:, None, :]
        return np.einsum("rtk,rk->rt", np.sin(ang), amp)  # type: ignore[no-any-return]


def fronts(seed: int, t: npt.NDArray[np.int64]) -> Arr:
    """Regional log-PM change from cold fronts at times ``t`` (ms): 0 or negative.

    Each local day draws, with probability ``FRONTS[0]``, one front: the log level falls by a
    depth over a few hours and builds up again linearly over one to three days. Fronts of the
    previous four days still count, so the value is a pure function of time.
    """
    p, depth, fall, rise = FRONTS
    out = np.zeros(len(t))
    day0 = int((int(t[0]) + TZ_OFFSET_MS) // DAY_MS)
    for d in range(day0 - 4, day0 + 1):
        r = np_rng(seed, "air-front", d)
        if r.random() >= p:
            continue
        t0 = d * DAY_MS - TZ_OFFSET_MS + int(r.uniform(0, DAY_MS))
        dep, f_h, r_h = r.uniform(*depth), r.uniform(*fall), r.uniform(*rise)
        x = (t - t0) / HOUR_MS
        shape = np.where(
            x < 0, 0.0, np.where(x < f_h, x / f_h, np.maximum(0.0, 1.0 - (x - f_h) / r_h))
        )
        out -= dep * shape
    return np.maximum(out, -1.8)


class Gaps:
    """Whole hours a station does not report: per station-day a Poisson number of gaps, mostly
    1-3 h, some 6-70 h (the shares of the real data), plus platform outages that take every
    national station off for 1-3 hours at once. Gaps of the previous three days still count."""

    def __init__(
        self, seed: int, national_rate: Arr, platform_rate: float, national: npt.NDArray[np.bool_]
    ) -> None:
        self.seed = seed
        self.rate = national_rate
        self.platform_rate = platform_rate
        self.national = national.astype(bool)
        self._cache: dict[int, npt.NDArray[np.bool_]] = {}

    def day_gaps(self, day: int) -> list[tuple[npt.NDArray[np.int64], Arr, Arr]]:
        """(stations, start hour since the day's start, length h) of the gaps drawn on ``day``."""
        r = np_rng(self.seed, "air-gaps", day)
        n = len(self.rate)
        count = r.poisson(self.rate)
        st = np.repeat(np.arange(n), count)
        m = len(st)
        start = r.uniform(0, 24, m).astype(np.int64)
        long = r.random(m) < 0.12
        short_len = r.geometric(0.65, m)
        long_len = np.minimum(6 + r.exponential(24.0, m), 70).astype(np.int64)
        length = np.where(long, long_len, short_len).astype(np.float64)
        gaps = [(st, start.astype(np.float64), length)]
        if r.random() < self.platform_rate:
            nat = np.flatnonzero(self.national)
            h = float(r.integers(0, 24))
            ln = float(r.integers(1, 4))
            gaps.append((nat, np.full(len(nat), h), np.full(len(nat), ln)))
        return gaps

    def missing(self, h0: int) -> npt.NDArray[np.bool_]:
        """Stations with no reading in the clock hour starting at ``h0``."""
        if h0 in self._cache:
            return self._cache[h0]
        local = h0 + TZ_OFFSET_MS
        day = local // DAY_MS
        hour = (local % DAY_MS) // HOUR_MS
        out = np.zeros(len(self.rate), dtype=bool)
        for d in range(day - 3, day + 1):
            at = hour + (day - d) * 24  # the hour counted from day d's start
            for st, start, length in self.day_gaps(d):
                hit = (start <= at) & (at < start + length)
                out[st[hit]] = True
        if len(self._cache) > 4:
            self._cache.clear()
        self._cache[h0] = out
        return out


class Uploads:
    """Connection losses of minute and low-cost stations: on ``share`` of station-days one loss
    of 2-4 minutes inside one clock hour; the readings taken meanwhile are sent on
    reconnection, late and after newer records of other stations."""

    def __init__(self, seed: int, eligible: npt.NDArray[np.bool_], share: float):
        self.seed, self.eligible, self.share = seed, eligible, share
        self._day: tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    def window(self, day: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(first lost minute of the day, minutes lost) per station; -1 = no loss that day."""
        if self._day is None or self._day[0] != day:
            r = np_rng(self.seed, "air-uploads", day)
            n = len(self.eligible)
            has = self.eligible & (r.random(n) < self.share)
            hour = r.integers(0, 24, n)
            length = r.integers(2, 5, n)
            first = hour * 60 + r.integers(0, 60 - 5, n)
            self._day = (day, np.where(has, first, -1), length)
        return self._day[1], self._day[2]

    def state(self, w0: int) -> tuple[npt.NDArray[np.bool_], list[tuple[int, list[int]]]]:
        """(stations holding back the reading of minute ``w0``, [(station, [late minute
        starts])] of the stations reconnecting in ``w0``)."""
        local = w0 + TZ_OFFSET_MS
        day = local // DAY_MS
        mod = (local % DAY_MS) // MINUTE_MS
        first, length = self.window(day)
        held = (first >= 0) & (first <= mod) & (mod < first + length)
        back = np.flatnonzero((first >= 0) & (first + length == mod))
        resend = [
            (int(s), [w0 - (int(length[s]) - i) * MINUTE_MS for i in range(int(length[s]))])
            for s in back
        ]
        return held, resend

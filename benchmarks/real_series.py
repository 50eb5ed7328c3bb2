"""Load the real public series the detector benchmarks run on (read-only, never copied).

    from benchmarks.real_series import data_dir, load_all, load_gecco

``data_dir(arg)`` resolves the data folder: ``--data`` if given, else the environment variable
``CITYWATCH_DATA``, else the nearest ``shared/data`` folder beside the repository or one of
its parents. Every loader returns
:class:`Series`: event times in epoch milliseconds (UTC), values as float64 with NaN for a
missing reading, and for GECCO the challenge's event label per row.

Quirks handled here (see the data folder's README):

* five cities: ``NA`` is missing; hours are local time (UTC+8) from year/month/day/hour;
  Guangzhou ``PM_City Station`` duplicates ``PM_US Post`` and is left out;
* Aberdeen: semicolon-separated, ISO UTC times, irregular ~2.5 min steps;
* GECCO: ``NA`` is missing, ``EVENT`` is ``TRUE``/``FALSE``; the values are read as numbers,
  never as text (the event rows were rounded in this copy: formatting carries no signal);
* steel plant: UTF-8 byte-order mark, CRLF, ``DD/MM/YYYY HH:MM`` where the midnight row
  closes the day it is dated (``NSM`` 0 means +24 h); times are local (UTC+9).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "GECCO_CHANNELS",
    "Series",
    "data_dir",
    "load_aberdeen",
    "load_all",
    "load_five_cities",
    "load_gecco",
    "load_steel",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: GECCO column -> our water channel name.
GECCO_CHANNELS: dict[str, str] = {
    "Tp": "temp_c",
    "Cl": "chlorine_mg_l",
    "pH": "ph",
    "Redox": "redox_mv",
    "Leit": "conductivity_us_cm",
    "Trueb": "turbidity_ntu",
    "Cl_2": "chlorine2_mg_l",
    "Fm": "flow_m3_h",
    "Fm_2": "flow2_m3_h",
}


@dataclass(slots=True)
class Series:
    """One real series: ``dataset`` (``air-cities``, ``air-aberdeen``, ``water``, ``power``)."""

    dataset: str
    name: str
    t: I64
    x: F64
    #: per-point ground truth where the source has one (GECCO events), else None
    label: npt.NDArray[np.bool_] | None = None
    extra: dict[str, F64] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int | None) -> Series:
        """The first ``n`` points (all when None)."""
        if n is None or n >= len(self.x):
            return self
        lab = None if self.label is None else self.label[:n]
        return Series(self.dataset, self.name, self.t[:n], self.x[:n], lab)


def data_dir(arg: str | None = None) -> Path:
    """``arg``, else ``$CITYWATCH_DATA``, else a ``shared/data`` folder beside the repository.

    (The nearest ``shared/data`` above the checkout, so a worktree nested deeper works too.)
    """
    if arg:
        return Path(arg)
    env = os.environ.get("CITYWATCH_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    # beside the checkout, or above it: a git worktree nested deeper finds the same folder
    for up in repo.parents:
        if (up / "shared" / "data").is_dir():
            return up / "shared" / "data"
    return repo.parent / "shared" / "data"


def _num(text: str) -> float:
    t = text.strip()
    if not t or t == "NA":
        return float("nan")
    return float(t)


def _rows(path: Path, *, delimiter: str = ",") -> Iterator[dict[str, str]]:
    with gzip.open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        yield from csv.DictReader(text, delimiter=delimiter)


_CST = timezone(timedelta(hours=8))
_KST = timezone(timedelta(hours=9))


def load_five_cities(root: Path) -> list[Series]:
    """Hourly PM2.5 of four Chinese cities: one series per station column."""
    out: list[Series] = []
    for path in sorted((root / "air" / "five-cities").glob("*PM*.csv.gz")):
        city = path.name.split("PM")[0]
        rows = list(_rows(path))
        cols = [
            c
            for c in rows[0]
            if c.startswith("PM_") and not (city == "Guangzhou" and c == "PM_City Station")
        ]
        t = np.array(
            [
                int(
                    datetime(
                        int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]), tzinfo=_CST
                    ).timestamp()
                    * 1000
                )
                for r in rows
            ],
            dtype=np.int64,
        )
        for c in cols:
            x = np.array([_num(r[c]) for r in rows], dtype=np.float64)
            out.append(Series("air-cities", f"{city}/{c[3:]}", t, x))
    return out


def load_aberdeen(root: Path) -> list[Series]:
    """Aberdeen SDS011 sensors, ~2.5 min irregular: PM10 (P1) and PM2.5 (P2) per sensor."""
    out: list[Series] = []
    for path in sorted((root / "air" / "sensor-community-aberdeen").glob("*.csv.gz")):
        sensor = path.name.split("_")[2]
        t_list: list[int] = []
        p1: list[float] = []
        p2: list[float] = []
        for r in _rows(path, delimiter=";"):
            ts = datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC)
            t_list.append(int(ts.timestamp() * 1000))
            p1.append(_num(r["P1"]))
            p2.append(_num(r["P2"]))
        t = np.array(t_list, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        t = t[order]
        out.append(Series("air-aberdeen", f"{sensor}/P1", t, np.array(p1)[order]))
        out.append(Series("air-aberdeen", f"{sensor}/P2", t, np.array(p2)[order]))
    return out


def load_gecco(root: Path) -> tuple[I64, dict[str, F64], npt.NDArray[np.bool_]]:
    """GECCO 2018 training set: times, channels (our names), the EVENT label per minute."""
    path = root / "water" / "gecco2018" / "geccoIC2018Train.csv.gz"
    if not path.is_file():
        msg = f"{str(path)!r} not found (set --data or CITYWATCH_DATA to the data folder)"
        raise FileNotFoundError(msg)
    t_list: list[int] = []
    cols: dict[str, list[float]] = {c: [] for c in GECCO_CHANNELS}
    ev: list[bool] = []
    for r in _rows(path):
        ts = datetime.strptime(r["Time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        t_list.append(int(ts.timestamp() * 1000))
        for c in GECCO_CHANNELS:
            cols[c].append(_num(r[c]))
        ev.append(r["EVENT"].strip().upper() == "TRUE")
    t = np.array(t_list, dtype=np.int64)
    chans = {GECCO_CHANNELS[c]: np.array(v, dtype=np.float64) for c, v in cols.items()}
    return t, chans, np.array(ev, dtype=bool)


def load_water(root: Path) -> list[Series]:
    t, chans, ev = load_gecco(root)
    return [Series("water", name, t, x, ev) for name, x in chans.items()]


def load_steel(root: Path) -> list[Series]:
    """Steel plant, 15 min: energy use and the two reactive powers."""
    path = root / "power" / "steel-industry" / "Steel_industry_data.csv.gz"
    names = {
        "Usage_kWh": "usage_kwh",
        "Lagging_Current_Reactive_Power_kVarh": "lagging_kvarh",
        "Leading_Current_Reactive_Power_kVarh": "leading_kvarh",
    }
    t_list: list[int] = []
    cols: dict[str, list[float]] = {c: [] for c in names}
    for r in _rows(path):
        day = datetime.strptime(r["date"].split()[0], "%d/%m/%Y").replace(tzinfo=_KST)
        nsm = int(r["NSM"])
        # the midnight row closes the day it is dated: NSM 0 means the end of that day
        sec = nsm if nsm > 0 else 86_400
        t_list.append(int((day + timedelta(seconds=sec)).timestamp() * 1000))
        for c in names:
            cols[c].append(_num(r[c]))
    t = np.array(t_list, dtype=np.int64)
    return [Series("power", names[c], t, np.array(v, dtype=np.float64)) for c, v in cols.items()]


def load_all(root: Path) -> list[Series]:
    """Every real series; raises FileNotFoundError naming the folder when data is absent."""
    if not root.is_dir():
        msg = f"data folder {str(root)!r} not found (set --data or CITYWATCH_DATA)"
        raise FileNotFoundError(msg)
    return load_five_cities(root) + load_aberdeen(root) + load_water(root) + load_steel(root)

"""CSV air-quality data -> ``air`` events (JSON Lines) and a registry: ``citywatch import``.

Two layouts, told apart from the header (or forced with ``layout``):

- **long**: one row per reading, with a station column (``station``, ``station_id``,
  ``sensor_id``, ``sensor``, ``device``, ``site``, ``id``: the first present, or ``--station``),
  a time column and one column per measured channel; coordinates may come per row (``lat``,
  ``lon``: a station's median is kept). The Sensor.Community archive files are this layout.
- **wide**: one row per time, one column per station (``PM_<station>``, or any pattern given as
  ``--map 'PM_{station}=pm25'``), and optional columns shared by every station of the row
  (``TEMP``, ``HUMI``...); or, with neither a station column nor a station pattern, one column
  per channel of a single station (the file's label, else its stem). The five-cities files are
  this layout.

Time: ``year``/``month``/``day``/``hour`` (``minute`` optional) columns, else the first of
``timestamp``, ``datetime``, ``date_time``, ``time``, ``ts``, ``date``, ``utc`` (or ``--time``):
ISO 8601, epoch seconds or milliseconds, or ``--time-format`` (strptime). Times without an
offset are in ``tz`` (default UTC+8, China Standard Time, like every naive time in citywatch).
A period value's ``ts`` is its period's start. Where the file labels each value by the end of
its period (China's national network publishes the 13:00-14:00 mean as 14:00, and some files
count hours 1-24), ``period_end`` moves every time back by the interval (``interval_s``, else
one hour); an hour column of 24 is then the day's last hour.

Channels are :class:`citywatch.events.Air` fields; columns are matched by name, case and
punctuation ignored (``PM2.5``, ``pm2_5``, ``P2`` -> ``pm25``; ``P1`` -> ``pm10``; ``TEMP`` ->
``temp_c``; ``HUMI`` -> ``rh``; see :data:`ALIASES`), or exactly as ``--map`` says.

Values: ``NA``, ``NaN``, ``null``, empty and the like are missing; sentinels (``-9999``,
``-999``) are missing and counted; text that is not a number and numbers outside the decoder's
physical range are missing and counted as bad values. A row whose time or station cannot be
read, or with the wrong number of fields, is a bad row: counted, the first few reported with
their line, never an exception. A reading with no pollutant value is not written (counted as
empty); a second reading of a station at the same time is dropped (counted as duplicate).

Stations get coordinates from the file or from a stations table (CSV ``id,lat,lon[,district,
kind,interval_s]`` or JSON: a list of such objects, or a registry file); ``district`` from the
file's label (``Chengdu=ChengduPM....csv``, which also prefixes its station ids:
``Chengdu/Shahepu``) or the table; ``interval_s`` from the table, else ``interval_s``, else the
median step between its readings; ``kind`` from the table, else ``kind``, else ``national``
for hourly data and ``micro`` otherwise.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "x.csv").write_bytes(b"\\xef\\xbb\\xbfyear,month,day,hour,PM_A,PM_B\\r\\n"
...                               b"2014,1,1,0,35,NA\\r\\n2014,1,1,1,-9999,40\\r\\n")
>>> known = {"X/A": {"lat": 30.6, "lon": 104.0}, "X/B": {"lat": 30.7, "lon": 104.1}}
>>> out = import_files([("X", d / "x.csv")], ImportSpec(stations=known))
>>> for _, _, r in out.records:
...     print(r.decode())
{"kind":"air","ts":1388505600000,"station":"X/A","pm25":35.0}
{"kind":"air","ts":1388509200000,"station":"X/B","pm25":40.0}
>>> out.stats.sentinels, out.stats.empty, sorted(out.registry.stations)
(1, 2, ['X/A', 'X/B'])
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
import statistics
import typing
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO, Any, Final, Literal

import msgspec
import orjson

from citywatch.errors import InputError
from citywatch.events import Air
from citywatch.registry import Registry, Station
from simulators.recorded import open_records, write_records

__all__ = [
    "ALIASES",
    "CHANNELS",
    "ImportSpec",
    "ImportStats",
    "Imported",
    "import_files",
    "parse_map",
    "parse_tz",
    "read_stations",
    "write_outputs",
]

#: The channels a column can feed: every measurement of :class:`citywatch.events.Air`.
_AIR: Final = typing.cast(msgspec.inspect.StructType, msgspec.inspect.type_info(Air))
CHANNELS: Final[tuple[str, ...]] = tuple(
    f.name for f in _AIR.fields if f.name not in ("station", "ts")
)
#: Pollutants (a reading without any of them is empty).
POLLUTANTS: Final = frozenset({"pm25", "pm10", "no2", "so2", "o3", "co"})


def _bounds() -> dict[str, tuple[float, float]]:
    """The decoder's physical range per channel, read from the event schema itself."""
    out = {}
    for f in _AIR.fields:
        t = f.type
        for sub in getattr(t, "types", (t,)):
            if isinstance(sub, msgspec.inspect.FloatType):
                lo = sub.ge if sub.ge is not None else -math.inf
                hi = sub.le if sub.le is not None else math.inf
                out[f.name] = (float(lo), float(hi))
    return out


_BOUNDS: Final = _bounds()


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: Column names (normalised: lower case, letters and digits only) -> channel.
ALIASES: Final[dict[str, str]] = {
    **{c.replace("_", ""): c for c in CHANNELS},
    "pm2p5": "pm25",
    "p2": "pm25",
    "p1": "pm10",
    "temp": "temp_c",
    "temperature": "temp_c",
    "humi": "rh",
    "humidity": "rh",
    "windspeed": "wind_ms",
    "ws": "wind_ms",
    "winddir": "wind_deg",
    "winddirection": "wind_deg",
    "wd": "wind_deg",
}
_STATION_COLS: Final = ("station", "stationid", "sensorid", "sensor", "device", "deviceid")
_STATION_COLS_LAST: Final = ("site", "siteid", "id")
_TIME_COLS: Final = ("timestamp", "datetime", "datetime", "time", "ts", "date", "utc")
_PARTS: Final = ("year", "month", "day", "hour")
_LAT: Final = ("lat", "latitude")
_LON: Final = ("lon", "lng", "long", "longitude")
#: Wide-layout column prefixes read without --map (the five-cities files: PM_<station>).
_WIDE_PREFIXES: Final = (("PM_", "pm25"),)
NA_TOKENS: Final = frozenset({"", "na", "nan", "n/a", "null", "none", "-", "--", "?"})
DEFAULT_SENTINELS: Final = (-9999.0, -999.0)
_MAX_EXAMPLES: Final = 5
_HOURLY_S: Final = 3000.0


def parse_tz(text: str) -> tzinfo:
    """``UTC``/``Z``, a fixed offset (``+08:00``, ``+8``, ``UTC+8``, ``-0530``) or an IANA
    name (``Europe/London``).

    >>> parse_tz("+08:00") == parse_tz("UTC+8") == parse_tz("+8"), parse_tz("Z")
    (True, datetime.timezone.utc)
    """
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", t, re.IGNORECASE)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            msg = f"--tz: {text!r} is not an offset within +-14:00"
            raise InputError(msg)
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        return ZoneInfo(t)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"--tz: {text!r} is not UTC, an offset like +08:00 or a zone like Asia/Shanghai"
        raise InputError(msg) from exc


def parse_map(text: str) -> dict[str, str]:
    """``"P2=pm25,P1=pm10"`` or ``"PM_{station}=pm25"`` -> column (or pattern) -> channel."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        col, sep, channel = item.partition("=")
        channel = channel.strip()
        if not sep or not col.strip() or channel not in CHANNELS:
            msg = f"--map: {item.strip()!r} is not COLUMN=CHANNEL with a channel of {CHANNELS}"
            raise InputError(msg)
        out[col.strip()] = channel
    if not out:
        msg = f"--map: {text!r} maps nothing"
        raise InputError(msg)
    return out


@dataclass(frozen=True)
class ImportSpec:
    """How to read the files (every field optional; see the module doc)."""

    layout: Literal["auto", "long", "wide"] = "auto"
    tz: tzinfo = timezone(timedelta(hours=8))
    time: tuple[str, ...] | None = None
    time_format: str | None = None
    station: str | None = None
    mapping: Mapping[str, str] | None = None
    sentinels: tuple[float, ...] = DEFAULT_SENTINELS
    kind: Literal["national", "micro", "lowcost"] | None = None
    interval_s: float | None = None
    #: times label the end of each value's period: ts = time - interval (default 1 h)
    period_end: bool = False
    encoding: str = "utf-8-sig"
    #: station id -> known fields (lat, lon, district, kind, interval_s)
    stations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class ImportStats:
    files: int = 0
    rows: int = 0
    readings: int = 0
    empty: int = 0
    bad_rows: int = 0
    bad_values: int = 0
    sentinels: int = 0
    duplicates: int = 0
    examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bad(self, where: str, why: str) -> None:
        self.bad_rows += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(f"{where}: {why}")


@dataclass
class Imported:
    """Time-ordered records ``(ts, station, json)``, the registry, the counts."""

    records: list[tuple[int, str, bytes]]
    registry: Registry
    stats: ImportStats

    def summary(self, events: Path | str, registry: Path | str) -> str:
        """The one-line summary the command prints."""
        s = self.stats
        span = ""
        if self.records:
            a = datetime.fromtimestamp(self.records[0][0] / 1000, UTC)
            b = datetime.fromtimestamp(self.records[-1][0] / 1000, UTC)
            span = f", {a:%Y-%m-%d %H:%M}..{b:%Y-%m-%d %H:%M} UTC"
        intervals = sorted(
            {st.interval_s for st in self.registry.stations.values() if st.interval_s}
        )
        every = "/".join(f"{x:g}" for x in intervals[:4]) + (" ..." if len(intervals) > 4 else "")
        return (
            f"import: {s.files} file(s), {s.rows:,} rows -> {s.readings:,} readings of "
            f"{len(self.registry.stations)} stations{span} (interval {every} s); "
            f"{s.empty:,} empty, {s.sentinels:,} sentinels, {s.bad_values:,} bad values, "
            f"{s.bad_rows:,} bad rows, {s.duplicates:,} duplicates -> {events}, {registry}"
        )


# -- reading -----------------------------------------------------------------------------------


def _open_text(path: Path, encoding: str) -> IO[str]:
    return io.TextIOWrapper(open_records(path, "import"), encoding=encoding, newline="")


def _sniff(sample: str) -> str:
    first = sample.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: first.count(d) for d in ",;\t|"}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _table(path: Path, encoding: str) -> tuple[list[str], Iterator[tuple[int, list[str]]], IO[str]]:
    fh = _open_text(path, encoding)
    try:
        sample = fh.read(65536)
        fh.seek(0)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        fh.close()
        msg = f"{path}: unreadable ({exc})"
        raise InputError(msg) from exc
    if not sample.strip():
        fh.close()
        msg = f"{path}: empty file"
        raise InputError(msg)
    reader = csv.reader(fh, delimiter=_sniff(sample))
    header = [h.strip() for h in next(reader)]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"{path}: unreadable after line {reader.line_num} ({exc})"
            raise InputError(msg) from exc
        except UnicodeDecodeError as exc:
            msg = f"{path}: not {encoding} after line {reader.line_num} (try --encoding latin-1)"
            raise InputError(msg) from exc
        except csv.Error as exc:
            msg = f"{path}: line {reader.line_num}: {exc}"
            raise InputError(msg) from exc

    return header, rows(), fh


@dataclass
class _Plan:
    """Where things are in one file's rows."""

    times: list[int]  # column indexes: one (a timestamp) or year, month, day, hour[, minute]
    station: int | None  # long layout
    #: (column, station id or None for the row's, channel)
    values: list[tuple[int, str | None, str]]
    lat: int | None = None
    lon: int | None = None
    width: int = 0
    note: str = ""


def _find(norm: list[str], names: Sequence[str]) -> int | None:
    for n in names:
        if n in norm:
            return norm.index(n)
    return None


def _plan(header: list[str], spec: ImportSpec, label: str | None, path: Path) -> _Plan:
    norm = [_norm(h) for h in header]
    exact = {h: i for i, h in enumerate(header)}

    def col(name: str, what: str) -> int:
        if name in exact:
            return exact[name]
        if _norm(name) in norm:
            return norm.index(_norm(name))
        msg = f"{path}: no column {name!r} for {what} (columns: {', '.join(header)})"
        raise InputError(msg)

    # time
    if spec.time:
        times = [col(t, "--time") for t in spec.time]
    elif all(p in norm for p in _PARTS):
        times = [norm.index(p) for p in _PARTS]
        if "minute" in norm:
            times.append(norm.index("minute"))
    else:
        t = _find(norm, _TIME_COLS)
        if t is None:
            msg = (
                f"{path}: no time column (year/month/day/hour, or one of "
                f"{', '.join(_TIME_COLS)}): give --time COLUMN"
            )
            raise InputError(msg)
        times = [t]
    # station
    station = col(spec.station, "--station") if spec.station else None
    if station is None and spec.layout != "wide":
        station = _find(norm, _STATION_COLS)
        if station is None:
            station = _find(norm, _STATION_COLS_LAST)
    if spec.layout == "long" and station is None:
        msg = f"{path}: no station column (one of {', '.join(_STATION_COLS)}): give --station"
        raise InputError(msg)
    taken = set(times) | ({station} if station is not None else set())
    plan = _Plan(times=times, station=station, values=[], width=len(header))
    if station is not None:
        plan.lat, plan.lon = _find(norm, _LAT), _find(norm, _LON)
        taken |= {i for i in (plan.lat, plan.lon) if i is not None}
    prefix = f"{label}/" if label else ""
    mapping = spec.mapping
    patterns = {k: v for k, v in (mapping or {}).items() if "{station}" in k}
    if mapping is not None:
        for src, channel in mapping.items():
            if "{station}" in src:
                continue
            i = col(src, "--map")
            if i not in taken:
                plan.values.append((i, None, channel))
        if patterns:
            plan.station = None
            for src, channel in patterns.items():
                head, _, tail = src.partition("{station}")
                for i, h in enumerate(header):
                    if i not in taken and h.startswith(head) and h.endswith(tail):
                        name = h[len(head) : len(h) - len(tail) if tail else None].strip()
                        if name:
                            plan.values.append((i, prefix + name, channel))
    else:
        wide = []
        if station is None:
            for i, h in enumerate(header):
                for head, channel in _WIDE_PREFIXES:
                    if i not in taken and h.startswith(head) and h[len(head) :].strip():
                        wide.append((i, prefix + h[len(head) :].strip(), channel))
        for i, n in enumerate(norm):
            alias = ALIASES.get(n)
            if alias is not None and i not in taken and all(i != w[0] for w in wide):
                plan.values.append((i, None, alias))
        plan.values += wide
        if wide:
            heads = ", ".join(f"{h}<station> as {c}" for h, c in _WIDE_PREFIXES)
            plan.note = f"{path.name}: read {heads} (--map 'PM_{{station}}=pm10' to change)"
    per_station = [v for v in plan.values if v[1] is not None]
    if plan.station is None and not per_station:
        # one station per file: its columns are its channels
        if not plan.values:
            msg = (
                f"{path}: cannot tell the layout: no station column ({', '.join(_STATION_COLS)}), "
                "no PM_<station> columns and no pollutant columns (pm25, P2, ...); "
                "use --station COLUMN or --map"
            )
            raise InputError(msg)
        sid = label or path.name.split(".")[0]
        plan.values = [(i, sid, c) for i, _, c in plan.values]
    if not any(c in POLLUTANTS for _, _, c in plan.values):
        msg = f"{path}: no pollutant column among {', '.join(header)} (use --map COLUMN=pm25)"
        raise InputError(msg)
    return plan


class _Acc:
    """What the files add up to: readings per (station, ts), coordinates, counts."""

    def __init__(self, spec: ImportSpec) -> None:
        self.spec = spec
        self.stats = ImportStats()
        self.readings: dict[tuple[str, int], dict[str, float]] = {}
        self.coords: dict[str, list[tuple[float, float]]] = {}
        self.district: dict[str, str] = {}
        self.sentinels = frozenset(spec.sentinels)

    def value(self, text: str, channel: str) -> float | None:
        t = text.strip()
        if t.lower() in NA_TOKENS:
            return None
        try:
            v = float(t)
        except ValueError:
            self.stats.bad_values += 1
            return None
        if not math.isfinite(v):
            return None
        if v in self.sentinels:
            self.stats.sentinels += 1
            return None
        lo, hi = _BOUNDS[channel]
        if not lo <= v <= hi:
            self.stats.bad_values += 1
            return None
        return v

    def time(self, row: list[str], cols: list[int]) -> int:
        ms = self._time(row, cols)
        if self.spec.period_end:
            ms -= int((self.spec.interval_s or 3600.0) * 1000)
        return ms

    def _time(self, row: list[str], cols: list[int]) -> int:
        tz = self.spec.tz
        if len(cols) > 1:
            y, mo, d, h, *rest = (int(float(row[i])) for i in cols)
            m = rest[0] if rest else 0
            if not (0 <= h <= (24 if self.spec.period_end else 23) and 0 <= m <= 59):
                msg = f"hour {h} minute {m} is not a time of day"
                raise ValueError(msg)
            dt = datetime(y, mo, d, tzinfo=tz) + timedelta(hours=h, minutes=m)
            return int(dt.timestamp() * 1000)
        text = row[cols[0]].strip()
        if self.spec.time_format:
            dt = datetime.strptime(text, self.spec.time_format)  # noqa: DTZ007 - tz applied below
        else:
            try:
                num = float(text)
            except ValueError:
                dt = datetime.fromisoformat(text)
            else:
                return int(num if num > 1e11 else num * 1000)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return int(dt.timestamp() * 1000)

    def add(self, label: str | None, path: Path, plan: _Plan, line: int, row: list[str]) -> None:
        st = self.stats
        st.rows += 1
        where = f"{path.name} line {line}"
        if len(row) != plan.width and any(x.strip() for x in row[plan.width :]):
            st.bad(where, f"{len(row)} fields, the header has {plan.width}")
            return
        if len(row) < plan.width:
            st.bad(where, f"{len(row)} fields, the header has {plan.width}")
            return
        try:
            ts = self.time(row, plan.times)
        except (ValueError, TypeError, OverflowError, OSError):
            shown = ",".join(row[i] for i in plan.times)
            st.bad(where, f"time {shown!r} is not a time")
            return
        if not 946_684_800_000 <= ts <= 4_102_444_800_000:
            st.bad(where, f"time {ts} ms is outside 2000..2100")
            return
        row_station = None
        if plan.station is not None:
            raw = row[plan.station].strip()
            if not raw:
                st.bad(where, "empty station")
                return
            row_station = f"{label}/{raw}" if label else raw
            if plan.lat is not None and plan.lon is not None:
                try:
                    lat, lon = float(row[plan.lat]), float(row[plan.lon])
                except ValueError:
                    pass
                else:
                    if -90 <= lat <= 90 and -180 <= lon <= 180 and (lat, lon) != (0.0, 0.0):
                        self.coords.setdefault(row_station, []).append((lat, lon))
        shared: dict[str, float] = {}
        per: dict[str, dict[str, float]] = {}
        for i, sid, channel in plan.values:
            v = self.value(row[i], channel)
            target = sid or row_station
            if target is None:
                if v is not None:
                    shared[channel] = v
                continue
            d = per.setdefault(target, {})
            if v is not None:
                d[channel] = v
        if row_station is not None:
            per.setdefault(row_station, {})
        for sid, values in per.items():
            if label:
                self.district.setdefault(sid, label)
            if not any(c in POLLUTANTS for c in values):
                st.empty += 1
                continue
            key = (sid, ts)
            if key in self.readings:
                st.duplicates += 1
                continue
            self.readings[key] = {**shared, **values}


def read_stations(path: str | Path) -> dict[str, dict[str, Any]]:
    """A stations table: CSV (``id,lat,lon`` and optional ``district,kind,interval_s``), a JSON
    list of such objects, or a registry file/directory (its stations)."""
    p = Path(path)
    if not p.exists():
        msg = f"--stations: {str(p)!r} not found"
        raise InputError(msg)
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt"):
        header, rows, fh = _table(p, "utf-8-sig")
        with fh:
            norm = [_norm(h) for h in header]
            need = {"id": _find(norm, ("id", "station", "stationid", "sensorid"))}
            need["lat"], need["lon"] = _find(norm, _LAT), _find(norm, _LON)
            missing = [k for k, v in need.items() if v is None]
            if missing:
                msg = f"--stations: {p}: no {', '.join(missing)} column (id,lat,lon expected)"
                raise InputError(msg)
            out: dict[str, dict[str, Any]] = {}
            for line, row in rows:
                rec = {k: row[i].strip() for k, i in zip(norm, range(len(row)), strict=False)}
                try:
                    sid = row[need["id"]].strip()  # type: ignore[index]
                    info: dict[str, Any] = {
                        "lat": float(row[need["lat"]]),  # type: ignore[index]
                        "lon": float(row[need["lon"]]),  # type: ignore[index]
                    }
                    interval = rec.get("intervals") or rec.get("interval")
                    if interval:
                        info["interval_s"] = float(interval)
                except (ValueError, IndexError) as exc:
                    msg = f"--stations: {p.name} line {line}: {exc}"
                    raise InputError(msg) from exc
                for k in ("district", "kind"):
                    if rec.get(k):
                        info[k] = rec[k]
                out[sid] = info
            return out
    try:
        doc = orjson.loads(p.read_bytes().removeprefix(b"\xef\xbb\xbf")) if p.is_file() else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list) and all(isinstance(x, dict) and "type" not in x for x in doc):
        try:
            return {str(x["id"]): {k: v for k, v in x.items() if k != "id"} for x in doc}
        except KeyError as exc:
            msg = f"--stations: {p.name}: an entry without 'id'"
            raise InputError(msg) from exc
    reg = Registry.load(p)
    return {sid: msgspec.to_builtins(s) for sid, s in reg.stations.items()}


def import_files(sources: Sequence[tuple[str | None, Path]], spec: ImportSpec) -> Imported:
    """Read ``(label, path)`` files into time-ordered records and a registry (module doc)."""
    acc = _Acc(spec)
    for label, path in sources:
        header, rows, fh = _table(path, spec.encoding)
        with fh:
            plan = _plan(header, spec, label, path)
            if plan.note:
                acc.stats.notes.append(plan.note)
            for line, row in rows:
                acc.add(label, path, plan, line, row)
        acc.stats.files += 1
    if not acc.readings:
        detail = f"; {'; '.join(acc.stats.examples)}" if acc.stats.examples else ""
        msg = (
            f"import: no reading in {acc.stats.rows:,} rows ({acc.stats.bad_rows:,} bad, "
            f"{acc.stats.empty:,} empty){detail}"
        )
        raise InputError(msg)
    return _finish(acc)


def _finish(acc: _Acc) -> Imported:
    spec = acc.spec
    by_station: dict[str, list[int]] = {}
    records = []
    for (sid, ts), values in acc.readings.items():
        by_station.setdefault(sid, []).append(ts)
        body = {"kind": "air", "ts": ts, "station": sid}
        body.update({c: values[c] for c in CHANNELS if c in values})
        records.append((ts, sid, orjson.dumps(body)))
    records.sort(key=lambda r: (r[0], r[1]))
    acc.stats.readings = len(records)
    stations: dict[str, Station] = {}
    missing = []
    for sid in sorted(by_station):
        known = dict(spec.stations.get(sid, {}))
        lat, lon = known.get("lat"), known.get("lon")
        if (lat is None or lon is None) and acc.coords.get(sid):
            pts = acc.coords[sid]
            lat = statistics.median(p[0] for p in pts)
            lon = statistics.median(p[1] for p in pts)
        if lat is None or lon is None:
            missing.append(sid)
            continue
        tss = sorted(by_station[sid])
        steps = [b - a for a, b in itertools.pairwise(tss) if b > a]
        observed = round(statistics.median(steps) / 1000) if steps else None
        interval = known.get("interval_s") or spec.interval_s or observed
        kind = known.get("kind") or spec.kind
        if kind is None:
            kind = "national" if interval and interval >= _HOURLY_S else "micro"
        try:
            stations[sid] = msgspec.convert(
                {
                    "id": sid,
                    "lat": float(lat),
                    "lon": float(lon),
                    "district": known.get("district") or acc.district.get(sid, ""),
                    "kind": kind,
                    "interval_s": float(interval) if interval else None,
                },
                Station,
            )
        except msgspec.ValidationError as exc:
            msg = f"station {sid!r}: {exc}"
            raise InputError(msg) from exc
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        msg = (
            f"no coordinates for station(s) {shown}: give them in --stations FILE "
            "(CSV id,lat,lon or JSON)"
        )
        raise InputError(msg)
    return Imported(records, Registry(stations=stations), acc.stats)


def write_outputs(imported: Imported, events: Path, registry: Path) -> None:
    """The events as JSON Lines (gzip when the name ends in ``.gz``) and the registry as one
    JSON Lines file."""
    write_records(events, (r[2] for r in imported.records))
    registry.parent.mkdir(parents=True, exist_ok=True)
    imported.registry.dump_file(registry)

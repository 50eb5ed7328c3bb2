"""The daily report ``citywatch run`` writes on its own, on event time.

When the flow's event time (``cw:counts`` ``watermark_ms``) passes ``report_hour`` (local)
of a new day, the previous day is over and the report of that day is written to
``<report_dir>/day-YYYY-MM-DD/`` (report.html, figures, report.json). Event time, not the
wall clock, decides: a replay of a simulated week at full speed writes one report per day
of the week as it goes, and a live run writes yesterday's at ``report_hour`` each morning.

Days written are recorded in ``cw:reports`` (``day:YYYY-MM-DD`` -> path, time), so a
restarted run, or a second process, does not write one twice. A run writes the days from
the day after the newest one recorded (a restart catches up), else from the day of the
oldest alert, ticket or observation in Redis, at most :data:`MAX_BACKFILL_DAYS` back; older
days are left to ``citywatch report --at``.

>>> from datetime import date
>>> due_days(date(2026, 11, 2), 1_793_638_800_000, hour=1, offset_h=8)  # Tue 01:00
[datetime.date(2026, 11, 2)]
>>> due_days(date(2026, 11, 2), 1_793_636_400_000, hour=1, offset_h=8)  # Tue 00:20
[]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import orjson
import redis

from citywatch.keys import Keys
from citywatch.registry import Registry
from sinks.reports.period import local_date

__all__ = ["MAX_BACKFILL_DAYS", "DailyReports", "due_days"]

MAX_BACKFILL_DAYS: Final = 7


def due_days(first: date, watermark_ms: int, *, hour: int, offset_h: float) -> list[date]:
    """The days from ``first`` whose report is due at event time ``watermark_ms``: every day
    before the watermark's local day, and that day's eve only once ``hour`` has passed."""
    now = datetime.fromtimestamp(watermark_ms / 1000, tz=timezone(timedelta(hours=offset_h)))
    last = now.date() - timedelta(days=1 if now.hour >= hour else 2)
    first = max(first, last - timedelta(days=MAX_BACKFILL_DAYS - 1))
    n = (last - first).days + 1
    return [first + timedelta(days=i) for i in range(max(0, n))]


@dataclass
class DailyReports:
    """Checks the watermark and writes the reports that are due (:meth:`check`)."""

    client: redis.Redis
    keys: Keys
    out_dir: Path
    hour: int
    offset_h: float = 8.0
    #: called once, when the first report is due (loading names and outlines can be slow)
    registry: Callable[[], tuple[Registry | None, bool]] = lambda: (None, False)
    source: str = ""
    first: date | None = None
    _registry: tuple[Registry | None, bool] | None = None

    def _resume_from(self) -> date | None:
        """The day after the newest day written (by an earlier run): a restart after a pause
        catches up with the days in between."""
        days = []
        fields: Any = self.client.hkeys(self.keys.reports)
        for field in fields:
            name = field.decode() if isinstance(field, bytes) else str(field)
            if name.startswith("day:"):
                try:
                    days.append(date.fromisoformat(name[4:]))
                except ValueError:
                    continue
        return max(days) + timedelta(days=1) if days else None

    def _first_data_ms(self) -> int | None:
        """The event time of the oldest entry still in the alert, ticket and hourly-AQI
        streams (each stream's first entry: they are written roughly in event-time order)."""
        found: list[int] = []
        for key, field, ts in (
            (self.keys.alerts, b"a", "first_ts"),
            (self.keys.tickets, b"t", "ts"),
            (self.keys.observations("air.hourly"), b"o", "ts"),
        ):
            rows: Any = self.client.xrange(key, count=1)  # sync client: a list
            if rows:
                try:
                    found.append(int(orjson.loads(rows[0][1][field])[ts]))
                except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
                    continue
        return min(found) if found else None

    def check(self) -> list[Path]:
        """Write every report due now; returns the pages written."""
        from sinks.reports import build_report, write_report
        from sinks.reports.period import Period

        raw = self.client.hget(self.keys.counts, "watermark_ms")
        if raw is None:
            return []
        wm = int(raw)  # type: ignore[arg-type]
        if self.first is None:
            start = self._resume_from() or self._first_data_ms()
            self.first = (
                start if isinstance(start, date) else local_date(start or wm, self.offset_h)
            )
        written: list[Path] = []
        for day in due_days(self.first, wm, hour=self.hour, offset_h=self.offset_h):
            field = f"day:{day.isoformat()}"
            if self.client.hexists(self.keys.reports, field):
                continue
            if self._registry is None:
                self._registry = self.registry()
            reg, simulated = self._registry
            period = Period("day", day, self.offset_h)
            report = build_report(
                self.client,
                self.keys,
                kind="day",
                at_ms=period.start_ms,
                offset_h=self.offset_h,
                registry=reg,
                simulated_outlines=simulated,
                source=self.source,
            )
            page = write_report(report, self.out_dir / period.slug)
            record: dict[str, Any] = {"path": str(page), "written_ms": int(time.time() * 1000)}
            self.client.hset(self.keys.reports, field, orjson.dumps(record).decode())
            written.append(page)
        return written

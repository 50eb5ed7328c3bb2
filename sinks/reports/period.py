"""Report periods: a local day, week (Monday to Sunday) or calendar month, and the one before.

Boundaries are local midnights at a fixed offset from UTC (Asia/Shanghai, UTC+8, has no
daylight saving; ``report_utc_offset_h`` sets another). Periods are half-open
``[start_ms, end_ms)`` in epoch milliseconds.

>>> p = Period.containing("week", 1_793_635_199_000)   # Mon 2026-11-02 23:59:59 +08:00
>>> p.label, p.previous().label
('2026-11-02 ~ 2026-11-08', '2026-10-26 ~ 2026-11-01')
>>> Period.containing("month", 1_793_635_199_000).label
'2026-11'
>>> d = Period.containing("day", 1_793_635_199_000)
>>> d.label, d.end_ms - d.start_ms == 86_400_000
('2026-11-02', True)
>>> parse_at("2026-11-05", 8.0) == Period.containing("day", parse_at("2026-11-05", 8.0)).start_ms
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final, Literal

from citywatch.errors import InputError

__all__ = ["KINDS", "Period", "local_date", "parse_at"]

Kind = Literal["day", "week", "month"]
KINDS: Final[tuple[str, ...]] = ("day", "week", "month")
_NAME_ZH: Final = {"day": "日报", "week": "周报", "month": "月报"}
_UNIT_ZH: Final = {"day": "日", "week": "周", "month": "月"}
_WEEKDAY_ZH: Final = "一二三四五六日"


def _tz(offset_h: float) -> timezone:
    return timezone(timedelta(hours=offset_h))


def local_date(ts_ms: int, offset_h: float = 8.0) -> date:
    """The local calendar date of an event time."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=_tz(offset_h)).date()


def _midnight(d: date, offset_h: float) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=_tz(offset_h)).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Period:
    """One report period: ``kind``, its first local day and the UTC offset it is cut at."""

    kind: Kind
    first_day: date
    offset_h: float = 8.0

    @classmethod
    def containing(cls, kind: str, ts_ms: int, offset_h: float = 8.0) -> Period:
        """The period of ``kind`` that holds the event time ``ts_ms``."""
        if kind not in KINDS:
            msg = f"period: {kind!r} is not one of {', '.join(KINDS)}"
            raise InputError(msg)
        d = local_date(ts_ms, offset_h)
        if kind == "week":
            d -= timedelta(days=d.weekday())
        elif kind == "month":
            d = d.replace(day=1)
        return cls(kind, d, offset_h)  # type: ignore[arg-type]

    @property
    def last_day(self) -> date:
        return self._next_first() - timedelta(days=1)

    def _next_first(self) -> date:
        d = self.first_day
        if self.kind == "day":
            return d + timedelta(days=1)
        if self.kind == "week":
            return d + timedelta(days=7)
        return date(d.year + (d.month == 12), d.month % 12 + 1, 1)

    @property
    def start_ms(self) -> int:
        return _midnight(self.first_day, self.offset_h)

    @property
    def end_ms(self) -> int:
        return _midnight(self._next_first(), self.offset_h)

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / 3_600_000

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return Period.containing(self.kind, self.start_ms - 1, self.offset_h)

    def next(self) -> Period:
        return Period.containing(self.kind, self.end_ms, self.offset_h)

    def contains(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms

    @property
    def label(self) -> str:
        """``2026-11-02``, ``2026-11-02 ~ 2026-11-08`` or ``2026-11``."""
        if self.kind == "day":
            return self.first_day.isoformat()
        if self.kind == "week":
            return f"{self.first_day.isoformat()} ~ {self.last_day.isoformat()}"
        return self.first_day.strftime("%Y-%m")

    @property
    def label_zh(self) -> str:
        """``2026年11月2日（星期一）``, ``2026年11月2日至11月8日``, ``2026年11月``."""
        d, e = self.first_day, self.last_day
        if self.kind == "day":
            return f"{d.year}年{d.month}月{d.day}日（星期{_WEEKDAY_ZH[d.weekday()]}）"
        if self.kind == "week":
            return f"{d.year}年{d.month}月{d.day}日至{e.month}月{e.day}日"
        return f"{d.year}年{d.month}月"

    @property
    def name_zh(self) -> str:
        """日报, 周报 or 月报."""
        return _NAME_ZH[self.kind]

    @property
    def unit_zh(self) -> str:
        return _UNIT_ZH[self.kind]

    @property
    def slug(self) -> str:
        """A file-name-safe id: ``day-2026-11-02``, ``week-2026-11-02``, ``month-2026-11``."""
        return f"{self.kind}-{self.label.split(' ')[0]}"

    def local_time(self, ts_ms: int) -> str:
        """``11-02 14:05`` at this period's offset (for tables)."""
        dt = datetime.fromtimestamp(ts_ms / 1000, tz=_tz(self.offset_h))
        return dt.strftime("%m-%d %H:%M")

    def local_hour_start(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, tz=_tz(self.offset_h))


def parse_at(text: str, offset_h: float = 8.0) -> int:
    """Event time (epoch ms) from ``2026-11-05``, ``2026-11-05T14:00`` (local at
    ``offset_h`` unless the text has its own offset) or epoch milliseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        msg = f"--at: {text!r} is not like 2026-11-05, 2026-11-05T14:00 or epoch ms"
        raise InputError(msg) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_tz(offset_h))
    return int(dt.astimezone(UTC).timestamp() * 1000)

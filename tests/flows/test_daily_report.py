"""The daily report: written when event time passes ``report_hour`` of a new day, once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
import redis

from citywatch.settings import Settings
from flows.run import RunOptions, run_city
from sinks.reports.daily import DailyReports, due_days

pytestmark = pytest.mark.integration

H = 3_600_000
MON = 1_793_548_800_000  # Monday 2026-11-02 00:00 +08:00


def test_due_days_follow_event_time_not_the_clock() -> None:
    first = date(2026, 11, 2)
    assert due_days(first, MON + 23 * H, hour=6, offset_h=8) == []
    assert due_days(first, MON + 29 * H, hour=6, offset_h=8) == []  # Tue 05:00
    assert due_days(first, MON + 30 * H, hour=6, offset_h=8) == [first]  # Tue 06:00
    # a replay jumping three days at once catches up with every day
    assert due_days(first, MON + 3 * 24 * H + 7 * H, hour=6, offset_h=8) == [
        date(2026, 11, 2),
        date(2026, 11, 3),
        date(2026, 11, 4),
    ]
    # at most a week back
    assert len(due_days(date(2026, 1, 1), MON, hour=0, offset_h=8)) == 7
    # another offset: UTC midnight boundaries
    assert due_days(first, MON + 8 * H + 24 * H, hour=0, offset_h=0) == [date(2026, 11, 2)]


def test_check_writes_each_day_once_even_after_a_restart(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    k = settings.keys

    def reporter() -> DailyReports:
        return DailyReports(redis_client, k, tmp_path, hour=1)

    r = reporter()
    assert r.check() == []  # no watermark yet
    redis_client.hset(k.counts, "watermark_ms", MON + 10 * H)
    assert r.check() == []
    redis_client.hset(k.counts, "watermark_ms", MON + 24 * H + 30 * 60_000)  # Tue 00:30
    assert r.check() == []
    redis_client.hset(k.counts, "watermark_ms", MON + 24 * H + 2 * H)  # Tue 02:00
    (page,) = r.check()
    assert page == tmp_path / "day-2026-11-02" / "report.html"
    assert "2026年11月2日" in page.read_text(encoding="utf-8")
    assert r.check() == []
    record = orjson.loads(redis_client.hget(k.reports, "day:2026-11-02") or b"{}")
    assert record["path"] == str(page)
    # a run restarted on Thursday catches up with Tuesday and Wednesday, never Monday again
    redis_client.hset(k.counts, "watermark_ms", MON + 3 * 24 * H + 2 * H)
    done = [p.parent.name for p in reporter().check()]
    assert done == ["day-2026-11-03", "day-2026-11-04"]
    # without a record and without data: from the watermark's day (nothing due yet)
    redis_client.delete(k.reports)
    assert [p.parent.name for p in reporter().check()] == []


def test_run_writes_the_previous_days_report_when_event_time_passes_the_hour(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A simulated hotline day from Monday 20:00 to Tuesday 20:00: Monday's report is due at
    Tuesday 01:00 of event time, and written with Monday's tickets in it."""
    s = settings.with_(report_hour=1, report_dir=tmp_path / "reports")
    opts = RunOptions(source="sim", scenario="hotline", seed=2, speed=None, start_ms=MON + 20 * H)
    assert run_city(s, opts) == 0
    days = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert days == ["day-2026-11-02"]
    data = orjson.loads((tmp_path / "reports" / "day-2026-11-02" / "report.json").read_bytes())
    tickets = data["sections"]["hotline"]["stats"]["tickets"]["current"]
    # readers key by ticket id: an officer's decision repeats a ticket (docs/contracts.md)
    first_seen: dict[str, int] = {}
    for _, f in redis_client.xrange(s.keys.tickets):
        t = orjson.loads(f[b"t"])
        first_seen.setdefault(t["ticket"], t["ts"])
    in_monday = sum(1 for ts in first_seen.values() if MON <= ts < MON + 24 * H)
    assert tickets == in_monday > 0
    assert redis_client.hexists(s.keys.reports, "day:2026-11-02")

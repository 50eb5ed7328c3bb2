"""A record delivered twice is dead-lettered as a duplicate: counted, visible, and never seen
twice by the models (a hotline ticket twice would make a surge)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from citywatch.settings import Settings
from flows.sources.dedupe import RecentRecords
from flows.sources.iterable import IterableSource
from tests.flows.conftest import counts, final_alerts, run_flow, stream_versions
from tests.flows.toy import scenario

pytestmark = pytest.mark.integration


def sloppy(records: list[bytes]) -> list[bytes]:
    """Every 7th record again at once, every 11th again 30 records later; a malformed line
    twice (it stays malformed, not a duplicate)."""
    out: list[bytes] = []
    for i, r in enumerate(records):
        out.append(r)
        if i % 7 == 0:
            out.append(r)
        if i % 11 == 0 and i >= 30:
            out.append(records[i - 30])
    out[100:100] = [b"{broken", b"{broken"]
    return out


def test_duplicates_are_dead_lettered_and_change_no_alert(
    settings: Settings, redis_client: redis.Redis, prefix: str
) -> None:
    recs = scenario(stations=6, minutes=240, stagger=35)
    clean = settings.with_(prefix=prefix + "clean:")
    run_flow(IterableSource(lambda: iter(recs)), clean)
    messy = sloppy(recs)
    run_flow(IterableSource(lambda: iter(messy), partitions=2), settings)
    assert final_alerts(redis_client, settings.keys) == final_alerts(redis_client, clean.keys)
    assert sorted(stream_versions(redis_client, settings.keys)) == sorted(
        stream_versions(redis_client, clean.keys)
    )
    c = counts(redis_client, settings.keys)
    assert c["dead:duplicate"] == len(messy) - len(recs) - 2
    assert c["dead:invalid_json"] == 2
    assert c["records"] == len(messy) == sum(v for k, v in c.items() if k[:3] in ("in:", "dea"))
    dead: Any = redis_client.xrange(settings.keys.deadletter, count=1000)
    reasons = {f[b"reason"].decode().split(":")[0] for _, f in dead}
    assert reasons == {"duplicate", "invalid JSON"}


def test_a_window_of_zero_lets_duplicates_through(
    settings: Settings, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=2, minutes=30)
    run_flow(IterableSource(lambda: iter(recs + recs[-10:])), settings.with_(dedupe_window=0))
    c = counts(redis_client, settings.keys)
    assert "dead:duplicate" not in c
    assert c["in:air"] == len(recs) + 10


def test_the_window_forgets_the_oldest_records() -> None:
    seen = RecentRecords(window=4)
    assert seen.repeats([b"1", b"2", b"3"]) == set()
    assert seen.repeats([b"4", b"5", b"1"]) == {2}  # 1 is 5 records back: in the window
    assert seen.repeats([b"6", b"7", b"8", b"9"]) == set()
    assert seen.repeats([b"2", b"9"]) == {1}  # 2 has left the window, 9 has not
    assert seen.count >= 4
    assert len(seen.seen) <= seen.count

"""Scale-out: ``--processes 2`` reads each record once and ends exactly as one process."""

from __future__ import annotations

import pytest
import redis

from citywatch.settings import Settings
from flows.run import RunOptions, run_city
from tests.flows.conftest import counts, final_alerts

pytestmark = pytest.mark.integration


def subjects(client: redis.Redis, settings: Settings) -> dict[str, tuple[int, str, str]]:
    """Every alert's final (version, state, level): the whole result, every rule."""
    return final_alerts(client, settings.keys)


def test_two_processes_match_one(settings: Settings, redis_client: redis.Redis) -> None:
    results = []
    for n in (1, 2):
        s = settings.with_(prefix=f"{settings.prefix}{n}:", epoch_s=5.0)
        opts = RunOptions(
            source="sim", scenario="demo", seed=3, speed=None, processes=n, partitions=2
        )
        assert run_city(s, opts) == 0
        results.append((counts(redis_client, s.keys), subjects(redis_client, s)))
    (c1, s1), (c2, s2) = results
    inputs = {k: v for k, v in c1.items() if k.startswith(("in:", "records", "dead:"))}
    assert inputs == {k: v for k, v in c2.items() if k.startswith(("in:", "records", "dead:"))}
    assert s1
    assert s1 == s2


def _contents(client: redis.Redis, settings: Settings) -> list[dict[str, object]]:
    """Every alert version written, whole (but the wall-clock ``emitted_ms``), in order."""
    import orjson

    out = []
    for _, f in client.xrange(settings.keys.alerts):
        d = orjson.loads(f[b"a"])
        d.pop("emitted_ms", None)
        out.append(d)
    return out


def test_progress_marks_change_when_results_come_out_not_what_they_are(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Second stages (engine, flood guard, correlator, workshop) release what they hold as
    progress marks arrive; marks after every batch and none at all (only the minute ticks)
    must give the same alert versions, field for field, in two processes."""
    results = []
    for name, every in (("each", 0), ("none", None)):
        s = settings.with_(prefix=f"{settings.prefix}{name}:", batch_size=200)
        opts = RunOptions(
            source="sim",
            scenario="demo",
            seed=4,
            speed=None,
            processes=2,
            partitions=3,
            flow={"progress_ms": every},
        )
        assert run_city(s, opts) == 0
        results.append(_contents(redis_client, s))
    each, none = results
    assert {d["rule"] for d in each} >= {"incident.correlated", "worksite.resumption"}
    key = lambda d: (d["id"], d["version"])  # noqa: E731 - the sink writes per shard
    assert sorted(each, key=key) == sorted(none, key=key)

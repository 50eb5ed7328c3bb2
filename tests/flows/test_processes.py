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

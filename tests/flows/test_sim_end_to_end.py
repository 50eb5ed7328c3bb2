"""The real city flow (registered models, correlator, Redis sink) on the simulator's demo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from bytewax.testing import run_main

from citywatch.alerts import Alert
from citywatch.settings import Settings
from flows.run import RunOptions, build_city_flow
from flows.sources.iterable import IterableSource
from flows.sources.sim import SimSpec
from tests.flows.conftest import counts
from tests.flows.test_city_flow import DIRTY

pytestmark = pytest.mark.integration

#: Rules whose labels the demo must hit through the flow. The others depend on warm-up the
#: demo hour lacks, or are being tuned by their models' owners (their own tests score them).
MUST_HIT = ("vehicle.dwell", "hotline.duplicate")


def with_dirt(records: Iterator[bytes], every: int = 997) -> Iterator[bytes]:
    """The records with one of the dirty samples after every ``every``-th."""
    for i, r in enumerate(records):
        yield r
        if i % every == every - 1:
            yield DIRTY[(i // every) % len(DIRTY)]


def test_demo_scenario_raises_the_alerts_its_labels_imply(
    settings: Settings, redis_client: redis.Redis
) -> None:
    from simulators import simulate

    assert settings.redis_url is not None
    opts = RunOptions(source="sim", scenario="demo", seed=3, speed=None, run_id="e2e")
    spec = SimSpec("demo", seed=3)
    raw = IterableSource(lambda: with_dirt(spec.records()), name="sim")
    run_main(build_city_flow(opts, settings.with_(batch_size=500), settings.redis_url, raw=raw))

    keys = settings.keys
    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    assert alerts
    sim = simulate("demo", seed=3)
    tol = 10 * 60_000
    for rule in MUST_HIT:
        labels = [lb for lb in sim.labels if lb.rule == rule]
        assert labels, rule
        hit = [
            lb
            for lb in labels
            if any(
                a.rule == rule
                and a.subject.id in lb.subject_ids
                and a.first_ts <= lb.end_ms + tol
                and a.last_ts >= lb.start_ms - tol
                for a in alerts
            )
        ]
        assert len(hit) >= len(labels) / 2, (rule, len(hit), len(labels))

    # Dirty input: every record is either valid input or a dead letter, none lost.
    n_input = sum(1 for _ in with_dirt(sim.records()))
    c = counts(redis_client, keys)
    valid = sum(v for k, v in c.items() if k.startswith("in:"))
    dead = sum(v for k, v in c.items() if k.startswith("dead:"))
    assert dead > 0
    assert valid + dead == c["records"] == n_input
    assert redis_client.xlen(keys.deadletter) == dead
    # Every (id, version) once in the stream; the hash holds the highest version.
    seen = [(a.id, a.version) for a in alerts]
    assert len(seen) == len(set(seen))
    for a in alerts:
        assert int(redis_client.hget(keys.alert(a.id), "version") or 0) >= a.version

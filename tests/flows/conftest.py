"""Helpers for the flow tests: run a flow over records into a real Redis, read alerts back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import redis
from bytewax.testing import run_main

from citywatch.alerts import Alert
from citywatch.keys import Keys
from citywatch.settings import Settings
from flows.city import FlowConfig, build_flow
from flows.sources import DecodingSource, RawSource
from models.base import Model
from sinks.redis_sink import RedisSink
from tests.flows.toy import ToyExceedance


def run_flow(
    raw: RawSource,
    settings: Settings,
    *,
    models: Sequence[Model] | None = None,
    run_id: str = "t",
    batch_size: int = 50,
    config: FlowConfig | None = None,
) -> None:
    assert settings.redis_url is not None
    source = DecodingSource(
        raw,
        region=settings.region_box,
        batch_size=batch_size,
        lateness_ms=int(settings.lateness_s * 1000),
        dedupe_window=settings.dedupe_window,
    )
    sink = RedisSink(settings.redis_url, settings.keys, run_id=run_id)
    flow = build_flow(source, sink, models=models or [ToyExceedance()], config=config)
    run_main(flow)


def final_alerts(client: redis.Redis, keys: Keys) -> dict[str, tuple[int, str, str]]:
    """id -> (version, state, level) from the alert hashes."""
    out = {}
    for k in client.scan_iter(match=keys.alert("*"), count=1000):
        h: Any = client.hgetall(k)
        a = Alert.from_json(h[b"a"])
        out[a.id] = (int(h[b"version"]), h[b"state"].decode(), h[b"level"].decode())
    return out


def stream_versions(client: redis.Redis, keys: Keys) -> list[tuple[str, int]]:
    return [
        (a.id, a.version) for a in (Alert.from_json(f[b"a"]) for _, f in client.xrange(keys.alerts))
    ]


def counts(client: redis.Redis, keys: Keys) -> dict[str, int]:
    raw: Any = client.hgetall(keys.counts)
    return {f.decode(): int(v) for f, v in raw.items() if not f.startswith((b"lag", b"water"))}


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return settings.keys

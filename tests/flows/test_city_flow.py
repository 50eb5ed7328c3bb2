"""The city flow end to end with a toy model: files in, alerts and dead letters in Redis."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from citywatch.alerts import Alert, AlertState, Level, Observation, Subject
from citywatch.keys import Keys
from citywatch.settings import Settings
from flows.city import FlowConfig
from flows.sources.files import FileSource
from flows.sources.iterable import IterableSource
from tests.flows.conftest import counts, final_alerts, run_flow, stream_versions
from tests.flows.toy import MIN, T0, ToyExceedance, air, scenario

pytestmark = pytest.mark.integration

DIRTY = [
    b"{not json",
    b'{"kind":"air","ts":1767225600000,"station":"S9","pm25":"high"}',
    b'{"kind":"meteor","ts":1767225600000}',
    b'{"kind":"gps","ts":1767225600000,"vehicle":"V1","lat":10.0,"lon":10.0}',
    b"\xff\xfe",
    b"[]",
]


def write_jsonl(path: Path, records: list[bytes]) -> None:
    data = b"\n".join(records) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def test_files_end_to_end_alerts_and_accounting(
    tmp_path: Path, settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=4, minutes=120)
    # Two partitions split by entity (one gzip), dirty records mixed in, one record too late.
    part_a = [r for r in recs if b'"S0"' in r or b'"S1"' in r]
    part_b = [r for r in recs if r not in part_a]
    write_jsonl(tmp_path / "a.jsonl", part_a + DIRTY[:3])
    write_jsonl(tmp_path / "b.jsonl.gz", part_b + DIRTY[3:] + [air("S2", 0, 10.0)])
    run_flow(FileSource([str(tmp_path)]), settings)

    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    assert {a.subject.id for a in alerts} == {"S0"}
    fired = [a for a in alerts if a.version == 1]
    assert len(fired) == 1
    assert fired[0].first_ts == T0 + 30 * MIN
    assert max(a.level for a in alerts) == Level.RED
    last = alerts[-1]
    assert (last.state, last.last_ts) == (AlertState.RESOLVED, T0 + 50 * MIN)
    assert all(a.emitted_ms > 0 for a in alerts)
    assert redis_client.zcard(keys.open) == 0

    c = counts(redis_client, keys)
    n_input = len(recs) + len(DIRTY) + 1
    valid = sum(v for k, v in c.items() if k.startswith("in:"))
    dead = sum(v for k, v in c.items() if k.startswith("dead:"))
    assert valid == len(recs)
    assert dead == len(DIRTY) + 1
    assert c["records"] == valid + dead == n_input
    assert c["dead:late"] == 1
    assert redis_client.xlen(keys.deadletter) == dead
    reasons = {f[b"reason"].decode() for _, f in redis_client.xrange(keys.deadletter)}
    assert any("outside the configured region" in r for r in reasons)


def test_replay_is_idempotent(settings: Settings, keys: Keys, redis_client: redis.Redis) -> None:
    recs = scenario(stations=3, minutes=90) + DIRTY
    run_flow(IterableSource(lambda: iter(recs)), settings, run_id="r1")
    first = (stream_versions(redis_client, keys), final_alerts(redis_client, keys))
    first_counts = counts(redis_client, keys)
    # The same run id replayed (a crash without snapshots), with other batch boundaries.
    run_flow(IterableSource(lambda: iter(recs)), settings, run_id="r1", batch_size=7)
    assert (stream_versions(redis_client, keys), final_alerts(redis_client, keys)) == first
    assert counts(redis_client, keys) == first_counts
    assert len(set(first[0])) == len(first[0])


def test_partitioned_source_gives_the_same_alerts(
    settings: Settings, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=6, minutes=80)
    results = []
    for parts, prefix in ((1, "p1:"), (3, "p3:")):
        s = settings.with_(prefix=settings.prefix + prefix)
        run_flow(IterableSource(lambda: iter(recs), partitions=parts), s)
        results.append(final_alerts(redis_client, s.keys))
    assert results[0] == results[1]
    assert results[0]


def test_flow_rejects_duplicate_model_names(settings: Settings) -> None:
    from tests.flows.toy import ToyExceedance

    with pytest.raises(ValueError, match="duplicate model names"):
        run_flow(
            IterableSource(lambda: iter([])), settings, models=[ToyExceedance(), ToyExceedance()]
        )


def test_flood_guard_opens_one_incident(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    recs = [air(f"F{i}", i // 3, 150.0) for i in range(15)]
    recs += [air("F0", 30, 20.0)]
    run_flow(
        IterableSource(lambda: iter(recs)),
        settings,
        config=FlowConfig(flood_limit=10, tick_ms=60_000),
    )
    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    incidents = {a.id for a in alerts if a.rule == "incident.correlated"}
    assert len(incidents) == 1
    inc = [a for a in alerts if a.rule == "incident.correlated"][-1]
    assert inc.evidence["reason"] == "flood"
    assert inc.evidence["alerts"] == 15
    assert orjson.loads(redis_client.hget(keys.alert(inc.id), "a"))["district"] == "崇川区"


def test_accepted_hotline_tickets_reach_the_tickets_stream(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    tickets = [
        orjson.dumps(
            {
                "kind": "hotline",
                "ts": T0 + i * MIN,
                "ticket": f"T{i}",
                "text": f"第{i}号：楼下施工噪声很大",
                "category": "noise",
            }
        )
        for i in range(5)
    ]
    bad = b'{"kind":"hotline","ts":1767225600000,"ticket":"TX","text":""}'
    recs = scenario(stations=2, minutes=10) + tickets + [bad]
    run_flow(IterableSource(lambda: iter(recs)), settings, batch_size=3)
    rows = redis_client.xrange(keys.tickets)
    got = [orjson.loads(f[b"t"]) for _, f in rows]
    assert [t["ticket"] for t in got] == [f"T{i}" for i in range(5)]
    assert got[0]["text"] == "第0号：楼下施工噪声很大"
    assert counts(redis_client, keys)["in:hotline"] == 5  # the bad one is a dead letter


class _TenMinuteMeans(ToyExceedance):
    """The toy exceedance, and every 10 minutes a station's mean PM2.5 as an observation."""

    name = "toy.means"

    def update(self, state: Any, event: Any) -> list[Any]:
        out: list[Any] = list(super().update(state, event))
        if (event.ts - T0) % (10 * MIN) == 0:
            out.append(
                Observation(
                    "toy.mean",
                    Subject("station", event.station),
                    event.ts,
                    {"pm25": event.pm25},
                    district="崇川区",
                )
            )
        return out


def test_observations_go_to_the_sink_not_to_the_engine(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=2, minutes=60)
    run_flow(IterableSource(lambda: iter(recs)), settings, models=[_TenMinuteMeans()])
    stored = redis_client.hgetall(keys.observed("toy.mean"))
    latest = {k.decode(): orjson.loads(v) for k, v in stored.items()}
    assert set(latest) == {"station:S0", "station:S1"}
    assert latest["station:S0"]["ts"] == T0 + 50 * MIN
    assert latest["station:S0"]["values"] == {"pm25": 30.0}
    assert redis_client.xlen(keys.observations("toy.mean")) == 12
    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    assert {a.rule for a in alerts} == {"air.exceedance"}  # the engine saw no observation
    # An older observation never replaces a newer one (a replay after a crash).
    from sinks.redis_sink import RedisSink

    assert settings.redis_url is not None
    part = RedisSink(settings.redis_url, keys, run_id="late").build("o", 0, 1)
    part.write_batch([Observation("toy.mean", Subject("station", "S0"), T0, {"pm25": 1.0})])
    part.close()  # type: ignore[attr-defined]
    again = orjson.loads(redis_client.hget(keys.observed("toy.mean"), "station:S0"))  # type: ignore[arg-type]
    assert again["ts"] == T0 + 50 * MIN

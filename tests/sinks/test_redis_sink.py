"""The Redis sink against a real Redis: layout, idempotency under replay, outages."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
import redis

from citywatch.alerts import (
    Alert,
    AlertState,
    Level,
    Observation,
    Subject,
    episode_id,
    fingerprint,
)
from citywatch.events import DeadLetter
from citywatch.keys import Keys
from citywatch.redisconn import EmbeddedRedis
from sinks.redis_sink import (
    _CHUNK,
    _SCRIPTS,
    KIND_CODES,
    NOT_COUNTED,
    DeadRecord,
    IngestMark,
    RedisSink,
    RedisSinkPartition,
    Republish,
    Touch,
)

pytestmark = pytest.mark.integration


def alert(version: int, state: str = "firing", level: Level = Level.YELLOW, n: int = 0) -> Alert:
    subject = Subject("station", f"S{n}")
    fp = fingerprint("air.spike", subject)
    return Alert(
        id=episode_id(fp, 1_000 + n),
        fingerprint=fp,
        rule="air.spike",
        level=level,
        state=AlertState(state),
        subject=subject,
        first_ts=1_000 + n,
        last_ts=2_000 + version,
        district="崇川区",
        version=version,
    )


def part(url: str, prefix: str, run_id: str = "r1") -> RedisSinkPartition:
    sink = RedisSink(url, Keys(prefix), run_id=run_id, backoff_s=(0.01, 0.2))
    p = sink.build("out", 0, 1)
    assert isinstance(p, RedisSinkPartition)
    return p


def test_alert_versions_land_in_stream_hash_open_set_and_counts(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    a1, a2, a3 = alert(1), alert(2, level=Level.RED), alert(3, state="resolved", level=Level.RED)
    p.write_batch([a1, a2])
    h = redis_client.hgetall(k.alert(a1.id))
    assert h[b"version"] == b"2"
    assert h[b"level"] == b"red"
    assert h[b"status"] == b"new"
    assert h[b"district"] == "崇川区".encode()
    assert Alert.from_json(h[b"a"]) == a2
    assert redis_client.zscore(k.open, a1.id) == 4 * 10**13 + a1.first_ts
    redis_client.hset(k.alert(a1.id), "status", "signed")  # the feed service's field
    p.write_batch([a3])
    assert redis_client.zscore(k.open, a1.id) is None
    assert redis_client.hget(k.alert(a1.id), "status") == b"signed"
    versions = [Alert.from_json(f[b"a"]).version for _, f in redis_client.xrange(k.alerts)]
    assert versions == [1, 2, 3]
    counts = redis_client.hgetall(k.counts)
    assert counts[b"alerts:air.spike:yellow"] == b"1"
    assert counts[b"alerts:air.spike:red"] == b"1"


def test_replayed_and_stale_versions_are_ignored(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    batch = [alert(1, n=i) for i in range(5)] + [alert(2, n=i) for i in range(5)]
    p.write_batch(batch)
    p.write_batch(batch)  # a replay after a crash
    p.write_batch([alert(1, n=0)])  # a stale version arriving late
    assert redis_client.xlen(k.alerts) == 10
    assert redis_client.zcard(k.open) == 5
    assert redis_client.hget(k.alert(alert(1).id), "version") == b"2"
    assert redis_client.hget(k.counts, "alerts:air.spike:yellow") == b"5"


def test_a_batch_longer_than_a_script_call_keeps_every_version_in_order(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    """Versions go in script calls of ``_CHUNK``: several versions of one id in one batch,
    across calls, land in order and the newest stays; a replay of the batch adds nothing."""
    k = Keys(prefix)
    p = part(redis_url, prefix)
    n = _CHUNK + 40
    batch = [alert(v, n=i) for v in (1, 2) for i in range(n // 2)]
    batch.append(alert(3, state="resolved", n=0))
    p.write_batch(batch)
    p.write_batch(batch)
    stream = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(k.alerts)]
    assert [(a.id, a.version) for a in stream] == [(a.id, a.version) for a in batch]
    assert redis_client.zcard(k.open) == n // 2 - 1
    assert redis_client.hget(k.alert(alert(1, n=0).id), "state") == b"resolved"
    assert redis_client.hget(k.alert(alert(1, n=1).id), "version") == b"2"


def test_a_touch_refreshes_the_hash_of_its_version_only(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    """A touch (newer values of a written version) changes the alert's hash, never the stream,
    the open set or the counts; not for another version, a resolved alert or older values."""
    k = Keys(prefix)
    p = part(redis_url, prefix)
    a1 = alert(1)
    newer = a1.evolve(last_ts=a1.last_ts + 3_600_000, count=5, score=0.3)
    p.write_batch([a1, Touch(a1.evolve(last_ts=a1.last_ts + 60_000)), Touch(newer)])
    h = redis_client.hgetall(k.alert(a1.id))
    assert Alert.from_json(h[b"a"]) == newer  # the newest touch of the id in the batch
    assert (h[b"version"], h[b"last_ts"]) == (b"1", str(newer.last_ts).encode())
    assert redis_client.xlen(k.alerts) == 1
    p.write_batch([Touch(a1)])  # older values (a replay): ignored
    assert Alert.from_json(redis_client.hget(k.alert(a1.id), "a")) == newer  # type: ignore[arg-type]
    a2 = alert(2, level=Level.RED)
    p.write_batch([a2, Touch(newer.evolve(last_ts=newer.last_ts + 1))])  # version 1's: stale
    assert Alert.from_json(redis_client.hget(k.alert(a1.id), "a")) == a2  # type: ignore[arg-type]
    gone = alert(3, state="resolved", level=Level.RED)
    p.write_batch([gone, Touch(a2.evolve(version=3, last_ts=a2.last_ts + 1))])
    assert Alert.from_json(redis_client.hget(k.alert(a1.id), "a")) == gone  # type: ignore[arg-type]
    assert redis_client.xlen(k.alerts) == 3
    assert redis_client.hget(k.counts, "alerts:air.spike:yellow") == b"1"


def obs(name: str, station: str, hour: int, aqi: int) -> Observation:
    return Observation(name, Subject("station", station), hour * 3_600_000, {"aqi": aqi})


def test_observations_keep_the_newest_per_subject_and_log_every_one_in_order(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    hourly = [obs("air.hourly", f"S{h % 3}", h, h) for h in range(2 * _CHUNK + 7)]
    late = obs("air.hourly", "S0", 0, 999)  # older than what the batch has for S0
    daily = [obs("air.daily", "S0", 24, 50), obs("air.daily", "S0", 0, 40)]
    p.write_batch([hourly[0], daily[0], *hourly[1:], late, daily[1]])

    def latest(name: str) -> dict[str, int]:
        got = redis_client.hgetall(k.observed(name))
        return {s.decode(): orjson.loads(v)["values"]["aqi"] for s, v in got.items()}

    def log(name: str) -> list[int]:
        rows = redis_client.xrange(k.observations(name))
        return [orjson.loads(f[b"o"])["values"]["aqi"] for _, f in rows]

    last = len(hourly) - 1
    want = {f"station:S{s}": max(h for h in range(last + 1) if h % 3 == s) for s in range(3)}
    assert latest("air.hourly") == want
    assert latest("air.daily") == {"station:S0": 50}
    assert log("air.hourly") == [*range(last + 1), 999]  # at-least-once: every one, in order
    assert log("air.daily") == [50, 40]
    stored = orjson.loads(redis_client.hget(k.observed("air.hourly"), "station:S0"))  # type: ignore[arg-type]
    assert Observation.from_dict(stored) == hourly[max(h for h in range(last + 1) if h % 3 == 0)]
    # A replay after a crash, and an older one alone, never replace a newer observation;
    # the same hour again does (the newest written wins, as before).
    p.write_batch([*hourly, obs("air.hourly", "S1", 1, 7)])
    assert latest("air.hourly") == want
    p.write_batch([obs("air.hourly", "S2", want["station:S2"], -1)])
    assert latest("air.hourly")["station:S2"] == -1


def test_dead_letters_and_ingest_counts_are_exact_under_overlapping_replay(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    air, gps = KIND_CODES["air"], KIND_CODES["gps"]
    codes = bytes([air, gps, NOT_COUNTED, air, air, NOT_COUNTED])
    dead = [
        DeadRecord(DeadLetter(b"{bad", "f.jsonl", "invalid JSON: x"), "f", 2),
        DeadRecord(DeadLetter(b"{}", "f.jsonl", "kind: missing required field"), "f", 5),
    ]
    p.write_batch([IngestMark("f", 0, codes[:4], high_ts=10), dead[0]])
    # After a crash the source resumes at offset 2 with a different batching.
    p.write_batch([IngestMark("f", 2, codes[2:], high_ts=20), dead[0], dead[1]])
    p.write_batch([IngestMark("f", 0, codes, high_ts=20), *dead])  # a full replay
    c = {f.decode(): int(v) for f, v in redis_client.hgetall(k.counts).items()}
    assert (c["in:air"], c["in:gps"]) == (3, 1)
    assert (c["dead:invalid_json"], c["dead:kind"]) == (1, 1)
    assert c["records"] == len(codes)
    entries = redis_client.xrange(k.deadletter)
    assert [e[b"raw"] for _, e in entries] == [b"{bad", b"{}"]
    assert entries[0][1][b"reason"] == b"invalid JSON: x"
    # Another run id counts its own offsets again.
    part(redis_url, prefix, run_id="r2").write_batch([IngestMark("f", 0, codes[:1])])
    assert redis_client.hget(k.counts, "in:air") == b"4"


def test_scripts_are_loaded_once_and_again_when_redis_lost_them(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    p.write_batch([alert(1, n=0)])
    shas = dict(p._sha)
    assert len(shas) == len(_SCRIPTS)
    redis_client.script_flush()  # Redis restarted without its scripts
    p.write_batch([alert(1, n=1), alert(2, n=0)])
    assert p._sha == shas  # the same scripts, loaded again
    assert redis_client.xlen(k.alerts) == 3
    assert redis_client.hget(k.alert(alert(1).id), "version") == b"2"


def test_unknown_item_type_is_a_programming_error(redis_url: str, prefix: str) -> None:
    with pytest.raises(TypeError, match="cannot write a str"):
        part(redis_url, prefix).write_batch(["nope"])


def test_outage_is_waited_out_and_nothing_is_lost() -> None:
    server = EmbeddedRedis()
    url = server.start()
    port = server.port
    k = Keys("out:")
    p = part(url, "out:")
    p.write_batch([alert(1, n=0)])
    server.stop()  # Redis goes away (and, with persistence off, loses its data)
    done = threading.Event()

    def write() -> None:
        p.write_batch([alert(1, n=1), alert(2, n=1)])
        done.set()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    time.sleep(0.5)
    assert not done.is_set()  # blocked, retrying: not crashed, not dropped
    server2 = EmbeddedRedis(port=port)
    try:
        server2.start()
        assert done.wait(15)
        client = redis.Redis.from_url(url)
        versions = [Alert.from_json(f[b"a"]).version for _, f in client.xrange(k.alerts)]
        # the batch held over the outage, then the alert Redis lost (it restarted empty)
        assert versions == [1, 2, 1]
        assert _open_versions(client, k) == {alert(1, n=0).id: 1, alert(1, n=1).id: 2}
        assert (p.outages, p.losses) == (1, 1)
        client.close()
    finally:
        p.close()
        server2.stop()


# -- bounded outages and Redis losing data -----------------------------------------------------


def test_an_outage_longer_than_the_bound_stops_the_run_with_a_store_error() -> None:
    from citywatch.errors import StoreError
    from citywatch.processes import free_port

    port = free_port()
    sink = RedisSink(f"redis://127.0.0.1:{port}/0", Keys("gone:"), run_id="r", max_outage_s=0.3)
    p = sink.build("out", 0, 1)
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info:
        p.write_batch([alert(1)])
    assert 0.3 <= time.monotonic() - t0 < 5
    assert f"Redis at 127.0.0.1:{port} unreachable for 0 s (connection refused)" in str(info.value)
    assert "1 item unwritten" in str(info.value)
    p.close()


def _restart(server: EmbeddedRedis, *, data_dir: Path | None = None) -> EmbeddedRedis:
    port = server.port
    server.stop()
    again = EmbeddedRedis(port=port, data_dir=data_dir)
    again.start()
    return again


def _open_versions(client: redis.Redis, k: Keys) -> dict[str, int]:
    ids = [i.decode() for i in client.zrange(k.open, 0, -1)]
    return {i: int(client.hget(k.alert(i), "version")) for i in ids}  # type: ignore[arg-type]


def test_redis_back_empty_gets_the_open_alerts_again_once() -> None:
    """Redis restarted without its data: the next batch finds the sink's batch count gone,
    and the partition re-publishes the newest version of every alert still open."""
    server = EmbeddedRedis()
    server.start()
    k = Keys("lost:")
    p = part(server.start_url, "lost:")

    def a(v: int, **kw: object) -> Alert:
        return alert(v, n=0, **kw)  # type: ignore[arg-type]

    def b(v: int, **kw: object) -> Alert:
        return alert(v, n=1, **kw)  # type: ignore[arg-type]

    def c(v: int, **kw: object) -> Alert:
        return alert(v, n=2, **kw)  # type: ignore[arg-type]

    try:
        p.write_batch([a(1), b(1), c(1)])
        p.write_batch([b(2, level=Level.RED), c(2, state="resolved")])
        server = _restart(server)  # empty
        p.write_batch([IngestMark("f", 0, bytes([KIND_CODES["air"]]))])
        client = redis.Redis.from_url(server.start_url)
        assert _open_versions(client, k) == {a(1).id: 1, b(1).id: 2}
        assert Alert.from_json(client.hget(k.alert(b(1).id), "a")) == b(2, level=Level.RED)
        assert client.hget(k.alert(b(1).id), "status") == b"new"
        # resolved before the loss: its resolve is back too (the partition keeps the last
        # keep_resolved of them), as the only version in the stream
        assert client.hget(k.alert(c(1).id), "state") == b"resolved"
        assert (p.losses, p.republished) == (1, 3)
        p.write_batch([a(2)])  # the next batches are ordinary again
        assert (p.losses, p.republished) == (1, 3)
        stream = [Alert.from_json(f[b"a"]) for _, f in client.xrange(k.alerts)]
        assert [(x.id, x.version) for x in stream] == [
            (c(1).id, 2),
            (a(1).id, 1),
            (b(1).id, 2),
            (a(1).id, 2),
        ]
        client.close()
    finally:
        p.close()
        server.stop()


def test_redis_back_empty_gets_the_last_touch_of_an_open_alert_again() -> None:
    """The values an open alert was last seen with (a touch) are re-written after its
    version; a touch superseded by a newer version is not."""
    server = EmbeddedRedis()
    server.start()
    k = Keys("touched:")
    p = part(server.start_url, "touched:")
    a, b = alert(1, n=0), alert(1, n=1)
    seen = a.evolve(last_ts=a.last_ts + 7_200_000, count=3)
    try:
        p.write_batch([a, b, Touch(seen), Touch(b.evolve(last_ts=b.last_ts + 1))])
        p.write_batch([alert(2, n=1, level=Level.RED)])
        server = _restart(server)  # empty
        p.write_batch([IngestMark("f", 0, bytes([KIND_CODES["air"]]))])
        client = redis.Redis.from_url(server.start_url)
        assert Alert.from_json(client.hget(k.alert(a.id), "a")) == seen  # type: ignore[arg-type]
        assert client.hget(k.alert(a.id), "last_ts") == str(seen.last_ts).encode()
        assert Alert.from_json(client.hget(k.alert(b.id), "a")) == alert(2, n=1, level=Level.RED)  # type: ignore[arg-type]
        assert list(p.touched) == [a.id]
        client.close()
    finally:
        p.close()
        server.stop()


def test_redis_back_from_an_older_copy_gets_the_newer_versions_again(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    server = EmbeddedRedis(data_dir=data)
    server.start()
    k = Keys("old:")
    p = part(server.start_url, "old:")
    try:
        p.write_batch([alert(1, n=0), alert(1, n=1)])
        client = redis.Redis.from_url(server.start_url)
        client.bgrewriteaof()  # an append-only file as of now: the "older copy"
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.02)
        time.sleep(1.2)  # everysec: on disk
        client.close()
        older = (data / "appendonly.aof").read_bytes()
        p.write_batch([alert(2, n=0, level=Level.RED), alert(2, n=1, state="resolved")])
        server.stop()
        (data / "appendonly.aof").write_bytes(older)  # restored from the older copy
        server = EmbeddedRedis(port=server.port, data_dir=data)
        server.start()
        client = redis.Redis.from_url(server.start_url)
        assert client.hget(k.alert(alert(1, n=0).id), "version") == b"1"  # older indeed
        p.write_batch([IngestMark("f", 0, bytes([KIND_CODES["air"]]))])
        assert p.losses == 1
        # n=0's newer version and n=1's resolve, lost with the newer data, are back: the
        # older copy does not show n=1 firing again
        assert _open_versions(client, k) == {alert(1, n=0).id: 2}
        assert client.hget(k.alert(alert(1, n=1).id), "state") == b"resolved"
        client.close()
    finally:
        p.close()
        server.stop()


def test_a_restart_with_the_data_or_a_new_partition_is_not_a_loss(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    server = EmbeddedRedis(data_dir=data)
    server.start()
    p = part(server.start_url, "kept:")
    try:
        p.write_batch([alert(1, n=0)])
        server = _restart(server, data_dir=data)  # SIGTERM: the append-only file is complete
        p.write_batch([alert(2, n=0)])
        resumed = part(server.start_url, "kept:")  # a resumed run: takes Redis's count
        resumed.write_batch([alert(3, n=0)])
        assert (p.losses, resumed.losses, p.republished) == (0, 0, 0)
        resumed.close()
    finally:
        p.close()
        server.stop()


def test_republished_versions_are_written_by_the_sink_and_remembered(
    redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    k = Keys(prefix)
    p = part(redis_url, prefix)
    p.write_batch([alert(1), Republish(alert(2))])
    p.write_batch([Republish(alert(2))])  # again: nothing new
    assert [Alert.from_json(f[b"a"]).version for _, f in redis_client.xrange(k.alerts)] == [1, 2]
    assert [a.version for a in p.open_alerts] == [2]


def test_a_redis_refusing_writes_for_now_is_waited_for_then_written() -> None:
    """At maxmemory with noeviction Redis answers OOM: waiting may cure it (memory freed),
    so the sink holds the batch as for an outage; a wrong type is not, it stops at once."""
    from citywatch.errors import StoreError

    with EmbeddedRedis(args=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")) as server:
        client = redis.Redis.from_url(server.start_url)
        n = 0
        while n < 10_000:  # fill it
            try:
                client.set(f"junk:{n}", b"x" * 10_000)
            except redis.exceptions.OutOfMemoryError:
                break
            n += 1
        assert 0 < n < 10_000  # it refused one: full
        p = part(server.start_url, "oom:")
        done = threading.Event()
        t = threading.Thread(target=lambda: (p.write_batch([alert(1)]), done.set()), daemon=True)
        t.start()
        assert not done.wait(0.5)  # held, not dropped, not crashed
        client.delete(*[f"junk:{i}" for i in range(n)])
        assert done.wait(10)
        assert client.hget(Keys("oom:").alert(alert(1).id), "version") == b"1"
        assert p.outages == 1
        client.set("wrong:alerts", b"a string, not a stream")
        with pytest.raises(StoreError, match="refused a write"):
            part(server.start_url, "wrong:").write_batch([alert(1)])
        p.close()
        client.close()

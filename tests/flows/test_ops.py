"""Operations glue: silences from Redis into the engine, the Prometheus endpoint, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
import redis

from citywatch.alerts import Alert, Level, Signal, Subject
from citywatch.cli import build_parser
from citywatch.settings import Settings
from flows.city import EngineShard, EngineStats, Gate, Tick
from flows.metrics import serve_metrics
from flows.run import RunOptions, is_endless
from flows.sources.silences import SilenceSource, parse_silences
from models.alert_engine import AlertEngine
from sinks.redis_sink import Gauge, IngestMark, RedisSink

pytestmark = pytest.mark.integration


def test_silences_are_read_from_redis_and_mute_the_engine(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = settings.keys.silences
    redis_client.hset(
        key,
        mapping={
            "s1": orjson.dumps(
                {
                    "until_ms": 10 * 60_000,
                    "reason": "检修",
                    "author": "duty1",
                    "matcher": {"rule": "air.spike", "subject_id": "S1"},
                }
            ),
            "bad": b"{not json",
        },
    )
    src = SilenceSource(settings.redis_url or "", key, every_s=0.0)
    part = src.build_part("silences", "silences", None)
    (batch,) = part.next_batch()
    assert [s.id for s in batch.silences] == ["s1"]
    assert part.next_batch() == []  # unchanged: nothing new to send
    part.close()

    shard = EngineShard(AlertEngine(), Gate(1, 60_000), grace_ms=0, durable=False)
    shard.on_item([batch])
    sig = Signal("air.spike", Subject("station", "S1"), 60_000, level=Level.RED)
    out, _ = shard.on_item([(60_000, sig)])
    assert list(out) == []
    out, _ = shard.on_item([Tick(10 * 60_000, "p")])
    (items,) = out
    alerts = [x[1] for x in items if type(x) is tuple and type(x[1]) is Alert]
    assert [a.rule for a in alerts] == ["air.spike"]  # the silence expired
    (stats,) = [x for x in items if type(x) is EngineStats]
    assert dict(stats.stats)["silenced"] == 1


def test_parse_silences_skips_what_it_cannot_read() -> None:
    got = parse_silences({b"a": b'{"until": 5}', b"b": b'{"until": "soon"}', b"c": b"[]"})
    assert [s.id for s in got] == ["a"]


def test_metrics_endpoint_serves_the_counts(settings: Settings) -> None:
    assert settings.redis_url is not None
    sink = RedisSink(settings.redis_url, settings.keys, run_id="m").build("o", 0, 1)
    sink.write_batch(
        [
            IngestMark("p", 0, bytes([0, 0, 1]), high_ts=1_000),
            Gauge({"engine:e:0:inhibited": 2, "engine:e:1:inhibited": 3}),
        ]
    )
    sink.close()  # type: ignore[attr-defined]
    server = serve_metrics(settings.redis_url, settings.with_(metrics_port=0))
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'citywatch_input_total{kind="air"} 2' in body
    assert 'citywatch_input_total{kind="gps"} 1' in body
    assert "citywatch_records_total 3" in body
    assert "citywatch_event_time_lag_seconds" in body
    assert 'citywatch_engine_signals_total{outcome="inhibited"} 5' in body


def test_run_command_options_round_trip() -> None:
    parser, _ = build_parser()
    args = parser.parse_args(
        [
            "run",
            "--source",
            "redis",
            "--kinds",
            "air",
            "gps",
            "--processes",
            "2",
            "--recovery",
            "/tmp/x",
            "--speed",
            "10x",
        ]
    )
    assert (args.source, args.kinds, args.processes, args.recovery) == (
        "redis",
        ["air", "gps"],
        2,
        "/tmp/x",
    )
    opts = RunOptions(source="redis", kinds=("air",), processes=2, flow={"shards": 4})
    assert RunOptions.from_json(opts.to_json()) == opts
    assert is_endless(opts)
    assert not is_endless(RunOptions(source="files"))


def test_workers_get_the_parents_settings() -> None:
    from flows.run import settings_env

    s = Settings.load(env={}).with_(
        prefix="x:", epoch_s=2.5, feed_tokens=("a", "b"), recovery_dir=None, metrics_port=9100
    )
    assert Settings.load(env=settings_env(s)) == s


def test_the_silence_poller_ends_when_the_flow_is_asked_to_stop(settings: Settings) -> None:
    """An endless run's other inputs end on SIGINT/SIGTERM (``STOP``); this one must too,
    or the flow never completes (``citywatch run --source redis`` ignored Ctrl-C)."""
    from datetime import UTC, datetime, timedelta

    from flows.sources import STOP

    src = SilenceSource(settings.redis_url or "", settings.keys.silences, every_s=60.0)
    part = src.build_part("silences", "silences", None)
    try:
        part.next_batch()  # the first poll
        assert part.next_batch() == []  # the next one is a minute away
        awake = part.next_awake()
        assert awake is not None
        assert awake <= datetime.now(UTC) + timedelta(seconds=0.5)  # it looks for a stop soon
        STOP.set()
        with pytest.raises(StopIteration):
            part.next_batch()
    finally:
        STOP.clear()
        part.close()


def test_an_endless_redis_run_stops_cleanly_on_sigint(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    keys = settings.keys
    record = {"kind": "air", "ts": 1_793_577_600_000, "station": "S1", "pm25": 10.0}
    redis_client.xadd(keys.inbound("air"), {"r": orjson.dumps(record)})
    env = {**os.environ, "REDIS_URL": settings.redis_url or "", "CW_PREFIX": keys.prefix}
    env["CW_REGION"] = "31.6,32.7,120.2,121.9"  # no registry here: the region must be set
    cmd = [sys.executable, "-m", "citywatch", "run", "--source", "redis"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while redis_client.hget(keys.counts, "records") != b"1":
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the run never counted its record"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert b"panicked" not in err

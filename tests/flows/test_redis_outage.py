"""Redis goes away mid-run and comes back (with its data, or empty): the flow waits, and
Redis ends as after an uninterrupted run."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from bytewax.testing import run_main

from citywatch.keys import Keys
from citywatch.redisconn import EmbeddedRedis, _bundled_server
from citywatch.settings import Settings
from flows.city import build_flow
from flows.sources import DecodingSource
from flows.sources.iterable import IterableSource
from sinks.redis_sink import RedisSink
from tests.flows.conftest import counts, final_alerts, run_flow, stream_versions
from tests.flows.toy import ToyExceedance, held, scenario

pytestmark = pytest.mark.integration


class PersistentRedis:
    """A private redis-server with an append-only file, so a restart keeps its data."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _bundled_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url, socket_timeout=0.2).ping()
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url).shutdown(save=False)
            self.proc.wait(10)
            self.proc = None


def test_flow_survives_a_redis_restart_mid_run(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sinks.redis_sink")
    recs = scenario(stations=6, minutes=240, stagger=35)
    run_flow(IterableSource(lambda: iter(recs)), settings)  # the reference, on the shared Redis
    expected = final_alerts(redis_client, settings.keys)
    expected_counts = counts(redis_client, settings.keys)

    server = PersistentRedis(tmp_path)
    server.start()
    keys = Keys("outage:")
    speed = 240 * 60 / 4.0  # about 4 s of wall time
    source = DecodingSource(IterableSource(lambda: iter(recs), speed=speed), batch_size=20)
    sink = RedisSink(server.url, keys, run_id="o", backoff_s=(0.05, 0.5))
    flow = build_flow(source, sink, models=[ToyExceedance()])
    runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
    try:
        runner.start()
        time.sleep(1.0)
        server.stop()
        time.sleep(1.5)
        assert runner.is_alive()  # waiting for Redis, not crashed
        server.start()
        runner.join(60)
        assert not runner.is_alive()
        client = redis.Redis.from_url(server.url)
        assert final_alerts(client, keys) == expected
        got = stream_versions(client, keys)
        assert len(got) == len(set(got)) == len(stream_versions(redis_client, settings.keys))
        assert counts(client, keys) == expected_counts
        assert any("unreachable" in r.getMessage() for r in caplog.records)
        client.close()
    finally:
        server.stop()


def test_redis_back_empty_gets_what_the_engine_holds_again(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarts without its data mid-run, after the last version of an alert the engine
    still holds open at the end: the sink re-publishes it (and the alerts it resolved), so
    Redis ends as after an uninterrupted run."""
    caplog.set_level(logging.WARNING, logger="sinks.redis_sink")
    run_flow(IterableSource(held()), settings)  # the reference, on the shared Redis
    expected = final_alerts(redis_client, settings.keys)
    (held_id,) = [i for i, (_, state, _) in expected.items() if state == "firing"]

    server = EmbeddedRedis()
    url = server.start()
    keys = Keys("lost:")
    source = DecodingSource(IterableSource(held(tail_sleep_s=0.02)), batch_size=20)
    flow = build_flow(source, RedisSink(url, keys, run_id="l"), models=[ToyExceedance()])
    runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
    runner.start()
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        deadline = time.monotonic() + 30
        while client.hget(keys.alert(held_id), "version") != str(expected[held_id][0]).encode():
            assert time.monotonic() < deadline, "the held alert never reached Redis"
            time.sleep(0.02)
        client.close()
        server.stop()  # no persistence: it comes back empty
        server = EmbeddedRedis(port=server.port)
        server.start()
        runner.join(60)
        assert not runner.is_alive()
        client = redis.Redis.from_url(url)
        assert final_alerts(client, keys) == expected
        got = stream_versions(client, keys)
        assert len(got) == len(set(got))  # each version at most once after the loss
        assert any("lost data" in r.getMessage() for r in caplog.records)
        client.close()
    finally:
        server.stop()

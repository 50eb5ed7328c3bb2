"""``citywatch demo``: the whole system on one machine, until Ctrl-C.

Redis is ``REDIS_URL`` or, when unset, a private embedded redis-server. The demo then starts the
city dataflow (``citywatch run`` on the ``demo`` scenario at live pace) and the feed service with
the console (``citywatch serve``) as child processes, prints the console URL, and prints live
counts from Redis every few seconds. Parts that have not landed yet are replaced by a plain
ingest loop (generated events decoded, counts and dead letters written to Redis).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import cast

import orjson
import redis

from citywatch.events import DeadLetter, EventDecoder
from citywatch.keys import Keys
from citywatch.redisconn import connect, embedded_or_url, redact
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="demo", help="simulator scenario (default: demo)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", default="1x", help="pace: 1x (live), 10x, ... or max")
    p.add_argument("--port", type=int, help="console/feed port (default: settings feed_port)")
    p.add_argument("--every", type=float, default=3.0, help="seconds between count lines")
    p.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free: int = s.getsockname()[1]
        return free


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    port = args.port if args.port is not None else settings.feed_port
    if port == 0:
        port = _free_port()
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with embedded_or_url(settings.redis_url) as url:
        embedded = settings.redis_url is None
        print(
            f"citywatch demo: Redis {'embedded at ' if embedded else 'at '}{redact(url)}",
            flush=True,
        )
        env = {**os.environ, "REDIS_URL": url, "CW_PREFIX": settings.prefix}
        children: list[subprocess.Popen[bytes]] = []
        try:
            if _has("citywatch.commands.serve"):
                children.append(_spawn(["serve", "--port", str(port)], env))
                print(f"citywatch demo: console at http://{settings.feed_host}:{port}/", flush=True)
                print(
                    f"citywatch demo: token {settings.feed_tokens[0]!r} (see CW_FEED_TOKENS)",
                    flush=True,
                )
            else:
                print("citywatch demo: console not built yet (issue #8)", flush=True)
            client = connect(url)
            ingest = None
            if _has("citywatch.commands.run"):
                children.append(
                    _spawn(
                        [
                            "run",
                            "--scenario",
                            args.scenario,
                            "--seed",
                            str(args.seed),
                            "--speed",
                            args.speed,
                        ],
                        env,
                    )
                )
            else:
                print(
                    "citywatch demo: dataflow not built yet (issue #7): plain ingest loop",
                    flush=True,
                )
                ingest = _IngestLoop(client, settings)
            _watch(client, settings.keys, children, ingest, stop, args.every, args.duration)
        finally:
            for child in children:
                _terminate(child)
    print("citywatch demo: stopped", flush=True)
    return 0


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "citywatch", *argv], env=env)  # noqa: S603


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _watch(
    client: redis.Redis,
    keys: Keys,
    children: list[subprocess.Popen[bytes]],
    ingest: _IngestLoop | None,
    stop: _Stop,
    every: float,
    duration: float | None,
) -> None:
    started = time.monotonic()
    next_line = started
    while not stop.requested:
        if duration is not None and time.monotonic() - started >= duration:
            return
        for child in children:
            if child.poll() is not None:
                print(
                    f"citywatch demo: a part exited with code {child.returncode}; stopping",
                    flush=True,
                )
                return
        if ingest is not None:
            ingest.step()
        else:
            time.sleep(0.2)
        if time.monotonic() >= next_line:
            next_line += every
            with contextlib.suppress(redis.RedisError):
                print(_counts_line(client, keys), flush=True)


def _counts_line(client: redis.Redis, keys: Keys) -> str:
    raw = cast("dict[bytes, bytes]", client.hgetall(keys.counts))
    counts = {k.decode(): int(v) for k, v in raw.items()}
    records = sum(v for k, v in counts.items() if k.startswith("in:"))
    dead = sum(v for k, v in counts.items() if k.startswith("dead:"))
    alerts = client.xlen(keys.alerts)
    firing = client.zcard(keys.open)
    return (
        f"records {records:>9,}  dead letters {dead:>6,}  alert changes {alerts:>6,}  "
        f"firing {firing:>4,}"
    )


class _IngestLoop:
    """Stand-in until the dataflow lands: decode generated events, count, dead-letter."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = settings.keys
        self.decoder = EventDecoder(
            settings.region_box, future_tolerance_ms=settings.future_tolerance_ms
        )
        self.records = _records(random.Random(1))

    def step(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        for _ in range(200):
            raw = next(self.records)
            out = self.decoder.decode(raw, "demo")
            if isinstance(out, DeadLetter):
                pipe.xadd(
                    self.keys.deadletter,
                    {"raw": out.raw, "source": out.source, "reason": out.reason},
                    maxlen=10_000,
                    approximate=True,
                )
                pipe.hincrby(self.keys.counts, f"dead:{out.reason.split(':')[0]}", 1)
            else:
                pipe.hincrby(self.keys.counts, f"in:{out.kind}", 1)
        pipe.execute()
        time.sleep(0.1)


def _records(r: random.Random) -> Iterator[bytes]:
    ts = int(time.time() * 1000)
    while True:
        ts += 50
        if r.random() < 0.01:
            yield b'{"kind":"air","ts":' + str(ts).encode() + b',"station":"S1","pm25":"high"}'
            continue
        yield orjson.dumps(
            {
                "kind": "air",
                "ts": ts,
                "station": f"S{r.randrange(50):03d}",
                "pm25": round(r.uniform(5, 120), 1),
                "pm10": round(r.uniform(10, 200), 1),
            }
        )

"""``citywatch demo``: the whole system on one machine, until Ctrl-C.

Redis is ``REDIS_URL`` or, when unset, a private embedded redis-server. The demo starts the feed
service with the console (``citywatch serve``) and the city dataflow (``citywatch run`` on the
``demo`` scenario at live pace) as child processes, prints the console URL, and prints live
counts from Redis every few seconds. The simulated hour starts a few minutes in the past
(``--preroll``) and those minutes are replayed at once, so alerts are on screen straight away;
when a scenario ends, the next seed starts, so the demo can run for a whole shift.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import cast

import redis

from citywatch.keys import Keys
from citywatch.processes import free_port, stop_process
from citywatch.redisconn import connect, embedded_or_url, redact
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="demo", help="simulator scenario (default: demo)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", default="1x", help="pace: 1x (live), 10x, ... or max")
    p.add_argument(
        "--preroll",
        type=float,
        default=900.0,
        metavar="S",
        help="start the simulated hour S seconds ago and replay them at once (default 900)",
    )
    p.add_argument("--port", type=int, help="console/feed port (default: settings feed_port)")
    p.add_argument("--every", type=float, default=3.0, help="seconds between count lines")
    p.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)"
    )


class _Stop:
    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signum = signum


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    port = args.port if args.port is not None else settings.feed_port
    if port == 0:
        port = free_port()
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with embedded_or_url(settings.redis_url) as url:
        embedded = settings.redis_url is None
        where = "embedded at " if embedded else "at "
        print(f"citywatch demo: Redis {where}{redact(url)}", flush=True)
        env = {**os.environ, "REDIS_URL": url, "CW_PREFIX": settings.prefix}
        serve = _spawn(["serve", "--port", str(port)], env)
        flow: subprocess.Popen[bytes] | None = None
        try:
            print(f"citywatch demo: console at {_console_url(settings, port)}", flush=True)
            client = connect(url)
            seed = args.seed
            started = time.monotonic()
            next_line = started
            while not stop.requested:
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                if serve.poll() is not None:
                    print(
                        f"citywatch demo: the feed exited ({serve.returncode}); stopping",
                        flush=True,
                    )
                    return 1
                if flow is None or flow.poll() == 0:
                    if flow is not None:
                        seed += 1
                        print(f"citywatch demo: scenario done; next seed {seed}", flush=True)
                    flow = _spawn(_run_argv(args, seed), env)
                elif flow.returncode is not None:
                    print(
                        f"citywatch demo: the flow exited ({flow.returncode}); stopping", flush=True
                    )
                    return 1
                time.sleep(0.2)
                if time.monotonic() >= next_line:
                    next_line += args.every
                    with contextlib.suppress(redis.RedisError):
                        print(_counts_line(client, settings.keys), flush=True)
        finally:
            # Ctrl-C in a terminal reaches the whole process group: the children are already
            # stopping (the flow lands its last batch). A SIGTERM now would be their second
            # signal, a hard stop with a Rust backtrace; give them a moment first.
            grace = 5.0 if stop.signum == signal.SIGINT else 0.0
            for child in (flow, serve):
                if child is not None:
                    stop_process(child, grace_s=grace, wait_s=15)
    print("citywatch demo: stopped", flush=True)
    return 0


def _console_url(settings: Settings, port: int) -> str:
    """The console URL; with the built-in development token it logs straight in (the token
    rides in the fragment, which browsers never send). A configured token is never printed."""
    url = f"http://{settings.feed_host}:{port}/"
    if settings.feed_tokens == Settings().feed_tokens:
        return f"{url}#token={settings.feed_tokens[0]}"
    return f"{url} (log in with a token from CW_FEED_TOKENS)"


def _run_argv(args: argparse.Namespace, seed: int) -> list[str]:
    argv = ["run", "--scenario", args.scenario, "--seed", str(seed), "--speed", args.speed]
    if args.speed not in ("max", "0"):
        argv += ["--preroll", str(args.preroll)]
    return argv


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "citywatch", *argv], env=env)  # noqa: S603


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

"""``citywatch demo``: the whole system on one machine, until Ctrl-C.

Redis is ``REDIS_URL`` or, when unset, an embedded redis-server that keeps its data in
``<data_dir>/demo/redis`` (an append-only file, fsync every second); the demo restarts it with
its data if it dies. While it runs, the demo publishes that server's URL in
``<data_dir>/demo/redis.json``, where ``citywatch report``/``serve`` find it. The demo starts
the feed service with the console (``citywatch serve``) and the city dataflow (``citywatch run``
on the ``demo`` scenario at live pace, with recovery under ``<data_dir>/demo/flow``) as child
processes, prints the console URL, and prints live counts from Redis every few seconds (or,
while Redis is away, since when). The simulated hour starts a few minutes in the past
(``--preroll``) and those minutes are replayed at once, so alerts are on screen straight away;
when a scenario ends, the next seed starts, so the demo can run for a whole shift.

A restart of the demo keeps what Redis holds (alerts, work orders, audit) and resumes the
flow where it stopped (its models and engine, so the alerts it had open are still its own);
the simulated time then catches up with the clock. ``--fresh`` forgets all of it.

The console accepts the demo's published logins, one per role (``citywatch.identity``
``DEMO_LOGINS``, plus the development admin ``dev-token``), on loopback only; the demo prints
a login URL for each. A taken port, or a non-loopback ``feed_host``, stops it before anything
starts (one line, exit 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import cast

import orjson
import redis

from citywatch.errors import ConfigError, DependencyError
from citywatch.identity import DEMO_LOGINS, DEV_ADMIN, ROLE_ACTIONS, Identity
from citywatch.keys import Keys
from citywatch.processes import check_port, free_port, stop_process
from citywatch.redisconn import (
    EmbeddedRedis,
    RedisWatch,
    connect,
    process_alive,
    publish_demo_redis,
    read_demo_redis,
    reason,
    redact,
    wait_for,
)
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="demo", help="simulator scenario (default: demo)")
    p.add_argument(
        "--seed", type=int, help="simulator seed (default: where the last demo stopped, else 1)"
    )
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
    p.add_argument(
        "--fresh",
        action="store_true",
        help="forget the last demo (its Redis data and flow state under <data_dir>/demo)",
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
    from sinks.feed.server import check_exposure

    check_exposure(settings.feed_host, dev_logins=True)  # the demo's logins are published
    check_port(settings.feed_host, port)  # before anything is printed or started
    home = settings.data_dir / "demo"
    if args.fresh:
        _forget(settings)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with DemoRedis(settings) as store:
        url = store.url
        env = {**os.environ, "REDIS_URL": url, "CW_PREFIX": settings.prefix}
        serve = _spawn(["serve", "--port", str(port), "--demo-logins"], env)
        flow: subprocess.Popen[bytes] | None = None
        plan = DemoFlow(home, args.scenario, args.seed)
        watch = RedisWatch(url, name="citywatch demo", say=_quiet)
        try:
            print(_logins(settings, port), flush=True)
            client = connect(url, socket_timeout=2.0)
            if plan.resuming:
                print(
                    f"citywatch demo: resuming the flow (scenario {plan.scenario}, seed "
                    f"{plan.seed}) from {plan.recovery}",
                    flush=True,
                )
            started = time.monotonic()
            next_line = started
            while not stop.requested:
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                store.supervise()
                if serve.poll() is not None:
                    print(
                        f"citywatch demo: the feed exited ({serve.returncode}); stopping",
                        flush=True,
                    )
                    return 1
                if flow is None or flow.poll() == 0:
                    if flow is not None:
                        plan.next_seed()
                        print(f"citywatch demo: scenario done; next seed {plan.seed}", flush=True)
                    flow = _spawn(plan.argv(args), env)
                elif flow.returncode is not None:
                    hint = (
                        f"; if it cannot resume from {plan.recovery}, `citywatch demo --fresh` "
                        "starts over"
                        if plan.resuming
                        else ""
                    )
                    print(
                        f"citywatch demo: the flow exited ({flow.returncode}); stopping{hint}",
                        flush=True,
                    )
                    return 1
                time.sleep(0.2)
                if time.monotonic() >= next_line:
                    next_line += args.every
                    print(_status_line(client, settings.keys, watch), flush=True)
        finally:
            watch.stop()
            # Ctrl-C in a terminal (or a service manager's SIGTERM) reaches the whole process
            # group: the children are already stopping (the flow lands its last batch and
            # snapshots). A SIGTERM now would be their second signal, a hard stop with a Rust
            # backtrace; give them a moment first.
            grace = 5.0 if stop.signum is not None else 0.0
            for child in (flow, serve):
                if child is not None:
                    stop_process(child, grace_s=grace, wait_s=15)
    print("citywatch demo: stopped", flush=True)
    return 0


def _logins(settings: Settings, port: int) -> str:
    """The console URL and one login URL per demo role (the token rides in the fragment,
    which browsers never send). A configured development token is never printed."""
    url = f"http://{settings.feed_host}:{port}/"
    logins: list[tuple[str, Identity]] = list(DEMO_LOGINS.items())
    if settings.feed_tokens == Settings().feed_tokens:
        logins.append((settings.feed_tokens[0], DEV_ADMIN))
    lines = [f"citywatch demo: console at {url}; log in as"]
    for token, who in logins:
        what = ", ".join(ROLE_ACTIONS[who.role]) or "read only"
        role = who.role.value.replace("_", " ") + (f" of {who.dept}" if who.dept else "")
        if who.scope != "city":
            role += f" of {who.scope}"
        lines.append(f"  {who.name} ({role}: {what})  {url}#token={token}")
    return "\n".join(lines)


class DemoFlow:
    """Which scenario and seed the demo's flow runs, and its recovery directory.

    ``<home>/flow.json`` records the scenario and seed; ``<home>/flow/<scenario>-<seed>`` holds
    the flow's recovery state, so a restarted demo resumes the flow it stopped (unless another
    scenario or an explicit seed is asked for). A finished scenario's state is removed.
    """

    def __init__(self, home: Path, scenario: str, seed: int | None) -> None:
        self.home = home
        self.file = home / "flow.json"
        self.scenario = scenario
        last = self._load()
        last_seed = last.get("seed")
        same = (
            last.get("scenario") == scenario
            and isinstance(last_seed, int)
            and seed in (None, last_seed)
        )
        self.seed = last_seed if same and isinstance(last_seed, int) else (seed or 1)
        self.resuming = same and self.recovery.is_dir()
        if not self.resuming:
            shutil.rmtree(self.recovery, ignore_errors=True)
        self._save()

    @property
    def recovery(self) -> Path:
        return self.home / "flow" / f"{self.scenario}-{self.seed}"

    def argv(self, args: argparse.Namespace) -> list[str]:
        argv = ["run", "--scenario", self.scenario, "--seed", str(self.seed)]
        argv += ["--speed", args.speed, "--recovery", str(self.recovery)]
        if args.speed not in ("max", "0"):
            argv += ["--preroll", str(args.preroll)]
        return argv

    def next_seed(self) -> None:
        shutil.rmtree(self.recovery, ignore_errors=True)
        self.seed += 1
        shutil.rmtree(self.recovery, ignore_errors=True)
        self._save()

    def _load(self) -> dict[str, object]:
        try:
            data = orjson.loads(self.file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.file.write_bytes(orjson.dumps({"scenario": self.scenario, "seed": self.seed}))


class DemoRedis:
    """``REDIS_URL`` once it answers, else the demo's embedded Redis: persistent under
    ``<data_dir>/demo/redis``, published in ``<data_dir>/demo/redis.json`` while it runs, and
    restarted with its data when it dies (:meth:`supervise`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: EmbeddedRedis | None = None
        self.url = settings.redis_url or ""
        self.published: Path | None = None

    def __enter__(self) -> DemoRedis:
        s = self.settings
        if s.redis_url:
            wait_for(s.redis_url, retries=s.redis_retries).close()
            print(f"citywatch demo: Redis at {redact(s.redis_url)}", flush=True)
            return self
        _claim(s.data_dir)
        data = s.data_dir / "demo" / "redis"
        self.server = EmbeddedRedis(data_dir=data)
        try:
            self.url = self.server.start(timeout_s=60)
            self.published = publish_demo_redis(s.data_dir, self.url, self.server.pid or 0)
        except BaseException:
            self.server.stop()
            raise
        print(
            f"citywatch demo: Redis embedded at {self.url}, data kept in {data} "
            f"(other commands find it in {self.published})",
            flush=True,
        )
        return self

    def supervise(self) -> None:
        """Restart the embedded server on its port, with its data, when it has exited."""
        server = self.server
        if server is None or server.running():
            return
        print(
            f"citywatch demo: the embedded Redis exited ({server.exit_reason()}); "
            "restarting it with its data",
            flush=True,
        )
        server.stop()
        server.start(timeout_s=60)
        self.published = publish_demo_redis(self.settings.data_dir, self.url, server.pid or 0)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.published is not None:
            self.published.unlink(missing_ok=True)
        if self.server is not None:
            self.server.stop()


def _claim(data_dir: Path) -> None:
    """Refuse to share the data folder with a running demo; stop a redis-server a killed demo
    left behind on it (two servers must never append to one file)."""
    record = read_demo_redis(data_dir)
    if record is None:
        return
    owner = int(record.get("demo_pid", 0))
    if owner and owner != os.getpid() and process_alive(owner, "citywatch"):
        msg = (
            f"another demo (pid {owner}) runs on {data_dir / 'demo'} with Redis at "
            f"{record['url']}; stop it, or give this one its own CW_DATA_DIR"
        )
        raise DependencyError(msg)
    pid = int(record["pid"])
    print(f"citywatch demo: stopping the Redis (pid {pid}) a stopped demo left running", flush=True)
    try:
        os.kill(pid, signal.SIGTERM)  # it writes its append-only file and exits
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while process_alive(pid, "redis-server") and time.monotonic() < deadline:
        time.sleep(0.05)


def _forget(settings: Settings) -> None:
    """``--fresh``: remove the demo's Redis data and flow state (not while a demo runs)."""
    home = settings.data_dir / "demo"
    record = read_demo_redis(settings.data_dir)
    if record is not None and process_alive(int(record.get("demo_pid", 0)), "citywatch"):
        msg = f"--fresh: a demo (pid {record['demo_pid']}) still runs on {home}; stop it first"
        raise ConfigError(msg)
    _claim(settings.data_dir)
    if home.exists():
        shutil.rmtree(home)
        print(f"citywatch demo: forgot the last demo ({home})", flush=True)


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "citywatch", *argv], env=env)  # noqa: S603


def _quiet(line: str) -> None:
    """The flow says when Redis goes and comes back; the demo shows it in its status line."""


def _status_line(client: redis.Redis, keys: Keys, watch: RedisWatch) -> str:
    """The counts, or since when Redis is away (the flow holds its output meanwhile)."""
    try:
        if watch.check() == "up":
            return _counts_line(client, keys)
    except redis.RedisError as exc:
        return f"Redis does not answer ({reason(exc)})"
    return f"{watch.status()}; the flow holds its output until it is back"


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

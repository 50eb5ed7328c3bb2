"""Alert latency at live pace: ingestion -> XADD to ``cw:alerts`` -> a websocket client.

A Nantong-mix city (``city-day`` on the ``nantong`` profile at ``--scale``, from 08:00, with
anomalies injected early: ``citywatch.commands.bench.busy_city``) is paced so records
arrive at ``--rate`` per second (default 46,000 = 10x the 400M/day average) for ``--seconds``
(default 120), through the real city flow (every registered model, the alert engine, the
correlator, the Redis sink) in this process, while ``citywatch serve`` runs as its own process
and one authenticated websocket client (a third process) subscribes to every alert.

How latency is measured, and why it is honest:

- **Ingestion time** of a record is its *scheduled* arrival: the pacing maps event time to wall
  time (``anchor_wall + (ts - anchor_ts) / speed``, anchored at the first read), as a live feed
  would deliver it. If the flow falls behind, the source reads late and the backlog counts as
  latency (it is not hidden by measuring from the late read). The source also logs how far
  behind schedule its reads ever were (``max source lag``).
- An alert version's **cause** is the record with ``ts == alert.last_ts``: the newest event
  time the version reflects (a new or updated alert moves ``last_ts`` to the signal's event).
  An incident (``incident.correlated``) is made of other alerts and tickets and carries a
  member's event time, so its cause is its newest member input: the latest cause of its
  member alerts' versions written before it, or its member tickets' arrivals. Its keep-alive
  versions at watermark ticks (same members, same level) are, like resolves, caused by time
  and left out (and counted).
  Resolved versions are caused by event time passing, not by a record, and are left out;
  versions emitted at a watermark tick (e.g. a stop closed by a GPS gap) are *kept*, so the
  tick interval shows up as latency where it costs the officer time.
- **The load** is simulated before the run starts (``--generate ahead``) and held in memory,
  as a live feed would have it ready: the simulator generating in the flow's own process
  pauses for 50-70 ms once per event minute, and charging those pauses to the flow would
  measure the simulator. ``--generate live`` keeps the old way.
- **``--generate redis``** is the deployment's path: a producer process (generated ahead too)
  XADDs the records at their pace to ``cw:in:{kind}:{n}`` (``--partitions`` per kind, by the
  partitioning rule) and the flow reads them with the Redis Streams source. Ingestion is then
  the Redis clock at the XADD (the stream id of the first record of the producer's pipeline
  that held the cause), so the time a record waits in its stream for the flow's next poll
  counts; the producer's own lag behind its schedule does not (it is printed).
- **To Redis**: the stream id's millisecond part is Redis's clock at XADD (same host, same
  clock as ours). ``emitted_ms`` (stamped when the alert leaves the flow) is printed too.
- **To the client**: the wall time the client process received the alert message, matched by
  (id, version).

Last line: ``{"p50_ms_redis": ..., "p99_ms_redis": ..., "p99_ms_client": ...}``.
Targets: p99 <= 100 ms to Redis, <= 150 ms to the client.

    .venv/bin/python benchmarks/latency.py                        # 46,000/s for 2 minutes
    .venv/bin/python benchmarks/latency.py --seconds 30 --rate 20000
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import redis

from citywatch.alerts import Alert
from citywatch.commands.bench import busy_city
from citywatch.processes import free_port, stop_process
from citywatch.redisconn import embedded_or_url
from citywatch.settings import Settings
from flows.replay import record_ts, run_in_process
from flows.run import RunOptions, build_city_flow
from flows.sources import RawReader, RawSource
from flows.sources.iterable import IterableSource

TOKEN = "latency-bench-token"  # noqa: S105 - a loopback benchmark token


# -- the timed source ----------------------------------------------------------------------------


class ScheduleLog:
    """When each record was ingested, and when the flow read it.

    Ingestion is the scheduled arrival of a paced feed, anchored at the first read (wall ms,
    event ts), or, once :meth:`use_xadds` has the producer's log, the Redis clock at its XADD.
    """

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.anchor: tuple[float, int] | None = None
        self.records = 0
        #: Per read: (newest ts read, wall ms of the read, oldest ts read).
        self.reads: list[tuple[int, float, int]] = []
        #: Per producer pipeline: (newest ts in it, Redis ms of its first XADD).
        self.xadds: list[tuple[int, int]] = []
        self.first_wall: float | None = None
        self.last_wall = 0.0
        #: Hotline ticket id -> ts (incidents name their member tickets).
        self.tickets: dict[str, int] = {}

    def use_xadds(self, xadds: list[tuple[int, int]]) -> None:
        self.xadds = sorted(xadds)

    def read_ms(self, ts: int) -> float | None:
        """Wall ms of the read that delivered the record with event time ``ts``."""
        i = bisect.bisect_left(self.reads, (ts, -1.0, -1))
        return self.reads[i][1] if i < len(self.reads) else None

    def ingest_ms(self, ts: int) -> float:
        """When the record with event time ``ts`` was ingested (see the class)."""
        if self.xadds:
            i = min(bisect.bisect_left(self.xadds, (ts, -1)), len(self.xadds) - 1)
            return float(self.xadds[i][1])
        assert self.anchor is not None
        wall0, ts0 = self.anchor
        return wall0 + (ts - ts0) / self.speed

    def lags(self) -> list[float]:
        """Per read: how long its oldest record had been ingested when the flow read it."""
        return [now - self.ingest_ms(first) for _, now, first in self.reads]


class _TimedReader(RawReader):
    def __init__(self, inner: RawReader, log: ScheduleLog) -> None:
        self.inner = inner
        self.log = log
        self.is_live = inner.is_live  # a quiet live stream must not hold the others back

    def read(self, max_n: int) -> list[bytes]:
        now_ms = time.time() * 1000.0
        out = self.inner.read(max_n)
        if out:
            log = self.log
            if log.anchor is None:
                ts = record_ts(out[0])
                if ts is not None:
                    log.anchor = (now_ms, ts)
                    log.first_wall = now_ms
            first, last = record_ts(out[0]), record_ts(out[-1])
            if first is not None and last is not None:
                log.reads.append((last, now_ms, first))
            for r in out:
                if r.startswith(b'{"kind":"hotline"'):
                    d = orjson.loads(r)
                    log.tickets[str(d.get("ticket"))] = int(d["ts"])
            log.records += len(out)
            log.last_wall = time.time() * 1000.0
        return out

    def position(self) -> Any:
        return self.inner.position()

    def next_awake(self) -> Any:
        return self.inner.next_awake()

    def close(self) -> None:
        self.inner.close()


class TimedSource(RawSource):
    source = "sim"

    def __init__(self, inner: RawSource, log: ScheduleLog) -> None:
        self.inner = inner
        self.log = log

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def open(self, part: str, position: Any | None) -> RawReader:
        return _TimedReader(self.inner.open(part, position), self.log)


# -- the websocket client (its own process) ------------------------------------------------------


async def _client(url: str, out: Path, ready: Path) -> None:
    import websockets

    got: list[tuple[float, str, int]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(orjson.dumps({"op": "auth", "token": TOKEN}).decode())
        await ws.send('{"op":"subscribe","since":null}')

        async def receive() -> None:
            async for raw in ws:
                now = time.time() * 1000.0
                msg = orjson.loads(raw)
                if msg.get("type") == "live":
                    ready.write_text("live")
                elif msg.get("type") == "alert":
                    a = msg["alert"]
                    got.append((now, a["id"], a["version"]))

        task = asyncio.create_task(receive())
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    out.write_bytes(orjson.dumps(got))


def client_main(url: str, out: str, ready: str) -> int:
    asyncio.run(_client(url, Path(out), Path(ready)))
    return 0


#: Rules whose alerts are made of other alerts: their ``last_ts`` is a member's event time,
#: not the input that completed them, so their cause is their newest member (see
#: :func:`_cause_ms`).
DERIVED = frozenset({"incident.correlated"})
#: Rules computed from other rules' alerts or signals (correlator, workshop ranking).
SECOND_STAGE = frozenset({"incident.correlated", "vehicle.workshop"})


def _ids(a: Alert, field: str) -> tuple[str, ...]:
    """The member ids an incident's evidence lists under ``field`` (none if not a list)."""
    v = a.evidence.get(field)
    return tuple(str(x) for x in v) if isinstance(v, list | tuple) else ()


def _cause_ms(a: Alert, log: ScheduleLog, latest_cause: dict[str, float]) -> float:
    """Scheduled arrival of the input that caused alert version ``a``.

    A direct alert: the record with ``ts == last_ts``. An incident: its newest member input,
    i.e. the latest of its member alerts' causes (their latest version written before it:
    ``latest_cause``, filled in stream order) and its member tickets' arrivals (with no known
    member it falls back to ``last_ts``).
    """
    if a.rule not in DERIVED:
        return log.ingest_ms(a.last_ts)
    times = [latest_cause[m] for m in _ids(a, "alerts") if m in latest_cause]
    times += [log.ingest_ms(log.tickets[t]) for t in _ids(a, "tickets") if t in log.tickets]
    return max(times) if times else log.ingest_ms(a.last_ts)


# -- helpers -------------------------------------------------------------------------------------


def _wait(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            msg = f"latency: {what} not ready within {timeout_s} s"
            raise SystemExit(msg)
        time.sleep(0.05)


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env)
    try:
        yield proc
    finally:
        stop_process(proc, wait_s=10)


# -- the benchmark -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rate", type=float, default=46_000, help="records per second (wall)")
    p.add_argument("--seconds", type=float, default=120, help="wall seconds of input")
    p.add_argument("--scale", type=float, default=0.25, help="Nantong population x SCALE")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--anomalies", type=int, default=3, help="x the injected anomaly counts")
    p.add_argument(
        "--generate",
        choices=("ahead", "live", "redis"),
        default="ahead",
        help="simulate the records before the run (default), or while it runs, in the flow's "
        "process (then the simulator's own pauses count as latency); redis: a producer "
        "process XADDs them (generated ahead) and the flow reads the Redis streams",
    )
    p.add_argument("--partitions", type=int, default=2, help="--generate redis: streams per kind")
    p.add_argument("--client", nargs=3, metavar=("URL", "OUT", "READY"), help=argparse.SUPPRESS)
    p.add_argument("--produce", nargs=3, metavar=("URL", "PREFIX", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        return client_main(*args.client)
    if args.rate <= 0 or args.seconds <= 0 or args.partitions < 1:
        p.error("--rate, --seconds and --partitions must be positive")
    if args.produce:
        return produce_main(args, *args.produce)

    sim, event_rate, speed, duration_s = _city(args)
    print(
        f"latency: {event_rate:,.0f} records per event second at scale {args.scale:g}; "
        f"pace {speed:.2f}x for {args.rate:,.0f}/s over {args.seconds:g} s "
        f"({duration_s} event seconds)",
        file=sys.stderr,
        flush=True,
    )
    settings = Settings.load()
    prefix = f"cwlat:{uuid.uuid4().hex[:8]}:"
    port = free_port()
    with embedded_or_url(settings.redis_url) as url, tempfile.TemporaryDirectory() as tmp:
        s = settings.with_(redis_url=url, prefix=prefix, alerts_maxlen=5_000_000)
        env = {
            **os.environ,
            "REDIS_URL": url,
            "CW_PREFIX": prefix,
            "CW_FEED_TOKENS": TOKEN,
            "CW_FEED_PORT": str(port),
            "CW_FEED_HOST": "127.0.0.1",
        }
        reg_dir = Path(tmp) / "registry"
        sim.registry.dump(reg_dir)
        out, ready = Path(tmp) / "client.json", Path(tmp) / "ready"
        serve = [sys.executable, "-m", "citywatch", "serve", "--registry", str(reg_dir)]
        client_cmd = [
            sys.executable,
            __file__,
            "--client",
            f"ws://127.0.0.1:{port}/feed",
            str(out),
            str(ready),
        ]
        client = redis.Redis.from_url(url)
        try:
            with _process(serve, env):
                _wait(lambda: _port_open(port), 30, "citywatch serve")
                with _process(client_cmd, env) as cproc:
                    _wait(ready.exists, 30, "the websocket client")
                    log = ScheduleLog(speed)
                    t0 = time.perf_counter()
                    if args.generate == "redis":
                        produced = _run_from_redis(args, s, url, reg_dir, Path(tmp), env, log)
                    else:
                        records = sim.records
                        if args.generate == "ahead":
                            ahead = list(sim.records())
                            records = lambda: iter(ahead)  # noqa: E731
                        raw = TimedSource(IterableSource(records, speed=speed, name="sim"), log)
                        opts = RunOptions(
                            source="files", registry_dir=str(reg_dir), speed=None, run_id="latency"
                        )
                        flow = build_city_flow(opts, s, url, raw=raw)
                        t0 = time.perf_counter()
                        run_in_process(flow, s)
                        produced = None
                    wall = time.perf_counter() - t0
                    n_stream = int(client.xlen(s.keys.alerts))  # type: ignore[arg-type]
                    counts: Any = client.hgetall(s.keys.counts)
                    # Let the feed deliver the tail, then stop the client (it writes its log).
                    time.sleep(3.0)
                    cproc.send_signal(signal.SIGTERM)
                    cproc.wait(30)
            entries: Any = client.xrange(s.keys.alerts)
        finally:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        received = orjson.loads(out.read_bytes()) if out.exists() else []

    if produced is not None:
        print(
            f"latency: the producer XADDed {produced['records']:,} records into "
            f"{produced['streams']} streams; behind its schedule p50 "
            f"{produced['behind_p50_ms']} ms, p99 {produced['behind_p99_ms']} ms, max "
            f"{produced['behind_max_ms']} ms (not counted: latency starts at the XADD)",
            file=sys.stderr,
        )
    dead = {k.decode()[5:]: int(v) for k, v in counts.items() if k.startswith(b"dead:")}
    print(
        f"latency: the flow counted {int(counts.get(b'records', 0)):,} records, "
        f"{sum(dead.values()):,} dead letters {dead or ''}",
        file=sys.stderr,
    )
    rate = log.records / max((log.last_wall - (log.first_wall or 0)) / 1000, 1e-9)
    lags = log.lags()
    print(
        f"latency: {log.records:,} records in {wall:.1f} s (input {rate:,.0f}/s), "
        f"max source lag {max(lags, default=0):.0f} ms, {n_stream:,} alert versions, "
        f"{len(received):,} received by the client",
        file=sys.stderr,
    )
    cause: dict[tuple[str, int], float] = {}
    to_redis: list[float] = []
    to_emit: list[float] = []
    in_flow: list[float] = []
    in_sink: list[float] = []
    per_rule: dict[str, list[float]] = defaultdict(list)
    latest_cause: dict[str, float] = {}
    seen: dict[str, tuple[frozenset[str], int]] = {}
    refreshes = 0
    for sid, fields in entries:
        a = Alert.from_json(fields[b"a"])
        if not a.is_firing:
            continue
        if a.rule in DERIVED:
            members = frozenset((*_ids(a, "alerts"), *_ids(a, "tickets")))
            if seen.get(a.id) == (members, int(a.level)):
                refreshes += 1  # a keep-alive at a watermark tick: no new input caused it
                continue
            seen[a.id] = (members, int(a.level))
        ingest = _cause_ms(a, log, latest_cause)
        latest_cause[a.id] = ingest
        xadd_ms = int(sid.split(b"-")[0])
        cause[(a.id, a.version)] = ingest
        to_redis.append(xadd_ms - ingest)
        to_emit.append(a.emitted_ms - ingest)
        in_sink.append(xadd_ms - a.emitted_ms)
        read = log.read_ms(a.last_ts)
        if read is not None and a.rule not in DERIVED:
            in_flow.append(a.emitted_ms - read)
        per_rule[a.rule].append(xadd_ms - ingest)
    to_client = [now - cause[(i, v)] for now, i, v in received if (i, v) in cause]
    for rule, xs in sorted(per_rule.items()):
        print(
            f"  {rule:22s} n={len(xs):5d} p50 {_quantile(xs, 0.5):8.0f} ms "
            f"p99 {_quantile(xs, 0.99):8.0f} ms max {max(xs):8.0f} ms",
            file=sys.stderr,
        )
    if refreshes:
        print(
            f"  ({refreshes} incident refreshes at watermark ticks, no new member: left out)",
            file=sys.stderr,
        )
    print(
        f"latency: source reads behind ingestion p50 {_r(_quantile(lags, 0.5))} ms, "
        f"p99 {_r(_quantile(lags, 0.99))} ms; read -> emitted_ms (inside the flow) "
        f"p50 {_r(_quantile(in_flow, 0.5))} ms, p99 {_r(_quantile(in_flow, 0.99))} ms; "
        f"emitted_ms -> XADD (the sink) p50 {_r(_quantile(in_sink, 0.5))} ms, "
        f"p99 {_r(_quantile(in_sink, 0.99))} ms",
        file=sys.stderr,
    )
    print(
        f"latency: ingestion -> emitted_ms p50 {_r(_quantile(to_emit, 0.5))} ms, "
        f"p99 {_r(_quantile(to_emit, 0.99))} ms; client matched {len(to_client)} of "
        f"{len(to_redis)} firing versions",
        file=sys.stderr,
    )
    direct = [x for rule, xs in per_rule.items() if rule not in SECOND_STAGE for x in xs]
    print(
        f"latency: first-stage rules only (without {', '.join(sorted(SECOND_STAGE))}): "
        f"p50 {_r(_quantile(direct, 0.5))} ms, p99 {_r(_quantile(direct, 0.99))} ms to Redis",
        file=sys.stderr,
    )
    result = {
        "p50_ms_redis": _r(_quantile(to_redis, 0.5)),
        "p99_ms_redis": _r(_quantile(to_redis, 0.99)),
        "p99_ms_client": _r(_quantile(to_client, 0.99)),
    }
    print(orjson.dumps(result).decode())
    return 0


def _city(args: argparse.Namespace) -> tuple[Any, float, float, int]:
    """The simulation for these options: (sim, records per event second, pace, event seconds)."""
    from simulators import PROFILES

    event_rate = sum(PROFILES["nantong"].records_per_s(args.scale).values())
    speed = args.rate / event_rate
    duration_s = max(60, int(args.seconds * speed) + 1)
    sim = busy_city(args.scale, duration_s, args.seed, anomalies=args.anomalies)
    return sim, event_rate, speed, duration_s


def _run_from_redis(
    args: argparse.Namespace,
    s: Settings,
    url: str,
    reg_dir: Path,
    tmp: Path,
    env: dict[str, str],
    log: ScheduleLog,
) -> dict[str, Any]:
    """``--generate redis``: the producer process XADDs, the flow (here) reads the streams.

    The producer generates ahead and creates every stream (the source finds them at start),
    then waits; it starts once the flow runs, and the flow stops 3 s after it is done.
    """
    from flows.sources import STOP
    from flows.sources.redis_streams import RedisStreamSource

    produce = [
        sys.executable,
        __file__,
        *("--rate", str(args.rate), "--seconds", str(args.seconds), "--scale", str(args.scale)),
        *("--seed", str(args.seed), "--anomalies", str(args.anomalies)),
        *("--partitions", str(args.partitions), "--produce", url, s.keys.prefix, str(tmp)),
    ]
    with _process(produce, env) as producer:
        _wait(
            lambda: (tmp / "producer.ready").exists() or producer.poll() is not None,
            1800,
            "producer",
        )
        if producer.poll() is not None:
            msg = f"latency: the producer exited with {producer.returncode}"
            raise SystemExit(msg)
        raw = TimedSource(RedisStreamSource(url, s.keys), log)
        opts = RunOptions(source="redis", registry_dir=str(reg_dir), run_id="latency")
        flow = build_city_flow(opts, s, url, raw=raw)

        def conduct() -> None:
            time.sleep(2.0)  # the flow is up (it starts in about 1 s)
            (tmp / "producer.go").write_text("go")
            producer.wait()
            time.sleep(3.0)  # the last records' alerts
            STOP.set()

        STOP.clear()
        threading.Thread(target=conduct, daemon=True).start()
        try:
            run_in_process(flow, s)
        finally:
            STOP.clear()
    if producer.returncode != 0:
        msg = f"latency: the producer exited with {producer.returncode}"
        raise SystemExit(msg)
    produced: dict[str, Any] = orjson.loads((tmp / "produced.json").read_bytes())
    log.use_xadds([(ts, ms) for ts, ms in produced.pop("xadds")])
    return produced


def produce_main(args: argparse.Namespace, url: str, prefix: str, directory: str) -> int:
    """The producer process of ``--generate redis`` (see :func:`_run_from_redis`)."""
    from citywatch.keys import Keys
    from simulators.output import kind_of

    sim, _, speed, _ = _city(args)
    keys, parts = Keys(prefix), args.partitions
    names: dict[tuple[str, int], str] = {}
    stamps: list[int] = []
    streams: list[str] = []
    lines: list[bytes] = []
    for b in sim.batches():  # in event-time order
        for ts, key, line in zip(b.ts, b.keys, b.lines, strict=True):
            kind, part = kind_of(line), key % parts
            name = names.get((kind, part))
            if name is None:
                name = names[kind, part] = keys.inbound(kind, part if parts > 1 else None)
            stamps.append(ts)
            streams.append(name)
            lines.append(line)
    if any(a > b for a, b in itertools.pairwise(stamps)):  # pace by event time: in its order
        order = sorted(range(len(stamps)), key=stamps.__getitem__)
        stamps = [stamps[k] for k in order]
        streams = [streams[k] for k in order]
        lines = [lines[k] for k in order]
    client = redis.Redis.from_url(url)
    for name in set(names.values()):  # empty streams, so the flow's source finds them all
        client.xgroup_create(name, "latency", id="$", mkstream=True)
        client.xgroup_destroy(name, "latency")
    d = Path(directory)
    (d / "producer.ready").write_text(str(len(stamps)))
    while not (d / "producer.go").exists():
        time.sleep(0.01)
    xadds: list[tuple[int, int]] = []
    behind: list[float] = []
    t0, ts0, i, n = time.time(), stamps[0], 0, len(stamps)
    while i < n:
        now = time.time()
        j = min(bisect.bisect_right(stamps, ts0 + (now - t0) * 1000 * speed, i), i + 2000)
        if j == i:
            time.sleep(0.001)
            continue
        pipe = client.pipeline(transaction=False)
        for k in range(i, j):
            pipe.xadd(streams[k], {"r": lines[k]})
        ids = pipe.execute()
        xadds.append((stamps[j - 1], int(ids[0].split(b"-")[0])))
        behind.append(now * 1000 - (t0 * 1000 + (stamps[i] - ts0) / speed))
        i = j
    client.close()
    summary = {
        "records": n,
        "streams": len(set(names.values())),
        "behind_p50_ms": _r(_quantile(behind, 0.5)),
        "behind_p99_ms": _r(_quantile(behind, 0.99)),
        "behind_max_ms": _r(max(behind, default=0.0)),
        "xadds": xadds,
    }
    (d / "produced.json").write_bytes(orjson.dumps(summary))
    return 0


def _port_open(port: int) -> bool:
    """The feed answers HTTP (its console page): a bare TCP probe would log a bad handshake."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5):
            return True
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    sys.exit(main())

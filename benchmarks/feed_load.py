"""Load test of the websocket feed: many authenticated clients, a burst of alerts, stalled ones.

Starts ``citywatch serve`` as its own process on a free loopback port (Redis: ``REDIS_URL``, else
127.0.0.1:6379/15 when it answers, else an embedded redis-server), connects ``--clients``
authenticated subscribers spread over ``--procs`` client processes, then:

1. writes ``--alerts`` alerts into ``cw:alerts`` at ``--rate`` per second (as the Redis sink
   does) and measures, per client and alert, the time from XADD (the stream id's millisecond,
   Redis's clock on this host) to receipt;
2. connects ``--stalled`` more clients that authenticate, subscribe and never read, and repeats
   the burst: the stalled ones must all be dropped (close 1013) and the others stay fast.

Last line: ``{"p50_ms", "p99_ms", "p99_ms_with_stalled", "stalled_dropped"}``. Targets:
p99 <= 150 ms, every stalled client dropped, p99 with them <= 2x without. Loopback only;
bounded by ``--timeout`` seconds per phase.

    .venv/bin/python benchmarks/feed_load.py                      # 1000 + 10, 200 alerts
    .venv/bin/python benchmarks/feed_load.py --clients 200 --alerts 100   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from citywatch.alerts import Alert, AlertState, Level, Subject, episode_id, fingerprint
from citywatch.processes import free_port, stop_process
from citywatch.redisconn import EmbeddedRedis

TOKEN = "bench-token"  # noqa: S105 - a loopback benchmark token
ALERT_PREFIX = b'{"type":"alert","sid":"'


@contextlib.contextmanager
def _redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
    except redis.RedisError:
        with EmbeddedRedis() as server:
            assert server.url is not None
            yield server.url
        return
    yield url


# -- client processes ---------------------------------------------------------------------
#
# A thousand websockets-library clients would cost the benchmark's own processes ~20 us per
# message and measure Python's client overhead more than the server. These clients speak just
# enough RFC 6455 over an asyncio Protocol: the upgrade, masked frames out, unmasked frames in,
# and they timestamp an alert the moment its frame is complete.


def _frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class RawClient(asyncio.Protocol):
    """One authenticated subscriber that records XADD-to-receipt latency of alert messages."""

    def __init__(self, expected: int, sink: list[float], stall: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.expected, self.sink, self.stall = expected, sink, stall
        self.buf = bytearray()
        self.upgraded = False
        self.live: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.got = 0
        self.close_code: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self._finish()
                return
            del self.buf[: end + 4]
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(_frame(orjson.dumps({"op": "auth", "token": TOKEN})))
            self.transport.write(_frame(b'{"op":"subscribe","since":null}'))
        self._parse()

    def _parse(self) -> None:
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if len(buf) - pos < head + n:
                break
            start = pos + head
            pos = start + n
            if opcode == 1:
                if buf.startswith(ALERT_PREFIX, start):
                    now = time.time() * 1000.0
                    end = buf.index(b"-", start + len(ALERT_PREFIX))
                    self.sink.append(now - int(buf[start + len(ALERT_PREFIX) : end]))
                    self.got += 1
                    if self.got >= self.expected:
                        self._finish()
                elif buf.startswith(b'{"type":"live"', start) and not self.live.done():
                    self.live.set_result(None)
                    if self.stall and self.transport is not None:
                        self.transport.pause_reading()  # and never read again
            elif opcode == 8:
                self.close_code = int.from_bytes(buf[start : start + 2], "big") if n >= 2 else None
                self._finish()
            elif opcode == 9 and self.transport is not None:
                self.transport.write(_frame(bytes(buf[start:pos]), opcode=10))
        del buf[:pos]

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.live.done():
            self.live.set_result(None)
        self._finish()


async def _open(port: int, expected: int, sink: list[float], stall: bool = False) -> RawClient:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if stall:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    _, proto = await loop.create_connection(lambda: RawClient(expected, sink, stall), sock=sock)
    return proto


def _worker(port: int, n: int, expected: int, timeout: float, pipe: Connection) -> None:
    async def main() -> None:
        got: list[float] = []
        clients: list[RawClient] = []
        for i in range(n):
            clients.append(await _open(port, expected, got))
            if i % 50 == 49:
                await asyncio.sleep(0.02)  # do not overflow the accept queue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.live for c in clients)), timeout)
        pipe.send(("ready", sum(c.live.done() and c.upgraded for c in clients)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), timeout)
        closed = sum(c.got < expected for c in clients)
        for c in clients:
            if c.transport is not None:
                c.transport.close()
        pipe.send(("done", got, closed))

    asyncio.run(main())


# -- the burst ----------------------------------------------------------------------------


def _alert(i: int, pad: int) -> bytes:
    subject = Subject("station", f"B{i}")
    fp = fingerprint("air.spike", subject)
    ts = 1_767_225_600_000 + i * 1000
    a = Alert(
        id=episode_id(fp, ts),
        fingerprint=fp,
        rule="air.spike",
        level=Level.ORANGE,
        state=AlertState.FIRING,
        subject=subject,
        first_ts=ts,
        last_ts=ts,
        lat=32.0,
        lon=120.9,
        district="崇川区",
        title="PM2.5 突增",
        model="bench@1",
        evidence={"pm25": 180.0, "note": "x" * pad},
    )
    return a.to_json()


async def _burst(r: aioredis.Redis, stream: str, n: int, rate: float, pad: int) -> None:
    start = time.monotonic()
    for i in range(n):
        await r.xadd(stream, {"a": _alert(i, pad)}, maxlen=100_000, approximate=True)
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), for the diagnostics on stderr."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            parts = fh.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        out: dict[str, Any] = orjson.loads(resp.read())
        return out


async def _phase(
    args: argparse.Namespace, url: str, prefix: str, port: int, stalled: int, server_pid: int
) -> tuple[list[float], int, int]:
    ctx = mp.get_context("spawn")
    per = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
    pipes, procs = [], []
    for n in per:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(port, n, args.alerts, args.timeout, child))
        p.start()
        pipes.append(parent)
        procs.append(p)
    ready = 0
    for pipe in pipes:
        _, count = await asyncio.to_thread(pipe.recv)
        ready += count
    if ready < args.clients:
        print(f"only {ready}/{args.clients} clients subscribed", file=sys.stderr)
    stuck = [await _open(port, 10**9, [], stall=True) for _ in range(stalled)]
    await asyncio.gather(*(c.live for c in stuck))
    dropped_before = _health(port)["dropped_slow"]
    r = aioredis.Redis.from_url(url)
    await asyncio.sleep(0.5)
    cpu0, clients0, t0 = _cpu_s(server_pid), [_cpu_s(p.pid or 0) for p in procs], time.monotonic()
    await _burst(r, f"{prefix}alerts", args.alerts, args.rate, args.pad)
    await r.aclose()
    lat: list[float] = []
    early = 0
    for pipe, p, c0 in zip(pipes, procs, clients0, strict=True):
        cpu_client = _cpu_s(p.pid or 0) - c0
        _, got, closed = await asyncio.to_thread(pipe.recv)
        lat.extend(got)
        early += closed
        print(f"client process: {cpu_client:.2f} CPU s", file=sys.stderr)
    print(
        f"phase (stalled={stalled}): {time.monotonic() - t0:.1f} s wall, server "
        f"{_cpu_s(server_pid) - cpu0:.2f} CPU s, {len(lat)} deliveries, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    for p in procs:
        p.join(10)
    health = _health(port)
    dropped = health["dropped_slow"] - dropped_before
    print(
        f"server gc so far: {health['gc_runs']} runs, {health['gc_pause_ms_total']:.0f} ms, "
        f"longest {health['gc_pause_ms_max']:.1f} ms",
        file=sys.stderr,
    )
    seen_closed = 0
    for c in stuck:  # read again: the server must have closed it (1013, or aborted)
        if c.transport is not None:
            c.transport.resume_reading()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(c.done), 10)
        seen_closed += c.done.done()
    if stalled and seen_closed != dropped:
        print(
            f"stalled: server dropped {dropped}, clients saw {seen_closed} closed", file=sys.stderr
        )
    missing = args.clients * args.alerts - len(lat)
    if missing or early:
        print(f"{missing} deliveries missing, {early} clients closed early", file=sys.stderr)
    return lat, min(dropped, seen_closed), missing


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with _redis_url() as url:
        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": url,
            "CW_PREFIX": prefix,
            "CW_FEED_TOKENS": TOKEN,
            "CW_FEED_QUEUE": str(args.queue),
            "CW_FEED_HEARTBEAT_S": "30",
        }
        prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        server = subprocess.Popen(
            [sys.executable, *prof, "-m", "citywatch", "serve", "--port", str(port)], env=env
        )
        try:
            t0 = time.monotonic()
            while True:
                try:
                    _health(port)
                    break
                except OSError:
                    if time.monotonic() - t0 > 20 or server.poll() is not None:
                        raise
                    await asyncio.sleep(0.1)
            base, _, _ = await _phase(args, url, prefix, port, 0, server.pid)
            with_stalled, dropped, _ = await _phase(
                args, url, prefix, port, args.stalled, server.pid
            )
        finally:
            stop_process(server, wait_s=15)
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
    return {
        "p50_ms": round(_percentile(base, 50), 1),
        "p99_ms": round(_percentile(base, 99), 1),
        "p99_ms_with_stalled": round(_percentile(with_stalled, 99), 1),
        "stalled_dropped": dropped,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--stalled", type=int, default=10)
    ap.add_argument("--alerts", type=int, default=200, help="alerts per burst")
    ap.add_argument("--rate", type=float, default=50.0, help="alerts per second in a burst")
    ap.add_argument("--pad", type=int, default=1000, help="bytes of evidence padding per alert")
    ap.add_argument("--queue", type=int, default=64, help="per-client queue (CW_FEED_QUEUE)")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--profile", help="write a cProfile of the server process to this file")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per phase, at most")
    args = ap.parse_args()
    print(orjson.dumps(asyncio.run(main_async(args))).decode())


if __name__ == "__main__":
    main()

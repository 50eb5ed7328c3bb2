"""The chaos suite: break the running city flow in every way we know and check nothing is lost.

::

    .venv/bin/python benchmarks/chaos.py                       # all scenarios, seed 3
    .venv/bin/python benchmarks/chaos.py --seeds 3-4 --kills 20 --pause-s 30
    .venv/bin/python benchmarks/chaos.py --fast --only kill,redis-empty,pause   # what the tests run

A **reference** run of a labelled simulator scenario (``demo``, the seed, ``--scale``; two
source partitions; ``citywatch run --speed max``) goes uninterrupted into a private Redis.
Then each scenario runs the same scenario through the real command line while something
breaks, into a Redis of its own or under a key prefix of its own:

``kill``
    kill -9 the flow at ``--kills`` seeded random points, restarting it each time from its
    recovery directory (``--recovery``), then once more to the end.
``cluster``
    two processes on two hosts: network namespaces made here (a bridge 10.77.N.254 with
    the Redis, 10.77.N.1 and 10.77.N.2 for the workers, ``python -m flows.worker``); kill -9
    one of them at a seeded point; the other stops (a timely cluster is not rejoined);
    start both again from recovery. Needs root and ``ip netns``; skipped with the reason
    otherwise.
``redis-data`` / ``redis-empty``
    kill -9 the flow's private redis-server mid-run and restart it on its port two seconds
    later, with its append-only file (``appendfsync always``) or without any data.
``pause``
    SIGSTOP the flow's redis-server for ``--pause-s`` seconds, then SIGCONT.
``disk-full``
    the recovery directory on a small tmpfs mounted here: the run must stop with one line
    (``recovery: no space left ...``) or keep going; then, remounted larger, the same
    command resumes. Needs root and ``mount``; skipped otherwise.
``duplicates``
    the scenario as files (``citywatch simulate``), delivered with duplicated records (5%
    again at once, 2% again up to 50 records later) and records of different entities
    reordered within blocks of 40 (each entity's own order kept, as a partition keeps it).

What is compared (docs/operations.md, "Guarantees", says why):

- **lost alerts**: alerts of the reference whose final state in Redis (version, state, level,
  the alert JSON but its wall-clock ``emitted_ms``) is missing or different; alerts Redis has
  that the reference has not are counted as extra; both must be 0.
- **duplicate versions**: ``(id, version)`` pairs that appear more than once in ``cw:alerts``.
- **history**: each alert's versions in ``cw:alerts``, in order, with their JSON, equal the
  reference's. After ``redis-empty`` (Redis lost everything mid-run) each alert's history
  must be a non-empty suffix of the reference's: the versions written before the loss are
  gone, the sink re-publishes the newest one.
- **records**: ``records`` in ``cw:counts`` equals the reference's (plus the duplicates added,
  for ``duplicates``); not after ``redis-empty`` (the counters went with the data).
- **audit**: an officer thread appends to ``cw:audit`` every 50 ms during each scenario; every
  entry Redis acknowledged must be there once, in order (after ``redis-empty``: those
  acknowledged after the restart).
- **orphans**: processes started by the suite (found by a marker in their environment, via
  ``/proc``) still alive after the scenario: none may be left behind.

The last line is one JSON object: ``{"scenarios": N, "lost_alerts": 0, "duplicate_versions": 0,
"orphans": 0, "failed": []}``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from citywatch.cli_options import parse_seeds
from citywatch.keys import Keys
from citywatch.redisconn import EmbeddedRedis

SCENARIOS = ("kill", "cluster", "redis-data", "redis-empty", "pause", "disk-full", "duplicates")
MARK = "CW_CHAOS"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- what Redis holds, and how it compares -----------------------------------------------------


def _body(raw: bytes) -> bytes:
    """The alert JSON without its wall-clock stamp (``emitted_ms``), keys sorted."""
    d = orjson.loads(raw)
    d.pop("emitted_ms", None)
    return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)


@dataclass
class State:
    """What a run left in Redis under one prefix."""

    final: dict[str, tuple[int, str, str, bytes]]
    history: dict[str, list[tuple[int, bytes]]]
    pairs: list[tuple[str, int]]
    records: int
    audit: list[int]

    @classmethod
    def capture(cls, client: redis.Redis, keys: Keys) -> State:
        final = {}
        for k in client.scan_iter(match=keys.alert("*"), count=1000):
            h: Any = client.hgetall(k)
            a = orjson.loads(h[b"a"])
            final[a["id"]] = (int(h[b"version"]), h[b"state"].decode(), h[b"level"].decode(),
                              _body(h[b"a"]))  # fmt: skip
        history: dict[str, list[tuple[int, bytes]]] = {}
        pairs = []
        entries: Any = client.xrange(keys.alerts)
        for _, f in entries:
            a = orjson.loads(f[b"a"])
            history.setdefault(a["id"], []).append((a["version"], _body(f[b"a"])))
            pairs.append((a["id"], a["version"]))
        counts: Any = client.hgetall(keys.counts)
        audit: Any = client.xrange(keys.audit)
        return cls(
            final,
            history,
            pairs,
            int(counts.get(b"records", 0)),
            [int(orjson.loads(f[b"e"])["n"]) for _, f in audit],
        )


@dataclass
class Outcome:
    """One scenario's findings; ``failed`` when any is wrong."""

    name: str
    lost: int = 0
    extra: int = 0
    duplicates: int = 0
    history: int = 0
    records: str = "exact"
    audit_lost: int = 0
    audit_order: bool = True
    orphans: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        if self.skipped:
            return False
        bad_records = self.records not in ("exact", "not compared")
        return bool(
            self.error
            or self.lost
            or self.extra
            or self.duplicates
            or self.history
            or bad_records
            or self.audit_lost
            or not self.audit_order
            or self.orphans
        )

    def line(self) -> str:
        if self.skipped:
            return f"chaos: {self.name:<12} skipped: {self.skipped}"
        verdict = "FAILED" if self.failed else "ok"
        text = (
            f"chaos: {self.name:<12} {verdict:<6} lost {self.lost} extra {self.extra} "
            f"dup {self.duplicates} history {self.history} records {self.records} "
            f"audit {'ok' if not self.audit_lost and self.audit_order else 'BROKEN'} "
            f"orphans {self.orphans} ({self.seconds:.1f} s)"
        )
        if self.notes:
            text += "; " + "; ".join(self.notes)
        if self.error:
            text += f"; error: {self.error}"
        return text


def compare(
    out: Outcome, ref: State, got: State, *, suffix: bool = False, records: int | None = None
) -> None:
    """Fill ``out`` from ``got`` against ``ref`` (see the module docstring)."""
    out.lost = sum(1 for i, v in ref.final.items() if got.final.get(i) != v)
    out.extra = sum(1 for i in got.final if i not in ref.final)
    out.duplicates = sum(n - 1 for n in Counter(got.pairs).values() if n > 1)
    bad = 0
    for i, want in ref.history.items():
        have = got.history.get(i, [])
        if suffix:
            ok = bool(have) and len(have) <= len(want) and want[len(want) - len(have) :] == have
        else:
            ok = have == want
        bad += not ok
    out.history = bad + sum(1 for i in got.history if i not in ref.history)
    if records is None:
        out.records = "not compared"
    elif got.records != records:
        out.records = f"{got.records:,} != {records:,}"


# -- processes ---------------------------------------------------------------------------------


def marked_pids(marker: str, exclude: set[int]) -> list[int]:
    """Live processes whose environment carries ``CW_CHAOS=<marker>`` (from /proc)."""
    want = f"{MARK}={marker}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in exclude:
            continue
        try:
            env = (d / "environ").read_bytes()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if want in env.split(b"\0") and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(int(d.name))
    return found


class Officer(threading.Thread):
    """Appends numbered audit entries every 50 ms, remembering which Redis acknowledged."""

    def __init__(self, url: str, keys: Keys) -> None:
        super().__init__(daemon=True, name="officer")
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.key = keys.audit
        self.acked: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            with contextlib.suppress(redis.RedisError):
                self.client.xadd(self.key, {"e": orjson.dumps({"n": n, "action": "sign"})})
                self.acked.append((n, time.monotonic()))
            n += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(5)
        self.client.close()

    def check(self, out: Outcome, present: list[int], since: float = 0.0) -> None:
        out.audit_order = all(a < b for a, b in itertools.pairwise(present))
        have = set(present)
        out.audit_lost = sum(1 for n, t in self.acked if t >= since and n not in have)


# -- the suite ---------------------------------------------------------------------------------


class Suite:
    def __init__(self, args: argparse.Namespace, seed: int, work: Path) -> None:
        self.args = args
        self.seed = seed
        self.work = work
        self.rng = random.Random(seed)
        self.marker = uuid.uuid4().hex[:12]
        os.environ[MARK] = self.marker  # every process we start carries it
        self.keep: set[int] = {os.getpid()}
        self.main = EmbeddedRedis()
        #: The scenario's own redis-servers (redis-server rewrites its process title over its
        #: environment, so the /proc scan cannot see them): each must be stopped by the end.
        self.servers: list[EmbeddedRedis] = []
        self.ref: State | None = None
        self.ref_s = 0.0
        self.ref_recovery_bytes = 0

    # processes -----------------------------------------------------------------------------

    def redis(self, **kwargs: Any) -> EmbeddedRedis:
        """A private redis-server for one scenario (checked for at its end)."""
        server = EmbeddedRedis(**kwargs)
        self.servers.append(server)
        return server

    # flows ---------------------------------------------------------------------------------

    def run_argv(self, recovery: Path | None) -> list[str]:
        a = self.args
        argv = [sys.executable, "-m", "citywatch", "run", "--scenario", a.scenario]
        argv += ["--seed", str(self.seed), "--scale", str(a.scale), "--speed", "max"]
        argv += ["--partitions", "2"]
        if recovery is not None:
            argv += ["--recovery", str(recovery)]
        return argv

    def env(self, url: str, prefix: str) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": url,
            "CW_PREFIX": prefix,
            "CW_EPOCH_S": str(self.args.epoch_s),
            "CW_REDIS_RETRIES": "20",
            "PYTHONUNBUFFERED": "1",
        }

    def start(
        self, name: str, url: str, prefix: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        logf = (self.work / f"{name}.log").open("ab")
        return subprocess.Popen(
            argv,
            env=env or self.env(url, prefix),
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our kill -9 hits the flow, not us
        )

    def finish(self, proc: subprocess.Popen[bytes], timeout: float) -> int:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            msg = f"the flow did not finish within {timeout:.0f} s"
            raise RuntimeError(msg) from None

    def complete(self, name: str, url: str, prefix: str, argv: list[str], what: str) -> None:
        """Run ``argv`` to its end; a RuntimeError naming ``what`` if it fails."""
        code = self.finish(self.start(name, url, prefix, argv), self.limit_s)
        if code != 0:
            msg = f"{what} failed ({code}): {self.tail(name)}"
            raise RuntimeError(msg)

    def tail(self, name: str, n: int = 3) -> str:
        path = self.work / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return " | ".join(ln.strip() for ln in lines[-n:])

    @property
    def limit_s(self) -> float:
        return max(120.0, 20 * self.ref_s)

    # reference -----------------------------------------------------------------------------

    def reference(self) -> None:
        url = self.main.start()
        assert self.main.pid is not None
        self.keep.add(self.main.pid)
        rec = self.work / "ref-recovery"
        t0 = time.monotonic()
        proc = self.start("reference", url, "ref:", self.run_argv(rec))
        code = self.finish(proc, 900)
        self.ref_s = time.monotonic() - t0
        if code != 0:
            msg = f"the reference run failed ({code}): {self.tail('reference')}"
            raise RuntimeError(msg)
        client = redis.Redis.from_url(url)
        self.ref = State.capture(client, Keys("ref:"))
        client.close()
        self.ref_recovery_bytes = sum(f.stat().st_size for f in rec.iterdir() if f.is_file())
        versions = len(self.ref.pairs)
        log(
            f"chaos: reference {self.args.scenario} seed {self.seed} scale {self.args.scale}: "
            f"{self.ref.records:,} records, {len(self.ref.final)} alerts, {versions} versions "
            f"in {self.ref_s:.1f} s"
        )
        if not self.ref.final:
            msg = "the reference raised no alert: nothing to compare"
            raise RuntimeError(msg)

    # scenarios ------------------------------------------------------------------------------

    def scenario(self, name: str) -> Outcome:
        out = Outcome(name)
        t0 = time.monotonic()
        try:
            getattr(self, "s_" + name.replace("-", "_"))(out)
        except Exception as exc:  # a scenario that breaks is a failed scenario, not a crash
            out.error = f"{type(exc).__name__}: {exc}"
        out.seconds = time.monotonic() - t0
        out.orphans += self.reap()
        return out

    def reap(self, wait_s: float = 10.0) -> int:
        """Processes of ours still alive (after ``wait_s``): count them, then stop them."""
        left_servers = 0
        for server in self.servers:
            if server.running():
                left_servers += 1
                if server.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(server.pid, signal.SIGCONT)
            server.stop()
        self.servers.clear()
        deadline = time.monotonic() + wait_s
        left = marked_pids(self.marker, self.keep)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = marked_pids(self.marker, self.keep)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(left) + left_servers

    def _check(
        self,
        out: Outcome,
        url: str,
        prefix: str,
        officer: Officer,
        *,
        suffix: bool = False,
        added: int | None = 0,
        audit_since: float = 0.0,
    ) -> None:
        """Compare what ``prefix`` holds with the reference; ``added``: records delivered
        beyond the reference's (None: the counts are not compared)."""
        assert self.ref is not None
        client = redis.Redis.from_url(url)
        got = State.capture(client, Keys(prefix))
        client.close()
        records = None if added is None else self.ref.records + added
        compare(out, self.ref, got, suffix=suffix, records=records)
        officer.check(out, got.audit, audit_since)

    def s_kill(self, out: Outcome) -> None:
        url, prefix, rec = self.main.start_url, "kill:", self.work / "kill-recovery"
        officer = Officer(url, Keys(prefix))
        officer.start()
        landed = 0
        try:
            for _ in range(self.args.kills):
                proc = self.start("kill", url, prefix, self.run_argv(rec))
                delay = self.rng.uniform(0.3, max(0.6, self.ref_s))
                try:
                    proc.wait(delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    landed += 1
                code = proc.wait()
                if code not in (0, -signal.SIGKILL):
                    msg = f"a run exited with {code}: {self.tail('kill')}"
                    raise RuntimeError(msg)
            assert self.ref is not None
            client = redis.Redis.from_url(url)
            before = State.capture(client, Keys(prefix))
            client.close()
            done = sum(1 for i, v in self.ref.final.items() if before.final.get(i) == v)
            self.complete("kill", url, prefix, self.run_argv(rec), "the last run")
        finally:
            officer.finish()
        out.notes.append(
            f"{landed} of {self.args.kills} kills landed mid-run; {done} of "
            f"{len(self.ref.final)} alerts final before the last run"
        )
        self._check(out, url, prefix, officer)

    def _broken_redis(
        self, out: Outcome, name: str, server: EmbeddedRedis, fault: Callable[[], None]
    ) -> tuple[Officer, float]:
        """Run the flow into ``server``; once its first alert is there, ``fault()``. Returns
        the officer and when the fault ended (monotonic)."""
        url = server.start()
        prefix = f"{name}:"
        officer = Officer(url, Keys(prefix))
        officer.start()
        client = redis.Redis.from_url(url, socket_timeout=1)
        try:
            proc = self.start(name, url, prefix, self.run_argv(self.work / f"{name}-recovery"))
            deadline = time.monotonic() + self.limit_s
            while not client.xlen(Keys(prefix).alerts):
                if proc.poll() is not None or time.monotonic() > deadline:
                    msg = f"no alert reached Redis while the flow ran: {self.tail(name)}"
                    raise RuntimeError(msg)
                time.sleep(0.02)
            client.close()
            fault()
            ended = time.monotonic()
            if proc.poll() is not None:
                out.notes.append("the run had ended before the fault was over")
            code = self.finish(proc, self.limit_s + self.args.pause_s)
            if code != 0:
                msg = f"the run failed ({code}): {self.tail(name)}"
                raise RuntimeError(msg)
        finally:
            officer.finish()
        return officer, ended

    def _restart(self, server: EmbeddedRedis) -> None:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        server.stop()  # reaps it
        time.sleep(2.0)
        server.start()

    def s_redis_data(self, out: Outcome) -> None:
        data = self.work / "redis-data"
        server = self.redis(data_dir=data, args=("--appendfsync", "always"))
        try:
            officer, _ = self._broken_redis(
                out, "redis-data", server, lambda: self._restart(server)
            )
            self._check(out, server.start_url, "redis-data:", officer)
        finally:
            server.stop()

    def s_redis_empty(self, out: Outcome) -> None:
        server = self.redis()
        try:
            officer, back = self._broken_redis(
                out, "redis-empty", server, lambda: self._restart(server)
            )
            self._check(
                out, server.start_url, "redis-empty:", officer,
                suffix=True, added=None, audit_since=back,
            )  # fmt: skip
        finally:
            server.stop()

    def s_pause(self, out: Outcome) -> None:
        server = self.redis()

        def pause() -> None:
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            time.sleep(self.args.pause_s)
            os.kill(server.pid, signal.SIGCONT)

        try:
            officer, _ = self._broken_redis(out, "pause", server, pause)
            self._check(out, server.start_url, "pause:", officer)
            out.notes.append(f"paused {self.args.pause_s:.0f} s")
        finally:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(server.pid or 0, signal.SIGCONT)
            server.stop()

    def s_duplicates(self, out: Outcome) -> None:
        a = self.args
        sim = self.work / "sim"
        subprocess.run(
            [sys.executable, "-m", "citywatch", "simulate", "--scenario", a.scenario,
             "--seed", str(self.seed), "--scale", str(a.scale), "--partitions", "2",
             "--out", str(sim)],
            check=True, capture_output=True,
        )  # fmt: skip
        messy = self.work / "messy"
        messy.mkdir(exist_ok=True)
        added = 0
        for part in sorted(sim.glob("part-*.jsonl")):
            lines, n = redeliver(part.read_bytes().splitlines(keepends=True), self.rng)
            (messy / part.name).write_bytes(b"".join(lines))
            added += n
        url, prefix = self.main.start_url, "dup:"
        officer = Officer(url, Keys(prefix))
        officer.start()
        try:
            argv = [sys.executable, "-m", "citywatch", "run", "--source", "files", "--files",
                    *map(str, sorted(messy.glob("part-*.jsonl"))), "--registry",
                    str(sim / "registry"), "--speed", "max"]  # fmt: skip
            self.complete("duplicates", url, prefix, argv, "the run")
        finally:
            officer.finish()
        self._check(out, url, prefix, officer, added=added)
        out.notes.append(f"{added:,} records delivered twice, blocks of 40 reordered")

    def s_disk_full(self, out: Outcome) -> None:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            out.skipped = "needs root and mount for a tmpfs"
            return
        mnt = self.work / "tmpfs"
        mnt.mkdir(exist_ok=True)
        # Room to set up the recovery database (about 100 KiB), not for the whole run.
        size_k = max(160, self.ref_recovery_bytes // 2 // 4096 * 4)
        try:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "cwchaos", str(mnt)],
                check=True, capture_output=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            out.skipped = f"cannot mount a tmpfs ({exc.stderr.decode().strip()})"
            return
        try:
            url, prefix, rec = self.main.start_url, "disk:", mnt / "recovery"
            officer = Officer(url, Keys(prefix))
            officer.start()
            try:
                proc = self.start("disk-full", url, prefix, self.run_argv(rec))
                code = self.finish(proc, self.limit_s)
                last = self.tail("disk-full", 1)
                if code == 0:
                    out.notes.append(f"{size_k} KiB were enough: the disk never filled")
                elif "no space left" not in last.lower() or "Traceback" in self.tail(
                    "disk-full", 200
                ):
                    msg = f"the full disk did not end in one clear line ({code}): {last}"
                    raise RuntimeError(msg)
                else:
                    out.notes.append(f"stopped with {last.split(': error: ', 1)[-1][:60]}...")
                subprocess.run(
                    ["mount", "-o", "remount,size=256m", str(mnt)], check=True, capture_output=True
                )
                self.complete("disk-full", url, prefix, self.run_argv(rec), "the run with space")
            finally:
                officer.finish()
            self._check(out, url, prefix, officer)
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)

    def s_cluster(self, out: Outcome) -> None:
        why = netns_problem()
        if why:
            out.skipped = why
            return
        from flows.run import RunOptions, prepare_recovery

        with two_hosts() as net:
            server = self.redis(bind=net.bridge_ip)
            try:
                url = server.start()
                prefix, rec = "cluster:", self.work / "cluster-recovery"
                opts = prepare_recovery(
                    RunOptions(
                        scenario=self.args.scenario, seed=self.seed, scale=self.args.scale,
                        speed=None, processes=2, partitions=2, recovery_dir=str(rec),
                    )
                )  # fmt: skip
                base = 20000 + self.rng.randrange(20000)
                addresses = ";".join(f"{h}:{base}" for h in net.hosts)
                env = self.env(url, prefix)

                def start_both() -> list[subprocess.Popen[bytes]]:
                    procs = []
                    for i, ns in enumerate(net.names):
                        argv = ["ip", "netns", "exec", ns, sys.executable, "-m", "flows.worker"]
                        argv += ["--options", opts.to_json().decode(), "--process-id", str(i)]
                        argv += ["--addresses", addresses]
                        procs.append(self.start("cluster", url, prefix, argv, env))
                    return procs

                officer = Officer(url, Keys(prefix))
                officer.start()
                try:
                    procs = start_both()
                    victim = self.rng.randrange(2)
                    delay = self.rng.uniform(1.0, max(1.5, self.ref_s))
                    try:
                        procs[victim].wait(delay)
                        out.notes.append("the run ended before the kill")
                    except subprocess.TimeoutExpired:
                        procs[victim].send_signal(signal.SIGKILL)
                        other = procs[1 - victim]
                        try:
                            code = other.wait(30)
                            out.notes.append(f"killed process {victim}; the other stopped ({code})")
                        except subprocess.TimeoutExpired:
                            other.kill()
                            out.notes.append(f"killed process {victim}; the other hung: killed")
                    for p in procs:
                        p.wait()
                    procs = start_both()
                    codes = [self.finish(p, self.limit_s) for p in procs]
                    if any(codes):
                        msg = f"the restarted cluster failed {codes}: {self.tail('cluster')}"
                        raise RuntimeError(msg)
                finally:
                    officer.finish()
                self._check(out, url, prefix, officer)
            finally:
                server.stop()


def redeliver(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], int]:
    """``lines`` as a sloppy producer delivers them: 5% again at once, 2% again up to 50
    lines later, and blocks of 40 reordered across entities (each entity's order kept)."""
    from flows.sources.iterable import peek

    out: list[bytes] = []
    added = 0
    for i, line in enumerate(lines):
        out.append(line)
        if rng.random() < 0.05:
            out.append(line)
            added += 1
        if i > 50 and rng.random() < 0.02:
            out.append(lines[i - rng.randint(1, 50)])
            added += 1
    mixed: list[bytes] = []
    for i in range(0, len(out), 40):
        block = out[i : i + 40]
        keys = [peek(b.strip())[0] for b in block]
        queues: dict[str | None, list[bytes]] = {}
        for k, b in zip(keys, block, strict=True):
            queues.setdefault(k, []).append(b)
        order = keys[:]
        rng.shuffle(order)
        taken = {k: iter(q) for k, q in queues.items()}
        mixed.extend(next(taken[k]) for k in order)
    return mixed, added


# -- two hosts ---------------------------------------------------------------------------------


def _ip(*argv: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, "ip", *argv] if ns else ["ip", *argv]
    subprocess.run(cmd, check=True, capture_output=True)


def netns_problem() -> str | None:
    """Why two network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = f"cwchaosprobe{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if done.returncode != 0:
        return f"ip netns add is not permitted here ({done.stderr.decode().strip()})"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@dataclass
class Hosts:
    """Two network namespaces on a bridge, named after this process (concurrent suites on
    one machine must not meet): ``cwc<pid>a``/``b`` at 10.77.N.1/.2, the bridge at .254."""

    names: tuple[str, str]
    bridge: str
    bridge_ip: str
    hosts: tuple[str, str]

    @classmethod
    def mine(cls) -> Hosts:
        tag = f"cwc{os.getpid()}"
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
        start = os.getpid() % 250
        net = next(
            f"10.77.{n}"
            for n in [(start + i) % 250 + 1 for i in range(250)]
            if f"10.77.{n}." not in used
        )
        return cls((f"{tag}a", f"{tag}b"), f"{tag}br", f"{net}.254", (f"{net}.1", f"{net}.2"))

    def teardown(self) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def _forsaken() -> None:
    """Remove the namespaces and bridges of suites that were killed (their pid is gone)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {w.split("@")[0].rstrip(":") for w in (listed + links).split() if w.startswith("cwc")}
    for name in names:
        pid = re.match(r"cwc(\d+)", name)
        if pid and not Path(f"/proc/{pid.group(1)}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


@contextlib.contextmanager
def two_hosts() -> Iterator[Hosts]:
    """This suite's two hosts (see :class:`Hosts`), removed afterwards."""
    _forsaken()
    net = Hosts.mine()
    try:
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.bridge_ip}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        for ns, host in zip(net.names, net.hosts, strict=True):
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
            inner, outer = f"{ns}0", f"{ns}1"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", net.bridge)
            _ip("link", "set", outer, "up")
            _ip("addr", "add", f"{host}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
        yield net
    finally:
        net.teardown()


# -- main --------------------------------------------------------------------------------------


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--seeds", type=parse_seeds, default=[3], help="e.g. 3, 3-5 or 3,7")
    ap.add_argument("--scale", type=float, default=0.01, help="simulator scale (default 0.01)")
    ap.add_argument("--scenario", default="demo", help="labelled simulator scenario (demo)")
    ap.add_argument("--kills", type=int, default=20, help="kill -9 points for 'kill' (20)")
    ap.add_argument("--pause-s", type=float, default=30.0, help="SIGSTOP length for 'pause' (30)")
    ap.add_argument("--epoch-s", type=float, default=0.2, help="recovery snapshot interval")
    ap.add_argument("--only", help=f"comma-separated scenarios of {','.join(SCENARIOS)}")
    ap.add_argument("--fast", action="store_true", help="3 kills and a 3 s pause (the tests)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args(argv)
    if args.fast:
        args.kills, args.pause_s = min(args.kills, 3), min(args.pause_s, 3.0)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"--only: unknown scenario(s) {', '.join(unknown)} (of {', '.join(SCENARIOS)})")
    for sig in (signal.SIGINT, signal.SIGTERM):  # even where a shell started us ignoring SIGINT
        signal.signal(sig, _interrupted)
    outcomes: list[Outcome] = []
    for seed in args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"cwchaos-{seed}-"))
        suite = Suite(args, seed, work)
        try:
            suite.reference()
            for name in names:
                out = suite.scenario(name)
                if len(args.seeds) > 1:
                    out.name = f"{name}@{seed}"
                log(out.line())
                outcomes.append(out)
        finally:
            suite.main.stop()
            suite.reap(wait_s=2)
            if args.keep:
                log(f"chaos: logs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    ran = [o for o in outcomes if not o.skipped]
    print(
        orjson.dumps(
            {
                "scenarios": len(ran),
                "lost_alerts": sum(o.lost + o.extra for o in ran),
                "duplicate_versions": sum(o.duplicates for o in ran),
                "orphans": sum(o.orphans for o in ran),
                "failed": [o.name for o in ran if o.failed],
            }
        ).decode(),
        flush=True,
    )
    return 1 if any(o.failed for o in ran) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("chaos: interrupted; every process and namespace it made is gone")
        sys.exit(130)

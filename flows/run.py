"""Running the city flow: options -> source, models, sink -> bytewax, in one or N processes.

:func:`run_city` is what ``citywatch run`` and ``citywatch demo`` call. With ``processes=1`` the
flow runs in this process; with N it starts N worker processes on this host (``python -m
flows.worker``), each one bytewax process of one cluster, each reading its own share of the
source partitions. The multi-host form runs the same worker command on every host with the
full address list (see ``docs/operations.md``).

Recovery: with ``recovery_dir`` the flow snapshots its state every epoch into bytewax recovery
partitions there, and a rerun with the same directory and options resumes after a crash. The
directory also keeps the run id (which scopes the sink's offset bookkeeping) and the flow's
shape, checked on resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from bytewax.dataflow import Dataflow

from citywatch.errors import CitywatchError, ConfigError, DependencyError
from citywatch.partitioning import partition_key as partition_key_of
from citywatch.processes import wait_listening
from citywatch.redisconn import RedisWatch
from citywatch.registry import Registry, region_for
from citywatch.settings import Settings
from flows.city import FlowConfig, build_flow
from flows.panics import contained
from flows.registry import Registration, build_models
from flows.reports import daily_reports
from flows.sources import DecodingSource, RawSource, stop_on_signals
from flows.sources.iterable import KeyOf, peek
from flows.sources.silences import SilenceSource
from models.alert_engine import AlertEngine, EngineSnapshot
from models.incidents import IncidentCorrelator
from sinks.redis_sink import RedisSink

__all__ = ["SOURCES", "RunOptions", "build_city_flow", "reporting_intervals", "run_city"]

log = logging.getLogger(__name__)

SOURCES = ("sim", "files", "redis", "mqtt")
_STATE_FILE = "citywatch-run.json"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that defines one run (JSON-serializable: worker processes receive it)."""

    source: str = "sim"
    scenario: str = "demo"
    seed: int = 1
    scale: float | None = None
    #: Simulator: fraction of malformed records mixed in (None: the scenario's).
    dirty: float | None = None
    #: Simulator start (epoch ms). Live runs default to now (to the second): event time is
    #: then wall time.
    start_ms: int | None = None
    #: Pacing factor for the simulator (1.0 = live); None = as fast as possible.
    speed: float | None = 1.0
    #: Live simulator: start the simulated time this many seconds before now and replay them
    #: at once, then go on at ``speed`` (the demo shows alerts straight away).
    preroll_s: float = 0.0
    paths: tuple[str, ...] = ()
    registry_dir: str | None = None
    #: Redis input: stream kinds to read (``cw:in:{kind}`` and ``cw:in:{kind}:*``).
    kinds: tuple[str, ...] = ()
    #: Stop a Redis/MQTT source after this many idle seconds (None: run forever).
    idle_stop_s: float | None = None
    domain: str | None = None
    processes: int = 1
    #: Source partitions (simulator); default one per process.
    partitions: int | None = None
    recovery_dir: str | None = None
    first_port: int = 0
    run_id: str = ""
    flow: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> RunOptions:
        d = orjson.loads(data)
        d["paths"] = tuple(d.get("paths", ()))
        d["kinds"] = tuple(d.get("kinds", ()))
        return cls(**d)

    def flow_config(self) -> FlowConfig:
        return FlowConfig(durable=self.recovery_dir is not None, **self.flow)


def load_registry(opts: RunOptions, settings: Settings) -> tuple[Registry, Any]:
    """The reference data (and the simulation, for the simulator source)."""
    if opts.source == "sim":
        from flows.sources.sim import SimSpec

        extra: dict[str, Any] = {"dirty": opts.dirty} if opts.dirty is not None else {}
        if opts.start_ms is not None:
            extra["start_ms"] = opts.start_ms
        spec = SimSpec(opts.scenario, seed=opts.seed, scale=opts.scale, **extra)
        sim = spec.build()
        return sim.registry, spec
    directory = registry_path(opts.registry_dir, settings)
    if directory is not None:
        return Registry.load(directory), None
    log.warning(
        "no registry directory (%s): running with empty reference data",
        settings.data_dir / "registry",
    )
    return Registry(), None


def registry_path(given: str | None, settings: Settings) -> Path | None:
    """The registry to load (``given``, else ``<data_dir>/registry``), or None when there is
    none and the settings' region stands in for it; a ConfigError naming the fix otherwise."""
    directory = Path(given) if given else settings.data_dir / "registry"
    if directory.is_dir() or (given and directory.is_file()):
        return directory
    if given:
        msg = f"registry: {given!r} not found (a directory or a registry file)"
        raise ConfigError(msg)
    if settings.region is None:
        msg = (
            f"no registry (looked for {directory}) and no region: give --registry DIR (the "
            "simulator writes one), or set CW_REGION=lat_min,lat_max,lon_min,lon_max"
        )
        raise ConfigError(msg)
    return None


def partition_key(registry: Registry) -> KeyOf:
    """Partition raw records so each model's state key sees its records in one partition.

    The rule of ``citywatch.partitioning`` (the simulator writes files and streams by it too):
    a pure function of the record and the reference data, never of model state. Undecodable
    records go by position.
    """
    district = {s.id: s.district for s in registry.stations.values()}

    def key_of(raw: bytes) -> tuple[str | None, int | None]:
        key, ts = peek(raw)
        if key is not None and key.startswith("station:"):
            sid = key.removeprefix("station:")
            return partition_key_of("air", sid, district=district.get(sid)), ts
        return key, ts

    return key_of


def reporting_intervals(registry: Registry) -> dict[tuple[str, str], int]:
    """``("air", station) -> interval (ms)`` of the stations that declare ``interval_s``: the
    lateness gate gives their records that much more time (an hourly average arrives after its
    hour has ended; ``models.alert_engine.LatenessGate``). Undeclared stations get the plain
    lateness: ``citywatch import`` declares every station's interval from its data."""
    return {
        ("air", sid): int(st.interval_s * 1000)
        for sid, st in registry.stations.items()
        if st.interval_s
    }


def make_raw_source(
    opts: RunOptions, settings: Settings, url: str, spec: Any, registry: Registry | None = None
) -> RawSource:
    parts = opts.partitions or opts.processes
    if opts.source == "sim":
        from flows.sources.sim import sim_source

        key_of = partition_key(registry or spec.build().registry) if parts > 1 else None
        anchor_ts = None
        if opts.speed is not None and opts.start_ms is not None and opts.preroll_s > 0:
            anchor_ts = opts.start_ms + int(opts.preroll_s * 1000)
        if opts.speed == 1.0 and opts.start_ms is not None:
            # Live: the simulated time is the clock's. A run resumed after a pause (a demo
            # restarted) catches up at once with what it missed, then goes on live.
            anchor_ts = max(anchor_ts or 0, int(time.time() * 1000))
        return sim_source(
            spec, partitions=parts, speed=opts.speed, key_of=key_of, anchor_ts=anchor_ts
        )
    if opts.source == "files":
        from flows.sources.files import FileSource

        return FileSource(list(opts.paths))
    if opts.source == "redis":
        from flows.sources.redis_streams import RedisStreamSource

        return RedisStreamSource(
            url, settings.keys, kinds=opts.kinds or None, idle_stop_s=opts.idle_stop_s
        )
    if opts.source == "mqtt":
        from flows.sources.mqtt import MqttSource

        return MqttSource(
            settings.mqtt_url,
            client_id=f"citywatch-{opts.run_id or 'run'}",
            idle_stop_s=opts.idle_stop_s,
        )
    msg = f"source: {opts.source!r} is not one of {', '.join(SOURCES)}"
    raise ConfigError(msg)


def build_city_flow(
    opts: RunOptions,
    settings: Settings,
    url: str,
    *,
    raw: RawSource | None = None,
    registrations: Sequence[Registration] | None = None,
) -> Dataflow:
    """The real city flow for ``opts``: source, registered models, engine, Redis sink.

    ``raw`` replaces the source ``opts`` names (replays, tests); the registry still comes
    from ``opts`` (the simulation's, or ``registry_dir``). ``registrations`` replaces the
    registered models (``flows.registry.MODELS``) for this flow.
    """
    registry, spec = load_registry(opts, settings)
    models = build_models(registry, settings, domain=opts.domain, registrations=registrations)
    raw = raw or make_raw_source(opts, settings, url, spec, registry)
    source = DecodingSource(
        raw,
        region=region_for(settings.region, registry),
        future_tolerance_ms=settings.future_tolerance_ms,
        lateness_ms=int(settings.lateness_s * 1000),
        batch_size=settings.batch_size,
        dedupe_window=settings.dedupe_window,
        intervals=reporting_intervals(registry),
    )
    sink = RedisSink(
        url,
        settings.keys,
        run_id=opts.run_id,
        alerts_maxlen=settings.alerts_maxlen,
        deadletter_maxlen=settings.deadletter_maxlen,
        max_outage_s=settings.redis_outage_s,
    )
    locate = registry.locator().locate if registry.districts else None

    def make_engine(snap: EngineSnapshot | None) -> AlertEngine:
        return AlertEngine(locate=locate, snapshot=snap)

    def make_correlator() -> IncidentCorrelator:
        return IncidentCorrelator(registry=registry)

    cfg = opts.flow_config()
    if cfg.grace_ms == FlowConfig().grace_ms:
        cfg = dataclasses.replace(cfg, grace_ms=int(settings.lateness_s * 1000) + cfg.tick_ms)
    return build_flow(
        source,
        sink,
        models=models,
        config=cfg,
        make_engine=make_engine,
        make_correlator=make_correlator if opts.domain is None else None,
        silences=SilenceSource(url, settings.keys.silences) if is_endless(opts) else None,
    )


def is_endless(opts: RunOptions) -> bool:
    """Whether the input has no end (live simulator, Redis or MQTT without ``idle_stop_s``)."""
    if opts.source in ("redis", "mqtt"):
        return opts.idle_stop_s is None
    return False


def prepare_recovery(opts: RunOptions) -> RunOptions:
    """Create the recovery directory on first use, or check it matches and reuse its run id."""
    if opts.recovery_dir is None:
        return dataclasses.replace(opts, run_id=opts.run_id or uuid.uuid4().hex[:12])
    from bytewax.recovery import init_db_dir

    d = Path(opts.recovery_dir)
    state = d / _STATE_FILE
    shape = {
        "source": opts.source,
        "scenario": opts.scenario,
        "seed": opts.seed,
        "scale": opts.scale,
        "dirty": opts.dirty,
        "paths": list(opts.paths),
        "kinds": list(opts.kinds),
        "flow": opts.flow,
        "domain": opts.domain,
        "partitions": opts.partitions or opts.processes,
    }
    if state.exists():
        saved = orjson.loads(state.read_bytes())
        if saved["shape"] != shape:
            msg = (
                f"recovery_dir: {d} holds a run of {saved['shape']}, not {shape}; "
                "use a fresh directory"
            )
            raise ConfigError(msg)
        log.warning("resuming run %s from %s", saved["run_id"], d)
        return dataclasses.replace(opts, run_id=saved["run_id"], start_ms=saved.get("start_ms"))
    run_id = opts.run_id or uuid.uuid4().hex[:12]
    try:
        d.mkdir(parents=True, exist_ok=True)
        # No state file means no run ever started here (it is written before the flow runs):
        # partition files are left by a setup that was killed half-way, and hold nothing.
        for stale in d.glob("part-*.sqlite3*"):
            stale.unlink()
        init_db_dir(d, max(1, opts.processes))  # type: ignore[no-untyped-call]
        record = {"run_id": run_id, "shape": shape, "start_ms": opts.start_ms}
        tmp = state.with_name(state.name + ".tmp")
        tmp.write_bytes(orjson.dumps(record))
        tmp.replace(state)  # all or nothing: a kill never leaves half a state file
    except Exception as exc:  # OSError, or sqlite's own error from bytewax
        msg = f"recovery_dir: cannot set up {d} ({exc})"
        raise DependencyError(msg) from exc
    return dataclasses.replace(opts, run_id=run_id)


def execute(
    opts: RunOptions,
    settings: Settings,
    url: str,
    *,
    proc_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    """Run the flow in this process (one member of a cluster when ``addresses`` is given)."""
    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    flow = build_city_flow(opts, settings, url)
    if proc_id and addresses:
        # A process connects to every lower-numbered one and, refused, retries only after a
        # second: it waits here (while they import and build too) until they listen.
        for address in addresses[:proc_id]:
            wait_listening(address)
    recovery = (
        RecoveryConfig(Path(opts.recovery_dir))  # type: ignore[no-untyped-call]
        if opts.recovery_dir
        else None
    )
    name = "citywatch run" if proc_id is None else f"citywatch worker {proc_id}"
    if opts.source == "files":
        from flows.sources.files import PROBLEMS

        PROBLEMS.take()
    with (
        stop_on_signals(),
        watch_redis(url, settings, name),
        citywatch_errors(opts.recovery_dir),
        contained(),
    ):
        cli_main(  # type: ignore[no-untyped-call]
            flow,
            workers_per_process=1,
            process_id=proc_id,
            addresses=addresses,
            epoch_interval=timedelta(seconds=settings.epoch_s),
            recovery_config=recovery,
        )
    if opts.source == "files":
        PROBLEMS.check()  # a file broke while read: processed up to the break, then said


def watch_redis(url: str, settings: Settings, name: str) -> RedisWatch:
    """Say (once, with the time) when the flow's Redis goes and when it is back."""
    holding = f"; the flow holds its output for up to {settings.redis_outage_s:.0f} s"
    return RedisWatch(url, name=name, holding=holding)


@contextlib.contextmanager
def citywatch_errors(recovery_dir: str | None = None) -> Iterator[None]:
    """Turn what stops a running flow into our one-line errors: our own error (a StoreError
    from the sink, say) that bytewax wrapped in its runtime error, a full recovery disk, a
    lost peer of a cluster. Anything else passes unchanged."""
    try:
        yield
    except BaseException as exc:
        error = flow_error(exc, recovery_dir)
        if error is None:
            raise
        raise error from None


def flow_error(exc: BaseException, recovery_dir: str | None = None) -> CitywatchError | None:
    """The :class:`CitywatchError` that says what stopped a flow, if we know it."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, CitywatchError):
            return e
    text = " ".join(str(e) for e in chain)
    if "disk is full" in text or "No space left" in text:
        where = recovery_dir or "the recovery directory"
        msg = (
            f"recovery: no space left in {where} (database or disk is full); free some and "
            "rerun the same command: it resumes from the last snapshot"
        )
        return DependencyError(msg)
    if type(exc).__name__ == "PanicException" and "thread panic" in text:
        msg = (
            "cluster: lost the connection to another process of the cluster; start every "
            "process again with the same options (with --recovery it resumes)"
        )
        return DependencyError(msg)
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


@contextlib.contextmanager
def _redis_url(settings: Settings) -> Iterator[str]:
    from citywatch.redisconn import embedded_or_url, redact

    with embedded_or_url(settings.redis_url, retries=settings.redis_retries) as url:
        if settings.redis_url is None:
            print(
                f"citywatch run: embedded Redis at {redact(url)} (set REDIS_URL to keep alerts)",
                flush=True,
            )
        yield url


def run_city(settings: Settings, opts: RunOptions | None = None, **changes: Any) -> int:
    """Run the city flow to completion (or until SIGINT/SIGTERM); returns an exit code.

    ``citywatch demo`` may call this in-process or run ``citywatch run`` as a subprocess.
    """
    opts = dataclasses.replace(opts or RunOptions(), **changes)
    if opts.source not in SOURCES:
        msg = f"source: {opts.source!r} is not one of {', '.join(SOURCES)}"
        raise ConfigError(msg)
    if opts.processes < 1:
        msg = f"processes: must be >= 1, got {opts.processes}"
        raise ConfigError(msg)
    if opts.source == "sim" and opts.speed is not None and opts.start_ms is None:
        # A live demo shows alerts "now": start the simulated day at the current second
        # (minus the pre-roll, which is replayed at once).
        start_s = int(time.time() - max(0.0, opts.preroll_s))
        opts = dataclasses.replace(opts, start_ms=start_s * 1000)
    if opts.source == "files":
        from flows.sources.files import FileSource

        FileSource(list(opts.paths))  # every file readable, before anything starts
    opts = prepare_recovery(opts)
    with _redis_url(settings) as url:
        from flows.metrics import Totals, read_counts, serve_metrics

        server = serve_metrics(url, settings) if settings.metrics_port else None
        before, t0 = read_counts(url, settings), time.monotonic()
        try:
            with daily_reports(settings, url, lambda: _report_registry(opts, settings)):
                if opts.processes == 1:
                    execute(opts, settings, url)
                    return 0
                return _run_cluster(opts, settings, url)
        finally:
            if server is not None:
                server.shutdown()
            totals = Totals.say(before, read_counts(url, settings), time.monotonic() - t0)
            print(f"citywatch run: {totals}", file=sys.stderr)


def _report_registry(opts: RunOptions, settings: Settings) -> tuple[Registry, bool]:
    """Names and outlines for the daily report: the simulation's (simulated outlines), or the
    run's registry, else the simulated Nantong ones."""
    if opts.source == "sim":
        return load_registry(opts, settings)[0], True
    from flows.reports import report_registry

    return report_registry(settings, Path(opts.registry_dir) if opts.registry_dir else None)


def cluster_addresses(processes: int, first_port: int = 0) -> list[str]:
    """``127.0.0.1:port`` for each process (free ports unless ``first_port`` is given)."""
    if first_port:
        return [f"127.0.0.1:{first_port + i}" for i in range(processes)]
    import socket

    socks = []
    try:
        for _ in range(processes):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """``CW_*`` variables that make ``Settings.load()`` in a worker equal ``settings``."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(settings):
        if f.name in ("extra", "redis_url"):
            continue
        value = getattr(settings, f.name)
        if value is None:
            text = ""
        elif isinstance(value, tuple):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        env[f"CW_{f.name.upper()}"] = text
    return env


def start_workers(
    opts: RunOptions, env: dict[str, str], addresses: list[str]
) -> list[subprocess.Popen[bytes]]:
    """Start one ``flows.worker`` process per address (this host's share of a cluster)."""
    api_port = int(env.get("BYTEWAX_DATAFLOW_API_PORT", "3030"))
    children = []
    for i in range(len(addresses)):
        # Each process serves bytewax's API (when enabled) on its own port: 3030, 3031, ...
        child_env = {**env, "BYTEWAX_DATAFLOW_API_PORT": str(api_port + i)}
        argv = [
            sys.executable,
            "-m",
            "flows.worker",
            "--options",
            opts.to_json().decode(),
            "--process-id",
            str(i),
            "--addresses",
            ";".join(addresses),
        ]
        children.append(subprocess.Popen(argv, env=child_env))  # noqa: S603 - our own module
    return children


def _run_cluster(opts: RunOptions, settings: Settings, url: str) -> int:
    addresses = cluster_addresses(opts.processes, opts.first_port)
    env = {**os.environ, **settings_env(settings), "REDIS_URL": url}
    children = start_workers(opts, env, addresses)

    def forward(signum: int, frame: FrameType | None) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = _wait_cluster(children)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
    bad = [c for c in codes if c != 0]
    return bad[0] if bad else 0


def _wait_cluster(children: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> list[int]:
    """Wait for every process; once one fails, the cluster cannot go on without it (a timely
    cluster is not rejoined): say so, give the others ``grace_s`` to end, then stop them."""
    while all(c.poll() in (None, 0) for c in children):
        if all(c.poll() == 0 for c in children):
            return [0 for _ in children]
        time.sleep(0.1)
    i, failed = next((i, c) for i, c in enumerate(children) if c.poll() not in (None, 0))
    code = failed.returncode
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    print(
        f"citywatch run: cluster process {i} stopped ({how}); stopping the others "
        "(with --recovery, run the same command again to resume)",
        file=sys.stderr,
        flush=True,
    )
    deadline = time.monotonic() + grace_s
    for c in children:
        if c.poll() is None:
            try:
                c.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.terminate()
    return [c.wait() for c in children]

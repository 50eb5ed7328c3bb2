"""Memory of the models' state for the full Nantong population after one simulated hour.

The population of the ``nantong`` profile (``--scale 1``: 180,000 cameras, 65,000 meters,
5,000 hazmat vehicles, 2,000 air stations, 10,000 work sites) is simulated by ``citywatch simulate
--scenario city-day --profile nantong --stdout`` in a child process, piped into this one, and
fed **directly to the registered models in-process, without bytewax**: decode with the
contract's ``EventDecoder``, ``route`` -> per-key state -> ``update``, watermark ticks every
minute, exactly what each model shard of the flow does. The simulator's own memory stays in
the child, so this process holds what a flow worker holds for the models: the reference data,
the model objects (indexes), the per-key states and the decoder (bytewax's own buffers and the
alert engine are not included; the engine keeps one small track per open alert). The loop is
``citywatch.commands.bench.ModelLoop``, the same one the benchmark's floor runs.

Output: RSS after the hour, the per-model state count and pickled bytes per key, and the
bytes per entity by entity kind (a model's pickled state divided by the entities it covers:
the air model keys by district, so its bytes are spread over the stations). Last line::

    {"rss_mb": ..., "bytes_per_entity": {"station": ..., "vehicle": ..., "site": ...,
     "camera": ..., "meter": ...}}

Target: rss_mb <= 1,500. ``--minutes 5 --scale 0.1`` for a quick look.

    .venv/bin/python benchmarks/memory.py                 # the full hour: ~17M records
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from citywatch.commands.bench import ModelLoop
from citywatch.events import DeadLetter, EventDecoder
from citywatch.registry import Registry, region_for
from citywatch.settings import Settings
from flows.registry import build_models


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``) in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _wait_for(path: Path, child: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if child.poll() is not None:
            msg = f"memory: the simulator exited with {child.returncode} before writing {path}"
            raise SystemExit(msg)
        if time.monotonic() > deadline:
            msg = f"memory: {path} did not appear in {timeout_s} s"
            raise SystemExit(msg)
        time.sleep(0.2)


def _pickled(states: dict[str, Any], sample: int, rng: random.Random) -> tuple[float, int]:
    """Mean pickled bytes per state over a sample, and the number of states."""
    if not states:
        return 0.0, 0
    keys = list(states)
    picked = keys if len(keys) <= sample else rng.sample(keys, sample)
    sizes = [len(pickle.dumps(states[k], protocol=pickle.HIGHEST_PROTOCOL)) for k in picked]
    return sum(sizes) / len(sizes), len(keys)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--scale", type=float, default=1.0, help="Nantong population x SCALE")
    p.add_argument("--minutes", type=int, default=60, help="simulated minutes (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", type=int, default=2000, help="states pickled per model")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.minutes < 1:
        p.error("--scale and --minutes must be positive")

    rss0 = rss_mb()
    with tempfile.TemporaryDirectory(prefix="citywatch-memory-") as tmp:
        cmd = [
            sys.executable, "-m", "citywatch", "simulate", "--scenario", "city-day",
            "--profile", "nantong", "--scale", str(args.scale), "--seed", str(args.seed),
            "--duration", f"{args.minutes}m", "--stdout",
        ]  # fmt: skip
        child = subprocess.Popen(
            cmd, cwd=tmp, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()}
        )
        assert child.stdout is not None
        truth = Path(tmp) / "var" / "sim" / f"city-day-{args.seed}"
        _wait_for(truth / "manifest.json", child)
        manifest = orjson.loads((truth / "manifest.json").read_bytes())
        settings = Settings.load(env={})
        registry = Registry.load(truth / "registry")
        models = build_models(registry, settings)
        gc.collect()
        rss_ref = rss_mb()
        loop = ModelLoop(models)
        feed = loop.feed
        region = region_for(settings.region, registry)
        dec = EventDecoder(region, future_tolerance_ms=settings.future_tolerance_ms)
        n = dead = 0
        t0 = time.perf_counter()
        for line in child.stdout:
            ev = dec.decode(line.rstrip(b"\n"), "memory")
            n += 1
            if type(ev) is DeadLetter:
                dead += 1
                continue
            feed(ev)
        if child.wait() != 0:
            print(f"memory: the simulator exited with {child.returncode}", file=sys.stderr)
            return 1
        dt = time.perf_counter() - t0
    gc.collect()
    rss_end = rss_mb()
    ents = manifest["entities"]
    print(
        f"memory: {n:,} records ({dead} dead) over {args.minutes} simulated minutes in "
        f"{dt:.0f} s, {loop.signals:,} signals; entities: {ents}",
        file=sys.stderr,
    )
    print(
        f"RSS: {rss0:.0f} MB at start, {rss_ref:.0f} MB with reference data and models, "
        f"{rss_end:.0f} MB after the hour (peak {rss_mb('VmHWM'):.0f} MB)"
    )
    rng = random.Random(args.seed)
    covered = {
        "air": ("station", ents["stations"]),
        "vehicle.dwell": ("vehicle", ents["vehicles"]),
        "worksite.resumption": ("site", ents["sites"]),
    }
    per_entity: dict[str, float] = defaultdict(float)
    print(f"{'model':22s} {'states':>8s} {'bytes/state':>12s} {'total MB':>9s}")
    for m, sts in zip(models, loop.states, strict=True):
        mean, count = _pickled(sts, args.sample, rng)
        total = mean * count
        print(f"{m.name:22s} {count:8d} {mean:12.0f} {total / 2**20:9.1f}")
        kind, population = covered.get(m.name, ("", 0))
        if kind and population:
            per_entity[kind] += total / population
    # Cameras and meters carry no state of their own: a site's cameras and meters feed the
    # site's state (counted under "site"); cameras and meters outside sites keep none.
    per_entity.setdefault("camera", 0.0)
    per_entity.setdefault("meter", 0.0)
    result = {
        "rss_mb": round(rss_end, 1),
        "bytes_per_entity": {k: round(v, 1) for k, v in sorted(per_entity.items())},
    }
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``citywatch inject``: seeded, labelled sensor faults added to recorded events.

Examples::

    citywatch inject var/real/chengdu/events.jsonl.gz --seeds 1 --out var/real/chengdu-faults
    citywatch inject var/real/aberdeen/events.jsonl.gz --seeds 1-3 --kinds spike,stuck \\
        --count spike=20,stuck=5 --out var/real/aberdeen-faults

Reads the events (merged in time order) and their registry (``--registry``, default a
``registry.jsonl`` or ``registry/`` next to the first file), adds the faults of
``simulators/faults.py`` (spike, stuck, drift, range, dropout, gps_jump; ``--kinds`` picks),
``--count`` of each (``10``, or ``spike=20,stuck=5``) or ``--rate`` per entity-week, and
writes to ``--out`` (``--out``/seed-N for several seeds): ``events.jsonl.gz``,
``labels.jsonl`` (the labels of the faults, plus those of ``--labels``), ``faults.jsonl``
(every fault, labelled or not) and ``registry.jsonl``, so ``citywatch evaluate --events
OUT/events.jsonl.gz --labels OUT/labels.jsonl`` runs as it is.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from citywatch.cli_options import parse_seeds

__all__ = ["add_arguments", "parse_per_kind", "run"]


def parse_per_kind(text: str, what: str) -> dict[str, float]:
    """``"0.1"`` (every kind) or ``"spike=20,stuck=5"`` -> kind -> number (``*`` = every kind).

    >>> parse_per_kind("spike=20,stuck=5", "--count"), parse_per_kind("0.1", "--rate")
    ({'spike': 20.0, 'stuck': 5.0}, {'*': 0.1})
    """
    out: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        kind, sep, value = item.partition("=")
        if not sep:
            kind, value = "*", kind
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number < 0:
            msg = f"{what}: {item.strip()!r} is not N or KIND=N with N >= 0"
            raise argparse.ArgumentTypeError(msg)
        out[kind.strip()] = number
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="EVENTS", help="JSONL(.gz) event files")
    p.add_argument("--registry", metavar="PATH", help="their registry (default: next to them)")
    p.add_argument("--labels", metavar="FILE", help="labels the data already has (kept)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seeds", type=parse_seeds, default=[1], help="e.g. 1 or 1-3 (default 1)")
    p.add_argument(
        "--kinds", default="spike,stuck,drift,range,dropout,gps_jump", help="kinds to add"
    )
    p.add_argument("--count", type=lambda t: parse_per_kind(t, "--count"), help="faults per kind")
    p.add_argument(
        "--rate",
        type=lambda t: parse_per_kind(t, "--rate"),
        help="faults per entity-week (default spike 0.1, stuck 0.03, drift 0.01, range 0.03, "
        "dropout 0.03, gps_jump 0.5)",
    )


def run(args: argparse.Namespace) -> int:
    import msgspec

    from citywatch.commands.replay import default_registry
    from citywatch.errors import InputError
    from citywatch.registry import Registry
    from simulators.faults import KINDS, inject
    from simulators.labels import encode_labels, read_labels
    from simulators.recorded import Recorded, write_records

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        msg = f"--kinds: unknown {', '.join(bad)} (one of {', '.join(KINDS)})"
        raise InputError(msg)
    registry_path = args.registry or default_registry(args.files)
    if registry_path is None:
        msg = f"--registry PATH is needed: no registry.jsonl or registry/ next to {args.files[0]}"
        raise InputError(msg)
    registry = Registry.load(registry_path)
    kept = read_labels(args.labels) if args.labels else []
    records = list(Recorded(args.files, registry).records())

    def per_kind(given: dict[str, float] | None) -> dict[str, float] | None:
        if given is None:
            return None
        unknown = sorted(set(given) - {*KINDS, "*"})
        if unknown:
            msg = f"unknown fault kind(s) {', '.join(unknown)} (one of {', '.join(KINDS)})"
            raise InputError(msg)
        return {k: given.get(k, given.get("*", 0.0)) for k in KINDS if k in given or "*" in given}

    counts = per_kind(args.count)
    rates = per_kind(args.rate)
    for seed in args.seeds:
        out_dir: Path = args.out if len(args.seeds) == 1 else args.out / f"seed-{seed}"
        out_dir.mkdir(parents=True, exist_ok=True)
        done = inject(
            records,
            registry,
            seed=seed,
            kinds=kinds,
            counts={k: round(v) for k, v in counts.items()} if counts is not None else None,
            rates=rates,
        )
        write_records(out_dir / "events.jsonl.gz", done.records)
        labels = sorted([*kept, *done.labels], key=lambda x: (x.start_ms, x.rule, x.subject_id))
        (out_dir / "labels.jsonl").write_bytes(encode_labels(labels))
        enc = msgspec.json.Encoder()
        (out_dir / "faults.jsonl").write_bytes(b"".join(enc.encode(f) + b"\n" for f in done.faults))
        registry.dump_file(out_dir / "registry.jsonl")
        made = Counter(f.kind for f in done.faults)
        parts = ", ".join(f"{made.get(k, 0)} {k}" for k in kinds)
        missed = sum(done.unplaced.values())
        note = f"; {missed} could not be placed ({dict(done.unplaced)})" if missed else ""
        print(f"inject: seed {seed}: {parts} ({len(done.labels)} labels){note} -> {out_dir}")
    return 0

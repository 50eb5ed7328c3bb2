"""The long fuzz run over the input path: the decoder (every kind) and the JSON Lines readers.

    .venv/bin/python benchmarks/fuzz.py [--examples 2000] [--seeds 1]

The same strategies and checks as the bounded fuzz tests in ``make test``
(``tests/fuzzing.py``), with ``--examples`` generated inputs per kind and as many files, for
each seed. A finding is counted, not raised; the first few are printed. Last line: JSON with
``examples`` (inputs checked), ``escaped`` (exceptions out of the decoder or a reader),
``unaccounted`` (valid + dead letters != input), ``reasons_without_field`` (a dead letter of a
record broken in a field that does not name it) and ``no_reason``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from citywatch.cli_options import parse_seeds
from citywatch.events import KINDS

# The strategies and checks are the fuzz tests' own (``tests/fuzzing.py``): one definition.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.flows.test_city_units import toy_router
from tests.fuzzing import (
    FileCase,
    Finding,
    Mutated,
    check_decoded,
    check_file,
    file_contents,
    mutated_records,
)


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # count every input once: no replay, no shrinking
        suppress_health_check=list(HealthCheck),
    )


def run(examples: int, run_seed: int) -> tuple[int, list[Finding]]:
    found: list[Finding] = []
    n = 0

    for kind in (*KINDS, "bytes"):
        records = (
            st.binary(max_size=400).map(lambda b: Mutated(b, None, "bytes"))
            if kind == "bytes"
            else mutated_records((kind,))
        )

        @seed(run_seed)
        @_settings(examples)
        @given(records)
        def decoder(item: Mutated) -> None:
            nonlocal n
            n += 1
            found.extend(check_decoded([item]))

        decoder()

    router = toy_router(progress_ms=None)
    with tempfile.TemporaryDirectory(prefix="citywatch-fuzz-") as d:

        @seed(run_seed)
        @_settings(examples)
        @given(file_contents())
        def files(case: FileCase) -> None:
            nonlocal n
            n += 1
            found.extend(check_file(case, Path(d), router))

        files()
    return n, found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--examples", type=int, default=2000, help="inputs per kind (default 2000)")
    ap.add_argument("--seeds", default="1", help="seeds, e.g. 1-3 or 1,5 (default 1)")
    args = ap.parse_args(argv)
    if args.examples < 1:
        ap.error("--examples must be at least 1")
    t0 = time.monotonic()
    total = 0
    findings: list[Finding] = []
    for s in parse_seeds(args.seeds):
        n, found = run(args.examples, s)
        total += n
        findings += found
        print(f"seed {s}: {n:,} inputs, {len(found)} findings", flush=True)
    kinds = Counter(f.promise for f in findings)
    for f in findings[:5]:
        print(f"  {f.promise}: {f.detail[:300]!r} raw={f.raw[:120]!r}")
    print(f"{total:,} inputs in {time.monotonic() - t0:.0f} s")
    out = {
        "examples": total,
        "escaped": kinds["escaped"],
        "unaccounted": kinds["unaccounted"],
        "reasons_without_field": kinds["reason_without_field"],
        "no_reason": kinds["no_reason"],
    }
    print(orjson.dumps(out).decode())
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

"""The detector benchmark's labelling (benchmarks/eval_detectors.py): where anomalies go and
which windows count; the run itself is a benchmark, not a test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
MIN = 60_000


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_detectors", ROOT / "benchmarks" / "eval_detectors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_detectors"] = module
    spec.loader.exec_module(module)
    return module


def test_no_anomaly_goes_where_the_source_has_no_readings(bench: ModuleType) -> None:
    n = 20_000
    t = np.arange(n, dtype=np.int64) * MIN
    present = np.ones(n, dtype=bool)
    present[8_000:12_000] = False  # a long gap in the source
    every = bench.plan(n, t, None, np.ones(n, dtype=bool), np.random.default_rng(1))
    gapped = bench.plan(n, t, None, present, np.random.default_rng(1))
    assert len(gapped) < len(every)
    for a in gapped:
        span = present[a.start : a.start + bench.DURATION[a.kind]]
        assert span.mean() >= bench.MIN_PRESENT
    # outside the gap the plan is the same
    assert [a for a in every if a.start + 300 < 8_000] == [a for a in gapped if a.start < 7_700]


def test_clean_windows_skip_anomalies_and_gaps(bench: ModuleType) -> None:
    scores = np.zeros(1_000)
    scores[500] = 0.9
    exclude = np.zeros(1_000, dtype=bool)
    exclude[100:200] = True
    present = np.ones(1_000, dtype=bool)
    present[700:760] = False  # most of the window 700..799 is missing: no clean window there
    neg = bench.negatives(scores, 0, 100, exclude, present)
    assert len(neg) == 8  # 10 windows, one excluded, one mostly missing
    assert sorted(neg)[-1] == 0.9


def test_slot_must_leave_room_for_the_longest_anomaly(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--slot", "100"])
    assert exc.value.code == 2
    assert "--slot" in capsys.readouterr().err

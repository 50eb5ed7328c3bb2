"""The label schema is documented (docs/evaluation.md) and the simulator writes the same one.

The test reads the documented tables (subject kinds, params by rule) and checks every label of
runs that together plan every rule: a rule, subject kind or param the simulator writes but the
documentation does not list fails here, and so does a labels file that ``citywatch evaluate
--labels`` (``read_labels``) would not read back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulators import simulate
from simulators.labels import encode_labels, read_labels

DOC = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"
#: Params any simulated label may carry (the doc says so above the table).
COMMON = {"level", "lat", "lon", "district"}


def documented() -> tuple[set[str], dict[str, set[str]]]:
    """(subject kinds, rule -> params) as docs/evaluation.md lists them."""
    text = DOC.read_text(encoding="utf-8")
    kinds_row = next(line for line in text.splitlines() if line.startswith("| `subject_kind` |"))
    kinds = set(re.findall(r"`([a-z_]+)`", kinds_row.split("|")[3]))
    table = text[text.index("Params by rule") :]
    params: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 5 or not re.fullmatch(r"`[a-z]+\.[a-z_]+`", cells[1]):
            continue
        params[cells[1].strip("`")] = set(re.findall(r"`([a-z_0-9]+)`", cells[3]))
    return kinds, params


def test_the_documented_tables_are_found() -> None:
    kinds, params = documented()
    assert {"station", "district", "vehicle", "water_station"} <= kinds
    assert {"air.spike", "air.stuck", "vehicle.dwell", "water.stuck"} <= set(params)
    assert "shared_with" in params["air.stuck"]


@pytest.mark.parametrize(
    ("scenario", "knobs"),
    [
        ("realistic", {"duration_s": 8 * 3600, "kinds": ("air", "gps", "hotline", "order")}),
        ("air-faults", {"duration_s": 12 * 3600, "air_shared_flat": 1}),
        ("workshops", {"duration_s": 86_400}),
        ("resumption", {"duration_s": 12 * 3600}),
        ("hotline", {"duration_s": 12 * 3600}),
        ("water", {}),
    ],
)
def test_simulated_labels_follow_the_documented_schema(
    scenario: str, knobs: dict[str, object], tmp_path: Path
) -> None:
    kinds, params = documented()
    sim = simulate(scenario, seed=4, **knobs)  # type: ignore[arg-type]
    assert sim.labels
    for lab in sim.labels:
        assert lab.rule in params, f"{lab.rule} is not in docs/evaluation.md"
        assert lab.subject_kind in kinds, f"{lab.rule}: subject kind {lab.subject_kind}"
        extra = set(lab.params) - params[lab.rule] - COMMON
        assert not extra, f"{lab.rule} writes undocumented params {sorted(extra)}"
    path = tmp_path / "labels.jsonl"
    path.write_bytes(encode_labels(sim.labels))
    assert read_labels(path) == sim.labels

"""``citywatch evaluate --events``: recorded files through the real flow, scored like scenarios."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from citywatch.cli import main
from citywatch.registry import Registry, Station, Vehicle
from citywatch.settings import Settings
from simulators import Simulation, simulate
from simulators.labels import Label, encode_labels, read_labels
from simulators.output import FileSink, write_truth
from simulators.recorded import Recorded

HOUR = 3_600_000
T0 = 1_388_505_600_000  # 2014-01-01 00:00 +08:00


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("CW_PREFIX", settings.prefix)


def _rows(results: Path) -> dict[str, dict[str, object]]:
    doc = orjson.loads(results.read_bytes())
    return {r["rule"]: r for r in doc["configs"][0]["rules"]}


def test_the_simulator_writes_the_documented_label_schema(tmp_path: Path) -> None:
    sim = simulate("demo", seed=3, duration_s=600)
    write_truth(sim, tmp_path)
    labels = read_labels(tmp_path / "labels.jsonl")
    assert labels == sim.labels
    keys = {"rule", "subject_kind", "subject_id", "start_ms", "end_ms", "also", "params"}
    for line in (tmp_path / "labels.jsonl").read_bytes().splitlines():
        assert set(orjson.loads(line)) == keys


def _simulated_files(tmp_path: Path) -> Simulation:
    sim = simulate("demo", seed=2, duration_s=900)
    write_truth(sim, tmp_path / "sim")
    sink = FileSink(tmp_path / "sim", 2, compress=True)  # two partitions: merged back by time
    for b in sim.batches():
        sink.write(b)
    sink.close()
    return sim


def test_recorded_simulator_output_is_the_same_dataset_as_the_scenario(tmp_path: Path) -> None:
    sim = _simulated_files(tmp_path)
    d = tmp_path / "sim"
    rec = Recorded(
        sorted(d.glob("part-*.jsonl.gz")),
        Registry.load(d / "registry"),
        read_labels(d / "labels.jsonl"),
    )
    assert not rec.sorted_in_memory
    assert [orjson.loads(x)["ts"] for x in rec.records()] == [
        orjson.loads(x)["ts"] for x in sim.records()
    ]
    assert sorted(rec.records()) == sorted(sim.records())
    assert rec.labels == sim.labels
    assert rec.registry == sim.registry
    assert rec.start_ms >= sim.start_ms
    assert rec.end_ms <= sim.end_ms
    assert set(rec.entity_days()) == set(sim.entity_days())


@pytest.mark.integration
@pytest.mark.usefixtures("cli_env")
def test_evaluate_events_on_simulator_output_scores_its_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = _simulated_files(tmp_path)
    d = tmp_path / "sim"
    events = sorted(str(p) for p in d.glob("part-*.jsonl.gz"))
    argv = ["evaluate", "--no-plots", "--out", str(tmp_path / "b"), "--name", "sim2"]
    assert main([*argv, "--events", *events, "--labels", str(d / "labels.jsonl")]) == 0
    assert "sim2, recorded" in capsys.readouterr().out
    rows = _rows(tmp_path / "b" / "results.json")
    assert {r: v["labels"] for r, v in rows.items() if v["labels"]} == dict(
        Counter(lab.rule for lab in sim.labels)
    )
    assert sum(v["true_alerts"] for v in rows.values()) > 10  # the flow's alerts hit labels


def _tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three Chengdu stations, hourly, two days; station B reads 9999 for six hours."""
    reg = Registry(
        stations={
            s: Station(id=s, lat=30.6 + i * 0.02, lon=104.05, district="Chengdu", interval_s=3600)
            for i, s in enumerate("ABC")
        }
    )
    reg.dump_file(tmp_path / "registry.jsonl")
    lines = []
    for h in range(48):
        for i, s in enumerate("ABC"):
            v = 9999.0 if s == "B" and 20 <= h < 26 else 40.0 + (h % 7) + i
            lines.append(
                orjson.dumps({"kind": "air", "ts": T0 + h * HOUR, "station": s, "pm25": v})
            )
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    lab = Label(
        rule="air.range",
        subject_kind="station",
        subject_id="B",
        start_ms=T0 + 20 * HOUR,
        end_ms=T0 + 26 * HOUR,
        params={"check": "gross_range", "channel": "pm25", "value": 9999.0},
    )
    (tmp_path / "labels.jsonl").write_bytes(encode_labels([lab]))
    return tmp_path / "events.jsonl", tmp_path / "labels.jsonl", tmp_path / "registry.jsonl"


@pytest.mark.integration
@pytest.mark.usefixtures("cli_env")
def test_tiny_recorded_file_outside_nantong_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, labels, registry = _tiny(tmp_path)
    out = tmp_path / "out"
    argv = ["evaluate", "--events", str(events), "--labels", str(labels)]
    rules = ["--rules", "air.range", "vehicle.dwell"]
    assert main([*argv, "--registry", str(registry), "--out", str(out), *rules]) == 0
    text = capsys.readouterr().out
    rows = _rows(out / "results.json")
    assert rows["air.range"]["labels"] == 1
    assert rows["air.range"]["recall"] == 1.0  # an impossible value for 6 h is found
    doc = orjson.loads((out / "results.json").read_bytes())
    assert doc["configs"][0]["runs"][0]["records"] == 144
    assert doc["seeds"] is None
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "baseline-air.range.png" in page
    assert (out / "baseline-air.range.png").read_bytes()[:4] == b"\x89PNG"
    # a rule that raised nothing shows "-" for precision (not 1.00) and says why
    assert rows["vehicle.dwell"]["alerts"] == 0
    assert (rows["vehicle.dwell"]["precision"], rows["vehicle.dwell"]["f1"]) == (None, None)
    dwell = next(x for x in text.splitlines() if x.startswith("vehicle.dwell"))
    assert dwell.split()[1:6] == ["0", "0", "-", "-", "-"]
    assert "(prec -: 0 alerts (undefined); recall -: 0 labels (undefined))" in text


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing", "events: .*nope.jsonl' not found"),
        ("bad_labels", r"labels: labels.jsonl line 1: "),
        ("no_registry", r"--registry PATH is needed"),
        ("seeds", r"--seeds apply to simulated scenarios, not to --events"),
        ("labels_without_events", r"--labels applies to --events"),
        ("no_region", r"region: not set and the registry locates nothing: set region"),
        ("bad_gzip", r"events: .*bad.jsonl.gz: unreadable after line 0"),
    ],
)
def test_error_paths_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, match: str
) -> None:
    events, labels, registry = _tiny(tmp_path)
    args = ["--events", str(events), "--registry", str(registry), "--out", str(tmp_path / "o")]
    if case == "missing":
        args[1] = str(tmp_path / "nope.jsonl")
    elif case == "bad_labels":
        labels.write_text('{"rule": "air.range"}\n', encoding="utf-8")
        args += ["--labels", str(labels)]
    elif case == "no_registry":
        registry.unlink()
        args = args[:2]
    elif case == "seeds":
        args += ["--seeds", "1-3"]
    elif case == "labels_without_events":
        args = ["--scenario", "demo", "--labels", str(labels)]
    elif case == "no_region":
        Registry(vehicles={"V1": Vehicle(id="V1", plate="P1")}).dump_file(registry)
        gps = {"kind": "gps", "ts": T0, "vehicle": "V1", "lat": 30.6, "lon": 104.0}
        events.write_bytes(orjson.dumps(gps) + b"\n")
    elif case == "bad_gzip":
        (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8bnot really gzip")
        args[1] = str(tmp_path / "bad.jsonl.gz")
    assert main(["evaluate", "--no-plots", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("citywatch evaluate: error: ")
    assert re.search(match, err[0]), err[0]


def test_plot_text_never_leaves_chinese_to_a_font_without_it() -> None:
    from types import SimpleNamespace

    from citywatch.commands.evaluate import plot_text
    from citywatch.registry import District

    reg = Registry(districts=[District(name="崇川区", code="320602", rings=())])
    run = SimpleNamespace(sim=SimpleNamespace(registry=reg))
    text = plot_text(run, cjk=False)  # type: ignore[arg-type]
    assert text("air.spike — baseline, recorded: P - R 0.50") == (
        "air.spike — baseline, recorded: P - R 0.50"
    )
    assert text("崇川区") == "district 320602"
    assert text("幸福站") == "\\u5e78\\u798f\\u7ad9"
    assert plot_text(run, cjk=True)("崇川区") == "崇川区"  # type: ignore[arg-type]

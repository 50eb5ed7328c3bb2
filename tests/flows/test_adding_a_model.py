"""docs/models/adding-a-model.md, executed: its model file and its registration line, run
through the real city flow on a small scenario, produce the alerts the model implies."""

from __future__ import annotations

import doctest
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from bytewax.testing import run_main

import flows.registry
from citywatch.alerts import Alert
from citywatch.events import Power
from citywatch.settings import Settings
from flows.registry import MODELS, Registration
from flows.run import RunOptions, build_city_flow
from flows.sources.iterable import IterableSource
from simulators import simulate

DOC = Path(__file__).resolve().parents[2] / "docs" / "models" / "adding-a-model.md"
MODULE = "models.power_overload"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def model_module() -> Iterator[types.ModuleType]:
    """The doc's model file as the module ``models.power_overload`` (as if it were saved)."""
    code = _blocks()[0]
    mod = types.ModuleType(MODULE)
    mod.__file__ = str(DOC)
    sys.modules[MODULE] = mod
    try:
        exec(compile(code, f"{DOC}:model", "exec"), mod.__dict__)  # noqa: S102 - our own doc
        yield mod
    finally:
        del sys.modules[MODULE]


def test_the_doc_has_a_model_file_and_a_one_line_registration() -> None:
    blocks = _blocks()
    assert len(blocks) == 2
    reg = blocks[1]
    assert "from models.power_overload import PowerOverload" in reg
    lines = [ln for ln in reg.splitlines() if "Registration(" in ln]
    assert lines == ['    Registration("worksites", lambda reg, s: PowerOverload()),']


def test_the_models_docstring_example_runs(model_module: types.ModuleType) -> None:
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tests = finder.find(model_module, MODULE, globs=dict(model_module.__dict__))
    assert any(t.examples for t in tests)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def _expected(events: list[Power], limit_kw: float, n: int) -> set[str]:
    """Meters with ``n`` consecutive readings above the limit: a plain loop over the input."""
    runs: dict[str, int] = {}
    hit: set[str] = set()
    for e in events:
        if e.kw is None:
            continue
        runs[e.meter] = runs.get(e.meter, 0) + 1 if e.kw > limit_kw else 0
        if runs[e.meter] >= n:
            hit.add(e.meter)
    return hit


@pytest.mark.integration
def test_registered_model_runs_in_the_real_flow_and_alerts_come_out(
    model_module: types.ModuleType,
    settings: Settings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The registration line of the doc, added to the registry the flow builds its models from.
    line = next(ln for ln in _blocks()[1].splitlines() if "Registration(" in ln)
    reg = eval(  # noqa: S307 - the doc's own line
        line.strip().rstrip(","), {"Registration": Registration, **model_module.__dict__}
    )
    monkeypatch.setattr(flows.registry, "MODELS", (*MODELS, reg))

    sim = simulate("demo", seed=4, duration_s=900)
    sim.registry.dump(tmp_path)
    opts = RunOptions(source="files", registry_dir=str(tmp_path), speed=None, run_id="add")
    raw = IterableSource(sim.records, name="sim")
    assert settings.redis_url is not None
    run_main(build_city_flow(opts, settings, settings.redis_url, raw=raw))

    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(settings.keys.alerts)]
    mine = [a for a in alerts if a.rule == "power.overload"]
    powers = [e for e in sim.events() if isinstance(e, Power)]
    want = _expected(powers, limit_kw=1000.0, n=3)
    assert want, "the scenario should overload some meter"
    assert {a.subject.id for a in mine} == want
    assert all(a.model == "power.overload@1" and a.subject.kind == "meter" for a in mine)
    # The other models still ran next to it.
    assert any(a.rule == "worksite.resumption" for a in alerts)

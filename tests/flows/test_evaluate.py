"""``citywatch evaluate``: scenarios through the real flow, scored, compared, plotted."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest
import redis

import flows.registry
from citywatch.cli import main
from citywatch.errors import ConfigError
from citywatch.registry import Registry
from citywatch.settings import Settings
from flows.evaluate import EvalConfig, apply_overrides, registered, run_scenario, summarize
from models.air.model import AirModel
from models.vehicles.model import DwellModel
from models.worksites.model import WorksiteResumption
from simulators import simulate
from simulators.scoring import score


@pytest.fixture(scope="module")
def registry() -> Registry:
    return simulate("demo", seed=4, duration_s=600).registry


def test_parse_seeds_accepts_ranges_and_lists_and_rejects_the_rest() -> None:
    from citywatch.commands.evaluate import parse_seeds

    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("3,1") == [3, 1]
    for bad in ("", "a", "5-1", "1-x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)


def test_overrides_reach_constructor_keywords_and_config_fields(registry: Registry) -> None:
    dwell = apply_overrides(DwellModel(registry), registry, {"min_duration_s": 1234.0})
    assert isinstance(dwell, DwellModel)
    assert dwell.min_duration_s == 1234.0
    site = apply_overrides(WorksiteResumption(registry), registry, {"m": 2, "n": 4})
    assert isinstance(site, WorksiteResumption)
    assert (site.config.m, site.config.n) == (2, 4)
    air = apply_overrides(AirModel(registry), registry, {"qc": {"stuck_min_s": 1200.0}})
    assert isinstance(air, AirModel)
    assert air.cfg.qc.stuck_min_s == 1200.0
    assert air.cfg.qc.stuck_p == AirModel(registry).cfg.qc.stuck_p  # other fields kept
    with pytest.raises(ConfigError, match="no_such"):
        apply_overrides(DwellModel(registry), registry, {"no_such": 1})
    with pytest.raises(ConfigError, match="QcConfig has no field"):
        apply_overrides(AirModel(registry), registry, {"qc": {"nope": 1}})
    with pytest.raises(ConfigError, match="refresh_s"):
        apply_overrides(DwellModel(registry), registry, {"refresh_s": -1.0})


def test_compare_config_is_checked_when_loaded(tmp_path: Path) -> None:
    good = tmp_path / "b.toml"
    good.write_text(
        'name = "B"\n[flow]\ntick_ms = 30000\n[models."vehicle.dwell"]\nradius_m = 80.0\n'
    )
    cfg = EvalConfig.load(good)
    assert (cfg.name, dict(cfg.flow), dict(cfg.models)) == (
        "B",
        {"tick_ms": 30000},
        {"vehicle.dwell": {"radius_m": 80.0}},
    )
    for text, match in (
        ("[flows]\nx = 1\n", "unknown key"),
        ("[flow]\nticks = 1\n", r"\[flow\] has no field"),
        ("[settings]\nnope = 1\n", r"\[settings\] has no field"),
        ("name = \n", "b.toml"),
    ):
        good.write_text(text)
        with pytest.raises(ConfigError, match=match):
            EvalConfig.load(good)
    with pytest.raises(ConfigError, match="not found"):
        EvalConfig.load(tmp_path / "missing.toml")


def test_registered_applies_overrides_without_touching_the_registry() -> None:
    before = flows.registry.MODELS
    regs, used = registered(EvalConfig(models={"x": {}}))
    assert flows.registry.MODELS is before
    assert len(regs) == len(before)
    assert [r.domain for r in regs] == [r.domain for r in before]
    assert used == set()  # filled only as the flow builds its models


@pytest.mark.integration
def test_run_scenario_scores_the_flow_alerts_and_cleans_up(
    settings: Settings, redis_client: redis.Redis
) -> None:
    assert settings.redis_url is not None
    run = run_scenario("demo", 4, url=settings.redis_url, settings=settings, duration_s=900)
    assert run.records == sum(1 for _ in run.sim.records())
    assert run.alerts
    # What scoring sees is the flow's own output: alerts of labelled rules hit their labels.
    report = score(run.alerts, run.sim.labels, tolerance_ms=10 * 60_000)
    assert report.rules["worksite.resumption"].recall >= 0.5
    rows = {r.rule: r for r in summarize([run, run])}
    dwell = rows["worksite.resumption"]
    single = run.score().rules["worksite.resumption"]
    assert dwell.labels == 2 * single.labels
    assert dwell.alerts_per_hour == pytest.approx(single.alerts / run.hours)
    assert dwell.delay_quantile_s(0.5) is not None
    assert not list(redis_client.scan_iter(match=f"{settings.prefix}*"))
    with pytest.raises(ConfigError, match="no registered model"):
        run_scenario(
            "demo",
            4,
            url=settings.redis_url,
            settings=settings,
            duration_s=60,
            config=EvalConfig(models={"no.such": {"a": 1}}),
        )


@pytest.mark.integration
def test_evaluate_command_writes_table_json_and_html_and_compares(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    cmp = tmp_path / "strict.toml"
    cmp.write_text('name = "strict"\n[models."vehicle.dwell"]\nmin_duration_s = 86400.0\n')
    out = tmp_path / "eval"
    argv = ["evaluate", "--scenario", "demo", "--seeds", "4", "--duration", "15m"]
    rules = ["--rules", "vehicle.dwell", "worksite.resumption"]
    assert main([*argv, *rules, "--compare", str(cmp), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "baseline: demo" in text
    assert "strict: demo" in text
    doc = orjson.loads((out / "results.json").read_bytes())
    by_cfg = {c["name"]: {r["rule"]: r for r in c["rules"]} for c in doc["configs"]}
    assert set(by_cfg) == {"baseline", "strict"}
    assert set(by_cfg["baseline"]) == {"vehicle.dwell", "worksite.resumption"}
    base, strict = by_cfg["baseline"]["vehicle.dwell"], by_cfg["strict"]["vehicle.dwell"]
    assert base["alerts"] > 0
    assert base["recall"] > 0
    assert strict["alerts"] == 0  # no stop lasts a day: the override reached the model
    # The override touched only the dwell model.
    assert (
        by_cfg["strict"]["worksite.resumption"]["alerts"]
        == by_cfg["baseline"]["worksite.resumption"]["alerts"]
    )
    for key in ("precision", "recall", "f1", "delay_s", "false_per_entity_day", "alerts_per_hour"):
        assert key in base
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in ("baseline-vehicle.dwell.png", "strict-worksite.resumption.png"):
        assert name in page
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

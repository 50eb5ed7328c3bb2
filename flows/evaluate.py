"""Evaluating models: simulated or recorded data through the real city flow, scored against
labels.

:func:`run_dataset` takes a :class:`Dataset` (a :class:`simulators.Simulation`, or recorded
files as :class:`simulators.recorded.Recorded`), writes its reference data where the flow
loads it from, and runs ``flows.run.build_city_flow`` (every registered model, the alert engine, the
incident correlator, the Redis sink) in this process at full speed under a private key prefix;
the alerts are read back from the ``alerts`` stream, exactly what the console would get, and
the prefix is deleted. Nothing is reimplemented: a change to a model, the engine or the flow
shows up here. :func:`run_scenario` simulates a scenario and runs it so.

:class:`EvalConfig` is one configuration to evaluate (``--compare CONFIG`` loads a second
one from TOML)::

    name = "wider dwell radius"
    [flow]                      # flows.city.FlowConfig fields
    tick_ms = 30000
    [settings]                  # citywatch.settings.Settings fields
    lateness_s = 300
    [models."vehicle.dwell"]    # constructor keywords of the model named so...
    radius_m = 150.0
    [models."air"]              # ...or fields of its config dataclass (nested tables nest)
    qc = { spike_z = 6.0 }

:func:`summarize` pools the per-seed :class:`simulators.scoring.ScoreReport` into per-rule
precision, recall, F1, delay quantiles, false alerts per entity-day and alerts per hour
(precision is None without alerts, recall None without labels: ``simulators.scoring.scores``).
"""

from __future__ import annotations

import dataclasses
import inspect
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

import flows.registry
from citywatch.alerts import Alert
from citywatch.errors import ConfigError
from citywatch.events import Event
from citywatch.registry import Registry
from citywatch.settings import Settings, read_toml
from flows.registry import Registration
from flows.run import RunOptions, build_city_flow
from flows.sources.iterable import IterableSource
from models.base import Model
from simulators import simulate
from simulators.labels import Label
from simulators.scoring import DEFAULT_TOLERANCE_MS, ScoreReport, quantile, score, scores

__all__ = [
    "Dataset",
    "EvalConfig",
    "RuleSummary",
    "ScenarioRun",
    "apply_overrides",
    "registered",
    "run_dataset",
    "run_scenario",
    "summarize",
]


class Dataset(Protocol):
    """What evaluation needs of its data (a ``Simulation`` or a ``Recorded`` has it)."""

    labels: list[Label]
    start_ms: int
    end_ms: int

    @property
    def registry(self) -> Registry: ...

    def records(self) -> Iterator[bytes]: ...

    def events(self) -> Iterator[Event]: ...

    def entity_days(self) -> dict[str, float]: ...


_TOP_KEYS = frozenset({"name", "flow", "settings", "models"})


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """Overrides of the flow, the settings and the models for one evaluated configuration."""

    name: str = "baseline"
    flow: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> EvalConfig:
        p = Path(path)
        data = read_toml(p, "compare")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            msg = (
                f"compare: {p}: unknown key(s) {', '.join(unknown)} (expected {sorted(_TOP_KEYS)})"
            )
            raise ConfigError(msg)
        cfg = cls(
            name=str(data.get("name", p.stem)),
            flow=dict(data.get("flow", {})),
            settings=dict(data.get("settings", {})),
            models={str(k): dict(v) for k, v in data.get("models", {}).items()},
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        """Fail early, naming the key, on overrides the flow or settings do not have."""
        from flows.city import FlowConfig

        flow_fields = {f.name for f in dataclasses.fields(FlowConfig)}
        bad = sorted(set(self.flow) - flow_fields)
        if bad:
            msg = f"compare: [flow] has no field(s) {', '.join(bad)}"
            raise ConfigError(msg)
        settings_fields = {f.name for f in dataclasses.fields(Settings)}
        bad = sorted(set(self.settings) - settings_fields)
        if bad:
            msg = f"compare: [settings] has no field(s) {', '.join(bad)}"
            raise ConfigError(msg)


def _merge(current: Any, value: Any, where: str) -> Any:
    """``value`` over ``current``; a table over a dataclass replaces only the named fields."""
    if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
        names = {f.name for f in dataclasses.fields(current)}
        bad = sorted(set(value) - names)
        if bad:
            msg = f"{where}: {type(current).__name__} has no field(s) {', '.join(bad)}"
            raise ConfigError(msg)
        changes = {k: _merge(getattr(current, k), v, f"{where}.{k}") for k, v in value.items()}
        return dataclasses.replace(current, **changes)  # type: ignore[type-var]
    return value


def apply_overrides(model: Model, registry: Registry, overrides: Mapping[str, Any]) -> Model:
    """A new instance of ``model``'s class with ``overrides`` applied.

    A key is a constructor keyword (``radius_m``) or a field of the model's config dataclass
    (its ``config``/``cfg``); tables merge into dataclass values. The reference data goes to
    the constructor's first parameter when that is ``registry``/``sites``.
    """
    if not overrides:
        return model
    cls = type(model)
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    kwargs: dict[str, Any] = {}
    cfg_changes: dict[str, Any] = {}
    where = f"models.{cls.name!r}"
    for k, v in overrides.items():
        if k in params:
            kwargs[k] = _merge(getattr(model, k, None), v, f"{where}.{k}")
        else:
            cfg_changes[k] = v
    if cfg_changes:
        cfg_param = next((n for n in ("config", "cfg") if n in params), None)
        current = getattr(model, "config", None) or getattr(model, "cfg", None)
        if cfg_param is None or not dataclasses.is_dataclass(current):
            msg = f"{where}: no parameter or config field {', '.join(sorted(cfg_changes))}"
            raise ConfigError(msg)
        kwargs[cfg_param] = _merge(current, cfg_changes, where)
    args: list[Any] = []
    first = next(iter(params.values()), None)
    if first is not None and first.name in ("registry", "sites") and first.name not in kwargs:
        args.append(registry)
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        msg = f"{where}: {exc}"
        raise ConfigError(msg) from exc


def _with_overrides(
    reg: Registration, by_name: Mapping[str, Mapping[str, Any]], used: set[str]
) -> Registration:
    def factory(registry: Registry, settings: Settings) -> Model:
        model = reg.factory(registry, settings)
        overrides = by_name.get(model.name)
        if overrides is None:
            return model
        used.add(model.name)
        return apply_overrides(model, registry, overrides)

    return Registration(reg.domain, factory)


def registered(
    config: EvalConfig, extra: Sequence[Registration] = ()
) -> tuple[tuple[Registration, ...], set[str]]:
    """``flows.registry.MODELS`` plus ``extra``, with ``config.models`` applied.

    Returns the registrations for ``build_city_flow`` and the set of model names whose
    overrides were applied (filled as the flow builds its models). Nothing global changes.
    """
    used: set[str] = set()
    regs = tuple(_with_overrides(r, config.models, used) for r in (*flows.registry.MODELS, *extra))
    return regs, used


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """One dataset (a scenario's seed, or recorded files) through the flow: the data and
    every alert version. ``seed`` is None for recorded data."""

    scenario: str
    seed: int | None
    sim: Dataset
    alerts: list[Alert]
    records: int
    wall_s: float

    @property
    def hours(self) -> float:
        return (self.sim.end_ms - self.sim.start_ms) / 3_600_000

    def score(
        self, rules: Sequence[str] | None = None, tolerance_ms: int = DEFAULT_TOLERANCE_MS
    ) -> ScoreReport:
        return score(
            self.alerts,
            self.sim.labels,
            rules=rules,
            entity_days=self.sim.entity_days(),
            tolerance_ms=tolerance_ms,
        )


def _read_alerts(client: redis.Redis, stream: str) -> list[Alert]:
    out: list[Alert] = []
    start = "-"
    while True:
        page: Any = client.xrange(stream, min=start, count=10_000)
        if not page:
            return out
        out += [Alert.from_json(f[b"a"]) for _, f in page]
        last = page[-1][0].decode()
        ms, seq = last.split("-")
        start = f"{ms}-{int(seq) + 1}"


def run_scenario(
    scenario: str,
    seed: int,
    *,
    url: str,
    settings: Settings,
    config: EvalConfig | None = None,
    scale: float | None = None,
    duration_s: int | None = None,
    extra: Sequence[Registration] = (),
) -> ScenarioRun:
    """Simulate ``scenario``/``seed`` and run it through the real city flow (see module doc)."""
    sim = simulate(scenario, seed=seed, scale=scale, duration_s=duration_s)
    return run_dataset(sim, scenario, seed, url=url, settings=settings, config=config, extra=extra)


def run_dataset(
    data: Dataset,
    name: str,
    seed: int | None = None,
    *,
    url: str,
    settings: Settings,
    config: EvalConfig | None = None,
    extra: Sequence[Registration] = (),
) -> ScenarioRun:
    """Run ``data`` through the real city flow in this process (see the module doc)."""
    from bytewax.testing import run_main

    cfg = config or EvalConfig()
    prefix = f"{settings.prefix}eval:{uuid.uuid4().hex[:10]}:"
    s = settings.with_(
        **{**dict(cfg.settings), "prefix": prefix, "alerts_maxlen": 50_000_000, "redis_url": url}
    )
    count = [0]

    def records() -> Iterator[bytes]:
        for r in data.records():
            count[0] += 1
            yield r

    client = redis.Redis.from_url(url)
    try:
        with tempfile.TemporaryDirectory(prefix="citywatch-eval-") as tmp:
            data.registry.dump(Path(tmp))
            opts = RunOptions(
                source="files",
                registry_dir=tmp,
                speed=None,
                run_id=f"eval-{name}-{seed}",
                flow=dict(cfg.flow),
            )
            raw = IterableSource(records, name="sim")
            regs, used = registered(cfg, extra)
            flow = build_city_flow(opts, s, url, raw=raw, registrations=regs)
            unknown = sorted(set(cfg.models) - used)
            if unknown:
                msg = f"compare: [models] names no registered model: {', '.join(unknown)}"
                raise ConfigError(msg)
            t0 = time.perf_counter()
            run_main(flow)  # type: ignore[no-untyped-call]
            wall = time.perf_counter() - t0
        alerts = _read_alerts(client, s.keys.alerts)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    return ScenarioRun(name, seed, data, alerts, count[0], wall)


@dataclass(frozen=True, slots=True)
class RuleSummary:
    """One rule pooled over seeds (micro-averaged: counts summed, then the ratios)."""

    rule: str
    labels: int
    alerts: int
    detected: int
    true_alerts: int
    #: None when undefined: no alert (precision), no label (recall), neither (F1)
    precision: float | None
    recall: float | None
    f1: float | None
    delays_ms: tuple[int, ...]
    false_alerts: int
    false_per_entity_day: float | None
    alerts_per_hour: float

    def delay_quantile_s(self, q: float) -> float | None:
        ms = quantile(self.delays_ms, q)
        return None if ms is None else ms / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "labels": self.labels,
            "alerts": self.alerts,
            "detected": self.detected,
            "true_alerts": self.true_alerts,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "delay_s": {
                "min": self.delay_quantile_s(0.0),
                "p50": self.delay_quantile_s(0.5),
                "p90": self.delay_quantile_s(0.9),
                "max": self.delay_quantile_s(1.0),
                "all": [d / 1000.0 for d in self.delays_ms],
            },
            "false_alerts": self.false_alerts,
            "false_per_entity_day": self.false_per_entity_day,
            "alerts_per_hour": self.alerts_per_hour,
        }


def summarize(
    runs: Sequence[ScenarioRun],
    rules: Sequence[str] | None = None,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> list[RuleSummary]:
    """Per-rule summaries pooled over ``runs`` (one per seed), rules sorted by name."""
    reports = [(r, r.score(rules, tolerance_ms)) for r in runs]
    names = sorted({name for _, rep in reports for name in rep.rules})
    hours = sum(r.hours for r in runs)
    out = []
    for name in names:
        labels = alerts = detected = true_alerts = false = 0
        delays: list[int] = []
        ed = 0.0
        for run, rep in reports:
            rs = rep.rules.get(name)
            if rs is None:
                continue
            labels += rs.labels
            alerts += rs.alerts
            detected += rs.detected
            true_alerts += rs.true_alerts
            false += rs.false_alerts
            delays += rs.delays_ms
            ed += run.sim.entity_days().get(name, 0.0)
        p, r, f = scores(true_alerts, alerts, detected, labels)
        out.append(
            RuleSummary(
                rule=name,
                labels=labels,
                alerts=alerts,
                detected=detected,
                true_alerts=true_alerts,
                precision=p,
                recall=r,
                f1=f,
                delays_ms=tuple(sorted(delays)),
                false_alerts=false,
                false_per_entity_day=false / ed if ed else None,
                alerts_per_hour=alerts / hours if hours else 0.0,
            )
        )
    return out

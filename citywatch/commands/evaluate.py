"""``citywatch evaluate``: scenarios or recorded data through the real city flow, scored
against their labels.

Examples::

    citywatch evaluate --scenario demo --seeds 1-5
    citywatch evaluate --scenario hazmat --seeds 1-3 --rules vehicle.dwell
    citywatch evaluate --scenario city-day --seeds 1,2 --compare wider.toml --out var/eval/ab
    citywatch evaluate --events var/real/faulty.jsonl.gz --labels var/real/faulty.labels.jsonl \
        --registry var/real/registry.jsonl

With ``--events`` the recorded files (time-ordered JSON Lines, gzip or not: what
``citywatch import`` and ``citywatch inject`` write) are the data, ``--labels`` their ground
truth (the schema in ``docs/evaluation.md``; none: every alert counts as false) and
``--registry`` their reference data (default: a ``registry.jsonl`` or ``registry/`` next to
the first file). Otherwise each seed of ``--scenario`` is simulated. Either way the data runs
through ``flows.run.build_city_flow`` (every registered model,
the alert engine, the correlator, the Redis sink under a private prefix of ``REDIS_URL`` or an
embedded Redis), then scored with ``simulators.scoring``. Per rule: precision, recall, F1,
detection delay (p50/p90, seconds after the label starts), false alerts per entity-day and
alerts per hour, pooled over the seeds ("-" where undefined: precision without alerts, recall
without labels). Printed as a table and saved in ``--out`` (default ``var/eval/<scenario>``, or
``var/eval/<name>`` for recorded data) as ``results.json`` and ``index.html`` with one PNG per
rule and
configuration: the rule's input series for a few subjects (PM2.5 for air rules, speed for
dwell, site activity for resumption) with the labelled windows shaded and the alerts marked,
and a timeline of every labelled or alerted subject. ``--compare CONFIG`` (TOML, see
``flows/evaluate.py``) runs a second configuration and shows both side by side.
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.evaluate import Dataset, EvalConfig, RuleSummary, ScenarioRun

from citywatch.cli_options import parse_seeds

__all__ = ["add_arguments", "parse_seeds", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from citywatch.cli_options import parse_duration

    p.add_argument("--scenario", help="simulator scenario (default: demo)")
    p.add_argument("--seeds", type=parse_seeds, help="e.g. 1-5 or 1,3 (default 1)")
    p.add_argument(
        "--events",
        nargs="+",
        metavar="FILE",
        help="recorded JSONL(.gz) files instead of a scenario",
    )
    p.add_argument("--labels", metavar="FILE", help="ground truth of --events (labels JSONL)")
    p.add_argument("--registry", metavar="PATH", help="reference data of --events (dir or file)")
    p.add_argument("--name", help="name of the --events data in the output (default: file stem)")
    p.add_argument("--rules", nargs="+", metavar="RULE", help="score only these rules")
    p.add_argument("--compare", metavar="CONFIG", help="TOML of flow/model overrides to A/B")
    p.add_argument("--out", type=Path, help="output directory (default var/eval/<name>)")
    p.add_argument("--scale", type=float, help="simulator scale (default: the scenario's)")
    p.add_argument("--duration", type=parse_duration, help="override the scenario's duration")
    p.add_argument(
        "--tolerance",
        type=parse_duration,
        default=300,
        help="an alert this close to a label's window still matches it (default 5m)",
    )
    p.add_argument("--no-plots", action="store_true", help="table and JSON only")


# -- the table ---------------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(rows: Sequence[RuleSummary]) -> str:
    """The per-rule table as fixed-width text ("-": undefined, with a note saying why)."""
    head = (
        f"{'rule':22s} {'labels':>6s} {'alerts':>6s} {'prec':>5s} {'recall':>6s} {'f1':>5s} "
        f"{'delay p50/p90 s':>16s} {'false/ent-day':>13s} {'alerts/h':>8s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        delay = f"{_fmt(r.delay_quantile_s(0.5), '.0f')}/{_fmt(r.delay_quantile_s(0.9), '.0f')}"
        lines.append(
            f"{r.rule:22s} {r.labels:6d} {r.alerts:6d} {_fmt(r.precision):>5s} "
            f"{_fmt(r.recall):>6s} {_fmt(r.f1):>5s} {delay:>16s} "
            f"{_fmt(r.false_per_entity_day, '.4f'):>13s} {r.alerts_per_hour:8.2f}"
        )
    notes = []
    if any(r.alerts == 0 for r in rows):
        notes.append("prec -: 0 alerts (undefined)")
    if any(r.labels == 0 for r in rows):
        notes.append("recall -: 0 labels (undefined)")
    if notes:
        lines.append("(" + "; ".join(notes) + ")")
    return "\n".join(lines)


def compare_table(
    a: Sequence[RuleSummary], b: Sequence[RuleSummary], names: tuple[str, str]
) -> str:
    """F1, false alerts per entity-day and delay of two configurations, rule by rule."""
    ra, rb = {r.rule: r for r in a}, {r.rule: r for r in b}
    head = (
        f"{'rule':22s} {'f1 ' + names[0][:10]:>14s} {'f1 ' + names[1][:10]:>14s} "
        f"{'false/ed A':>10s} {'false/ed B':>10s} {'p50 s A':>8s} {'p50 s B':>8s}"
    )
    lines = [head, "-" * len(head)]
    for rule in sorted(set(ra) | set(rb)):
        x, y = ra.get(rule), rb.get(rule)
        lines.append(
            f"{rule:22s} {_fmt(x.f1 if x else None):>14s} {_fmt(y.f1 if y else None):>14s} "
            f"{_fmt(x.false_per_entity_day if x else None, '.4f'):>10s} "
            f"{_fmt(y.false_per_entity_day if y else None, '.4f'):>10s} "
            f"{_fmt(x.delay_quantile_s(0.5) if x else None, '.0f'):>8s} "
            f"{_fmt(y.delay_quantile_s(0.5) if y else None, '.0f'):>8s}"
        )
    return "\n".join(lines)


# -- the plots ---------------------------------------------------------------------------------

#: rule -> (event kind, subject field, value of an event, axis label)
_SERIES: dict[str, tuple[str, str, Callable[[Any], float | None], str]] = {
    **{
        r: ("air", "station", lambda e: e.pm25, "PM2.5 µg/m³")
        for r in ("air.exceedance", "air.spike", "air.stuck", "air.range", "air.drift")
    },
    "vehicle.dwell": ("gps", "vehicle", lambda e: e.speed_kmh, "speed km/h"),
    "worksite.resumption": (
        "video",
        "site",
        lambda e: (e.persons or 0) + 4 * (e.machinery or 0),
        "persons + 4 x machinery",
    ),
}
_MAX_SERIES = 3
_MAX_TIMELINE = 30


def _subjects(rule: str, run: ScenarioRun) -> tuple[list[str], dict[str, list[Any]], list[Any]]:
    labels = [x for x in run.sim.labels if x.rule == rule]
    alerts: dict[str, list[Any]] = {}
    for a in run.alerts:
        if a.rule == rule:
            alerts.setdefault(a.subject.id, []).append(a)
    order = [x.subject_id for x in labels] + sorted(alerts)
    seen: list[str] = []
    for s in order:
        if s not in seen:
            seen.append(s)
    return seen, alerts, labels


def _spans(alerts: list[Any]) -> list[tuple[int, int]]:
    """Each alert id's event-time span over its versions."""
    by_id: dict[str, tuple[int, int]] = {}
    for a in alerts:
        lo, hi = by_id.get(a.id, (a.first_ts, a.last_ts))
        by_id[a.id] = (min(lo, a.first_ts), max(hi, a.last_ts))
    return sorted(by_id.values())


def collect_series(
    run: ScenarioRun, wanted: dict[str, list[str]]
) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """For each rule in ``wanted`` (rule -> subjects), the subjects' series: one pass over the
    events. Video counts of a site's cameras add up per minute; other kinds keep the reading.
    """
    per: dict[str, dict[str, dict[int, float]]] = {}
    by_kind: dict[str, list[tuple[str, str, Callable[[Any], float | None]]]] = {}
    for rule, subjects in wanted.items():
        spec = _SERIES.get(rule)
        if spec is None or not subjects:
            continue
        per[rule] = {s: {} for s in subjects}
        by_kind.setdefault(spec[0], []).append((rule, spec[1], spec[2]))
    if by_kind:
        for e in run.sim.events():
            for rule, field, value in by_kind.get(e.kind, ()):
                d = per[rule].get(getattr(e, field, None))  # type: ignore[arg-type]
                if d is None:
                    continue
                v = value(e)
                if v is None:
                    continue
                minute = e.ts // 60_000 * 60_000
                d[minute] = d.get(minute, 0.0) + float(v) if e.kind == "video" else float(v)
    t0 = run.sim.start_ms
    return {
        rule: {
            s: ([(t - t0) / 3_600_000 for t in sorted(d)], [d[t] for t in sorted(d)])
            for s, d in subj.items()
        }
        for rule, subj in per.items()
    }


#: CJK fonts matplotlib may find, best first (district names and some ids are Chinese).
_CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei")


def cjk_font() -> str | None:
    """The first installed CJK font matplotlib can use, or None."""
    from matplotlib import font_manager

    for name in _CJK_FONTS:
        try:
            font_manager.findfont(name, fallback_to_default=False)
        except ValueError:
            continue
        return name
    return None


def plot_text(run: ScenarioRun, cjk: bool) -> Callable[[str], str]:
    """How a text shows in a plot: itself with a CJK font; without one, a Chinese district
    name becomes its code (``320602``) and any other non-Latin text is escaped (``\\u5d07``),
    never empty boxes."""
    if cjk:
        return lambda t: t
    codes = {d.name: d.code for d in run.sim.registry.districts if d.code}

    def text(t: str) -> str:
        if all(ord(c) < 0x2E80 for c in t):
            return t
        if t in codes:
            return f"district {codes[t]}"
        return t.encode("ascii", "backslashreplace").decode()

    return text


def plot_rules(
    rules: Sequence[str], run: ScenarioRun, out: Path, stem: str, titles: dict[str, str]
) -> dict[str, str]:
    """One PNG per rule (``{stem}-{rule}.png`` in ``out``); returns rule -> file name."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    font = cjk_font()
    if font is None:
        print(
            "evaluate: no CJK font installed (e.g. apt install fonts-noto-cjk): Chinese names "
            "in the plots are shown as codes",
            file=sys.stderr,
        )
    matplotlib.rcParams["font.sans-serif"] = [*([font] if font else []), "DejaVu Sans"]
    text = plot_text(run, font is not None)
    wanted = {r: _subjects(r, run)[0][:_MAX_SERIES] for r in rules}
    series = collect_series(run, wanted)
    files = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        warnings.filterwarnings("ignore", message="findfont")
        for rule in rules:
            name = f"{stem}-{rule}.png"
            title = text(titles.get(rule, rule))
            plot_rule(rule, run, out / name, title, series.get(rule, {}), text)
            files[rule] = name
    return files


def plot_rule(
    rule: str,
    run: ScenarioRun,
    path: Path,
    title: str,
    series: dict[str, tuple[list[float], list[float]]],
    text: Callable[[str], str] = str,
) -> None:
    """One PNG: the rule's series for a few subjects, then the timeline of all of them.
    The time axis is in hours since the start, in days when the data spans over 3 days."""
    import matplotlib.pyplot as plt

    subjects, alerts, labels = _subjects(rule, run)
    t0 = run.sim.start_ms
    in_days = run.hours > 72
    unit = 24.0 if in_days else 1.0

    def h(ms: int) -> float:
        return (ms - t0) / 3_600_000 / unit

    spec = _SERIES.get(rule)
    shown = subjects[:_MAX_SERIES] if spec else []
    timeline = subjects[:_MAX_TIMELINE]
    rows = len(shown) + 1
    heights = [2.0] * len(shown) + [max(1.2, 0.28 * len(timeline) + 0.6)]
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(10, sum(heights) + 0.6),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, subj in zip(axes[:, 0], shown, strict=False):
        xs, ys = series.get(subj, ([], []))
        ax.plot([x / unit for x in xs], ys, lw=0.8, color="#345")
        for lab in labels:
            if subj in lab.subject_ids:
                ax.axvspan(h(lab.start_ms), h(lab.end_ms), color="#f4b400", alpha=0.3, lw=0)
        for lo, _hi in _spans(alerts.get(subj, [])):
            ax.axvline(h(lo), color="#d33", lw=1.2)
        ax.set_ylabel(spec[3] if spec else "", fontsize=7)
        ax.set_title(text(subj), fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    ax = axes[-1, 0]
    for i, subj in enumerate(timeline):
        for lab in labels:
            if subj in lab.subject_ids:
                ax.broken_barh(
                    [(h(lab.start_ms), max(h(lab.end_ms) - h(lab.start_ms), 0.01))],
                    (i - 0.4, 0.8),
                    color="#f4b400",
                    alpha=0.5,
                )
        for lo, hi in _spans(alerts.get(subj, [])):
            ax.plot([h(lo), max(h(hi), h(lo) + 0.01)], [i, i], color="#d33", lw=2.5)
            ax.plot([h(lo)], [i], marker="v", color="#d33", ms=5)
    ax.set_yticks(range(len(timeline)), [text(t) for t in timeline], fontsize=6)
    ax.set_ylim(-1, max(len(timeline), 1))
    ax.invert_yaxis()
    since = "days" if in_days else "hours"
    ax.set_xlabel(f"{since} since the start (shaded: labelled windows, red: alerts)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the page ----------------------------------------------------------------------------------


def _html_table(rows: Sequence[RuleSummary]) -> str:
    cells = [
        "<tr><th>rule</th><th>labels</th><th>alerts</th><th>precision</th><th>recall</th>"
        "<th>F1</th><th>delay p50 s</th><th>delay p90 s</th><th>false / entity-day</th>"
        "<th>alerts / h</th></tr>"
    ]
    for r in rows:
        vals = [
            r.rule,
            str(r.labels),
            str(r.alerts),
            _fmt(r.precision),
            _fmt(r.recall),
            _fmt(r.f1),
            _fmt(r.delay_quantile_s(0.5), ".0f"),
            _fmt(r.delay_quantile_s(0.9), ".0f"),
            _fmt(r.false_per_entity_day, ".4f"),
            f"{r.alerts_per_hour:.2f}",
        ]
        cells.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in vals) + "</tr>")
    return "<table>" + "".join(cells) + "</table>"


def write_html(
    out: Path,
    scenario: str,
    seeds: list[int] | None,
    results: list[tuple[EvalConfig, list[RuleSummary]]],
    plots: dict[str, list[str]],
    note: str = "",
) -> Path:
    cols = "".join(
        f"<div class='col'><h2>{html.escape(cfg.name)}</h2>{_html_table(rows)}</div>"
        for cfg, rows in results
    )
    if seeds is None:
        heading = f"{scenario} (recorded)"
        about = "The recorded data ran through the real city flow. Shaded = labelled windows, "
        about += "red = alerts."
    else:
        heading = f"{scenario}, seeds {seeds}"
        about = "Every seed ran through the real city flow; metrics are pooled over the seeds. "
        about += "Plots show the first seed: shaded = labelled windows, red = alerts."
    figs = []
    for rule, files in sorted(plots.items()):
        imgs = "".join(f"<img src='{html.escape(f)}' alt='{html.escape(rule)}'>" for f in files)
        figs.append(f"<h3>{html.escape(rule)}</h3><div class='row'>{imgs}</div>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>citywatch evaluate: {html.escape(scenario)}</title>
<style>body{{font:13px system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child{{text-align:left}}
.row,.cols{{display:flex;gap:1em;flex-wrap:wrap}}img{{max-width:49%;border:1px solid #ddd}}
</style></head><body><h1>{html.escape(heading)}</h1>
<p>{html.escape(about)} "-": undefined (precision without alerts, recall without labels).
{html.escape(note)}</p>
<div class="cols">{cols}</div>{"".join(figs)}</body></html>"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


# -- the command -------------------------------------------------------------------------------


def _recorded(args: argparse.Namespace) -> tuple[str, Dataset]:
    """The ``--events`` data, its registry and labels; usage errors name the option."""
    from citywatch.commands.replay import default_registry
    from citywatch.errors import InputError
    from citywatch.registry import Registry
    from simulators.labels import read_labels
    from simulators.recorded import Recorded

    misplaced = [
        opt
        for opt, value in (
            ("--scenario", args.scenario),
            ("--seeds", args.seeds),
            ("--scale", args.scale),
            ("--duration", args.duration),
        )
        if value is not None
    ]
    if misplaced:
        msg = f"{', '.join(misplaced)} apply to simulated scenarios, not to --events"
        raise InputError(msg)
    registry_path = args.registry or default_registry(args.events)
    if registry_path is None:
        msg = (
            f"--registry PATH is needed: no registry.jsonl or registry/ next to {args.events[0]} "
            "(citywatch import writes one)"
        )
        raise InputError(msg)
    registry = Registry.load(registry_path)
    labels = read_labels(args.labels) if args.labels else []
    first = Path(args.events[0])
    stem = first.name.split(".")[0]
    # what import and inject write is events.jsonl.gz in a folder named after the data
    generic = stem == "events" or stem.startswith("part-")
    name = args.name or (first.resolve().parent.name if generic else stem)
    return name, Recorded(args.events, registry, labels, name=name)


def run(args: argparse.Namespace) -> int:
    import orjson

    from citywatch.errors import InputError
    from citywatch.redisconn import embedded_or_url
    from citywatch.settings import Settings
    from flows.evaluate import EvalConfig, run_dataset, run_scenario, summarize
    from simulators import SCENARIOS

    recorded: tuple[str, Dataset] | None = None
    if args.events:
        recorded = _recorded(args)
        name = recorded[0]
        seeds: list[int] | None = None
    else:
        for opt in ("labels", "registry", "name"):
            if getattr(args, opt) is not None:
                msg = f"--{opt} applies to --events (recorded data), not to a scenario"
                raise InputError(msg)
        name = args.scenario or "demo"
        seeds = args.seeds or [1]
        if name not in SCENARIOS:
            msg = f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})"
            raise InputError(msg)
    settings = Settings.load(args.config)
    configs = [EvalConfig()]
    if args.compare:
        configs.append(EvalConfig.load(args.compare))
        if configs[1].name == configs[0].name:
            configs[1] = EvalConfig(
                f"{configs[1].name}-b", configs[1].flow, configs[1].settings, configs[1].models
            )
    tolerance_ms = int(args.tolerance * 1000)
    out: Path = args.out or settings.data_dir / "eval" / name
    out.mkdir(parents=True, exist_ok=True)
    results: list[tuple[EvalConfig, list[RuleSummary]]] = []
    first_runs: list[ScenarioRun] = []
    doc: dict[str, Any] = {"scenario": name, "seeds": seeds, "configs": []}
    if recorded is not None:
        data = recorded[1]
        doc.update(
            events=[str(p) for p in args.events],
            labels=args.labels,
            registry=str(args.registry or ""),
            tolerance_s=args.tolerance,
        )
        if getattr(data, "sorted_in_memory", False):
            print("evaluate: the events are not in time order: sorted in memory", file=sys.stderr)
    with embedded_or_url(settings.redis_url, retries=settings.redis_retries) as url:

        def one(cfg: EvalConfig, seed: int | None) -> ScenarioRun:
            if recorded is not None:
                return run_dataset(recorded[1], name, url=url, settings=settings, config=cfg)
            try:
                return run_scenario(
                    name,
                    seed or 0,
                    url=url,
                    settings=settings,
                    config=cfg,
                    scale=args.scale,
                    duration_s=args.duration,
                )
            except ValueError as exc:  # bad --scale, --duration, ...
                raise InputError(str(exc)) from exc

        for cfg in configs:
            runs = []
            for seed in list(seeds) if seeds is not None else [None]:
                t0 = time.perf_counter()
                r = one(cfg, seed)
                what = f"seed {seed}" if seed is not None else "recorded"
                print(
                    f"evaluate: {cfg.name} {name} {what}: {r.records:,} records, "
                    f"{len({a.id for a in r.alerts})} alerts in {time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                )
                runs.append(r)
            rows = summarize(runs, args.rules, tolerance_ms)
            results.append((cfg, rows))
            first_runs.append(runs[0])
            doc["configs"].append(
                {
                    "name": cfg.name,
                    "flow": dict(cfg.flow),
                    "settings": dict(cfg.settings),
                    "models": {k: dict(v) for k, v in cfg.models.items()},
                    "rules": [r.to_dict() for r in rows],
                    "runs": [
                        {
                            "seed": r.seed,
                            "records": r.records,
                            "alerts": len({a.id for a in r.alerts}),
                            "hours": r.hours,
                            "flow_wall_s": r.wall_s,
                        }
                        for r in runs
                    ],
                }
            )
    what = f"seeds {seeds}" if seeds is not None else "recorded"
    for cfg, rows in results:
        print(f"\n{cfg.name}: {name}, {what}")
        print(table(rows))
    if len(results) == 2:
        print()
        print(compare_table(results[0][1], results[1][1], (results[0][0].name, results[1][0].name)))
    (out / "results.json").write_bytes(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    plots: dict[str, list[str]] = {}
    note = ""
    if not args.no_plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            note = "No plots: matplotlib is not installed (pip install matplotlib)."
            print(f"evaluate: {note[0].lower()}{note[1:]}", file=sys.stderr)
        else:
            for (cfg, rows), r in zip(results, first_runs, strict=True):
                where = f"seed {r.seed}" if r.seed is not None else "recorded"
                titles = {
                    row.rule: f"{row.rule} — {cfg.name}, {where}: P {_fmt(row.precision)} "
                    f"R {_fmt(row.recall)} F1 {_fmt(row.f1)}"
                    for row in rows
                }
                made = plot_rules([row.rule for row in rows], r, out, _slug(cfg.name), titles)
                for rule, file in made.items():
                    plots.setdefault(rule, []).append(file)
    page = write_html(out, name, seeds, results, plots, note)
    print(f"\nevaluate: {out / 'results.json'}, {page}", file=sys.stderr)
    return 0


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "config"

"""A simulated week end to end: the real flow, simulated officers, the weekly report.

    python benchmarks/report_week.py [--seeds 1] [--scale 0.0005] [--out var/report-week]

For each seed: ``citywatch run --scenario city-week --speed max`` (every model, the alert
engine, the Redis sink; in this process, on an embedded Redis or ``REDIS_URL`` under a
fresh prefix), then the officers simulator on every alert through the feed's real state
machine (``citywatch officers``), then the week's report with figures
(``citywatch report --period week --out``), timed separately. The report of the last seed
stays in ``--out`` to look at.

Last line: ``{"records": ..., "alerts": ..., "audit_events": ..., "flow_s": ...,
"officers_s": ..., "report_s": ..., "sections_with_content": ..., "figures": ...,
"html_bytes": ...}`` (totals over the seeds; ``sections_with_content`` the least of any
seed, out of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import orjson
import redis

from citywatch.cli_options import parse_seeds
from citywatch.redisconn import embedded_or_url
from citywatch.settings import Settings
from flows.run import RunOptions, run_city
from simulators.officers import Officers, simulate_officers

ROOT = Path(__file__).resolve().parents[1]


def one(url: str, seed: int, scale: float, out: Path) -> dict[str, float]:
    from citywatch.commands.officers import apply_actions
    from flows.reports import report_registry
    from sinks.reports import build_report, write_report
    from sinks.reports.source import load_alerts

    settings = Settings.load().with_(redis_url=url, prefix=f"bench-report:{uuid.uuid4().hex[:8]}:")
    client = redis.Redis.from_url(url)
    try:
        t0 = time.perf_counter()
        opts = RunOptions(source="sim", scenario="city-week", seed=seed, scale=scale, speed=None)
        assert run_city(settings, opts) == 0
        t1 = time.perf_counter()
        alerts, _ = load_alerts(client, settings.keys)
        until = int(client.hget(settings.keys.counts, "watermark_ms") or 0)
        office = Officers(
            signoff_deadline_s=settings.signoff_deadline_s,
            handling_deadline_s=settings.handling_deadline_s,
        )
        actions = simulate_officers(alerts, seed=seed, until_ms=until, officers=office)
        asyncio.run(apply_actions(settings, actions, until_ms=until))
        t2 = time.perf_counter()
        registry, _ = report_registry(settings, None)
        report = build_report(
            client, settings.keys, kind="week", registry=registry, simulated_outlines=True
        )
        page = write_report(report, out)
        t3 = time.perf_counter()
        records = int(client.hget(settings.keys.counts, "records") or 0)
        audit = int(client.xlen(settings.keys.audit))
        for key in client.scan_iter(match=f"{settings.prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()
    row = {
        "records": records,
        "alerts": len(alerts),
        "audit_events": audit,
        "flow_s": round(t1 - t0, 1),
        "officers_s": round(t2 - t1, 1),
        "report_s": round(t3 - t2, 1),
        "sections_with_content": sum(s.has_content for s in report.sections),
        "figures": sum(len(s.figures) for s in report.sections),
        "html_bytes": page.stat().st_size,
    }
    print(f"seed {seed}: {row}", file=sys.stderr, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1", help="e.g. 1, 1-3, 1,4")
    p.add_argument("--scale", type=float, default=0.0005)
    p.add_argument("--out", type=Path, default=ROOT / "var" / "report-week")
    args = p.parse_args()
    rows = []
    with embedded_or_url(Settings.load().redis_url) as url:
        for seed in parse_seeds(args.seeds):
            rows.append(one(url, seed, args.scale, args.out))
    total = {k: round(sum(r[k] for r in rows), 1) for k in rows[0]}
    total["sections_with_content"] = min(r["sections_with_content"] for r in rows)
    print(orjson.dumps(total).decode())


if __name__ == "__main__":
    main()

"""The report as a short plain-text summary (``citywatch report --period ...`` without --out)."""

from __future__ import annotations

from sinks.reports.content import Report, change, fmt

__all__ = ["summary"]


def summary(report: Report) -> str:
    p, q = report.period, report.previous
    lines = [f"{report.title} {p.label} (compared with {q.label})"]
    if report.as_of_ms < p.end_ms:
        lines.append(f"  (period not over: data up to {p.local_time(report.as_of_ms)})")
    if not report.meta.get("previous_has_data", True):
        lines.append("  (the previous period has no data at all: its zeros mean no data)")
    for s in report.sections:
        lines.append(f"== {s.title} / {s.topic}")
        for n in s.notices:
            lines.append(f"  ! {n}")
        for st in s.stats:
            cur, prev = fmt(st.current, st.kind), fmt(st.previous, st.kind)
            lines.append(
                f"  {st.label}: {cur}  (上期 {prev}, {change(st.current, st.previous, st.kind)})"
            )
        for h in s.highlights:
            lines.append(f"  * {h}")
    lines.append("Each figure is defined in docs/reports.md; --out DIR writes the full report.")
    return "\n".join(lines) + "\n"

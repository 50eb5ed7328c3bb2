"""``citywatch report`` scores the hotline model's routing suggestions against dispatches."""

from __future__ import annotations

from citywatch.commands.report import format_report, routing_accuracy

DAY = 86_400_000
T0 = 1_793_548_800_000  # 2026-11-02 00:00 Beijing


def _ev(aid: str, ts: int, dept: str, action: str = "dispatch") -> dict[str, object]:
    return {"id": aid, "action": action, "ts_ms": ts, "dept": dept}


def _alert(*depts: str) -> dict[str, object]:
    return {"evidence": {"routing": [{"dept": d, "p": 0.3} for d in depts]}}


def test_first_dispatch_per_alert_is_scored_per_day() -> None:
    alerts = {
        "a": _alert("市水务集团", "市公安局"),
        "b": _alert("市公安局", "市水务集团", "市教育局"),
        "c": _alert("市教育局"),
        "x": {"evidence": {"size": 2}},  # no suggestion: not counted
    }
    events = [
        _ev("a", T0 + 1000, "市水务集团"),
        _ev("a", T0 + 2000, "市公安局"),  # a re-dispatch: the first one is what is scored
        _ev("b", T0 + 3000, "市教育局"),
        _ev("b", T0 + 4000, "", action="sign"),
        _ev("x", T0 + 5000, "市公安局"),
        _ev("c", T0 + DAY + 1000, "市水务集团"),
    ]
    got = routing_accuracy(events, alerts)
    assert got == {
        "2026-11-02": {"dispatched": 2, "top1": 0.5, "top3": 1.0},
        "2026-11-03": {"dispatched": 1, "top1": 0.0, "top3": 0.0},
    }


def test_report_prints_the_routing_table_or_says_there_is_none() -> None:
    from sinks.feed.lifecycle import compute_metrics

    empty = {**compute_metrics([], now_ms=T0), "routing": {}}
    assert "no dispatched alert carried a routing suggestion" in format_report(empty)
    one = dict(empty, routing={"2026-11-02": {"dispatched": 4, "top1": 0.75, "top3": 1.0}})
    assert "2026-11-02  派单 4  top1 75.0%  top3 100.0%" in format_report(one)

"""A simulated fortnight in a real Redis: the week's report renders, every section has
content, the page is self-contained and every number it shows has its note."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from citywatch.cli import main
from citywatch.settings import Settings
from sinks.reports import build_report, write_report
from sinks.reports.notes import NOTES
from tests.sinks.reports.week import WEEK, registry, write_fortnight

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[3] / "docs" / "reports.md"


@pytest.fixture(scope="module")
def fortnight(redis_url: str) -> Iterator[tuple[Settings, dict[str, object]]]:
    """Written once for the module (the slow part), deleted after."""
    from tests.conftest import SESSION_ROOT

    prefix = f"{SESSION_ROOT}:week:"
    settings = Settings.load(env={}).with_(redis_url=redis_url, prefix=prefix)
    written = write_fortnight(settings)
    yield settings, written
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _build(settings: Settings, **kw: object) -> object:
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        return build_report(client, settings.keys, registry=registry(), **kw)  # type: ignore[arg-type]
    finally:
        client.close()


def test_the_officers_week_went_through_the_state_machine(
    fortnight: tuple[Settings, dict[str, object]],
) -> None:
    _, written = fortnight
    done = written["applied"]
    assert done.applied == len(written["actions"])  # type: ignore[attr-defined]
    assert not done.refused  # type: ignore[attr-defined]
    assert done.system > 0  # type: ignore[attr-defined]  # late sign-offs were escalated


def test_week_report_renders_with_content_in_every_section(
    fortnight: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    settings, _ = fortnight
    report = _build(settings, kind="week")  # the period holding the watermark
    assert report.period.start_ms == WEEK  # type: ignore[attr-defined]
    assert report.meta["previous_has_data"] is True  # type: ignore[attr-defined]
    sections = {s.topic: s for s in report.sections}  # type: ignore[attr-defined]
    assert list(sections) == ["air", "hazmat", "worksites", "hotline", "effectiveness"]
    for topic, s in sections.items():
        assert s.has_content, topic
        assert s.figures, topic
        assert s.highlights, topic
        assert not s.notices, (topic, s.notices)
        for st in s.stats:
            assert st.previous is not None or st.key == "unplaced", (topic, st.key)
    page = write_report(report, tmp_path / "out")  # type: ignore[arg-type]
    html = page.read_text(encoding="utf-8")
    # self-contained: no script, no external resource, figures inlined
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert html.count('src="data:image/png;base64,') == sum(
        len(s.figures) for s in sections.values()
    )
    for s in sections.values():
        for f in s.figures:
            png = tmp_path / "out" / f"{f.key}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every note link lands on a note, every note shown is defined
    refs = set(re.findall(r'href="#note-([a-z_]+)"', html))
    shown = set(re.findall(r'<li id="note-([a-z_]+)"', html))
    assert refs
    assert refs == shown
    assert shown <= set(NOTES)
    data = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert data["sections"]["hazmat"]["stats"]["dwell_alerts"]["current"] == 8
    assert data["sections"]["hotline"]["stats"]["tickets"] == {
        "label": "工单量",
        "current": 210,
        "previous": 140,
    }


def test_hand_checked_figures_of_the_fortnight(
    fortnight: tuple[Settings, dict[str, object]],
) -> None:
    settings, _ = fortnight
    report = _build(settings, kind="week", figures=False)
    s = {x.topic: x for x in report.sections}  # type: ignore[attr-defined]
    hz = {st.key: (st.current, st.previous) for st in s["hazmat"].stats}
    # this week: 8 dwell alerts over HV00001..HV00005 (3 of them twice); the week before 5
    # (busy 0.6) over 5 vehicles, none twice
    assert hz["dwell_alerts"] == (8, 5)
    assert hz["dwell_vehicles"] == (5, 5)
    assert hz["repeat_vehicles"] == (3, 0)
    ws = {st.key: (st.current, st.previous) for st in s["worksites"].stats}
    assert ws["resumptions"] == (4, 2)
    assert ws["night"] == (2, 1)
    hl = {st.key: (st.current, st.previous) for st in s["hotline"].stats}
    assert hl["tickets"] == (210, 140)
    assert hl["duplicate_clusters"] == (3, 2)
    assert hl["merged_tickets"] == ((2 + 3 + 4), (2 + 3))  # sizes 3, 4, 5 -> 2 + 3 + 4 merged
    air = {st.key: (st.current, st.previous) for st in s["air"].stats}
    assert air["episodes"] == (2, 1)
    assert air["episode_hours"] == (10 + 13, 10)
    assert air["faulty_stations"][0] == 3  # ST00001..ST00003


def test_a_period_without_data_says_so_and_still_renders(
    fortnight: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    settings, _ = fortnight
    report = _build(settings, kind="day", at_ms=WEEK + 20 * 24 * 3_600_000)
    air = report.sections[0]  # type: ignore[attr-defined]
    assert air.topic == "air"
    assert any("无逐小时AQI数据" in n for n in air.notices)
    assert {st.key: st.current for st in air.stats}["aqi_mean"] is None
    assert air.tables[0].rows == []
    assert [s.topic for s in report.sections if s.has_content] == []  # type: ignore[attr-defined]
    html = write_report(report, tmp_path).read_text(encoding="utf-8")  # type: ignore[arg-type]
    assert "本期无" in html
    assert report.meta["previous_has_data"] is False  # type: ignore[attr-defined]
    assert "没有任何数据" in html


def test_every_note_is_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [n for n in NOTES if f"`{n}`" not in text]
    assert not missing, f"docs/reports.md does not explain {missing}"


def test_cli_writes_the_report_and_prints_the_summary(
    fortnight: tuple[Settings, dict[str, object]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _ = fortnight
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))
    assert main(["report", "--period", "week", "--topic", "hotline,hazmat"]) == 0
    out = capsys.readouterr().out
    assert "城市运行分析周报 2026-11-02 ~ 2026-11-08 (compared with 2026-10-26 ~ 2026-11-01)" in out
    assert "工单量: 210  (上期 140, +70 (+50.0%))" in out
    assert "空气质量" not in out
    assert (
        main(["report", "--period", "day", "--at", "2026-11-04", "--out", str(tmp_path / "d")]) == 0
    )
    assert "report: " in capsys.readouterr().out
    assert (tmp_path / "d" / "report.html").is_file()
    assert main(["report", "--period", "week", "--topic", "weather"]) == 2
    assert "--topic: 'weather' is not one of" in capsys.readouterr().err
    assert main(["report", "--period", "week", "--at", "next tuesday"]) == 2
    assert main(["report", "--period", "week", "--out", "/proc/nope"]) == 2

"""The report as one self-contained HTML page (Chinese; figures inlined as data URIs, no
external file, font or script, so it opens offline and can be mailed as is).

Every key figure, table and figure carries superscript links to its notes (口径说明), numbered
in order of first use.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Final

from sinks.reports.content import Report, Section, Stat, change, fmt
from sinks.reports.notes import GENERAL, NOTES

__all__ = ["render"]

_NUMERALS: Final = "一二三四五六七八九十"

_CSS: Final = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",
 "WenQuanYi Micro Hei",sans-serif;margin:0 auto;max-width:1100px;padding:24px;color:#222;
 line-height:1.55}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;border-bottom:2px solid #2f5597;
 padding-bottom:4px;margin-top:36px}h3{font-size:16px;margin:22px 0 6px}
.meta{color:#555;font-size:13px}nav a{margin-right:14px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}
.card{border:1px solid #d6dce8;border-radius:6px;padding:8px 10px;background:#f8fafd}
.card .v{font-size:22px;font-weight:600;color:#2f5597}.card .l{font-size:13px;color:#333}
.card .p{font-size:12px;color:#666}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px;width:100%}
th,td{border:1px solid #d0d0d0;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f8}td.n{text-align:right;white-space:nowrap}
.notice{background:#fff6db;border-left:4px solid #e6b800;padding:6px 10px;margin:8px 0}
figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #e3e3e3}
figcaption{font-size:13px;color:#444}sup a{text-decoration:none;font-size:11px}
.empty{color:#777;font-style:italic}ol.notes li{margin-bottom:4px;font-size:13px}
footer{margin-top:30px;font-size:12px;color:#666}
"""


def _tz(offset_h: float) -> timezone:
    return timezone(timedelta(hours=offset_h))


def _when(ts_ms: int, offset_h: float) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=_tz(offset_h)).strftime("%Y-%m-%d %H:%M")


class _Notes:
    """Note ids -> numbers in order of first use."""

    def __init__(self) -> None:
        self.order: dict[str, int] = {}

    def ref(self, *ids: str) -> str:
        links = []
        for i in ids:
            n = self.order.setdefault(i, len(self.order) + 1)
            links.append(f'<a href="#note-{escape(i)}">[{n}]</a>')
        return f"<sup>{''.join(links)}</sup>" if links else ""


def _numeric(cell: str) -> bool:
    t = cell.replace(",", "").replace("%", "").replace("+", "").replace("-", "", 1)
    t = t.split(" ")[0]
    return (
        t.replace(".", "", 1).isdigit() or cell in ("—",) or cell.endswith(("min", "h", "s", "d"))
    )


def _card(s: Stat, notes: _Notes) -> str:
    prev = fmt(s.previous, s.kind)
    delta = change(s.current, s.previous, s.kind)
    return (
        '<div class="card">'
        f'<div class="l">{escape(s.label)}{notes.ref(s.note)}</div>'
        f'<div class="v">{escape(fmt(s.current, s.kind))}</div>'
        f'<div class="p">上期 {escape(prev)}　变化 {escape(delta)}</div>'
        "</div>"
    )


def _section(num: int, sec: Section, notes: _Notes) -> str:
    out = [f'<section id="{escape(sec.topic)}"><h2>{_NUMERALS[num]}、{escape(sec.title)}</h2>']
    for n in sec.notices:
        out.append(f'<p class="notice">{escape(n)}</p>')
    if sec.stats:
        out.append('<div class="cards">' + "".join(_card(s, notes) for s in sec.stats) + "</div>")
    if sec.highlights:
        out.append("<ul>" + "".join(f"<li>{escape(h)}</li>" for h in sec.highlights) + "</ul>")
    for f in sec.figures:
        data = base64.b64encode(f.png).decode("ascii")
        out.append(
            f'<figure id="fig-{escape(f.key)}"><h3>{escape(f.title)}{notes.ref(*f.notes)}</h3>'
            f'<img alt="{escape(f.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(f.caption)}（{escape(f.key)}.png）</figcaption></figure>"
        )
    for t in sec.tables:
        out.append(f'<h3 id="tab-{escape(t.key)}">{escape(t.title)}{notes.ref(*t.notes)}</h3>')
        if not t.rows:
            out.append(f'<p class="empty">{escape(t.empty)}</p>')
            continue
        head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td class="n">{escape(c)}</td>' if i and _numeric(c) else f"<td>{escape(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in t.rows
        )
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</section>")
    return "\n".join(out)


def render(report: Report) -> str:
    """The whole page."""
    notes = _Notes()
    p, q = report.period, report.previous
    off = p.offset_h
    sections = [_section(i, s, notes) for i, s in enumerate(report.sections)]
    highlights = [h for s in report.sections for h in s.highlights[:1]]
    partial = (
        f'<p class="notice">本期尚未结束：数据截至 {_when(report.as_of_ms, off)}。</p>'
        if report.as_of_ms < p.end_ms
        else ""
    )
    if not report.meta.get("previous_has_data", True):
        partial += (
            f'<p class="notice">上期（{escape(q.label_zh)}）没有任何数据（早于数据起点或系统'
            "未运行）：与上期的比较仅供参考，“上期”的0表示无数据。</p>"
        )
    nav = "".join(f'<a href="#{escape(s.topic)}">{escape(s.title)}</a>' for s in report.sections)
    note_items = "".join(
        f'<li id="note-{escape(i)}" value="{n}">{escape(NOTES.get(i, i))}</li>'
        for i, n in sorted(notes.order.items(), key=lambda kv: kv[1])
    )
    general = "".join(f"<li>{escape(g)}</li>" for g in GENERAL)
    generated = _when(report.generated_ms, off)
    summary = (
        "".join(f"<li>{escape(h)}</li>" for h in highlights) or "<li>本期各专题均无数据。</li>"
    )
    meta = report.meta
    source = escape(
        f"数据来源：Redis {meta.get('redis', '')}（键前缀 {meta.get('prefix', '')}）；"
        f"读取告警 {meta.get('alerts', 0)} 条、审计动作 {meta.get('audit', 0)} 条、"
        f"工单 {meta.get('tickets', 0)} 件、逐小时AQI {meta.get('hourly', 0)} 条；"
        f"无法读取而跳过 {meta.get('unreadable', 0)} 条。登记数据：{meta.get('registry', '无')}。"
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(report.title)} {escape(p.label)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{escape(report.title)}</h1>
<p class="meta">统计周期：{escape(p.label_zh)}（{escape(_when(p.start_ms, off))} 至
{escape(_when(p.end_ms, off))}，UTC{off:+g}）　对比上期：{escape(q.label_zh)}<br>
数据时间：{escape(_when(report.as_of_ms, off))}　生成时间：{escape(generated)}</p>
{partial}<nav>{nav}<a href="#notes">口径说明</a></nav></header>
<section id="summary"><h2>摘要</h2><ul>{summary}</ul></section>
{"".join(sections)}
<section id="notes"><h2>口径说明</h2><ul>{general}</ul><ol class="notes">{note_items}</ol></section>
<footer>{source}</footer>
</body></html>
"""

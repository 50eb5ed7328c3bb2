"""Cues: what a hotline ticket is about, as a small set of tags found by keywords.

Cues serve two consumers. The incident correlator (``models/incidents.py``) joins tickets to
other sources by them (a smell complaint near a PM spike, a night-noise complaint at a
suspended work site). The de-duplicator uses them as a topic signature: two tickets at one
address about *different* problems share the address's characters but not their cues.

The lexicon is deliberately plain data (:data:`LEXICON`): a newcomer adds a synonym in one
place. Matching is substring search on the NFKC-normalised text, so no segmentation is
needed. A cue is dropped when a negation (没有, 无, 不) directly precedes the keyword.

``night`` is set when the text says so (夜间, 凌晨, ...) or, if ``ts`` is given, when the
ticket was filed between 22:00 and 06:00 Beijing time; ``night_noise`` is ``night`` together
with ``noise`` or ``construction``.

>>> sorted(extract_cues("小区旁边化工厂排放刺鼻气味，晚上更严重"))
['chemical', 'night', 'smell']
>>> sorted(extract_cues("工地夜间施工噪音太大"))
['construction', 'night', 'night_noise', 'noise']
>>> sorted(extract_cues("路口没有异味，但是扬尘很大"))
['dust']
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = [
    "CUES",
    "LEXICON",
    "TOPIC_CUES",
    "extract_cues",
    "is_night",
]

#: cue -> keywords (substrings). Order inside a tuple does not matter.
LEXICON: Final[dict[str, tuple[str, ...]]] = {
    cue: tuple(words.split())
    for cue, words in {
        "smell": "气味 异味 臭 刺鼻 难闻 怪味 味道 呛人 熏人 酸味 油漆味 焦味 闻到 油烟",
        "chemical": "化工 危化品 危险品 化学品 化学 有毒 毒气 泄漏 泄露 槽罐车 罐车 油罐 溶剂 农药",
        "noise": "噪音 噪声 吵 轰鸣 扰民 响声 声音很大 声音大 鸣笛 喇叭 广场舞 敲打 切割声",
        "construction": "施工 工地 打桩 挖掘机 搅拌 浇筑 装修 钻孔 机械作业 复工 开工 停工令 塔吊",
        "dust": "扬尘 灰尘 粉尘 尘土 灰大 漫天 落灰 渣土",
        "smoke": "冒烟 黑烟 浓烟 烟雾 焚烧 烧垃圾 秸秆 露天烧 烟尘",
        "water": "污水 废水 排污 黑臭 河水 偷排 直排 水体 水面 发黑 河道",
        "garbage": "垃圾 堆放 清运 杂物 堆积 垃圾桶 乱倒",
        "traffic": "停车 堵车 拥堵 违停 红绿灯 信号灯 乱停 路口很乱",
        "vending": "摊贩 摊位 占道经营 夜市 流动摊 出摊 占用人行道",
        "supply": "停水 水压 自来水 供水 用不上水 水质 发黄 停电 停气",
        "facility": "路灯 井盖 路面 坑洼 破损 漏水 不亮 损坏",
    }.items()
}

_NIGHT_WORDS: Final = ("夜间", "深夜", "半夜", "凌晨", "晚上", "夜里", "通宵", "夜晚", "晚间")
_NEGATIONS: Final = ("没有", "没", "无", "不")

#: Every cue this module can return.
CUES: Final[frozenset[str]] = frozenset((*LEXICON, "night", "night_noise"))
#: Cues that say what the problem is (``night`` only says when).
TOPIC_CUES: Final[frozenset[str]] = frozenset(LEXICON)

_BEIJING_OFFSET_MS: Final = 8 * 3_600_000


def is_night(ts: int) -> bool:
    """True when epoch-ms ``ts`` falls between 22:00 and 06:00 Beijing time (UTC+8).

    >>> is_night(1_762_012_800_000)   # 2025-11-02 00:00 Beijing
    True
    >>> is_night(1_762_052_400_000)   # 11:00
    False
    """
    hour = ((ts + _BEIJING_OFFSET_MS) // 3_600_000) % 24
    return hour >= 22 or hour < 6


def _index() -> dict[str, tuple[tuple[str, str], ...]]:
    """first character -> ((keyword, cue), ...): one dict lookup per character of a text."""
    idx: dict[str, list[tuple[str, str]]] = {}
    for cue, words in LEXICON.items():
        for w in words:
            idx.setdefault(w[0], []).append((w, cue))
    return {ch: tuple(pairs) for ch, pairs in idx.items()}


_INDEX: Final = _index()


def _negated(text: str, pos: int) -> bool:
    return any(pos >= len(neg) and text.startswith(neg, pos - len(neg)) for neg in _NEGATIONS)


def extract_cues(text: str, ts: int | None = None) -> frozenset[str]:
    """The cues of a ticket's ``text`` (and of its filing time ``ts`` for ``night``)."""
    t = unicodedata.normalize("NFKC", text)
    out: set[str] = set()
    index = _INDEX
    for i, ch in enumerate(t):
        pairs = index.get(ch)
        if pairs is None:
            continue
        for word, cue in pairs:
            if cue not in out and t.startswith(word, i) and not _negated(t, i):
                out.add(cue)
    if any(w in t for w in _NIGHT_WORDS) or (ts is not None and is_night(ts)):
        out.add("night")
    if "night" in out and ("noise" in out or "construction" in out):
        out.add("night_noise")
    return frozenset(out)

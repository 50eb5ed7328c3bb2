"""Cues: what a hotline ticket is about, as a small set of tags found by keywords.

Cues serve two consumers. The incident correlator (``models/incidents.py``) joins tickets to
other sources by them (a smell complaint near a PM spike, a night-noise complaint at a
suspended work site). The de-duplicator uses them as a topic signature: two tickets at one
address about *different* problems share the address's characters but not their cues.

The lexicon is deliberately plain data (:data:`LEXICON`): a newcomer adds a synonym in one
place. Matching is substring search on the normalised text (``text.normalize``: full-width
forms and traditional characters folded), so no segmentation is needed. A cue is dropped when
a negation (没有, 无, 不) directly precedes the keyword.

``night`` is set when the text says so (夜间, 凌晨, ...) or, if ``ts`` is given, when the
ticket was filed between 22:00 and 06:00 Beijing time; ``night_noise`` is ``night`` together
with ``noise`` or ``construction``.

>>> sorted(extract_cues("小区旁边化工厂排放刺鼻气味，晚上更严重"))
['chemical', 'night', 'smell']
>>> sorted(extract_cues("工地夜间施工噪音太大"))
['construction', 'night', 'night_noise', 'noise']
>>> sorted(extract_cues("小区里没有异味，但是扬尘很大"))
['dust']
"""

from __future__ import annotations

from typing import Final

from models.hotline.text import normalize

__all__ = [
    "CUES",
    "DOMAIN_CUES",
    "LEXICON",
    "TOPIC_CUES",
    "extract_cues",
    "is_night",
]

#: cue -> keywords (substrings). Order inside a tuple does not matter.
LEXICON: Final[dict[str, tuple[str, ...]]] = {
    cue: tuple(words.split())
    for cue, words in {
        # problems (the 小类 of a complaint taxonomy): what exactly is wrong
        "smell": "气味 异味 臭 刺鼻 难闻 怪味 味道 呛人 熏人 酸味 油漆味 焦味 闻到 油烟",
        "chemical": "化工 危化品 危险品 化学品 化学 有毒 毒气 泄漏 泄露 槽罐车 罐车 油罐 "
        "溶剂 农药 偷排",
        "noise": "噪音 噪声 吵 轰鸣 扰民 响声 声音很大 声音大 鸣笛 喇叭 广场舞 敲打 切割声",
        # noise by source (social life, construction, loading, equipment), as 12345 sorts it
        "noise_music": "广场舞 音响 音乐 ktv 唱歌 卡拉ok 喇叭",
        "noise_machinery": "施工机械 打桩 电钻 切割 挖掘机 机器",
        "noise_loading": "装卸 卸货 货车",
        "noise_fan": "排风机 风机 空调外机 冷却塔",
        "dust": "扬尘 灰尘 粉尘 尘土 灰很大 灰大 漫天 落灰 降尘 一层土",
        "mud": "带泥 撒土 撒漏 遗撒 抛洒 全是泥 没有覆盖 未覆盖 路面很脏",
        "smoke": "冒烟 黑烟 浓烟 烟雾 焚烧 烧垃圾 秸秆 露天烧 烟尘",
        "water": "污水 废水 排污 黑臭 河水 直排 水体 水面 发黑 河道",
        "uncollected": "没人清运 清运 没人收 没拉走 桶满 满了 堆成 堆积 好几天没",
        "dumping": "乱倒 倾倒 偷倒 建筑垃圾 装修垃圾 渣土垃圾 乱扔",
        "signal": "信号灯 红绿灯 黄闪",
        "parking": "乱停 违停 停满 乱放 停车",
        "vending": "摊贩 摆摊 小商贩 占道经营 流动摊 出摊",
        "night_market": "夜市 烧烤摊 夜宵 大排档",
        "outage": "停水 没水 来水 断水 停电 停气",
        "pressure": "水压 用不上水 打不着火",
        "water_quality": "发黄 浑浊 水质 不敢饮用 烧开",
        "streetlight": "路灯",
        "road": "井盖 坑洼 塌陷 破损",
        # domains (the 大类) and symptoms: shared by several problems, weaker evidence
        "construction": "施工 工地 打桩 挖掘机 搅拌 浇筑 装修 钻孔 机械作业 复工 开工 停工令 "
        "塔吊 渣土车 土方车",
        "refuse": "垃圾",
        "traffic": "路口 车辆 机动车 公交",
        "congestion": "堵车 拥堵 堵得 堵死",
        "supply": "自来水 供水 水龙头 热水器",
    }.items()
}

_NIGHT_WORDS: Final = ("夜间", "深夜", "半夜", "凌晨", "晚上", "夜里", "通宵", "夜晚", "晚间")
_NEGATIONS: Final = ("没有", "没", "无", "不")

#: Every cue this module can return.
CUES: Final[frozenset[str]] = frozenset((*LEXICON, "night", "night_noise"))
#: Cues that say what the problem is (``night`` only says when).
TOPIC_CUES: Final[frozenset[str]] = frozenset(LEXICON)
#: Topic cues that name a domain shared by several problems (施工, 垃圾 ...), not a problem.
DOMAIN_CUES: Final[frozenset[str]] = frozenset(
    {"construction", "refuse", "traffic", "congestion", "supply"}
)

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
    t = normalize(text)
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

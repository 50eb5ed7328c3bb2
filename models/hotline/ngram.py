"""Character n-gram similarity for short Chinese texts (no word segmentation).

Chinese has no spaces, and a segmenter (jieba) splits citizens' colloquial, typo-ridden
complaints inconsistently; overlapping character bigrams need no dictionary and degrade
gracefully. A text is normalised (NFKC, lower case, punctuation and spaces dropped, the
hotline's boilerplate phrases such as "市民来电反映" removed) and cut into its set of
character n-grams; two texts are compared by the Dice coefficient of their sets:

    dice(A, B) = 2 |A ∩ B| / (|A| + |B|)   in [0, 1], 1 = same n-grams.

:func:`containment` (|A ∩ B| / min(|A|, |B|)) is the asymmetric variant that stays high when
one caller says in one clause what another says in three. The near miss above (same address,
another problem) still scores 0.28 on its shared address: the de-duplicator blends in cues.

>>> a = shingles("市民来电反映：幸福路12号工地夜间施工噪音扰民，请相关部门处理。")
>>> b = shingles("幸福路12号的工地晚上一直施工，噪音很大，影响休息")
>>> c = shingles("幸福路12号门口垃圾堆放无人清理，气味难闻")
>>> round(dice(a, b), 2), round(dice(a, c), 2)
(0.46, 0.28)
>>> dice(frozenset(), frozenset())
0.0
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["BOILERPLATE", "containment", "dice", "normalize", "shingles"]

#: Phrases every ticket may carry whatever the problem (call-taker's framing, politeness);
#: they would inflate the similarity of unrelated tickets. Longest first.
BOILERPLATE: Final[tuple[str, ...]] = (
    "市民来电反映",
    "市民来电称",
    "市民反映",
    "来电人反映",
    "来电人称",
    "来电反映",
    "群众反映",
    "网友反映",
    "诉求人反映",
    "希望相关部门",
    "请相关部门",
    "望相关部门",
    "相关部门",
    "尽快处理",
    "尽快解决",
    "给予处理",
    "予以处理",
    "核实处理",
    "调查处理",
    "处理一下",
    "谢谢",
    "您好",
    "你好",
    "麻烦",
    "请求",
    "希望",
    "投诉",
    "反映",
    "来电",
    "市民",
)

_BOILER_RE: Final = re.compile("|".join(re.escape(p) for p in BOILERPLATE))
# Keep letters, digits and CJK ideographs; everything else (punctuation, spaces, emoji) goes.
_DROP_RE: Final = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff]+")


def normalize(text: str) -> str:
    """NFKC, lower case, boilerplate phrases and non-word characters removed.

    >>> normalize("市民来电反映：Ａ区３号楼　噪音！！请相关部门尽快处理。")
    'a区3号楼噪音'
    """
    t = unicodedata.normalize("NFKC", text).lower()
    t = _DROP_RE.sub("", t)
    return _BOILER_RE.sub("", t)


def shingles(text: str, n: int = 2) -> frozenset[str]:
    """The set of character ``n``-grams of the normalised text.

    A normalised text shorter than ``n`` (but not empty) is its own single shingle, so a
    one-character complaint still compares equal to itself.

    >>> sorted(shingles("噪音扰民"))
    ['噪音', '扰民', '音扰']
    >>> shingles("！！")
    frozenset()
    """
    if n < 1:
        msg = f"n: must be >= 1, got {n}"
        raise ValueError(msg)
    t = normalize(text)
    if len(t) <= n:
        return frozenset((t,)) if t else frozenset()
    return frozenset(t[i : i + n] for i in range(len(t) - n + 1))


def dice(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice coefficient ``2|A∩B| / (|A|+|B|)``; 0.0 when both are empty."""
    total = len(a) + len(b)
    if total == 0:
        return 0.0
    return 2.0 * len(a & b) / total


def containment(a: frozenset[str], b: frozenset[str]) -> float:
    """``|A∩B| / min(|A|, |B|)``: 1.0 when the shorter text is wholly inside the longer."""
    m = min(len(a), len(b))
    if m == 0:
        return 0.0
    return len(a & b) / m

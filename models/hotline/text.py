"""Ticket text to features: normalisation, words and character n-grams, hashed.

Citizens write simplified and traditional characters, full-width digits, typos and no spaces.
:func:`normalize` folds width and case (NFKC) and traditional characters to simplified
(OpenCC's ``t2s`` table, shipped in the ``opencc`` wheel). :func:`features` turns the text into
a bag of hashed features:

* character 1-, 2- and 3-grams inside each clause (n-grams never cross punctuation): they need
  no dictionary and survive typos and unknown words (a community name, a slip of pinyin input);
* words from jieba's dictionary segmentation (``rjieba``, the Rust port: ~2 µs a ticket, the
  pure-Python jieba takes ~175 µs): a word is stronger evidence than its characters.

Features are hashed into ``2**bits`` buckets with a fixed multiply-shift hash of the code
points (the same in every process: state pickled in one process is valid in another; Python's
``hash()`` of a string is not). Which features matter is not written here: the weights are
document frequencies learned from the stream (``docfreq.py``).

>>> normalize("市民來電反映：Ａ區３號樓　噪音！！")
'市民来电反映：a区3号楼　噪音！！'
>>> f = features("噪音扰民")
>>> f.n_tokens, len(f.ids) == len(f.counts)
(4, True)
>>> bool((features("噪音擾民").ids == f.ids).all())
True
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import rjieba

__all__ = ["BITS", "TextFeatures", "clauses", "features", "normalize"]

#: Hashed feature space (1M buckets: few collisions among a city's n-grams and words).
BITS: Final = 20
_MASK64: Final = (1 << 64) - 1
_CP: Final = np.uint64(0x110000)  # one more than the largest code point
# multiply-shift hashing (Dietzfelbinger): one odd multiplier per feature family
_MULT: Final = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
)
# Clause breaks: anything that is not a letter, digit or CJK ideograph.
_BREAK_RE: Final = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff]+")


@functools.cache
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


#: Full-width letters and digits (the part of NFKC that matters here: punctuation, full-width
#: or not, only separates clauses; a full NFKC pass costs more than the rest of the features).
_WIDE_RE: Final = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+")


def _narrow(m: re.Match[str]) -> str:
    return "".join(chr(ord(c) - 0xFEE0) for c in m.group())


@functools.cache
def _traditional_re() -> re.Pattern[str]:
    """The ideographs ``t2s`` changes (found by converting the whole CJK block once): a text
    with none of them is already simplified, and a regex search is ~7x cheaper than OpenCC."""
    block = "".join(chr(c) for c in range(0x3400, 0xA000))
    out = str(_t2s().convert(block))  # type: ignore[attr-defined]
    changed = sorted({a for a, b in zip(block, out, strict=False) if a != b})
    return re.compile("[" + "".join(changed) + "]")


def normalize(text: str) -> str:
    """Full-width letters and digits to ASCII, lower case, traditional to simplified."""
    t = _WIDE_RE.sub(_narrow, text).lower()
    if t.isascii() or _traditional_re().search(t) is None:
        return t
    return str(_t2s().convert(t))  # type: ignore[attr-defined]


def clauses(text: str) -> list[str]:
    """The normalised text's runs of letters, digits and ideographs (punctuation splits).

    >>> clauses("幸福小区，噪音！Ｂ栋")
    ['幸福小区', '噪音', 'b栋']
    """
    return [c for c in _BREAK_RE.split(normalize(text)) if c]


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """A text's hashed features: sorted unique bucket ids and their counts."""

    ids: npt.NDArray[np.int64]
    counts: npt.NDArray[np.float32]
    #: tokens counted (the document length BM25 normalises by)
    n_tokens: int

    @classmethod
    def empty(cls) -> TextFeatures:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), 0)


def _unique_counts(
    h: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``np.unique(h, return_counts=True)`` at a fraction of its cost for short arrays (plain
    ufuncs with ``out=``: numpy's Python-level helpers cost more than the work here)."""
    h = np.sort(h)
    n = len(h)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(h[1:], h[:-1], out=new[1:])
    starts = new.nonzero()[0]
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = n
    return h[starts].astype(np.int64), (ends - starts).astype(np.float32)


def features(text: str, *, words: bool = True, normalized: bool = False) -> TextFeatures:
    """Character 1-3-grams within clauses, plus dictionary words of two or more characters
    (``normalized``: the text already went through :func:`normalize`).

    N-grams and words never cross a clause break, so a ticket's features are the union of its
    clauses'; each clause's hashed features are remembered (:func:`_clause_codes`): the
    call-taker's framing and a community's usual phrasing recur in ticket after ticket."""
    t = text if normalized else normalize(text)
    parts = [_clause_codes(c, words) for c in _BREAK_RE.split(t) if c]
    if not parts:
        return TextFeatures.empty()
    n_tokens = sum(len(p[1]) for p in parts)
    h = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    ids, counts = _unique_counts(h)
    return TextFeatures(ids, counts, n_tokens)


#: clause -> its hashed features; two generations of at most ``_CACHE_MAX`` clauses each (a
#: clause still in use moves to the new one; the old one is dropped when the new one fills).
_CACHE_MAX: Final = 20_000
_cache_new: dict[tuple[str, bool], tuple[npt.NDArray[np.uint64], str]] = {}
_cache_old: dict[tuple[str, bool], tuple[npt.NDArray[np.uint64], str]] = {}


def _clause_codes(clause: str, words: bool) -> tuple[npt.NDArray[np.uint64], str]:
    """The clause's hashed feature ids (unsorted, with repeats) and the clause itself."""
    global _cache_new, _cache_old
    key = (clause, words)
    hit = _cache_new.get(key)
    if hit is not None:
        return hit
    hit = _cache_old.get(key)
    if hit is None:
        hit = (np.array(_hash_clause(clause, words), dtype=np.uint64), clause)
    if len(_cache_new) >= _CACHE_MAX:
        _cache_old, _cache_new = _cache_new, {}
    _cache_new[key] = hit
    return hit


_M0, _M1, _M2, _M3 = (int(m) for m in _MULT)
_CPI: Final = 0x110000
_PI: Final = 0x100000001B3
_SHIFT_I: Final = 64 - BITS


#: n-gram (1-3 characters) or word -> bucket id, for clauses not seen before: their n-grams
#: mostly were (emptied when full; a dict lookup is cheaper than the 64-bit arithmetic).
_GRAMS: dict[str, int] = {}
_WORDS: dict[str, int] = {}
_GRAMS_MAX: Final = 100_000


def _gram_id(g: str) -> int:
    """Bucket id of a 1-, 2- or 3-character n-gram: the code ``cp``, ``cp1 * 0x110000 + cp2``
    or ``(cp1 * 0x110000 + cp2) * 0x110000 + cp3`` modulo 2**64, times the family's odd
    multiplier, top ``BITS`` bits."""
    code = 0
    for c in g:
        code = (code * _CPI + ord(c)) & _MASK64
    m = _M0 if len(g) == 1 else _M1 if len(g) == 2 else _M2
    out = ((code * m) & _MASK64) >> _SHIFT_I
    if len(_GRAMS) >= _GRAMS_MAX:
        _GRAMS.clear()
    _GRAMS[g] = out
    return out


def _word_id(w: str) -> int:
    """Bucket id of a word: its polynomial hash ``sum(cp[i] * P**i) + (len << 56)`` modulo
    2**64, times the word family's multiplier, top ``BITS`` bits."""
    code = 0
    for c in reversed(w):
        code = (code * _PI + ord(c)) & _MASK64
    code = (code + (len(w) << 56)) & _MASK64
    out = ((code * _M3) & _MASK64) >> _SHIFT_I
    if len(_WORDS) >= _GRAMS_MAX:
        _WORDS.clear()
    _WORDS[w] = out
    return out


def _hash_clause(clause: str, words: bool) -> list[int]:
    """The bucket ids of one clause's features: its character 1-, 2- and 3-grams and (with
    ``words``) its dictionary words of two or more characters."""
    get = _GRAMS.get
    n = len(clause)
    out = []
    for k in (1, 2, 3):
        for i in range(n - k + 1):
            g = clause[i : i + k]
            h = get(g)
            out.append(h if h is not None else _gram_id(g))
    if words:
        wget = _WORDS.get
        for w in rjieba.cut(clause, False):
            if len(w) >= 2:
                h = wget(w)
                out.append(h if h is not None else _word_id(w))
    return out

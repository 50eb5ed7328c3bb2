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


_SPACE: Final = np.uint64(32)
_SHIFT: Final = np.uint64(64 - BITS)


def _unique_counts(
    h: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``np.unique(h, return_counts=True)`` at a third of its cost for short arrays."""
    h = np.sort(h)
    starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
    counts = np.diff(np.append(starts, len(h)))
    return h[starts].astype(np.int64), counts.astype(np.float32)


def features(text: str, *, words: bool = True, normalized: bool = False) -> TextFeatures:
    """Character 1-3-grams within clauses, plus dictionary words of two or more characters
    (``normalized``: the text already went through :func:`normalize`)."""
    t = _BREAK_RE.sub(" ", text if normalized else normalize(text)).strip()
    if not t:
        return TextFeatures.empty()
    cp = np.frombuffer(t.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    ok = cp != _SPACE
    n_tokens = int(ok.sum())
    m = _MULT
    with np.errstate(over="ignore"):
        bi = cp[:-1] * _CP + cp[1:]
        okb = ok[:-1] & ok[1:]
        tri = bi[:-1] * _CP + cp[2:]
        okt = okb[:-1] & ok[2:]
        parts = [cp[ok] * m[0], bi[okb] * m[1], tri[okt] * m[2]]
        if words:
            codes = _word_codes(t, cp)
            if len(codes):
                parts.append(codes * m[3])
        h = np.concatenate(parts) >> _SHIFT
    ids, counts = _unique_counts(h)
    return TextFeatures(ids, counts, n_tokens)


_P: Final = np.uint64(0x100000001B3)  # odd: invertible modulo 2**64
_MAXLEN: Final = 4096 + 2  # texts are at most 4096 bytes


def _powers() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    inv = np.uint64(pow(int(_P), -1, 1 << 64))
    with np.errstate(over="ignore"):
        pw = np.cumprod(np.full(_MAXLEN, _P, dtype=np.uint64), dtype=np.uint64) * inv  # P**i
        pinv = np.cumprod(np.full(_MAXLEN, inv, dtype=np.uint64), dtype=np.uint64) * _P  # P**-i
    return pw.astype(np.uint64), pinv.astype(np.uint64)


_POW, _POW_INV = _powers()
_LEN_SHIFT: Final = np.uint64(56)


def _word_codes(t: str, cp: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Polynomial hashes (mod 2**64) of the dictionary words of two or more characters.

    jieba's words tile the text, so their ends are the running sum of their lengths; each
    word's hash comes from prefix sums of ``cp[i] * P**i`` in one vectorised pass.
    """
    lens = np.fromiter((len(w) for w in rjieba.cut(t, False)), dtype=np.int64)
    ends = np.cumsum(lens)
    keep = lens >= 2
    lens, ends = lens[keep], ends[keep]
    if not len(lens):
        return np.zeros(0, dtype=np.uint64)
    starts = ends - lens
    n = len(cp)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(cp * _POW[:n], out=prefix[1:])
        # sum over the word of cp[i] * P**(i - start): the prefix difference scaled by P**-start
        codes: npt.NDArray[np.uint64] = (prefix[ends] - prefix[starts]) * _POW_INV[starts]
        codes += lens.astype(np.uint64) << _LEN_SHIFT
    # jieba keeps a clause break as its own token, so no kept word spans one
    return codes

"""Tokens for full-text search over Chinese and ASCII text, and the query syntax.

Chinese has no spaces between words, and a two-character word (噪声, 异味) must match. We
index every run of CJK characters as its overlapping character bigrams (噪声很大 -> 噪声 声很
很大; a single character stays a unigram) and every run of ASCII letters and digits as one
lower-case word (plates, station ids: ``苏F12345`` -> ``苏`` ``f12345``). A query term becomes
the *phrase* of its tokens, so 危化品 matches exactly the text 危化品 (危化 followed by 化品),
never 危化 and 化品 apart. This is the classic bigram index of CJK search engines: no
dictionary, no segmentation errors, every substring of two or more characters findable.
Traditional characters are folded to simplified (OpenCC's ``t2s`` tables) in the text and in
the query alike, so 噪聲 finds 噪声 and 噪声 finds 噪聲.

Query syntax (what a duty officer types)::

    噪声 崇川            both terms (AND)
    "人民路 工农路"       a phrase across a space
    噪声 -装修           without the term
    ST00*               an ASCII prefix
    异味 OR 臭味          either

>>> index_text("夜间施工噪声很大，苏F12345")
'夜 夜间 间施 施工 工噪 噪声 声很 很大 大 苏 f12345'
>>> match_expression("危化品 -加油站")
'"危化 化品" NOT "加油 油站"'
>>> match_expression("异味 OR 臭味 ST00*")
'("异味" OR "臭味") AND "st00"*'
>>> terms_of("噪声 \\"人民路\\" -装修")
['噪声', '人民路']
>>> index_text("危險化學品") == index_text("危险化学品")
True
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from operator import add
from typing import Any, Final

__all__ = [
    "Phrase",
    "Query",
    "QueryError",
    "index_text",
    "match_expression",
    "parse_query",
    "simplified",
    "terms_of",
    "tokens",
    "tsquery_expression",
    "word_count",
]

#: CJK unified ideographs (with extension A and compatibility), or one ASCII alphanumeric run.
_RUN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9A-Za-z]+")
_CJK: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: A query: a quoted phrase, or a bare word (possibly with a leading - and a trailing *).
_QUERY: Final = re.compile(r'(-?)"([^"]*)"|(\S+)')
#: At most this many terms in a query (a pasted paragraph is cut, not an error).
MAX_TERMS: Final = 16


class QueryError(ValueError):
    """A query that names nothing to search for (e.g. only punctuation or only exclusions)."""


@functools.cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """``text`` with traditional characters as simplified (OpenCC ``t2s``; about 2 µs a
    ticket). Indexed text, query terms and snippets all pass through it.

    >>> simplified("夜間施工噪聲，蘇F12345")
    '夜间施工噪声，苏F12345'
    """
    if text.isascii():
        return text
    return str(_t2s().convert(text))


def tokens(text: str) -> list[str]:
    """The index tokens of ``text``, in order (see the module docstring)."""
    return index_text(text).split()


def index_text(text: str) -> str:
    """``text`` as the space-separated tokens the full-text engine indexes (the hot path of
    indexing: one regex pass, bigrams by ``map(add, run, run[1:])``).

    A CJK run of two or more characters also gives its first and last character as
    unigrams at its ends, so a term that crosses into ASCII (苏F12345, ST0003旁) stays a
    phrase of adjacent tokens, and a one-character query (a prefix) finds every occurrence.
    """
    out: list[str] = []
    for run in _RUN.findall(simplified(text)):
        if run[0] < "\u3400":  # ASCII letters and digits
            out.append(run.lower())
        elif len(run) == 1:
            out.append(run)
        else:
            out.append(f"{run[0]} {' '.join(map(add, run, run[1:]))} {run[-1]}")
    return " ".join(out)


def _term_tokens(term: str) -> tuple[str, ...]:
    """A query term's tokens: bigrams of its CJK runs, with an end unigram only where the
    run touches ASCII inside the term (the text has that unigram at every run end)."""
    runs = _RUN.findall(simplified(term))
    out: list[str] = []
    for i, run in enumerate(runs):
        if run[0] < "\u3400":
            out.append(run.lower())
        elif len(run) == 1:
            out.append(run)
        else:
            if i > 0 and runs[i - 1][0] < "\u3400":
                out.append(run[0])
            out.extend(map(add, run, run[1:]))
            if i + 1 < len(runs) and runs[i + 1][0] < "\u3400":
                out.append(run[-1])
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Phrase:
    """One query term: its tokens in order (adjacent in the text), maybe an ASCII prefix."""

    tokens: tuple[str, ...]
    is_prefix: bool = False
    #: The term as typed, simplified and lower case (a place name is looked up by it).
    text: str = ""

    def found_in(self, tokens: set[str]) -> bool:
        """Whether a document with these index tokens has every token of the phrase (not
        their order: for ranking documents with some of the words, not for matching).

        >>> Phrase(("危化", "化品")).found_in(set(tokens("危化品车辆")))
        True
        """
        *whole, last = self.tokens
        if not all(t in tokens for t in whole):
            return False
        if self.is_prefix:
            return any(t.startswith(last) for t in tokens)
        return last in tokens


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: every group must match (a group is its phrases ORed), no excluded."""

    groups: tuple[tuple[Phrase, ...], ...]
    excluded: tuple[Phrase, ...] = ()


def parse_query(query: str) -> Query:
    """Parse what the user typed (raises :class:`QueryError` if it names nothing).

    Terms are ANDed; ``OR`` joins the terms on either side into one group; ``-term``
    excludes; ``word*`` is an ASCII prefix; ``"..."`` a phrase across spaces.
    """
    groups: list[list[Phrase]] = []
    excluded: list[Phrase] = []
    join_next = False
    for m in _QUERY.finditer(query):
        quoted, bare = m.group(2), m.group(3)
        if bare == "OR":
            join_next = bool(groups)
            continue
        negate, prefix = bool(m.group(1)), False
        if bare is not None:
            negate = bare.startswith("-") and len(bare) > 1
            word = bare[1:] if negate else bare
            prefix = word.endswith("*")
            quoted = word.rstrip("*")
        toks = _term_tokens(quoted)
        # One CJK character: a prefix, so it is found inside bigrams too.
        prefix = prefix or (len(toks) == 1 and bool(_CJK.fullmatch(toks[0])))
        if not toks:
            continue
        phrase = Phrase(toks, prefix, simplified(quoted).strip().lower())
        if negate:
            excluded.append(phrase)
        elif join_next:
            groups[-1].append(phrase)
        elif len(groups) < MAX_TERMS:
            groups.append([phrase])
        join_next = False
    if not groups:
        msg = f"query {query!r}: nothing to search for (give at least one word)"
        raise QueryError(msg)
    return Query(tuple(tuple(g) for g in groups), tuple(excluded))


def match_expression(query: str | Query, *, any_word: bool = False) -> str:
    """The FTS5 MATCH expression of ``query`` (``any_word``: its words ORed, the relaxed
    query); every token is quoted, so nothing the user types can inject FTS5 syntax."""
    q = parse_query(query) if isinstance(query, str) else query

    def fts(p: Phrase) -> str:
        return '"' + " ".join(p.tokens) + '"' + ("*" if p.is_prefix else "")

    groups = [fts(g[0]) if len(g) == 1 else "(" + " OR ".join(map(fts, g)) + ")" for g in q.groups]
    expr = " OR ".join(groups) if any_word else " AND ".join(groups)
    if any_word and len(groups) > 1 and q.excluded:
        expr = f"({expr})"
    return " ".join([expr, *(f"NOT {fts(x)}" for x in q.excluded)])


def tsquery_expression(query: str | Query, *, any_word: bool = False, weights: str = "") -> str:
    """The PostgreSQL ``to_tsquery('simple', ...)`` text of ``query`` (tokens quoted; each
    only in lexemes of these ``weights`` when given).

    >>> tsquery_expression("危化品 OR 加油 -st0*")
    "(('危化' <-> '化品') | '加油') & !'st0':*"
    >>> tsquery_expression("st0*", weights="AB")
    "'st0':*AB"
    """
    q = parse_query(query) if isinstance(query, str) else query

    def ts(p: Phrase) -> str:
        words = [f"'{t}'" + (f":{weights}" if weights else "") for t in p.tokens]
        if p.is_prefix:
            words[-1] = f"'{p.tokens[-1]}':*{weights}"
        return words[0] if len(words) == 1 else "(" + " <-> ".join(words) + ")"

    parts = [ts(g[0]) if len(g) == 1 else "(" + " | ".join(map(ts, g)) + ")" for g in q.groups]
    if any_word and len(parts) > 1:
        parts = ["(" + " | ".join(parts) + ")"]
    parts += [f"!{ts(x)}" for x in q.excluded]
    return " & ".join(parts)


def word_count(query: str) -> int:
    """How many word groups must all match (the relaxed query needs only one of them)."""
    return len(parse_query(query).groups)


def terms_of(query: str) -> list[str]:
    """The positive terms of ``query`` as typed, simplified (for highlighting in the simplified
    text), without operators."""
    out: list[str] = []
    for m in _QUERY.finditer(query):
        negate, quoted, bare = m.group(1), m.group(2), m.group(3)
        if bare == "OR" or negate or (bare is not None and bare.startswith("-")):
            continue
        text = simplified((quoted if bare is None else bare).rstrip("*").strip())
        if text and tokens(text):
            out.append(text)
    return out

"""How a query is answered, the same on every backend (SQLite, PostgreSQL).

A duty officer types a few words about a problem (a place and what is wrong) and wants every
report of it. Callers describe one incident in their own words, so the answer comes in
stages, each only while the page (``limit``) is not full:

1. **Every word** in the text. Ranked by BM25 (title 2x the text), then recency, among the
   newest ``max_candidates`` matches in the time range (``Results.capped`` says when more
   matched).
2. **Every word, a place by where it is.** With a registry (:mod:`sinks.search.places`), a
   word that names a place also matches documents *at* the place: 琅晖公寓 破碎锤 finds the
   caller who wrote 解放路194号 破碎锤 from 100 m away.
3. **Some of the words** (``Hit.is_partial``, ``Results.relaxed``): documents with any of the
   words near those found so far (within ``NEAR_M``: another caller at the same place) or at
   the query's places, and the best of those with any of the words anywhere; ranked by how
   many of the words they have (a place word also by where they are), then how many of the
   words that are not places, then near the found ones first, then BM25, then recency.

Stages 2 and 3 fill the first page only (``offset`` 0); later pages are stage 1's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sinks.search.documents import Doc
from sinks.search.places import NEAR_M, Gazetteer, Place, cells_near, place_text
from sinks.search.tokens import Phrase, Query, parse_query, simplified, terms_of

__all__ = ["Engine", "Filters", "Hit", "Near", "Results", "Where", "best_snippet", "snippet"]

#: Found documents whose places the near stage searches around (the best ones).
MAX_ANCHORS: Final = 5
#: Candidates of the near stage, and extra ones of the anywhere stage, to re-rank.
NEAR_CANDIDATES: Final = 200
RERANK: Final = 40

#: Place names the found documents' texts give the near stage (the first ones).
MAX_NAMES: Final = 24
#: Matches ranked by the stages after the first (the newest ones): a smaller cap, as they
#: only fill the rest of a page.
RELAXED_CAP: Final = 1_000


@dataclass(frozen=True, slots=True)
class Where:
    """A document is here if it has one of these place tokens (:mod:`sinks.search.places`)
    or one of these phrases in its text (places named in words)."""

    tokens: frozenset[str] = frozenset()
    names: tuple[Phrase, ...] = ()


#: Places a document must be at, each.
Near = Sequence[Where]


@dataclass(frozen=True, slots=True)
class Filters:
    """Optional filters; every given one must hold (times are event time, epoch ms)."""

    from_ms: int | None = None
    to_ms: int | None = None
    kinds: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    min_level: int = 0
    statuses: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on ``d`` (docs) and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        if self.from_ms is not None:
            conds.append("d.ts >= ?")
            params.append(self.from_ms)
        if self.to_ms is not None:
            conds.append("d.ts < ?")
            params.append(self.to_ms)
        for column, values in (
            ("kind", self.kinds),
            ("district", self.districts),
            ("town", self.towns),
            ("rule", self.rules),
            ("status", self.statuses),
        ):
            if values:
                conds.append(f"d.{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if self.min_level:
            conds.append("d.level >= ?")
            params.append(self.min_level)
        return (" AND ".join(conds) or "1=1"), params


@dataclass(frozen=True, slots=True)
class Hit:
    doc: Doc
    score: float
    #: The matched part of the text: (text, is_match) segments, for safe highlighting.
    snippet: tuple[tuple[str, bool], ...]
    #: It has only some of the query's words (see :meth:`Engine.search`).
    is_partial: bool = False


@dataclass(frozen=True, slots=True)
class Results:
    query: str
    hits: list[Hit]
    #: Matches considered (at most ``max_candidates``).
    matched: int
    #: True when more documents match than were ranked (only the newest were).
    capped: bool
    took_ms: float
    terms: list[str] = field(default_factory=list)
    #: Some hits have only some of the words: too few had them all.
    relaxed: bool = False

    def to_dict(self, body_chars: int = 400) -> dict[str, Any]:
        """The JSON of a search (``citywatch search --json``, the feed's ``search``, HTTP)."""
        return {
            "query": self.query,
            "matched": self.matched,
            "capped": self.capped,
            "took_ms": round(self.took_ms, 2),
            "terms": self.terms,
            "relaxed": self.relaxed,
            "hits": [
                {
                    "kind": h.doc.kind,
                    "ref": h.doc.ref,
                    "ts": h.doc.ts,
                    "title": h.doc.title,
                    "body": h.doc.body[:body_chars],
                    "district": h.doc.district,
                    "town": h.doc.town,
                    "grid": h.doc.grid,
                    "rule": h.doc.rule,
                    "level": h.doc.level,
                    "status": h.doc.status,
                    "lat": h.doc.lat,
                    "lon": h.doc.lon,
                    "score": round(h.score, 4),
                    "snippet": [[s, m] for s, m in h.snippet],
                    "partial": h.is_partial,
                }
                for h in self.hits
            ],
        }


def snippet(text: str, terms: Sequence[str], width: int = 80) -> tuple[tuple[str, bool], ...]:
    """The part of ``text`` around the first match of any term, as (text, is_match) segments.

    >>> snippet("昨晚工地噪声很大，影响休息", ["噪声"], width=10)
    (('…工地', False), ('噪声', True), ('很大，影响休…', False))
    """
    low = text.lower()
    spans: list[tuple[int, int]] = []
    for term in terms:
        t = term.lower()
        start = low.find(t)
        while t and start >= 0:
            spans.append((start, start + len(t)))
            start = low.find(t, start + len(t))
    if not spans:
        cut = text[:width]
        return ((cut + ("…" if len(text) > width else ""), False),) if cut else ()
    spans.sort()
    first = spans[0][0]
    lo = max(0, first - width // 4)
    hi = min(len(text), lo + width)
    out: list[tuple[str, bool]] = []
    pos = lo
    for s, e in spans:
        if s < pos or e > hi:
            continue
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < hi:
        out.append((text[pos:hi], False))
    if lo > 0:
        out.insert(0, ("…", False))
    if hi < len(text):
        out.append(("…", False))
    merged: list[tuple[str, bool]] = []
    for seg in out:  # join neighbouring plain segments (the ellipses)
        if merged and not seg[1] and not merged[-1][1]:
            merged[-1] = (merged[-1][0] + seg[0], False)
        else:
            merged.append(seg)
    return tuple(merged)


def best_snippet(doc: Doc, terms: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """The snippet of the body where a term is in it (the text a reader wants), else of the
    title; built on the simplified text (``terms`` are simplified), so a ticket typed in
    traditional characters shows where 噪声 matched its 噪聲.

    >>> d = Doc(doc_id="t", kind="ticket", ref="t", ts=0, title="噪聲", body="工地噪聲很大")
    >>> best_snippet(d, ["噪声"])
    (('工地', False), ('噪声', True), ('很大', False))
    """
    body = simplified(doc.body)
    low = body.lower()
    if any(t.lower() in low for t in terms):
        return snippet(body, terms)
    return snippet(simplified(doc.title), terms)


class Engine:
    """The staged search over a backend's ``_fetch`` (see the module docstring)."""

    max_candidates: int
    #: Place names of the registry (None: words are only words).
    places: Gazetteer | None = None

    def _fetch(
        self,
        query: str,
        q: Query,
        f: Filters,
        *,
        limit: int,
        offset: int = 0,
        near: Near = (),
        cap: int = 0,
    ) -> tuple[list[tuple[Doc, float]], int, bool]:
        """Documents with every group of ``q`` in their text and at every place of ``near``,
        within ``f``; best first (BM25, then recency; a larger score is better) among the
        newest ``cap`` matches (0: ``max_candidates``); the number of those matches and
        whether the cap applied. Raises QueryError for an expression the engine rejects."""
        raise NotImplementedError

    def search(
        self, query: str, filters: Filters | None = None, *, limit: int = 10, offset: int = 0
    ) -> Results:
        """The best ``limit`` documents for ``query`` (raises QueryError for an empty query)."""
        t0 = time.perf_counter()
        f = filters or Filters()
        q = parse_query(query)
        terms = terms_of(query)
        rows, matched, capped = self._fetch(query, q, f, limit=limit, offset=offset)
        hits = [Hit(d, s, best_snippet(d, terms)) for d, s in rows]
        relaxed = False
        if offset == 0 and len(hits) < limit:
            more, n = self._more(query, q, f, hits, limit - len(hits))
            matched += n
            hits += [Hit(d, s, best_snippet(d, terms), partial) for d, s, partial in more]
            relaxed = any(partial for _, _, partial in more)
        took = (time.perf_counter() - t0) * 1000
        return Results(query, hits, matched, capped, took, terms, relaxed)

    def _places(self, q: Query) -> list[Place | None]:
        """Per group of ``q``: the place it names (one plain word in the gazetteer), or None."""
        if self.places is None:
            return [None] * len(q.groups)
        return [
            self.places.get(g[0].text) if len(g) == 1 and not g[0].is_prefix else None
            for g in q.groups
        ]

    def _more(
        self, query: str, q: Query, f: Filters, hits: list[Hit], want: int
    ) -> tuple[list[tuple[Doc, float, bool]], int]:
        """Stages 2 and 3 (module docstring): up to ``want`` more documents, best first, each
        with whether it has only some of the words; and how many have every word."""
        places = self._places(q)
        seen = {h.doc.doc_id for h in hits}
        cands: dict[str, tuple[Doc, float]] = {}

        def add(rows: list[tuple[Doc, float]]) -> None:
            for d, s in rows:
                if d.doc_id not in seen:
                    cands.setdefault(d.doc_id, (d, s))

        at = [p.tokens for p in places if p is not None]
        plain = tuple(g for g, p in zip(q.groups, places, strict=True) if p is None)
        if at and plain:
            # every word that is not a place in the text, every place by where it is
            add(self._fetch(query, Query(plain, q.excluded), f, limit=NEAR_CANDIDATES,
                            near=[Where(t) for t in at], cap=RELAXED_CAP)[0])  # fmt: skip
        texts = [[ph.text for ph in g] for g in q.groups]
        # the documents found tell where the incident is and how callers put it
        found = hits[:MAX_ANCHORS]
        cells = {c for h in found for c in _cells(h.doc)}
        names: list[str] = []
        if self.places is not None:
            typed = {ph.text for g in q.groups for ph in g}
            named = [n for h in found for n in self.places.names_in(h.doc.body)]
            names = [n for n in dict.fromkeys(named) if n not in typed][:MAX_NAMES]
        near_cells = Place(frozenset(cells))

        def near(d: Doc, text: str) -> bool:
            where = place_text(d.lat, d.lon, "", "")
            return near_cells.holds(where) or any(n in text for n in names)

        if len(q.groups) > 1:
            words = Query((tuple(ph for g in q.groups for ph in g),), q.excluded)
            around = Where(frozenset(cells).union(*at),
                           tuple(parse_query(n).groups[0][0] for n in names))  # fmt: skip
            if around.tokens or around.names:
                add(self._fetch(query, words, f, limit=NEAR_CANDIDATES, near=[around],
                                cap=RELAXED_CAP)[0])  # fmt: skip
            # of two words, one far away ranks after one nearby: enough nearby, none needed
            nearby = sum(near(d, _text(d)) for d, _ in cands.values())
            if len(q.groups) > 2 or nearby < want:
                add(self._fetch(query, words, f, limit=want + len(seen) + RERANK,
                                cap=RELAXED_CAP)[0])  # fmt: skip

        def rank(c: tuple[Doc, float]) -> tuple[int, bool, int, float, int]:
            d, score = c
            text = _text(d)
            where = place_text(d.lat, d.lon, d.town, d.district)
            words = plain_words = 0
            for g, p in zip(texts, places, strict=True):
                in_text = any(t in text for t in g)
                if in_text or (p is not None and p.holds(where)):
                    words += 1
                plain_words += in_text and p is None
            return (-words, not near(d, text), -plain_words, -score, -d.ts)

        ranked = sorted(((rank(c), c) for c in cands.values()), key=lambda x: x[0])
        every = sum(1 for key, _ in ranked if -key[0] == len(q.groups))
        out = [(d, s, -key[0] < len(q.groups)) for key, (d, s) in ranked[:want]]
        return out, every


def _text(d: Doc) -> str:
    """A document's words as the query's are compared with them (simplified, lower case)."""
    return simplified(f"{d.title} {d.body}").lower()


def _cells(d: Doc) -> list[str]:
    return [] if d.lat is None or d.lon is None else cells_near(d.lat, d.lon, NEAR_M)

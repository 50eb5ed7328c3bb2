"""The embedded full-text index: SQLite FTS5 over character bigrams, one file, no server.

One table ``docs`` holds each document's fields (filters, display, the raw text); a
contentless FTS5 table ``fts`` indexes its title and body as the tokens of
:mod:`sinks.search.tokens`. A newer version of a document (an alert's next version, a work
order's next audit event) replaces the older one and takes a new rowid, so rowid order is
arrival order: recency.

Ranking is BM25 (title weighted 2x the body), then recency. A very common term can match
hundreds of thousands of documents; BM25 over all of them would cost a second, so a query
ranks the newest ``max_candidates`` matches (default 5,000) inside its filters' time range
and says so (``Results.capped``): narrow the time range to reach older ones.

Readers and the one writer may be separate processes (WAL mode); the writer keeps the
read positions of the streams it indexes in ``meta``, in the same transaction as the
documents, so an index catches up exactly where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from citywatch.errors import InputError
from sinks.search.documents import Doc
from sinks.search.tokens import QueryError, index_text, match_expression, terms_of, word_count

__all__ = ["Filters", "Hit", "Results", "SqliteIndex", "best_snippet", "snippet"]

SCHEMA_VERSION: Final = "1"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS docs(
    rowid INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL, ref TEXT NOT NULL, ts INTEGER NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL,
    district TEXT NOT NULL, town TEXT NOT NULL, grid TEXT NOT NULL, rule TEXT NOT NULL,
    level INTEGER NOT NULL, status TEXT NOT NULL, lat REAL, lon REAL
);
CREATE INDEX IF NOT EXISTS docs_ts ON docs(ts);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    title, body, content='', tokenize='unicode61 remove_diacritics 0'
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS: Final = (
    "doc_id, kind, ref, ts, title, body, district, town, grid, rule, level, status, lat, lon"
)

_D_COLUMNS: Final = ", ".join("d." + c.strip() for c in _COLUMNS.split(","))


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
    #: It has only some of the query's words (see :meth:`SqliteIndex.search`).
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
    title."""
    body = doc.body.lower()
    if any(t.lower() in body for t in terms):
        return snippet(doc.body, terms)
    return snippet(doc.title, terms)


def _row(doc: Doc) -> tuple[Any, ...]:
    return (
        doc.doc_id, doc.kind, doc.ref, doc.ts, doc.title, doc.body, doc.district, doc.town,
        doc.grid, doc.rule, doc.level, doc.status, doc.lat, doc.lon,
    )  # fmt: skip


def _doc(row: Sequence[Any]) -> Doc:
    return Doc(
        doc_id=row[0], kind=row[1], ref=row[2], ts=row[3], title=row[4], body=row[5],
        district=row[6], town=row[7], grid=row[8], rule=row[9], level=row[10], status=row[11],
        lat=row[12], lon=row[13],
    )  # fmt: skip


class SqliteIndex:
    """The search index in one SQLite file (``":memory:"`` for tests).

    ``add`` upserts documents by ``doc_id`` (and stores stream positions) in one
    transaction; ``search`` ranks; ``positions`` are the stream ids indexed so far.
    """

    def __init__(self, path: str | Path, *, max_candidates: int = 5_000) -> None:
        self.path = str(path)
        self.max_candidates = max_candidates
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                msg = f"search index: folder {parent} does not exist"
                raise InputError(msg)
        try:
            self.db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-131072")  # 128 MiB of pages: the FTS merges
            self.db.execute("PRAGMA wal_autocheckpoint=16384")
            self.db.executescript(_SCHEMA)
            version = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                self.db.execute("INSERT INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
                self.db.commit()
            elif version[0] != SCHEMA_VERSION:
                msg = f"search index {self.path}: schema {version[0]}, expected {SCHEMA_VERSION}"
                raise InputError(msg + " (rebuild it: citywatch search --rebuild)")
        except sqlite3.DatabaseError as exc:
            msg = f"search index {self.path}: {exc} (rebuild it: citywatch search --rebuild)"
            raise InputError(msg) from exc

    # -- writing -------------------------------------------------------------------------------

    def add(self, docs: Iterable[Doc], positions: Mapping[str, str] | None = None) -> int:
        """Insert or replace ``docs`` and record ``positions``; one transaction. Returns count.

        A document replaces the stored one of the same ``doc_id`` (the newer is kept when
        one batch holds both) and takes a new rowid, so rowid order stays arrival order.
        """
        latest = {d.doc_id: d for d in docs}
        db = self.db
        with db:
            ids = list(latest)
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                old = db.execute(
                    "SELECT rowid, title, body FROM docs WHERE doc_id IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                if old:
                    db.executemany(
                        "INSERT INTO fts(fts, rowid, title, body) VALUES('delete', ?, ?, ?)",
                        [(r[0], index_text(r[1]), index_text(r[2])) for r in old],
                    )
                    db.executemany("DELETE FROM docs WHERE rowid = ?", [(r[0],) for r in old])
            top = db.execute("SELECT max(rowid) FROM docs").fetchone()[0] or 0
            new = list(latest.values())
            first = top + 1
            db.executemany(
                f"INSERT INTO docs(rowid, {_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(first + i, *_row(d)) for i, d in enumerate(new)],
            )
            db.executemany(
                "INSERT INTO fts(rowid, title, body) VALUES(?, ?, ?)",
                [(first + i, index_text(d.title), index_text(d.body)) for i, d in enumerate(new)],
            )
            if positions:
                db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES(?, ?)",
                    [(f"pos:{k}", v) for k, v in positions.items()],
                )
        return len(latest)

    def positions(self) -> dict[str, str]:
        """Stream name -> the last entry id indexed."""
        rows = self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'pos:%'").fetchall()
        return {k[4:]: v for k, v in rows}

    def get(self, doc_id: str) -> Doc | None:
        sql = f"SELECT {_COLUMNS} FROM docs WHERE doc_id = ?"
        row = self.db.execute(sql, (doc_id,)).fetchone()
        return None if row is None else _doc(row)

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM docs").fetchone()[0])

    def clear(self) -> None:
        """Drop every document and position (before a rebuild)."""
        with self.db:
            self.db.execute("DELETE FROM docs")
            self.db.execute("INSERT INTO fts(fts) VALUES('delete-all')")
            self.db.execute("DELETE FROM meta WHERE key LIKE 'pos:%'")

    def close(self) -> None:
        self.db.close()

    # -- reading -------------------------------------------------------------------------------

    def _rowid_bounds(self, f: Filters) -> tuple[int, int]:
        """A rowid range that holds every document of the time filter (a hint: rowid order
        is arrival order, close to event time; the exact filter is applied after)."""
        lo, hi = 0, 1 << 62
        if f.from_ms is not None:
            row = self.db.execute(
                "SELECT min(rowid) FROM "
                "(SELECT rowid FROM docs WHERE ts >= ? ORDER BY ts LIMIT 64)",
                (f.from_ms,),
            ).fetchone()
            lo = max(0, (row[0] or hi) - self.max_candidates // 4)
        if f.to_ms is not None:
            row = self.db.execute(
                "SELECT max(rowid) FROM (SELECT rowid FROM docs WHERE ts < ? "
                "ORDER BY ts DESC LIMIT 64)",
                (f.to_ms,),
            ).fetchone()
            hi = (row[0] or 0) + self.max_candidates // 4
        return lo, hi

    def search(
        self, query: str, filters: Filters | None = None, *, limit: int = 10, offset: int = 0
    ) -> Results:
        """The best ``limit`` documents for ``query`` (raises QueryError for an empty query).

        Documents with every word come first; when there are fewer than ``limit`` of them,
        documents with some of the words follow (``Hit.is_partial``, ``Results.relaxed``):
        the same incident reported by one caller by its street and by another by its
        community is still found.
        """
        t0 = time.perf_counter()
        f = filters or Filters()
        terms = terms_of(query)
        rows, matched, capped = self._ranked(query, match_expression(query), f, limit, offset)
        hits = [Hit(_doc(r[:-1]), -float(r[-1]), best_snippet(_doc(r[:-1]), terms)) for r in rows]
        relaxed = False
        if len(hits) < limit and word_count(query) > 1:
            seen = {h.doc.doc_id for h in hits}
            more, _, _ = self._ranked(
                query, match_expression(query, any_word=True), f, limit + len(seen), 0
            )
            for r in more:
                doc = _doc(r[:-1])
                if doc.doc_id not in seen and len(hits) < limit:
                    hits.append(Hit(doc, -float(r[-1]), best_snippet(doc, terms), True))
                    relaxed = True
        took = (time.perf_counter() - t0) * 1000
        return Results(query, hits, matched, capped, took, terms, relaxed)

    def _ranked(
        self, query: str, expr: str, f: Filters, limit: int, offset: int
    ) -> tuple[list[Any], int, bool]:
        """Rows ranked by BM25 then recency among the newest ``max_candidates`` matches of
        ``expr`` in the filters' time range; the number of matches (capped) and whether the
        cap applied."""
        lo, hi = self._rowid_bounds(f)
        where, params = f.where()
        cap = self.max_candidates
        try:
            newest = self.db.execute(
                "SELECT rowid FROM fts WHERE fts MATCH ? AND rowid BETWEEN ? AND ? "
                "ORDER BY rowid DESC LIMIT ?",
                (expr, lo, hi, cap + 1),
            ).fetchall()
            capped = len(newest) > cap
            low = newest[-1][0] + 1 if capped else lo
            sql = (
                f"SELECT {_D_COLUMNS}, bm25(fts, 2.0, 1.0) AS score "
                "FROM fts JOIN docs d ON d.rowid = fts.rowid "
                f"WHERE fts MATCH ? AND fts.rowid BETWEEN ? AND ? AND {where} "
                "ORDER BY score, d.ts DESC LIMIT ? OFFSET ?"
            )
            rows = self.db.execute(sql, (expr, low, hi, *params, limit, offset)).fetchall()
        except sqlite3.OperationalError as exc:  # a malformed expression: our bug, say so
            msg = f"query {query!r}: {exc}"
            raise QueryError(msg) from exc
        return rows, min(len(newest), cap), capped

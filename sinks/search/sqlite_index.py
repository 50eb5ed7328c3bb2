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

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from citywatch.errors import InputError
from sinks.search.documents import Doc
from sinks.search.engine import Engine, Filters, Hit, Near, Results, best_snippet, snippet
from sinks.search.places import place_text
from sinks.search.tokens import Query, QueryError, index_text, match_expression

__all__ = ["Filters", "Hit", "Results", "SqliteIndex", "best_snippet", "fts_row", "snippet"]

log = logging.getLogger(__name__)

#: The index format (tokens, columns, place cells); an index of another version is rebuilt.
SCHEMA_VERSION: Final = "2"
_TABLES: Final = """
-- What filters read, narrow, so ranking thousands of matches reads few pages ...
CREATE TABLE IF NOT EXISTS docs(
    rowid INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL, ts INTEGER NOT NULL,
    district TEXT NOT NULL, town TEXT NOT NULL, rule TEXT NOT NULL,
    level INTEGER NOT NULL, status TEXT NOT NULL, lat REAL, lon REAL
);
CREATE INDEX IF NOT EXISTS docs_ts ON docs(ts);
-- ... and what is shown, read for the page of results only.
CREATE TABLE IF NOT EXISTS texts(
    rowid INTEGER PRIMARY KEY, ref TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    grid TEXT NOT NULL
);
-- Our tokens come space separated and lower case: the ascii tokenizer splits them (every
-- non-ASCII character is a token character), cheaper than unicode61.
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    title, body, place, content='', tokenize='ascii'
);
"""
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);" + _TABLES
)
#: FTS5 merges: fewer, larger merges while indexing (the default 4 merges each level every
#: 4 segments); 16 segments before a merge must run (default 16); the terms of a transaction
#: gathered in up to 32 MiB of memory before they are written as a segment (default 1 MiB:
#: a catch-up batch of 5,000 tickets, about 95 tokens each, was several segments to merge;
#: the full-text part of indexing 200,000 tickets took 45 µs a ticket instead of 58).
_MERGE: Final = (("automerge", 8), ("crisismerge", 16), ("hashsize", 32 << 20))
_DOCS: Final = "doc_id, kind, ts, district, town, rule, level, status, lat, lon"
_TEXTS: Final = "ref, title, body, grid"
#: A document's columns, as :func:`_doc` reads them (docs d, texts t).
_SELECT: Final = (
    "d.doc_id, d.kind, t.ref, d.ts, t.title, t.body, d.district, d.town, t.grid, d.rule, "
    "d.level, d.status, d.lat, d.lon FROM docs d JOIN texts t ON t.rowid = d.rowid"
)


def _doc(row: Sequence[Any]) -> Doc:
    return Doc(
        doc_id=row[0], kind=row[1], ref=row[2], ts=row[3], title=row[4], body=row[5],
        district=row[6], town=row[7], grid=row[8], rule=row[9], level=row[10], status=row[11],
        lat=row[12], lon=row[13],
    )  # fmt: skip


def fts_row(
    kind: str, title: str, body: str, rule: str, lat: Any, lon: Any, town: str, district: str
) -> tuple[str, str, str]:
    """What the full-text index holds of a document: its title, body and place tokens.
    A ticket's title is its category and the start of its text, which the body holds: only
    the category is indexed as its title (a quarter less to tokenize and index)."""
    return (
        index_text(rule if kind == "ticket" else title),
        index_text(body),
        place_text(lat, lon, town, district),
    )


def _indexed(d: Doc) -> tuple[str, str, str, str, Any, Any, str, str]:
    """The fields :func:`fts_row` reads (the columns the delete of a replaced row reads)."""
    return (d.kind, d.title, d.body, d.rule, d.lat, d.lon, d.town, d.district)


class SqliteIndex(Engine):
    """The search index in one SQLite file (``":memory:"`` for tests).

    ``add`` upserts documents by ``doc_id`` (and stores stream positions) in one
    transaction; ``search`` ranks; ``positions`` are the stream ids indexed so far. An index
    of an older format is emptied when opened (``rebuilt``): the feeder fills it again from
    the streams, as ``citywatch search --rebuild`` would.
    """

    def __init__(self, path: str | Path, *, max_candidates: int = 5_000) -> None:
        self.path = str(path)
        self.max_candidates = max_candidates
        self.rebuilt = False
        #: The rowid range of the filters of the search being answered (its fetches share it).
        self._bounds: tuple[Filters, int, int] | None = None
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
            self.db.execute("PRAGMA temp_store=MEMORY")
            self.db.executescript(_SCHEMA)
            version = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is not None and version[0] != SCHEMA_VERSION:
                log.warning("search index %s: format %s, now %s: emptied, to be filled again",
                            self.path, version[0], SCHEMA_VERSION)  # fmt: skip
                with self.db:
                    self.db.execute("DROP TABLE IF EXISTS fts")
                    self.db.execute("DROP TABLE IF EXISTS docs")
                    self.db.execute("DROP TABLE IF EXISTS texts")
                    self.db.execute("DELETE FROM meta")
                self.db.executescript(_TABLES)
                self.rebuilt = True
                version = None
            if version is None:
                with self.db:
                    self.db.execute("INSERT INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
                    for name, value in _MERGE:
                        self.db.execute("INSERT INTO fts(fts, rank) VALUES(?, ?)", (name, value))
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
                    "SELECT d.rowid, d.kind, t.title, t.body, d.rule, d.lat, d.lon, d.town, "
                    "d.district FROM docs d JOIN texts t ON t.rowid = d.rowid "
                    f"WHERE d.doc_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                if old:
                    db.executemany(
                        "INSERT INTO fts(fts, rowid, title, body, place) "
                        "VALUES('delete', ?, ?, ?, ?)",
                        [(r[0], *fts_row(*r[1:])) for r in old],
                    )
                    gone = [(r[0],) for r in old]
                    db.executemany("DELETE FROM docs WHERE rowid = ?", gone)
                    db.executemany("DELETE FROM texts WHERE rowid = ?", gone)
            top = db.execute("SELECT max(rowid) FROM docs").fetchone()[0] or 0
            new = list(latest.values())
            first = top + 1
            narrow = [
                (first + i, d.doc_id, d.kind, d.ts, d.district, d.town, d.rule, d.level,
                 d.status, d.lat, d.lon)
                for i, d in enumerate(new)
            ]  # fmt: skip
            db.executemany(
                f"INSERT INTO docs(rowid, {_DOCS}) VALUES(?,?,?,?,?,?,?,?,?,?,?)", narrow
            )
            db.executemany(
                f"INSERT INTO texts(rowid, {_TEXTS}) VALUES(?,?,?,?,?)",
                [(first + i, d.ref, d.title, d.body, d.grid) for i, d in enumerate(new)],
            )
            rows = [(first + i, *fts_row(*_indexed(d))) for i, d in enumerate(new)]
            db.executemany("INSERT INTO fts(rowid, title, body, place) VALUES(?, ?, ?, ?)", rows)
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
        sql = f"SELECT {_SELECT} WHERE d.doc_id = ?"
        row = self.db.execute(sql, (doc_id,)).fetchone()
        return None if row is None else _doc(row)

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM docs").fetchone()[0])

    def clear(self) -> None:
        """Drop every document and position (before a rebuild)."""
        with self.db:
            self.db.execute("DELETE FROM docs")
            self.db.execute("DELETE FROM texts")
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
        self._bounds = None
        return super().search(query, filters, limit=limit, offset=offset)

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
        """See :meth:`Engine._fetch`: FTS5 ``bm25`` among the newest matches (rowid order) that
        pass the filters."""
        expr = "{title body}: (" + match_expression(q) + ")"
        for at in near:
            alts = []
            if at.tokens:
                alts.append("place: (" + " OR ".join(f'"{t}"' for t in sorted(at.tokens)) + ")")
            if at.names:
                alts.append("{title body}: (" + match_expression(Query((at.names,))) + ")")
            expr += " AND (" + " OR ".join(alts or ['place: "-"']) + ")"
        if self._bounds is None or self._bounds[0] is not f:
            self._bounds = (f, *self._rowid_bounds(f))
        lo, hi = self._bounds[1:]
        where, params = f.where()
        cap = cap or self.max_candidates
        try:
            # the newest cap + 1 matches within the filters, each with its BM25: one pass
            newest = self.db.execute(
                "SELECT d.rowid, bm25(fts, 2.0, 1.0, 0.0), d.ts "
                "FROM fts JOIN docs d ON d.rowid = fts.rowid "
                f"WHERE fts MATCH ? AND fts.rowid BETWEEN ? AND ? AND {where} "
                "ORDER BY fts.rowid DESC LIMIT ?",
                (expr, lo, hi, *params, cap + 1),
            ).fetchall()
        except sqlite3.OperationalError as exc:  # a malformed expression: our bug, say so
            msg = f"query {query!r}: {exc}"
            raise QueryError(msg) from exc
        capped = len(newest) > cap
        ranked = sorted(newest[:cap], key=lambda r: (r[1], -r[2]))[offset : offset + limit]
        shown = {
            r[0]: _doc(r[1:])
            for r in self.db.execute(
                f"SELECT d.rowid, {_SELECT} WHERE d.rowid IN ({','.join('?' * len(ranked))})",
                [r[0] for r in ranked],
            )
        }
        out = [(shown[rowid], -float(score)) for rowid, score, _ in ranked]
        return out, min(len(newest), cap), capped

"""The search index on PostgreSQL: the same documents, tokens and ranking as the SQLite one,
for a deployment that outgrows one machine (several feed services and CLI users on one
index, a database the operators already back up).

Each document's title and body are indexed as a ``tsvector`` of our own tokens (``simple``
configuration: our bigrams and words pass through unchanged; title weight A, body B) with a
GIN index; queries are ``tsquery`` phrases of the same tokens (:func:`tsquery_expression`).
Like the SQLite index it ranks the newest ``max_candidates`` matches (``ts_rank``, then
recency). Needs ``psycopg`` (``pip install 'citywatch[postgres]'``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from citywatch.errors import ConfigError, StoreError
from sinks.search.documents import Doc
from sinks.search.sqlite_index import Filters, Hit, Results, best_snippet
from sinks.search.tokens import QueryError, index_text, terms_of, tsquery_expression, word_count

__all__ = ["PostgresIndex"]

_FIELDS: Final = (
    "doc_id", "kind", "ref", "ts", "title", "body", "district", "town", "grid", "rule",
    "level", "status", "lat", "lon",
)  # fmt: skip


class PostgresIndex:
    """The search index in PostgreSQL tables ``<table_prefix>_docs`` and ``_meta``."""

    def __init__(self, url: str, *, table_prefix: str = "cw", max_candidates: int = 5_000) -> None:
        try:
            import psycopg
        except ImportError as exc:
            msg = (
                "search_url is PostgreSQL but psycopg is missing: pip install 'citywatch[postgres]'"
            )
            raise ConfigError(msg) from exc
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", table_prefix):
            msg = f"search table prefix {table_prefix!r}: letters, digits and _ only"
            raise ConfigError(msg)
        self.max_candidates = max_candidates
        self.docs = f"{table_prefix}_search_docs"
        self.meta = f"{table_prefix}_search_meta"
        try:
            self.db = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            msg = f"search index at {_safe(url)}: {str(exc).strip().splitlines()[0]}"
            raise StoreError(msg) from exc
        with self.db.transaction():
            self.db.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.docs}(
                    rid BIGSERIAL PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL, ref TEXT NOT NULL, ts BIGINT NOT NULL,
                    title TEXT NOT NULL, body TEXT NOT NULL, district TEXT NOT NULL,
                    town TEXT NOT NULL, grid TEXT NOT NULL, rule TEXT NOT NULL,
                    level INTEGER NOT NULL, status TEXT NOT NULL, lat DOUBLE PRECISION,
                    lon DOUBLE PRECISION, tsv TSVECTOR NOT NULL)"""
            )
            self.db.execute(
                f"CREATE INDEX IF NOT EXISTS {self.docs}_tsv ON {self.docs} USING gin(tsv)"
            )
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {self.docs}_ts ON {self.docs}(ts)")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.meta}(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )

    def add(self, docs: Iterable[Doc], positions: Mapping[str, str] | None = None) -> int:
        latest = {d.doc_id: d for d in docs}
        cols = ", ".join(_FIELDS)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _FIELDS[1:])
        sql = (
            f"INSERT INTO {self.docs}({cols}, tsv) VALUES({', '.join(['%s'] * len(_FIELDS))}, "
            "setweight(to_tsvector('simple', %s), 'A') "
            "|| setweight(to_tsvector('simple', %s), 'B')) "
            f"ON CONFLICT (doc_id) DO UPDATE SET {sets}, tsv = EXCLUDED.tsv, "
            f"rid = nextval(pg_get_serial_sequence('{self.docs}', 'rid'))"
        )
        rows = [
            (*(getattr(d, f) for f in _FIELDS), index_text(d.title), index_text(d.body))
            for d in latest.values()
        ]
        with self.db.transaction(), self.db.cursor() as cur:
            if rows:
                cur.executemany(sql, rows)
            if positions:
                cur.executemany(
                    f"INSERT INTO {self.meta} VALUES(%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [(f"pos:{k}", v) for k, v in positions.items()],
                )
        return len(latest)

    def positions(self) -> dict[str, str]:
        rows = self.db.execute(f"SELECT key, value FROM {self.meta} WHERE key LIKE 'pos:%%'")
        return {k[4:]: v for k, v in rows.fetchall()}

    def get(self, doc_id: str) -> Doc | None:
        row = self.db.execute(
            f"SELECT {', '.join(_FIELDS)} FROM {self.docs} WHERE doc_id = %s", (doc_id,)
        ).fetchone()
        return None if row is None else Doc(**dict(zip(_FIELDS, row, strict=True)))

    def count(self) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {self.docs}").fetchone()[0])  # type: ignore[index]

    def clear(self) -> None:
        with self.db.transaction():
            self.db.execute(f"TRUNCATE {self.docs}")
            self.db.execute(f"DELETE FROM {self.meta} WHERE key LIKE 'pos:%%'")

    def drop(self) -> None:
        """Remove the tables (tests)."""
        with self.db.transaction():
            self.db.execute(f"DROP TABLE IF EXISTS {self.docs}, {self.meta}")

    def close(self) -> None:
        self.db.close()

    def search(
        self, query: str, filters: Filters | None = None, *, limit: int = 10, offset: int = 0
    ) -> Results:
        """As :meth:`SqliteIndex.search`: every word first, then some of them."""
        t0 = time.perf_counter()
        f = filters or Filters()
        terms = terms_of(query)
        rows, n = self._ranked(query, tsquery_expression(query), f, limit, offset)
        hits = [self._hit(r, terms) for r in rows]
        relaxed = False
        if len(hits) < limit and word_count(query) > 1:
            seen = {h.doc.doc_id for h in hits}
            more, _ = self._ranked(
                query, tsquery_expression(query, any_word=True), f, limit + len(seen), 0
            )
            for r in more:
                hit = self._hit(r, terms, partial=True)
                if hit.doc.doc_id not in seen and len(hits) < limit:
                    hits.append(hit)
                    relaxed = True
        took = (time.perf_counter() - t0) * 1000
        cap = self.max_candidates
        return Results(query, hits, min(n, cap), n > cap, took, terms, relaxed)

    @staticmethod
    def _hit(row: Any, terms: list[str], *, partial: bool = False) -> Hit:
        doc = Doc(**dict(zip(_FIELDS, row[: len(_FIELDS)], strict=True)))
        return Hit(doc, float(row[-2]), best_snippet(doc, terms), partial)

    def _ranked(
        self, query: str, tsq: str, f: Filters, limit: int, offset: int
    ) -> tuple[list[Any], int]:
        import psycopg

        where, params = _where(f)
        try:
            with self.db.transaction():
                rows = self.db.execute(
                    f"""WITH q AS (SELECT to_tsquery('simple', %s) AS q),
                    newest AS (
                        SELECT d.rid FROM {self.docs} d, q WHERE d.tsv @@ q.q AND {where}
                        ORDER BY d.rid DESC LIMIT %s)
                    SELECT {", ".join("d." + c for c in _FIELDS)},
                        ts_rank(d.tsv, q.q) AS score, (SELECT count(*) FROM newest) AS n
                    FROM {self.docs} d JOIN newest USING (rid), q
                    ORDER BY score DESC, d.ts DESC LIMIT %s OFFSET %s""",
                    (tsq, *params, self.max_candidates + 1, limit, offset),
                ).fetchall()
        except psycopg.Error as exc:
            msg = f"query {query!r}: {str(exc).strip().splitlines()[0]}"
            raise QueryError(msg) from exc
        return rows, int(rows[0][-1]) if rows else 0


def _where(f: Filters) -> tuple[str, list[Any]]:
    sql, params = f.where()
    return sql.replace("?", "%s"), params


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

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
from collections.abc import Iterable, Mapping
from typing import Final

from citywatch.errors import ConfigError, StoreError
from sinks.search.documents import Doc
from sinks.search.engine import Engine, Filters, Near
from sinks.search.sqlite_index import SCHEMA_VERSION, fts_row
from sinks.search.tokens import Query, QueryError, tsquery_expression

__all__ = ["PostgresIndex"]

_FIELDS: Final = (
    "doc_id", "kind", "ref", "ts", "title", "body", "district", "town", "grid", "rule",
    "level", "status", "lat", "lon",
)  # fmt: skip


class PostgresIndex(Engine):
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
            row = self.db.execute(f"SELECT value FROM {self.meta} WHERE key = 'schema'").fetchone()
            self.rebuilt = row is not None and row[0] != SCHEMA_VERSION
            if self.rebuilt:  # another index format: empty it, the feeder fills it again
                self.db.execute(f"TRUNCATE {self.docs}")
                self.db.execute(f"DELETE FROM {self.meta}")
            if row is None or self.rebuilt:
                self.db.execute(f"INSERT INTO {self.meta} VALUES('schema', %s)", (SCHEMA_VERSION,))

    def add(self, docs: Iterable[Doc], positions: Mapping[str, str] | None = None) -> int:
        latest = {d.doc_id: d for d in docs}
        cols = ", ".join(_FIELDS)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _FIELDS[1:])
        sql = (
            f"INSERT INTO {self.docs}({cols}, tsv) VALUES({', '.join(['%s'] * len(_FIELDS))}, "
            "setweight(to_tsvector('simple', %s), 'A') "
            "|| setweight(to_tsvector('simple', %s), 'B') "
            "|| setweight(to_tsvector('simple', %s), 'D')) "
            f"ON CONFLICT (doc_id) DO UPDATE SET {sets}, tsv = EXCLUDED.tsv, "
            f"rid = nextval(pg_get_serial_sequence('{self.docs}', 'rid'))"
        )
        rows = [
            (*(getattr(d, f) for f in _FIELDS),
             *fts_row(d.kind, d.title, d.body, d.rule, d.lat, d.lon, d.town, d.district))
            for d in latest.values()
        ]  # fmt: skip
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
        """See :meth:`Engine._fetch`: ``ts_rank`` among the newest matches (``rid`` order);
        words in the title and body (weights A, B), places in the place tokens (D)."""
        import psycopg

        where, params = f.where()
        where = where.replace("?", "%s")
        tsq = tsquery_expression(q, weights="AB")
        for at in near:
            alts = [f"'{t}':D" for t in sorted(at.tokens)]
            if at.names:
                alts.append("(" + tsquery_expression(Query((at.names,)), weights="AB") + ")")
            tsq = f"({tsq}) & (" + (" | ".join(alts) or "'-':D") + ")"
        cap = cap or self.max_candidates
        try:
            with self.db.transaction():
                rows = self.db.execute(
                    f"""WITH q AS (SELECT to_tsquery('simple', %s) AS q),
                    newest AS (
                        SELECT d.rid FROM {self.docs} d, q WHERE d.tsv @@ q.q AND {where}
                        ORDER BY d.rid DESC LIMIT %s)
                    SELECT {", ".join("d." + c for c in _FIELDS)},
                        ts_rank('{{0, 0, 0.4, 1}}', d.tsv, q.q) AS score,
                        (SELECT count(*) FROM newest) AS n
                    FROM {self.docs} d JOIN newest USING (rid), q
                    ORDER BY score DESC, d.ts DESC LIMIT %s OFFSET %s""",
                    (
                        tsq,
                        *params,
                        cap + 1,
                        limit,
                        offset,
                    ),
                ).fetchall()
        except psycopg.Error as exc:
            msg = f"query {query!r}: {str(exc).strip().splitlines()[0]}"
            raise QueryError(msg) from exc
        n = int(rows[0][-1]) if rows else 0
        docs = [
            (Doc(**dict(zip(_FIELDS, r[: len(_FIELDS)], strict=True))), float(r[-2])) for r in rows
        ]
        return docs, min(n, cap), n > cap


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

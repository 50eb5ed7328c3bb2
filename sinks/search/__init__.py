"""Intelligent search: full-text search over alerts, hotline tickets and work orders.

- :mod:`sinks.search.tokens`: Chinese bigrams and ASCII words; the query syntax;
- :mod:`sinks.search.documents`: the documents, built from the streams' entries;
- :mod:`sinks.search.sqlite_index`: the embedded index (SQLite FTS5), the default;
- :mod:`sinks.search.postgres_index`: the same on PostgreSQL, for more than one machine;
- :mod:`sinks.search.feeder`: catching an index up with the streams.

:func:`open_index` picks the backend from the settings (``search_url``: a ``postgresql://``
URL, or a file path; default ``<data_dir>/search/<prefix>.sqlite``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from citywatch.settings import Settings

__all__ = ["index_path", "open_index"]


def index_path(settings: Settings) -> Path:
    """The default SQLite file of this deployment (one per Redis key prefix)."""
    name = re.sub(r"[^0-9A-Za-z_-]+", "_", settings.prefix).strip("_") or "cw"
    return Path(settings.data_dir) / "search" / f"{name}.sqlite"


def open_index(settings: Settings, url: str | None = None) -> Any:
    """The search index named by ``url`` (else ``settings.search_url``, else the default file)."""
    target = url or settings.search_url
    if target and target.startswith(("postgresql://", "postgres://")):
        from sinks.search.postgres_index import PostgresIndex

        return PostgresIndex(target, table_prefix=index_path(settings).stem)
    from sinks.search.sqlite_index import SqliteIndex

    path = Path(target) if target else index_path(settings)
    if not target:
        path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteIndex(path)

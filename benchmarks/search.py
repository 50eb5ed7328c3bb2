"""Search at Nantong scale: index a simulated month of tickets and alerts, then mixed queries.

    .venv/bin/python benchmarks/search.py                          # 2,000,000 documents
    .venv/bin/python benchmarks/search.py --docs 200000 --queries 500 --backend both

**Corpus.** A month (``--days``, 30) of 12345 hotline tickets from the simulator's
``hotline`` scenario (its texts, places, duplicate clusters, surges), as many simulated
days of a city per calendar day as ``--docs`` needs (each from its own seed, so its own
places and people), plus one alert document per labelled duplicate cluster and surge (the
alert the hotline model raises for it). Generated once (two processes) and cached under
``--cache``; ``--seeds`` picks the base seed(s) (one corpus per seed; figures pooled).

**Indexing.** ``index_docs_per_s``: documents per second through the index's ``add`` in
batches of 5,000, as the feed's catch-up adds them (tokenizing included), into a fresh index
file (SQLite) or fresh tables (PostgreSQL, ``--pg-url``).

**Queries** (``--queries`` of them, seeded): a mix of what officers type: a category word
(噪声), two words, a place name, a place name and a category word within a day, a ticket id,
a prefix, an excluded word, each with and without a district or 7-day filter.
``query_p50_ms``/``query_p99_ms``: wall time of ``search`` (limit 10), over all of them.

**Recall.** For every duplicate cluster (several callers reporting one incident, in other
words, naming the place differently) the query an officer would type to find it: the two
words (bigrams) the cluster's tickets share that are rarest in the whole corpus, within the
cluster's day. Relevant: the cluster's tickets and its alert. ``recall_at_10`` = mean over
clusters of relevant documents in the top 10 / min(10, relevant documents).

Last line: ``{"docs": ..., "index_docs_per_s": ..., "query_p50_ms": ..., "query_p99_ms": ...,
"recall_at_10": ...}`` (with ``--backend both``, per backend under ``"backends"``, the
SQLite figures at the top level).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import orjson

from citywatch.cli_options import parse_seeds
from sinks.search.documents import Doc, alert_doc, ticket_doc
from sinks.search.sqlite_index import Filters, SqliteIndex
from sinks.search.tokens import tokens

DAY_MS = 86_400_000
T0 = 1_796_140_800_000  # 2026-12-01T00:00:00+08:00
TICKETS_PER_CITY_DAY = 12_000  # about what the hotline scenario gives at scale 1
CATEGORY_ZH = {
    "noise": "噪声扰民", "odor": "异味废气", "garbage": "垃圾清运", "traffic": "交通秩序",
    "construction": "施工扬尘", "water": "供水问题", "vending": "占道经营",
    "streetlight": "路灯故障",
}  # fmt: skip
ENC = msgspec.json.Encoder()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the corpus --------------------------------------------------------------------------------


def _city_day(args: tuple[int, int]) -> tuple[list[bytes], list[dict[str, Any]]]:
    """One simulated city day: its tickets (event JSON) and its cluster/surge labels."""
    from simulators import simulate

    seed, day = args
    sim = simulate("hotline", seed=seed, scale=1.0, start_ms=T0 + day * DAY_MS,
                   duration_s=86_400, duplicate_clusters=40, surges=2)  # fmt: skip
    tickets = [r for r in sim.records() if r[:40].find(b'"hotline"') >= 0]
    labels = [msgspec.to_builtins(lab) for lab in sim.labels]
    return tickets, labels


def build_corpus(seed: int, docs: int, days: int, cache: Path) -> Path:
    """Generate (or reuse) the corpus file for these parameters; returns its path."""
    cities = max(1, math.ceil(docs / (days * TICKETS_PER_CITY_DAY)))
    path = cache / f"search-s{seed}-d{days}-c{cities}.jsonl.gz"
    if path.exists():
        log(f"search: cached corpus {path}")
        return path
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [(seed * 100_000 + c * 1000 + d, d) for d in range(days) for c in range(cities)]
    log(f"search: simulating {len(jobs)} city days ({cities} per day x {days} days)")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    t0 = time.monotonic()
    n = 0
    with gzip.open(tmp, "wb", compresslevel=3) as out, ProcessPoolExecutor(2) as pool:
        for i, (tickets, labels) in enumerate(pool.map(_city_day, jobs, chunksize=2)):
            for t in tickets:
                out.write(b'{"t":' + t + b"}\n")
            for lab in labels:
                out.write(b'{"l":' + orjson.dumps(lab) + b"}\n")
            n += len(tickets)
            if i % 20 == 19:
                log(
                    f"  {i + 1}/{len(jobs)} city days, {n:,} tickets, {time.monotonic() - t0:.0f} s"
                )
    tmp.rename(path)
    return path


def _locator() -> Any:
    """The simulated city's districts, towns and grids (the same for every seed)."""
    from citywatch.tiers import Locator
    from simulators.geography import DISTRICTS
    from simulators.towns import build_grids, build_towns

    towns = build_towns()
    return Locator([(d.name, (d.ring,)) for d in DISTRICTS], {t.id: t for t in towns},
                   build_grids(towns))  # fmt: skip


def load_corpus(path: Path) -> tuple[list[Doc], list[dict[str, Any]]]:
    """Documents (tickets, then the alerts of clusters and surges) and the cluster labels;
    tickets are placed in their district and town as the feed's indexer places them."""
    docs: list[Doc] = []
    labels: list[dict[str, Any]] = []
    loc = _locator()
    with gzip.open(path, "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            if "t" in rec:
                t = rec["t"]
                if t.get("lat") is not None:
                    where = loc.locate(t["lat"], t["lon"])
                    t["district"], t["town"] = where.district, where.town
                docs.append(ticket_doc(t))
            else:
                labels.append(rec["l"])
    by_id = {d.ref: d for d in docs}
    for i, lab in enumerate(labels):
        tickets = lab["params"].get("tickets") or []
        first = by_id.get(tickets[0]) if tickets else None
        if lab["rule"] not in ("hotline.duplicate", "hotline.surge") or first is None:
            continue
        cat = CATEGORY_ZH.get(str(lab["params"].get("category")), "")
        title = ("热线重复工单：" if lab["rule"] == "hotline.duplicate" else "热线激增：") + cat
        docs.append(alert_doc({
            "id": f"A{i}-{lab['subject_id']}", "rule": lab["rule"], "level": "yellow",
            "state": "resolved", "subject": {"kind": lab["subject_kind"], "id": lab["subject_id"]},
            "first_ts": lab["start_ms"], "last_ts": lab["end_ms"], "district": first.district,
            "title": title, "lat": lab["params"].get("lat"), "lon": lab["params"].get("lon"),
            "evidence": {"text": first.body[:200], "tickets": tickets[:20]},
        }))  # fmt: skip
        lab["alert"] = f"A{i}-{lab['subject_id']}"
    docs.sort(key=lambda d: d.ts)  # the order they would reach the index
    return docs, [lab for lab in labels if lab["rule"] == "hotline.duplicate"]


# -- queries -----------------------------------------------------------------------------------


def cluster_queries(
    docs: list[Doc], clusters: list[dict[str, Any]]
) -> list[tuple[str, Filters, set[str]]]:
    """Per cluster: (the two rarest shared words, its day, the relevant refs)."""
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(tokens(d.body)))
    by_ref = {d.ref: d for d in docs if d.kind == "ticket"}
    out = []
    for lab in clusters:
        members = [by_ref[t] for t in lab["params"].get("tickets", []) if t in by_ref]
        if len(members) < 2:
            continue
        counts: Counter[str] = Counter()
        for m in members:
            counts.update(t for t in set(tokens(m.body)) if len(t) == 2)
        shared = [t for t, c in counts.items() if c >= 2]
        if not shared:
            continue
        words = sorted(shared, key=lambda t: (df[t], t))[:2]
        day0 = (lab["start_ms"] - T0) // DAY_MS * DAY_MS + T0
        relevant = {m.ref for m in members} | ({lab["alert"]} if "alert" in lab else set())
        out.append((" ".join(words), Filters(from_ms=day0, to_ms=day0 + 2 * DAY_MS), relevant))
    return out


def mixed_queries(docs: list[Doc], n: int, seed: int) -> list[tuple[str, Filters]]:
    rng = random.Random(seed)
    tickets = [d for d in docs if d.kind == "ticket"]
    districts = sorted({d.district for d in docs if d.district}) or [""]
    places = []
    for d in rng.sample(tickets, min(2000, len(tickets))):
        runs = [t for t in tokens(d.body) if len(t) == 2]
        if len(runs) > 3:
            i = rng.randrange(len(runs) - 1)
            places.append(runs[i] + runs[i + 1][1])
    words = ["噪声", "垃圾", "异味", "路灯", "施工", "扬尘", "占道", "停水", "投诉", "不亮", "臭味"]
    end = max(d.ts for d in docs)
    out: list[tuple[str, Filters]] = []
    for _ in range(n):
        kind = rng.randrange(7)
        if kind == 0:
            q = rng.choice(words)
        elif kind == 1:
            q = " ".join(rng.sample(words, 2))
        elif kind == 2:
            q = rng.choice(places)
        elif kind == 3:
            q = f"{rng.choice(places)} {rng.choice(words)}"
        elif kind == 4:
            q = rng.choice(tickets).ref
        elif kind == 5:
            q = rng.choice(tickets).ref[:8] + "*"
        else:
            q = f"{rng.choice(words)} -{rng.choice(words)}"
        f = Filters()
        if rng.random() < 0.3:
            f = Filters(districts=(rng.choice(districts),))
        elif rng.random() < 0.3:
            f = Filters(from_ms=end - 7 * DAY_MS)
        out.append((q, f))
    return out


# -- one backend -------------------------------------------------------------------------------


def open_backend(name: str, work: Path, pg_url: str) -> Any:
    if name == "sqlite":
        path = work / f"search-{uuid.uuid4().hex[:8]}.sqlite"
        return SqliteIndex(path)
    from sinks.search.postgres_index import PostgresIndex

    return PostgresIndex(pg_url, table_prefix=f"bench{uuid.uuid4().hex[:8]}")


def measure(
    name: str,
    docs: list[Doc],
    recall_qs: list[tuple[str, Filters, set[str]]],
    mixed: list[tuple[str, Filters]],
    work: Path,
    pg_url: str,
) -> dict[str, Any]:
    idx = open_backend(name, work, pg_url)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(docs), 5000):
            idx.add(docs[i : i + 5000], {"tickets": str(i)})
        index_s = time.perf_counter() - t0
        log(f"{name}: indexed {len(docs):,} documents in {index_s:.1f} s")
        times = []
        for q, f in mixed:
            t = time.perf_counter()
            idx.search(q, f, limit=10)
            times.append((time.perf_counter() - t) * 1000)
        recalls = []
        for q, f, relevant in recall_qs:
            t = time.perf_counter()
            hits = idx.search(q, f, limit=10).hits
            times.append((time.perf_counter() - t) * 1000)
            found = {h.doc.ref for h in hits} & relevant
            recalls.append(len(found) / min(10, len(relevant)))
        times.sort()
        p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
        return {
            "docs": len(docs),
            "index_docs_per_s": round(len(docs) / index_s),
            "query_p50_ms": round(statistics.median(times), 2),
            "query_p99_ms": round(p99, 2),
            "recall_at_10": round(statistics.fmean(recalls), 4) if recalls else None,
            "queries": len(times),
            "recall_queries": len(recalls),
        }
    finally:
        if name == "postgres":
            idx.drop()
        idx.close()
        if name == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(idx.path + suffix).unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=2_000_000, help="about this many tickets")
    ap.add_argument("--days", type=int, default=30, help="calendar days the corpus spans")
    ap.add_argument("--queries", type=int, default=2000, help="mixed queries to time")
    ap.add_argument("--seeds", type=parse_seeds, default=[1], help="corpus seeds, e.g. 1-2")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("CW_BENCH_PG_URL",
                    "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    ap.add_argument("--cache", type=Path, default=Path("var/bench"), help="corpus cache")
    ap.add_argument("--work", type=Path, default=Path("var/bench"), help="index files")
    args = ap.parse_args()
    if args.docs < 1000 or args.days < 1 or args.queries < 1:
        ap.error("--docs >= 1000, --days >= 1, --queries >= 1")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for seed in args.seeds:
        docs, clusters = load_corpus(build_corpus(seed, args.docs, args.days, args.cache))
        recall_qs = cluster_queries(docs, clusters)
        mixed = mixed_queries(docs, args.queries, seed)
        log(f"seed {seed}: {len(docs):,} documents, {len(recall_qs)} cluster queries")
        for b in backends:
            r = measure(b, docs, recall_qs, mixed, args.work, args.pg_url)
            log(f"  {b}: {json.dumps(r)}")
            results[b].append(r)

    def pooled(rs: list[dict[str, Any]]) -> dict[str, Any]:
        recalls = [r["recall_at_10"] for r in rs if r["recall_at_10"] is not None]
        return {
            "docs": rs[0]["docs"] if len(rs) == 1 else [r["docs"] for r in rs],
            "index_docs_per_s": min(r["index_docs_per_s"] for r in rs),
            "query_p50_ms": max(r["query_p50_ms"] for r in rs),
            "query_p99_ms": max(r["query_p99_ms"] for r in rs),
            "recall_at_10": round(statistics.fmean(recalls), 4) if recalls else None,
        }

    out = pooled(results[backends[0]])
    if len(backends) > 1:
        out["backends"] = {b: pooled(rs) for b, rs in results.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

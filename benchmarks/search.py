"""Search at Nantong scale: index a simulated month of tickets and alerts, then mixed queries.

    .venv/bin/python benchmarks/search.py                          # 2,000,000 documents
    .venv/bin/python benchmarks/search.py --docs 200000 --days 3 --backend both

**Corpus.** ``--days`` (30) of 12345 hotline tickets from the simulator's ``hotline``
scenario (its texts, places, duplicate clusters, surges): simulated city days of
``TICKETS_PER_CITY_DAY`` (21,000, the real platform's day, asked of the simulator; its rule
that background tickets never duplicate one another leaves about 17,000), one more on each
calendar day in turn until there are ``--docs`` tickets (each city day from its own seed: its
own places and people; the cities of one day are moved apart on the map), plus one alert
document per labelled duplicate cluster and surge (the alert the hotline model raises for
it). Generated once (two processes) and cached under ``--cache``; ``--seeds`` picks the base
seed(s) (one corpus per seed; figures pooled). The index knows the cities' place names, as
the feed knows them from the registry (:mod:`sinks.search.places`).

**Indexing.** ``index_docs_per_s``: documents per second through the index's ``add`` in
batches of 5,000, as the feed's catch-up adds them (tokenizing included), into a fresh index
file (SQLite) or fresh tables (PostgreSQL, ``--pg-url``).

**Queries** (``--queries`` of them, seeded): a mix of what officers type: a category word
(噪声), two words, a place name, a place name and a category word, a ticket id, the start of
one (12 of its 18 digits) as a prefix, an excluded word, each with and without a district or
7-day filter; and the recall queries.
``query_p50_ms``/``query_p99_ms``: wall time of ``search`` (limit 10), over all of them.

**Recall** (:func:`recall_queries`). Per duplicate cluster, an officer reads one of its
tickets and types its words that say what the problem is (jieba's words, the ones most
characteristic of the ticket's problem family): with the most specific place the ticket
names, to find the other reports of the incident (*incident* queries; relevant: the
cluster's other tickets and its alert, and the tickets about the same problem at the place
typed), and alone, to find the reports of the problem (*family* queries; relevant: the
tickets of the ticket's problem family); within the day the cluster started and the next.
The ticket read is never relevant. A query's recall is the relevant documents in its top 10
/ min(10, relevant documents); ``recall_at_10`` is the mean over all recall queries (stderr
has it per kind, and the incident queries' recall of the incident's own reports alone).

Last line: ``{"docs": ..., "index_docs_per_s": ..., "query_p50_ms": ..., "query_p99_ms": ...,
"recall_at_10": ...}`` (with ``--backend both``, per backend under ``"backends"``, the
SQLite figures at the top level).
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
import rjieba

from citywatch.cli_options import parse_seeds
from citywatch.events import encode
from simulators.complaints import CATEGORIES
from sinks.search.documents import Doc, alert_doc, ticket_doc
from sinks.search.places import Gazetteer, place_text
from sinks.search.sqlite_index import Filters, SqliteIndex
from sinks.search.tokens import simplified

DAY_MS = 86_400_000
T0 = 1_796_140_800_000  # 2026-12-01T00:00:00+08:00
#: Tickets a day on the real platform (Nantong's 12345): each simulated city day asks the
#: simulator for this many (its rule that background tickets never duplicate one another
#: leaves about 17,000 of them).
TICKETS_PER_CITY_DAY = 21_000
CORPUS_VERSION = 3
ENC = msgspec.json.Encoder()
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the corpus --------------------------------------------------------------------------------


def _city_day(args: tuple[int, int]) -> list[bytes]:
    """One simulated city day as corpus lines: its tickets (the intake record, as
    ``cw:tickets`` holds it, and the ticket's true problem family) and its cluster and
    surge labels."""
    from simulators import simulate
    from simulators.scenario import Profile

    seed, day = args
    sim = simulate("hotline", seed=seed, scale=TICKETS_PER_CITY_DAY / Profile("x").tickets_per_day,
                   start_ms=T0 + day * DAY_MS, duration_s=86_400, duplicate_clusters=40,
                   surges=2)  # fmt: skip
    out = [b'{"c":%d}' % seed]  # the city: its address book is the seed's
    out += [
        b'{"t":' + encode(t.intake()) + b',"f":"' + t.family.encode() + b'"}' for t in sim.tickets()
    ]
    out += [
        b'{"l":' + ENC.encode(lab) + b"}"
        for lab in sim.labels
        if lab.rule in ("hotline.duplicate", "hotline.surge")
    ]
    return out


def build_corpus(seed: int, docs: int, days: int, cache: Path) -> Path:
    """Generate (or reuse) the corpus: simulated city days, one more on each calendar day in
    turn, until it holds ``docs`` tickets. Returns its path."""
    path = cache / f"search-v{CORPUS_VERSION}-s{seed}-n{docs}-d{days}.jsonl.gz"
    if path.exists():
        log(f"search: cached corpus {path}")
        return path
    cache.mkdir(parents=True, exist_ok=True)
    jobs = ((seed * 100_000 + c * 1000 + d, d) for c in range(1000) for d in range(days))
    log(f"search: simulating city days of {TICKETS_PER_CITY_DAY:,} tickets until {docs:,}")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    t0 = time.monotonic()
    n = done = 0
    with gzip.open(tmp, "wb", compresslevel=3) as out, ProcessPoolExecutor(2) as pool:
        pending = [pool.submit(_city_day, next(jobs)) for _ in range(3)]
        while n < docs:
            lines = pending.pop(0).result()
            pending.append(pool.submit(_city_day, next(jobs)))
            out.writelines(line + b"\n" for line in lines)
            n += sum(1 for line in lines if line.startswith(b'{"t"'))
            done += 1
            log(f"  {done} city days, {n:,} tickets, {time.monotonic() - t0:.0f} s")
        for f in pending:
            f.cancel()
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


#: Simulated cities of one day lie this many degrees of longitude apart (the region is
#: about 1.7 degrees wide).
CITY_SPACING_DEG = 2.0


def city_shift(seed: int) -> float:
    """How far east the city of ``seed`` is moved (the n-th city of a day: n spacings)."""
    return CITY_SPACING_DEG * ((seed % 100_000) // 1000)


def load_corpus(
    path: Path,
) -> tuple[list[Doc], list[dict[str, Any]], dict[str, str], list[int]]:
    """Documents (tickets, and one alert per duplicate cluster and surge, as the hotline
    model raises them) in arrival order, and the duplicate clusters' labels (each with the
    family of its tickets and its alert's ref). Tickets are placed in their district and town
    as the feed's indexer places them. Also each ticket's problem family and the cities' seeds.

    The cities of one day are simulated on one map (each with its own places and people);
    they are moved apart, :func:`city_shift` degrees east each, so that one city's tickets
    are not at another's places: the simulator's rule that two tickets about one problem
    near each other on one day are one incident holds within a city, not across cities."""
    docs: list[Doc] = []
    labels: list[dict[str, Any]] = []
    family: dict[str, str] = {}
    said: dict[str, str] = {}  # what an officer reads of a ticket: its text and address
    seeds: list[int] = []
    shift = 0.0
    loc = _locator()
    with gzip.open(path, "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            if "c" in rec:
                seeds.append(rec["c"])
                shift = city_shift(rec["c"])
            elif "t" in rec:
                t = rec["t"]
                if t.get("lat") is not None:
                    where = loc.locate(t["lat"], t["lon"])
                    t["district"], t["town"] = where.district, where.town
                    t["lon"] += shift
                docs.append(ticket_doc(t))
                family[t["ticket"]] = rec["f"]
                said[t["ticket"]] = f"{t['text']} {t.get('address') or ''}"
            else:
                lab = rec["l"]
                if lab["params"].get("lon") is not None:
                    lab["params"]["lon"] += shift
                labels.append(lab)
    by_id = {d.ref: d for d in docs}
    for i, lab in enumerate(labels):
        tickets = [t for t in lab["params"].get("tickets") or [] if t in by_id]
        if not tickets:
            continue
        first = by_id[tickets[0]]
        cat = CATEGORIES.get(str(lab["params"].get("category")), "")
        title = ("热线重复工单：" if lab["rule"] == "hotline.duplicate" else "热线激增：") + cat
        lab["alert"] = f"A{i}-{lab['subject_id']}"
        docs.append(alert_doc({
            "id": lab["alert"], "rule": lab["rule"], "level": "yellow", "state": "resolved",
            "subject": {"kind": lab["subject_kind"], "id": lab["subject_id"]},
            "first_ts": lab["start_ms"], "last_ts": lab["end_ms"], "district": first.district,
            "title": title, "lat": lab["params"].get("lat"), "lon": lab["params"].get("lon"),
            "evidence": {"text": first.body[:200], "tickets": tickets[:20]},
        }))  # fmt: skip
        lab["tickets"] = tickets
        lab["family"] = family[tickets[0]]
        lab["said"] = [said[t] for t in tickets]
    docs.sort(key=lambda d: d.ts)  # the order they would reach the index
    clusters = [lab for lab in labels if lab["rule"] == "hotline.duplicate" and "alert" in lab]
    return docs, clusters, family, seeds


# -- queries -----------------------------------------------------------------------------------


#: Words an officer types are words of the text, not its filler: at most this share of
#: documents may hold one (the corpus's own document frequencies decide, no stop list).
MAX_WORD_DF = 0.02
#: ... and they say what the problem is: at least this characteristic of its family (below).
MIN_CHARACTERISTIC = 0.02
#: Place kinds, the most specific first: an officer types the most specific place a ticket
#: names (琅晖公寓 rather than 如城街道 or 如皋市).
PLACE_KINDS = ("community", "landmark", "road", "town", "district")


def gazetteer(seeds: list[int]) -> tuple[Gazetteer, dict[str, int]]:
    """The place names of the corpus cities (their districts, towns, and each city's roads,
    communities and landmarks), as the index knows them from a registry; and each name with
    the rank of its most specific kind in :data:`PLACE_KINDS` (jieba's dictionary does not
    have them: an officer reads each as one word)."""
    from citywatch.registry import District, Registry
    from simulators.addresses import AddressBook
    from simulators.geography import DISTRICTS, Geography
    from simulators.towns import build_towns

    towns = build_towns()
    reg = Registry(
        districts=[District(name=d.name, code="", rings=(d.ring,)) for d in DISTRICTS],
        towns={t.id: t for t in towns},
    )
    kind: dict[str, int] = {d.name: PLACE_KINDS.index("district") for d in DISTRICTS}
    for s in seeds:
        book = AddressBook.build(Geography(), s, towns)
        east = city_shift(s)
        for x in book.localities():
            reg.localities[f"{s}:{x.id}"] = msgspec.structs.replace(
                x, lon=x.lon + east, line=tuple((lon + east, lat) for lon, lat in x.line)
            )
            kind[x.name] = min(kind.get(x.name, 9), PLACE_KINDS.index(x.kind))
        for t in book.towns:
            for name in (t.name, t.short):
                kind[name] = min(kind.get(name, 9), PLACE_KINDS.index("town"))
    return Gazetteer.from_registry(reg), {k: v for k, v in kind.items() if len(k) >= 2}


def _officer_words(text: str, places: dict[str, int]) -> tuple[list[str], list[str]]:
    """The place names of ``text``, most specific first, and its content words (what jieba
    tags as a noun or verb, two characters or more; rjieba), on the text simplified, as an
    officer types it."""
    found: list[str] = []
    words: list[str] = []
    for w, tag in rjieba.tag(simplified(text), False):
        if w in places:
            found.append(w)
        elif len(w) >= 2 and tag[0] in "nv" and _CJK.match(w):
            words.append(w)
    found = sorted(dict.fromkeys(found), key=lambda w: places[w])
    return found, list(dict.fromkeys(words))


@dataclass(frozen=True, slots=True)
class RecallQuery:
    #: "incident" (the other reports of one incident) or "family" (reports of a problem)
    kind: str
    query: str
    filters: Filters
    #: What a search for the query should find (:func:`recall_queries`).
    relevant: set[str]
    #: The reports of the incident the query was made from (and its alert).
    incident: set[str]


def recall_queries(
    docs: list[Doc],
    clusters: list[dict[str, Any]],
    family: dict[str, str],
    places: dict[str, int],
    gaz: Gazetteer,
    seed: int,
) -> list[RecallQuery]:
    """Queries whose relevant documents the simulator knows, two per duplicate cluster.

    The officer reads one of the cluster's tickets (chosen at random) and picks the one or
    two (one time in three) of its words that say best what the problem is: the content words
    (jieba's nouns and verbs, rjieba; two characters or more) most characteristic of the
    ticket's problem family over the corpus (the share of the family's tickets that hold the
    word times the share of the word's tickets in the family: 油漆味, 破碎锤, 工资, 停水, not
    时间 or 南门), at least :data:`MIN_CHARACTERISTIC`, held by at most :data:`MAX_WORD_DF`
    of the tickets. A ticket without such a word gives no query. The filter is the day the
    cluster started and the next.

    - **incident**: those words and the most specific place the ticket names (a community or
      landmark, else a road, a town, a district; no query if it names none), to find the
      other reports of this incident. Relevant: the cluster's other tickets and its alert.
    - **family**: those words alone, to find the reports of this problem. Relevant: the
      tickets of the ticket's problem family in the window.

    The ticket read is never relevant (the officer has it)."""
    rng = random.Random(seed)
    for name in places:
        rjieba.add_word(name, 1000, "ns")
    tickets = [d for d in docs if d.kind == "ticket"]
    sample = rng.sample(tickets, min(len(tickets), 50_000))
    in_family: dict[str, Counter[str]] = {}
    per_word: Counter[str] = Counter()
    per_family: Counter[str] = Counter()
    for d in sample:
        fam = family[d.ref]
        per_family[fam] += 1
        _, words = _officer_words(d.body, places)
        in_family.setdefault(fam, Counter()).update(words)
        per_word.update(words)
    limit = MAX_WORD_DF * len(sample)
    same: dict[str, list[Doc]] = {}  # each family's tickets, in time order
    for d in tickets:
        same.setdefault(family[d.ref], []).append(d)
    for fam_docs in same.values():
        fam_docs.sort(key=lambda d: d.ts)
    days = {fam: [d.ts for d in fam_docs] for fam, fam_docs in same.items()}

    def characteristic(word: str, fam: str) -> float:
        n = in_family.get(fam, Counter())[word]
        return n * n / (per_word[word] * per_family[fam]) if n else 0.0

    out: list[RecallQuery] = []
    for lab in clusters:
        i = rng.randrange(len(lab["tickets"]))
        where, words = _officer_words(lab["said"][i], places)
        fam = lab["family"]
        score = {w: characteristic(w, fam) for w in words if per_word[w] <= limit}
        what = sorted((w for w, c in score.items() if c >= MIN_CHARACTERISTIC), key=score.get,
                      reverse=True)[: 2 if rng.random() < 1 / 3 else 1]  # fmt: skip
        if not what:
            continue
        day0 = (lab["start_ms"] - T0) // DAY_MS * DAY_MS + T0
        window = Filters(from_ms=day0, to_ms=day0 + 2 * DAY_MS)
        lo = bisect.bisect_left(days[fam], day0)
        hi = bisect.bisect_left(days[fam], day0 + 2 * DAY_MS)
        problem = same[fam][lo:hi]
        read = lab["tickets"][i]
        incident = {t for t in lab["tickets"] if t != read} | {lab["alert"]}
        at = gaz.get(where[0]) if where else None
        if where:
            name = where[0]
            there = {
                d.ref
                for d in problem
                if name in simplified(d.body)
                or (at is not None and at.holds(place_text(d.lat, d.lon, d.town, d.district)))
            }
            out.append(RecallQuery("incident", f"{name} {' '.join(what)}", window,
                                   incident | there - {read}, incident))  # fmt: skip
        out.append(RecallQuery("family", " ".join(what), window,
                               {d.ref for d in problem} - {read}, incident))  # fmt: skip
    return out


def mixed_queries(docs: list[Doc], gaz: Gazetteer, n: int, seed: int) -> list[tuple[str, Filters]]:
    """What officers type besides the recall queries (module docstring); the place names
    are those tickets name."""
    rng = random.Random(seed)
    tickets = [d for d in docs if d.kind == "ticket"]
    districts = sorted({d.district for d in docs if d.district}) or [""]
    places = [
        rng.choice(names)
        for d in rng.sample(tickets, min(2000, len(tickets)))
        if (names := gaz.names_in(d.body))
    ] or ["人民路"]
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
            q = rng.choice(tickets).ref[:12] + "*"  # a ticket id as far as it was read out
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
    gaz: Gazetteer,
    recall_qs: list[RecallQuery],
    mixed: list[tuple[str, Filters]],
    work: Path,
    pg_url: str,
) -> dict[str, Any]:
    idx = open_backend(name, work, pg_url)
    idx.places = gaz
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
        recalls: dict[str, list[float]] = {}
        for rq in recall_qs:
            t = time.perf_counter()
            hits = idx.search(rq.query, rq.filters, limit=10).hits
            times.append((time.perf_counter() - t) * 1000)
            got = {h.doc.ref for h in hits}
            recalls.setdefault(rq.kind, []).append(
                len(got & rq.relevant) / min(10, len(rq.relevant))
            )
            if rq.kind == "incident":
                recalls.setdefault("incident_own", []).append(
                    len(got & rq.incident) / min(10, len(rq.incident))
                )
        times.sort()
        p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
        every = [r for kind in ("incident", "family") for r in recalls.get(kind, [])]
        return {
            "docs": len(docs),
            "index_docs_per_s": round(len(docs) / index_s),
            "query_p50_ms": round(statistics.median(times), 2),
            "query_p99_ms": round(p99, 2),
            "recall_at_10": round(statistics.fmean(every), 4) if every else None,
            "queries": len(times),
            "recall_by_kind": {k: round(statistics.fmean(v), 4) for k, v in recalls.items()},
            "recall_queries": {k: len(v) for k, v in recalls.items()},
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
        docs, clusters, family, cities = load_corpus(
            build_corpus(seed, args.docs, args.days, args.cache)
        )
        gaz, names = gazetteer(cities)
        recall_qs = recall_queries(docs, clusters, family, names, gaz, seed)
        mixed = mixed_queries(docs, gaz, args.queries, seed)
        log(f"seed {seed}: {len(docs):,} documents, {len(recall_qs)} recall queries")
        for b in backends:
            r = measure(b, docs, gaz, recall_qs, mixed, args.work, args.pg_url)
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

"""Search at Nantong scale: index a simulated month of tickets and alerts, then mixed queries.

    .venv/bin/python benchmarks/search.py                          # 2,000,000 documents
    .venv/bin/python benchmarks/search.py --docs 200000 --days 3 --backend both
    .venv/bin/python benchmarks/search.py --docs 1000000 --city-day-tickets 7000

**Corpus.** ``--days`` (30) of 12345 hotline tickets from the simulator's ``hotline``
scenario (its texts, places, duplicate clusters, surges): simulated city days of
``TICKETS_PER_CITY_DAY`` (21,000, the real platform's day, asked of the simulator; its rule
that background tickets never duplicate one another leaves about 17,000;
``--city-day-tickets`` asks for fewer: more, smaller cities a day, 0.7 ms of simulation a
ticket at 7,000 where 12,000 take 1.2), one more on each calendar day in turn until there are
``--docs`` tickets (each city day from its own seed: its own places and people; the cities
of one day are moved apart on the map), plus one alert
document per labelled duplicate cluster and surge (the alert the hotline model raises for
it). Generated once (two processes) and cached under ``--cache``; ``--seeds`` picks the base
seed(s) (one corpus per seed; figures pooled). Each calendar day has its own cities, so its
own registry: a query about a day is made and answered with the place names of that day's
cities (:func:`registries`), as a feed knows them from its registry
(:mod:`sinks.search.places`); the month's names together would put a community's name at
tens of spots, a name :mod:`sinks.search.places` no longer places.

**Indexing.** ``index_docs_per_s``: documents per second through the index's ``add`` in
batches of 5,000, as the feed's catch-up adds them (tokenizing included), into a fresh index
file (SQLite) or fresh tables (PostgreSQL, ``--pg-url``). ``index_cpu_docs_per_s``: the same
per CPU second of this process and, for a PostgreSQL on this machine, of its backend
(``/proc``): what an idle machine would do where the wall figure waits for shared cores.

**Queries** (``--queries`` of them, seeded): a mix of what officers type: a category word
(噪声), two words, a place name, a place name and a category word, a ticket id, the start of
one (12 of its 18 digits) as a prefix, an excluded word, each with and without a district or
7-day filter; and the recall queries.
``query_p50_ms``/``query_p99_ms``: wall time of ``search`` (limit 10), over all of them;
``query_cpu_mean_ms`` (with PostgreSQL's backend) and, for SQLite, ``query_cpu_p50_ms`` and
``query_cpu_p99_ms``: CPU time.

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
"recall_at_10": ..., "index_cpu_docs_per_s": ..., ...}`` (with ``--backend both``, per
backend under ``"backends"``, the SQLite figures at the top level).
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
from typing import Any, Final

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


def _city_day(args: tuple[int, int, int]) -> list[bytes]:
    """One simulated city day as corpus lines: its tickets (the intake record, as
    ``cw:tickets`` holds it, and the ticket's true problem family) and its cluster and
    surge labels."""
    from simulators import simulate
    from simulators.scenario import Profile

    seed, day, asked = args
    sim = simulate("hotline", seed=seed, scale=asked / Profile("x").tickets_per_day,
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


def build_corpus(
    seed: int, docs: int, days: int, cache: Path, per_city_day: int = TICKETS_PER_CITY_DAY
) -> Path:
    """Generate (or reuse) the corpus: simulated city days of ``per_city_day`` tickets asked
    of the simulator, one more on each calendar day in turn, until it holds ``docs``
    tickets. Returns its path."""
    size = "" if per_city_day == TICKETS_PER_CITY_DAY else f"-t{per_city_day}"
    path = cache / f"search-v{CORPUS_VERSION}-s{seed}-n{docs}-d{days}{size}.jsonl.gz"
    if path.exists():
        log(f"search: cached corpus {path}")
        return path
    cache.mkdir(parents=True, exist_ok=True)
    jobs = (
        (seed * 100_000 + c * 1000 + d, d, per_city_day) for c in range(1000) for d in range(days)
    )
    log(f"search: simulating city days of {per_city_day:,} tickets until {docs:,}")
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


def city_day(seed: int) -> int:
    """The calendar day (0: the first) the city of ``seed`` was simulated for."""
    return seed % 1000


def day_of(ts: int) -> int:
    """The calendar day of an epoch-ms time (0: the first day of the corpus)."""
    return (ts - T0) // DAY_MS


def load_corpus(
    path: Path,
) -> tuple[list[Doc], list[dict[str, Any]], dict[str, str], dict[str, int], list[int]]:
    """Documents (tickets, and one alert per duplicate cluster and surge, as the hotline
    model raises them) in arrival order, and the duplicate clusters' labels (each with the
    family of its tickets and its alert's ref). Tickets are placed in their district and town
    as the feed's indexer places them. Also each ticket's problem family, each ticket's
    calendar day (its city's; a label has its ``day`` too) and the cities' seeds.

    The cities of one day are simulated on one map (each with its own places and people);
    they are moved apart, :func:`city_shift` degrees east each, so that one city's tickets
    are not at another's places: the simulator's rule that two tickets about one problem
    near each other on one day are one incident holds within a city, not across cities."""
    docs: list[Doc] = []
    labels: list[dict[str, Any]] = []
    family: dict[str, str] = {}
    said: dict[str, str] = {}  # what an officer reads of a ticket: its text and address
    day: dict[str, int] = {}
    seeds: list[int] = []
    shift = 0.0
    today = 0
    loc = _locator()
    with gzip.open(path, "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            if "c" in rec:
                seeds.append(rec["c"])
                shift = city_shift(rec["c"])
                today = city_day(rec["c"])
            elif "t" in rec:
                t = rec["t"]
                if t.get("lat") is not None:
                    where = loc.locate(t["lat"], t["lon"])
                    t["district"], t["town"] = where.district, where.town
                    t["lon"] += shift
                docs.append(ticket_doc(t))
                family[t["ticket"]] = rec["f"]
                day[t["ticket"]] = today
                said[t["ticket"]] = f"{t['text']} {t.get('address') or ''}"
            else:
                lab = rec["l"]
                if lab["params"].get("lon") is not None:
                    lab["params"]["lon"] += shift
                lab["day"] = today
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
    return docs, clusters, family, day, seeds


# -- queries -----------------------------------------------------------------------------------


#: Words an officer types are words of the text, not its filler: at most this share of
#: documents may hold one (the corpus's own document frequencies decide, no stop list).
MAX_WORD_DF = 0.02
#: ... and they say what the problem is: at least this characteristic of its family (below).
MIN_CHARACTERISTIC = 0.02
#: Place kinds, the most specific first: an officer types the most specific place a ticket
#: names (琅晖公寓 rather than 如城街道 or 如皋市).
PLACE_KINDS = ("community", "landmark", "road", "town", "district")


@dataclass(frozen=True, slots=True)
class DayRegistry:
    """The place names of one calendar day's cities, as the index knows them from a registry,
    and each name with the rank of its most specific kind in :data:`PLACE_KINDS`."""

    gaz: Gazetteer
    kinds: dict[str, int]


def registries(seeds: list[int]) -> tuple[dict[int, DayRegistry], dict[str, int]]:
    """Per calendar day, the place names of its cities (their districts, towns, and each
    city's roads, communities and landmarks); and every name of the month with the rank of
    its most specific kind (jieba's dictionary does not have them: an officer reads each as
    one word)."""
    from citywatch.registry import District, Registry
    from simulators.addresses import AddressBook
    from simulators.geography import DISTRICTS, Geography
    from simulators.towns import build_towns

    towns = build_towns()
    geo = Geography()
    by_day: dict[int, list[int]] = {}
    for s in seeds:
        by_day.setdefault(city_day(s), []).append(s)
    out: dict[int, DayRegistry] = {}
    every: dict[str, int] = {}
    for day, day_seeds in sorted(by_day.items()):
        reg = Registry(
            districts=[District(name=d.name, code="", rings=(d.ring,)) for d in DISTRICTS],
            towns={t.id: t for t in towns},
        )
        kind: dict[str, int] = {d.name: PLACE_KINDS.index("district") for d in DISTRICTS}
        for s in day_seeds:
            book = AddressBook.build(geo, s, towns)
            east = city_shift(s)
            for x in book.localities():
                reg.localities[f"{s}:{x.id}"] = msgspec.structs.replace(
                    x, lon=x.lon + east, line=tuple((lon + east, lat) for lon, lat in x.line)
                )
                kind[x.name] = min(kind.get(x.name, 9), PLACE_KINDS.index(x.kind))
            for t in book.towns:
                for name in (t.name, t.short):
                    kind[name] = min(kind.get(name, 9), PLACE_KINDS.index("town"))
        kinds = {k: v for k, v in kind.items() if len(k) >= 2}
        out[day] = DayRegistry(Gazetteer.from_registry(reg), kinds)
        for k, v in kinds.items():
            every[k] = min(every.get(k, 9), v)
    return out, every


def _officer_words(
    text: str, names: dict[str, int], places: dict[str, int]
) -> tuple[list[str], list[str]]:
    """The place names of ``text`` (of ``places``, the day's), most specific first, and its
    content words (what jieba tags as a noun or verb, two characters or more, and not a
    place name of the month, ``names``; rjieba), on the text simplified, as an officer types
    it."""
    found: list[str] = []
    words: list[str] = []
    for w, tag in rjieba.tag(simplified(text), False):
        if w in places:
            found.append(w)
        elif w in names:
            continue
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
    #: The calendar day whose registry made the query and answers it.
    day: int


def recall_queries(
    docs: list[Doc],
    clusters: list[dict[str, Any]],
    family: dict[str, str],
    regs: dict[int, DayRegistry],
    names: dict[str, int],
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
    cluster started and the next. Place names are those of the cluster's day's cities
    (:func:`registries`).

    - **incident**: those words and the most specific place the ticket names (a community or
      landmark, else a road, a town, a district; no query if it names none), to find the
      other reports of this incident. Relevant: the cluster's other tickets and its alert.
    - **family**: those words alone, to find the reports of this problem. Relevant: the
      tickets of the ticket's problem family in the window.

    The ticket read is never relevant (the officer has it)."""
    rng = random.Random(seed)
    for name in names:
        rjieba.add_word(name, 1000, "ns")
    tickets = [d for d in docs if d.kind == "ticket"]
    sample = rng.sample(tickets, min(len(tickets), 50_000))
    in_family: dict[str, Counter[str]] = {}
    per_word: Counter[str] = Counter()
    per_family: Counter[str] = Counter()
    for d in sample:
        fam = family[d.ref]
        per_family[fam] += 1
        _, words = _officer_words(d.body, names, {})
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
        day = lab["day"]
        reg = regs[day]
        where, words = _officer_words(lab["said"][i], names, reg.kinds)
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
        at = reg.gaz.get(where[0]) if where else None
        if where:
            name = where[0]
            there = {
                d.ref
                for d in problem
                if name in simplified(d.body)
                or (at is not None and at.holds(place_text(d.lat, d.lon, d.town, d.district)))
            }
            out.append(RecallQuery("incident", f"{name} {' '.join(what)}", window,
                                   incident | there - {read}, incident, day))  # fmt: skip
        out.append(RecallQuery("family", " ".join(what), window,
                               {d.ref for d in problem} - {read}, incident, day))  # fmt: skip
    return out


def mixed_queries(
    docs: list[Doc], day: dict[str, int], regs: dict[int, DayRegistry], n: int, seed: int
) -> list[tuple[str, Filters, int]]:
    """What officers type besides the recall queries (module docstring), each with the
    calendar day whose registry makes and answers it: the day of a ticket drawn for it,
    whose place names (as that day's registry knows them) a place query types."""
    rng = random.Random(seed)
    tickets = [d for d in docs if d.kind == "ticket"]
    districts = sorted({d.district for d in docs if d.district}) or [""]
    places = [
        (rng.choice(names), day[d.ref])
        for d in rng.sample(tickets, min(2000, len(tickets)))
        if (names := regs[day[d.ref]].gaz.names_in(d.body))
    ] or [("人民路", day[tickets[0].ref])]
    words = ["噪声", "垃圾", "异味", "路灯", "施工", "扬尘", "占道", "停水", "投诉", "不亮", "臭味"]
    end = max(d.ts for d in docs)
    out: list[tuple[str, Filters, int]] = []
    for _ in range(n):
        kind = rng.randrange(7)
        drawn = rng.choice(tickets)
        when = day[drawn.ref]
        if kind == 0:
            q = rng.choice(words)
        elif kind == 1:
            q = " ".join(rng.sample(words, 2))
        elif kind == 2:
            q, when = rng.choice(places)
        elif kind == 3:
            name, when = rng.choice(places)
            q = f"{name} {rng.choice(words)}"
        elif kind == 4:
            q = drawn.ref
        elif kind == 5:
            q = drawn.ref[:12] + "*"  # a ticket id as far as it was read out
        else:
            q = f"{rng.choice(words)} -{rng.choice(words)}"
        f = Filters()
        if rng.random() < 0.3:
            f = Filters(districts=(rng.choice(districts),))
        elif rng.random() < 0.3:
            f = Filters(from_ms=end - 7 * DAY_MS)
        out.append((q, f, when))
    return out


# -- one backend -------------------------------------------------------------------------------


def open_backend(name: str, work: Path, pg_url: str) -> Any:
    if name == "sqlite":
        path = work / f"search-{uuid.uuid4().hex[:8]}.sqlite"
        return SqliteIndex(path)
    from sinks.search.postgres_index import PostgresIndex

    return PostgresIndex(pg_url, table_prefix=f"bench{uuid.uuid4().hex[:8]}")


#: The CPU figures of a backend, and how several seeds' are pooled (the worst).
CPU_FIGURES: Final = (
    ("index_cpu_docs_per_s", min),
    ("query_cpu_mean_ms", max),
    ("query_cpu_p50_ms", max),
    ("query_cpu_p99_ms", max),
)


def p99(values: list[float]) -> float:
    """The 99th percentile (the value 99% of them are at or below)."""
    v = sorted(values)
    return v[min(len(v) - 1, math.ceil(0.99 * len(v)) - 1)]


def cpu_clock(name: str, idx: Any) -> tuple[Any, bool]:
    """A clock of the CPU seconds the index spends: this process's, and for PostgreSQL on
    this machine its backend's too (``/proc``; the second value says whether it counts)."""
    if name == "postgres":
        stat = Path(f"/proc/{idx.db.info.backend_pid}/stat")
        tick = os.sysconf("SC_CLK_TCK")
        try:
            stat.read_text()
        except OSError:
            return time.process_time, False

        def both() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return time.process_time() + (int(fields[11]) + int(fields[12])) / tick

        return both, True
    return time.process_time, True


def measure(
    name: str,
    docs: list[Doc],
    regs: dict[int, DayRegistry],
    recall_qs: list[RecallQuery],
    mixed: list[tuple[str, Filters, int]],
    work: Path,
    pg_url: str,
) -> dict[str, Any]:
    idx = open_backend(name, work, pg_url)
    try:
        cpu, counted = cpu_clock(name, idx)
        t0, c0 = time.perf_counter(), cpu()
        for i in range(0, len(docs), 5000):
            idx.add(docs[i : i + 5000], {"tickets": str(i)})
        index_s, index_cpu = time.perf_counter() - t0, cpu() - c0
        log(f"{name}: indexed {len(docs):,} documents in {index_s:.1f} s ({index_cpu:.1f} CPU s)")
        times: list[float] = []
        cpus: list[float] = []  # this process's CPU per query (SQLite: all of it)
        c0 = cpu()
        for q, f, when in mixed:
            idx.places = regs[when].gaz
            t, c = time.perf_counter(), time.process_time()
            idx.search(q, f, limit=10)
            times.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - c) * 1000)
        recalls: dict[str, list[float]] = {}
        for rq in recall_qs:
            idx.places = regs[rq.day].gaz
            t, c = time.perf_counter(), time.process_time()
            hits = idx.search(rq.query, rq.filters, limit=10).hits
            times.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - c) * 1000)
            got = {h.doc.ref for h in hits}
            recalls.setdefault(rq.kind, []).append(
                len(got & rq.relevant) / min(10, len(rq.relevant))
            )
            if rq.kind == "incident":
                recalls.setdefault("incident_own", []).append(
                    len(got & rq.incident) / min(10, len(rq.incident))
                )
        query_cpu = cpu() - c0
        every = [r for kind in ("incident", "family") for r in recalls.get(kind, [])]
        out = {
            "docs": len(docs),
            "index_docs_per_s": round(len(docs) / index_s),
            "query_p50_ms": round(statistics.median(times), 2),
            "query_p99_ms": round(p99(times), 2),
            "recall_at_10": round(statistics.fmean(every), 4) if every else None,
            "queries": len(times),
            # CPU time: what the figures would be on an idle machine (the wall ones wait for
            # the cores other processes hold)
            "index_cpu_docs_per_s": round(len(docs) / index_cpu) if counted else None,
            "query_cpu_mean_ms": round(query_cpu * 1000 / len(times), 2) if counted else None,
            "recall_by_kind": {k: round(statistics.fmean(v), 4) for k, v in recalls.items()},
            "recall_queries": {k: len(v) for k, v in recalls.items()},
        }
        if name == "sqlite":
            out["query_cpu_p50_ms"] = round(statistics.median(cpus), 2)
            out["query_cpu_p99_ms"] = round(p99(cpus), 2)
        return out
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
    ap.add_argument("--city-day-tickets", type=int, default=TICKETS_PER_CITY_DAY,
                    help="tickets asked of the simulator per simulated city day (fewer: "
                    "more, smaller cities a day, cheaper to simulate)")  # fmt: skip
    ap.add_argument("--seeds", type=parse_seeds, default=[1], help="corpus seeds, e.g. 1-2")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("CW_BENCH_PG_URL",
                    "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    ap.add_argument("--cache", type=Path, default=Path("var/bench"), help="corpus cache")
    ap.add_argument("--work", type=Path, default=Path("var/bench"), help="index files")
    args = ap.parse_args()
    if args.docs < 1000 or not 1 <= args.days <= 1000 or args.queries < 1:
        ap.error("--docs >= 1000, --days 1 to 1000, --queries >= 1")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for seed in args.seeds:
        docs, clusters, family, day, cities = load_corpus(
            build_corpus(seed, args.docs, args.days, args.cache, args.city_day_tickets)
        )
        regs, names = registries(cities)
        recall_qs = recall_queries(docs, clusters, family, regs, names, seed)
        mixed = mixed_queries(docs, day, regs, args.queries, seed)
        log(f"seed {seed}: {len(docs):,} documents, {len(recall_qs)} recall queries")
        for b in backends:
            r = measure(b, docs, regs, recall_qs, mixed, args.work, args.pg_url)
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
            **{
                k: worst(r[k] for r in rs)
                for k, worst in CPU_FIGURES
                if all(r.get(k) is not None for r in rs)
            },
        }

    out = pooled(results[backends[0]])
    if len(backends) > 1:
        out["backends"] = {b: pooled(rs) for b, rs in results.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

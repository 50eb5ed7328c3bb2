"""The hotline model the flow registers: place, route, de-duplicate and count every ticket.

:class:`HotlineModel` routes every ``hotline`` record to one key (``"city"``): 12,000 tickets a
day city-wide fit one state, and a single key lets a duplicate from across a district border,
or from an address in words only, meet its twin. Per intake record:

1. **place**: coordinates if the ticket has them, else the gazetteer (``gazetteer.py``) reads
   ``address`` and the text; a ticket nobody can place is kept (de-duplicated by text, counted
   under district ``unknown``) and flagged by a ``hotline.unplaced`` signal;
2. **text**: hashed words and character n-grams of the text with its place names masked
   (``text.py``), weighted by document frequencies learned from the stream (``docfreq.py``);
3. **route**: the online router (``routing.py``) predicts category and department (top 3);
4. **de-duplicate**: candidates and calibrated duplicate probabilities (``dedup.py``,
   ``pairs.py``);
5. **surge**: the ticket counts towards its district and category (the intake category,
   else the predicted one when at least 50% sure; a ticket of unknown category is not
   counted) unless it is a duplicate.

A record repeating a known ticket with ``dept`` or ``duplicate_of`` is an officer's decision
(``Hotline.is_decision``): the router learns the department and category (a correction is a
label; a dispatch it already predicted with at least ``SURE`` is not a step); a merge teaches
the pair model a duplicate, a split teaches it the pairs the model had merged (or, if none,
its best candidate) were not. What the officer decided also stands for the live ticket from
then on: later tickets are compared with its confirmed category and (mostly) its department
instead of the intake guesses. Routing accuracy at intake against the first dispatch is kept
per day (:attr:`HotlineState.routing`).

Signals:

* ``hotline.duplicate`` on subject ``("ticket", canonical id)`` when the ticket joins a
  cluster: ``evidence`` has ``size``, ``members`` (capped at ``max_members``), the new
  ``ticket``, ``duplicate_of``, ``probability`` (and ``similarity``, the same number),
  ``distance_m``, ``category``, ``first_ts``, ``routing`` (the cluster's top three
  departments with probabilities), ``category_pred`` and ``place`` (how the ticket was
  placed); level blue for 2 tickets, yellow for 3-4, orange for 5+; score = the probability.
  When clusters merge, the absorbed canonical gets a clear (``active=False``); when a
  cluster's last ticket leaves the window, its clear carries the final size.
* ``hotline.surge`` on subject ``("district", f"{district}/{category}")`` while the count is
  surprising and once when it ends (``surge.py``).
* ``hotline.unplaced`` on subject ``("ticket", id)``, level blue: nobody can tell where it is
  (someone should call back); ``evidence`` has ``routing`` and the ``address`` as given.

>>> from citywatch.events import Hotline
>>> m = HotlineModel()
>>> t0 = 1_762_041_600_000
>>> st = m.new_state("city")
>>> _ = m.update(st, Hotline(ts=t0, ticket="T1", text="幸福小区门口化工厂排放刺鼻气味，熏得头疼",
...                          category="odor", lat=32.01, lon=120.86))
>>> out = m.update(st, Hotline(ts=t0 + 60_000, ticket="T2",
...                            text="幸福小区这边化工厂的刺鼻气味很重，熏得头疼",
...                            category="odor", lat=32.0102, lon=120.8603))
>>> [(s.rule, s.subject.id, s.evidence["size"], s.evidence["members"]) for s in out]
[('hotline.duplicate', 'T1', 2, ['T1', 'T2'])]
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Event, Hotline
from citywatch.geo import GRID_DEG, grid_cell, grid_id
from citywatch.registry import Registry
from models.base import Model
from models.hotline.dedup import (
    ClusterInfo,
    DedupConfig,
    DedupResult,
    DuplicateClusterer,
    TicketFeatures,
    band_keys,
    dispatched,
    pair_features,
)
from models.hotline.docfreq import DocFreq, SparseVector
from models.hotline.gazetteer import UNPLACED, Gazetteer, Placement
from models.hotline.pairs import PairModel
from models.hotline.routing import Router
from models.hotline.surge import SurgeConfig, SurgeDetector, SurgeStatus
from models.hotline.text import features, normalize

__all__ = ["HotlineConfig", "HotlineModel", "HotlineState", "RoutingLog"]

DUPLICATE_RULE: Final = "hotline.duplicate"
SURGE_RULE: Final = "hotline.surge"
UNPLACED_RULE: Final = "hotline.unplaced"
UNKNOWN_DISTRICT: Final = "unknown"
OTHER_CATEGORY: Final = "other"
_DAY_MS: Final = 86_400_000
_HEADS: Final = ("category", "dept")
_BEIJING_MS: Final = 8 * 3_600_000
#: The router's district token: its id per district name (a pure function of the name, cached)
#: and its weight next to the unit-length text vector.
_DISTRICT_TOKENS: dict[str, np.ndarray] = {}
_DISTRICT_WEIGHT: Final = np.full(1, 0.7, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class HotlineConfig:
    dedup: DedupConfig = field(default_factory=DedupConfig)
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    #: Count only tickets that are not duplicates towards surges: a surge is "many distinct
    #: problems"; many calls about one problem are a duplicate cluster (its own alert).
    surge_distinct_only: bool = True
    #: Half-life of the document frequencies (days): how fast the vocabulary is forgotten.
    df_half_life_days: float = 7.0
    #: Days of routing accuracy kept in :attr:`HotlineState.routing`.
    routing_days: int = 90
    #: Emit ``hotline.unplaced`` for tickets nobody can place.
    flag_unplaced: bool = True
    #: A ticket's text vector keeps its heaviest features only (memory, and the cost of
    #: every cosine and routing step; the tail of light features changes cosines little).
    max_features: int = 64


@dataclass(slots=True)
class RoutingLog:
    """Routing accuracy at intake, per local day: ``day -> [n, top1, top3, cat_n, cat_top1]``.

    A ticket is scored against its first dispatch; a correction (a later dispatch elsewhere)
    re-scores it against the corrected department (:meth:`rescore`).
    """

    days: dict[int, list[int]] = field(default_factory=dict)
    keep: int = 90

    def add(self, ts: int, hit1: bool, hit3: bool, cat: bool | None) -> None:
        self._row(ts, 1, int(hit1), int(hit3), cat)

    def rescore(self, ts: int, old: tuple[bool, bool], new: tuple[bool, bool]) -> None:
        self._row(ts, 0, int(new[0]) - int(old[0]), int(new[1]) - int(old[1]), None)

    def _row(self, ts: int, n: int, hit1: int, hit3: int, cat: bool | None) -> None:
        day = (ts + _BEIJING_MS) // _DAY_MS
        row = self.days.get(day)
        if row is None:
            row = self.days[day] = [0, 0, 0, 0, 0]
            while len(self.days) > self.keep:
                del self.days[min(self.days)]
        row[0] += n
        row[1] += hit1
        row[2] += hit3
        if cat is not None:
            row[3] += 1
            row[4] += cat

    def accuracy(self, last_days: int | None = None) -> dict[str, float | int]:
        days = sorted(self.days)
        if last_days is not None:
            days = days[-last_days:]
        n = sum(self.days[d][0] for d in days)
        cn = sum(self.days[d][3] for d in days)
        return {
            "n": n,
            "top1": sum(self.days[d][1] for d in days) / n if n else 0.0,
            "top3": sum(self.days[d][2] for d in days) / n if n else 0.0,
            "category_top1": sum(self.days[d][4] for d in days) / cn if cn else 0.0,
        }


@dataclass(slots=True)
class HotlineState:
    """Per-key state (plain containers and numpy arrays, picklable, bounded in size)."""

    dedup: DuplicateClusterer
    surge: SurgeDetector
    df: DocFreq
    router: Router
    routing: RoutingLog
    #: intake predictions of live tickets awaiting their first dispatch: id -> (ts, top3, cat)
    pending: dict[str, tuple[int, tuple[str, ...], str]] = field(default_factory=dict)
    pending_order: deque[str] = field(default_factory=deque)
    #: tickets whose first dispatch was seen (a later dispatch is a correction): id -> (dept,
    #: intake ts, intake top 3)
    dispatched: dict[str, tuple[str, int, tuple[str, ...]]] = field(default_factory=dict)
    dispatched_order: deque[str] = field(default_factory=deque)
    unplaced: int = 0
    tickets: int = 0


class HotlineModel(Model):
    """Places, routes, de-duplicates tickets and detects surges (see the module docstring)."""

    name: ClassVar[str] = "hotline"
    version: ClassVar[str] = "2"
    kinds: ClassVar[frozenset[str]] = frozenset({"hotline"})
    shards = 1  # one state for the whole city ("city")

    def __init__(
        self,
        registry: Registry | None = None,
        config: HotlineConfig | None = None,
        departments: tuple[str, ...] = (),
        pairs: PairModel | None = None,
    ):
        self.registry = registry
        self.config = config or HotlineConfig()
        self.gazetteer = Gazetteer.from_registry(registry) if registry is not None else None
        self._district_cache: dict[tuple[int, int], str] = {}
        #: The departments officers dispatch to (settings), when known: the router's first
        #: labels; decisions may add others.
        self._departments = tuple(departments)
        #: The pair model every new state starts from (a copy; default: the fitted one).
        self._pairs = pairs

    def route(self, event: Event) -> str | None:
        return "city" if isinstance(event, Hotline) else None

    def new_state(self, key: str) -> HotlineState:
        cfg = self.config
        return HotlineState(
            dedup=DuplicateClusterer(
                cfg.dedup, copy.deepcopy(self._pairs) if self._pairs is not None else PairModel()
            ),
            surge=SurgeDetector(cfg.surge),
            df=DocFreq(cfg.df_half_life_days),
            router=Router(heads={"dept": self._departments} if self._departments else None),
            routing=RoutingLog(keep=cfg.routing_days),
        )

    # -- places ------------------------------------------------------------------------------

    def district_of(self, lat: float | None, lon: float | None, grid: str | None = None) -> str:
        """The ticket's district by the registry outlines (cached per grid cell)."""
        if self.registry is None or not self.registry.districts:
            return UNKNOWN_DISTRICT
        if lat is None or lon is None:
            if not grid or not grid.startswith("G") or "-" not in grid:
                return UNKNOWN_DISTRICT
            row, _, col = grid[1:].partition("-")
            if not (row.isdigit() and col.isdigit()):
                return UNKNOWN_DISTRICT
            lat = 31.6 + (int(row) + 0.5) * GRID_DEG
            lon = 120.2 + (int(col) + 0.5) * GRID_DEG
        cell = grid_cell(lat, lon)
        hit = self._district_cache.get(cell)
        if hit is None:
            hit = self.registry.district_of(lat, lon) or UNKNOWN_DISTRICT
            if len(self._district_cache) < 100_000:
                self._district_cache[cell] = hit
        return hit

    def place(self, event: Hotline, body: str) -> Placement:
        """Where the ticket is: its coordinates (or grid), else its address in words."""
        gz = self.gazetteer
        has_coords = event.lat is not None and event.lon is not None
        if gz is None:
            words = UNPLACED
        elif has_coords:  # the body's place names still matter: masked out, compared as place
            words = gz.spans_only(body)
        elif event.address:
            words = gz.place_normalized(normalize(event.address), body)
        else:
            words = gz.place_normalized(body)
        if event.lat is not None and event.lon is not None:
            return self._at(event.lat, event.lon, event.grid, "coordinates", 0.0, words)
        cell = _parse_grid(event.grid)
        if cell is not None and (not words.placed or words.precision_m > 800.0):
            lat = 31.6 + (cell[0] + 0.5) * GRID_DEG
            lon = 120.2 + (cell[1] + 0.5) * GRID_DEG
            return self._at(lat, lon, event.grid, "grid", 800.0, words)
        return words

    def _at(
        self,
        lat: float,
        lon: float,
        grid: str | None,
        kind: str,
        precision: float,
        words: Placement,
    ) -> Placement:
        """Placed by numbers (coordinates or a grid id); the words still name the place."""
        district = self.district_of(lat, lon)
        known = None if district == UNKNOWN_DISTRICT else district
        return Placement(
            placed=True,
            district=known,
            town=words.town if words.district in (None, known) else None,
            lat=lat,
            lon=lon,
            grid=grid or grid_id(lat, lon),
            kind=kind,
            precision_m=precision,
            confidence=1.0,
            names=words.names,
            ids=words.ids,
            spans=words.spans,
        )

    # -- the update ---------------------------------------------------------------------------

    def update(self, state: HotlineState, event: Event) -> list[Signal]:
        if not isinstance(event, Hotline):
            return []
        if event.is_decision:
            return self._decision(state, event)
        if state.dedup.get(event.ticket) is not None:
            return []  # a re-delivered intake record
        f, place = self.ticket_features(state, event, learn_df=True)
        res = state.dedup.update(f)
        state.tickets += 1
        self._remember(state, f)
        out = [self._closed(info, event.ts) for info in res.closed if info.size >= 2]
        out.extend(self._merged(res, event.ts))
        district = place.district or UNKNOWN_DISTRICT
        if res.is_duplicate:
            out.append(self._duplicate(state, res, event, district, place))
        if not place.placed:
            state.unplaced += 1
            if self.config.flag_unplaced:
                out.append(self._unplaced(state, event, f))
        out.extend(self._surges(state, event, res, district, f))
        return out

    def ticket_features(
        self, state: HotlineState, event: Hotline, *, learn_df: bool
    ) -> tuple[TicketFeatures, Placement]:
        body = normalize(event.text)
        place = self.place(event, body)
        masked = _mask(body, place.spans)
        tf = features(masked, normalized=True)
        if learn_df:
            state.df.add(tf, event.ts)
        vec = state.df.vector(tf, top=self.config.max_features)
        pred = state.router.predict_heads(self._route_vector(vec, place.district), _HEADS, k=4)
        cfg = self.config.dedup
        # LSH over the vector's heaviest features that are also rare in the stream
        rare = vec.ids
        if state.df.n >= 200:
            rare = vec.ids[state.df.df(vec.ids) <= cfg.rare_share * state.df.n]
        f = TicketFeatures(
            id=event.ticket,
            ts=event.ts,
            vec=_compact(vec),
            lat=place.lat,
            lon=place.lon,
            precision_m=place.precision_m,
            place_key=_place_key(place),
            caller=event.caller,
            category=event.category,
            cat_dist=dict(pred["category"]),
            dept_dist=dict(pred["dept"]),
            band_keys=band_keys(rare, cfg.bands, cfg.rows),
            grid=place.grid,
            district=place.district,
        )
        return f, place

    def _route_vector(self, vec: SparseVector, district: str | None) -> SparseVector:
        """Text features plus the district as a token, for the router."""
        name = district or UNKNOWN_DISTRICT
        token = _DISTRICT_TOKENS.get(name)
        if token is None:
            token = np.array([_token_id(f"district={name}")], dtype=np.int64)
            if len(_DISTRICT_TOKENS) < 1000:
                _DISTRICT_TOKENS[name] = token
        return SparseVector(
            np.concatenate((vec.ids.astype(np.int64), token)),
            np.concatenate((vec.w, _DISTRICT_WEIGHT)),
        )

    def _remember(self, state: HotlineState, f: TicketFeatures) -> None:
        """Keep the intake prediction until the first dispatch decision scores it."""
        top = sorted(f.dept_dist.items(), key=lambda kv: -kv[1])[:3]
        cat = max(f.cat_dist.items(), key=lambda kv: kv[1])[0] if f.cat_dist else ""
        state.pending[f.id] = (f.ts, tuple(d for d, _ in top), cat)
        state.pending_order.append(f.id)
        horizon = f.ts - self.config.dedup.window_ms
        while state.pending_order:
            tid = state.pending_order[0]
            item = state.pending.get(tid)
            if item is not None and item[0] >= horizon:
                break
            state.pending_order.popleft()
            state.pending.pop(tid, None)

    def _route_of(self, f: TicketFeatures) -> SparseVector:
        return self._route_vector(f.vec, f.district)

    # -- officers' decisions -------------------------------------------------------------------

    def _decision(self, state: HotlineState, event: Hotline) -> list[Signal]:
        live = state.dedup.get(event.ticket)

        def vec() -> SparseVector:
            if live is not None:
                return self._route_of(live)
            f, _ = self.ticket_features(state, event, learn_df=False)
            return self._route_of(f)

        if event.dept:
            before = state.dispatched.get(event.ticket)
            correction = before is not None and before[0] != event.dept
            pending = state.pending.pop(event.ticket, None)
            intake_ts, top3 = (pending[0], pending[1]) if pending else (event.ts, ())
            if before is None and pending is not None:
                cat = pending[2]
                state.routing.add(
                    intake_ts,
                    bool(top3) and top3[0] == event.dept,
                    event.dept in top3,
                    (cat == event.category) if event.category and cat else None,
                )
            elif correction and before is not None and before[2]:
                _, intake_ts, top3 = before
                state.routing.rescore(
                    intake_ts,
                    (top3[0] == before[0], before[0] in top3),
                    (top3[0] == event.dept, event.dept in top3),
                )
            if correction or (before is None and not _foreseen(live, event)):
                targets = {"dept": event.dept}
                if event.category:
                    targets["category"] = event.category
                state.router.learn(vec(), targets, weight=2.0 if correction else 1.0)
            state.dispatched[event.ticket] = (event.dept, intake_ts, top3)
            state.dispatched_order.append(event.ticket)
            # corrections come within days: forget dispatches older than the window
            horizon = event.ts - self.config.dedup.window_ms
            order = state.dispatched_order
            while order and (
                order[0] not in state.dispatched or state.dispatched[order[0]][1] < horizon
            ):
                state.dispatched.pop(order.popleft(), None)
        elif event.category and not _foreseen(live, event):
            state.router.learn(vec(), {"category": event.category})
        if live is not None:
            # what the officer decided is known from now on: later tickets compare with it
            if event.dept:
                live.dept_dist = dispatched(live.dept_dist, event.dept)
            if event.category:
                live.category = event.category
            if event.duplicate_of is not None:
                self._learn_pair(state, live, event.duplicate_of)
        return []

    def _learn_pair(self, state: HotlineState, f: TicketFeatures, into: str) -> None:
        dc = state.dedup
        if into:  # merged: one positive example
            other = dc.get(into)
            if other is not None and other.id != f.id:
                dc.pairs.learn(pair_features(f, other), True)
            return
        # split: what the model matched was wrong; with no match, its best guess was right
        wrong = [dc.get(t) for t in f.matched]
        for o in wrong:
            if o is not None:
                dc.pairs.learn(pair_features(f, o), False)
        if not f.matched and f.runner_up is not None:
            o = dc.get(f.runner_up)
            if o is not None:
                dc.pairs.learn(pair_features(f, o), False, weight=0.5)

    # -- time -----------------------------------------------------------------------------------

    def on_watermark(self, state: HotlineState, watermark_ms: int) -> list[Signal]:
        out = [
            self._closed(info, watermark_ms)
            for info in state.dedup.expire(watermark_ms)
            if info.size >= 2
        ]
        out.extend(self._surge_signal(state, st) for st in state.surge.advance(watermark_ms))
        return out

    # -- signals ----------------------------------------------------------------------------

    def _category(self, f: TicketFeatures) -> str:
        return f.effective_category or OTHER_CATEGORY

    def _surges(
        self,
        state: HotlineState,
        event: Hotline,
        res: DedupResult,
        district: str,
        f: TicketFeatures,
    ) -> list[Signal]:
        category = f.effective_category
        if (self.config.surge_distinct_only and res.is_duplicate) or not category:
            # duplicates are one problem; a ticket of unknown category says nothing about any
            # category's rate (pooling them as "other" would surge with every busy hour)
            return [self._surge_signal(state, s) for s in state.surge.advance(event.ts)]
        status = state.surge.update(event.ts, district, category)
        return [] if status is None else [self._surge_signal(state, status)]

    def _routing(self, state: HotlineState, members: list[TicketFeatures]) -> list[dict[str, Any]]:
        """The cluster's top three departments: mean of its live members' department
        distributions (intake predictions; a member already dispatched is mostly that)."""
        acc: dict[str, float] = {}
        for m in members:
            for d, p in m.dept_dist.items():
                acc[d] = acc.get(d, 0.0) + p / len(members)
        top = sorted(acc.items(), key=lambda kv: -kv[1])[:3]
        return [{"dept": d, "p": round(p, 3)} for d, p in top]

    def _duplicate(
        self,
        state: HotlineState,
        res: DedupResult,
        event: Hotline,
        district: str,
        place: Placement,
    ) -> Signal:
        c = res.cluster
        members = state.dedup.members(res.ticket)
        level = Level.BLUE if c.size <= 2 else Level.YELLOW if c.size <= 4 else Level.ORANGE
        f = state.dedup.get(res.ticket)
        cat_pred = (
            [
                {"category": k, "p": round(v, 3)}
                for k, v in sorted(f.cat_dist.items(), key=lambda kv: -kv[1])[:3]
            ]
            if f is not None
            else []
        )
        evidence: dict[str, Any] = {
            "size": c.size,
            "members": list(c.members),
            "ticket": res.ticket,
            "duplicate_of": res.duplicate_of,
            "probability": round(res.probability, 3),
            "similarity": round(res.probability, 3),
            "distance_m": None if res.distance_m is None else round(res.distance_m, 1),
            "category": c.category or (f.effective_category if f is not None else ""),
            "first_ts": c.first_ts,
            "routing": self._routing(state, members),
            "category_pred": cat_pred,
            "place": place.evidence(),
        }
        if res.merged:
            evidence["merged"] = list(res.merged)
        lat, lon = c.lat, c.lon
        return Signal(
            rule=DUPLICATE_RULE,
            subject=Subject("ticket", c.canonical),
            ts=event.ts,
            active=True,
            level=level,
            score=round(res.probability, 4),
            title=f"重复诉求：{c.size}件工单反映同一问题",
            evidence=evidence,
            model=self.model_id,
            lat=lat,
            lon=lon,
            district=None if district == UNKNOWN_DISTRICT else district,
            grid=c.grid or (grid_id(lat, lon) if lat is not None and lon is not None else None),
        )

    def _unplaced(self, state: HotlineState, event: Hotline, f: TicketFeatures) -> Signal:
        return Signal(
            rule=UNPLACED_RULE,
            subject=Subject("ticket", event.ticket),
            ts=event.ts,
            active=True,
            level=Level.BLUE,
            score=0.0,
            title="工单地址无法定位，请回访核实",
            evidence={
                "ticket": event.ticket,
                "address": event.address,
                "routing": self._routing(state, [f]),
                "category": self._category(f),
            },
            model=self.model_id,
        )

    def _merged(self, res: DedupResult, ts: int) -> list[Signal]:
        return [
            Signal(
                rule=DUPLICATE_RULE,
                subject=Subject("ticket", canonical),
                ts=ts,
                active=False,
                title="重复诉求已并入更早的工单",
                evidence={"merged_into": res.canonical},
                model=self.model_id,
            )
            for canonical in res.merged
        ]

    def _closed(self, info: ClusterInfo, ts: int) -> Signal:
        return Signal(
            rule=DUPLICATE_RULE,
            subject=Subject("ticket", info.canonical),
            ts=ts,
            active=False,
            title=f"重复诉求结束：共{info.size}件工单",
            evidence={"size": info.size, "members": list(info.members), "last_ts": info.last_ts},
            model=self.model_id,
            lat=info.lat,
            lon=info.lon,
            grid=info.grid,
        )

    def _surge_signal(self, state: HotlineState, st: SurgeStatus) -> Signal:
        window_h = self.config.surge.window_ms / 3_600_000
        title = (
            f"{st.district}{st.category}类诉求激增：{window_h:g}小时{st.count}件（常态{st.expected:.1f}件）"
            if st.active
            else f"{st.district}{st.category}类诉求回落"
        )
        return Signal(
            rule=SURGE_RULE,
            subject=Subject("district", st.key),
            ts=st.ts,
            active=st.active,
            level=Level.ORANGE if st.p_value <= self.config.surge.alpha**2 else Level.YELLOW,
            score=round(st.score, 4),
            title=title,
            evidence={
                "count": st.count,
                "expected": round(st.expected, 3),
                "p_value": float(f"{st.p_value:.3g}"),
                "window_s": self.config.surge.window_ms // 1000,
                "district": st.district,
                "category": st.category,
                "started_ts": st.started_ts,
            },
            model=self.model_id,
            district=None if st.district == UNKNOWN_DISTRICT else st.district,
        )


#: A decision the router predicted at intake with at least this probability (for every label
#: it carries) is not a learning step: its gradient is at most 1 - SURE of a surprise's.
SURE: Final = 0.9


def _foreseen(live: TicketFeatures | None, event: Hotline) -> bool:
    """The router was already sure of this decision's department and category at intake."""
    if live is None:
        return False
    if event.dept and live.dept_dist.get(event.dept, 0.0) < SURE:
        return False
    return not event.category or live.cat_dist.get(event.category, 0.0) >= SURE


def _parse_grid(grid: str | None) -> tuple[int, int] | None:
    """``"G0034-0059"`` -> (34, 59); anything else -> None."""
    if not grid or grid[0] != "G" or "-" not in grid:
        return None
    row, _, col = grid[1:].partition("-")
    if not (row.isdigit() and col.isdigit()):
        return None
    return int(row), int(col)


def _mask(body: str, spans: tuple[tuple[int, int], ...]) -> str:
    """The body with its place names blanked out (they are measured as place, not text)."""
    if not spans:
        return body
    out, last = [], 0
    for a, b in spans:
        out.append(body[last:a])
        out.append(" ")
        last = b
    out.append(body[last:])
    return "".join(out)


def _compact(v: SparseVector) -> SparseVector:
    """A live ticket's vector in 8 bytes a feature."""
    return SparseVector(v.ids.astype(np.int32), v.w)


def _place_key(p: Placement) -> str | None:
    if not p.placed or not p.ids:
        return None
    if p.kind == "corner":
        return "corner:" + "|".join(sorted(p.ids))
    if p.kind == "road":
        return "road:" + p.ids[0]
    if p.kind in ("town", "district"):
        return None
    return p.ids[0]


def _token_id(token: str) -> int:
    import zlib

    return (1 << 40) | zlib.crc32(token.encode())

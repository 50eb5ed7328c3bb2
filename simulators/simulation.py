"""A run: the city, the plan, the generators, and the merged, time-ordered record stream."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from citywatch.events import Event
from citywatch.registry import Registry
from simulators.air import AirStream, declare_stations
from simulators.air_realism import AIR_STATIONS
from simulators.city import City, build_city
from simulators.clock import MINUTE_MS
from simulators.dirty import corrupt
from simulators.hotline import HotlineStream
from simulators.labels import Label, Workshop
from simulators.plan import Plan, make_plan, ticket_salt
from simulators.scenario import PROFILES, SCENARIOS, Scenario
from simulators.scoring import population_days
from simulators.seeds import py_rng
from simulators.sites import OrderStream, PowerStream, SiteActivity, VideoStream
from simulators.stream import Generator
from simulators.vehicles import TERMINALS, VehicleStream, declare, traits
from simulators.water import WaterStream

__all__ = ["Batch", "Simulation", "simulate"]

#: Merge order of kinds with equal timestamps: orders first (they change what follows).
_ORDER = ("order", "air", "gps", "video", "power", "hotline", "water")


@dataclass(slots=True)
class Batch:
    """One minute of output in event-time order: timestamps, entity hashes, JSON lines."""

    ts: list[int]
    keys: list[int]
    lines: list[bytes]

    def __len__(self) -> int:
        return len(self.lines)


class Simulation:
    """A planned run. Cheap to iterate again: every pass yields the same bytes."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        if scenario.profile not in PROFILES:
            msg = f"profile: unknown {scenario.profile!r}, expected one of {sorted(PROFILES)}"
            raise ValueError(msg)
        if scenario.duration_s <= 0 or scenario.scale <= 0:
            msg = "duration_s and scale must be positive"
            raise ValueError(msg)
        if not 0.0 <= scenario.dirty < 0.5:
            msg = f"dirty: {scenario.dirty} is not a fraction in [0, 0.5)"
            raise ValueError(msg)
        self.scenario = scenario
        self.seed = seed
        self.start_ms = scenario.start_ms
        self.end_ms = scenario.end_ms
        self.city: City = build_city(seed, PROFILES[scenario.profile], scenario.scale)
        if scenario.terminals not in TERMINALS:
            msg = f"terminals: unknown {scenario.terminals!r}, expected one of {sorted(TERMINALS)}"
            raise ValueError(msg)
        self.terminals = TERMINALS[scenario.terminals]
        ids = self.city.vehicle_ids
        declare(self.city.registry, ids, traits(ids, seed, self.terminals))
        if scenario.air_stations not in AIR_STATIONS:
            msg = (
                f"air_stations: unknown {scenario.air_stations!r}, "
                f"expected one of {sorted(AIR_STATIONS)}"
            )
            raise ValueError(msg)
        self.air_realism = AIR_STATIONS[scenario.air_stations]
        declare_stations(self.city, seed, self.air_realism)
        self.plan: Plan = make_plan(self.city, scenario.counts_scaled(), seed)
        self.generators: list[Generator] = self._generators()
        self.labels: list[Label] = self._labels()
        self.workshops: list[Workshop] = list(self.city.workshops)
        self.negatives: list[dict[str, Any]] = list(self.plan.negatives)

    @property
    def registry(self) -> Registry:
        return self.city.registry

    def _generators(self) -> list[Generator]:
        sc, city, seed, plan = self.scenario, self.city, self.seed, self.plan
        s, e = self.start_ms, self.end_ms
        kinds = set(sc.kinds)
        gens: dict[str, Generator] = {}
        activity = SiteActivity(
            city, seed, tuple(plan.resumptions), tuple(plan.lifts), tuple(plan.suspensions)
        )
        if "order" in kinds:
            gens["order"] = OrderStream(city, seed, s, e, activity)
        if "air" in kinds:
            self.air = AirStream(
                city,
                seed,
                s,
                e,
                pollution=sc.pollution,
                plumes=tuple(plan.plumes),
                episodes=tuple(plan.episodes),
                faults=tuple(plan.faults),
                realism=self.air_realism,
            )
            gens["air"] = self.air
        if "gps" in kinds:
            self.gps = VehicleStream(city, seed, s, e, plan.stops, self.terminals)
            gens["gps"] = self.gps
        if "video" in kinds:
            gens["video"] = VideoStream(city, seed, s, e, activity)
        if "power" in kinds:
            gens["power"] = PowerStream(city, seed, s, e, activity)
        if "hotline" in kinds:
            gens["hotline"] = HotlineStream(city, seed, s, e, plan.tickets, ticket_salt(sc))
        if "water" in kinds:
            self.water = WaterStream(
                city, seed, s, e, events=sc.water_events, stuck=sc.water_stuck,
                range_=sc.water_range, lead_s=sc.lead_s, time_scale=sc.time_scale,
                start_window_s=sc.start_window_s,
            )  # fmt: skip
            gens["water"] = self.water
        return [gens[k] for k in _ORDER if k in gens]

    def _labels(self) -> list[Label]:
        labels = list(self.plan.labels)
        # a dwell's truth is the vehicle's real stop: [arrival, departure] from its itinerary
        if "gps" in self.scenario.kinds:
            index = {v: i for i, v in enumerate(self.city.vehicle_ids)}
            for li, stop in self.plan.stop_labels.items():
                it = self.gps.itineraries[index[stop.vehicle]]
                seg = it.at(stop.arrive_ms + 1)
                if seg is None or seg.speed != 0.0:
                    msg = f"plan: vehicle {stop.vehicle} misses its stop at {stop.arrive_ms}"
                    raise RuntimeError(msg)
                lab = labels[li]
                labels[li] = msgspec.structs.replace(
                    lab, start_ms=seg.t0, end_ms=min(seg.t1, self.end_ms)
                )
        if "air" in self.scenario.kinds:
            labels += self.air.exceedance_labels()
        if "water" in self.scenario.kinds:
            labels += self.water.labels
        labels += self._unplaced_labels()
        labels = self._clip_tickets(labels)
        labels = [lab for lab in labels if lab.start_ms < self.end_ms]
        labels.sort(key=lambda x: (x.start_ms, x.rule, x.subject_id))
        return labels

    def _unplaced_labels(self) -> list[Label]:
        """Tickets whose address nobody can place and that carry no coordinates."""
        return [
            Label(
                rule="hotline.unplaced",
                subject_kind="ticket",
                subject_id=t.id,
                start_ms=t.ts,
                end_ms=t.ts,
                params={"tickets": [t.id], "level": "blue"},
            )
            for t in self.tickets()
            if not t.placeable and t.lat is None
        ]

    def _clip_tickets(self, labels: list[Label]) -> list[Label]:
        """Keep only tickets that are in the stream (a run may end before late callers call);
        a duplicate cluster needs two of them, a surge five."""
        present = {
            t.id: t.ts
            for t in self.plan.tickets
            if "hotline" in self.scenario.kinds and self.start_ms <= t.ts < self.end_ms
        }
        out = []
        for lab in labels:
            if "tickets" not in lab.params:
                out.append(lab)
                continue
            kept = [t for t in lab.params["tickets"] if t in present]
            params = {**lab.params, "tickets": kept}
            if lab.rule == "hotline.duplicate":
                if len(kept) < 2:
                    continue
                params["size"] = len(kept)
                lab = msgspec.structs.replace(
                    lab,
                    subject_id=kept[0],
                    also=tuple(kept[1:]),
                    start_ms=present[kept[0]],
                    end_ms=present[kept[-1]],
                    params=params,
                )
            elif lab.rule == "hotline.surge":
                if len(kept) < 5:
                    continue
                params["count"] = len(kept)
                lab = msgspec.structs.replace(lab, params=params)
            else:
                lab = msgspec.structs.replace(lab, params=params)
            out.append(lab)
        return out

    def entity_days(self) -> dict[str, float]:
        """Entity-days of each rule's subject population, for false alerts per entity-day."""
        reg = self.registry
        return population_days(
            days=(self.end_ms - self.start_ms) / 86_400_000,
            stations=len(reg.stations),
            districts=len(reg.districts),
            vehicles=len(reg.vehicles),
            sites=len(reg.sites),
            tickets=sum(len(g.tickets) for g in self.generators if isinstance(g, HotlineStream)),
            water_stations=len(reg.water_stations),
        )

    def tickets(self) -> list[Any]:
        """The hotline tickets with their truth (``simulators.hotline.Ticket``), in time order."""
        return [t for g in self.generators if isinstance(g, HotlineStream) for t in g.tickets]

    # -- streams -----------------------------------------------------------------------------

    def windows(self) -> range:
        w0 = self.start_ms - self.start_ms % MINUTE_MS
        return range(w0, self.end_ms, MINUTE_MS)

    def batches(self, *, dirty: bool = True) -> Iterator[Batch]:
        """Minute by minute, every record in (ts, kind, entity) order; dirty ones mixed in."""
        fraction = self.scenario.dirty if dirty else 0.0
        for w0 in self.windows():
            ts: list[int] = []
            keys: list[int] = []
            lines: list[bytes] = []
            for g in self.generators:
                c = g.chunk(w0)
                ts += c.ts
                keys += c.keys
                lines += c.lines
            if not lines:
                continue
            arr = np.array(ts, dtype=np.int64)
            order = np.argsort(arr, kind="stable")
            pick = operator.itemgetter(*order.tolist())
            if len(lines) == 1:
                b = Batch(ts, keys, lines)
            else:
                b = Batch(arr[order].tolist(), list(pick(keys)), list(pick(lines)))
            if fraction > 0.0:
                b = Batch(*corrupt(b.ts, b.keys, b.lines, fraction, py_rng(self.seed, "dirty", w0)))
            yield b

    def records(self) -> Iterator[bytes]:
        """Every record as JSON bytes (no newline), in event-time order; dirty ones included."""
        for b in self.batches():
            yield from b.lines

    def events(self) -> Iterator[Event]:
        """The valid records as typed events, in event-time order."""
        dec: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
        for b in self.batches(dirty=False):
            for line in b.lines:
                yield dec.decode(line)


def simulate(
    scenario: str | Scenario = "city-day",
    seed: int = 0,
    scale: float | None = None,
    *,
    start_ms: int | None = None,
    duration_s: int | None = None,
    profile: str | None = None,
    dirty: float | None = None,
    **knobs: Any,
) -> Simulation:
    """Plan a run of ``scenario`` (a name from :data:`SCENARIOS` or a :class:`Scenario`).

    Overrides replace the scenario's knobs; any other knob can be given by name.
    """
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            msg = f"scenario: unknown {scenario!r}, expected one of {', '.join(SCENARIOS)}"
            raise KeyError(msg)
        sc = SCENARIOS[scenario]
    else:
        sc = scenario
    changes: dict[str, Any] = dict(knobs)
    for name, value in (
        ("scale", scale),
        ("start_ms", start_ms),
        ("duration_s", duration_s),
        ("profile", profile),
        ("dirty", dirty),
    ):
        if value is not None:
            changes[name] = value
    if changes:
        sc = sc.with_(**changes)
    return Simulation(sc, seed)

"""Crafted worksite streams: a tiny flow stand-in (route -> keyed state -> update)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from citywatch.alerts import Signal
from citywatch.events import Event, Order, Power, Video
from citywatch.registry import Site
from models.worksites import ResumptionConfig, WorksiteResumption

#: Monday 2026-11-02 10:00 Asia/Shanghai (02:00 UTC), on a minute boundary.
T0 = 1_762_048_800_000
MIN = 60_000


class Harness:
    """What the flow does for one model: route, keyed state, update, watermarks."""

    def __init__(self, model: WorksiteResumption) -> None:
        self.model = model
        self.states: dict[str, Any] = {}

    def feed(self, events: Iterable[Event], watermark_ms: int | None = None) -> list[Signal]:
        out: list[Signal] = []
        for ev in events:
            key = self.model.route(ev)
            if key is None:
                continue
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = self.model.new_state(key)
            out.extend(self.model.update(state, ev))
        if watermark_ms is not None:
            for state in self.states.values():
                out.extend(self.model.on_watermark(state, watermark_ms))
        return out


def sites() -> dict[str, Site]:
    return {
        "W1": Site(
            id="W1",
            name="一号工地",
            lat=32.0,
            lon=120.9,
            district="崇川区",
            grid="G1",
            cameras=("C1", "C2"),
            meters=("M1",),
            idle_kw=5.0,
        ),
        "W2": Site(id="W2", name="二号工地", lat=32.1, lon=121.0, cameras=("C3",), meters=("M2",)),
    }


#: Crafted streams start work right after the order: no wind-down period (tested on its own).
CFG = ResumptionConfig(settle_s=0)


def make_model(config: ResumptionConfig = CFG) -> WorksiteResumption:
    return WorksiteResumption(sites(), config)


@pytest.fixture
def model() -> WorksiteResumption:
    return make_model()


@pytest.fixture
def harness(model: WorksiteResumption) -> Harness:
    return Harness(model)


def suspend(ts: int, site: str = "W1", until: int | None = None) -> Order:
    return Order(ts=ts, site=site, action="suspend", until=until, reason="环保督查停工")


def lift(ts: int, site: str = "W1") -> Order:
    return Order(ts=ts, site=site, action="lift")


def video(
    ts: int,
    persons: int = 0,
    vehicles: int = 0,
    machinery: int = 0,
    camera: str = "C1",
    site: str | None = "W1",
) -> Video:
    return Video(
        ts=ts, camera=camera, site=site, persons=persons, vehicles=vehicles, machinery=machinery
    )


def power(ts: int, kw: float | None, meter: str = "M1", site: str | None = "W1") -> Power:
    return Power(ts=ts, meter=meter, site=site, kw=kw)


def quiet(start: int, minutes: int, site: str = "W1") -> list[Event]:
    """A closed site: a guard now and then, idle power."""
    out: list[Event] = []
    for i in range(minutes):
        ts = start + i * MIN
        out.append(video(ts + 1000, persons=1 if i % 7 == 0 else 0, site=site))
        out.append(power(ts + 2000, 5.2, site=site, meter="M1" if site == "W1" else "M2"))
    return out


def working(
    start: int,
    minutes: int,
    persons: int = 6,
    machinery: int = 1,
    kw: float | None = 30.0,
    site: str = "W1",
) -> list[Event]:
    out: list[Event] = []
    for i in range(minutes):
        ts = start + i * MIN
        out.append(video(ts + 1000, persons=persons, vehicles=1, machinery=machinery, site=site))
        if kw is not None:
            out.append(power(ts + 2000, kw, site=site, meter="M1" if site == "W1" else "M2"))
    return out

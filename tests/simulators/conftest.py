"""One demo run shared by the simulator tests (planning and decoding it once keeps them fast)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from citywatch.events import Air, Event, Gps, Hotline, Order, Power, Video
from simulators import Simulation, simulate


@dataclass
class Decoded:
    sim: Simulation
    events: list[Event] = field(default_factory=list)
    air: dict[str, list[Air]] = field(default_factory=lambda: defaultdict(list))
    gps: dict[str, list[Gps]] = field(default_factory=lambda: defaultdict(list))
    video: dict[str, list[Video]] = field(default_factory=lambda: defaultdict(list))
    power: dict[str, list[Power]] = field(default_factory=lambda: defaultdict(list))
    hotline: dict[str, Hotline] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)


def decode_all(sim: Simulation) -> Decoded:
    d = Decoded(sim)
    for ev in sim.events():
        d.events.append(ev)
        if isinstance(ev, Air):
            d.air[ev.station].append(ev)
        elif isinstance(ev, Gps):
            d.gps[ev.vehicle].append(ev)
        elif isinstance(ev, Video):
            d.video[ev.camera].append(ev)
        elif isinstance(ev, Power):
            d.power[ev.meter].append(ev)
        elif isinstance(ev, Hotline):
            if not ev.is_decision:  # officers' decisions repeat the ticket later
                d.hotline[ev.ticket] = ev
        else:
            d.orders.append(ev)
    return d


@pytest.fixture(scope="session")
def demo_data() -> Decoded:
    return decode_all(simulate("demo", seed=11, duration_s=2400))


@pytest.fixture(scope="session")
def day_data() -> Decoded:
    """A whole day without video and power (cheap), so hour-scale anomalies fit."""
    return decode_all(simulate("city-day", seed=5, kinds=("air", "gps", "hotline", "order")))

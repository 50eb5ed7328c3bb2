"""Scenarios: frozen bundles of knobs, and the named library ``citywatch simulate --list`` shows.

A scenario says *what* happens (which streams, which anomalies, how many, when); the seed picks
*the instance* (which stations, vehicles, times); the profile and scale say *how big* the city is.

>>> SCENARIOS["clean"].total_anomalies()
0
>>> s = SCENARIOS["air-faults"].with_(duration_s=3600)
>>> s.duration_s, s.name
(3600, 'air-faults')
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Final

from simulators.clock import DEFAULT_START_MS

__all__ = ["KINDS", "PROFILES", "SCENARIOS", "Profile", "Scenario"]

KINDS: Final = ("air", "gps", "video", "power", "hotline", "order")


@dataclass(frozen=True, slots=True)
class Profile:
    """Entity counts and rates of a city at scale 1 (the defaults are Nantong's)."""

    name: str
    stations: int = 2000
    cameras: int = 180_000
    meters: int = 65_000
    vehicles: int = 5000
    sites: int = 10_000
    enterprises: int = 3000
    depots: int = 60
    fuel: int = 300
    zones: int = 1600
    workshops: int = 100
    tickets_per_day: int = 12_000
    #: Share of work sites under a suspension order at the start (a few hundred sites).
    suspended_share: float = 0.03
    air_interval_s: int = 60
    gps_interval_s: int = 10
    video_interval_s: int = 60
    power_interval_s: int = 60

    def count(self, name: str, scale: float, minimum: int) -> int:
        return max(minimum, round(float(getattr(self, name)) * scale))

    def records_per_s(self, scale: float) -> dict[str, float]:
        """Expected records per second by kind at ``scale`` (before GPS gaps; hotline averaged)."""
        return {
            "air": self.count("stations", scale, 12) / self.air_interval_s,
            "gps": self.count("vehicles", scale, 12) / self.gps_interval_s,
            "video": self.count("cameras", scale, 60) / self.video_interval_s,
            "power": self.count("meters", scale, 40) / self.power_interval_s,
            "hotline": self.count("tickets_per_day", scale, 60) / 86_400,
        }


PROFILES: Final[dict[str, Profile]] = {"nantong": Profile("nantong")}


@dataclass(frozen=True, slots=True)
class Scenario:
    """Every knob of a run. Counts of anomalies are per run, whatever the scale.

    Override with :meth:`with_` (or ``simulate(name, duration_s=...)``).
    """

    name: str
    description: str = ""
    profile: str = "nantong"
    scale: float = 0.01
    start_ms: int = DEFAULT_START_MS
    duration_s: int = 86_400
    kinds: tuple[str, ...] = KINDS
    #: Seconds after the start before the first anomaly may begin (model warm-up).
    lead_s: int = 2 * 3600
    #: If > 0, every anomaly starts within this many seconds after ``lead_s`` (demo: 40).
    start_window_s: int = 0
    #: Compress anomaly durations (demo: minutes instead of hours).
    time_scale: float = 1.0
    # air
    air_spikes: int = 0
    air_episodes: int = 0
    air_stuck: int = 0
    air_drift: int = 0
    air_range: int = 0
    air_inversion: int = 0
    #: Multiplies the regional pollution level (1.0: an ordinary November day, AQI mostly 良).
    pollution: float = 1.0
    #: How the stations report: "ideal" (every station once a minute, smooth weather) or
    #: "real" (hourly national averages beside minute micro stations and irregular low-cost
    #: sensors, missing hours, PM2.5 > PM10 within uncertainty, late uploads, weather
    #: calibrated on real hourly data): ``simulators.air_realism.AIR_STATIONS``.
    air_stations: str = "ideal"
    #: Flat lines shared by several stations from the same hour (a publishing artefact seen in
    #: real data): each freezes 2-3 stations for 6-24 h, labelled ``air.stuck`` per station.
    air_shared_flat: int = 0
    # vehicles
    dwell_sensitive: int = 0
    workshops_visited: int = 0
    visits_per_workshop: int = 3
    #: How the GPS terminals behave: "real" (sleep mode, jumps, late re-sends, no speed, ...)
    #: or "ideal" (a fix every 10 s): ``simulators.vehicles.TERMINALS``.
    terminals: str = "real"
    # work sites
    resumptions: int = 0
    night_resumptions: int = 0
    lifts: int = 0
    new_suspensions: int = 0
    # hotline
    duplicate_clusters: int = 0
    hard_negatives: int = 0
    surges: int = 0
    # drinking water (kind "water": only scenarios that list it)
    water_events: int = 0
    water_stuck: int = 0
    water_range: int = 0
    # cross-source incidents (spike + smell complaints + hazmat truck upwind)
    cross_source: int = 0
    #: Fraction of malformed records mixed into ``records()`` (0 = none).
    dirty: float = 0.0
    #: Multiplies every anomaly count (and hard negatives, lifts, new suspensions): more
    #: labels for evaluations at large scale. Counts above 0 stay at least 1.
    anomaly_scale: float = 1.0

    def with_(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` applied; unknown knobs raise ``TypeError``."""
        return replace(self, **changes)

    def total_anomalies(self) -> int:
        """Injected anomalies planned (before ``anomaly_scale``)."""
        skip = {"lifts", "new_suspensions", "hard_negatives"}
        return sum(int(getattr(self, name)) for name in _COUNTS if name not in skip)

    def counts_scaled(self) -> Scenario:
        """This scenario with every count multiplied by ``anomaly_scale``."""
        if self.anomaly_scale == 1.0:
            return self
        f = self.anomaly_scale
        changes = {}
        for name in _COUNTS:
            n = int(getattr(self, name))
            changes[name] = max(1, round(n * f)) if n > 0 and f > 0 else 0
        return self.with_(**changes)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_s * 1000

    def knobs(self) -> dict[str, Any]:
        """The non-default knobs, for ``--list`` and the run manifest."""
        base = Scenario(name=self.name)
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in {"name", "description"}
            and getattr(self, f.name) != getattr(base, f.name)
        }


#: The knobs that count anomalies (and hard negatives) per run.
_COUNTS: Final = (
    "air_spikes",
    "air_episodes",
    "air_stuck",
    "air_drift",
    "air_range",
    "air_inversion",
    "air_shared_flat",
    "dwell_sensitive",
    "workshops_visited",
    "resumptions",
    "night_resumptions",
    "lifts",
    "new_suspensions",
    "duplicate_clusters",
    "hard_negatives",
    "surges",
    "cross_source",
    "water_events",
    "water_stuck",
    "water_range",
)

_ALL: Final = dict(
    air_spikes=2,
    air_episodes=1,
    air_stuck=1,
    air_drift=1,
    air_range=1,
    air_inversion=1,
    dwell_sensitive=3,
    workshops_visited=2,
    resumptions=2,
    night_resumptions=1,
    lifts=1,
    new_suspensions=1,
    duplicate_clusters=4,
    hard_negatives=4,
    surges=1,
    cross_source=1,
)

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "clean",
            "An ordinary weekday with no injected anomaly: measures false alarms per entity-day.",
            hard_negatives=4,
            lifts=1,
            new_suspensions=1,
        ),
        Scenario(
            "air-faults",
            "Sensor faults: stuck, drifting, gross-range and PM2.5>PM10 inversions, plus local "
            "spikes (real pollution) to tell apart from faults.",
            kinds=("air",),
            air_spikes=2,
            air_stuck=2,
            air_drift=2,
            air_range=2,
            air_inversion=2,
        ),
        Scenario(
            "air-episode",
            "A regional pollution episode over several districts and one local source at the "
            "same time: one district alert, not dozens of station alerts.",
            kinds=("air",),
            air_episodes=1,
            air_spikes=1,
            pollution=1.2,
        ),
        Scenario(
            "hazmat",
            "Hazmat trucks dwelling near schools, hospitals, homes and water sources, among "
            "normal stops at depots, enterprises, fuel stations and traffic lights.",
            kinds=("gps",),
            dwell_sensitive=6,
        ),
        Scenario(
            "workshops",
            "Repeated dwells of different trucks at unregistered workshops (the hidden truth "
            "the dwell ranking should find), over two days.",
            kinds=("gps",),
            duration_s=2 * 86_400,
            workshops_visited=4,
            visits_per_workshop=3,
        ),
        Scenario(
            "resumption",
            "Illegal resumption of work at suspended sites (video + power), some at night with "
            "noise complaints; legal work after an order is lifted as a hard negative.",
            kinds=("video", "power", "hotline", "order"),
            resumptions=3,
            night_resumptions=2,
            lifts=2,
            new_suspensions=2,
        ),
        Scenario(
            "hotline",
            "Duplicate complaint clusters with paraphrase and place jitter, hard negatives "
            "(same place other problem, same problem other place) and a surge.",
            kinds=("hotline",),
            duplicate_clusters=8,
            hard_negatives=8,
            surges=1,
        ),
        Scenario(
            "hotline-month",
            "A month of tickets with officers' decisions: duplicate clusters, hard negatives and "
            "surges spread over 30 days, for routing that learns and a DF that settles.",
            kinds=("hotline",),
            duration_s=30 * 86_400,
            duplicate_clusters=240,
            hard_negatives=240,
            surges=4,
        ),
        Scenario(
            "cross-source",
            "A local PM spike, smell complaints within 2 km and a hazmat truck dwelling upwind: "
            "one correlated incident.",
            kinds=("air", "gps", "hotline"),
            cross_source=1,
        ),
        Scenario(
            "water",
            "Drinking-water quality stations (plant outlets, network nodes): contamination and "
            "treatment-failure events across channels, frozen analysers, limit breaches, among "
            "pump switches that lift turbidity for minutes.",
            kinds=("water",),
            duration_s=2 * 86_400,
            lead_s=8 * 3600,  # the model learns each station's normal first
            water_events=4,
            water_stuck=2,
            water_range=2,
        ),
        Scenario(
            "city-day",
            "A Nantong weekday with everything mixed in.",
            **_ALL,  # type: ignore[arg-type]
        ),
        Scenario(
            "city-week",
            "A Nantong week (Monday to Sunday) with everything mixed in, several of each "
            "anomaly, at a small scale: material for the weekly report.",
            duration_s=7 * 86_400,
            scale=0.0005,
            # each air anomaly needs a station of its own (12 at this scale)
            air_spikes=2,
            air_episodes=2,
            air_stuck=2,
            air_drift=1,
            air_range=1,
            air_inversion=1,
            # and each truck stop a vehicle of the 12 (a 15-minute cut of the week must fit)
            dwell_sensitive=4,
            workshops_visited=2,
            # the 20 work sites of this scale have few to suspend
            resumptions=2,
            night_resumptions=1,
            lifts=1,
            new_suspensions=1,
            duplicate_clusters=15,
            hard_negatives=10,
            surges=4,
            cross_source=1,
        ),
        Scenario(
            "realistic",
            "A Nantong weekday with everything mixed in, on streams as real networks send them: "
            "hourly national averages beside minute micro stations and irregular low-cost "
            "sensors, missing hours, PM2.5 > PM10 within uncertainty, a flat line shared by "
            "several stations, late uploads, sleeping truck terminals.",
            air_stations="real",
            air_shared_flat=1,
            **_ALL,  # type: ignore[arg-type]
        ),
        Scenario(
            "demo",
            "Everything at small scale, compressed: anomalies start within the first minute "
            "so a newcomer sees alerts at once.",
            duration_s=3600,
            lead_s=20,
            start_window_s=40,
            time_scale=0.1,
            terminals="ideal",  # minutes-long dwells: a terminal sleeping 5-60 min hides them
            **_ALL,  # type: ignore[arg-type]
        ),
    )
}

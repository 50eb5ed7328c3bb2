"""City simulator with ground truth: a Nantong day at any scale.

>>> sim = simulate("demo", seed=7, duration_s=120)
>>> sim.registry.stations and sim.labels[0].rule in {r for r in RULES}
True
>>> next(sim.records())[:8]
b'{"kind":'

See ``docs/simulators.md`` for scenarios, knobs and what every label means.
"""

from citywatch.alerts import RULES
from simulators.labels import Label, Workshop
from simulators.scenario import PROFILES, SCENARIOS, Profile, Scenario
from simulators.simulation import Batch, Simulation, simulate

__all__ = [
    "PROFILES",
    "RULES",
    "SCENARIOS",
    "Batch",
    "Label",
    "Profile",
    "Scenario",
    "Simulation",
    "Workshop",
    "simulate",
]

"""The two model contracts every detector in ``models/`` follows.

:class:`Detector` is river's univariate contract (the worksite CUSUM follows it). New
detectors belong in :mod:`models.detect`, whose protocol adds event time and a calibrated
score (``docs/models/detectors.md``). The contract: ``learn_one(x)`` changes only ``self``;
``score_one(x)`` changes nothing and returns a builtin finite float in [0, 1], higher = more
anomalous, 0.0 during warm-up. Detectors pickle and deepcopy; they hold no clock, no RNG but
a private seeded one, no client.

:class:`Model` is what the dataflow registers (one line in ``flows/registry.py``): it routes
typed events to keyed state and turns each event into zero or more :class:`Signal` values for
the alert engine. The model object itself holds configuration and reference data (loaded once,
never snapshotted); per-key state is a separate small object from ``new_state`` that the flow
snapshots, so keep it flat and cheap to copy (bytewax snapshots every touched key every epoch).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from citywatch.alerts import Observation, Signal
from citywatch.events import Event

__all__ = ["Detector", "Model"]


class Detector(abc.ABC):
    """A streaming univariate anomaly detector (river's ``learn_one``/``score_one``)."""

    @abc.abstractmethod
    def learn_one(self, x: float | None) -> None:
        """Update the state with ``x``; ``None`` (a missing value) is ignored."""

    @abc.abstractmethod
    def score_one(self, x: float | None) -> float:
        """Anomaly score of ``x`` in [0, 1], higher = more anomalous; 0.0 in warm-up or for None."""


class Model(abc.ABC):
    """A registered model: routes events to keyed state and emits signals.

    Subclasses set ``name`` (dotted, e.g. ``"air.qc"``), ``version`` and ``kinds`` (the event
    kinds it consumes). ``route`` returns the state key for an event, or None to skip it.

    A *second-stage* model consumes other models' findings instead of events: it sets
    ``signal_rules`` (e.g. ``{"vehicle.dwell"}``) and an empty ``kinds``, and its ``route`` and
    ``update`` receive those :class:`Signal` values (the workshop ranking does this). The flow
    delivers them in event-time order behind a city-wide watermark.
    ``update`` may mutate ``state`` and returns the signals this event causes.
    ``on_watermark`` lets time-driven models act when event time advances with no event for
    that key (e.g. a gap closes a stop); the default does nothing.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]]
    #: Rules of other models' signals this model consumes (a second stage); empty for most.
    signal_rules: ClassVar[frozenset[str]] = frozenset()
    #: Kinds whose ``route`` keeps state on the model object to decide later routes (the
    #: worksite model's order gate). The flow remembers the newest record of each such
    #: entity (and the earliest of all) in its source partitions' resume state and, after a
    #: restart, passes them through ``route`` again before new records, so routing goes on
    #: exactly where it stopped. ``route`` must be idempotent for these kinds.
    route_kinds: ClassVar[frozenset[str]] = frozenset()
    #: At most this many state shards are worth having (1 for a model with one city-wide
    #: state); 0: the flow's default. The flow sends every shard its progress marks, so
    #: shards that can never hold a key only cost.
    shards: int = 0

    @property
    def model_id(self) -> str:
        """``name@version``, written into every signal's ``model`` field."""
        return f"{self.name}@{self.version}"

    @abc.abstractmethod
    def route(self, event: Event) -> str | None:
        """The key of the state this event updates, or None if the model ignores it."""

    @abc.abstractmethod
    def new_state(self, key: str) -> Any:
        """Fresh per-key state: small, picklable, cheap to copy."""

    @abc.abstractmethod
    def update(self, state: Any, event: Event) -> Sequence[Signal | Observation]:
        """Apply ``event`` to ``state`` (in place) and return the signals it causes (and any
        :class:`~citywatch.alerts.Observation`: a measurement for maps and reports, which
        goes to the sink, not to the alert engine)."""

    def on_watermark(self, state: Any, watermark_ms: int) -> Sequence[Signal | Observation]:
        """Signals caused by event time reaching ``watermark_ms`` for this key; default none."""
        return []

    def next_due(self, state: Any) -> int | None:
        """The least watermark at which ``on_watermark(state, ...)`` may signal or change
        ``state`` (None: not before the next ``update``).

        A second-stage model that says so lets the flow skip the clock ticks before it (a
        year of sparse input then costs its signals, not its minutes); it must never be later
        than the truth (earlier only costs a tick). The default, 0, means every tick matters.
        """
        return 0

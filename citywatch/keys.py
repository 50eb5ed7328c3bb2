"""The Redis key layout (docs/contracts.md), under one configurable prefix (default ``cw:``).

>>> k = Keys("cw:")
>>> k.alerts, k.alert("abc"), k.inbound("air", 3)
('cw:alerts', 'cw:alert:abc', 'cw:in:air:3')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "cw:"

    @property
    def alerts(self) -> str:
        """Stream of every alert change, field ``a`` = alert JSON; the feed's source of truth."""
        return f"{self.prefix}alerts"

    def alert(self, alert_id: str) -> str:
        """Hash: an alert's current state and its work-order lifecycle fields."""
        return f"{self.prefix}alert:{alert_id}"

    @property
    def open(self) -> str:
        """Sorted set of open alert ids, scored by level * 1e13 + first_ts (highest first)."""
        return f"{self.prefix}open"

    @property
    def audit(self) -> str:
        """Stream of lifecycle actions (actor, action, alert id, time)."""
        return f"{self.prefix}audit"

    @property
    def deadletter(self) -> str:
        """Stream of rejected input: raw (truncated), source, reason."""
        return f"{self.prefix}deadletter"

    @property
    def counts(self) -> str:
        """Hash of running counters (records in by kind, dead letters by reason, alerts by rule)."""
        return f"{self.prefix}counts"

    @property
    def silences(self) -> str:
        """Hash of active silences: id -> JSON (matcher, until, reason, author)."""
        return f"{self.prefix}silences"

    @property
    def sink_hw(self) -> str:
        """Hash: per (run, source partition) the highest record offset the sink has counted,
        so a replay after a crash never counts input twice."""
        return f"{self.prefix}sink:hw"

    @property
    def sink_mark(self) -> str:
        """Hash: per (run, worker) how many batches the sink has written. A count lower than
        the sink expects means Redis lost data (restarted empty, or from an older snapshot)."""
        return f"{self.prefix}sink:mark"

    @property
    def wo_due(self) -> str:
        """Sorted set: alert id -> when its work order must be looked at again (deadlines)."""
        return f"{self.prefix}wo:due"

    @property
    def wo_active(self) -> str:
        """Sorted set: ids of work orders neither new nor closed."""
        return f"{self.prefix}wo:active"

    @property
    def tickets(self) -> str:
        """Stream of hotline tickets as accepted by the flow (field ``t`` = the event JSON), for
        search and the console; at-least-once: consumers key by ticket id."""
        return f"{self.prefix}tickets"

    @property
    def reports(self) -> str:
        """Hash: report id (``day:2026-11-02``) -> JSON (path, when written) of the reports
        ``citywatch run`` wrote on its own, so a restarted run does not write them again."""
        return f"{self.prefix}reports"

    def observed(self, name: str) -> str:
        """Hash: subject (``kind:id``) -> the newest observation JSON of model output ``name``
        (e.g. ``air.hourly``: each station's latest hourly AQI)."""
        return f"{self.prefix}obs:{name}"

    def observations(self, name: str) -> str:
        """Stream of every observation of ``name`` (field ``o`` = JSON), for reports."""
        return f"{self.prefix}obs:{name}:log"

    def inbound(self, kind: str, partition: int | None = None) -> str:
        """Input stream for production runs: ``cw:in:{kind}`` or ``cw:in:{kind}:{partition}``."""
        base = f"{self.prefix}in:{kind}"
        return base if partition is None else f"{base}:{partition}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix (for cleanup in tests)."""
        return f"{self.prefix}*"

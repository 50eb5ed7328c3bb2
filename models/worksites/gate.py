"""The order gate: which sites are under an active suspension order, checked before keyed state.

Most of the city's 180,000 cameras and 65,000 meters are at places with no suspension order.
Their records must cost next to nothing, so the resumption model decides in ``route`` (before
the flow's keyed state) whether a record matters: one ``dict.get`` on the site id. Only orders
change the gate (a few hundred a day), so it stays tiny: one entry per suspended site.

An entry lives from the ``suspend`` order until a ``lift`` or until ``until + grace_ms`` (the
grace lets the keyed state see records just after expiry and resolve its alert; the model's
``on_watermark`` resolves it too when no record comes).

>>> from citywatch.events import Order
>>> g = OrderGate(grace_ms=300_000)
>>> g.apply(Order(ts=1_000_000_000_000, site="W1", action="suspend", until=1_000_003_600_000))
>>> g.admits("W1", 1_000_000_060_000), g.admits("W2", 1_000_000_060_000)
(True, False)
>>> g.admits("W1", 1_000_004_000_000)   # past until + grace
False
>>> g.apply(Order(ts=1_000_000_120_000, site="W1", action="lift"))
>>> len(g)
0
"""

from __future__ import annotations

from citywatch.events import Order

__all__ = ["OrderGate"]

#: ``until`` value meaning "until lifted".
NO_EXPIRY = 0


class OrderGate:
    """Active suspension orders by site id: ``{site: until_ms or 0}``; picklable, tiny.

    ``apply`` is idempotent (applying an order twice changes nothing), so a flow may feed the
    order stream to every worker's gate (broadcast) and replay orders after a restart.
    """

    __slots__ = ("first_ms", "grace_ms", "newest_ms", "until")

    def __init__(self, grace_ms: int = 0) -> None:
        if grace_ms < 0:
            msg = f"grace_ms: must be >= 0, got {grace_ms!r}"
            raise ValueError(msg)
        self.grace_ms = grace_ms
        self.until: dict[str, int] = {}
        self.newest_ms = 0
        #: ``ts`` of the first order seen (0: none yet), to tell standing orders from new ones.
        self.first_ms = 0

    def apply(self, order: Order) -> None:
        """Open (``suspend``) or close (``lift``) the gate of ``order.site``."""
        if not self.first_ms or order.ts < self.first_ms:
            self.first_ms = order.ts
        if order.action == "suspend":
            self.until[order.site] = order.until if order.until is not None else NO_EXPIRY
        else:
            self.until.pop(order.site, None)
        if order.ts > self.newest_ms:
            self.newest_ms = order.ts
            self._prune(order.ts)

    def admits(self, site: str | None, ts: int) -> bool:
        """True when a record of ``site`` at ``ts`` must reach the site's keyed state."""
        u = self.until.get(site) if site is not None else None
        return u is not None and (u == NO_EXPIRY or ts <= u + self.grace_ms)

    def _prune(self, now_ms: int) -> None:
        grace = self.grace_ms
        dead = [s for s, u in self.until.items() if u != NO_EXPIRY and u + grace < now_ms]
        for s in dead:
            del self.until[s]

    def __len__(self) -> int:
        return len(self.until)

    def __contains__(self, site: object) -> bool:
        return site in self.until

    def __getstate__(self) -> tuple[int, dict[str, int], int, int]:
        return (self.grace_ms, self.until, self.newest_ms, self.first_ms)

    def __setstate__(self, st: tuple[int, dict[str, int], int, int]) -> None:
        self.grace_ms, self.until, self.newest_ms, self.first_ms = st[0], dict(st[1]), st[2], st[3]

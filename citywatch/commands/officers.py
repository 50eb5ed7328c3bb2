"""``citywatch officers``: simulated duty officers and departments work the alerts in Redis.

A replayed or simulated week has alerts but nobody worked them, so the audit stream (and every
effectiveness figure) is empty. This command runs :mod:`simulators.officers` on the alerts in
Redis that nobody has touched (work order ``new``, never changed) and applies its commands
through the feed's real state machine and store, each at its simulated event time, with the
escalator run at every deadline in between: the audit stream it leaves is what a real week
of officers at those times would leave (actors are named ``模拟值班员`` and
``<部门>办理员``, ids ``sim-*``).

    citywatch officers --seed 1                 # up to the flow's watermark
    citywatch officers --until 2026-11-09       # a horizon of your own (local date)
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from citywatch.errors import CitywatchError, InputError
from citywatch.redisconn import require_url, wait_for
from citywatch.settings import Settings

if TYPE_CHECKING:
    from simulators.officers import OfficerAction

__all__ = ["Applied", "add_arguments", "apply_actions", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="behaviour seed (default 1)")
    p.add_argument(
        "--until",
        help="no command after this local time (2026-11-09[T08:00]) or epoch ms "
        "(default: the flow's watermark)",
    )


@dataclass(slots=True)
class Applied:
    """What :func:`apply_actions` did."""

    applied: int = 0
    #: the system's own actions on the way: escalations past deadlines, ends of shelving
    system: int = 0
    #: commands the state machine or the roles refused, by reason class
    refused: Counter[str] = field(default_factory=Counter)
    alerts: int = 0


def run(args: argparse.Namespace) -> int:
    import redis

    from simulators.officers import Officers, simulate_officers
    from sinks.reports.period import parse_at
    from sinks.reports.source import load_alerts, watermark

    settings = Settings.load(getattr(args, "config", None))
    url = require_url(settings, "officers")
    wait_for(url, retries=settings.redis_retries).close()
    r = redis.Redis.from_url(url)
    try:
        alerts, _ = load_alerts(r, settings.keys)
        until = (
            parse_at(args.until, settings.report_utc_offset_h) if args.until else None
        ) or watermark(r, settings.keys)
    finally:
        r.close()
    if until is None:
        msg = "no --until and no watermark in Redis (run the flow first, or give --until)"
        raise InputError(msg)
    fresh = [a for a in alerts if a.get("wo_status") == "new" and not a.get("wo_rev")]
    office = Officers(
        signoff_deadline_s=settings.signoff_deadline_s,
        handling_deadline_s=settings.handling_deadline_s,
    )
    actions = simulate_officers(fresh, seed=args.seed, until_ms=until, officers=office)
    done = asyncio.run(apply_actions(settings.with_(redis_url=url), actions, until_ms=until))
    refused = ", ".join(f"{n} {why}" for why, n in done.refused.most_common()) or "none"
    print(
        f"officers: {done.applied} commands on {len(fresh)} untouched alerts "
        f"(of {len(alerts)}), {done.system} by the system (escalations, shelving ends); "
        f"refused: {refused}"
    )
    return 0


async def apply_actions(
    settings: Settings,
    actions: Sequence[OfficerAction],
    *,
    until_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Applied:
    """Apply officer commands (``simulators.officers.OfficerAction``) in time order through
    the feed's state machine and store, at their own event times, running the escalator at
    every deadline and shelving end up to each command (and then up to ``until_ms``)."""
    from citywatch.identity import Forbidden
    from sinks.feed.lifecycle import Command, IllegalTransition
    from sinks.feed.server import FeedServer
    from sinks.feed.store import FeedStore

    now = [0]
    store = FeedStore.from_url(settings.redis_url or "", settings.keys)
    server = FeedServer(settings, store, clock=lambda: now[0])
    done = Applied()

    async def escalate_until(t: int) -> None:
        while True:
            rows = await store.r.zrange(store.due_key, 0, 0, withscores=True)
            if not rows or rows[0][1] > t:
                return
            now[0] = max(now[0], int(rows[0][1]))
            n = await server.escalate_due()
            done.system += n
            if n == 0:  # stale entries were dropped; nothing due at this time any more
                await store.r.zrem(store.due_key, rows[0][0])

    try:
        ordered = sorted(actions, key=lambda a: (a.ts_ms, a.id))
        for i, a in enumerate(ordered):
            await escalate_until(a.ts_ms)
            now[0] = max(now[0], a.ts_ms)
            who = a.actor
            cmd = Command(
                a.action,
                a.id,
                actor=who.name,
                dept=a.dept,
                reason=a.reason,
                note=a.note,
                until_ms=a.until_ms,
                actor_id=who.id,
                role=who.role.value,
                actor_dept=who.dept,
            )
            try:
                await server.act(cmd, by=who)
            except Forbidden:
                done.refused["forbidden"] += 1
            except IllegalTransition:
                done.refused["illegal"] += 1
            except LookupError:
                done.refused["unknown alert"] += 1
            except CitywatchError as exc:  # the feed's other refusals (unknown department)
                done.refused[str(getattr(exc, "code", "refused"))] += 1
            else:
                done.applied += 1
            if progress is not None and i % 1000 == 999:
                progress(i + 1)
        if until_ms is not None:
            await escalate_until(until_ms)
        done.alerts = len({a.id for a in ordered})
    finally:
        await store.close()
    return done

"""The daily report beside a running flow (``report_hour`` set): a thread that looks at the
flow's event time every few seconds and writes the reports that became due
(``sinks.reports.daily``), once more when the flow ends.

A report that fails (Redis gone, disk full) is logged and tried again at the next look:
the flow never stops for a report.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from citywatch.registry import Registry
from citywatch.settings import Settings

__all__ = ["daily_reports", "report_registry"]

log = logging.getLogger(__name__)


def report_registry(settings: Settings, path: Path | None) -> tuple[Registry, bool]:
    """Names and outlines for reports, and whether the outlines are the simulated ones:
    ``path``; else ``<data_dir>/registry`` when it has districts; else the simulated Nantong
    districts and towns (the report's map says so)."""
    from citywatch.errors import ConfigError

    if path is not None:
        if not path.exists():
            msg = f"registry: {str(path)!r} not found (a directory or a registry file)"
            raise ConfigError(msg)
        return Registry.load(path), False
    default = settings.data_dir / "registry"
    if default.is_dir():
        reg = Registry.load(default)
        if reg.districts:
            return reg, False
    from simulators.geography import Geography
    from simulators.towns import build_towns

    towns = {t.id: t for t in build_towns()}
    return Registry(districts=list(Geography().districts), towns=towns), True


@contextlib.contextmanager
def daily_reports(
    settings: Settings,
    url: str,
    registry: Callable[[], tuple[Registry | None, bool]],
    every_s: float = 5.0,
    retry_s: float = 60.0,
) -> Iterator[None]:
    """Write daily reports while the body runs (nothing when ``report_hour`` is unset)."""
    if settings.report_hour is None:
        yield
        return
    from citywatch.redisconn import redact
    from sinks.reports.daily import DailyReports

    client = redis.Redis.from_url(url)
    reports = DailyReports(
        client,
        settings.keys,
        settings.reports_path,
        settings.report_hour,
        settings.report_utc_offset_h,
        registry=registry,
        source=redact(url),
    )
    stop = threading.Event()

    def look() -> bool:
        try:
            for page in reports.check():
                print(f"citywatch run: daily report {page}", flush=True)
        except Exception as exc:  # a report must never stop the flow; try again later
            log.warning("daily report: %s (trying again in %.0f s)", exc, retry_s)
            return False
        return True

    def loop() -> None:
        wait = every_s
        while not stop.wait(wait):
            wait = every_s if look() else retry_s

    thread = threading.Thread(target=loop, name="daily-reports", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        look()  # the flow's last event time may have made one more day due
        client.close()

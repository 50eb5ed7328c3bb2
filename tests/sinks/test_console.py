"""The console in headless Chromium (Debian's chromium, driven by playwright): nothing leaves
localhost, live alerts show within a second, sign-off reaches Redis and stops the blink, input
text is shown as text and never runs. Saves a screenshot (CW_SCREENSHOT=path to keep one)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
import pytest
import redis

from citywatch.alerts import Level
from citywatch.settings import Settings
from tests.sinks.test_feed_support import TOKEN, feed_settings, make_alert, running, write_alert

CHROMIUM = os.environ.get("CW_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(),
        reason="chromium not installed (make test installs it)",
    ),
]

LOCAL = {"127.0.0.1", "localhost", "::1"}


def _districts(tmp: Path) -> Path:
    def rect(name: str, lon0: float, lat0: float, lon1: float, lat1: float) -> dict[str, Any]:
        ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
        return {
            "type": "Feature",
            "properties": {"name": name, "code": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    doc = {
        "type": "FeatureCollection",
        "features": [
            rect("崇川区", 120.7, 31.9, 121.0, 32.1),
            rect("海门区", 121.0, 31.8, 121.4, 32.1),
            rect("如皋市", 120.3, 32.1, 120.8, 32.5),
            rect("<b>evil</b>", 121.0, 32.1, 121.4, 32.5),
        ],
    }
    (tmp / "districts.geojson").write_bytes(orjson.dumps(doc))
    return tmp


@pytest.fixture
def feed_port(settings: Settings, tmp_path: Path) -> Iterator[int]:
    """A feed server in a thread with its own event loop (playwright's sync API owns ours)."""
    s = feed_settings(settings, feed_heartbeat_s=1.0, feed_auth_timeout_s=5.0)
    ready: list[int] = []
    stop = threading.Event()

    async def serve() -> None:
        async with running(s, registry_dir=_districts(tmp_path)) as srv:
            ready.append(srv.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not ready and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    assert ready, "feed server did not start"
    yield ready[0]
    stop.set()
    thread.join(10)


def test_console_end_to_end(
    settings: Settings, redis_client: redis.Redis, feed_port: int, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    keys = settings.keys
    write_alert(redis_client, keys, make_alert(1, level=Level.ORANGE, title="PM2.5 浓度突增"))
    write_alert(
        redis_client,
        keys,
        make_alert(2, level=Level.YELLOW, rule="vehicle.dwell", title="危化品车辆异常停留 42 分钟"),
    )
    outside: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    base = f"http://127.0.0.1:{feed_port}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})

        def guard(route: Any) -> None:
            host = urlparse(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:")) or host in LOCAL:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.on(
            "websocket",
            lambda ws: None if urlparse(ws.url).hostname in LOCAL else outside.append(ws.url),
        )
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "requestfailed",
            lambda r: (
                errors.append(f"failed: {r.url}") if urlparse(r.url).hostname in LOCAL else None
            ),
        )
        try:
            page.goto(f"{base}/#token={TOKEN}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            assert "token" not in page.url  # taken out of the address bar
            page.wait_for_selector("#rows tr", timeout=5_000)
            assert page.locator("#rows tr").count() == 2
            assert page.locator("#districts path").count() == 4
            assert page.locator("#labels text", has_text="<b>evil</b>").count() == 1

            # a red hotline alert whose text is an XSS attempt: shows within 1 s, as text
            red = make_alert(
                3,
                level=Level.RED,
                rule="hotline.duplicate",
                title=XSS,
                district="崇川区",
                evidence={"text": XSS, "cluster": 3},
            )
            t0 = time.monotonic()
            write_alert(redis_client, keys, red)
            row = page.locator(f'#rows tr[data-id="{red.id}"]')
            row.wait_for(timeout=1_000)
            shown_s = time.monotonic() - t0
            assert shown_s < 1.0
            assert page.locator("#rows tr").first.get_attribute("data-id") == red.id  # red first
            assert row.locator("td.title").text_content() == XSS
            assert page.locator("img").count() == 0
            assert "blink" in (row.get_attribute("class") or "")

            # filters hide and show rows without touching the subscription
            page.uncheck('.f-level[value="red"]')
            assert row.count() == 0
            page.select_option("#f-rule", "vehicle.dwell")
            assert page.locator("#rows tr").count() == 1
            page.select_option("#f-rule", "")
            page.check('.f-level[value="red"]')
            assert page.locator("#rows tr").count() == 3

            row.click()
            page.wait_for_selector("#detail:not([hidden])")
            assert page.locator("#d-title").text_content() == XSS
            assert page.locator("#d-evidence").text_content().count(XSS) == 1
            assert page.locator('#d-actions button[data-action="sign"]').is_disabled()
            page.fill("#officer", "李值班")
            page.click('#d-actions button[data-action="dispatch"]')
            _wait_redis(redis_client, keys.alert(red.id), b"dispatched")
            page.wait_for_selector('#d-actions button[data-action="sign"]:not([disabled])')
            assert "blink" in (row.get_attribute("class") or "")  # dispatched, not signed yet
            page.click('#d-actions button[data-action="sign"]')
            _wait_redis(redis_client, keys.alert(red.id), b"signed")
            page.wait_for_function(
                f"""() => {{ const r = document.querySelector('#rows tr[data-id="{red.id}"]');
                    return r && !r.classList.contains('blink'); }}""",
                timeout=2_000,
            )
            assert page.locator(f'#markers circle[data-id="{red.id}"].blink').count() == 0
            assert redis_client.hget(keys.alert(red.id), "updated_by") == "李值班".encode()
            page.wait_for_function(
                "() => document.querySelectorAll('#d-timeline li').length >= 3", timeout=2_000
            )
            page.wait_for_function(  # the dispatch is counted for its department and district
                "() => document.querySelector('#m-rows').textContent.includes('生态环境局')",
                timeout=5_000,
            )
            page.select_option("#m-group", "by_district")
            assert page.locator("#m-rows", has_text="崇川区").count() == 1
            assert page.locator("#m-head").text_content() == "区县"
            page.wait_for_function(
                "() => !document.querySelector('#lag').textContent.includes('–')", timeout=3_000
            )

            shot = tmp_path / "console.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            keep = os.environ.get("CW_SCREENSHOT")
            if keep:
                shutil.copy(shot, keep)
        finally:
            browser.close()

    assert outside == []
    assert dialogs == []
    assert errors == []


def _wait_redis(r: redis.Redis, key: str, status: bytes, timeout: float = 3.0) -> None:
    t0 = time.monotonic()
    while r.hget(key, "status") != status:
        assert time.monotonic() - t0 < timeout, f"{key} never became {status!r}"
        time.sleep(0.02)


def test_console_loads_a_snapshot_in_several_chunks(
    settings: Settings, redis_client: redis.Redis, feed_port: int
) -> None:
    from playwright.sync_api import sync_playwright

    n = 450  # the server sends snapshots in chunks of 200
    for i in range(n):
        write_alert(redis_client, settings.keys, make_alert(1000 + i, level=Level.BLUE))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{feed_port}/#token={TOKEN}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            page.wait_for_function(
                f"() => document.querySelectorAll('#rows tr').length === {n}", timeout=5_000
            )
        finally:
            browser.close()

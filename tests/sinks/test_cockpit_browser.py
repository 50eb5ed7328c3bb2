"""The leader cockpit in headless Chromium (Debian's chromium via playwright, as the console's
test): a leader lands on it after login, the simulated outlines are labelled 模拟边界, the
thematic maps switch in place, pan and zoom work by wheel, drag, buttons and keyboard, and
nothing is loaded from anywhere but the feed. ``CW_COCKPIT_SHOTS=DIR`` keeps screenshots of
every theme (docs/cockpit.md shows them)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
import pytest
import redis

from citywatch.alerts import Level
from citywatch.identity import Role, UserStore
from citywatch.registry import Registry
from citywatch.settings import Settings
from tests.sinks.test_console import ARGS, CHROMIUM, LOCAL, _console_settings, _serving
from tests.sinks.test_feed_support import make_alert, write_alert

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(),
        reason="chromium not installed (make test installs it)",
    ),
]


@functools.cache
def simulated_city() -> Registry:
    from simulators.geography import Geography
    from simulators.towns import build_grids, build_towns

    towns = build_towns()
    return Registry(
        districts=list(Geography().districts),
        towns={t.id: t for t in towns},
        grids=build_grids(towns),
    )


#: (rule, level, lat, lon, title): a little of everything the themes show.
SCENE = [
    ("air.spike", Level.RED, 32.03, 120.86, "PM2.5 浓度突增"),
    ("air.exceedance", Level.ORANGE, 32.38, 120.56, "PM2.5 超标"),
    ("vehicle.dwell", Level.ORANGE, 31.98, 121.26, "危化品车辆异常停留 42 分钟"),
    ("vehicle.dwell", Level.YELLOW, 32.20, 120.58, "危化品车辆异常停留 25 分钟"),
    ("vehicle.workshop", Level.RED, 32.12, 121.05, "疑似非法作坊：夜间反复停靠"),
    ("worksite.resumption", Level.ORANGE, 31.86, 121.68, "停工工地违规复工"),
    ("worksite.resumption", Level.YELLOW, 32.31, 121.18, "停工工地违规复工"),
    ("hotline.duplicate", Level.YELLOW, 32.05, 120.9, "重复投诉：夜间施工噪声"),
    ("hotline.surge", Level.BLUE, 32.55, 120.45, "热线激增：异味"),
]


def _populate(r: redis.Redis, s: Settings, reg: Registry) -> list[str]:
    keys, loc = s.keys, reg.locator()
    ids = []
    for n, (rule, level, lat, lon, title) in enumerate(SCENE):
        where = loc.locate(lat, lon)
        a = make_alert(n, rule=rule, level=level, title=title).evolve(
            lat=lat, lon=lon, district=where.district, town=where.town, grid=where.grid
        )
        write_alert(r, keys, a)
        ids.append(a.id)
    now = int(time.time() * 1000)
    stations = [("S01", 32.02, 120.88, 168), ("S02", 32.21, 120.57, 92), ("S03", 31.9, 121.3, 45)]
    for sid, lat, lon, aqi in stations:
        obs = {"name": "air.hourly", "subject": {"kind": "station", "id": sid}, "ts": now,
               "values": {"aqi": aqi, "primary": "PM2.5"}, "lat": lat, "lon": lon,
               "district": loc.locate(lat, lon).district}  # fmt: skip
        r.hset(keys.observed("air.hourly"), f"station:{sid}", orjson.dumps(obs))
    for n in range(60):  # tickets: most in two towns of the city core
        lat, lon = (32.03, 120.87) if n % 3 else (32.21, 120.57)
        t = {"kind": "hotline", "ticket": f"T{n:04d}", "ts": now - n * 60_000, "text": "噪声扰民",
             "category": "noise", "lat": lat + (n % 5) * 1e-3, "lon": lon}  # fmt: skip
        r.xadd(keys.tickets, {"t": orjson.dumps(t)})
    r.hset(keys.counts, mapping={"in:air": 1000, "in:gps": 5000, "records": 6000, "lag_ms": 800})
    return ids


def _transform(page: Any) -> tuple[float, float, float]:
    t = page.get_attribute("#world", "transform") or ""
    m = re.match(r"translate\(([-\d.]+),([-\d.]+)\) scale\(([-\d.]+)\)", t)
    assert m, t
    return float(m[1]), float(m[2]), float(m[3])


def test_the_leader_lands_on_the_cockpit_and_switches_maps_in_place(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    reg = simulated_city()
    s = _console_settings(settings)
    token = UserStore(s.users_path).add("zhou", "周主任", Role.LEADER, centre="city")
    _populate(redis_client, s, reg)
    shots = os.environ.get("CW_COCKPIT_SHOTS")
    outside: list[str] = []
    errors: list[str] = []
    with (
        _serving(s, tmp_path, registry=reg, cockpit_cache_s=0.3) as port,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})

        def guard(route: Any) -> None:
            host = urlparse(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:")) or host in LOCAL:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"http://127.0.0.1:{port}/#token={token}")
            page.wait_for_url(re.compile(r"/cockpit"), timeout=10_000)  # a leader lands here
            page.wait_for_selector("#conn.up", timeout=10_000)
            page.wait_for_selector("#marks circle", timeout=10_000)
            assert page.locator("#fills path.town").count() == 97
            assert page.locator("#edges path").count() == 10
            assert page.locator("#simulated").is_visible()
            assert page.locator("#simulated").text_content() == "模拟边界"
            assert page.locator("#marks circle").count() == len(SCENE)
            tiles = page.locator("#tiles").text_content() or ""
            assert "2红色预警" in tiles
            assert "9未办结工单" in tiles
            assert "周主任" in (page.locator("#who").text_content() or "")
            redis_client.hincrby(s.keys.counts, "in:gps", 9000)  # records keep arriving
            redis_client.hincrby(s.keys.counts, "in:air", 1500)
            page.wait_for_function(  # a later sample gives rates by source
                "() => /车辆GPS[1-9]/.test(document.querySelector('#side-body').textContent)",
                timeout=5_000,
            )
            if shots:
                page.screenshot(path=str(Path(shots) / "cockpit.png"))

            # themes switch in place: no page load, the URL says which
            page.evaluate("window.__same = true")
            for theme, check in (
                ("air", "#marks circle"),
                ("hazmat", "#marks rect"),
                ("worksites", "#marks circle"),
                ("hotline", "#fills path.town[style*='fill']"),
                ("orders", "#fills path.town[style*='fill']"),
            ):
                page.click(f'#themes button[data-theme="{theme}"]')
                page.wait_for_selector(check, timeout=5_000)
                assert page.evaluate("window.__same") is True
                assert page.url.endswith(f"?theme={theme}")
                assert (
                    page.locator(f'#themes button[data-theme="{theme}"]').get_attribute(
                        "aria-selected"
                    )
                    == "true"
                )
                if shots:
                    page.screenshot(path=str(Path(shots) / f"cockpit-{theme}.png"))
            page.click('#themes button[data-theme="air"]')
            assert page.locator("#marks circle").count() == 3  # stations, by AQI
            assert page.locator("#fills path[style*='fill']").count() == 0  # no tint left over
            assert "轻度污染" in (page.locator("#legend").text_content() or "")
            page.click('#themes button[data-theme="hotline"]')
            assert "近一天各街镇工单数" in (page.locator("#legend").text_content() or "")
            assert "60近一天工单" in (page.locator("#tiles").text_content() or "")

            # pan and zoom: wheel, drag, buttons, keyboard; the scale bar follows
            page.click('#themes button[data-theme="overview"]')
            scale0 = page.locator("#scale-text").text_content()
            box = page.locator("#mapbox").bounding_box()
            assert box is not None
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx, cy)
            page.mouse.wheel(0, -300)
            page.wait_for_function(
                "() => !document.querySelector('#world').getAttribute('transform')"
                ".endsWith('scale(1)')"
            )
            _, _, k1 = _transform(page)
            assert k1 > 1.5
            assert page.locator("#scale-text").text_content() != scale0
            x1, y1, _ = _transform(page)
            page.mouse.down()
            page.mouse.move(cx + 120, cy + 60, steps=4)
            page.mouse.up()
            x2, y2, _ = _transform(page)
            assert (round(x2 - x1), round(y2 - y1)) == (120, 60)
            page.click("#zoom-in")
            assert _transform(page)[2] == pytest.approx(k1 * 1.5)
            page.focus("#mapbox")
            for _ in range(3):
                page.keyboard.press("+")
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(  # zoomed in far enough: the grids are drawn
                "() => (document.querySelector('#grids').getAttribute('d') || '').length > 10000",
                timeout=10_000,
            )
            assert page.locator("#grids").is_visible()
            page.keyboard.press("0")
            assert _transform(page) == (0.0, 0.0, 1.0)
            assert not page.locator("#grids").is_visible()
        finally:
            browser.close()
    assert outside == []
    assert errors == []

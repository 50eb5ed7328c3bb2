"""The console in headless Chromium (Debian's chromium, driven by playwright): nothing leaves
localhost, live alerts show within a second, sign-off reaches Redis and stops the blink, input
text is shown as text and never runs. Saves a screenshot (CW_SCREENSHOT=path to keep one)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
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
from citywatch.identity import Role, UserStore
from citywatch.settings import Settings
from tests.sinks.test_feed_support import (
    TOKEN,
    add_user,
    feed_settings,
    make_alert,
    running,
    write_alert,
)

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


@contextlib.contextmanager
def _serving(s: Settings, registry_dir: Path, **kwargs: Any) -> Iterator[int]:
    """A feed server in a thread with its own event loop (playwright's sync API owns ours)."""
    ready: list[int] = []
    stop = threading.Event()

    async def serve() -> None:
        async with running(s, registry_dir=registry_dir, users_every_s=0.1, **kwargs) as srv:
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


def _console_settings(settings: Settings) -> Settings:
    return feed_settings(settings, feed_heartbeat_s=1.0, feed_auth_timeout_s=5.0)


@pytest.fixture
def feed_port(settings: Settings, tmp_path: Path) -> Iterator[int]:
    with _serving(_console_settings(settings), _districts(tmp_path)) as port:
        yield port


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
            assert page.locator("#who").text_content() == "开发者 · 管理员 · 开发环境"
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
            assert redis_client.hget(keys.alert(red.id), "updated_by") == "开发者".encode()
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


def _wait_redis(r: redis.Redis, key: str, status: bytes, timeout: float = 10.0) -> None:
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


def test_a_reopened_alert_moves_back_into_the_live_list(
    settings: Settings, redis_client: redis.Redis, feed_port: int
) -> None:
    from playwright.sync_api import sync_playwright

    from citywatch.alerts import AlertState
    from sinks.redis_sink import RedisSink

    sink = RedisSink(settings.redis_url or "", settings.keys, run_id="c").build("o", 0, 1)
    fired = make_alert(1, level=Level.ORANGE, title="PM2.5 超标")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"http://127.0.0.1:{feed_port}/#token={TOKEN}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            row = page.locator(f'#rows tr[data-id="{fired.id}"]')
            sink.write_batch([fired])
            row.wait_for(timeout=5_000)
            sink.write_batch([fired.evolve(state=AlertState.RESOLVED, version=2)])
            row.wait_for(state="detached", timeout=5_000)  # resolved, order not active: gone
            sink.write_batch([fired.evolve(version=3, level=Level.RED)])  # the same id fires again
            row.wait_for(timeout=5_000)
            assert "blink" in (row.get_attribute("class") or "")  # a new order, not signed
            row.click()
            page.wait_for_selector("#detail:not([hidden])")
            page.wait_for_function(
                "() => document.querySelector('#d-timeline').textContent.includes('再次预警')",
                timeout=2_000,
            )
        finally:
            browser.close()


# -- identities in the console ---------------------------------------------------------------

ECO, TRAFFIC = "生态环境局", "交通运输局"
HANDLER_ACTIONS = ("sign", "reject", "handle", "feedback")


def _buttons(page: Any) -> dict[str, str]:
    """Each action button's state: hidden, disabled or enabled."""
    out = {}
    for b in page.locator("#d-actions button").all():
        action = b.get_attribute("data-action") or "?"
        out[action] = "hidden" if b.is_hidden() else "disabled" if b.is_disabled() else "enabled"
    return out


def test_each_role_sees_only_the_actions_it_may_take(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    s = _console_settings(settings)
    tokens = {
        "duty": add_user(s, "li", Role.DUTY_OFFICER, name="李值班"),
        "eco": add_user(s, "wang", Role.HANDLER, dept=ECO, name="王环保"),
        "traffic": add_user(s, "zhao", Role.HANDLER, dept=TRAFFIC, name="赵交通"),
        "leader": add_user(s, "zhou", Role.LEADER, name="周主任"),
    }
    alert = make_alert(1, level=Level.RED)
    write_alert(redis_client, s.keys, alert)
    row = f'#rows tr[data-id="{alert.id}"]'

    with _serving(s, _districts(tmp_path)) as port, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        errors: list[str] = []

        def login(who: str) -> Any:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("pageerror", lambda e: errors.append(str(e)))
            stay = "?console" if who == "leader" else ""  # a leader would land on the cockpit
            page.goto(f"http://127.0.0.1:{port}/{stay}#token={tokens[who]}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            page.click(row)
            page.wait_for_selector("#detail:not([hidden])")
            return page

        try:
            duty = login("duty")
            assert duty.locator("#who").text_content() == "李值班 · 值班员"
            assert _buttons(duty) == {
                "dispatch": "enabled",
                **dict.fromkeys(HANDLER_ACTIONS, "hidden"),
                "close": "enabled",
                "shelve": "enabled",
                "reopen": "disabled",
            }
            duty.select_option("#a-dept", ECO)
            duty.click('#d-actions button[data-action="dispatch"]')
            _wait_redis(redis_client, s.keys.alert(alert.id), b"dispatched")

            traffic = login("traffic")
            assert traffic.locator("#who").text_content() == f"赵交通 · 部门处置员 · {TRAFFIC}"
            assert _buttons(traffic) == {
                "dispatch": "hidden",
                "sign": "disabled",  # dispatched to the other department
                "reject": "disabled",
                "handle": "disabled",
                "feedback": "disabled",
                "close": "hidden",
                "shelve": "hidden",
                "reopen": "hidden",
            }
            assert traffic.locator("#a-dept").is_hidden()
            assert (
                traffic.locator("#d-role").text_content() == f"此工单派给{ECO}，{TRAFFIC}不能处理。"
            )

            leader = login("leader")
            assert set(_buttons(leader).values()) == {"hidden"}
            assert "只读账号" in (leader.locator("#d-role").text_content() or "")

            eco = login("eco")
            assert _buttons(eco)["sign"] == "enabled"
            eco.click('#d-actions button[data-action="sign"]')
            _wait_redis(redis_client, s.keys.alert(alert.id), b"signed")
            assert redis_client.hget(s.keys.alert(alert.id), "updated_by") == "王环保".encode()
            # the duty officer's page hears about it, and still offers no handler action
            duty.wait_for_function(
                "() => document.querySelectorAll('#d-timeline li').length >= 3", timeout=3_000
            )
            assert "签收 · 王环保" in (duty.locator("#d-timeline").text_content() or "")
            assert _buttons(duty)["handle"] == "hidden"

            # revoking a user logs their console out; logging out shows the login form
            UserStore(s.users_path).revoke("zhao")
            traffic.wait_for_selector("#login:not([hidden])", timeout=5_000)
            assert traffic.locator("#conn-text").text_content() == "令牌已吊销"
            leader.click("#logout")
            leader.wait_for_selector("#login:not([hidden])")
            assert leader.locator("#who").text_content() == "未登录"
        finally:
            browser.close()
    assert errors == []


def test_the_list_never_claims_no_alerts_while_it_cannot_know(feed_port: int) -> None:
    from playwright.sync_api import sync_playwright

    routes: list[Any] = []
    offline = threading.Event()

    def feed(ws: Any) -> None:
        routes.append(ws)
        if not offline.is_set():
            ws.connect_to_server()  # else: accepted, and never a word (no snapshot)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.route_web_socket("**/feed", feed)
            page.goto(f"http://127.0.0.1:{feed_port}/#token={TOKEN}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            # connected, snapshot complete, nothing open: now it may say so
            page.wait_for_selector("#empty:not([hidden])")
            assert page.locator("#empty").text_content() == "暂无预警"
            assert page.locator("#stale").is_hidden()
            offline.set()
            routes[-1].close(code=1001, reason="going away")
            page.wait_for_selector("#conn.down", timeout=5_000)
            assert page.locator("#empty").is_hidden()
            assert page.locator("#stale").text_content() == "已断开：列表可能不是最新（正在重连）"
            # a fresh page whose feed never answers: no claim either
            fresh = browser.new_page()
            fresh.route_web_socket("**/feed", feed)
            fresh.goto(f"http://127.0.0.1:{feed_port}/#token={TOKEN}")
            fresh.wait_for_selector("#stale:not([hidden])", timeout=5_000)
            assert fresh.locator("#stale").text_content() == "正在连接：尚未收到预警列表"
            fresh.wait_for_timeout(500)
            assert fresh.locator("#empty").is_hidden()
        finally:
            browser.close()


def _cjk_fonts_installed() -> bool:
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return False
    return bool(out.stdout.strip())


def test_missing_cjk_fonts_are_named_in_a_hint(feed_port: int, tmp_path: Path) -> None:
    """Without a CJK font Chinese shows as boxes: the page measures it and says what to install.
    Chromium is started once with a fontconfig that knows only a Latin font, once as is."""
    from playwright.sync_api import sync_playwright

    latin = next(
        (
            d
            for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
            if Path(d).is_dir()
        ),
        None,
    )
    if latin is None:
        pytest.skip("no DejaVu or Liberation fonts to build a Latin-only fontconfig from")
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{latin}</dir><cachedir>{tmp_path}/cache</cachedir></fontconfig>",
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{feed_port}/#token={TOKEN}"
    with sync_playwright() as p:
        for env, missing in (
            ({**os.environ, "FONTCONFIG_FILE": str(conf)}, True),
            (dict(os.environ), not _cjk_fonts_installed()),
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, env=env)
            try:
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("#conn.up", timeout=10_000)
                assert page.evaluate("() => window.citywatch.glyphsMissing('A', 'W')") is False
                hint = page.locator("#font-hint")
                assert hint.is_visible() is missing
                if missing:
                    text = hint.text_content() or ""
                    assert "fonts-noto-cjk" in text
                    assert "fonts-wqy-microhei" in text
                    assert text.isascii()  # readable without the fonts it asks for
            finally:
                browser.close()


def test_search_from_the_console_finds_alerts_and_tickets(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from sinks.search.service import SearchService
    from sinks.search.sqlite_index import SqliteIndex

    s = _console_settings(settings)
    assert s.redis_url
    service = SearchService(SqliteIndex(tmp_path / "s.sqlite"), s.redis_url, s.keys)
    alert = make_alert(5, level=Level.ORANGE, title="化工园区异味扩散")
    write_alert(redis_client, s.keys, alert)
    ticket = {"kind": "hotline", "ticket": "T900", "ts": alert.first_ts, "category": "odor",
              "text": "化工厂方向异味很重 " + XSS}  # fmt: skip
    redis_client.xadd(s.keys.tickets, {"t": orjson.dumps(ticket)})
    errors: list[str] = []
    with _serving(s, _districts(tmp_path), search=service, search_every_s=0.1) as port:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
            try:
                page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")
                page.wait_for_selector("#conn.up", timeout=10_000)
                page.fill("#q", "异味")
                page.click("#search-form button")
                page.wait_for_selector("#r-list li >> nth=1", timeout=5_000)
                assert page.locator("#r-list li").count() == 2
                for i in range(2):  # each hit shows where the word is
                    assert page.locator("#r-list li").nth(i).locator("mark").count() >= 1
                page.locator("#r-list li", has_text="热线").click()
                page.wait_for_selector("#hit:not([hidden])")
                assert XSS in (page.locator("#h-body").text_content() or "")
                assert page.locator("img").count() == 0
                page.locator("#r-list li", has_text="预警").click()
                page.wait_for_selector("#detail:not([hidden])")
                assert page.locator("#d-title").text_content() == "化工园区异味扩散"
                assert page.locator("#hit").is_hidden()
                page.select_option("#q-kind", "ticket")
                page.click("#search-form button")
                page.wait_for_function(
                    "() => document.querySelectorAll('#r-list li').length === 1", timeout=5_000
                )
                shot = os.environ.get("CW_SCREENSHOT_SEARCH")
                if shot:
                    page.screenshot(path=shot)
            finally:
                browser.close()
    service.close()
    assert errors == []


def test_dispatch_control_offers_the_routing_suggestion(
    settings: Settings, redis_client: redis.Redis, feed_port: int
) -> None:
    """A hotline alert's evidence.routing shows as three chips; the first is preselected."""
    from playwright.sync_api import sync_playwright

    keys = settings.keys
    dup = make_alert(
        7,
        level=Level.YELLOW,
        rule="hotline.duplicate",
        title="重复诉求：3件工单反映同一问题",
        evidence={
            "size": 3,
            "routing": [
                {"dept": "住房和城乡建设局", "p": 0.71},
                {"dept": "城市管理局", "p": 0.18},
                {"dept": "生态环境局", "p": 0.05},
            ],
        },
    )
    write_alert(redis_client, keys, dup)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        try:
            page.goto(f"http://127.0.0.1:{feed_port}/#token={TOKEN}")
            page.wait_for_selector("#conn.up", timeout=10_000)
            page.locator(f'#rows tr[data-id="{dup.id}"]').click()
            page.wait_for_selector("#a-suggest:not([hidden])", timeout=5_000)
            chips = page.locator("#a-suggest .chip")
            assert chips.count() == 3
            assert chips.first.text_content() == "住房和城乡建设局 71%"
            assert page.locator("#a-dept").input_value() == "住房和城乡建设局"
            chips.nth(1).click()
            assert page.locator("#a-dept").input_value() == "城市管理局"
            page.click('#d-actions button[data-action="dispatch"]')
            _wait_redis(redis_client, keys.alert(dup.id), b"dispatched")
            assert redis_client.hget(keys.alert(dup.id), "dept") == "城市管理局".encode()
        finally:
            browser.close()

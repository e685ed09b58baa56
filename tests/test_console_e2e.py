"""The operator console in a real headless Chromium, against a real gateway process, the
warehouse simulator and Mosquitto: a zone heats, its tile turns red and the banner shows;
an operator acknowledges and both the alarm list and the WMS see it; a viewer cannot; a
request without the CSRF token is refused. Screenshots (en and zh) are kept as artefacts
in ``$CELLSAFE_TEST_ARTIFACTS`` (default ``tests/artifacts/``).

One gateway, one broker, one simulator and one browser serve the whole module.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from gateway.console.auth import User, hash_password, write_users
from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.scenario import load_scenario
from tests.lab import ROOT, GatewayProcess, WmsSubscriber, lab_config, wait_until, write_config

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
PASSWORDS = {"olga": "olga-operator-pw", "vera": "vera-viewer-pw", "eric": "eric-engineer-pw"}
HIGH_HIGH = "electrolyte-store.temperature.high_high"
HIGH = "electrolyte-store.temperature.high"
ARTIFACTS = Path(os.environ.get("CELLSAFE_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))


@dataclass
class Rig:
    url: str
    sim: SimulatorThread
    wms: WmsSubscriber
    gateway: GatewayProcess
    browser: Browser

    def context(
        self, locale: str = "en-US", width: int = 1180, height: int = 820
    ) -> BrowserContext:
        return self.browser.new_context(
            locale=locale, viewport={"width": width, "height": height}, base_url=self.url
        )

    def signed_in(self, context: BrowserContext, name: str) -> Page:
        page = context.new_page()
        page.goto("/")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORDS[name])
        page.click("#signin-form button[type=submit]")
        expect(page.locator("#user")).to_have_attribute("data-role", re.compile(".+"))
        return page

    def state(self) -> dict[str, Any]:
        """The gateway's alarms as the WMS's retained state shows them."""
        return self.wms.state.get("alarms", {"alarms": []})


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("console")
    users = tmp / "console-users"
    write_users(
        users,
        {
            "olga": User("olga", "operator", "", hash_password(PASSWORDS["olga"])),
            "vera": User("vera", "viewer", "", hash_password(PASSWORDS["vera"])),
            "eric": User("eric", "engineer", "", hash_password(PASSWORDS["eric"])),
        },
    )
    # The hot-zone setting without its story: the test heats the store itself.
    scenario = load_scenario("hot_zone").model_copy(update={"steps": [], "duration": 3600.0})
    port = free_port()
    with (
        MosquittoBroker(tmp / "broker") as broker,
        SimulatorThread(scenario, free_port()) as sim,
        sync_playwright() as playwright,
    ):
        wms = WmsSubscriber(broker.port, client_id="wms-console")
        config = lab_config(tmp, sim.port, broker.port, rate_of_rise=1000.0)
        data = tomllib.loads(config.read_text())
        data["console"] = {"listen": f"127.0.0.1:{port}", "users_file": str(users)}
        gateway = GatewayProcess(write_config(tmp, data), tmp / "gateway.log").start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _get(url + "/api/i18n") == 200, 20, "the console to answer")
            yield Rig(url, sim, wms, gateway, browser)
        finally:
            browser.close()
            gateway.terminate()
            wms.close()
    assert not wms.invalid, "messages broke the contract:\n" + "\n".join(wms.invalid[:20])


@pytest.fixture(scope="module")
def hot(rig: Rig) -> Rig:
    """The electrolyte store heated past its high-high limit (40 degC), and held there."""

    def heat(warehouse: Any) -> None:
        zone = warehouse.zone("electrolyte-store")
        zone.temperature = 48.0
        zone.heat_load = 5.0  # more than the exhaust fan removes

    rig.sim.call(heat)
    return rig


def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_hot_zone_turns_red_with_a_banner_and_the_operator_acknowledges(hot: Rig) -> None:
    context = hot.context("en-US")
    page = hot.signed_in(context, "olga")
    tile = page.locator("[data-zone='electrolyte-store']")
    expect(tile).to_have_class(re.compile(r"\bp-high\b"), timeout=20_000)
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner")).to_contain_text("NEW HIGH-PRIORITY ALARM")
    expect(page.locator("#banner-alarms")).to_contain_text(HIGH_HIGH)
    assert page.evaluate("window.cellsafeBeeps") >= 1, "no beep for the new alarm"
    expect(page.locator("[data-zone='cell-store']")).not_to_have_class(re.compile(r"\bp-"))
    expect(tile.locator("[data-kind=temperature] b")).to_have_text(re.compile(r"\d+(\.\d+)? degC"))
    _shoot(page, "console-overview-en.png")

    page.click("#banner-go")
    row = page.locator(f"tr[data-alarm='{HIGH_HIGH}']")
    expect(row).to_have_attribute("data-state", "unack")
    _shoot(page, "console-alarms-en.png")
    row.locator("button[data-action=ack]").click()
    expect(row).to_have_attribute("data-state", "acked", timeout=10_000)
    expect(page.locator("#banner")).to_be_hidden()

    wait_until(
        lambda: any(
            e["type"] == "alarm.acknowledged" and e["alarm"]["id"] == HIGH_HIGH
            for e in hot.wms.snapshot()
        ),
        10,
        "the acknowledgement on the broker",
    )
    acked = next(e for e in hot.wms.snapshot() if e["type"] == "alarm.acknowledged")
    assert "olga via console" in json.dumps(acked)
    wait_until(
        lambda: any(a["id"] == HIGH_HIGH and a["state"] == "acked" for a in hot.state()["alarms"]),
        10,
        "the WMS's retained alarm state",
    )
    context.close()


def test_a_viewer_cannot_acknowledge(hot: Rig) -> None:
    context = hot.context("en-US")
    page = hot.signed_in(context, "vera")
    page.goto("/#alarms")
    row = page.locator(f"tr[data-alarm='{HIGH}']")
    expect(row).to_have_attribute("data-state", "unack", timeout=20_000)
    expect(row.locator("button[data-action=ack]")).to_be_disabled()
    # The API refuses it too, with a valid CSRF token: the role decides.
    reply = page.evaluate(
        """async (alarm) => {
            const me = await (await fetch('/api/me')).json();
            const r = await fetch('/api/alarms/' + alarm + '/ack', {method: 'POST',
                headers: {'X-CSRF-Token': me.csrf, 'Content-Type': 'application/json'},
                body: '{}'});
            return [r.status, await r.json()];
        }""",
        HIGH,
    )
    assert reply[0] == 403 and "viewer may not ack" in reply[1]["error"]
    expect(row).to_have_attribute("data-state", "unack")
    wait_until(
        lambda: any(
            e["type"] == "command.refused" and e["command"]["by"] == "vera"
            for e in hot.wms.snapshot()
        ),
        10,
        "the refusal audited on the broker",
    )
    context.close()


def test_a_forged_request_without_the_csrf_token_is_refused(hot: Rig) -> None:
    context = hot.context("en-US")
    page = hot.signed_in(context, "olga")
    # The operator's own cookie goes with it; only the token is missing (or wrong).
    missing = context.request.post(f"/api/alarms/{HIGH}/ack", data={})
    wrong = context.request.post(
        f"/api/alarms/{HIGH}/ack", data={}, headers={"X-CSRF-Token": "guessed"}
    )
    assert (missing.status, wrong.status) == (403, 403)
    assert "X-CSRF-Token" in missing.json()["error"]
    # Another site's page may not sign anybody in either (login CSRF).
    foreign = context.request.post(
        "/api/signin",
        data={"name": "olga", "password": PASSWORDS["olga"]},
        headers={"Origin": "http://evil.example"},
    )
    assert foreign.status == 403
    page.goto("/#alarms")
    expect(page.locator(f"tr[data-alarm='{HIGH}']")).to_have_attribute("data-state", "unack")
    assert not any(
        e["type"] == "alarm.acknowledged" and e["alarm"]["id"] == HIGH for e in hot.wms.snapshot()
    )
    context.close()


def test_chinese_by_the_browser_on_a_tablet_and_screenshots(hot: Rig) -> None:
    context = hot.context("zh-CN", width=768, height=1024)  # a tablet held upright
    page = hot.signed_in(context, "eric")
    expect(page.locator("#nav a[href='#overview']")).to_have_text("总览")
    expect(page.locator("[data-zone='electrolyte-store']")).to_have_class(
        re.compile(r"\bp-high\b"), timeout=20_000
    )
    expect(page.locator("[data-zone='electrolyte-store'] [data-kind=temperature]")).to_contain_text(
        "温度"
    )
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits), "the overview scrolls sideways on a tablet"
    _shoot(page, "console-overview-zh.png")
    page.goto("/#alarms")
    expect(page.locator(f"tr[data-alarm='{HIGH}'] .state")).to_have_text("未确认")
    _shoot(page, "console-alarms-zh.png")
    # The user's own choice wins over the browser's, for this session.
    page.select_option("#lang", "en")
    expect(page.locator("#nav a[href='#overview']")).to_have_text("Overview")
    context.close()


def test_the_alarm_actions_stay_in_view_on_an_upright_tablet(hot: Rig) -> None:
    context = hot.context("en-US", width=768, height=1024)
    page = hot.signed_in(context, "olga")
    page.goto("/#alarms")
    expect(page.locator(f"tr[data-alarm='{HIGH}'] button[data-action]").first).to_be_visible(
        timeout=20_000
    )
    hidden = page.evaluate(
        """() => [...document.querySelectorAll('#alarm-list button[data-action]')]
            .filter((b) => b.getBoundingClientRect().right
                > b.closest('.scroll').getBoundingClientRect().right)
            .map((b) => b.closest('tr').dataset.alarm + ' ' + b.dataset.action)"""
    )
    assert hidden == [], f"cut off at the right edge of the alarm list: {hidden}"
    expect(page.locator(f"tr[data-alarm='{HIGH}'] td").first).to_have_text(HIGH)
    context.close()


def test_an_engineer_overrides_a_relay_and_finds_it_in_the_event_log_and_trends(
    hot: Rig,
) -> None:
    context = hot.context("en-US")
    page = hot.signed_in(context, "eric")
    page.goto("/#relays")
    row = page.locator("tr[data-relay='cell-siren']")
    row.locator("select").select_option("on")
    row.locator("input[aria-label=Reason]").fill("siren test with the fire brigade")
    row.locator("input[type=number]").fill("2")
    row.locator("button.act").click()
    expect(row).to_contain_text("on · 2 Minutes · by eric via console", timeout=10_000)
    wait_until(lambda: hot.sim.warehouse.relays[3] is True, 10, "the siren's coil on")
    row.get_by_role("button", name="End override").click()
    expect(row).to_contain_text("—", timeout=10_000)
    wait_until(lambda: hot.sim.warehouse.relays[3] is False, 10, "the siren's coil off")

    page.goto("/#events")
    page.select_option("select[name=category]", "safety")
    log = page.locator("#event-list")
    expect(log).to_contain_text("safety.override_ended")
    expect(log).to_contain_text("siren test with the fire brigade")
    expect(log).not_to_contain_text("alarm.raised")

    page.goto("/#trends")
    page.select_option("#trend-point", "zone-sensors.temperature")
    expect(page.locator("#chart .uplot canvas")).to_be_visible()
    expect(page.locator("#chart .u-title")).to_have_text("zone-sensors.temperature")
    context.close()


def test_signed_out_the_page_counts_high_alarms_and_an_idle_action_asks_again(hot: Rig) -> None:
    """The sign-in page shows how many high-priority alarms are up and nothing more. Then an
    action refused for idleness (the gateway's 401 ``reauth``, answered here in its place
    once: the rig's idle_timeout is 15 minutes; the gateway's own refusal is tested in
    test_console_sessions.py) asks for the password over the same live page, and the
    action goes through on the real gateway after it."""
    context = hot.context("en-US")
    page = context.new_page()
    page.goto("/")
    count = page.locator("#signin-alarms")
    expect(count).to_have_text(re.compile(r"^[1-9]\d* high-priority alarm"), timeout=20_000)
    assert "electrolyte-store" not in page.content()

    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORDS["olga"])
    page.click("#signin-form button[type=submit]")
    expect(count).to_be_hidden()
    page.goto("/#alarms")
    row = page.locator(f"tr[data-alarm='{HIGH}']")
    expect(row).to_have_attribute("data-state", "unack", timeout=20_000)
    page.evaluate("window.sameView = true")
    why = {"ok": False, "error": "sign in again", "reason": "reauth"}
    page.route(
        f"**/api/alarms/{HIGH}/ack",
        lambda route: route.fulfill(status=401, json=why),
        times=1,
    )
    row.locator("button[data-action=ack]").click()
    dialog = page.locator("#reauth")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("olga")
    expect(row).to_have_attribute("data-state", "unack")  # the view stays behind it
    dialog.locator("input[name=password]").fill(PASSWORDS["olga"])
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_attribute("data-state", "acked", timeout=10_000)
    assert page.evaluate("window.sameView") is True  # no reload, no sign-in page
    expect(page.locator("#offline")).to_be_hidden()
    wait_until(
        lambda: any(
            e["type"] == "alarm.acknowledged" and e["alarm"]["id"] == HIGH
            for e in hot.wms.snapshot()
        ),
        10,
        "the acknowledgement on the broker",
    )
    context.close()

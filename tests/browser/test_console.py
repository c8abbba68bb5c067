"""The agent console in a real browser: calls appear live, the screen-pop shows the flag.

The app runs in a background thread (werkzeug, threaded) on a free port; Debian's
chromium is driven by Playwright with flags that need no network. Calls are placed by
webhooks signed exactly like Twilio's. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask
from playwright.sync_api import Page, expect, sync_playwright

from ivr import create_app
from ivr.services import Services, build
from ivr.web.agent_sse import StreamLimits
from tests.conftest import AUTH_TOKEN, SINGLE_OWNER, make_settings, seed
from tests.live_server import serving
from tests.redis_server import free_port
from tests.twilio_phone import Call
from tests.web.test_agent import ANNA_PIN, CONSOLE, PASSWORDS

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Streams end after a few seconds here (five minutes in production), so a test sees the
# browser reconnect; events still arrive at once, XREAD returns as soon as one exists.
LIMITS = StreamLimits(block_ms=500, heartbeat_s=1.0, lifetime_s=3.0, retry_ms=200)
LIVE_MS = 1000  # "appears on the open board within a second"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)",
)


@dataclass(frozen=True)
class LiveConsole:
    """The app served over HTTP, and a way to place calls against it."""

    base: str
    app: Flask
    services: Services

    def phone(self, caller: str = SINGLE_OWNER) -> Call:
        """A call whose webhooks are signed for this server's public URL."""
        return Call(
            client=self.app.test_client(), auth_token=AUTH_TOKEN, caller=caller, base=self.base
        )


@pytest.fixture
def live(redis_client: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[LiveConsole]:
    """The real app on a free port in a background thread, with two agents."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    overrides = {"server": {"public_base_url": base}, "console": CONSOLE}
    settings = make_settings(redis_url, f"sqlite:///{tmp_path / 'pins.sqlite3'}", overrides)
    services = build(settings)
    seed(services)
    app = create_app(settings, services)
    app.extensions["ivr.agent"] = dataclasses.replace(app.extensions["ivr.agent"], limits=LIMITS)
    with serving(app, port):
        yield LiveConsole(base, app, services)
    services.close()


@pytest.fixture
def page(live: LiveConsole, tmp_path: Path) -> Iterator[Page]:
    """A fresh chromium profile with one tab (closed before the server stops)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
        )
        tab = context.new_page()
        yield tab
        context.close()


def log_in(page: Page, live: LiveConsole, username: str = "anna") -> None:
    """Log in through the form and wait until the board's event stream is open."""
    page.goto(f"{live.base}/agent")
    expect(page).to_have_url(f"{live.base}/agent/login?next=/agent")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("#login button[type=submit]")
    expect(page).to_have_url(f"{live.base}/agent")
    expect(page.locator("#live")).to_have_attribute("data-live", "1")


def test_calls_appear_live_and_screen_pop_shows_flag(page: Page, live: LiveConsole) -> None:
    """Calls placed by signed webhooks appear within a second; the screen-pop shows the flag."""
    ARTIFACTS.mkdir(exist_ok=True)
    log_in(page, live)
    identified = live.phone(SINGLE_OWNER)
    identified.walk("1", ANNA_PIN)
    row = page.locator(f'tr[data-call="{identified.call_sid}"][data-identified="true"]')
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.locator(".badge")).to_have_text("Identifiziert")
    expect(row.locator(".customer")).to_have_text("Anna Alpha (200001)")
    stranger = live.phone("anonymous")
    stranger.walk("1", "200002#", "000000", "000000", "000000")
    other = page.locator(f'tr[data-call="{stranger.call_sid}"][data-identified="false"]')
    expect(other).to_be_visible(timeout=LIVE_MS)
    expect(other.locator(".badge")).to_have_text("Nicht identifiziert")
    page.screenshot(path=str(ARTIFACTS / "console-board.png"), full_page=True)

    row.locator("a").click()
    expect(page).to_have_url(f"{live.base}/agent/calls/{identified.call_sid}")
    banner = page.locator("#banner")
    expect(banner).to_have_attribute("data-identified", "true")
    expect(banner).to_contain_text("Identifiziert")
    expect(page.locator("#customer-name")).to_have_text("Anna Alpha")
    page.screenshot(path=str(ARTIFACTS / "console-screen-pop.png"), full_page=True)

    page.goto(f"{live.base}/agent/calls/{stranger.call_sid}")
    expect(page.locator("#banner")).to_have_attribute("data-identified", "false")
    expect(page.locator("#reason")).to_have_text("PIN falsch")
    expect(page.locator("#customer-name")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "console-screen-pop-not-identified.png"), full_page=True)


def test_screen_pop_updates_while_the_caller_types(page: Page, live: LiveConsole) -> None:
    """An open call page turns to identified within a second of the right PIN."""
    log_in(page, live)
    call = live.phone(SINGLE_OWNER)
    call.walk("1")
    page.goto(f"{live.base}/agent/calls/{call.call_sid}")
    expect(page.locator("#banner")).to_have_attribute("data-identified", "false")
    expect(page.locator("#live")).to_have_attribute("data-live", "1")
    call.press(ANNA_PIN)
    expect(page.locator("#banner")).to_have_attribute("data-identified", "true", timeout=LIVE_MS)
    expect(page.locator("#customer-number")).to_have_text("200001")


def test_board_survives_reconnects(page: Page, live: LiveConsole) -> None:
    """After the stream ends and the browser reconnects, nothing is missed or doubled."""
    log_in(page, live)
    before = live.phone(SINGLE_OWNER)
    before.walk("1")
    expect(page.locator(f'tr[data-call="{before.call_sid}"]')).to_have_count(1, timeout=LIVE_MS)
    with page.expect_request(lambda r: "/agent/events" in r.url, timeout=10_000) as reconnect:
        pass  # the server ends each stream after LIMITS.lifetime_s
    assert reconnect.value.all_headers().get("last-event-id")  # resumes after the last event seen
    before.press(ANNA_PIN)
    after = live.phone("anonymous")
    after.walk("0")
    expect(page.locator(f'tr[data-call="{after.call_sid}"]')).to_have_count(1, timeout=LIVE_MS)
    identified = page.locator(f'tr[data-call="{before.call_sid}"][data-identified="true"]')
    expect(identified).to_have_count(1, timeout=LIVE_MS)
    expect(page.locator("#calls tr")).to_have_count(2)


def test_logout_ends_the_console(page: Page, live: LiveConsole) -> None:
    """After logout the board is behind the login form again."""
    log_in(page, live)
    page.click("#logout")
    expect(page).to_have_url(f"{live.base}/agent/login")
    page.goto(f"{live.base}/agent")
    expect(page).to_have_url(f"{live.base}/agent/login?next=/agent")


RED = "rgb(179, 38, 30)"  # --no in console.css: only for a routed, not identified call
PHONE_WIDTH = 390


def test_call_in_the_ivr_is_identifying_until_routed(page: Page, live: LiveConsole) -> None:
    """A call still in the IVR shows a neutral "identification running" badge and banner;
    only once routed with wrong PINs does it turn red "not identified"."""
    log_in(page, live)
    call = live.phone("anonymous")
    call.walk("1", "200002#")
    row = page.locator(f'tr[data-call="{call.call_sid}"]')
    expect(row).to_have_attribute("data-phase", "identifying", timeout=LIVE_MS)
    badge = row.locator(".badge")
    expect(badge).to_have_text("Identifizierung läuft")
    expect(badge).not_to_have_css("color", RED)
    expect(row.locator(".state")).to_have_text("Im Sprachmenü")
    page.screenshot(path=str(ARTIFACTS / "console-board-identifying.png"), full_page=True)
    for _ in range(3):
        call.press("000000")
    expect(row).to_have_attribute("data-phase", "not_identified", timeout=LIVE_MS)
    expect(badge).to_have_text("Nicht identifiziert")
    expect(badge).to_have_css("color", RED)


def test_call_page_of_a_call_ending_in_the_ivr(page: Page, live: LiveConsole) -> None:
    """An open call page goes from "identification running" to "ended before reaching an
    agent" when the caller hangs up in the IVR, never showing both."""
    log_in(page, live)
    call = live.phone(SINGLE_OWNER)
    call.walk("1")
    page.goto(f"{live.base}/agent/calls/{call.call_sid}")
    banner = page.locator("#banner")
    expect(banner).to_have_attribute("data-phase", "identifying")
    expect(banner).to_contain_text("Identifizierung läuft")
    expect(banner).not_to_have_css("background-color", RED)
    expect(page.locator("#live")).to_have_attribute("data-live", "1")
    call.hang_up()
    expect(banner).to_have_attribute("data-phase", "ended_in_ivr", timeout=LIVE_MS)
    expect(page.locator("#state")).to_have_text("Vor Erreichen eines Agenten beendet")
    expect(page.locator("#reason")).to_have_text("Nicht durchgestellt")
    text = page.locator("main").inner_text()
    for running in ("Identifizierung läuft", "läuft noch", "noch im Sprachmenü", "Im Sprachmenü ·"):
        assert running not in text
    page.screenshot(path=str(ARTIFACTS / "console-screen-pop-ended-in-ivr.png"), full_page=True)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_header_fits_a_phone_screen(page: Page, live: LiveConsole, lang: str) -> None:
    """At 390 px the pages never scroll sideways and every header element is on screen."""
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    log_in(page, live, "sam")  # a supervisor's header is the fullest
    if lang == "en":
        page.click("header button[lang=en]")
        expect(page.locator("html")).to_have_attribute("lang", "en")
    call = live.phone(SINGLE_OWNER)
    call.walk("1", ANNA_PIN)
    expect(page.locator(f'tr[data-call="{call.call_sid}"]')).to_have_count(1, timeout=LIVE_MS)
    for path in ("", f"/calls/{call.call_sid}", "/agents"):
        page.goto(f"{live.base}/agent{path}")
        name = path.strip("/").split("/")[0] or "board"
        page.screenshot(path=str(ARTIFACTS / f"console-{name}-{PHONE_WIDTH}-{lang}.png"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH, f"{path or '/'} is {width} px wide"
        for element in ("a.brand", "#user", "#agents-link", "header button[lang]", "#logout"):
            found = page.locator(element)
            expect(found).to_be_visible()
            box = found.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH

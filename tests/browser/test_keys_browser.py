"""The dashboard's Keys page in headless Chromium (the harness of test_dashboard_browser.py): two real
gateway processes share a real redis-server; a key created through the page on one works through the
openai SDK on the other within a second, and stops working there after the page revokes it. Edit,
unrevoke, rotate, the read-only role and the memory store's note are driven through the page too.
Screenshots (desktop and phone) go to test-artifacts/."""

from __future__ import annotations

import time

import openai
import pytest

from tests.browser.test_dashboard_browser import ARTIFACTS, CHROMIUM, pytestmark  # noqa: F401  (the skip)
from tests.support.gateway import base_config, write_config
from tests.support.processes import GatewayProcess

ADMIN_KEY = "admin-secret-0123456789"
READ_KEY = "reader-secret-0123456789"
ADMIN = """
[admin]
key_env = "TEST_ADMIN_KEY"
keys = [{ id = "auditor", key_env = "TEST_READ_KEY", role = "read" }]
"""
ENV = {"TEST_ADMIN_KEY": ADMIN_KEY, "TEST_READ_KEY": READ_KEY}


def outcome(url: str, secret: str) -> int:
    try:
        openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0).chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hi"}])
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code


def within(url: str, secret: str, want: int, seconds: float = 1.0) -> float:
    start = time.monotonic()
    while True:
        got = outcome(url, secret)
        took = time.monotonic() - start
        if got == want:
            return took
        assert took < seconds, f"{url}: still {got} after {took:.2f}s (wanted {want})"
        time.sleep(0.02)


def login(page, url: str, key: str) -> None:
    first = page.goto(url + "/dashboard/keys")
    assert first.status == 401
    page.fill("#key", key)
    page.click("form button[type=submit]")
    page.wait_for_url(url + "/dashboard")
    page.click('[data-testid="nav-keys"]')
    page.wait_for_url(url + "/dashboard/keys")


@pytest.fixture
def fleet(tmp_path, upstream, redis_url):
    cfg = write_config(tmp_path, base_config(upstream.url, ADMIN + f'\n[store]\nurl = "{redis_url}"\n'))
    a, b = GatewayProcess(cfg, env=ENV), GatewayProcess(cfg, env=ENV)
    yield a, b
    a.stop()
    b.stop()


def test_a_key_made_on_the_keys_page_works_on_another_instance_and_stops_after_revoke(fleet):
    from playwright.sync_api import expect, sync_playwright

    a, b = fleet
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and "401" not in m.text and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            login(page, a.url, ADMIN_KEY)

            # The policy files' keys: listed, marked read-only, nothing to click.
            toml = page.locator('#keys tr[data-key="test"]')
            expect(toml.locator('[data-col="source"] .cell-value')).to_have_text("config · read-only")
            assert toml.locator("button").count() == 0
            expect(page.locator("#store-note")).to_be_hidden()  # Redis: kept and shared

            # Create: the secret is shown once, in the page only.
            page.fill("#f-id", "page-key")
            page.fill("#f-team", "web")
            page.fill("#f-models", "demo")
            page.fill("#f-rpm", "100")
            page.click("#submit")
            expect(page.locator("#secret-box")).to_be_visible()
            secret = page.locator("#secret").inner_text().strip()
            assert secret.startswith("sk-gw-")
            row = page.locator('#keys tr[data-key="page-key"]')
            expect(row.locator('[data-col="team"] .cell-value')).to_have_text("web")
            expect(row.locator('[data-col="limits"] .cell-value')).to_have_text("rpm 100")
            took = within(b.url, secret, 200)
            assert took < 1.0
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ARTIFACTS / "keys.png"), full_page=True)
            page.click("#secret-done")
            expect(page.locator("#secret-box")).to_be_hidden()
            assert secret not in page.content()  # gone once dismissed: a reload cannot show it again

            # Edit through the form: the other instance sees the new team.
            row.locator('button[data-action="edit"]').click()
            expect(page.locator("#f-id")).to_be_disabled()
            page.fill("#f-team", "web-2")
            page.click("#submit")
            expect(row.locator('[data-col="team"] .cell-value')).to_have_text("web-2")

            # Revoke: refused on the other instance within a second; unrevoke brings it back.
            row.locator('button[data-action="revoke"]').click()
            expect(row.locator('[data-col="state"] .cell-value')).to_have_text("revoked")
            within(b.url, secret, 401)
            row.locator('button[data-action="unrevoke"]').click()
            expect(row.locator('[data-col="state"] .cell-value')).to_have_text("active")
            within(b.url, secret, 200)

            # Rotate with no grace: the new secret works on B, the old one stops.
            row.locator('button[data-action="rotate"]').click()
            page.fill("#rotate-grace", "0")
            page.click("#rotate-go")
            expect(page.locator("#secret-box")).to_be_visible()
            new = page.locator("#secret").inner_text().strip()
            assert new.startswith("sk-gw-") and new != secret
            within(b.url, new, 200)
            within(b.url, secret, 401)

            # A phone: the keys are cards, nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            expect(row.locator('[data-col="team"] .cell-label')).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "keys-phone.png"), full_page=True)
            assert not problems, problems

            # A read-only admin key: the keys listed, no form, no buttons.
            ro = browser.new_page(viewport={"width": 1280, "height": 900})
            login(ro, a.url, READ_KEY)
            expect(ro.locator('#keys tr[data-key="page-key"]')).to_be_visible()
            expect(ro.locator("#role-note")).to_be_visible()
            expect(ro.locator("#editor")).to_be_hidden()
            assert ro.locator("#keys button").count() == 0
        finally:
            browser.close()


def test_the_memory_store_says_keys_last_until_restart(gateway):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(gateway.url + "/dashboard/keys")  # no admin key configured: open, like /stats
            expect(page.locator("#store-note")).to_be_visible()
            expect(page.locator("#store-note")).to_contain_text("lost when it restarts")
            page.fill("#f-id", "mem-key")
            page.click("#submit")
            expect(page.locator("#secret-sub")).to_contain_text("lost when it restarts")
            assert outcome(gateway.url, page.locator("#secret").inner_text().strip()) == 200
            # A bad value is the API's 400, shown with its field; nothing is created.
            page.fill("#f-id", "bad id")
            page.click("#submit")
            expect(page.locator("#error")).to_contain_text("field: id")
            assert page.locator('#keys tr[data-key="bad id"]').count() == 0
        finally:
            browser.close()

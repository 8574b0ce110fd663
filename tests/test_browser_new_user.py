"""What a new user meets, in a real headless Chromium against `jobdash serve` and a real Celery
worker: the "Needs attention" strip and card sparklines, live; the user menu; the tasks list's
new-row highlight fading per row; every page (task and worker detail too) usable at 390 and 1920 px
(screenshots of each at 390, 1400 and 1920 px are kept under test-artifacts/screenshots/); the worker
page and the queue depth chart read right."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from celery import Celery

from dashboard.demo.processes import free_port
from tests.browser import assert_same_document, expect, log_in, mark_document, serve, toml_str

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
ECHO, FAIL = "dashboard.demo.tasks.echo", "dashboard.demo.tasks.fail"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


@pytest.fixture(scope="module")
def sender(redis_url):
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.task_send_sent_event = True
    yield app
    app.close()


@pytest.fixture
def base(procs, tmp_path, redis_url, celery_worker_redis):
    return serve(procs, tmp_path, f'[[celery]]\nname = "main"\nbroker = {toml_str(redis_url)}\n'
                                  f"backend = {toml_str(redis_url)}\ninterval = 1\ntimeout = 3\n", role="admin")


def test_needs_attention_says_all_is_well_then_lists_a_failure_live_with_the_sparkline(base, watched, sender):
    page = watched.page
    log_in(page, base, "admin")
    mark_document(page)
    strip = page.locator("#attention")
    expect(strip.locator("h2")).to_have_text("Needs attention")
    expect(strip).to_have_attribute("data-state", "ok", timeout=30_000)
    expect(strip.locator(".attention-ok")).to_be_visible()
    expect(strip.locator(".attention-ok")).to_contain_text("All is well")

    # The user menu reaches the pages only an address used to reach.
    menu = page.locator("header .user")
    expect(menu.locator('a[href="/tokens"]')).to_have_text("Tokens")
    expect(menu.locator('a[href="/users"]')).to_have_text("Users")

    sender.send_task(FAIL, args=["<b>card declined</b>"])
    failed = strip.locator('li[data-key="failed:main:dashboard.demo.tasks.fail"]')
    expect(failed).to_be_visible(timeout=30_000)
    expect(strip).to_have_attribute("data-state", "attention")
    expect(strip.locator(".attention-ok")).to_be_hidden()
    expect(failed.locator("a")).to_have_text("celery/main: 1 × dashboard.demo.tasks.fail failed in the last 5 min")
    expect(failed.locator("a")).to_have_attribute("href", "/celery/main/tasks?state=FAILURE&name=dashboard.demo.tasks.fail")
    expect(failed.locator(".attention-symbol")).to_have_text("✕")  # not colour alone

    spark = page.locator('article.card[data-key="celery/main"] [data-field="spark"]')
    expect(spark).to_be_visible(timeout=30_000)
    expect(spark.locator(".spark-caption")).to_contain_text("1 failed")
    expect(spark.locator('polyline[data-series="failed"]')).to_have_count(1)
    expect(spark.locator('polyline[data-series="succeeded"]')).to_have_count(1)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, "overview")
    assert_same_document(page)  # all of it live

    failed.locator("a").click()
    expect(page).to_have_url(re.compile(r"/celery/main/tasks\?state=FAILURE"))
    expect(page.locator("#tasks tbody tr[data-state='FAILURE']")).to_have_count(1)
    assert watched.dialogs == [] and watched.errors == []


def test_a_source_that_is_down_is_listed_with_its_error_and_links_to_its_page(procs, tmp_path, watched):
    page = watched.page
    port = free_port()
    base = serve(procs, tmp_path, f'[[dask]]\nname = "gone"\naddress = "tcp://127.0.0.1:{port}"\n'
                                  "interval = 0.5\ntimeout = 2\n")
    log_in(page, base)
    item = page.locator('#attention li[data-key="state:dask/gone"]')
    expect(item).to_be_visible(timeout=30_000)
    expect(item.locator("a")).to_have_text("dask/gone is down")
    expect(item.locator("a")).to_have_attribute("href", "/dask")
    expect(item.locator(".attention-detail")).to_contain_text(f"127.0.0.1:{port}")
    expect(item.locator("time")).to_have_text(re.compile(r"\d+ s ago"))
    # A viewer's menu has their tokens but no user management.
    expect(page.locator('header .user a[href="/tokens"]')).to_be_visible()
    expect(page.locator('header .user a[href="/users"]')).to_have_count(0)


def test_each_new_task_row_fades_on_its_own_clock_while_tasks_keep_coming(base, watched, sender):
    page = watched.page
    log_in(page, base, "admin")
    page.goto(base + "/celery/main/tasks")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    stop = threading.Event()

    def keep_sending():
        n = 0
        while not stop.wait(0.4):
            sender.send_task(ECHO, args=[n])
            n += 1

    thread = threading.Thread(target=keep_sending, daemon=True)
    thread.start()
    try:
        expect(page.locator("#tasks tbody tr.fresh").first).to_be_visible(timeout=30_000)
        first = page.locator("#tasks tbody tr.fresh").first.get_attribute("data-uuid")
        row = page.locator(f'#tasks tbody tr[data-uuid="{first}"]')
        # Rows keep arriving (and the list re-renders), yet this one's highlight ends on time.
        expect(row).not_to_have_class(re.compile(r"\bfresh\b"), timeout=6_000)
        expect(page.locator("#tasks tbody tr.fresh").first).to_be_visible(timeout=10_000)
        assert page.locator("#tasks tbody tr.fresh").count() < page.locator("#tasks tbody tr").count()
    finally:
        stop.set()
        thread.join(5)
    # The queues page is live too: it says so, and re-reads its charts without a reload.
    page.goto(base + "/celery/main/queues")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    mark_document(page)
    with page.expect_request(re.compile(r"/api/celery/main/queues\?since="), timeout=30_000):
        pass
    expect(page.locator("#depth-chart .uplot")).to_have_count(1)
    assert_same_document(page)
    assert watched.errors == []


# The outermost elements that stick out past the page's right edge, to say what to fix.
WIDEST = """[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right
  > document.documentElement.clientWidth && !e.parentElement.closest('.table-wrap, pre'))
  .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)"""

PAGES = ["/", "/celery", "/celery/main", "/celery/main/tasks", "/celery/main/workers", "/celery/main/queues",
         "/audit", "/tokens", "/users", "/dask", "/kafka", "/consul", "/history"]


MAIN_MAX = 1800  # px: .main in static/css/app.css; wider, lines get too long to read


def send_until_listed(page, base: str, sender) -> None:
    """Send a task until the tasks list shows one: a fresh dashboard answers before its event receiver
    has subscribed, and the events of a task sent in between never reach it."""
    page.goto(base + "/celery/main/tasks")
    for _ in range(10):
        sender.send_task(ECHO, args=["x" * 300])
        try:
            expect(page.locator("#tasks tbody tr[data-uuid]").first).to_be_visible(timeout=3_000)
            return
        except AssertionError:
            continue
    raise AssertionError("no task reached the tasks list in 10 tries")


def detail_pages(page, base: str) -> list[str]:
    """A task's and a worker's own page, reached as a user would: from the lists."""
    found = []
    for path, link in (("/celery/main/tasks", "#tasks tbody tr[data-uuid] a"),
                       ("/celery/main/workers", '#workers a[data-field="hostname"]')):
        page.goto(base + path)
        expect(page.locator(link).first).to_be_visible(timeout=30_000)
        found.append(page.locator(link).first.get_attribute("href"))
    return found


def test_every_page_fits_a_phone_and_a_wide_screen_and_shows_keyboard_focus(base, browser, sender):
    for width in (390, 1400, 1920):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            log_in(page, base, "admin")
            if width == 390:
                send_until_listed(page, base, sender)
            for path in PAGES + detail_pages(page, base):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                wide = page.evaluate(WIDEST) if overflow > 0 else []
                assert overflow <= 0, f"{path} at {width} px scrolls sideways by {overflow} px: {wide}"
                main = page.locator("main").bounding_box()
                assert main["width"] <= MAIN_MAX, f"{path} at {width} px stretches its content to {main['width']} px"
                name = path.strip("/").replace("/", "-") or "overview"
                screenshot(page, re.sub(r"tasks-[0-9a-f-]{36}", "task", re.sub(r"workers-.+", "worker", name)))
            # Every control is reachable by keyboard, and where the focus is shows.
            page.goto(base + "/celery/main/tasks")
            page.keyboard.press("Tab")
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON", "INPUT", "SELECT")
            assert outline != "none"
        finally:
            context.close()


# The width the placeholder needs, against the room inside its box.
PLACEHOLDER_FITS = """(input) => { const style = getComputedStyle(input);
  const ctx = document.createElement('canvas').getContext('2d'); ctx.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [ctx.measureText(input.placeholder).width, room]; }"""


def test_the_worker_page_and_the_depth_chart_read_right(base, watched, sender):
    page = watched.page
    # A queue that fills and drains (2 worker processes): its depth is drawn on the queues page.
    for _ in range(6):
        sender.send_task("dashboard.demo.tasks.sleep", args=[2])
    log_in(page, base, "admin")
    page.set_viewport_size({"width": 1400, "height": 900})
    _task, worker = detail_pages(page, base)
    page.goto(base + worker)
    # The limits' inputs come with the worker's first inspect reply, which the collector stores as it
    # polls: under load the page can be read before that, and it shows inspect replies as they were.
    rate = page.locator('input[data-param="rate"]').first
    deadline = time.monotonic() + 60
    while not rate.is_visible() and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        page.reload()
    expect(rate).to_be_visible()
    for field in ("rate", "soft", "hard"):  # the limits' inputs, each showing its whole placeholder
        box = page.locator(f'input[data-param="{field}"]').first
        needed, room = box.evaluate(PLACEHOLDER_FITS)
        assert needed <= room, f"the placeholder {box.get_attribute('placeholder')!r} needs {needed} px, has {room}"
    pinged = page.locator(".info-scalars div", has=page.locator("dt", has_text=re.compile(r"^pinged_at$")))
    expect(pinged.locator("dd time")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(.+ ago\)$"))

    # The depth axis counts messages in whole, distinct numbers.
    page.goto(base + "/celery/main/queues")
    chart = page.locator("#depth-chart")
    expect(chart).to_have_attribute("data-y-ticks", re.compile(r"[1-9]"), timeout=60_000)
    ticks = chart.get_attribute("data-y-ticks").split("|")
    assert all(re.fullmatch(r"\d[\d,]*", t) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks), f"repeated ticks: {ticks}"
    assert watched.errors == []

"""The Celery pages in a real headless Chromium, against `jobdash serve` watching a real Celery
worker on Redis: hostile task arguments stay text, tasks appear live, controls confirm in a
<dialog> and show what happened.

Non-UTF-8 bytes: kombu's JSON serializer (5.3 and later) does carry bytes, base64-wrapped, so
the worker really receives b"\\xff\\xfe" with Celery's default serializer; no pickle needed.
Celery's saferepr shows them as b'fffe' in the events, and that is what the page must show.
"""
from __future__ import annotations

import re
import time

import pytest
import requests
from celery import Celery
from celery.utils.saferepr import saferepr

from tests.fixtures_services import wait_for
from bench.live_clients import login
from tests.browser import assert_same_document, expect, log_in, mark_document, serve, toml_str
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ECHO, FAIL = "dashboard.demo.tasks.echo", "dashboard.demo.tasks.fail"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
MIB = 1 << 20


def _sender(redis_url: str, argsrepr_max: int | None = None) -> Celery:
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.task_send_sent_event = True  # so the dashboard learns each task's queue
    if argsrepr_max:
        app.amqp.argsrepr_maxsize = argsrepr_max
    return app


@pytest.fixture(scope="module")
def sender(redis_url):
    app = _sender(redis_url)
    yield app
    app.close()


@pytest.fixture(scope="module")
def wide_sender(redis_url):
    """A producer that sends whole reprs (Celery's 1024-character argsrepr limit raised), so a
    1 MiB argument reaches the dashboard whole."""
    app = _sender(redis_url, 2 * MIB)
    yield app
    app.close()


@pytest.fixture
def base(procs, tmp_path, redis_url, celery_worker_redis):
    """A dashboard (user "admin") watching the module's worker, its event receiver connected."""
    url = serve(procs, tmp_path, f'[[celery]]\nname = "main"\nbroker = {toml_str(redis_url)}\n'
                                 f"backend = {toml_str(redis_url)}\ninterval = 1\ntimeout = 3\n", role="admin")

    cookie = login(url, "admin", PASSWORD)  # readyz tells the collectors' status only to a login

    def collector():
        answer = requests.get(url + "/readyz", headers={"Cookie": cookie}, timeout=2)
        return answer.json().get("collectors", {}).get("celery/main", {})

    # A task sent before the receiver listens would never be seen (Redis event fanout keeps nothing).
    wait_for(collector, lambda s: s.get("headline", {}).get("events", 0) > 0, timeout=30)
    return url


def row(page, uuid: str):
    return page.locator(f'#tasks tbody tr[data-uuid="{uuid}"]')


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def api_task(page, base_url: str, uuid: str) -> dict:
    response = page.request.get(f"{base_url}/api/celery/main/tasks/{uuid}")
    return response.json() if response.ok else {}


def assert_inert(watched) -> None:
    """Nothing hostile ran or became markup: no dialogs, no errors, no injected elements."""
    page = watched.page
    page.wait_for_timeout(300)  # time for an injected onerror to fire, were there one
    assert watched.dialogs == [], watched.dialogs
    assert watched.errors == [], watched.errors
    assert page.locator("img, [onerror], main script").count() == 0
    assert page.evaluate("document.scripts.length") == 1  # the page's own module, nothing else


def test_hostile_arguments_arrive_live_and_show_as_text(base, sender, wide_sender, watched):
    page = watched.page
    log_in(page, base, "admin")
    page.goto(base + "/celery/main/tasks")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    mark_document(page)

    # A task sent while the page is open appears on page one, highlighted, without a reload.
    first = sender.send_task(ECHO, args=[SCRIPT]).id
    expect(row(page, first)).to_have_class(re.compile(r"\bfresh\b"), timeout=20_000)
    # A ticked box survives the refreshes the next tasks cause.
    row(page, first).locator("input.pick-box").check()
    calls = {"img": (sender, IMG), "bytes": (sender, b"\xff\xfe"), "cut": (sender, "x" * MIB),
             "wide": (wide_sender, "y" * MIB)}
    ids = {"script": first} | {label: app.send_task(ECHO, args=[arg]).id for label, (app, arg) in calls.items()}
    for uuid in ids.values():
        expect(row(page, uuid)).to_have_attribute("data-state", "SUCCESS", timeout=30_000)
    assert_same_document(page)
    expect(row(page, first).locator("input.pick-box")).to_be_checked()
    expect(page.locator("#selected-count")).to_have_text("1")
    expect(page.locator("#total")).to_have_text("5")

    reprs = {"script": saferepr([SCRIPT], 1024), "img": saferepr([IMG], 1024), "bytes": saferepr([b"\xff\xfe"], 1024),
             "cut": saferepr(["x" * MIB], 1024), "wide": saferepr(["y" * MIB], 2 * MIB)}
    assert reprs["bytes"] == "[b'fffe']" and len(reprs["wide"]) > MIB
    for label, uuid in ids.items():
        args = row(page, uuid).locator('[data-field="args"]')
        expect(args).to_have_text(shorten(reprs[label]))
        assert len(args.get_attribute("title")) <= 1000
        expect(row(page, uuid).locator('[data-field="name"]')).to_have_text(ECHO)
    assert_inert(watched)

    # The detail pages: the same text in <pre>, escaped; long text collapsed with its size.
    for label in ("script", "img", "bytes"):
        page.goto(f"{base}/celery/main/tasks/{ids[label]}")
        expect(page.locator('[data-text="args"] pre')).to_have_text(reprs[label])
        expect(page.locator('[data-text="result"] pre')).to_contain_text(reprs[label][1:-1])
        expect(page.locator('ol.timeline li[data-step="succeeded"]')).to_contain_text("+")
        assert_inert(watched)

    page.goto(f"{base}/celery/main/tasks/{ids['cut']}")
    cut = page.locator('[data-text="args"]')
    expect(cut.locator(".badge.truncated")).to_have_text("truncated by Celery")
    expect(cut.locator("details")).not_to_have_attribute("open", "")
    expect(cut.locator("summary .size")).to_have_text(f"{len(reprs['cut']):,} characters")
    expect(page.locator('[data-text="result"] .badge.truncated')).to_be_visible()  # the worker cut the result too
    assert_inert(watched)

    started = time.monotonic()
    page.goto(f"{base}/celery/main/tasks/{ids['wide']}")
    wide = page.locator('[data-text="args"]')
    expect(wide.locator("summary .size")).to_have_text(re.compile(r"^1\.0 MiB \(1,048,5\d\d characters\)$"))
    assert wide.locator("details").get_attribute("open") is None
    assert wide.locator(".badge.truncated").count() == 0
    assert time.monotonic() - started < 10, "the page with a 1 MiB argument took too long"
    # Still responsive: a script round trip is quick, and the whole text is one click away.
    started = time.monotonic()
    assert page.evaluate("1 + 1") == 2
    assert time.monotonic() - started < 1.0
    wide.locator("summary").click()
    expect(wide.locator("pre")).to_be_visible()
    assert page.evaluate("document.querySelector('[data-text=\"args\"] pre').textContent.length") == len(reprs["wide"])
    assert_inert(watched)

    # The queues page charts what the collector sampled and the outcomes per minute (uPlot, CSP intact).
    page.goto(f"{base}/celery/main/queues")
    expect(page.locator("#depths tr[data-queue=celery]")).to_have_count(1)
    expect(page.locator("#depth-chart .uplot")).to_have_count(1)
    expect(page.locator("#outcome-chart .uplot")).to_have_count(1)
    expect(page.locator('#names tr[data-name="dashboard.demo.tasks.echo"] td').nth(1)).to_have_text("5")
    page.locator("#stats-name").select_option(ECHO)
    expect(page.locator("#runtime-chart .uplot")).to_have_count(1)
    assert_inert(watched)


def test_retry_controls_confirm_in_a_dialog_and_link_the_new_tasks(base, sender, watched):
    page = watched.page
    log_in(page, base, "admin")
    failed = [sender.send_task(FAIL, args=[f"boom {i} <b>x</b>"]).id for i in range(2)]
    for uuid in failed:
        wait_for(lambda: api_task(page, base, uuid), lambda t: t.get("state") == "FAILURE", timeout=30)

    # Retry one from its page: cancelling sends nothing; confirming re-sends and links the new task.
    page.goto(f"{base}/celery/main/tasks/{failed[0]}")
    mark_document(page)
    expect(page.locator('[data-text="exception"] pre')).to_contain_text("boom 0 <b>x</b>")
    form = page.locator('form[data-action="celery.retry"]')
    dialog = page.locator("#confirm-dialog")
    form.locator("button.action-button").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-message")).to_contain_text(f"Re-send {FAIL} with its stored arguments")
    expect(dialog.locator(".confirm-message")).to_contain_text("to queue celery?")
    dialog.locator("button.cancel").click()
    expect(dialog).to_be_hidden()
    expect(form.locator(".action-result")).to_have_text("cancelled: nothing was sent")
    form.locator("button.action-button").click()
    dialog.locator("button.danger").click()
    result = form.locator(".action-result")
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(result.locator(".outcome")).to_contain_text(f"re-sent {FAIL} as")
    # The original's page lists its retry at once, without a reload.
    new_task = result.locator(".new-task a").text_content()
    expect(page.locator("#retried-by a")).to_have_text(new_task, timeout=30_000)
    assert_same_document(page)
    result.locator(".new-task a").click()
    expect(page.locator("#retry-of a")).to_have_text(failed[0])
    retry_one = page.locator("#task-uuid").text_content()
    assert retry_one == new_task
    expect(page.locator('[data-field="routing_key"]')).to_have_text("celery", timeout=30_000)  # as the original's
    assert_inert(watched)

    # Retry the other from the list's selection.
    page.goto(f"{base}/celery/main/tasks?state=FAILURE")
    row(page, failed[1]).locator("input.pick-box").check()
    expect(page.locator("#selected-count")).to_have_text("1")
    selected = page.locator('form[data-action="celery.retry_selected"]')
    selected.locator("button.action-button").click()
    expect(dialog.locator(".confirm-message")).to_contain_text("Retry 1 selected task?")
    dialog.locator("button.danger").click()
    expect(selected.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    expect(selected.locator(".outcome")).to_contain_text("re-sent 1 of 1 tasks")
    retry_two = selected.locator(".replies a").nth(1).text_content()
    assert retry_two not in (failed[1], retry_one)

    # Both retries fail again (the task always does): four failures of FAIL now.
    for uuid in (retry_one, retry_two):
        wait_for(lambda: api_task(page, base, uuid), lambda t: t.get("state") == "FAILURE", timeout=30)
    page.goto(f"{base}/celery/main/tasks?name={FAIL}")
    bulk = page.locator('form[data-action="celery.retry_failures"]')
    expect(bulk.locator('[data-role="name"]')).to_have_value(FAIL)  # the list's filter
    bulk.locator("button.action-button").click()
    expect(dialog.locator(".confirm-message")).to_contain_text(f"Retry all 4 failures of {FAIL} between")
    dialog.locator("button.danger").click()
    expect(bulk.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    expect(bulk.locator(".outcome")).to_contain_text("re-sent 4 of 4 tasks")
    expect(bulk.locator(".replies li")).to_have_count(4)
    # A name with no failures is answered before any dialog.
    bulk.locator('[data-role="name"]').fill("no.such.task")
    bulk.locator("button.action-button").click()
    expect(bulk.locator(".action-result")).to_have_attribute("data-outcome", "refused")
    expect(bulk.locator(".outcome")).to_contain_text("no failure of no.such.task")
    expect(dialog).to_be_hidden()
    assert_inert(watched)


def test_workers_page_follows_the_real_worker_and_its_controls_answer_per_queue(base, celery_worker_redis, watched):
    page = watched.page
    hostname = celery_worker_redis.hostname
    log_in(page, base, "admin")
    page.goto(base + "/celery/main/workers")
    worker = page.locator(f'tr[data-hostname="{hostname}"]')
    expect(worker.locator('[data-field="online"]')).to_have_attribute("data-online", "true", timeout=20_000)
    expect(worker.locator('[data-field="pool"]')).to_have_text("prefork × 2")
    expect(worker.locator('[data-field="queues"]')).to_have_text("celery")
    expect(worker.locator('[data-field="prefetch"]')).to_have_text("2")
    # Heartbeats arrive live: the heartbeat's timestamp moves on without a reload.
    heartbeat = worker.locator('[data-field="last_heartbeat"]')
    first = heartbeat.get_attribute("data-ts")
    page.wait_for_function("([el, ts]) => el.dataset.ts !== ts", arg=[heartbeat.element_handle(), first],
                           timeout=10_000)

    worker.locator('[data-field="hostname"]').click()
    expect(page.locator("h1")).to_have_text(hostname)
    expect(page.locator('tr[data-task-name="dashboard.demo.tasks.echo"]')).to_have_count(1)
    expect(page.locator("details.info-section > summary", has_text="pool")).to_have_count(1)
    drain = page.locator('form[data-action="celery.drain"]')
    resume = page.locator('form[data-action="celery.resume"]')
    try:
        drain.locator("button.action-button").click()  # no confirmation: resume undoes it
        expect(drain.locator(".action-result")).to_have_attribute("data-outcome", "ok")
        expect(drain.locator(".replies li")).to_have_text([re.compile(r"^celery: ok: ")])
    finally:
        resume.locator("button.action-button").click()
        expect(resume.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    expect(resume.locator(".outcome")).to_contain_text(f"{hostname} consumes celery again")
    # Shutting down asks first; cancelled here, the worker lives on.
    page.locator('form[data-action="celery.shutdown"] button.action-button').click()
    expect(page.locator("#confirm-dialog .confirm-message")).to_contain_text(f"Shut {hostname} down?")
    page.locator("#confirm-dialog button.cancel").click()
    expect(page.locator('form[data-action="celery.shutdown"] .action-result')).to_have_text(
        "cancelled: nothing was sent")
    assert_inert(watched)

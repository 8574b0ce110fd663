"""The History page in a real Chromium: renders, switches range and time zone, deep links, downloads a CSV."""
from __future__ import annotations

import csv
import io
import re
import time

from playwright.sync_api import expect

from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.history_queries import MAX_LABELS
from dashboard.store.migrate import upgrade
from dashboard.store.timeseries import Point
from tests.browser import Watched, log_in, serve
from tests.test_history_queries import events_of, expected, stream

SOURCES = '[[celery]]\nname = "main"\nbroker = "redis://127.0.0.1:1/0"\n'


def seed(url: str) -> int:
    """Tasks over the last three days, a lag metric and a short outage, written as the store would."""
    upgrade(url)
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    now = time.time()
    tasks = stream(1500, now - 3 * 86400, 3 * 86400 - 120, seed=3)
    writer.submit_many("celery_event", events_of(tasks, "main"))
    writer.submit_many("sample", [Point("kafka/events", "lag", float(i % 40), now - 7200 + i * 60, "billing")
                                  for i in range(120)])
    writer.submit_many("sample", [Point("consul/dc1", "service_critical", float(k), now - 1800 + i * 60, f"svc-{k:02d}")
                                  for k in range(MAX_LABELS + 10) for i in range(5)])
    writer.submit_many("sample", [Point("dask/analytics", "tasks_completed", 3.0, now - 1800 + i * 5) for i in range(60)])
    writer.submit_many("sample", [Point("dask/analytics", "tasks_completed", 1.0, now - 1800 + i * 5, "inc")
                                  for i in range(60)])
    writer.submit_many("sample", [Point("dask/analytics", "workers", 2.0, now - 1800 + i * 5) for i in range(60)])
    writer.submit("source_status", {"kind": "celery", "name": "main", "state": "up", "updated_at": now - 7200})
    writer.submit("source_status", {"kind": "celery", "name": "main", "state": "down", "updated_at": now - 3000,
                                    "last_error": "ConnectionRefusedError: [Errno 111]"})
    writer.submit("source_status", {"kind": "celery", "name": "main", "state": "up", "updated_at": now - 2400})
    writer.flush(30)
    writer.stop()
    engine.dispose()
    done = expected(tasks, 0, now)
    return done["succeeded"] + done["failed"]


def wait_loaded(page):
    expect(page.locator('#history[data-loaded="1"]')).to_have_count(1, timeout=30_000)


def test_history_page_ranges_time_zone_deep_link_and_csv(procs, tmp_path, browser):
    finished = seed(f"sqlite:///{tmp_path / 'jobdash.db'}")
    base = serve(procs, tmp_path, SOURCES, "run_collectors = false", role="manager")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin",
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    watched = Watched(page)
    try:
        log_in(page, base, "manager")
        page.goto(base + "/history")
        wait_loaded(page)
        expect(page.locator("#outcomes-chart canvas")).to_have_count(1)
        expect(page.locator("#outcomes-chart .u-legend")).to_contain_text("succeeded")
        expect(page.locator("#outcomes-chart .u-legend")).to_contain_text("failed")
        expect(page.locator("#outcomes-chart")).to_have_attribute("aria-label", re.compile(r"tasks / min.*time \(Europe/Berlin\)"))
        expect(page.locator('[data-metric="kafka/events/lag"] canvas')).to_have_count(1)
        expect(page.locator('[data-metric="kafka/events/lag"] .u-legend')).to_contain_text("billing")
        expect(page.locator("#resolution")).to_contain_text("minute rollups")
        # A metric with more labels than MAX_LABELS draws MAX_LABELS series (and the time row of the legend).
        many = page.locator('[data-metric="consul/dc1/service_critical"]')
        expect(many.locator(".u-legend .u-series")).to_have_count(MAX_LABELS + 1)
        expect(many.locator(".u-legend")).to_contain_text(f"svc-{MAX_LABELS + 9:02d}")
        expect(page.locator("#metrics")).to_contain_text("10 more series of this metric are not drawn")
        expect(page.locator("#metrics h3", has_text="tasks_completed")).to_contain_text("(per minute)")
        # The cluster's total beside its per-prefix series reads "all"; a metric of one series keeps its name.
        completed = page.locator('[data-metric="dask/analytics/tasks_completed"] .u-legend')
        expect(completed).to_contain_text("all")
        expect(completed).to_contain_text("inc")
        expect(page.locator('[data-metric="dask/analytics/workers"] .u-legend')).to_contain_text("workers")
        expect(page.locator("#incidents tbody tr")).to_have_count(1)
        expect(page.locator("#incidents")).to_contain_text("ConnectionRefusedError")
        expect(page.locator("#summary tbody tr").first).to_be_visible()

        # Range: 7 days reads hours; the address holds it.
        page.click('#ranges a[data-range="7d"]')
        expect(page).to_have_url(base + "/history?range=7d")
        wait_loaded(page)
        expect(page.locator("#resolution")).to_contain_text("hour rollups")
        expect(page.locator('#ranges a[aria-current="true"]')).to_have_text("7 days")
        summed = page.locator("#summary tbody td:nth-child(2)").all_text_contents()
        assert sum(int(t.replace(",", "")) for t in summed) == finished

        # Time zone: UTC, remembered across a reload.
        page.check("#utc")
        wait_loaded(page)
        expect(page.locator("#tz-note")).to_have_text("Times shown in UTC.")
        expect(page.locator("#outcomes-chart")).to_have_attribute("aria-label", re.compile(r"time \(UTC\)"))
        page.reload()
        wait_loaded(page)
        expect(page.locator("#utc")).to_be_checked()
        expect(page.locator("#summary-note")).to_contain_text("midnight UTC")

        # A deep link restores the range and the choices, compare included.
        page.goto(base + "/history?range=24h&by=name&compare=1")
        wait_loaded(page)
        expect(page.locator("#celery-by")).to_have_value("name")
        expect(page.locator("#compare")).to_be_checked()
        expect(page.locator("#outcomes-chart .u-legend")).to_contain_text("previous:")

        # The chart's CSV downloads, one row per bucket and task name, with the outcome columns.
        with page.expect_download() as info:
            page.click("#outcomes-csv")
        text = open(info.value.path(), encoding="utf-8").read()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {"period", "time", "key", "succeeded", "failed", "retried"} <= set(rows[0])
        assert {r["period"] for r in rows} == {"current", "previous"}
        assert watched.errors == [] and watched.dialogs == []
    finally:
        context.close()

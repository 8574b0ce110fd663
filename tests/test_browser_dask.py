"""The Dask cluster page in a real headless Chromium, against `jobdash serve` watching a real
`dask scheduler` and `dask worker`: workers, progress bars and erred tasks render, a new erred
task appears without a reload, and a retry from the page works once its cause is removed."""
from __future__ import annotations

import re

import pytest
from distributed import Client

from dashboard.demo.processes import free_port, port_open
from tests.browser import expect, log_in, serve, start_dask
from tests.fixtures_services import wait_for

pytestmark = pytest.mark.browser

HOSTILE = '"><img src=x onerror=alert(1)>'


def test_cluster_page_live_erred_task_and_retry(procs, tmp_path, watched):
    port = free_port()
    start_dask(procs, port)
    address = f"tcp://127.0.0.1:{port}"
    wait_for(lambda: port_open("127.0.0.1", port), bool, timeout=30)
    base = serve(procs, tmp_path, f'[[dask]]\nname = "main"\naddress = "{address}"\ninterval = 1\ntimeout = 3\n',
                 role="admin")
    marker = tmp_path / "cause-removed"

    # Defined here, so that cloudpickle sends them by value to a worker that cannot import the tests.
    def needs_marker(path):
        import os

        if not os.path.exists(path):
            raise RuntimeError(f"marker missing {path} {HOSTILE}")
        return path

    def square(x):
        return x * x

    page = watched.page
    log_in(page, base, "admin")
    page.goto(base + "/dask")
    page.click('a[href="/dask/main"]')
    expect(page).to_have_url(base + "/dask/main")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#workers tbody tr")).to_have_count(1, timeout=30_000)
    expect(page.locator('#workers [data-field="status"]')).to_have_text("running")
    expect(page.locator("#source-state")).to_have_attribute("data-state", "up", timeout=30_000)
    page.evaluate("window.__marker = 1")

    with Client(address, timeout=10, set_as_default=False) as client:
        done = client.map(square, range(4), key=[f"square-{i}" for i in range(4)])
        client.gather(done)
        failing = client.submit(needs_marker, str(marker), key="needs_marker-1")
        row = page.locator('#erred tbody tr[data-key="needs_marker-1"]')
        expect(row).to_have_attribute("data-state", "erred", timeout=30_000)
        expect(row).to_have_class(re.compile(r"\bfresh\b"))
        expect(row.locator('[data-field="prefix"]')).to_have_text("needs_marker")
        expect(row.locator('[data-field="exception"]')).to_contain_text("marker missing")
        expect(row.locator('[data-field="exception"]')).to_contain_text(HOSTILE[:20])
        row.locator("details.traceback summary").click()
        expect(row.locator('[data-field="traceback"]')).to_contain_text("needs_marker")
        prefix = page.locator('#prefixes tr[data-prefix="needs_marker"]')
        expect(prefix.locator('[data-field="erred"]')).to_have_text("1", timeout=30_000)
        expect(prefix.locator('[data-seg="erred"]')).to_have_attribute("style", re.compile(r"width: 100"))
        expect(page.locator('#prefixes tr[data-prefix="square"] [data-field="memory"]')).to_have_text("4")
        assert page.evaluate("window.__marker") == 1  # no reload happened

        marker.touch()
        row.locator('form[data-action="dask.retry"] button').click()
        result = row.locator(".action-result")
        expect(result).to_have_attribute("data-outcome", "ok", timeout=30_000)
        expect(result).to_contain_text("back to")
        assert failing.result(timeout=30) == str(marker)
        expect(row).to_have_attribute("data-state", "memory", timeout=30_000)
        expect(row.locator(".state-label")).to_have_text("in memory")

        # The erred task's own page, reachable from the row, shows its text escaped.
        row.locator('a[data-field="key"]').click()
        expect(page.locator("#task-prefix")).to_have_text("needs_marker")
        expect(page.locator('[data-text="exception"] pre')).to_contain_text(HOSTILE)
        del done, failing

    # History (an admin is above a manager): charts from the rollups, per prefix too.
    page.goto(base + "/dask/main/history")
    expect(page.locator("#tasks-chart .uplot")).to_have_count(1, timeout=30_000)
    expect(page.locator("#workers-chart .uplot")).to_have_count(1)
    expect(page.locator('#prefix-table tr[data-prefix="square"] td').first).to_have_text("4")
    page.locator("#prefix-choice").select_option("square")
    expect(page.locator("#prefix-chart .uplot")).to_have_count(1)
    page.wait_for_timeout(300)
    assert watched.dialogs == [] and watched.errors == []
    assert page.locator("img").count() == 0

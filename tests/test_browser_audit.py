"""The audit page in a real headless Chromium against `jobdash serve`: new rows arrive live for an
admin, only those matching the page's filter; at 1400 px the short cells keep their words whole and
long parameters open in place."""
from __future__ import annotations

import re

import pytest

from tests.browser import Watched, assert_same_document, expect, log_in, mark_document, serve

pytestmark = pytest.mark.browser

LONG = {"task_ids": [f"id-{n:04d}-{'x' * 20}" for n in range(12)]}
# A cell's text on one line: its lines, as the layout broke them.
LINES = """(cell) => { const range = document.createRange(); range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size; }"""


@pytest.fixture
def base(procs, tmp_path):
    return serve(procs, tmp_path, "", role="admin")


def audit_page(browser, base: str, query: str = ""):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, base, "admin")
    page.goto(f"{base}/audit{query}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn .conn-label")).to_have_text("live")
    mark_document(page)
    return Watched(page)


def test_new_audit_rows_appear_live_only_where_they_match_the_filter(base, browser, watched):
    watching = audit_page(browser, base), audit_page(browser, base, "?outcome=refused")
    everything, failures = (w.page for w in watching)
    rows, refused_rows = everything.locator("#audit tbody tr[data-key]"), failures.locator("#audit tbody tr[data-key]")
    expect(refused_rows).to_have_count(0)
    before = rows.count()

    # Someone else logs in (audited), then asks for an action that is refused, with long parameters.
    actor = watched.page
    log_in(actor, base, "admin")
    login_row = rows.first
    expect(rows).to_have_count(before + 1)
    expect(login_row.locator('[data-field="action"]')).to_have_text("auth.login")
    expect(login_row.locator('[data-field="outcome"]')).to_have_text("ok")
    status = actor.evaluate("""async (params) => (await fetch('/api/actions/celery.revoke', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('input[name=csrf]').value},
        body: JSON.stringify({source: 'nowhere', target: 'x', params})})).status""", LONG)
    assert 400 <= status < 500
    refused = refused_rows.first
    expect(refused_rows).to_have_count(1)
    expect(refused.locator('[data-field="action"]')).to_have_text("celery.revoke")
    expect(rows).to_have_count(before + 2)
    expect(rows.first.locator('[data-field="action"]')).to_have_text("celery.revoke")  # newest first
    # The login (outcome ok) never reached the page filtered to refusals.
    expect(failures.locator("#audit tbody tr[data-key]", has_text="auth.login")).to_have_count(0)
    for page in (everything, failures):
        assert_same_document(page)  # no reload

    # Readable at 1400 px: user, role, via, action, outcome each on one line, live row and reloaded alike.
    page = everything
    for _shown in ("live", "after a reload"):
        for cell in page.locator("#audit tbody tr[data-key]").first.locator("td.nowrap").all():
            assert cell.evaluate(LINES) == 1, f"{cell.text_content()!r} breaks across lines"
        details = page.locator("#audit tbody tr[data-key]").first.locator("details.params-long")
        expect(details.locator("pre.params")).to_be_hidden()
        details.locator("summary").click()
        expect(details.locator("pre.params")).to_be_visible()
        expect(details.locator("pre.params")).to_contain_text("id-0011-")  # the whole text, not cut
        page.reload()
    assert [w.errors for w in watching] == [[], []]
    everything.context.close()
    failures.context.close()


def test_a_manager_on_the_audit_page_gets_no_live_rows(procs, tmp_path, browser):
    base = serve(procs, tmp_path, "", role="manager")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, base, "manager")
    assert page.goto(base + "/audit").status == 403
    # Even a socket opened by hand is kept out of the room (tests/test_audit.py checks the answer).
    answer = page.evaluate("""() => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/socket.io/?EIO=4&transport=websocket`);
        ws.onmessage = ({data}) => {
          if (data.startsWith('0')) ws.send('40/live,');
          else if (data.startsWith('40/live')) ws.send('42/live,1["join",{"room":"audit"}]');
          else if (data.startsWith('43/live')) resolve(data);
          else if (data === '2') ws.send('3');
        };
      })""")
    assert re.search(r"needs the admin role", answer), answer
    context.close()

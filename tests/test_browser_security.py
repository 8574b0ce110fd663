"""In a real headless Chromium: hostile text in the audit log stays text, and the CSP holds on every page."""
from __future__ import annotations

import json

import pytest

from tests.browser import expect, log_in, serve

pytestmark = pytest.mark.browser

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAGES = ("/login", "/", "/celery", "/history", "/audit", "/audit?user=x&outcome=failed", "/tokens", "/users")


def assert_inert(watched) -> None:
    page = watched.page
    page.wait_for_timeout(500)  # time for an injected onerror to fire, were there one
    assert watched.dialogs == []
    assert watched.errors == []
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("[...document.scripts].every((s) => s.src !== '')")  # no inline script at all


def test_hostile_names_targets_and_params_on_the_audit_page_never_run(procs, tmp_path, watched, consul_agent):
    page = watched.page
    base = serve(procs, tmp_path, f'[[consul]]\nname = "dc1"\naddress = {json.dumps(consul_agent.address)}\n'
                                  "interval = 60\n", role="admin")
    # A failed login is audited under the name typed, whatever it is.
    page.goto(base + "/login")
    page.fill('input[name="name"]', SCRIPT + IMG)
    page.fill('input[name="password"]', "not the password")
    page.click('button[type="submit"]')
    expect(page.locator(".form-error")).to_have_text("Wrong name or password.")
    expect(page.locator('input[name="name"]')).to_have_value(SCRIPT + IMG)
    # The refused login answers 401, which Chromium logs; that one line is expected.
    assert watched.errors == [
        "console: Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]
    watched.errors.clear()
    assert_inert(watched)

    log_in(page, base, "admin")
    csrf = page.request.get(base + "/api/me").json()["csrf"]
    for name, target, params in [
        ("consul.maintenance", SCRIPT, {"enable": True, "reason": IMG}),
        ("consul.deregister", IMG, {"confirm": True, "note": SCRIPT}),
    ]:
        answer = page.request.post(f"{base}/api/actions/{name}", headers={"X-CSRF-Token": csrf},
                                   data={"source": "dc1", "target": target, "params": params})
        assert answer.status in (400, 502), answer.text()
    created = page.request.post(base + "/tokens", form={"name": SCRIPT + IMG, "csrf": csrf})
    assert created.status == 201

    page.goto(base + "/audit")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(6)  # user add (cli), bad login, login, two actions, the token
    login_row = rows.filter(has_text="auth.login").filter(has_text="failed")
    expect(login_row.locator("td").nth(1)).to_have_text((SCRIPT + IMG)[:64])
    maintenance = rows.filter(has_text="consul.maintenance")
    expect(maintenance.locator("td").nth(6)).to_have_text(SCRIPT)
    expect(maintenance.locator("pre.params")).to_have_text(json.dumps({"enable": True, "reason": IMG}, sort_keys=True))
    expect(maintenance.locator("td").nth(9)).to_contain_text(SCRIPT)  # the error names the target
    deregister = rows.filter(has_text="consul.deregister")
    expect(deregister.locator("td").nth(6)).to_have_text(IMG)
    expect(deregister.locator("pre.params")).to_contain_text(SCRIPT)
    assert_inert(watched)

    page.goto(base + "/tokens")
    expect(page.locator("table.grid tbody td").first).to_have_text(SCRIPT + IMG)
    assert_inert(watched)


def test_every_page_and_file_carries_the_csp_and_the_browser_enforces_it(procs, tmp_path, watched):
    page = watched.page
    base = serve(procs, tmp_path, "", role="admin")
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(base + "/login")
    log_in(page, base, "admin")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # scripts and the socket are allowed
    for path in PAGES[2:]:
        page.goto(base + path)
    assert watched.dialogs == [] and watched.errors == []
    seen = {r.url.removeprefix(base) for r in responses}
    assert {"/login", "/", "/audit", "/static/css/app.css", "/static/js/overview.js"} <= seen
    for response in responses:
        if response.url.startswith(base) and "/socket.io/" not in response.url:
            headers = response.all_headers()
            assert "script-src 'self';" in headers.get("content-security-policy", ""), response.url
            assert headers.get("x-frame-options") == "DENY" and headers.get("x-content-type-options") == "nosniff"

    # The policy is live in the browser: an inline script added to the page does not run.
    ran = page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "window.__inlineRan = true";
        document.body.append(s);
        return window.__inlineRan === true;
    }""")
    assert ran is False

"""The Consul pages in a real headless Chromium, against `jobdash serve` watching the Consul double
(or the agent at CONSUL_HTTP_ADDR): a check going critical shows within 2 s with a 5 s poll
interval, hostile check output stays text, and the controls confirm and report."""
from __future__ import annotations

import time
import uuid

import consul
import pytest

from tests.browser import expect, log_in, serve, toml_str

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror=alert(1)>"><script>alert(2)</script>'


@pytest.fixture
def service(consul_agent):
    """A service "shop-<random>" with one passing TTL check; (name, service ID, check ID)."""
    name = f"shop-{uuid.uuid4().hex[:6]}"
    service_id = f"{name}-1"
    consul_agent.client().agent.service.register(name, service_id=service_id, port=8080, tags=["blue"],
                                                 check={**consul.Check.ttl("10m"), "Status": "passing"})
    yield name, service_id, f"service:{service_id}"
    consul_agent.client().agent.service.deregister(service_id)


@pytest.fixture
def base(procs, tmp_path, consul_agent):
    return serve(procs, tmp_path, f'[[consul]]\nname = "dc1"\naddress = {toml_str(consul_agent.address)}\n'
                                  "interval = 5\ntimeout = 3\n", role="admin")


def assert_inert(watched) -> None:
    page = watched.page
    page.wait_for_timeout(300)
    assert watched.dialogs == [], watched.dialogs
    assert watched.errors == [], watched.errors
    assert page.locator("main img, [onerror], main script").count() == 0


def test_a_check_going_critical_shows_within_two_seconds_as_text(base, consul_agent, service, watched):
    name, service_id, check_id = service
    page = watched.page
    log_in(page, base, "admin")
    page.goto(f"{base}/consul/dc1/services")
    row = page.locator(f'#services tr[data-name="{name}"]')
    expect(row).to_have_attribute("data-state", "passing", timeout=20_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.goto(f"{base}/consul/dc1/services/{name}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    check = page.locator(f'tr.check[data-key$="/{check_id}"]')
    expect(check).to_have_attribute("data-state", "passing")
    page.evaluate("window.__marker = 1")

    changed = time.monotonic()
    consul_agent.set_check_status(check_id, "critical", HOSTILE)
    expect(check).to_have_attribute("data-state", "critical", timeout=10_000)
    took = time.monotonic() - changed
    assert took < 2.0, f"the critical check showed after {took:.2f} s"
    expect(check.locator('[data-field="output"]')).to_have_text(HOSTILE)
    expect(check.locator(".state-label")).to_have_text("critical")
    expect(page.locator("#transitions tbody tr").first).to_contain_text("critical")
    assert page.evaluate("window.__marker") == 1  # no reload

    page.goto(f"{base}/consul/dc1/services")
    expect(row.locator('[data-field="critical"]')).to_have_text("1")
    expect(page.locator("#services tbody tr").first).to_have_attribute("data-state", "critical")  # worst first
    consul_agent.set_check_status(check_id, "passing", "fine again")
    expect(row).to_have_attribute("data-state", "passing", timeout=10_000)
    assert_inert(watched)

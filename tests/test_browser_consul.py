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
    expect(page.locator("#history-chart .uplot")).to_have_count(1)  # the 1 h chart of its check counts
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


def test_maintenance_deregister_and_undo_from_the_pages(base, consul_agent, service, watched):
    name, service_id, check_id = service
    agent = consul_agent.client().agent
    agent.check.register("beat", check={**consul.Check.ttl("30s"), "Status": "passing"}, check_id=f"ttl:{service_id}",
                         service_id=service_id)
    page = watched.page
    log_in(page, base, "admin")
    page.goto(f"{base}/consul/dc1/services/{name}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    instance = page.locator(f'section.instance[data-instance$="/{service_id}"]')
    expect(instance).to_have_attribute("data-state", "passing", timeout=20_000)

    # Maintenance with a reason: the instance shows it live, as maintenance (not critical).
    on = instance.locator('form[data-action="consul.maintenance"]').filter(has_text="Maintenance on")
    on.locator('input[data-param="reason"]').fill(HOSTILE)
    on.locator("button").click()
    expect(on.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    expect(instance).to_have_attribute("data-state", "maintenance", timeout=5_000)
    expect(instance.locator('[data-field="maintenance"]')).to_have_text(HOSTILE)
    assert agent.checks()[f"_service_maintenance:{service_id}"]["Notes"] == HOSTILE
    off = instance.locator('form[data-action="consul.maintenance"]').filter(has_text="Maintenance off")
    off.locator("button").click()
    expect(instance).to_have_attribute("data-state", "passing", timeout=5_000)

    # Deregister asks first; cancelling sends nothing.
    deregister = instance.locator('form[data-action="consul.deregister"]')
    deregister.locator("button").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-message")).to_contain_text(f"Deregister {service_id}")
    dialog.locator("button.cancel").click()
    expect(deregister.locator(".action-result")).to_have_attribute("data-outcome", "cancelled")
    assert service_id in agent.services()
    deregister.locator("button").click()
    dialog.locator("button.danger").click()
    expect(deregister.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    assert service_id not in agent.services()
    expect(page.locator("#changed-note")).to_be_visible(timeout=5_000)

    # The deregistration is offered for undo; the page says which check could not come back.
    page.reload()
    undo = page.locator('#deregistered form[data-action="consul.undo_deregister"]').first
    undo.locator("button").click()
    expect(undo.locator(".action-result")).to_have_attribute("data-outcome", "ok")
    expect(undo.locator(".outcome-text")).to_contain_text(f"NOT recreated, because the agent did not report their "
                                                          f"definition: {check_id} (ttl), ttl:{service_id} (ttl)")
    assert service_id in agent.services()
    assert_inert(watched)


def test_node_maintenance_from_the_nodes_page(base, consul_agent, watched):
    agent = consul_agent.client().agent
    node = agent.self()["Config"]["NodeName"]
    page = watched.page
    log_in(page, base, "admin")
    page.goto(f"{base}/consul/dc1/nodes")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator(f'#nodes tr[data-node="{node}"]')
    expect(row).to_have_attribute("data-state", "passing", timeout=20_000)
    try:
        on = row.locator("form.action").filter(has_text="Maintenance on")
        on.locator('input[data-param="reason"]').fill("kernel upgrade")
        on.locator("button").click()
        expect(row).to_have_attribute("data-state", "maintenance", timeout=5_000)
        expect(row.locator('span[data-field="maintenance"]')).to_have_text("kernel upgrade")
        row.locator("form.action").filter(has_text="Maintenance off").locator("button").click()
        expect(row).to_have_attribute("data-state", "passing", timeout=5_000)
    finally:
        agent.maintenance("false")
    assert_inert(watched)

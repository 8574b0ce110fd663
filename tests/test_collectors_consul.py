"""ConsulCollector over real HTTP against the Consul double, or the agent at CONSUL_HTTP_ADDR."""
from __future__ import annotations

import threading
import time
import uuid

import consul
import pytest

from collectors.consul_health import ConsulCollector
from dashboard.demo import processes
from tests.fixtures_services import silent_server, wait_for


@pytest.fixture
def collector(consul_agent):
    c = ConsulCollector("test", timeout=3, address=consul_agent.address)
    yield c
    c.close()


@pytest.fixture
def services(consul_agent):
    """Register services through python-consul2; deregister whatever is left at the end."""
    client = consul_agent.client()
    registered: list[str] = []

    def register(name: str, service_id: str) -> str:
        check = {**consul.Check.ttl("10m"), "Status": "passing"}
        assert client.agent.service.register(name, service_id=service_id, check=check)
        registered.append(service_id)
        return f"service:{service_id}"

    yield register
    for service_id in registered:
        client.agent.service.deregister(service_id)


def counts(observation) -> dict[str, int]:
    return {k: observation.headline[k] for k in ("services", "passing", "warning", "critical", "maintenance")}


def test_counts_follow_registrations_check_states_and_maintenance(consul_agent, collector, services):
    client = consul_agent.client()

    def seen(**expected):
        # A real agent syncs its registrations to the catalog a moment later; the double at once.
        return wait_for(collector.collect, lambda o: counts(o) == {**base, **expected}, timeout=5)

    base = counts(collector.collect())
    tag = uuid.uuid4().hex[:6]
    check_a1 = services(f"api-{tag}", f"api-{tag}-1")
    services(f"api-{tag}", f"api-{tag}-2")
    check_b1 = services(f"db-{tag}", f"db-{tag}-1")
    obs = seen(services=base["services"] + 2, passing=base["passing"] + 3)
    assert obs.degraded is None
    assert obs.headline["nodes"] == len(client.catalog.nodes()[1])

    consul_agent.set_check_status(check_a1, "critical", "connection refused")
    consul_agent.set_check_status(check_b1, "warning", "slow")
    obs = seen(services=base["services"] + 2, passing=base["passing"] + 1, warning=base["warning"] + 1,
               critical=base["critical"] + 1)
    assert ("checks_critical", "", float(base["critical"] + 1)) in obs.metrics

    # Maintenance adds Consul's critical _service_maintenance check; it is counted on its own.
    assert client.agent.service.maintenance(f"api-{tag}-2", True, "deploy")
    seen(services=base["services"] + 2, passing=base["passing"] + 1, warning=base["warning"] + 1,
         critical=base["critical"] + 1, maintenance=base["maintenance"] + 1)
    assert client.agent.service.maintenance(f"api-{tag}-2", False)
    seen(services=base["services"] + 2, passing=base["passing"] + 1, warning=base["warning"] + 1,
         critical=base["critical"] + 1)

    for service_id in (f"api-{tag}-1", f"api-{tag}-2", f"db-{tag}-1"):
        client.agent.service.deregister(service_id)
    seen()


def test_an_unknown_datacenter_is_an_error(consul_agent):
    collector = ConsulCollector("test", timeout=3, address=consul_agent.address, dc=f"nowhere-{uuid.uuid4().hex[:4]}")
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        collector.collect()
    collector.close()


def test_the_configured_address_wins_over_consul_http_addr(consul_agent, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{processes.free_port()}")
    collector = ConsulCollector("test", timeout=3, address=f"http://{consul_agent.address.split('//')[-1]}")
    try:
        assert collector.collect().headline["nodes"] >= 1
    finally:
        collector.close()


def test_a_closed_port_fails_at_once():
    collector = ConsulCollector("test", timeout=3, address=f"127.0.0.1:{processes.free_port()}")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="unreachable.*refused"):
        collector.collect()
    assert time.monotonic() - started < 1.0
    collector.close()


def test_a_silent_agent_fails_within_the_timeout():
    server = silent_server()
    collector = ConsulCollector("test", timeout=1.5, address=f"127.0.0.1:{server.getsockname()[1]}")
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match="unreachable"):
            collector.collect()
        assert time.monotonic() - started < 1.5
    finally:
        collector.close()
        server.close()


def test_the_double_answers_blocking_queries_when_the_index_moves(consul_agent, services):
    if not consul_agent.is_double:
        pytest.skip("checks the double itself")
    client = consul_agent.client()
    index, _ = client.health.state("any")
    answered = {}

    def block():
        answered["result"] = client.health.state("any", index=index, wait="5s")
        answered["at"] = time.monotonic()

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    changed_at = time.monotonic()
    services(f"late-{uuid.uuid4().hex[:6]}", f"late-{uuid.uuid4().hex[:6]}")
    waiter.join(5)
    new_index, checks = answered["result"]
    assert int(new_index) > int(index)
    assert answered["at"] - changed_at < 1.0
    assert any(c["CheckID"].startswith("service:late-") for c in checks)

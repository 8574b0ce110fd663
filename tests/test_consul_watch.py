"""The Consul collector end to end into the store: blocking queries, transitions, flapping, ACLs, outages.

Against the Consul double over real HTTP, or the agent at CONSUL_HTTP_ADDR where the test does
not need the double's own switches (ACL token, a non-blocking agent, stopping it).
"""
from __future__ import annotations

import time
import uuid

import consul
import pytest

from collectors.consul_health import ConsulCollector
from collectors.runner import CollectorRunner
from dashboard.store import consul_queries as q
from tests.consul_double import ConsulDouble
from tests.fixtures_services import wait_for


class StoreSink:
    """The runner's sink as the dashboard has it: everything to the store writer."""

    def __init__(self, writer):
        self.writer = writer
        self.statuses: list[dict] = []

    def publish(self, collector, status, observation) -> None:
        self.statuses.append(status)

    def emit(self, kind, payloads) -> None:
        self.writer.submit_many(kind, payloads)


@pytest.fixture
def sqlite_store(sqlite_url):
    from dashboard.store import HANDLERS, Writer, make_engine
    from dashboard.store.migrate import upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    yield engine, writer
    writer.stop()
    engine.dispose()


def follow(address: str, writer, interval: float = 30.0, **options) -> tuple[CollectorRunner, StoreSink]:
    """A running collector with a long poll interval: whatever arrives sooner came by blocking query."""
    sink = StoreSink(writer)
    runner = CollectorRunner(ConsulCollector("dc1", interval=interval, timeout=3, address=address, **options), sink)
    runner.start()
    return runner, sink


def stop(runner: CollectorRunner) -> None:
    runner.stop()
    runner.join(5)


def register(agent, name: str) -> str:
    service_id = f"{name}-{uuid.uuid4().hex[:6]}"
    assert agent.client().agent.service.register(name, service_id=service_id, port=80, tags=["v1"],
                                                 check={**consul.Check.ttl("10m"), "Status": "passing"})
    return service_id


def test_a_check_change_is_stored_with_its_transition_within_a_second(consul_agent, sqlite_store):
    engine, writer = sqlite_store
    name = f"pay-{uuid.uuid4().hex[:6]}"
    service_id = register(consul_agent, name)
    runner, _ = follow(consul_agent.address, writer)
    try:
        wait_for(lambda: q.services(engine, "dc1", name=name), lambda rows: rows and rows[0]["passing"] == 1, 15)
        changed_at = time.monotonic()
        consul_agent.set_check_status(f"service:{service_id}", "critical", "connection refused")
        rows = wait_for(lambda: q.services(engine, "dc1", name=name), lambda r: r[0]["critical"] == 1, 10, 0.05)
        assert time.monotonic() - changed_at < 1.5  # not the 30 s poll interval: a blocking query
        assert rows[0]["state"] == "critical" and rows[0]["tags"] == ["v1"]
        detail = q.service(engine, "dc1", name)
        (inst,) = detail["instances"]
        assert (inst["service_id"], inst["port"], inst["owner"], inst["state"]) == (service_id, 80, "agent", "critical")
        assert [c["output"] for c in inst["checks"]] == ["connection refused"]
        latest = detail["transitions"][0]
        assert (latest["check_id"], latest["from_status"], latest["to_status"], latest["output"]) == (
            f"service:{service_id}", "passing", "critical", "connection refused")
    finally:
        stop(runner)
        consul_agent.client().agent.service.deregister(service_id)


def test_a_check_changing_more_than_n_times_an_hour_is_flapping(consul_agent, sqlite_store):
    engine, writer = sqlite_store
    name = f"flap-{uuid.uuid4().hex[:6]}"
    service_id = register(consul_agent, name)
    check_id = f"service:{service_id}"
    runner, _ = follow(consul_agent.address, writer)
    try:
        wait_for(lambda: q.services(engine, "dc1", name=name), lambda rows: bool(rows), 15)
        for n in range(q.FLAP_CHANGES + 1):
            status = "critical" if n % 2 == 0 else "passing"
            consul_agent.set_check_status(check_id, status, f"round {n}")
            wait_for(lambda: q.service(engine, "dc1", name)["instances"][0]["checks"][0]["status"],
                     lambda s: s == status, 10, 0.05)
        flaps = wait_for(lambda: q.flapping(engine, "dc1"), lambda f: bool(f), 10)
        assert flaps == {(consul_agent.client().agent.self()["Config"]["NodeName"], check_id): q.FLAP_CHANGES + 1}
        check = q.service(engine, "dc1", name)["instances"][0]["checks"][0]
        assert check["flapping"] == q.FLAP_CHANGES + 1
        assert q.flapping(engine, "dc1", now=time.time() + 2 * q.FLAP_WINDOW) == {}  # an hour later, calm again
    finally:
        stop(runner)
        consul_agent.client().agent.service.deregister(service_id)


def test_maintenance_catalog_only_instances_and_nodes_are_stored(consul_agent, sqlite_store):
    if not consul_agent.is_double:
        pytest.skip("registers an external node in the catalog")
    engine, writer = sqlite_store
    name = f"ext-{uuid.uuid4().hex[:6]}"
    agent_owned = register(consul_agent, name)
    client = consul_agent.client()
    assert client.catalog.register("ext-node", "10.0.0.9", service={"Service": name, "ID": f"{name}-x", "Port": 5432},
                                   check={"Node": "ext-node", "CheckID": "db", "Name": "db", "Status": "warning",
                                          "ServiceID": f"{name}-x", "Output": "slow"})
    assert client.agent.service.maintenance(agent_owned, "true", "deploy 42")
    runner, _ = follow(consul_agent.address, writer)
    try:
        detail = wait_for(lambda: q.service(engine, "dc1", name),
                          lambda d: d is not None and len(d["instances"]) == 2, 15)
        by_node = {i["node"]: i for i in detail["instances"]}
        assert (by_node["ext-node"]["owner"], by_node["ext-node"]["state"], by_node["ext-node"]["address"]) == (
            "catalog", "warning", "10.0.0.9")
        own = next(i for i in detail["instances"] if i["node"] != "ext-node")
        assert (own["owner"], own["state"], own["maintenance"]) == ("agent", "maintenance", "deploy 42")
        assert {n["node"] for n in q.nodes(engine, "dc1")} >= {"ext-node", own["node"]}
        (row,) = q.services(engine, "dc1", name=name)
        assert (row["instances"], row["warning"], row["maintenance"], row["state"]) == (2, 1, 1, "warning")
        assert q.services(engine, "dc1", name=name, state="critical") == []
        assert q.services(engine, "dc1", tag="no-such-tag", name=name) == []
        with pytest.raises(q.QueryError, match="state: must be one of"):
            q.services(engine, "dc1", state="bogus")
    finally:
        stop(runner)
        client.agent.service.deregister(agent_owned)
        client.catalog.deregister("ext-node")


def test_a_wrong_or_missing_acl_token_is_a_clear_permission_denied():
    double = ConsulDouble(acl_token="s3cret").start()
    try:
        for token, says in (("wrong", "ACL not found"), (None, "filtered every result")):
            collector = ConsulCollector("dc1", timeout=2, address=double.address, token=token)
            with pytest.raises(PermissionError, match=f"permission denied.*{says}"):
                collector.collect()
            collector.close()
        collector = ConsulCollector("dc1", timeout=2, address=double.address, token="s3cret")
        assert collector.collect().headline["passing"] == 1  # serfHealth
        collector.close()
    finally:
        double.stop()


def test_an_agent_that_does_not_block_is_polled_at_the_interval_not_faster():
    double = ConsulDouble(blocking=False).start()
    collector = ConsulCollector("dc1", interval=1.0, timeout=2, address=double.address)
    try:
        collector.collect()
        wait_for(lambda: collector.health.status()["blocking"], lambda b: b is False, 10)
        before, started = collector.health.status()["requests"], time.monotonic()
        time.sleep(3)
        asked = collector.health.status()["requests"] - before
        assert asked <= (time.monotonic() - started) / 1.0 + 1
        assert collector.collect().headline["watch"] == "polling"
    finally:
        collector.close()
        double.stop()


def test_an_idle_blocking_watch_asks_about_once_per_wait():
    double = ConsulDouble().start()
    collector = ConsulCollector("dc1", interval=0.2, timeout=2, address=double.address, wait=1.0)
    try:
        collector.collect()
        time.sleep(0.5)
        before = collector.health.status()["requests"]
        time.sleep(3)
        assert collector.health.status()["requests"] - before <= 4  # one per 1 s wait, not one per 0.2 s interval
        assert collector.health.status()["blocking"] is True
    finally:
        collector.close()
        double.stop()


def test_an_agent_that_goes_away_is_down_within_two_intervals_and_recovers(sqlite_store):
    engine, writer = sqlite_store
    double = ConsulDouble().start()
    port = int(double.address.rsplit(":", 1)[1])
    runner, sink = follow(double.address, writer, interval=0.5)
    try:
        wait_for(lambda: runner.status()["state"], lambda s: s == "up", 15)
        double.stop()
        gone = time.monotonic()
        wait_for(lambda: runner.status()["state"], lambda s: s == "down", 10, 0.05)
        assert time.monotonic() - gone < 2 * 0.5 + 3  # two intervals, plus the request's own timeout
        assert "unreachable" in runner.status()["last_error"]
        double = ConsulDouble().start(port)
        wait_for(lambda: runner.status()["state"], lambda s: s == "up", 30)
    finally:
        stop(runner)
        double.stop()

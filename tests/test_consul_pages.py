"""Consul pages and JSON API against a running dashboard that watches the Consul double (or a real agent)."""
from __future__ import annotations

import uuid

import consul
import pytest

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from tests.conftest import login
from tests.fixtures_services import wait_for

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def consul_app(sqlite_url, consul_agent):
    source = SourceConfig("consul", "dc1", {"address": consul_agent.address}, interval=1, timeout=3)
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", sources=[source]))
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture
def shop(consul_agent):
    """Two services: shop-<r> (blue, one passing and one critical instance) and a hostile-named one."""
    agent = consul_agent.client().agent
    tag = uuid.uuid4().hex[:6]
    name, hostile = f"shop-{tag}", f"{HOSTILE}-{tag}"
    ids = []
    for sid, svc, status in ((f"{name}-1", name, "passing"), (f"{name}-2", name, "critical"),
                             (f"odd-{tag}", hostile, "passing")):
        agent.service.register(svc, service_id=sid, port=80, tags=["blue"], meta={"note": HOSTILE},
                               check={**consul.Check.ttl("10m"), "Status": status, "Notes": ""})
        ids.append(sid)
    yield name, hostile
    for sid in ids:
        agent.service.deregister(sid)


def test_services_are_listed_worst_first_and_filter_by_name_tag_and_state(consul_app, shop):
    name, hostile = shop
    client = login(consul_app, "viewer")
    listed = wait_for(lambda: client.get(f"/api/consul/dc1/services?name={name}").json["services"],
                      lambda rows: rows and rows[0]["instances"] == 2, 15)
    assert (listed[0]["passing"], listed[0]["critical"], listed[0]["state"]) == (1, 1, "critical")
    everything = client.get("/api/consul/dc1/services").json["services"]
    states = [s["state"] for s in everything]
    assert states == sorted(states, key=["critical", "warning", "maintenance", "passing"].index)
    assert [s["name"] for s in client.get("/api/consul/dc1/services?state=critical&tag=blue").json["services"]] == [name]
    assert client.get(f"/api/consul/dc1/services?tag=green&name={name}").json["services"] == []
    bad = client.get("/api/consul/dc1/services?state=on-fire")
    assert bad.status_code == 400 and "state: must be one of" in bad.json["error"]
    page = client.get(f"/consul/dc1/services?name={name}")
    assert page.status_code == 200 and f'data-name="{name}"' in page.text
    assert client.get("/consul/dc1/services?state=on-fire").status_code == 400


def test_the_service_page_escapes_what_consul_reports(consul_app, shop):
    name, hostile = shop
    client = login(consul_app, "viewer")
    wait_for(lambda: client.get("/api/consul/dc1/services?tag=blue").json["services"], lambda rows: len(rows) >= 2, 15)
    from urllib.parse import quote

    page = client.get(f"/consul/dc1/services/{quote(hostile, safe='')}")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    detail = client.get(f"/api/consul/dc1/services/{quote(hostile, safe='')}").json
    assert detail["instances"][0]["meta"] == {"note": HOSTILE}


def test_unknown_sources_and_services_are_404(consul_app):
    client = login(consul_app, "viewer")
    assert client.get("/consul/nowhere/services").status_code == 404
    assert client.get("/api/consul/nowhere/services").json["error"] == "no Consul source named 'nowhere'"
    assert client.get("/consul/dc1/services/no-such-service").status_code == 404
    assert client.get("/api/consul/dc1/services/no-such-service").status_code == 404
    assert client.get("/api/consul/dc1/services/x/history?span=1y").status_code == 400


def test_per_service_check_counts_are_kept_as_history(consul_app, shop):
    name, _ = shop
    client = login(consul_app, "viewer")
    series = wait_for(lambda: client.get(f"/api/consul/dc1/services/{name}/history?span=1h").json["series"],
                      # The first poll may come before every check is registered: wait for the settled counts.
                      lambda s: s["critical"] and s["passing"] and s["critical"][-1]["value"] == 1.0
                      and s["passing"][-1]["value"] == 1.0, 30)
    assert series["critical"][-1]["value"] == 1.0 and series["passing"][-1]["value"] == 1.0
    for span in ("24h", "7d", "30d"):
        assert client.get(f"/api/consul/dc1/services/{name}/history?span={span}").json["series"]["critical"]


def test_the_nav_offers_consul_only_when_a_source_is_configured(consul_app, sqlite_url, tmp_path):
    assert 'href="/consul"' in login(consul_app, "viewer").get("/").text
    bare = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'bare.db'}", secret_key="s"))
    try:
        client = login(bare, "viewer")
        assert 'href="/consul"' not in client.get("/").text
        assert "No Consul source configured" in client.get("/consul").text
    finally:
        bare.extensions["jobdash"].stop()


def test_a_refused_acl_token_shows_as_permission_denied_on_the_pages(sqlite_url):
    from tests.consul_double import ConsulDouble

    double = ConsulDouble(acl_token="right").start()
    source = SourceConfig("consul", "dc1", {"address": double.address, "token": "wrong"}, interval=0.5, timeout=2)
    app = create_app(Settings(database_url=sqlite_url, secret_key="s", sources=[source]))
    try:
        client = login(app, "viewer")
        status = wait_for(lambda: client.get("/api/overview").json["sources"]["consul/dc1"],
                          lambda s: s["state"] == "down", 15)
        assert status["last_error"].startswith("PermissionError: permission denied: Consul refused the ACL token")
        page = client.get("/consul/dc1/services")
        assert page.status_code == 200 and 'id="source-error"' in page.text and "permission denied" in page.text
    finally:
        app.extensions["jobdash"].stop()
        double.stop()

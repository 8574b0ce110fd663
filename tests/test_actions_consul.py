"""Consul actions through perform(): every role on every channel, CSRF, bearer tokens, audit rows.

Runs against the Consul double over real HTTP, or the agent at CONSUL_HTTP_ADDR. Wherever a
request is refused, the agent's services and checks are compared before and after: unchanged.
"""
from __future__ import annotations

import re
import time
import uuid

import consul
import pytest
from flask import render_template_string

from dashboard import create_app
from dashboard.actions import REGISTRY, Action, ActionResult, Invalid
from dashboard.config import Settings, SourceConfig
from dashboard.demo.processes import free_port

from tests.action_channels import Channel, action_rows
from tests.conftest import csrf_of, login

MAINTENANCE = "_service_maintenance:"
NODE_MAINTENANCE = "_node_maintenance"


def valid_request(name: str, service_id: str, node: str = "", audit_id: str = "1") -> dict:
    """A request each action accepts, against the service `service_id` of source dc1 (on `node`, the agent's)."""
    target = {"consul.node_maintenance": node, "consul.undo_deregister": audit_id}.get(name, service_id)
    params = {"consul.deregister": {"confirm": True},
              "consul.maintenance": {"enable": True, "reason": "patching"},
              "consul.node_maintenance": {"enable": True, "reason": "patching"},
              "consul.undo_deregister": {}}[name]
    return {"source": "dc1", "target": target, "params": params}


def took_effect(name: str, agent: consul.Consul, service_id: str) -> bool:
    services, checks = agent.agent.services(), agent.agent.checks()
    if name == "consul.deregister":
        return service_id not in services
    if name == "consul.node_maintenance":
        return checks.get(NODE_MAINTENANCE, {}).get("Notes") == "patching"
    return checks.get(MAINTENANCE + service_id, {}).get("Notes") == "patching"


CONSUL_ACTIONS = sorted(n for n, a in REGISTRY.items() if a.kind == "consul")
# Each needs nothing but a service to act on (undo needs a deregistration first: tested on its own).
DIRECT_ACTIONS = [n for n in CONSUL_ACTIONS if n != "consul.undo_deregister"]


def test_the_matrix_covers_every_consul_action():
    assert CONSUL_ACTIONS == ["consul.deregister", "consul.maintenance", "consul.node_maintenance",
                              "consul.undo_deregister"]
    for name in CONSUL_ACTIONS:
        valid_request(name, "x")  # a new action needs its request here, or this fails


@pytest.fixture
def consul_app(sqlite_url, consul_agent):
    sources = [SourceConfig("consul", "dc1", {"address": consul_agent.address}, timeout=3),
               # Nothing listens there: Consul is down for this source.
               SourceConfig("consul", "gone", {"address": f"127.0.0.1:{free_port()}"}, timeout=2)]
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", sources=sources, run_collectors=False))
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture
def service_id(consul_agent):
    """A fresh service with a passing TTL check; removed afterwards if still there, node maintenance off."""
    agent = consul_agent.client()
    sid = f"web-{uuid.uuid4().hex[:8]}"
    agent.agent.service.register("web", service_id=sid, port=8080, tags=["blue"],
                                 check={**consul.Check.ttl("10m"), "Status": "passing"})
    yield sid
    agent.agent.service.deregister(sid)
    agent.agent.maintenance("false")


@pytest.fixture
def node(consul_agent) -> str:
    """The name of the agent's own node."""
    return consul_agent.client().agent.self()["Config"]["NodeName"]


def consul_state(consul_agent) -> tuple:
    agent = consul_agent.client()
    return agent.agent.services(), agent.agent.checks()


# -- the role matrix -----------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["http", "socket"])
@pytest.mark.parametrize("role", [None, "viewer", "manager"])
@pytest.mark.parametrize("name", CONSUL_ACTIONS)
def test_anyone_but_an_admin_is_refused_and_consul_is_unchanged(consul_app, consul_agent, service_id, node, name,
                                                                role, channel):
    asker = Channel(consul_app, channel, role)
    if role is None and channel == "socket":
        assert not asker.socket.is_connected("/live")  # an anonymous socket is not even connected
    before = consul_state(consul_agent)
    request = valid_request(name, service_id, node)
    status, body = asker.ask(name, request)
    assert status == (401 if role is None else 403)
    assert body.get("outcome", "refused") == "refused"
    assert consul_state(consul_agent) == before
    rows = action_rows(consul_app)
    if role is None:
        assert rows == []  # nobody to name
    else:
        (row,) = rows
        assert (row["user"], row["role"], row["via"], row["action"], row["outcome"]) == (role, role, channel, name,
                                                                                          "refused")
        assert (row["source"], row["target"]) == ("consul/dc1", request["target"])
        assert "needs the admin role" in row["error"]


@pytest.mark.parametrize("channel", ["http", "socket"])
@pytest.mark.parametrize("name", DIRECT_ACTIONS)
def test_an_admin_succeeds_and_exactly_one_ok_row_is_audited(consul_app, consul_agent, service_id, node, name,
                                                             channel):
    asker = Channel(consul_app, channel, "admin")
    request = valid_request(name, service_id, node)
    status, body = asker.ask(name, request)
    assert (status, body["ok"], body["outcome"]) == (200, True, "ok"), body
    assert took_effect(name, consul_agent.client(), service_id)
    (row,) = action_rows(consul_app)
    assert (row["user"], row["role"], row["via"], row["action"], row["outcome"], row["error"]) == (
        "admin", "admin", channel, name, "ok", None)
    assert (row["source"], row["target"]) == ("consul/dc1", request["target"])
    assert {k: v for k, v in row["params"].items() if k != "recorded"} == request["params"]


@pytest.mark.parametrize("channel", ["http", "socket"])
@pytest.mark.parametrize("csrf", ["", "0" * 64, "other-session"])
def test_a_missing_or_wrong_csrf_token_is_refused_and_nothing_is_done(consul_app, consul_agent, service_id, channel,
                                                                      csrf):
    asker = Channel(consul_app, channel, "admin")
    if csrf == "other-session":
        csrf = csrf_of(login(consul_app, "admin"))  # valid, but for another session
    before = consul_state(consul_agent)
    status, body = asker.ask("consul.maintenance", valid_request("consul.maintenance", service_id), csrf=csrf or "")
    assert status == 403 and "CSRF" in body["error"]
    assert consul_state(consul_agent) == before
    (row,) = action_rows(consul_app)
    assert (row["outcome"], row["via"], row["target"]) == ("refused", channel, service_id)


# -- bearer tokens -------------------------------------------------------------------------

def new_token(client) -> str:
    response = client.post("/tokens", data={"name": "ci", "csrf": csrf_of(client)})
    return re.search(r'id="new-token">([^<]+)<', response.text).group(1)


def test_a_bearer_token_acts_with_its_users_role_without_csrf_until_revoked(consul_app, consul_agent, service_id):
    admin, viewer = login(consul_app, "admin"), login(consul_app, "viewer")
    admin_token, viewer_token = new_token(admin), new_token(viewer)
    api = consul_app.test_client()
    request = valid_request("consul.maintenance", service_id)

    def ask(token: str):
        return api.post("/api/actions/consul.maintenance", json=request, headers={"Authorization": f"Bearer {token}"})

    before = consul_state(consul_agent)
    assert ask(viewer_token).status_code == 403
    assert consul_state(consul_agent) == before
    assert ask(admin_token).status_code == 200
    assert took_effect("consul.maintenance", consul_agent.client(), service_id)
    token_id = re.search(r"/tokens/(\d+)/revoke", admin.get("/tokens").text).group(1)
    admin.post(f"/tokens/{token_id}/revoke", data={"csrf": csrf_of(admin)})
    consul_agent.client().agent.service.maintenance(service_id, "false")
    before = consul_state(consul_agent)
    assert ask(admin_token).status_code == 401
    assert consul_state(consul_agent) == before
    assert [(r["user"], r["outcome"]) for r in action_rows(consul_app)] == [("admin", "ok"), ("viewer", "refused")]


# -- bad input: refused, audited, nothing done ---------------------------------------------

@pytest.mark.parametrize("name, body, status, error", [
    ("consul.nope", {"source": "dc1", "target": "SID", "params": {}}, 404, "unknown action 'consul.nope'"),
    ("consul.maintenance", {"source": "nowhere", "target": "SID", "params": {"enable": True}}, 404,
     "no consul source called 'nowhere'"),
    ("consul.maintenance", {"source": "dc1", "target": "", "params": {"enable": True}}, 400, "target must be"),
    ("consul.maintenance", {"source": "dc1", "target": "SID", "params": {}}, 400, "missing parameter 'enable'"),
    ("consul.maintenance", {"source": "dc1", "target": "SID", "params": {"enable": 1}}, 400,
     "parameter 'enable' must be true or false"),
    ("consul.maintenance", {"source": "dc1", "target": "SID", "params": {"enable": True, "reason": "x" * 501}}, 400,
     "longer than 500"),
    ("consul.maintenance", {"source": "dc1", "target": "SID", "params": {"enable": True, "force": True}}, 400,
     "unknown parameter 'force'"),
    ("consul.maintenance", {"source": "dc1", "target": "SID", "params": ["enable"]}, 400,
     "params must be a JSON object"),
    ("consul.deregister", {"source": "dc1", "target": "SID", "params": {}}, 400, "confirmation required"),
    ("consul.deregister", {"source": "dc1", "target": "SID", "params": {"confirm": "yes"}}, 400,
     "confirmation required"),
])
def test_bad_input_is_refused_with_a_clear_message(consul_app, consul_agent, service_id, name, body, status, error):
    body = {k: (service_id if v == "SID" else v) for k, v in body.items()}
    asker = Channel(consul_app, "http", "admin")
    before = consul_state(consul_agent)
    got, answer = asker.ask(name, body)
    assert got == status and error in answer["error"]
    assert consul_state(consul_agent) == before
    (row,) = action_rows(consul_app)
    assert (row["action"], row["outcome"]) == (name, "refused") and error in row["error"]


def test_malformed_json_is_400_and_audited(consul_app, consul_agent, service_id):
    client = login(consul_app, "admin")
    before = consul_state(consul_agent)
    response = client.post("/api/actions/consul.maintenance", data="{not json", content_type="application/json",
                           headers={"X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 400 and "JSON object" in response.json["error"]
    assert consul_state(consul_agent) == before
    (row,) = action_rows(consul_app)
    assert (row["action"], row["outcome"]) == ("consul.maintenance", "refused")


def test_read_only_refuses_every_action_and_hides_the_buttons(consul_app, consul_agent, service_id):
    asker = Channel(consul_app, "http", "admin")
    runtime = consul_app.extensions["jobdash"]
    template = "{{ 'act' if can_act else 'no' }} {{ can_act('consul.deregister') }}"
    with consul_app.test_request_context():
        from flask import g

        from dashboard.auth.users import find_user

        g.user = find_user(runtime.engine, "admin")
        assert render_template_string(template) == "act True"
        runtime.settings.read_only = True
        assert render_template_string(template) == "no False"
    before = consul_state(consul_agent)
    for name in CONSUL_ACTIONS:
        status, body = asker.ask(name, valid_request(name, service_id, "node"))
        assert status == 403 and "read-only" in body["error"]
    assert consul_state(consul_agent) == before
    assert [r["outcome"] for r in action_rows(consul_app)] == ["refused"] * len(CONSUL_ACTIONS)


# -- failures: Consul down, an unknown service, a hung or broken action ----------------------

@pytest.mark.parametrize("channel", ["http", "socket"])
def test_consul_down_is_a_failed_action_with_the_error_audited(consul_app, channel):
    asker = Channel(consul_app, channel, "admin")
    status, body = asker.ask("consul.maintenance", {"source": "gone", "target": "web", "params": {"enable": True}})
    assert status == 502 and body["outcome"] == "failed" and "ConnectionError" in body["error"]
    (row,) = action_rows(consul_app)
    assert (row["outcome"], row["source"]) == ("failed", "consul/gone") and "ConnectionError" in row["error"]


@pytest.mark.parametrize("name, target, params, status, error", [
    ("consul.deregister", "no-such-service", {"confirm": True}, 404, "no service with ID 'no-such-service'"),
    ("consul.deregister", "gone", {"confirm": True, "node": "no-such-node"}, 404, "on node 'no-such-node'"),
    ("consul.maintenance", "no-such-service", {"enable": True}, 404, "no service with ID 'no-such-service'"),
    ("consul.deregister", "web/../../kv", {"confirm": True}, 400, "must not contain '/' or '..'"),
    ("consul.maintenance", "..", {"enable": True}, 400, "must not contain '/' or '..'"),
    ("consul.deregister", "web", {"confirm": True, "node": "a/../b"}, 400, "node 'a/../b' must not contain"),
    ("consul.maintenance", "SID", {"enable": True, "reason": "r" * 10_240}, 400, "longer than 500"),
    ("consul.node_maintenance", "no-such-node", {"enable": True}, 409, "goes through the node's own agent"),
    ("consul.node_maintenance", "NODE", {"enable": True, "reason": "r" * 10_240}, 400, "longer than 500"),
    ("consul.undo_deregister", "12; drop", {}, 400, "must be the number of an audit row"),
    ("consul.undo_deregister", "999999", {}, 404, "audit row 999999 is not a successful consul.deregister"),
])
def test_unknown_or_malformed_targets_are_a_clear_4xx_and_nothing_changes(consul_app, consul_agent, service_id, node,
                                                                          name, target, params, status, error):
    asker = Channel(consul_app, "http", "admin")
    before = consul_state(consul_agent)
    target = {"SID": service_id, "NODE": node}.get(target, target)
    got, body = asker.ask(name, {"source": "dc1", "target": target, "params": params})
    assert (got, body["outcome"]) == (status, "refused") and error in body["error"], body
    assert consul_state(consul_agent) == before
    (row,) = action_rows(consul_app)
    assert (row["action"], row["outcome"]) == (name, "refused") and error in row["error"]


def test_deregister_records_the_definition_so_it_can_be_registered_again(consul_app, consul_agent, service_id):
    asker = Channel(consul_app, "http", "admin")
    status, body = asker.ask("consul.deregister", valid_request("consul.deregister", service_id))
    assert status == 200
    (row,) = action_rows(consul_app)
    recorded = row["params"]["recorded"]
    assert (recorded["service"]["ID"], recorded["service"]["Service"], recorded["service"]["Port"],
            recorded["service"]["Tags"]) == (service_id, "web", 8080, ["blue"])
    assert [c["CheckID"] for c in recorded["checks"]] == [f"service:{service_id}"]
    service = recorded["service"]
    consul_agent.client().agent.service.register(service["Service"], service_id=service["ID"], port=service["Port"],
                                                 tags=service["Tags"])
    assert service_id in consul_agent.client().agent.services()


def test_maintenance_is_reversible_without_confirmation(consul_app, consul_agent, service_id):
    asker = Channel(consul_app, "socket", "admin")
    on = {"source": "dc1", "target": service_id, "params": {"enable": True, "reason": "patching"}}
    off = {"source": "dc1", "target": service_id, "params": {"enable": False}}
    assert asker.ask("consul.maintenance", on)[0] == 200
    assert consul_agent.client().agent.checks()[MAINTENANCE + service_id]["Status"] == "critical"
    assert asker.ask("consul.maintenance", off)[0] == 200
    assert MAINTENANCE + service_id not in consul_agent.client().agent.checks()


def fake_action(name: str, fn, timeout: float = 30.0) -> Action:
    return Action(name, "consul", "admin", False, "test only", {}, timeout, fn)


def test_hung_raising_and_refusing_actions_are_each_audited(consul_app, monkeypatch):
    def hang(runtime, source, target, params):
        time.sleep(3)
        return ActionResult(True, "too late")

    def boom(runtime, source, target, params):
        raise RuntimeError("the watched system said no")

    def wrong_state(runtime, source, target, params):
        raise Invalid(409, f"{target} is not in a state this applies to")

    for name, fn, timeout in (("hang", hang, 0.3), ("boom", boom, 30), ("picky", wrong_state, 30)):
        monkeypatch.setitem(REGISTRY, f"consul.{name}", fake_action(f"consul.{name}", fn, timeout))
    asker = Channel(consul_app, "http", "admin")
    started = time.monotonic()
    status, body = asker.ask("consul.hang", {"source": "dc1", "target": "x"})
    assert status == 504 and "no answer within 0.3 s" in body["error"] and time.monotonic() - started < 2
    status, body = asker.ask("consul.boom", {"source": "dc1", "target": "x"})
    assert status == 502 and body["error"] == "RuntimeError: the watched system said no"
    status, body = asker.ask("consul.picky", {"source": "dc1", "target": "x"})
    assert (status, body["outcome"], body["error"]) == (409, "refused", "x is not in a state this applies to")
    assert [(r["action"], r["outcome"]) for r in action_rows(consul_app)] == [
        ("consul.picky", "refused"), ("consul.boom", "failed"), ("consul.hang", "failed")]


def test_the_api_lists_the_actions_with_their_roles(consul_app):
    listed = {a["name"]: a for a in login(consul_app, "viewer").get("/api/actions").json["actions"]}
    assert listed["consul.deregister"]["confirm"] is True and listed["consul.deregister"]["role"] == "admin"
    assert listed["consul.maintenance"]["params"] == {"enable": {"type": "true or false", "required": True},
                                                      "reason": {"type": "a string", "required": False}}


# -- undo a deregistration from its audit row ------------------------------------------------

def deregistration_id(consul_app, asker, target: str, node: str = "") -> str:
    params = {"confirm": True, **({"node": node} if node else {})}
    status, body = asker.ask("consul.deregister", {"source": "dc1", "target": target, "params": params})
    assert status == 200, body
    return str(next(r["id"] for r in action_rows(consul_app) if r["action"] == "consul.deregister"))


def test_undo_registers_again_and_names_the_checks_it_could_not_recreate(consul_app, consul_agent):
    agent = consul_agent.client()
    sid = f"api-{uuid.uuid4().hex[:8]}"
    agent.agent.service.register("api", service_id=sid, port=9090, tags=["green"], meta={"team": "pay"},
                                 check=consul.Check.http("http://127.0.0.1:9/health", "10s", timeout="2s"))
    agent.agent.check.register("heartbeat", check=consul.Check.ttl("30s"), check_id=f"ttl:{sid}", service_id=sid)
    asker = Channel(consul_app, "http", "admin")
    try:
        audit_id = deregistration_id(consul_app, asker, sid)
        assert sid not in agent.agent.services()
        status, body = asker.ask("consul.undo_deregister", {"source": "dc1", "target": audit_id})
        assert status == 200, body
        assert f"NOT recreated, because the agent did not report their definition: ttl:{sid} (ttl)" in body["message"]
        assert body["details"]["recreated"] == [f"service:{sid}"]
        service = agent.agent.services()[sid]
        assert (service["Service"], service["Port"], service["Tags"], service["Meta"]) == ("api", 9090, ["green"],
                                                                                         {"team": "pay"})
        checks = agent.agent.checks()
        assert checks[f"service:{sid}"]["Type"] == "http" and f"ttl:{sid}" not in checks
        # Undoing twice would clobber whatever is registered now: refused.
        status, body = asker.ask("consul.undo_deregister", {"source": "dc1", "target": audit_id})
        assert (status, body["outcome"]) == (409, "refused") and "registered again already" in body["error"]
        # Only a deregistration can be undone.
        other = str(next(r["id"] for r in action_rows(consul_app) if r["action"] == "consul.undo_deregister"))
        status, body = asker.ask("consul.undo_deregister", {"source": "dc1", "target": other})
        assert status == 404 and "not a successful consul.deregister" in body["error"]
    finally:
        agent.agent.service.deregister(sid)


def test_a_catalog_only_instance_is_deregistered_from_the_catalog_and_comes_back_with_its_checks(consul_app,
                                                                                                 consul_agent):
    if not consul_agent.is_double:
        pytest.skip("registers an external node in the catalog")
    client = consul_agent.client()
    node, sid = f"ext-{uuid.uuid4().hex[:6]}", f"db-{uuid.uuid4().hex[:6]}"
    client.catalog.register(node, "10.1.2.3", service={"Service": "db", "ID": sid, "Port": 5432})
    client.catalog.register(node, "10.1.2.3", check={"Node": node, "CheckID": "pg", "Name": "pg", "Status": "warning",
                                                      "ServiceID": sid, "Output": "replication lag"})
    asker = Channel(consul_app, "http", "admin")
    try:
        status, body = asker.ask("consul.deregister", {"source": "dc1", "target": sid, "params": {"confirm": True}})
        assert status == 404 and "name its node" in body["error"]  # not the agent's: the node must be named
        audit_id = deregistration_id(consul_app, asker, sid, node)
        assert sid not in client.catalog.node(node)[1]["Services"]
        status, body = asker.ask("consul.undo_deregister", {"source": "dc1", "target": audit_id})
        assert status == 200 and "checks recreated with their last status: pg" in body["message"], body
        assert client.catalog.node(node)[1]["Services"][sid]["Port"] == 5432
        (check,) = [c for c in client.health.state("any")[1] if c["Node"] == node]
        assert (check["CheckID"], check["Status"], check["ServiceID"]) == ("pg", "warning", sid)
    finally:
        client.catalog.deregister(node)

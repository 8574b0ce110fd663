"""Consul controls: deregister an instance (and undo it), service and node maintenance mode.

An instance registered with the agent jobdash talks to is deregistered through that agent (which
would otherwise put it back by anti-entropy); one that exists only in the catalog, through the
catalog endpoint. Deregistration records the definition, so that undo can register it again.
"""
from __future__ import annotations

from typing import Any

import consul

from collectors.consul_client import Agent, get
from dashboard.actions.registry import ActionResult, Invalid, Param, action
from dashboard.config import SourceConfig
from dashboard.store.audit_log import audit_entry

REASON = Param(str, required=False, default="", max_length=500)
MAINTENANCE_PREFIXES = ("_service_maintenance:", "_node_maintenance")


def _client(source: SourceConfig) -> consul.Consul:
    return Agent.from_options(**source.options).client(source.timeout)


def _where(source: SourceConfig) -> str:
    return f"the agent at {source.options['address']}"


def check_id_text(target: str, what: str = "service ID") -> str:
    """Refuse IDs that would leave their URL path segment: python-consul2 puts them in the path
    unescaped except for "/", so "a/../../kv" would name another endpoint."""
    if "/" in target or ".." in target:
        raise Invalid(400, f"{what} {target!r} must not contain '/' or '..'")
    return target


def _agent_node(client: consul.Consul) -> str:
    return ((get(client, "/v1/agent/self").data or {}).get("Config") or {}).get("NodeName") or ""


def _checks_of(client: consul.Consul, node: str, service_id: str) -> list[dict[str, Any]]:
    return [c for c in get(client, "/v1/health/state/any").data or []
            if c.get("Node") == node and c.get("ServiceID") == service_id]


@action("consul.deregister", role="admin", confirm=True, params={"node": Param(str, required=False, default="",
                                                                                 max_length=255)},
        description="Remove a service instance: through the agent that owns it, or from the catalog for a "
                    "catalog-only one. Its definition is kept in the audit log, so it can be registered again.")
def deregister(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Deregister instance `target` (on node `node`, default the agent's own), recording its definition."""
    check_id_text(target)
    node = check_id_text(params["node"], "node") if params["node"] else ""
    client = _client(source)
    agent_node = _agent_node(client)
    if node in ("", agent_node):
        service = (get(client, "/v1/agent/services").data or {}).get(target)
        if service is not None:
            checks = [c for c in (get(client, "/v1/agent/checks").data or {}).values() if c.get("ServiceID") == target]
            if not client.agent.service.deregister(target):
                return ActionResult(False, f"Consul answered 404 for service {target!r}: deregistered meanwhile?")
            return ActionResult(True, f"deregistered {target!r} through {_where(source)}",
                                {"owner": "agent", "node": agent_node, "service": service, "checks": checks})
        if not node:
            raise Invalid(404, f"no service with ID {target!r} on {_where(source)}; "
                               "for an instance registered only in the catalog, name its node")
    held = get(client, f"/v1/catalog/node/{node}").data or {}
    service = (held.get("Services") or {}).get(target)
    if service is None:
        raise Invalid(404, f"no service with ID {target!r} on node {node!r}")
    checks = _checks_of(client, node, target)
    client.catalog.deregister(node, service_id=target)
    return ActionResult(True, f"deregistered {target!r} on {node!r} from the catalog",
                        {"owner": "catalog", "node": node, "address": (held.get("Node") or {}).get("Address") or "",
                         "service": service, "checks": checks})


@action("consul.maintenance", role="admin", params={"enable": Param(bool), "reason": REASON},
        description="Put a service instance into maintenance mode (Consul reports it critical) or take it out again.")
def maintenance(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Switch maintenance mode of service instance `target` on the agent."""
    check_id_text(target)
    client = _client(source)
    if target not in (get(client, "/v1/agent/services").data or {}):
        raise Invalid(404, f"no service with ID {target!r} on {_where(source)}")
    enable = params["enable"]
    # Consul parses enable with Go's ParseBool; send its canonical words.
    if not client.agent.service.maintenance(target, "true" if enable else "false", params["reason"] or None):
        return ActionResult(False, f"Consul answered 404 for service {target!r}: deregistered meanwhile?")
    return ActionResult(True, f"maintenance mode {'on' if enable else 'off'} for service {target!r}")


@action("consul.node_maintenance", role="admin", params={"enable": Param(bool), "reason": REASON},
        description="Put the agent's node into maintenance mode (every service on it reports critical) or take it out.")
def node_maintenance(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Switch maintenance mode of node `target`: only its own agent can, so it must be the agent's node."""
    check_id_text(target, "node")
    client = _client(source)
    agent_node = _agent_node(client)
    if target != agent_node:
        raise Invalid(409, f"node maintenance goes through the node's own agent; {_where(source)} is {agent_node!r}, "
                           f"not {target!r}")
    enable = params["enable"]
    if not client.agent.maintenance("true" if enable else "false", params["reason"] or None):
        return ActionResult(False, f"Consul refused node maintenance for {target!r}")
    return ActionResult(True, f"maintenance mode {'on' if enable else 'off'} for node {target!r}")


def recreatable(check: dict[str, Any]) -> dict[str, Any] | None:
    """The check's definition for python-consul2, when the agent reported enough of it (HTTP and TCP
    checks with an interval); None for TTL, script and other checks, whose definition it never reports."""
    definition, interval = check.get("Definition") or {}, check.get("Interval") or (check.get("Definition") or {}).get("Interval")
    timeout = check.get("Timeout") or None
    if check.get("Type") == "http" and definition.get("HTTP") and interval:
        return consul.Check.http(definition["HTTP"], interval, timeout=timeout)
    if check.get("Type") == "tcp" and definition.get("TCP") and interval:
        host, _, port = str(definition["TCP"]).rpartition(":")
        return consul.Check.tcp(host, port, interval, timeout=timeout)
    return None


@action("consul.undo_deregister", role="admin",
        description="Register again an instance jobdash deregistered, from that audit row. Checks whose "
                    "definition the agent did not report (TTL, script...) cannot be recreated: they are named.")
def undo_deregister(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Re-register what audit row `target` (a successful consul.deregister of this source) recorded."""
    if not target.isdigit():
        raise Invalid(400, f"target must be the number of an audit row of consul.deregister, not {target!r}")
    row = audit_entry(runtime.engine, int(target))
    if row is None or row["action"] != "consul.deregister" or row["outcome"] != "ok":
        raise Invalid(404, f"audit row {target} is not a successful consul.deregister")
    if row["source"] != source.key:
        raise Invalid(409, f"audit row {target} deregistered from {row['source']}, not {source.key}")
    recorded = (row["params"] or {}).get("recorded") or {}
    service = recorded.get("service") or {}
    if not service.get("ID") or not service.get("Service"):
        raise Invalid(409, f"audit row {target} holds no service definition to register again")
    client = _client(source)
    if recorded.get("owner") == "catalog":
        return _register_catalog(client, recorded, service)
    if service["ID"] in (get(client, "/v1/agent/services").data or {}):
        raise Invalid(409, f"service {service['ID']!r} is registered again already")
    client.agent.service.register(service["Service"], service_id=service["ID"], address=service.get("Address") or None,
                                  port=service.get("Port") or None, tags=service.get("Tags") or None,
                                  meta=service.get("Meta") or None,
                                  enable_tag_override=bool(service.get("EnableTagOverride")))
    made, lost = [], []
    for check in recorded.get("checks") or []:
        if str(check.get("CheckID", "")).startswith(MAINTENANCE_PREFIXES):
            continue  # maintenance is a switch, not a check to restore
        definition = recreatable(check)
        if definition is None:
            lost.append(f"{check.get('CheckID')} ({check.get('Type') or 'type unknown'})")
            continue
        client.agent.check.register(check.get("Name") or check["CheckID"], check=definition, check_id=check["CheckID"],
                                    service_id=service["ID"], notes=check.get("Notes") or None)
        made.append(check["CheckID"])
    message = f"registered {service['ID']!r} again through the agent"
    if made:
        message += f"; checks recreated: {', '.join(made)}"
    if lost:
        message += (f"; NOT recreated, because the agent did not report their definition: {', '.join(lost)}"
                    " (register them again by hand)")
    return ActionResult(True, message, {"service": service["ID"], "recreated": made, "not_recreated": lost})


def _register_catalog(client: consul.Consul, recorded: dict[str, Any], service: dict[str, Any]) -> ActionResult:
    """Catalog-only: the service and its checks are records, so all come back with their last status."""
    node = recorded.get("node") or ""
    held = get(client, f"/v1/catalog/node/{check_id_text(node, 'node')}").data or {}
    if service["ID"] in (held.get("Services") or {}):
        raise Invalid(409, f"service {service['ID']!r} is registered again already on {node!r}")
    address = (held.get("Node") or {}).get("Address") or recorded.get("address") or service.get("Address")
    entry = {k: service[k] for k in ("ID", "Service", "Tags", "Address", "Port", "Meta") if service.get(k) is not None}
    client.catalog.register(node, address, service=entry)
    made = []
    for check in recorded.get("checks") or []:
        client.catalog.register(node, address, check={
            "Node": node, "CheckID": check.get("CheckID"), "Name": check.get("Name"), "Status": check.get("Status"),
            "Notes": check.get("Notes") or "", "Output": check.get("Output") or "", "ServiceID": service["ID"]})
        made.append(check.get("CheckID"))
    return ActionResult(True, f"registered {service['ID']!r} on {node!r} again in the catalog"
                              + (f"; checks recreated with their last status: {', '.join(made)}" if made else ""),
                        {"service": service["ID"], "recreated": made, "not_recreated": []})

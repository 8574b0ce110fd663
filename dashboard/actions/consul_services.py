"""Consul service controls: deregister a service, switch its maintenance mode."""
from __future__ import annotations

from urllib.parse import quote

import consul
import consul.std

from collectors.consul_health import parse_address
from dashboard.actions.registry import ActionResult, Param, action
from dashboard.config import SourceConfig


def _client(source: SourceConfig) -> consul.Consul:
    options = source.options
    scheme, host, port = parse_address(options["address"], options.get("scheme", "http"))
    client = consul.Consul(host=host, port=port, token=options.get("token"), scheme=scheme, dc=options.get("dc"))
    # As in the collector: python-consul2 would let CONSUL_HTTP_ADDR/_TOKEN override the configured
    # source, and takes the request timeout only through its HTTP client's constructor.
    client.http = consul.std.HTTPClient(host, port, scheme, timeout=source.timeout)
    client.token = options.get("token")
    return client


def _path_id(service_id: str) -> str:
    # python-consul2 puts the id into the URL path as it is: "a/../../kv" must stay one segment.
    return quote(service_id, safe="")


@action("consul.deregister", role="admin", confirm=True,
        description="Remove a service and its checks from the Consul agent. Its definition is kept in the audit log.")
def deregister(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Deregister service `target`, recording its definition and checks so it can be registered again."""
    client = _client(source)
    service = (client.agent.services() or {}).get(target)
    if service is None:
        return ActionResult(False, f"no service with ID {target!r} on the agent at {source.options['address']}")
    checks = [c for c in (client.agent.checks() or {}).values() if c.get("ServiceID") == target]
    if not client.agent.service.deregister(_path_id(target)):
        return ActionResult(False, f"Consul answered 404 for service {target!r}: deregistered meanwhile?")
    return ActionResult(True, f"deregistered service {target!r}", {"service": service, "checks": checks})


@action("consul.maintenance", role="admin",
        params={"enable": Param(bool), "reason": Param(str, required=False, default="", max_length=500)},
        description="Put a service into maintenance mode (Consul reports it critical) or take it out again.")
def maintenance(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Switch maintenance mode of service `target`."""
    client = _client(source)
    enable = params["enable"]
    # Consul parses enable with Go's ParseBool; send its canonical words.
    if not client.agent.service.maintenance(_path_id(target), "true" if enable else "false", params["reason"] or None):
        return ActionResult(False, f"no service with ID {target!r} on the agent at {source.options['address']}")
    return ActionResult(True, f"maintenance mode {'on' if enable else 'off'} for service {target!r}")

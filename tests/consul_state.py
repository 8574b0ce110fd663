"""The Consul test double's state: one agent's services, checks and catalog, and blocking reads.

Kept apart from the HTTP layer (tests.consul_double) that serves it. Checks are not run: their
status changes only through `set_check_status` (the tests' stand-in for a check result) and
through maintenance mode. Test code only, never product code.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any, Callable


DATACENTER = "dc1"
STATES = ("passing", "warning", "critical")
MAINT_PREFIX = "_service_maintenance:"
NODE_MAINT = "_node_maintenance"
DEFAULT_NODE_MAINT_REASON = ("Maintenance mode is enabled for this node, but no reason was provided. "
                             "This is a default message.")
DEFAULT_MAINT_REASON = ("Maintenance mode is enabled for this service, but no reason was provided. "
                        "This is a default message.")
# Go's strconv.ParseBool, which Consul uses for query flags such as ?enable=.
TRUE_WORDS = {"1", "t", "T", "TRUE", "true", "True"}
FALSE_WORDS = {"0", "f", "F", "FALSE", "false", "False"}



class HTTPError(Exception):
    """An error answer: Consul replies with a status code and a plain-text reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _duration(text: str) -> float:
    """Parse a Go duration like 5s, 100ms or 1m into seconds."""
    total, pos = 0.0, 0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise HTTPError(400, f"Invalid wait time: time: invalid duration {text!r}")
    return total


def _field(body: dict[str, Any], *names: str, default: Any = None) -> Any:
    """Read a key case-insensitively, as Consul's decoder does (python-consul2 sends lowercase)."""
    lowered = {key.lower().replace("_", ""): value for key, value in body.items()}
    for name in names:
        key = name.lower().replace("_", "")
        if key in lowered:
            return lowered[key]
    return default



class ConsulState:
    """One Consul agent and its catalog: what the HTTP layer (tests.consul_double) reads and changes."""

    def __init__(self, node: str = "jobdash-double", acl_token: str | None = None, blocking: bool = True):
        self._cond = threading.Condition()
        # With a token set, requests must carry it (X-Consul-Token): a wrong one is refused with 403,
        # none at all reads as the anonymous token does under default-deny: nothing, filtered.
        self.acl_token = acl_token
        # False: answer blocking queries at once, as a proxy in front of an agent may.
        self.blocking = blocking
        self.requests = 0  # every request served, for benchmarks
        self._index = 1
        # Each endpoint answers with the index of what it reads: the catalog endpoints with the last
        # registration change, so a check's status change does not wake a catalog watch (as in Consul).
        self._catalog_index = 1
        self._closing = False
        self.node = {"ID": str(uuid.uuid4()), "Node": node, "Address": "127.0.0.1", "Datacenter": DATACENTER,
                     "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"},
                     "Meta": {"consul-network-segment": ""}, "CreateIndex": 1, "ModifyIndex": 1}
        self.services: dict[str, dict[str, Any]] = {}
        # Catalog-only registrations: node name -> node, and (node, service ID) -> service.
        self.catalog_nodes: dict[str, dict[str, Any]] = {}
        self.catalog_services: dict[tuple[str, str], dict[str, Any]] = {}
        self.catalog_checks: dict[tuple[str, str], dict[str, Any]] = {}
        # The node's own serfHealth check is in the catalog, not among the agent's local checks.
        self.checks: dict[str, dict[str, Any]] = {"serfHealth": self._check(
            "serfHealth", "Serf Health Status", "passing", output="Agent alive and reachable", local=False)}


    # -- helpers for tests --------------------------------------------------------------------

    def set_check_status(self, check_id: str, status: str, output: str = "", node: str | None = None) -> None:
        """Give a check a new status, as if the agent (or an external monitor) had just run it."""
        if status not in STATES:
            raise ValueError(f"status must be one of {STATES}, not {status!r}")
        with self._cond:
            checks = self.checks if node in (None, self.node["Node"]) else {
                cid: c for (n, cid), c in self.catalog_checks.items() if n == node}
            if check_id not in checks:
                raise KeyError(check_id)
            check = checks[check_id]
            check.update(Status=status, Output=output)
            check["ModifyIndex"] = self._bump()

    @property
    def index(self) -> int:
        with self._cond:
            return self._index

    # -- state ------------------------------------------------------------------------------

    def _bump(self, catalog: bool = False) -> int:
        """Advance the index after a change (a registration: the catalog's too) and wake blocking
        queries; caller holds the lock."""
        self._index += 1
        if catalog:
            self._catalog_index = self._index
        self._cond.notify_all()
        return self._index

    def _check(self, check_id: str, name: str, status: str, service: dict[str, Any] | None = None,
               notes: str = "", output: str = "", kind: str = "", local: bool = True,
               node: str | None = None) -> dict[str, Any]:
        return {"Node": node or self.node["Node"], "CheckID": check_id, "Name": name, "Status": status, "Notes": notes,
                "Output": output, "ServiceID": service["ID"] if service else "",
                "ServiceName": service["Service"] if service else "",
                "ServiceTags": list(service["Tags"]) if service else [], "Type": kind, "Interval": "",
                "Timeout": "", "ExposedPort": 0, "Definition": {}, "CreateIndex": self._index,
                "ModifyIndex": self._index, "_local": local}

    def register_service(self, body: dict[str, Any]) -> None:
        name = _field(body, "Name")
        if not name:
            raise HTTPError(400, "Missing service name")
        service_id = _field(body, "ID") or name
        service = {"ID": service_id, "Service": name, "Tags": list(_field(body, "Tags") or []),
                   "Meta": dict(_field(body, "Meta") or {}), "Port": int(_field(body, "Port") or 0),
                   "Address": _field(body, "Address") or "", "Weights": {"Passing": 1, "Warning": 1},
                   "EnableTagOverride": bool(_field(body, "EnableTagOverride")), "Datacenter": DATACENTER}
        definitions = list(_field(body, "Checks") or [])
        if _field(body, "Check"):
            definitions.insert(0, _field(body, "Check"))
        specs = []
        for number, definition in enumerate(definitions, start=1):
            check_id = _field(definition, "CheckID", "ID") or (
                f"service:{service_id}" if len(definitions) == 1 else f"service:{service_id}:{number}")
            status = _field(definition, "Status") or "critical"
            if status not in STATES:
                raise HTTPError(400, f"Invalid Check: Status {status!r} is not a valid check status")
            specs.append((check_id, _field(definition, "Name") or f"Service '{name}' check", status,
                          _field(definition, "Notes") or "", definition))
        with self._cond:
            index = self._bump(catalog=True)
            # Registering an existing ID replaces the service and its checks (maintenance stays).
            for check_id in [c for c, check in self.checks.items()
                             if check["ServiceID"] == service_id and not c.startswith(MAINT_PREFIX)]:
                del self.checks[check_id]
            existing = self.services.get(service_id)
            service["CreateIndex"] = existing["CreateIndex"] if existing else index
            service["ModifyIndex"] = index
            self.services[service_id] = service
            for check_id, check_name, status, notes, definition in specs:
                self.checks[check_id] = self._defined(check_id, check_name, status, service, notes, definition)

    def _defined(self, check_id: str, name: str, status: str, service: dict[str, Any] | None, notes: str,
                 definition: dict[str, Any]) -> dict[str, Any]:
        """A check from its definition. Like Consul, /v1/agent/checks reports the type, interval and
        timeout, and only an HTTP or TCP target in Definition: never a TTL's duration or a script."""
        kind = next((k for k in ("ttl", "http", "tcp", "grpc", "docker", "alias") if _field(definition, k)),
                    "script" if _field(definition, "Args", "Script") else "")
        check = self._check(check_id, name, status, service, notes=notes, kind=kind)
        check.update(Interval=_field(definition, "Interval") or "", Timeout=_field(definition, "Timeout") or "")
        if kind in ("http", "tcp"):
            check["Definition"] = {kind.upper(): _field(definition, kind), "Interval": check["Interval"],
                                   "Timeout": check["Timeout"]}
        return check

    def register_check(self, body: dict[str, Any]) -> None:
        """PUT /v1/agent/check/register: a check of the agent's node, or of one of its services."""
        name = _field(body, "Name")
        if not name:
            raise HTTPError(400, "Missing check name")
        status = _field(body, "Status") or "critical"
        if status not in STATES:
            raise HTTPError(400, f"Invalid Check: Status {status!r} is not a valid check status")
        service_id = _field(body, "ServiceID")
        with self._cond:
            service = self.services.get(service_id) if service_id else None
            if service_id and service is None:
                raise HTTPError(404, f'ServiceID "{service_id}" does not exist')
            check_id = _field(body, "CheckID", "ID") or name
            self.checks[check_id] = self._defined(check_id, name, status, service, _field(body, "Notes") or "", body)
            self._bump()

    def deregister_service(self, service_id: str) -> None:
        with self._cond:
            if service_id not in self.services:
                raise HTTPError(404, f'Unknown service ID "{service_id}". '
                                     'Ensure that the service ID is passed, not the service name.')
            del self.services[service_id]
            for check_id in [c for c, check in self.checks.items() if check["ServiceID"] == service_id]:
                del self.checks[check_id]
            self._bump(catalog=True)

    def service_maintenance(self, service_id: str, enable: str | None, reason: str | None) -> None:
        if enable is None:
            raise HTTPError(400, "Missing value for enable")
        if enable not in TRUE_WORDS | FALSE_WORDS:
            raise HTTPError(400, f"Invalid value for enable: {enable!r}")
        with self._cond:
            service = self.services.get(service_id)
            if service is None:
                raise HTTPError(404, f'Unknown service ID "{service_id}"')
            check_id = MAINT_PREFIX + service_id
            if enable in TRUE_WORDS:
                if check_id in self.checks:
                    return
                self.checks[check_id] = self._check(check_id, "Service Maintenance Mode", "critical", service,
                                                    notes=reason or DEFAULT_MAINT_REASON, kind="maintenance")
            elif self.checks.pop(check_id, None) is None:
                return
            self._bump()

    def node_maintenance(self, enable: str | None, reason: str | None) -> None:
        """PUT /v1/agent/maintenance: the agent's own node gets (or loses) the _node_maintenance check."""
        if enable is None:
            raise HTTPError(400, "Missing value for enable")
        if enable not in TRUE_WORDS | FALSE_WORDS:
            raise HTTPError(400, f"Invalid value for enable: {enable!r}")
        with self._cond:
            if enable in TRUE_WORDS:
                if NODE_MAINT in self.checks:
                    return
                self.checks[NODE_MAINT] = self._check(NODE_MAINT, "Node Maintenance Mode", "critical",
                                                      notes=reason or DEFAULT_NODE_MAINT_REASON, kind="maintenance")
            elif self.checks.pop(NODE_MAINT, None) is None:
                return
            self._bump()

    def catalog_register(self, body: dict[str, Any]) -> None:
        """PUT /v1/catalog/register: a node, optionally a service and checks, outside any agent."""
        node_name = _field(body, "Node")
        if not node_name or not _field(body, "Address"):
            raise HTTPError(400, "Must provide node and address")
        if node_name == self.node["Node"]:
            raise HTTPError(400, "the double keeps catalog registrations for other nodes only")
        with self._cond:
            index = self._bump(catalog=True)
            node = self.catalog_nodes.setdefault(node_name, {
                "ID": "", "Node": node_name, "Datacenter": DATACENTER, "CreateIndex": index})
            node.update(Address=_field(body, "Address"), TaggedAddresses=dict(_field(body, "TaggedAddresses") or {}),
                        Meta=dict(_field(body, "NodeMeta") or {}), ModifyIndex=index)
            raw = _field(body, "Service")
            service = None
            if raw:
                name = _field(raw, "Service")
                if not name:
                    raise HTTPError(400, "Must provide service name with ID")
                service = {"ID": _field(raw, "ID") or name, "Service": name, "Tags": list(_field(raw, "Tags") or []),
                           "Meta": dict(_field(raw, "Meta") or {}), "Port": int(_field(raw, "Port") or 0),
                           "Address": _field(raw, "Address") or "", "Weights": {"Passing": 1, "Warning": 1},
                           "EnableTagOverride": False, "CreateIndex": index, "ModifyIndex": index}
                self.catalog_services[(node_name, service["ID"])] = service
            checks = list(_field(body, "Checks") or [])
            if _field(body, "Check"):
                checks.insert(0, _field(body, "Check"))
            for raw_check in checks:
                status = _field(raw_check, "Status") or "critical"
                if status not in STATES:
                    raise HTTPError(400, f"Invalid Check: Status {status!r} is not a valid check status")
                service_id = _field(raw_check, "ServiceID") or ""
                owner = self.catalog_services.get((node_name, service_id)) if service_id else None
                check_id = _field(raw_check, "CheckID") or _field(raw_check, "Name")
                self.catalog_checks[(node_name, check_id)] = self._check(
                    check_id, _field(raw_check, "Name") or check_id, status, owner,
                    notes=_field(raw_check, "Notes") or "", output=_field(raw_check, "Output") or "",
                    local=False, node=node_name)

    def catalog_deregister(self, body: dict[str, Any]) -> None:
        """PUT /v1/catalog/deregister: a node with all it holds, or one service or check of it."""
        node_name = _field(body, "Node")
        if not node_name:
            raise HTTPError(400, "Must provide node")
        service_id, check_id = _field(body, "ServiceID"), _field(body, "CheckID")
        with self._cond:
            if service_id:
                self.catalog_services.pop((node_name, service_id), None)
                for key in [k for k, c in self.catalog_checks.items() if k[0] == node_name and c["ServiceID"] == service_id]:
                    del self.catalog_checks[key]
            elif check_id:
                self.catalog_checks.pop((node_name, check_id), None)
            else:
                self.catalog_nodes.pop(node_name, None)
                for table in (self.catalog_services, self.catalog_checks):
                    for key in [k for k in table if k[0] == node_name]:
                        del table[key]
            self._bump(catalog=True)

    def _public(self, check: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in check.items() if not key.startswith("_")}

    def _service_entry(self, service: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in service.items() if key != "Datacenter"}

    # -- reads (the caller holds the lock) ----------------------------------------------------

    def read_agent_services(self) -> dict[str, Any]:
        return {sid: dict(service) for sid, service in self.services.items()}

    def read_agent_checks(self) -> dict[str, Any]:
        return {cid: self._public(check) for cid, check in self.checks.items() if check["_local"]}

    def _all_checks(self) -> list[dict[str, Any]]:
        return [*self.checks.values(), *self.catalog_checks.values()]

    def _all_services(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(node, service) of every instance: the agent's and the catalog-only ones."""
        return [*((self.node, s) for s in self.services.values()),
                *((self.catalog_nodes[n], s) for (n, _), s in self.catalog_services.items())]

    def read_health_state(self, state: str) -> list[dict[str, Any]]:
        if state not in ("any", *STATES):
            raise HTTPError(400, "Invalid check state")
        return [self._public(c) for c in self._all_checks() if state in ("any", c["Status"])]

    def read_health_service(self, name: str, passing: bool, tag: str | None) -> list[dict[str, Any]]:
        entries = []
        for node, service in self._all_services():
            if service["Service"] != name or (tag is not None and tag not in service["Tags"]):
                continue
            checks = [self._public(c) for c in self._all_checks()
                      if c["Node"] == node["Node"] and c["ServiceID"] in ("", service["ID"])]
            if passing and any(c["Status"] != "passing" for c in checks):
                continue
            entries.append({"Node": dict(node), "Service": self._service_entry(service), "Checks": checks})
        return entries

    def read_catalog_services(self) -> dict[str, list[str]]:
        # A real cluster always lists the servers' own "consul" service.
        found: dict[str, list[str]] = {"consul": []}
        for _node, service in self._all_services():
            tags = found.setdefault(service["Service"], [])
            tags.extend(t for t in service["Tags"] if t not in tags)
        return found

    def read_catalog_nodes(self) -> list[dict[str, Any]]:
        return [dict(self.node), *(dict(n) for n in self.catalog_nodes.values())]

    def read_catalog_node(self, name: str) -> dict[str, Any] | None:
        """GET /v1/catalog/node/:node: the node and its services by ID (null for an unknown node)."""
        node = self.node if name == self.node["Node"] else self.catalog_nodes.get(name)
        if node is None:
            return None
        services = [s for n, s in self._all_services() if n is node]
        return {"Node": dict(node), "Services": {s["ID"]: self._service_entry(s) for s in services}}

    def read_agent_self(self) -> dict[str, Any]:
        return {"Config": {"Datacenter": DATACENTER, "NodeName": self.node["Node"], "NodeID": self.node["ID"]},
                "Member": {"Name": self.node["Node"], "Addr": self.node["Address"]}}

    def blocking_read(self, params: dict[str, str], read: Callable[[], Any], catalog: bool = False) -> tuple[int, Any]:
        """Answer at once, or, with ?index=N, once the index passes N or ?wait= elapses."""
        if params.get("dc") not in (None, "", DATACENTER):
            raise HTTPError(500, "No path to datacenter")
        wanted = params.get("index")
        wait = min(_duration(params["wait"]), 600.0) if params.get("wait") else 300.0
        with self._cond:
            if wanted and self.blocking:
                try:
                    wanted_index = int(wanted)
                except ValueError:
                    raise HTTPError(400, f"Invalid index: {wanted!r}") from None
                deadline = time.monotonic() + wait
                while (self._catalog_index if catalog else self._index) <= wanted_index and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            return (self._catalog_index if catalog else self._index), read()

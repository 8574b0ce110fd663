"""Consul: services, instances, health checks and nodes of one datacenter, followed by blocking queries.

Two watches (collectors.consul_watch) follow the agent on threads of their own: every check's
state (/v1/health/state/any) and the catalog (/v1/catalog/services, then the nodes and what each
holds). Each change is handed to the store at once (emit), so it shows within about a second;
the runner's poll only checks the agent answers and reports counts and history.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from collectors.base import Collector, Observation
from collectors.consul_client import Agent, Answer, get
from collectors.consul_watch import BlockingWatch

logger = logging.getLogger(__name__)

MAINTENANCE_PREFIXES = ("_service_maintenance:", "_node_maintenance")
STATES = ("passing", "warning", "critical")
WAIT = 60.0  # seconds a blocking query may wait (Consul's default is 5 min, its maximum 10)
HISTORY_EVERY = 60.0  # every service's counts are sampled this often, changed ones at every poll


def check_key(check: dict[str, Any]) -> tuple[str, str]:
    return str(check.get("Node") or ""), str(check.get("CheckID") or "")


def is_maintenance(check_id: str) -> bool:
    return check_id.startswith(MAINTENANCE_PREFIXES)


class ConsulCollector(Collector):
    """Follow a Consul agent's health and catalog; poll only to see that it answers."""

    kind = "consul"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, address: str = "127.0.0.1:8500",
                 token: str | None = None, dc: str | None = None, scheme: str = "http", wait: float = WAIT,
                 **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, address=address, token=token, dc=dc,
                         scheme=scheme, **options)
        self.agent = Agent.from_options(address, token, dc, scheme)
        # A little under the poll's budget, so a hung agent is reported by us rather than abandoned by the runner.
        self.client = self.agent.client(max(0.5, timeout * 0.8))
        self._catalog_client = self.agent.client(timeout)  # the catalog watch's own follow-up reads
        self.wait = wait
        self._lock = threading.Lock()
        self._checks: dict[tuple[str, str], dict[str, Any]] = {}  # as last emitted
        self._filtered = False
        self._services: dict[str, list[str]] | None = None
        self._nodes: int | None = None
        self._agent_node: str | None = None
        self._history: dict[str, tuple[int, int, int]] = {}
        self._history_at = 0.0
        self.health = BlockingWatch(self.agent, "/v1/health/state/any", self._on_health, interval, wait, timeout,
                                    name=f"{name}-health")
        self.catalog = BlockingWatch(self.agent, "/v1/catalog/services", self._on_catalog, interval, wait, timeout,
                                     name=f"{name}-catalog")

    # -- the watches' callbacks (on their threads) -----------------------------------------------

    def _send(self, kind: str, payload: dict[str, Any]) -> None:
        if self.bound:  # a collector polled by hand (tests) keeps its view to itself
            self.emit(kind, [payload])

    def _on_health(self, answer: Answer) -> None:
        checks = {check_key(c): c for c in answer.data or [] if isinstance(c, dict)}
        # After a start or a failure the store may hold anything: send the whole set to compare.
        full = self.health.index is None
        with self._lock:
            changed = [c for k, c in checks.items() if self._checks.get(k) != c]
            removed = [list(k) for k in self._checks if k not in checks]
            self._checks, self._filtered = checks, answer.filtered
        if full or changed or removed:
            self._send("consul_health", {"source": self.name, "at": time.time(), "full": full,
                                         "checks": list(checks.values()) if full else changed, "removed": removed})

    def _on_catalog(self, answer: Answer) -> None:
        services = {str(k): list(v or []) for k, v in (answer.data or {}).items()}
        client = self._catalog_client
        if self._agent_node is None:
            self._agent_node = (get(client, "/v1/agent/self").data or {}).get("Config", {}).get("NodeName")
        nodes = get(client, "/v1/catalog/nodes").data or []
        owned = set((get(client, "/v1/agent/services").data or {}))
        instances = []
        for node in nodes:
            held = get(client, f"/v1/catalog/node/{node.get('Node')}").data or {}
            for service in (held.get("Services") or {}).values():
                agent_owned = node.get("Node") == self._agent_node and service.get("ID") in owned
                instances.append({"node": node.get("Node"), "service_id": service.get("ID"),
                                  "service": service.get("Service"),
                                  "address": service.get("Address") or node.get("Address"),
                                  "port": service.get("Port"), "tags": service.get("Tags"), "meta": service.get("Meta"),
                                  "owner": "agent" if agent_owned else "catalog"})
        with self._lock:
            self._services, self._nodes = services, len(nodes)
        self._send("consul_catalog", {
            "source": self.name, "at": time.time(), "services": services, "instances": instances,
            "nodes": [{"node": n.get("Node"), "address": n.get("Address"), "datacenter": n.get("Datacenter"),
                       "meta": n.get("Meta")} for n in nodes]})

    # -- the runner's poll -----------------------------------------------------------------------

    def collect(self) -> Observation:
        for watch in (self.health, self.catalog):
            watch.start()
        leader = get(self.client, "/v1/status/leader").data  # the agent answers at all (no ACL needed)
        deadline = time.monotonic() + max(0.1, self.timeout * 0.7)
        for watch in (self.health, self.catalog):
            watch.first.wait(max(0.0, deadline - time.monotonic()))
        health = self.health.status()
        if health["error"] is not None:
            raise health["error"]
        if health["last_ok_at"] is None:
            raise TimeoutError("no answer yet from /v1/health/state/any")
        problems = []
        if leader == "":
            problems.append("no cluster leader")
        catalog = self.catalog.status()
        if catalog["error"] is not None:
            problems.append(f"catalog unavailable: {catalog['error']}")
        with self._lock:
            checks, filtered = list(self._checks.values()), self._filtered
            services, nodes = self._services, self._nodes
        if filtered:
            if not checks:
                raise PermissionError("permission denied: the ACL token reads no checks (Consul filtered every "
                                      "result); set a token with node:read and service:read")
            problems.append("some checks are hidden by ACLs: the token may not read everything")
        return self._observe(checks, services, nodes, health, problems)

    def _observe(self, checks, services, nodes, health, problems) -> Observation:
        counts = {state: 0 for state in STATES}
        per_service: dict[str, list[int]] = {}
        maintenance = 0
        for check in checks:
            # Maintenance mode is a critical check in Consul; shown apart so a planned pause does
            # not read as a failure.
            if is_maintenance(str(check.get("CheckID", ""))):
                maintenance += 1
            elif check.get("Status") in counts:
                counts[check["Status"]] += 1
                if check.get("ServiceName"):
                    per_service.setdefault(check["ServiceName"], [0, 0, 0])[STATES.index(check["Status"])] += 1
        headline = {"services": None if services is None else len(services), "nodes": nodes, **counts,
                    "maintenance": maintenance, "watch": "polling" if health["blocking"] is False else "blocking"}
        metrics = [(f"checks_{state}", "", float(n)) for state, n in counts.items()]
        metrics.append(("maintenance", "", float(maintenance)))
        if services is not None:
            metrics.append(("services", "", float(len(services))))
        if nodes is not None:
            metrics.append(("nodes", "", float(nodes)))
        metrics += self._service_history(per_service)
        return Observation(headline=headline, metrics=metrics, degraded="; ".join(problems) or None)

    def _service_history(self, per_service: dict[str, list[int]]) -> list[tuple[str, str, float]]:
        """Per-service passing/warning/critical check counts: changed ones now, all every HISTORY_EVERY."""
        now = time.monotonic()
        every = now - self._history_at >= HISTORY_EVERY
        if every:
            self._history_at = now
        points = []
        for name in sorted(set(per_service) | set(self._history)):
            counts = tuple(per_service.get(name, (0, 0, 0)))
            if every or self._history.get(name) != counts:
                points += [(f"service_{state}", name, float(n)) for state, n in zip(STATES, counts)]
            if name in per_service:
                self._history[name] = counts
            else:
                self._history.pop(name, None)
        return points

    def close(self) -> None:
        for watch in (self.health, self.catalog):
            watch.stop()
        for client in (self.client, self._catalog_client):
            client.http.session.close()

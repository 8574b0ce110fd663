"""Consul: services, nodes and health-check states of one datacenter."""
from __future__ import annotations

import logging
import warnings
from typing import Any
from urllib.parse import urlsplit

import consul
import consul.std
import requests

from collectors.base import Collector, Observation

logger = logging.getLogger(__name__)

MAINTENANCE_PREFIXES = ("_service_maintenance:", "_node_maintenance")


def parse_address(address: str, scheme: str = "http") -> tuple[str, str, int]:
    """Split "host:port" or a URL into (scheme, host, port); Consul's default port is 8500."""
    parts = urlsplit(address if "://" in address else f"{scheme}://{address}")
    if not parts.hostname:
        raise ValueError(f"not a Consul address: {address!r}")
    return parts.scheme, parts.hostname, parts.port or 8500


class ConsulCollector(Collector):
    """Poll a Consul agent's HTTP API for the health of every registered check."""

    kind = "consul"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, address: str = "127.0.0.1:8500",
                 token: str | None = None, dc: str | None = None, scheme: str = "http", **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, address=address, token=token, dc=dc,
                         scheme=scheme, **options)
        self.dc = dc
        scheme, host, port = parse_address(address, scheme)
        self.base_uri = f"{scheme}://{host}:{port}"
        with warnings.catch_warnings():
            # python-consul2 warns about legacy ACL and discovery-chain APIs on every construction.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.client = consul.Consul(host=host, port=port, token=token, scheme=scheme, dc=dc)
        # python-consul2 lets CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN override what it is given; a
        # dashboard watching several sources must talk to the configured one. Its HTTP client
        # also takes the per-request timeout only through this constructor; a little under the
        # poll's budget, so a hung agent is reported by us rather than abandoned by the runner.
        self.client.http = consul.std.HTTPClient(host, port, scheme, timeout=max(0.5, timeout * 0.8))
        self.client.token = token

    def collect(self) -> Observation:
        try:
            _, checks = self.client.health.state("any", dc=self.dc)
        except requests.RequestException as exc:
            raise ConnectionError(f"consul {self.base_uri} unreachable: {exc}") from exc
        problems: list[str] = []
        services = self._optional("catalog services", lambda: self.client.catalog.services(dc=self.dc)[1], problems)
        nodes = self._optional("catalog nodes", lambda: self.client.catalog.nodes(dc=self.dc)[1], problems)
        leader = self._optional("leader", self.client.status.leader, problems)
        if leader == "":
            problems.append("no cluster leader")

        counts = {state: 0 for state in ("passing", "warning", "critical")}
        maintenance = 0
        for check in checks:
            # Maintenance mode is a critical check in Consul; shown apart so a planned pause does
            # not read as a failure.
            if check.get("CheckID", "").startswith(MAINTENANCE_PREFIXES):
                maintenance += 1
            elif check.get("Status") in counts:
                counts[check["Status"]] += 1
        headline = {"services": None if services is None else len(services),
                    "nodes": None if nodes is None else len(nodes), **counts, "maintenance": maintenance}
        metrics = [(f"checks_{state}", "", float(n)) for state, n in counts.items()]
        metrics.append(("maintenance", "", float(maintenance)))
        if services is not None:
            metrics.append(("services", "", float(len(services))))
        if nodes is not None:
            metrics.append(("nodes", "", float(len(nodes))))
        return Observation(headline=headline, metrics=metrics, degraded="; ".join(problems) or None)

    @staticmethod
    def _optional(what: str, call, problems: list[str]) -> Any:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the rest of the poll stands; reported as degraded
            problems.append(f"{what} unavailable: {type(exc).__name__}: {exc}")
            return None

    def close(self) -> None:
        self.client.http.session.close()

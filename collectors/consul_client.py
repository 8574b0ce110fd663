"""python-consul2 clients for one configured Consul source, and reads that keep Consul's headers."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import consul
import consul.base
import consul.std
import requests

FILTERED = "X-Consul-Results-Filtered-By-ACLs"


def parse_address(address: str, scheme: str = "http") -> tuple[str, str, int]:
    """Split "host:port" or a URL into (scheme, host, port); Consul's default port is 8500."""
    parts = urlsplit(address if "://" in address else f"{scheme}://{address}")
    if not parts.hostname:
        raise ValueError(f"not a Consul address: {address!r}")
    return parts.scheme, parts.hostname, parts.port or 8500


@dataclass(frozen=True)
class Agent:
    """Where a source's agent is and how to talk to it."""

    scheme: str
    host: str
    port: int
    token: str | None = None
    dc: str | None = None

    @classmethod
    def from_options(cls, address: str, token: str | None = None, dc: str | None = None, scheme: str = "http",
                     **_ignored: Any) -> "Agent":
        scheme, host, port = parse_address(address, scheme)
        return cls(scheme, host, port, token or None, dc or None)

    @property
    def base_uri(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def client(self, timeout: float) -> consul.Consul:
        """A client of its own (one requests session) whose every request gives up after `timeout`."""
        with warnings.catch_warnings():
            # python-consul2 warns about legacy ACL and discovery-chain APIs on every construction.
            warnings.simplefilter("ignore", DeprecationWarning)
            client = consul.Consul(host=self.host, port=self.port, token=self.token, scheme=self.scheme, dc=self.dc)
        # python-consul2 lets CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN override what it is given; a
        # dashboard watching several sources must talk to the configured one. Its HTTP client
        # takes the request timeout only through its constructor.
        client.http = consul.std.HTTPClient(self.host, self.port, self.scheme, timeout=timeout)
        client.token = self.token
        return client


class Answer:
    """One reply of the HTTP API: its X-Consul-Index (or None), the body, whether ACLs hid results."""

    __slots__ = ("index", "data", "filtered")

    def __init__(self, index: int | None, data: Any, filtered: bool):
        self.index, self.data, self.filtered = index, data, filtered


def read_answer(response) -> Answer:
    """python-consul2 callback: raise its exception for an error status, else an Answer."""
    consul.base.CB._status(response, allow_404=False)
    raw = response.headers.get("X-Consul-Index")
    try:
        index = int(raw) if raw is not None else None
    except ValueError:
        index = None
    return Answer(index, json.loads(response.body) if response.body else None,
                  response.headers.get(FILTERED, "").lower() == "true")


def denied(exc: Exception) -> PermissionError:
    return PermissionError(f"permission denied: Consul refused the ACL token ({str(exc).strip() or 'no reason given'});"
                           " check the source's token")


def get(client: consul.Consul, path: str, params: list[tuple[str, Any]] | None = None) -> Answer:
    """GET a Consul path with the client's token and datacenter; errors say plainly what happened."""
    params = list(params or [])
    if client.dc:
        params.append(("dc", client.dc))
    headers = {"X-Consul-Token": client.token} if client.token else {}
    try:
        return client.http.get(read_answer, path=path, params=params, headers=headers)
    except (consul.ACLPermissionDenied, consul.ACLDisabled) as exc:
        raise denied(exc) from None
    except requests.RequestException as exc:
        raise ConnectionError(f"consul {client.http.base_uri} unreachable: {exc}") from exc

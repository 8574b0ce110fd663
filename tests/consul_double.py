"""A Consul HTTP API test double: the agent, health, catalog and status endpoints jobdash uses.

Follows Consul's documented API (paths, status codes, JSON field names, X-Consul-Index and
blocking queries) for one agent, whose node is in datacenter dc1, plus any catalog-only nodes
registered through /v1/catalog/register (as external services are). This module is the HTTP
layer; the state it serves is tests.consul_state. Test code only, never product code.

The endpoint documentation each route follows (https://developer.hashicorp.com/consul/api-docs/...):
  agent/service register, deregister, maintenance   .../agent/service
  agent/maintenance, agent/services, self            .../agent, .../agent/service
  agent/checks, agent/check/register                .../agent/check
  health/state/:state, health/service/:name         .../health
  catalog register, deregister, services, nodes, node/:node   .../catalog
  status/leader                                     .../status
  blocking queries (index, wait, X-Consul-Index)    .../features/blocking
  ACL tokens (X-Consul-Token; 403 "ACL not found"; anonymous reads filtered, with the
  X-Consul-Results-Filtered-By-ACLs header)          .../api-structure#authentication, .../features/filtering
"""
from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from tests.consul_state import FALSE_WORDS, STATES, ConsulState, HTTPError

logger = logging.getLogger(__name__)


class ConsulDouble(ConsulState):
    """One Consul agent and its catalog, served over HTTP on 127.0.0.1."""

    def __init__(self, node: str = "jobdash-double", acl_token: str | None = None, blocking: bool = True):
        super().__init__(node, acl_token, blocking)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.address = ""

    # -- life cycle -------------------------------------------------------------------------

    def start(self, port: int = 0) -> "ConsulDouble":
        """Serve on 127.0.0.1:port (a free one by default); `.address` is "127.0.0.1:PORT"."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="consul-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the port then refuses connections."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)


def _handler_for(double: ConsulDouble) -> type[BaseHTTPRequestHandler]:
    routes: list[tuple[str, re.Pattern, Callable[..., tuple[int, Any, int | None]]]] = []

    def route(method: str, pattern: str):
        def register(fn):
            routes.append((method, re.compile(pattern + r"$"), fn))
            return fn
        return register

    def plain(params, read):
        with double._cond:
            return 200, read(), None

    def indexed(params, read, catalog=False):
        index, data = double.blocking_read(params, read, catalog)
        return 200, data, index

    @route("PUT", r"/v1/agent/service/register")
    def register(params, body):
        double.register_service(body or {})
        return 200, None, None

    @route("PUT", r"/v1/agent/service/deregister/(?P<service_id>.+)")
    def deregister(params, body, service_id):
        double.deregister_service(service_id)
        return 200, None, None

    @route("PUT", r"/v1/agent/service/maintenance/(?P<service_id>.+)")
    def maintenance(params, body, service_id):
        double.service_maintenance(service_id, params.get("enable"), params.get("reason"))
        return 200, None, None

    @route("PUT", r"/v1/agent/check/register")
    def check_register(params, body):
        double.register_check(body or {})
        return 200, None, None

    @route("PUT", r"/v1/agent/check/(?P<verb>pass|warn|fail)/(?P<check_id>.+)")
    def check_ttl(params, body, verb, check_id):
        # .../agent/check#ttl-check-pass (warn, fail): ?note= becomes the check's output.
        try:
            double.set_check_status(check_id, {"pass": "passing", "warn": "warning", "fail": "critical"}[verb],
                                    params.get("note", ""))
        except KeyError:
            raise HTTPError(404, f'Unknown check ID "{check_id}"') from None
        return 200, None, None

    @route("GET", r"/_double/requests")
    def double_requests(params, body):
        # Not Consul's: how many requests the double has served, for benchmarks in another process.
        return 200, {"requests": double.requests}, None

    @route("PUT", r"/v1/agent/maintenance")
    def node_maintenance(params, body):
        double.node_maintenance(params.get("enable"), params.get("reason"))
        return 200, None, None

    @route("PUT", r"/v1/catalog/register")
    def catalog_register(params, body):
        double.catalog_register(body or {})
        return 200, True, None

    @route("PUT", r"/v1/catalog/deregister")
    def catalog_deregister(params, body):
        double.catalog_deregister(body or {})
        return 200, True, None

    @route("GET", r"/v1/agent/self")
    def agent_self(params, body):
        return plain(params, double.read_agent_self)

    @route("GET", r"/v1/catalog/node/(?P<name>[^/]+)")
    def catalog_node(params, body, name):
        return indexed(params, lambda: double.read_catalog_node(name), catalog=True)

    @route("GET", r"/v1/agent/services")
    def agent_services(params, body):
        return plain(params, double.read_agent_services)

    @route("GET", r"/v1/agent/checks")
    def agent_checks(params, body):
        return plain(params, double.read_agent_checks)

    @route("GET", r"/v1/health/state/(?P<state>[^/]+)")
    def health_state(params, body, state):
        if state not in ("any", *STATES):  # refused before any blocking wait
            raise HTTPError(400, "Invalid check state")
        return indexed(params, lambda: double.read_health_state(state))

    @route("GET", r"/v1/health/service/(?P<name>[^/]+)")
    def health_service(params, body, name):
        passing = "passing" in params and params["passing"] not in FALSE_WORDS
        return indexed(params, lambda: double.read_health_service(name, passing, params.get("tag")))

    @route("GET", r"/v1/catalog/services")
    def catalog_services(params, body):
        return indexed(params, double.read_catalog_services, catalog=True)

    @route("GET", r"/v1/catalog/nodes")
    def catalog_nodes(params, body):
        return indexed(params, double.read_catalog_nodes, catalog=True)

    @route("GET", r"/v1/status/leader")
    def status_leader(params, body):
        return 200, "127.0.0.1:8300", None

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so a stopped double refuses at once.
        protocol_version = "HTTP/1.0"
        server_version = "consul-double"

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug("consul double: " + fmt, *args)

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
            with double._cond:
                double.requests += 1
            try:
                anonymous = self._acl(method, path, params)
                allowed = []
                for route_method, pattern, fn in routes:
                    match = pattern.match(path)
                    if not match:
                        continue
                    if route_method != method:
                        allowed.append(route_method)
                        continue
                    code, data, index = fn(params, self._body(), **match.groupdict())
                    if anonymous and isinstance(data, (list, dict)):
                        # Default-deny: the anonymous token reads nothing, and Consul says it filtered.
                        self._reply(code, type(data)(), index, filtered=True)
                    else:
                        self._reply(code, data, index)
                    return
                if allowed:
                    raise HTTPError(405, f"method {method} not allowed")
                raise HTTPError(404, "404 page not found")
            except HTTPError as exc:
                self._reply(exc.code, exc.reason, None, text=True)

        def _acl(self, method: str, path: str, params: dict[str, str]) -> bool:
            """Check the request's token; True when it reads as the anonymous token (none given)."""
            if double.acl_token is None or path == "/v1/status/leader":
                return False
            token = self.headers.get("X-Consul-Token") or params.get("token")
            if token is None:
                if method == "GET":
                    return True
                raise HTTPError(403, "Permission denied")
            if token != double.acl_token:
                raise HTTPError(403, "ACL not found")
            return False

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise HTTPError(400, f"Request decode failed: {exc}") from None

        def _reply(self, code: int, data: Any, index: int | None, text: bool = False, filtered: bool = False) -> None:
            if text:
                payload, ctype = str(data).encode(), "text/plain; charset=utf-8"
            elif data is None and index is None:
                payload, ctype = b"", "text/plain; charset=utf-8"
            else:
                payload, ctype = json.dumps(data).encode(), "application/json"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            if index is not None:
                self.send_header("X-Consul-Index", str(index))
                self.send_header("X-Consul-KnownLeader", "true")
                self.send_header("X-Consul-LastContact", "0")
            if filtered:
                self.send_header("X-Consul-Results-Filtered-By-ACLs", "true")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._dispatch("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._dispatch("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._dispatch("DELETE")

    return Handler



def main() -> None:
    """Serve a double holding `--services` x `--instances` services, each with a passing TTL check,
    until killed (benchmarks run it in a process of its own, as an agent would be)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--services", type=int, default=0)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--no-blocking", action="store_true", help="answer blocking queries at once")
    args = parser.parse_args()
    double = ConsulDouble(blocking=not args.no_blocking)
    for s in range(args.services):
        for i in range(args.instances):
            double.register_service({"Name": f"svc-{s:04d}", "ID": f"svc-{s:04d}-{i}", "Port": 8000 + i,
                                     "Tags": ["bench"], "Check": {"TTL": "10m", "Status": "passing"}})
    double.start(args.port)
    print(f"ready {double.address} {double.node['Node']}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

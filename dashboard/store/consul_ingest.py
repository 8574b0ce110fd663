"""Consul observations into rows: checks with their transitions, and the catalog (services, instances, nodes).

Everything here came from a watched system: strings are clamped to their columns, statuses
to Consul's three (anything else is stored as critical, with the word kept in the output).
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from dashboard.store.consul_models import ConsulCheck, ConsulInstance, ConsulNode, ConsulService, ConsulTransition
from dashboard.store.db import insert_rows, upsert_rows

STATUSES = ("passing", "warning", "critical")
OUTPUT_MAX = 16_000  # a check's output as kept; the page collapses it
EXCERPT_MAX = 500  # a transition's output excerpt
CHECK_COLUMNS = ("source", "node", "check_id", "service_id", "service", "name", "status", "output", "notes", "type",
                 "changed_at", "updated_at")
TRANSITION_COLUMNS = ("source", "node", "check_id", "service", "from_status", "to_status", "at", "output")


def text(value: Any, limit: int = 255) -> str:
    """A string a column can hold: None becomes "", anything else its str, cut at `limit`."""
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    value = value[:limit]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them visible instead of failing the batch
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def clean_check(raw: dict[str, Any]) -> dict[str, Any]:
    """One check as Consul reported it (health endpoints' fields), clamped for the store."""
    status = raw.get("Status")
    output = text(raw.get("Output"), OUTPUT_MAX)
    if status not in STATUSES:
        output = text(f"[Consul reported status {status!r}] {output}", OUTPUT_MAX)
        status = "critical"
    return {"node": text(raw.get("Node")), "check_id": text(raw.get("CheckID")), "service_id": text(raw.get("ServiceID")),
            "service": text(raw.get("ServiceName")), "name": text(raw.get("Name")), "status": status,
            "output": output, "notes": text(raw.get("Notes"), 2000), "type": text(raw.get("Type"), 32)}


def write_health(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Writer handler for "consul_health": {source, at, full, checks: [as Consul sent them], removed: [(node, id)]}.

    Stores each check, and a transition for each status that differs from the stored one. Sets
    payload["transitions"] to what it recorded, for the live rooms.
    """
    for payload in payloads:
        source, at = payload["source"], payload["at"]
        checks = [clean_check(c) for c in payload["checks"] if isinstance(c, dict)]
        t = ConsulCheck
        query = select(t.node, t.check_id, t.status, t.changed_at).where(t.source == source)
        keys = [(c["node"], c["check_id"]) for c in checks]
        stored: dict[tuple[str, str], tuple[str, float]] = {}
        if payload.get("full"):
            for node, check_id, status, changed_at in conn.execute(query):
                stored[(node, check_id)] = (status, changed_at)
            gone = set(stored) - set(keys)
        else:
            for i in range(0, len(keys), 400):
                for node, check_id, status, changed_at in conn.execute(
                        query.where(tuple_(t.node, t.check_id).in_(keys[i:i + 400]))):
                    stored[(node, check_id)] = (status, changed_at)
            gone = {tuple(k) for k in payload.get("removed", ())}
        rows, transitions = [], []
        for check, key in zip(checks, keys):
            before = stored.get(key)
            changed_at = before[1] if before and before[0] == check["status"] else at
            if before is None or before[0] != check["status"]:
                transitions.append((source, *key, check["service"], before[0] if before else None, check["status"], at,
                                    check["output"][:EXCERPT_MAX]))
            rows.append((source, *(check[c] for c in CHECK_COLUMNS[1:10]), changed_at, at))
        if rows:
            upsert_rows(conn, t.__table__, ("source", "node", "check_id"), CHECK_COLUMNS, rows)
        if transitions:
            insert_rows(conn, ConsulTransition.__table__, TRANSITION_COLUMNS, transitions)
        for node, check_id in gone:
            conn.execute(delete(t).where(t.source == source, t.node == node, t.check_id == check_id))
        payload["stored"] = checks
        payload["transitions"] = [dict(zip(TRANSITION_COLUMNS, row)) for row in transitions]
        payload["gone"] = sorted(gone)


def write_catalog(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Writer handler for "consul_catalog": the whole catalog of a source, replacing what was stored.

    {source, at, services: {name: [tags]}, instances: [{node, service_id, service, address, port,
    tags, meta, owner}], nodes: [{node, address, datacenter, meta}]}
    """
    for payload in payloads:
        source, at = payload["source"], payload["at"]
        for table in (ConsulService, ConsulInstance, ConsulNode):
            conn.execute(delete(table).where(table.source == source))
        services = [(source, text(name), json.dumps([text(t) for t in (tags or [])][:100]), at)
                    for name, tags in payload["services"].items()]
        if services:
            insert_rows(conn, ConsulService.__table__, ("source", "name", "tags", "updated_at"), services)
        instances = {}
        for i in payload["instances"]:
            key = (text(i["node"]), text(i["service_id"]))
            meta = {text(k, 128): text(v, 512) for k, v in list((i.get("meta") or {}).items())[:64]}
            instances[key] = (source, *key, text(i["service"]), text(i.get("address")), _port(i.get("port")),
                              json.dumps([text(t) for t in (i.get("tags") or [])][:100]), json.dumps(meta),
                              text(i.get("owner"), 8), at)
        if instances:
            insert_rows(conn, ConsulInstance.__table__, ("source", "node", "service_id", "service", "address", "port",
                                                         "tags", "meta", "owner", "updated_at"), list(instances.values()))
        nodes = {}
        for n in payload["nodes"]:
            meta = {text(k, 128): text(v, 512) for k, v in list((n.get("meta") or {}).items())[:64]}
            nodes[text(n["node"])] = (source, text(n["node"]), text(n.get("address")), text(n.get("datacenter"), 64),
                                      json.dumps(meta), at)
        if nodes:
            insert_rows(conn, ConsulNode.__table__, ("source", "node", "address", "datacenter", "meta", "updated_at"),
                        list(nodes.values()))


def _port(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535 else 0


HANDLERS = {"consul_health": write_health, "consul_catalog": write_catalog}

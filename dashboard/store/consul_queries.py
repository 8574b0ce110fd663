"""Reads of Consul state: services worst first, one service in full, nodes, transitions and flapping."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from dashboard.store.consul_models import ConsulCheck, ConsulInstance, ConsulNode, ConsulService, ConsulTransition

# Worst first: what needs attention before what was planned (maintenance) and what is fine.
STATES = ("critical", "warning", "maintenance", "passing")
FLAP_CHANGES = 5  # a check that changed status more than this many times in FLAP_WINDOW is flapping
FLAP_WINDOW = 3600.0
SERVICE_MAINT = "_service_maintenance:"
NODE_MAINT = "_node_maintenance"


class QueryError(ValueError):
    """A filter that cannot be run; the message says why."""


def _rows(engine: Engine, query) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def worst(statuses) -> str:
    found = set(statuses)
    return next((s for s in STATES if s in found), "passing")


def _instance_states(instances: list[dict], checks: list[dict]) -> None:
    """Give each instance its checks, its node's checks, maintenance reason and state (in place)."""
    by_instance: dict[tuple[str, str], list[dict]] = {}
    by_node: dict[str, list[dict]] = {}
    for check in checks:
        if check["service_id"]:
            by_instance.setdefault((check["node"], check["service_id"]), []).append(check)
        else:
            by_node.setdefault(check["node"], []).append(check)
    for inst in instances:
        own = by_instance.get((inst["node"], inst["service_id"]), [])
        node = by_node.get(inst["node"], [])
        maint = [c for c in own + node if c["check_id"].startswith((SERVICE_MAINT, NODE_MAINT))]
        inst["checks"] = [c for c in own if not c["check_id"].startswith(SERVICE_MAINT)]
        inst["node_checks"] = [c for c in node if c["check_id"] != NODE_MAINT]
        inst["maintenance"] = maint[0]["notes"] if maint else None
        inst["state"] = "maintenance" if maint else worst(c["status"] for c in inst["checks"] + inst["node_checks"])


def _load(engine: Engine, source: str, service: str | None = None) -> tuple[list[dict], list[dict]]:
    i, c = ConsulInstance, ConsulCheck
    iq = select(i.__table__).where(i.source == source)
    # A list needs the start of each output; one service's page shows them whole.
    output = c.output if service is not None else func.substr(c.output, 1, 300).label("output")
    cq = select(c.node, c.check_id, c.service_id, c.service, c.name, c.status, c.notes, c.changed_at,
                output).where(c.source == source)
    if service is not None:
        iq = iq.where(i.service == service)
        cq = cq.where((c.service == service) | (c.service_id == ""))
    return _rows(engine, iq.order_by(i.node, i.service_id)), _rows(engine, cq.order_by(c.node, c.check_id))


def services(engine: Engine, source: str, name: str = "", tag: str = "", state: str = "") -> list[dict[str, Any]]:
    """Each service with its tags and instance counts per state, worst first, then by name.

    `name` matches part of the name, `tag` one tag exactly, `state` keeps services with an
    instance in that state.
    """
    if state and state not in STATES:
        raise QueryError(f"state: must be one of {', '.join(STATES)}; got {state!r}")
    instances, checks = _load(engine, source)
    _instance_states(instances, checks)
    tags = {r["name"]: r["tags"] or [] for r in _rows(engine, select(ConsulService.name, ConsulService.tags)
                                                       .where(ConsulService.source == source))}
    out: dict[str, dict[str, Any]] = {}
    for svc, svc_tags in tags.items():
        out[svc] = {"name": svc, "tags": svc_tags, "instances": 0, **dict.fromkeys(STATES, 0)}
    for inst in instances:
        row = out.setdefault(inst["service"], {"name": inst["service"], "tags": [], "instances": 0,
                                               **dict.fromkeys(STATES, 0)})
        row["instances"] += 1
        row[inst["state"]] += 1
    rows = []
    for row in out.values():
        row["state"] = next((s for s in STATES if row[s]), "passing")
        if name and name.lower() not in row["name"].lower():
            continue
        if tag and tag not in row["tags"]:
            continue
        if state and not row[state]:
            continue
        rows.append(row)
    return sorted(rows, key=lambda r: (STATES.index(r["state"]), -r["critical"], -r["warning"], r["name"]))


def service(engine: Engine, source: str, name: str, now: float | None = None) -> dict[str, Any] | None:
    """One service: instances with their checks and maintenance, its transitions, flapping checks."""
    instances, checks = _load(engine, source, name)
    changes = transitions(engine, source, service=name)
    # A service with no instance left is still known by its catalog entry or its history.
    if not instances and not changes and not _rows(engine, select(ConsulService.name).where(
            ConsulService.source == source, ConsulService.name == name)):
        return None
    _instance_states(instances, checks)
    flaps = flapping(engine, source, now)
    for inst in instances:
        for check in inst["checks"] + inst["node_checks"]:
            check["flapping"] = flaps.get((check["node"], check["check_id"]))
    tags = sorted({t for inst in instances for t in inst["tags"] or []})
    return {"name": name, "tags": tags, "instances": instances, "state": worst(i["state"] for i in instances),
            "transitions": changes}


def transitions(engine: Engine, source: str, service: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """State changes of checks, newest first: of one service's checks, or of all."""
    t = ConsulTransition
    query = select(t.node, t.check_id, t.service, t.from_status, t.to_status, t.at, t.output).where(t.source == source)
    if service is not None:
        query = query.where(t.service == service)
    return _rows(engine, query.order_by(t.at.desc(), t.id.desc()).limit(limit))


def flapping(engine: Engine, source: str, now: float | None = None, changes: int = FLAP_CHANGES,
             window: float = FLAP_WINDOW) -> dict[tuple[str, str], int]:
    """(node, check_id) -> status changes in the last `window` seconds, for checks with more than `changes`."""
    now = time.time() if now is None else now
    t = ConsulTransition
    query = (select(t.node, t.check_id, func.count().label("n"))
             .where(t.source == source, t.at >= now - window, t.from_status.is_not(None))
             .group_by(t.node, t.check_id).having(func.count() > changes))
    return {(r["node"], r["check_id"]): r["n"] for r in _rows(engine, query)}


def nodes(engine: Engine, source: str) -> list[dict[str, Any]]:
    """Nodes with their own checks (serfHealth...), the services on them and maintenance, worst first."""
    n, i, c = ConsulNode, ConsulInstance, ConsulCheck
    rows = _rows(engine, select(n.__table__).where(n.source == source).order_by(n.node))
    on_node: dict[str, list[str]] = {}
    for r in _rows(engine, select(i.node, i.service_id).where(i.source == source).order_by(i.service_id)):
        on_node.setdefault(r["node"], []).append(r["service_id"])
    node_checks: dict[str, list[dict]] = {}
    for r in _rows(engine, select(c.node, c.check_id, c.name, c.status, c.notes, c.changed_at,
                                  func.substr(c.output, 1, 300).label("output"))
                   .where(c.source == source, c.service_id == "").order_by(c.check_id)):
        node_checks.setdefault(r["node"], []).append(r)
    for row in rows:
        checks = node_checks.get(row["node"], [])
        maint = [ch for ch in checks if ch["check_id"] == NODE_MAINT]
        row["checks"] = [ch for ch in checks if ch["check_id"] != NODE_MAINT]
        row["services"] = on_node.get(row["node"], [])
        row["maintenance"] = maint[0]["notes"] if maint else None
        row["state"] = "maintenance" if maint else worst(ch["status"] for ch in row["checks"])
    return sorted(rows, key=lambda r: (STATES.index(r["state"]), r["node"]))


def critical_checks(engine: Engine, source: str, limit: int = 50) -> list[dict[str, Any]]:
    """Critical checks (maintenance left out), longest critical first: for "needs attention" lists."""
    c = ConsulCheck
    query = (select(c.node, c.check_id, c.service_id, c.service, c.name, c.changed_at,
                    func.substr(c.output, 1, 300).label("output"))
             .where(c.source == source, c.status == "critical", ~c.check_id.startswith(SERVICE_MAINT),
                    c.check_id != NODE_MAINT)
             .order_by(c.changed_at, c.node, c.check_id).limit(limit))
    return _rows(engine, query)


def instance(engine: Engine, source: str, service_id: str, node: str | None = None) -> list[dict[str, Any]]:
    """The stored instances with this service ID (on `node`, if given)."""
    i = ConsulInstance
    query = select(i.__table__).where(i.source == source, i.service_id == service_id)
    if node:
        query = query.where(i.node == node)
    return _rows(engine, query)

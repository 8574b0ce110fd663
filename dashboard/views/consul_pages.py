"""Consul pages: sources, services worst first (filtered), one service with its checks and history, nodes."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from dashboard.actions import REGISTRY
from dashboard.store import consul_queries as q
from dashboard.store.audit_log import AuditFilter, read_audit
from dashboard.views.consul_api import SPANS, service_filter

consul_pages = Blueprint("consul_pages", __name__)

# State -> (symbol, label): spelled out, never colour alone (static/js/consul_common.js agrees).
CHECK_STATES = {"passing": ("✓", "passing"), "warning": ("▲", "warning"), "critical": ("✕", "critical"),
                "maintenance": ("⏸", "maintenance")}
INLINE_CHARS = 400
INLINE_LINES = 12
UNDO_SHOWN = 20  # recent deregistrations of a service offered for undo
ACTIONS = ("consul.deregister", "consul.maintenance", "consul.node_maintenance", "consul.undo_deregister")


class NotFound(Exception):
    """An unknown source or service: answered with the 404 page saying which."""


@consul_pages.errorhandler(NotFound)
def not_found(exc: NotFound):
    return render_template("celery/not_found.html", page="consul", title="Not found", message=str(exc)), 404


def _runtime():
    return current_app.extensions["jobdash"]


def _sources() -> list:
    return [s for s in _runtime().settings.sources if s.kind == "consul"]


def _source(name: str):
    source = _runtime().settings.source("consul", name)
    if source is None:
        raise NotFound(f"There is no Consul source named {name!r}.")
    return source


def _common(source, tab: str, **extra: Any) -> dict[str, Any]:
    status = _runtime().overview_snapshot().get(source.key, {})
    return {"page": "consul", "source": source.name, "tab": tab, "states": CHECK_STATES, "status": status,
            "read_only": _runtime().settings.read_only, "socketio_path": request.script_root + "/socket.io",
            "inline_chars": INLINE_CHARS, "inline_lines": INLINE_LINES,
            "actions": {n: {"confirm": REGISTRY[n].confirm, "description": REGISTRY[n].description}
                        for n in ACTIONS if n in REGISTRY}, **extra}


def deregistrations(source: str, service: str) -> list[dict[str, Any]]:
    """Recent successful deregistrations of `service`'s instances, from the audit log, newest first."""
    rows = read_audit(_runtime().engine, AuditFilter(action="consul.deregister", outcome="ok"), limit=500)
    found = []
    for row in rows:
        recorded = (row["params"] or {}).get("recorded") or {}
        if row["source"] == f"consul/{source}" and (recorded.get("service") or {}).get("Service") == service:
            found.append({"id": row["id"], "ts": row["ts"], "user": row["user"], "target": row["target"],
                          "node": recorded.get("node") or ""})
    return found[:UNDO_SHOWN]


@consul_pages.get("/consul")
def index():
    sources = _sources()
    if len(sources) == 1:
        return redirect(url_for("consul_pages.services", source=sources[0].name))
    statuses = _runtime().overview_snapshot()
    cards = [{"name": s.name, "state": statuses.get(s.key, {}).get("state") or "unknown",
              "headline": statuses.get(s.key, {}).get("headline") or {}} for s in sources]
    return render_template("consul/index.html", page="consul", title="Consul", cards=cards)


@consul_pages.get("/consul/<source>")
def source_home(source: str):
    _source(source)
    return redirect(url_for("consul_pages.services", source=source))


@consul_pages.get("/consul/<source>/services")
def services(source: str):
    src = _source(source)
    error, status = None, 200
    try:
        flt = service_filter(request.args)
        rows = q.services(_runtime().engine, src.name, **flt)
    except q.QueryError as exc:
        error, status, flt, rows = str(exc), 400, {"name": "", "tag": "", "state": ""}, []
    return render_template("consul/services.html", **_common(src, "services", title=f"Services · {src.name}"),
                           services=rows, flt=flt, error=error, filter_states=q.STATES), status


@consul_pages.get("/consul/<source>/services/<path:name>")
def service(source: str, name: str):
    src = _source(source)
    detail = q.service(_runtime().engine, src.name, name)
    if detail is None:
        raise NotFound(f"No service {name!r} is known in Consul source {src.name!r}.")
    return render_template("consul/service.html", **_common(src, "services", title=f"{name} · {src.name}"),
                           service=detail, spans=SPANS, undo=deregistrations(src.name, name))


@consul_pages.get("/consul/<source>/nodes")
def nodes(source: str):
    src = _source(source)
    return render_template("consul/nodes.html", **_common(src, "nodes", title=f"Nodes · {src.name}"),
                           nodes=q.nodes(_runtime().engine, src.name))

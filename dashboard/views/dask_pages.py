"""Dask pages: sources, one live cluster page per source (workers, progress, erred tasks), an
erred task's page with its traceback, and history charts; with controls."""
from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, render_template, request

from dashboard.actions import REGISTRY
from dashboard.auth.web import requires_role
from dashboard.store import dask_queries as q
from dashboard.views.celery_pages import INLINE_CHARS, INLINE_LINES
from dashboard.views.dask_api import SPANS

dask_pages = Blueprint("dask_pages", __name__)

PAGE_SIZE = 50
ACTIONS = ("dask.retry", "dask.retry_selected", "dask.retry_prefix", "dask.retire_worker", "dask.restart_worker")
PREFIX_STATES = ("memory", "released", "erred", "processing", "waiting")  # the bar's segments, left to right
ERRED_STATES = {"erred": ("✕", "erred"), "retried": ("↻", "retried"), "memory": ("✓", "in memory"),
                "forgotten": ("?", "forgotten")}  # static/js/dask_cluster.js agrees
BLANK_WORKER = {"address": "", "name": None, "status": None, "nanny": None, "nthreads": 0, "memory_limit": None,
                "memory": 0, "managed": 0, "unmanaged": 0, "spilled": 0, "cpu": 0, "executing": 0, "ready": 0,
                "in_memory": 0, "last_seen": None, "gone": False, "gone_at": None}
BLANK_PREFIX = {"prefix": "", **dict.fromkeys(PREFIX_STATES, 0)}
BLANK_ERRED = {"key": "", "prefix": "", "worker": None, "erred_at": None, "exception": "", "traceback": "", "state": "erred"}


class NotFound(Exception):
    """An unknown source or task: answered with the 404 page saying which."""


@dask_pages.errorhandler(NotFound)
def not_found(exc: NotFound):
    return render_template("dask/not_found.html", page="dask", title="Not found", message=str(exc)), 404


def _runtime():
    return current_app.extensions["jobdash"]


def _source(name: str):
    source = _runtime().settings.source("dask", name)
    if source is None:
        raise NotFound(f"There is no Dask source named {name!r}.")
    return source


def _common(source, tab: str, **extra: Any) -> dict[str, Any]:
    status = _runtime().overview_snapshot().get(source.key, {})
    return {"page": "dask", "source": source.name, "tab": tab, "status": status,
            "read_only": _runtime().settings.read_only, "socketio_path": request.script_root + "/socket.io",
            "inline_chars": INLINE_CHARS, "inline_lines": INLINE_LINES, "erred_states": ERRED_STATES,
            "actions": {n: {"confirm": REGISTRY[n].confirm, "description": REGISTRY[n].description}
                        for n in ACTIONS if n in REGISTRY}, **extra}


@dask_pages.app_template_filter("bytes")
def human_bytes(value: float | None) -> str:
    """1.5 GiB / 812 MiB / 12 KiB (static/js/dask_cluster.js agrees)."""
    if value is None:
        return "–"
    value = float(value)
    for unit, scale in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


@dask_pages.get("/dask")
def index():
    runtime = _runtime()
    statuses = runtime.overview_snapshot()
    cards = []
    for source in (s for s in runtime.settings.sources if s.kind == "dask"):
        status = statuses.get(source.key, {})
        cards.append({"name": source.name, "state": status.get("state") or "unknown",
                      "headline": status.get("headline") or {},
                      "erred": q.erred_page(runtime.engine, source.name, limit=1, state="erred")["total"]})
    return render_template("dask/index.html", page="dask", title="Dask", cards=cards)


@dask_pages.get("/dask/<source>")
def cluster(source: str):
    src = _source(source)
    engine = _runtime().engine
    after = request.args.get("after") or None
    error, status = None, 200
    try:
        erred = q.erred_page(engine, src.name, after=after, limit=PAGE_SIZE)
    except q.QueryError as exc:
        error, status = str(exc), 400
        erred = {"tasks": [], "next": None, "total": 0, "total_capped": False}
    return render_template(
        "dask/cluster.html", **_common(src, "cluster", title=f"Dask · {src.name}"),
        cluster=q.cluster(engine, src.name) or {}, workers=q.workers(engine, src.name),
        prefixes=q.prefixes(engine, src.name), prefix_states=PREFIX_STATES, erred=erred, after=after,
        error=error, live_erred=after is None, blank_worker=BLANK_WORKER, blank_prefix=BLANK_PREFIX,
        blank_erred=BLANK_ERRED, now=time.time(),
    ), status


@dask_pages.get("/dask/<source>/erred/<path:key>")
def erred_task(source: str, key: str):
    src = _source(source)
    task = q.erred_task(_runtime().engine, src.name, key)
    if task is None:
        raise NotFound(f"No erred task {key!r} is known in Dask source {src.name!r} (or it was pruned).")
    texts = [(label, task.get(label)) for label in ("exception", "traceback") if task.get(label)]
    return render_template("dask/task.html", **_common(src, "cluster", title=f"{key} · {src.name}"), task=task,
                           texts=texts)


@dask_pages.get("/dask/<source>/history")
@requires_role("manager")
def history(source: str):
    src = _source(source)
    span = request.args.get("span", "1h")
    return render_template("dask/history.html", **_common(src, "history", title=f"History · {src.name}"),
                           spans=SPANS, span=span if span in SPANS else "1h")

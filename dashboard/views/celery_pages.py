"""Celery pages: sources, tasks (live, filtered, paged), task detail, workers, queues; with controls."""
from __future__ import annotations

import json
import logging
import math
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from dashboard.actions import REGISTRY
from dashboard.store import celery_queries as q
from dashboard.views.celery_api import parse_time
from dashboard.store.safe_values import finite, impossible, utc_moment
from dashboard.store.timeseries import read_series, series_labels

logger = logging.getLogger(__name__)

celery_pages = Blueprint("celery_pages", __name__)

PAGE_SIZE = 50
# State -> (symbol, label): spelled out, never colour alone (static/js/celery_common.js agrees).
TASK_STATES = {
    "PENDING": ("○", "pending"), "RECEIVED": ("◔", "received"), "STARTED": ("▶", "started"),
    "SUCCESS": ("✓", "success"), "FAILURE": ("✕", "failure"), "RETRY": ("↻", "retry"),
    "REVOKED": ("⊘", "revoked"), "REJECTED": ("⊗", "rejected"), "LOST": ("?", "lost"),
}
FINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED", "REJECTED")
RETRYABLE = ("FAILURE", "REVOKED")  # dashboard/actions/celery_tasks.py agrees
SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGUSR1")
LIFECYCLE = (("sent", "sent_at"), ("received", "received_at"), ("started", "started_at"),
             ("retried", "retried_at"), ("failed", "failed_at"), ("succeeded", "succeeded_at"),
             ("revoked", "revoked_at"), ("rejected", "rejected_at"))
# Text longer than this (or of more lines) is collapsed behind a <details> with its size.
INLINE_CHARS = 400
INLINE_LINES = 12
ARGS_SHORT = 80  # the task list's args column (static/js/celery_tasks.js agrees)
# The blank row static/js/celery_workers.js clones for a worker the page did not render.
BLANK_WORKER = {"hostname": "", "online": False, "last_heartbeat": None, "freq": None, "active": None,
                "processed": None, "loadavg": None, "info": None}
SPANS = {"1h": ("1 h", 3600), "24h": ("24 h", 86400), "7d": ("7 d", 7 * 86400)}


class NotFound(Exception):
    """An unknown source, task or worker: answered with the 404 page saying which."""


@celery_pages.errorhandler(NotFound)
def not_found(exc: NotFound):
    return render_template("celery/not_found.html", page="celery", title="Not found", message=str(exc)), 404


# -- helpers -----------------------------------------------------------------------------------

def _runtime():
    return current_app.extensions["jobdash"]


def _sources() -> list:
    return [s for s in _runtime().settings.sources if s.kind == "celery"]


def _source(name: str):
    source = _runtime().settings.source("celery", name)
    if source is None:
        raise NotFound(f"There is no Celery source named {name!r}.")
    return source


def _actions(*names: str) -> dict[str, dict[str, Any]]:
    """What the templates need of each action: whether it asks for confirmation, its description."""
    return {n: {"confirm": REGISTRY[n].confirm, "description": REGISTRY[n].description}
            for n in names if n in REGISTRY}


def _common(source, tab: str, **extra: Any) -> dict[str, Any]:
    return {"page": "celery", "source": source.name, "tab": tab, "states": TASK_STATES,
            "read_only": _runtime().settings.read_only, "socketio_path": request.script_root + "/socket.io",
            "inline_chars": INLINE_CHARS, "inline_lines": INLINE_LINES, **extra}


def page_filter(args) -> q.TaskFilter:
    """The task filter the query string asks for; QueryError says what is malformed."""
    state = (args.get("state") or "").strip().upper() or None
    if state and state not in q.STATES:
        raise q.QueryError(f"state: must be one of {', '.join(q.STATES)}; got {state!r}")
    flt = q.TaskFilter(state=state, name=args.get("name", "").strip() or None,
                       worker=args.get("worker", "").strip() or None, queue=args.get("queue", "").strip() or None,
                       since=parse_time("since", args.get("since", "")), until=parse_time("until", args.get("until", "")),
                       search=args.get("q", ""))
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        raise q.QueryError("since: must not be later than until")
    flt.terms = q.parse_search(flt.search)
    return flt


def api_query(flt: q.TaskFilter) -> str:
    """The same filter as /api/celery/<source>/tasks takes it (times as epoch seconds)."""
    params = {"state": flt.state, "name": flt.name, "worker": flt.worker, "queue": flt.queue,
              "since": repr(flt.since) if flt.since is not None else None,
              "until": repr(flt.until) if flt.until is not None else None, "q": flt.search or None,
              "limit": PAGE_SIZE}
    return urlencode({k: v for k, v in params.items() if v is not None})


def iso_utc(ts: float | None, timespec: str = "seconds") -> str:
    if ts is None:
        return ""
    moment = utc_moment(ts)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z") if moment else impossible(ts)


@celery_pages.app_template_filter("iso_ms")
def iso_ms(ts: float | None) -> str:
    return iso_utc(ts, "milliseconds")


@celery_pages.app_template_filter("secs")
def secs(value: float | None) -> str:
    """A duration, short: 850 ms / 1.25 s / 3 min 20 s / 2 h 5 min (static/js/celery_common.js agrees)."""
    if value is None:
        return "–"
    if finite(value) is None:
        return str(value)
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"


@celery_pages.app_template_filter("text_size")
def text_size(text: str | None) -> str:
    """The size of a text as a person reads it: 812 characters / 1.0 MiB (1,048,590 characters)."""
    n = len(text or "")
    if n < 10_000:
        return f"{n:,} characters"
    size = len((text or "").encode("utf-8", "surrogatepass"))
    human = f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"
    return f"{human} ({n:,} characters)"


@celery_pages.app_template_filter("json_text")
def json_text(value: Any) -> str:
    """A value inspect reported, as compact JSON text (for what is too deep to lay out)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@celery_pages.app_template_filter("shorten")
def shorten(text: str | None, limit: int = ARGS_SHORT) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def looks_cut(text: str | None) -> bool:
    """A repr Celery cut at its 1024-character limit: saferepr ends it with "..." before the closers."""
    return bool(text) and len(text) >= 1016 and text.rstrip("'\")]}, ").endswith("...")


def timeline(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's lifecycle events in time order, each with the time since the one before."""
    steps = sorted((task[col], label) for label, col in LIFECYCLE if task.get(col) is not None)
    out, previous = [], None
    for ts, label in steps:
        out.append({"label": label, "ts": ts, "since_previous": None if previous is None else ts - previous})
        previous = ts
    return out


def worker_summary(worker: dict[str, Any]) -> dict[str, Any]:
    """Pool, queues, prefetch and registered tasks out of whatever inspect put in `info`."""
    info = worker.get("info") if isinstance(worker.get("info"), dict) else {}
    stats = info.get("stats") if isinstance(info.get("stats"), dict) else info
    pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
    implementation = str(pool.get("implementation") or "")
    pool_type = implementation.split(":")[0].rsplit(".", 1)[-1] if implementation else None
    size = pool.get("max-concurrency")
    if size is None and isinstance(pool.get("processes"), list):
        size = len(pool["processes"])
    queues = []
    for item in info.get("queues") or info.get("active_queues") or []:
        name = item.get("name") if isinstance(item, dict) else item
        if name:
            queues.append(str(name))
    registered = info.get("registered") or []
    if isinstance(registered, dict):
        registered = list(registered)
    # inspect().registered("rate_limit", "time_limit") answers "name [rate_limit=10/m ...]".
    limits: dict[str, str] = {}
    for entry in registered:
        name, _, rest = str(entry).partition(" ")
        if name:
            limits[name] = rest.strip().strip("[]")
    drained = worker.get("drained") or []
    return {"pool_type": pool_type, "pool_size": size, "queues": queues, "prefetch": stats.get("prefetch_count"),
            "registered": sorted(limits), "limits": limits, "drained": drained}


def _failures_last_hour(source: str, now: float) -> int:
    return sum(row["failed"] for row in q.minute_stats(_runtime().engine, source, "name", now - 3600, now))


# -- pages -------------------------------------------------------------------------------------

@celery_pages.get("/celery")
def index():
    sources = _sources()
    if len(sources) == 1:
        return redirect(url_for("celery_pages.tasks", source=sources[0].name))
    now, runtime = time.time(), _runtime()
    statuses = runtime.overview_snapshot()
    cards = []
    for source in sources:
        workers = q.workers(runtime.engine, source.name, now)
        status = statuses.get(source.key, {})
        cards.append({"name": source.name, "state": status.get("state") or "unknown",
                      "online": sum(1 for w in workers if w["online"]), "workers": len(workers),
                      "active": sum(w["active"] or 0 for w in workers if w["online"]),
                      "queued": (status.get("headline") or {}).get("queued"),
                      "failures": _failures_last_hour(source.name, now)})
    return render_template("celery/index.html", page="celery", title="Celery", cards=cards)


@celery_pages.get("/celery/<source>")
def source_home(source: str):
    _source(source)
    return redirect(url_for("celery_pages.tasks", source=source))


@celery_pages.get("/celery/<source>/tasks")
def tasks(source: str):
    src = _source(source)
    args = request.args
    after = args.get("after") or None
    error, status = None, 200
    try:
        flt = page_filter(args)
        listing = q.task_page(_runtime().engine, src.name, flt, after=after, limit=PAGE_SIZE)
    except q.QueryError as exc:
        error, status = str(exc), 400
        flt, listing = q.TaskFilter(), {"tasks": [], "next": None, "total": 0, "total_capped": False}
    now = time.time()
    kept = {k: v for k, v in args.items() if k in ("state", "name", "worker", "queue", "since", "until", "q") and v}
    # The bulk retry's range: the list's own, else the last hour.
    # Shown to the second: round outwards, or a task of the last second would fall outside.
    bulk = {"name": flt.name or "", "since": iso_utc(math.floor(flt.since if flt.since is not None else now - 3600)),
            "until": iso_utc(math.ceil(flt.until if flt.until is not None else now))}
    return render_template(
        "celery/tasks.html", **_common(src, "tasks", title=f"Tasks · {src.name}"),
        tasks=listing["tasks"], total=listing["total"], total_capped=listing["total_capped"],
        next_cursor=listing["next"], after=after, args=args, kept=kept, error=error, task_states=q.STATES,
        live=after is None and error is None, api_query=api_query(flt) if error is None else "",
        bulk=bulk, blank_task=dict.fromkeys(q.LIST_COLUMNS) | {"uuid": "", "state": "PENDING"},
        actions=_actions("celery.retry_selected", "celery.retry_failures"),
    ), status


@celery_pages.get("/celery/<source>/tasks/<uuid>")
def task(source: str, uuid: str):
    src = _source(source)
    detail = q.task_detail(_runtime().engine, src.name, uuid)
    if detail is None:
        raise NotFound(f"No task {uuid!r} is known in Celery source {src.name!r}: jobdash has seen no event of it "
                       "(or it was pruned from the history).")
    texts = [(label, detail.get(key)) for label, key in
             (("args", "args"), ("kwargs", "kwargs"), ("result", "result"), ("exception", "exception"),
              ("traceback", "traceback"))]
    return render_template(
        "celery/task.html", **_common(src, "tasks", title=f"Task {uuid} · {src.name}"),
        task=detail, steps=timeline(detail), texts=texts, signals=SIGNALS,
        # args_truncated is the store's verdict; a result is cut by the worker the same way.
        cut={"args": bool(detail["args_truncated"]), "kwargs": bool(detail["args_truncated"]),
             "result": looks_cut(detail.get("result"))},
        retryable=detail["state"] in RETRYABLE, running=detail["state"] not in FINAL_STATES,
        actions=_actions("celery.retry", "celery.revoke", "celery.terminate"),
    )


@celery_pages.get("/celery/<source>/workers")
def workers(source: str):
    src = _source(source)
    rows = q.workers(_runtime().engine, src.name)
    for w in rows:
        w["summary"] = worker_summary(w)
    return render_template("celery/workers.html", **_common(src, "workers", title=f"Workers · {src.name}"),
                           workers=rows, blank_worker=BLANK_WORKER | {"summary": worker_summary({})})


@celery_pages.get("/celery/<source>/workers/<hostname>")
def worker(source: str, hostname: str):
    src = _source(source)
    found = [w for w in q.workers(_runtime().engine, src.name) if w["hostname"] == hostname]
    if not found:
        raise NotFound(f"No worker {hostname!r} is known in Celery source {src.name!r}.")
    w = found[0]
    w["summary"] = worker_summary(w)
    info = {k: v for k, v in (w.get("info") or {}).items() if k not in ("registered",)}
    return render_template(
        "celery/worker.html", **_common(src, "workers", title=f"{hostname} · {src.name}"),
        worker=w, info=info, actions=_actions(
            "celery.drain", "celery.resume", "celery.pool_grow", "celery.pool_shrink", "celery.autoscale",
            "celery.pool_restart", "celery.shutdown", "celery.rate_limit", "celery.time_limit"),
    )


@celery_pages.get("/celery/<source>/queues")
def queues(source: str):
    src = _source(source)
    span = request.args.get("span", "1h")
    if span not in SPANS:
        span = "1h"
    until = time.time()
    since = until - SPANS[span][1]
    engine, key = _runtime().engine, f"celery/{src.name}"
    depths = []
    for label in series_labels(engine, key, "queue_depth"):
        latest = read_series(engine, key, "queue_depth", label, until - 3600, until, step=0)
        depths.append({"queue": label, "depth": latest[-1]["value"] if latest else None,
                       "at": latest[-1]["ts"] if latest else None})
    return render_template(
        "celery/queues.html", **_common(src, "queues", title=f"Queues · {src.name}"),
        spans=SPANS, span=span, since=since, until=until, depths=depths, names=q.totals_by_name(_runtime().engine, src.name, since, until),
    )


"""HTML pages: the overview, the navigation and the filters every page template shares."""
from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from dashboard.store.safe_values import finite, impossible, utc_moment

pages = Blueprint("pages", __name__)

# (path, label) in navigation order; each link goes to whatever view serves that path.
NAV = [
    ("/", "Overview"),
    ("/celery", "Celery"),
    ("/dask", "Dask"),
    ("/kafka", "Kafka"),
    ("/consul", "Consul"),
    ("/history", "History"),
    ("/audit", "Audit"),
]

# Links shown only when a source of that kind is configured (the demo has no Consul agent to watch).
NEEDS_SOURCE = {"/consul": "consul"}

# State -> (symbol, label): the state is always spelled out, never shown by colour alone.
STATES = {"up": ("●", "up"), "degraded": ("▲", "degraded"), "down": ("✕", "down"), "unknown": ("?", "unknown")}

# The blank card that static/js/overview.js clones for a source the page did not render.
BLANK_ITEM = {
    "kind": "", "name": "", "state": "unknown", "updated_at": None, "last_success_at": None,
    "last_error": None, "last_error_at": None, "last_poll_ms": None, "headline": {},
}

# Errors longer than this, or spanning lines, are collapsed behind a <details>.
ERROR_INLINE_MAX = 100


@pages.app_context_processor
def layout_context() -> dict[str, Any]:
    return {"nav": _nav(), "server_now": time.time()}


def _nav() -> list[dict[str, Any]]:
    """The navigation links, each with the endpoint that serves it (for the template's role check)."""
    adapter = current_app.create_url_adapter(request)
    kinds = {s.kind for s in current_app.extensions["jobdash"].settings.sources}
    links = []
    for path, label in NAV:
        if path in NEEDS_SOURCE and NEEDS_SOURCE[path] not in kinds:
            continue
        try:
            endpoint, _args = adapter.match(path, method="GET")
        except HTTPException:
            continue
        links.append({"href": request.script_root + path, "label": label, "endpoint": endpoint,
                      "current": request.path == path or (path != "/" and request.path.startswith(path + "/"))})
    return links


@pages.app_template_filter("ago")
def ago(ts: float | None, now: float | None = None) -> str:
    """'12 s ago' style age of an epoch timestamp; 'never' for None (static/js/overview.js agrees)."""
    if ts is None:
        return "never"
    if utc_moment(ts) is None:
        return impossible(ts)
    age = max(0, int((now or time.time()) - float(ts)))
    if age < 60:
        return f"{age} s ago"
    if age < 3600:
        return f"{age // 60} min ago"
    if age < 86400:
        return f"{age // 3600} h ago"
    return f"{age // 86400} d ago"


@pages.app_template_filter("iso")
def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    moment = utc_moment(ts)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else impossible(ts)


@pages.app_template_filter("num")
def num(value: Any) -> str:
    """A headline value, short: 1,203 / 0.50 / 51.2M (static/js/overview.js agrees)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(value, (int, float)) or finite(value) is None:
        return str(value)
    if abs(value) >= 100_000:
        for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= scale:
                short = value / scale
                digits = 0 if abs(short) >= 100 else 1 if abs(short) >= 10 else 2
                return f"{short:.{digits}f}{unit}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


@pages.get("/")
def overview():
    runtime = current_app.extensions["jobdash"]
    sources = runtime.overview_snapshot()
    counts = {state: 0 for state in STATES}
    for item in sources.values():
        counts[item.get("state") if item.get("state") in STATES else "unknown"] += 1
    return render_template(
        "overview.html", page="overview", sources=sources, counts=counts, states=STATES,
        blank=BLANK_ITEM, error_inline_max=ERROR_INLINE_MAX,
        socketio_path=request.script_root + "/socket.io",
    )

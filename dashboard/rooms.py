"""The live rooms: what each page gets on join (snapshot) and which store writes reach it (deltas)."""
from __future__ import annotations

from typing import Any

from dashboard.live import LiveHub
from dashboard.store import celery_queries
from dashboard.store.celery_ingest import EVENT_STATE


def status_deltas(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {"overview": {f"{s['kind']}/{s['name']}": s for s in statuses}}


def celery_deltas(events: list[tuple[str, dict]]) -> dict[str, dict[str, Any]]:
    """Task and worker changes per Celery source room; the page re-reads its list from the API."""
    rooms: dict[str, dict[str, Any]] = {}
    for source, ev in events:
        etype = ev.get("type", "")
        items = rooms.setdefault(f"celery/{source}", {})
        if etype in EVENT_STATE and ev.get("uuid"):
            items[f"task:{ev['uuid']}"] = {"uuid": ev["uuid"], "state": EVENT_STATE[etype], "state_at": ev.get("timestamp"),
                                           "name": ev.get("name"), "worker": ev.get("hostname")}
        elif etype.startswith("worker-") and ev.get("hostname"):
            items[f"worker:{ev['hostname']}"] = {
                "hostname": ev["hostname"], "online": etype != "worker-offline", "last_heartbeat": ev.get("timestamp"),
                "freq": ev.get("freq"), "active": ev.get("active"), "processed": ev.get("processed"),
                "loadavg": ev.get("loadavg")}
    return rooms


def retry_deltas(links: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tasks jobdash just re-sent, so the original's page shows "Retried as" without a reload.

    Keyed "retry:<uuid>": the new task's own events, coalesced under "task:<uuid>", must not replace it.
    """
    rooms: dict[str, dict[str, Any]] = {}
    for link in links:
        rooms.setdefault(f"celery/{link['source']}", {})[f"retry:{link['uuid']}"] = {
            "uuid": link["uuid"], "state": "PENDING", "state_at": link["at"], "first_seen_at": link["at"],
            "name": link["name"], "queue": link["queue"], "retry_of": link["retry_of"]}
    return rooms


def celery_snapshot(runtime, source: str) -> dict[str, Any]:
    items: dict[str, Any] = {f"worker:{w['hostname']}": w for w in celery_queries.workers(runtime.engine, source)}
    page = celery_queries.task_page(runtime.engine, source, celery_queries.TaskFilter(), limit=50)
    items.update({f"task:{t['uuid']}": t for t in page["tasks"]})
    return items


def register_rooms(hub: LiveHub, runtime) -> None:
    """Open a room per page: the overview, and one per Celery source."""
    hub.add_room("overview", runtime.overview_snapshot)
    hub.add_translator("source_status", status_deltas)
    hub.add_translator("celery_event", celery_deltas)
    hub.add_translator("celery_retry_link", retry_deltas)
    for source in runtime.settings.sources:
        if source.kind == "celery":
            hub.add_room(f"celery/{source.name}", lambda name=source.name: celery_snapshot(runtime, name))

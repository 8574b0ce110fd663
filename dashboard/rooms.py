"""The live rooms: what each page gets on join (snapshot) and which store writes reach it (deltas)."""
from __future__ import annotations

from typing import Any

from dashboard import audit_room, consul_rooms, dask_rooms
from dashboard.live import LiveHub, Translator
from dashboard.store import celery_queries, kafka_queries
from dashboard.store.celery_ingest import EVENT_STATE


def status_deltas(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {"overview": {f"{s['kind']}/{s['name']}": s for s in statuses}}


def celery_deltas(runtime) -> Translator:
    """Task and worker changes per Celery source room.

    A task's item is its stored row, read right after the commit: the events of a batch may
    disagree with what the store kept (a producer's late task-sent must not turn a finished task
    back to PENDING), and the row is what any later snapshot or page read shows.
    """

    def translate(events: list[tuple[str, dict]]) -> dict[str, dict[str, Any]]:
        rooms: dict[str, dict[str, Any]] = {}
        touched: dict[str, set[str]] = {}
        for source, ev in events:
            if not isinstance(ev, dict):  # nothing the store took (see store.celery_sanitize)
                continue
            etype = ev.get("type", "")
            items = rooms.setdefault(f"celery/{source}", {})
            if etype in EVENT_STATE and ev.get("uuid"):
                touched.setdefault(source, set()).add(ev["uuid"])
            elif etype.startswith("worker-") and ev.get("hostname"):
                items[f"worker:{ev['hostname']}"] = {
                    "hostname": ev["hostname"], "online": etype != "worker-offline", "last_heartbeat": ev.get("timestamp"),
                    "freq": ev.get("freq"), "active": ev.get("active"), "processed": ev.get("processed"),
                    "loadavg": ev.get("loadavg")}
        for source, uuids in touched.items():
            rows = celery_queries.list_rows(runtime.engine, source, sorted(uuids))
            rooms[f"celery/{source}"].update({f"task:{t['uuid']}": t for t in rows})
        return {room: items for room, items in rooms.items() if items}

    return translate


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


def kafka_deltas(states: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each poll's groups per Kafka source room (groups gone since the last poll: null); pages
    showing partitions re-read them from the API when their group changes."""
    rooms: dict[str, dict[str, Any]] = {}
    for state in states:
        items = rooms.setdefault(f"kafka/{state['source']}", {})
        items.update({f"group:{name}": None for name in state.get("removed") or []})
        items.update({f"group:{g['group']}": g for g in state["groups"]})
    return rooms


def kafka_snapshot(runtime, source: str) -> dict[str, Any]:
    return {f"group:{g['group']}": g for g in kafka_queries.groups(runtime.engine, source)}


def register_rooms(hub: LiveHub, runtime) -> None:
    """Open a room per page: the overview, the audit page, and one per Celery and per Kafka source."""
    hub.add_room("overview", runtime.overview_snapshot)
    hub.add_translator("source_status", status_deltas)
    hub.add_translator("celery_event", celery_deltas(runtime))
    hub.add_translator("celery_retry_link", retry_deltas)
    hub.add_translator("kafka_state", kafka_deltas)
    for source in runtime.settings.sources:
        if source.kind == "celery":
            hub.add_room(f"celery/{source.name}", lambda name=source.name: celery_snapshot(runtime, name))
        if source.kind == "kafka":
            hub.add_room(f"kafka/{source.name}", lambda name=source.name: kafka_snapshot(runtime, name))
    dask_rooms.register(hub, runtime)
    consul_rooms.register(hub, runtime)
    audit_room.register(hub, runtime)

"""The Dask rooms: one per source, with the cluster, workers, prefixes and newest erred tasks."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dashboard.store import dask_queries
from dashboard.store.dask_models import DaskErred

PREVIEW = dask_queries.PREVIEW_CHARS


def room(source: str) -> str:
    return f"dask/{source}"


def poll_deltas(polls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cluster, workers and prefixes of each poll; the cluster item names who is still there, so
    the page marks the other workers gone and drops prefixes the scheduler no longer holds."""
    rooms: dict[str, dict[str, Any]] = {}
    for poll in polls:
        items = rooms.setdefault(room(poll["source"]), {})
        at = poll["at"]
        items["cluster"] = {**poll["cluster"], "updated_at": at, "present_workers": [w["address"] for w in poll["workers"]],
                            "present_prefixes": list(poll["prefixes"])}
        for w in poll["workers"]:
            items[f"worker:{w['address']}"] = {**w, "gone": False, "gone_at": None, "updated_at": at}
        for name, counts in poll["prefixes"].items():
            items[f"prefix:{name}"] = {"prefix": name, **counts, "updated_at": at}
    return rooms


def erred_item(task: dict[str, Any], state: str = "erred") -> dict[str, Any]:
    return {"key": task["key"], "prefix": task["prefix"], "worker": task["worker"], "erred_at": task["stop"],
            "exception": (task["exception"] or "")[:PREVIEW],
            "traceback": (task["traceback"] or "")[:dask_queries.TRACEBACK_PREVIEW], "state": state, "state_at": task["stop"]}


def task_deltas(engine, batches: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """New erred tasks; and erred tasks this batch saw finish (a retry that worked), which the
    store has just marked in memory."""
    rooms: dict[str, dict[str, Any]] = {}
    for batch in batches:
        items = rooms.setdefault(room(batch["source"]), {})
        finished: dict[str, dict[str, Any]] = {}
        for task in batch["tasks"]:
            if task["erred"]:
                items[f"erred:{task['key']}"] = erred_item(task)
            else:
                finished[task["key"]] = task
        stops = [t["stop"] for t in finished.values() if t["stop"] is not None]
        if stops:
            for key, state_at in _now_in_memory(engine, batch["source"], min(stops)):
                if key in finished:
                    items[f"erred:{key}"] = {"key": key, "state": "memory", "state_at": state_at}
    return rooms


def _now_in_memory(engine, source: str, since: float) -> list[tuple[str, float]]:
    """Erred tasks marked in memory by a success stopping at or after `since` (few: retries only)."""
    t = DaskErred
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(t.key, t.state_at).where(t.source == source, t.state == "memory", t.state_at >= since))]


def retried_deltas(marks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rooms: dict[str, dict[str, Any]] = {}
    for mark in marks:
        items = rooms.setdefault(room(mark["source"]), {})
        for key in mark["keys"]:
            items[f"erred:{key}"] = {"key": key, "state": mark["state"], "state_at": mark["at"]}
    return rooms


def snapshot(engine, source: str) -> dict[str, Any]:
    items: dict[str, Any] = {}
    cluster = dask_queries.cluster(engine, source)
    if cluster is not None:
        items["cluster"] = cluster
    items.update({f"worker:{w['address']}": w for w in dask_queries.workers(engine, source)})
    items.update({f"prefix:{p['prefix']}": p for p in dask_queries.prefixes(engine, source)})
    page = dask_queries.erred_page(engine, source, limit=50)
    items.update({f"erred:{t['key']}": t for t in page["tasks"]})
    return items


def register(hub, runtime) -> None:
    """Open a room per Dask source and translate the Dask store writes into its deltas."""
    hub.add_translator("dask_poll", poll_deltas)
    hub.add_translator("dask_tasks", lambda batches: task_deltas(runtime.engine, batches))
    hub.add_translator("dask_retried", retried_deltas)
    for source in runtime.settings.sources:
        if source.kind == "dask":
            hub.add_room(room(source.name), lambda name=source.name: snapshot(runtime.engine, name))

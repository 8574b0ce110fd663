"""Reading a Celery result backend: one task's end, or every task that ended within a span."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from celery import Celery

logger = logging.getLogger(__name__)

FINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED")


class Unlistable(Exception):
    """This backend cannot say which tasks ended in a span (RPC, none, or not supported)."""


def settled(meta: dict[str, Any]) -> dict[str, Any] | None:
    """What a final backend record says of its task, as columns of a stored task; None if not final."""
    if meta.get("status") not in FINAL_STATES:
        return None
    failed = meta["status"] == "FAILURE"
    out = {"state": meta["status"], "result": None if failed else repr(meta.get("result")),
           "exception": repr(meta.get("result")) if failed else None, "traceback": meta.get("traceback"),
           "done_at": done_at(meta)}
    # With result_extended the backend also knows what ran where.
    for key in ("name", "worker", "queue", "retries"):
        if meta.get(key) is not None:
            out[key] = meta[key]
    for key in ("args", "kwargs"):
        if meta.get(key) is not None:
            out[key] = meta[key] if isinstance(meta[key], str) else repr(meta[key])
    return out


def done_at(meta: dict[str, Any]) -> float | None:
    value = meta.get("date_done")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def lookup(app: Celery, task_id: str) -> dict[str, Any] | None:
    """The task's end as the backend knows it, or None (unknown, not final, or backend down)."""
    if not app.conf.result_backend:
        return None
    try:
        return settled(app.AsyncResult(task_id)._get_task_meta() or {})
    except Exception as exc:  # noqa: BLE001 - the backend being down leaves the task as it is
        logger.info("backend lookup of %s failed: %s", task_id, exc)
        return None


def list_ended(app: Celery, cursor: Any, count: int = 1000) -> tuple[list[tuple[str, dict]], Any]:
    """One step through every task the backend holds: ([(task id, settled)], next cursor or None when done).

    Redis is walked with SCAN (a cursor that survives writes), a database backend by row id.
    """
    if not app.conf.result_backend:
        raise Unlistable("no result backend is configured")
    backend = app.backend
    scheme = str(app.conf.result_backend).split(":", 1)[0]
    if hasattr(backend, "client") and hasattr(backend, "task_keyprefix") and scheme.startswith(("redis", "rediss", "sentinel")):
        prefix = backend.task_keyprefix
        prefix = prefix.decode() if isinstance(prefix, bytes) else prefix
        cursor, keys = backend.client.scan(cursor or 0, match=f"{prefix}*", count=count)
        found = []
        for key, raw in zip(keys, backend.client.mget(keys) if keys else []):
            end = settled(backend.decode_result(raw)) if raw else None
            if end is not None:
                key = key.decode() if isinstance(key, bytes) else key
                found.append((key[len(prefix):], end))
        return found, (cursor or None)
    if scheme.startswith("db+"):
        after = cursor or 0
        session = backend.ResultSession()
        try:
            rows = (session.query(backend.task_cls.id, backend.task_cls.task_id)
                    .filter(backend.task_cls.id > after).order_by(backend.task_cls.id).limit(count).all())
        finally:
            session.close()
        found = [(task_id, end) for _id, task_id in rows if (end := settled(backend._get_task_meta_for(task_id)))]
        return found, (rows[-1][0] if len(rows) == count else None)
    raise Unlistable(f"the {scheme}:// result backend cannot be listed")

"""The texts a task refers to by id (see CeleryName): giving ids on the way in, texts on the way out."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Label, bindparam, select, text
from sqlalchemy.engine import Connection

from dashboard.store.celery_models import CeleryName, CeleryTask

# Task fields stored as an id into celery_names, in column <field>_id.
NAMED = ("name", "worker", "queue", "routing_key")
ID_COLUMN = {field: f"{field}_id" for field in NAMED}

_FOUND = select(CeleryName.id, CeleryName.value).where(CeleryName.value.in_(bindparam("values", expanding=True)))
_ADD = text("INSERT INTO celery_names (value) VALUES (:value) ON CONFLICT (value) DO NOTHING")


def _found(conn: Connection, values: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i in range(0, len(values), 500):
        ids.update((v, k) for k, v in conn.execute(_FOUND, {"values": values[i:i + 500]}))
    return ids


def ids_of(conn: Connection, values: Iterable[str]) -> dict[str, int]:
    """The id of each text, stored first if new. Looked up per batch, never cached: a batch that
    rolls back takes its new ids with it."""
    wanted = sorted(set(values))
    ids = _found(conn, wanted)
    missing = [v for v in wanted if v not in ids]
    if missing:
        conn.execute(_ADD, [{"value": v} for v in missing])
        ids |= _found(conn, missing)
    return ids


def add_ids(conn: Connection, rows: list[dict]) -> None:
    """Give each row the ids (keys `name_id`, ...) of the NAMED texts it holds (keys `name`, ...)."""
    ids = ids_of(conn, (row[f] for row in rows for f in NAMED if row.get(f) is not None))
    for row in rows:
        for field in NAMED:
            if row.get(field) is not None:
                row[ID_COLUMN[field]] = ids[row[field]]


def text_of(field: str) -> Label:
    """A task's `field` as text, as a column of a select over celery_tasks."""
    return (select(CeleryName.value).where(CeleryName.id == getattr(CeleryTask, ID_COLUMN[field]))
            .scalar_subquery().label(field))


def where_text(field: str, condition) -> ColumnElement:
    """Tasks whose `field`'s text meets `condition` (on CeleryName.value)."""
    return getattr(CeleryTask, ID_COLUMN[field]).in_(select(CeleryName.id).where(condition))


def where_named(field: str, value: str) -> ColumnElement:
    """Tasks whose `field` is `value`: an equality on the id, which an index on it serves."""
    return getattr(CeleryTask, ID_COLUMN[field]) == select(CeleryName.id).where(CeleryName.value == value).scalar_subquery()

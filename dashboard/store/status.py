"""Source status: what each collector last saw of its source."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from dashboard.store.db import upsert
from dashboard.store.models import SourceStatus

COLUMNS = ("state", "updated_at", "last_success_at", "last_error", "last_error_at", "last_poll_ms", "headline")


def write_statuses(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Upsert source status rows; the last payload for a source wins."""
    latest = {(p["kind"], p["name"]): p for p in payloads}
    stmt = upsert(conn, SourceStatus.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "name"], set_={c: getattr(stmt.excluded, c) for c in COLUMNS}
    )
    conn.execute(stmt, [{"kind": k, "name": n, **{c: p.get(c) for c in COLUMNS}} for (k, n), p in latest.items()])


def read_statuses(engine: Engine) -> list[dict[str, Any]]:
    """Every stored source status as plain dicts, ordered by kind and name."""
    with engine.connect() as conn:
        rows = conn.execute(select(SourceStatus.__table__).order_by(SourceStatus.kind, SourceStatus.name)).mappings()
        return [dict(r) for r in rows]


HANDLERS = {"source_status": write_statuses}

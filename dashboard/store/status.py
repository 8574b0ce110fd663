"""Source status: what each collector last saw of its source."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from dashboard.store.availability import record_transitions
from dashboard.store.db import upsert_rows
from dashboard.store.models import SourceStatus

COLUMNS = ("state", "updated_at", "last_success_at", "last_error", "last_error_at", "last_poll_ms", "headline")


def write_statuses(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Upsert source status rows; the last payload for a source wins."""
    record_transitions(conn, payloads)
    latest = {(p["kind"], p["name"]): p for p in payloads}
    rows = [(kind, name, *(json.dumps(p.get(c) or {}) if c == "headline" else p.get(c) for c in COLUMNS))
            for (kind, name), p in latest.items()]
    upsert_rows(conn, SourceStatus.__table__, ("kind", "name"), ("kind", "name", *COLUMNS), rows)


def read_statuses(engine: Engine) -> list[dict[str, Any]]:
    """Every stored source status as plain dicts, ordered by kind and name."""
    with engine.connect() as conn:
        rows = conn.execute(select(SourceStatus.__table__).order_by(SourceStatus.kind, SourceStatus.name)).mappings()
        return [dict(r) for r in rows]


HANDLERS = {"source_status": write_statuses}

"""The audit page's live room (admins only): each audit row the store commits, as the page shows it.

The page applies its own filters to what arrives: the room is one for all admins, whatever they filter.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dashboard.live import LiveHub
from dashboard.store.audit_log import fit_row, params_text, row_key
from dashboard.store.models import AuditEntry
from dashboard.views.pages import iso

ROOM = "audit"
ROLE = "admin"  # the least role SocketGuard lets into the room, as for the page itself
SNAPSHOT_ROWS = 50  # on (re)join: enough to fill a gap left by a short disconnect


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row's cells as templates/audit.html renders them."""
    return {**{k: row[k] for k in ("ts", "user", "role", "via", "action", "source", "target", "outcome")},
            "time": iso(row["ts"]), "params_text": params_text(row["params"]), "error": row["error"] or ""}


def audit_deltas(payloads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rows = [fit_row(p) for p in payloads]
    return {ROOM: {row_key(r): shown(r) for r in rows}} if rows else {}


def audit_snapshot(runtime) -> dict[str, Any]:
    table = AuditEntry.__table__
    query = select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(SNAPSHOT_ROWS)
    with runtime.engine.connect() as conn:
        return {row_key(r): shown(r) for r in map(dict, conn.execute(query).mappings())}


def register(hub: LiveHub, runtime) -> None:
    hub.add_translator("audit", audit_deltas)
    hub.add_room(ROOM, lambda: audit_snapshot(runtime))

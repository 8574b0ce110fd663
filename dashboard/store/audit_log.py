"""The audit log: one row per action asked for, only ever added to."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, insert, select
from sqlalchemy.engine import Connection, Engine

from dashboard.store.models import AuditEntry

# Parameters are stored as given; beyond this size (as JSON) only a cut-down text is kept.
PARAMS_MAX_CHARS = 8000
# Column -> its length, so that over-long text (anyone can type a long name) is cut, not refused.
_LENGTHS = {c.name: c.type.length for c in AuditEntry.__table__.columns if isinstance(c.type, String) and c.type.length}


def fit_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row as stored: over-long text cut, parameters made JSON (a live page shows the same)."""
    fitted = {key: (value[:_LENGTHS[key]] if key in _LENGTHS and isinstance(value, str) else value)
              for key, value in row.items()}
    text = json.dumps(fitted["params"], default=str)
    if len(text) > PARAMS_MAX_CHARS:
        fitted["params"] = {"_truncated": text[:PARAMS_MAX_CHARS]}
    else:
        # Round-trip so that anything JSON cannot hold becomes text here, not an error in the batch.
        fitted["params"] = json.loads(text)
    return fitted


def write_audit(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    conn.execute(insert(AuditEntry), [fit_row(p) for p in payloads])


HANDLERS = {"audit": write_audit}


def row_key(row: dict[str, Any]) -> str:
    """The same key for a row just committed (no id yet) and read back: the page and its live room share it."""
    return f"{row['ts']!r}|{row['user']}|{row['action']}|{row['target']}"


def params_text(params: Any) -> str:
    """Parameters as the audit page and its CSV show them."""
    return json.dumps(params, ensure_ascii=False, sort_keys=True, default=str) if params else ""


def audit_row(*, user: str, role: str, via: str, action: str, outcome: str, source: str = "", target: str = "",
              params: Any = None, error: str | None = None) -> dict[str, Any]:
    """The payload of one "audit" write, stamped now."""
    return {"ts": time.time(), "user": user, "role": role, "via": via, "source": source or "", "action": action,
            "target": target or "", "params": {} if params is None else params, "outcome": outcome, "error": error}


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page asks for; empty fields match everything."""

    user: str = ""
    action: str = ""
    outcome: str = ""
    since: float | None = None
    until: float | None = None


def read_audit(engine: Engine, where: AuditFilter, limit: int = 500) -> list[dict[str, Any]]:
    """Matching rows, newest first, at most `limit`."""
    query = select(AuditEntry.__table__)
    if where.user:
        query = query.where(AuditEntry.user == where.user)
    if where.action:
        query = query.where(AuditEntry.action == where.action)
    if where.outcome:
        query = query.where(AuditEntry.outcome == where.outcome)
    if where.since is not None:
        query = query.where(AuditEntry.ts >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.ts < where.until)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(AuditEntry.ts.desc(), AuditEntry.id.desc()).limit(limit)).mappings()
        return [dict(r) for r in rows]


def audit_entry(engine: Engine, entry_id: int) -> dict[str, Any] | None:
    """One row by its id (e.g. the deregistration an undo puts back), or None."""
    with engine.connect() as conn:
        row = conn.execute(select(AuditEntry.__table__).where(AuditEntry.id == entry_id)).mappings().first()
        return dict(row) if row else None

"""What the database holds: its size, rows and oldest row per table, and whether its pages are sound."""
from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dashboard.store.models import Base

# Table -> its time column: the oldest row says whether retention keeps up.
TIME_COLUMNS = {"samples": "ts", "rollups": "bucket", "celery_tasks": "first_seen_at", "celery_minutes": "bucket",
                "audit_log": "ts", "store_gaps": "started_at"}
# Tables whose time index leads with the source: asked per source so the index answers.
BY_SOURCE = ("celery_tasks", "celery_minutes")


def db_size(engine: Engine) -> int:
    """Bytes on disk: the SQLite file with its WAL, or PostgreSQL's database size."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()


def oldest_rows(engine: Engine, celery_sources: list[str]) -> dict[str, float | None]:
    """The oldest timestamp kept in each time-keyed table (None when empty); each answered by an index."""
    out: dict[str, float | None] = {}
    with engine.connect() as conn:
        for table, column in TIME_COLUMNS.items():
            if table in BY_SOURCE:
                found = [conn.execute(text(f"SELECT MIN({column}) FROM {table} WHERE source = :s"), {"s": s}).scalar()
                         for s in celery_sources]
                found = [f for f in found if f is not None]
                out[table] = min(found) if found else None
            else:
                out[table] = conn.execute(text(f"SELECT MIN({column}) FROM {table}")).scalar()
    return out


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in sorted(Base.metadata.tables)}


def integrity(engine: Engine) -> list[str]:
    """Problems found by a full integrity check (SQLite); empty when sound."""
    if engine.dialect.name != "sqlite":
        return []
    with engine.connect() as conn:
        rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows

"""Engine creation: SQLite in WAL mode for the embedded default, PostgreSQL when configured."""
from __future__ import annotations

import logging

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from dashboard.store.checkpoint import WRITER_CHECKPOINT_PAGES

logger = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers proceed while the single writer commits; busy_timeout covers the
    # brief checkpoint moments instead of surfacing "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # 16 MiB of page cache per connection instead of 2: a month of one metric's hours spans a
    # page per hour, and re-reading them from the OS cost a History chart half its time.
    cur.execute("PRAGMA cache_size=-16384")
    # The store writer's Checkpointer copies the log back; a committing connection only does so
    # itself past this many pages (see dashboard.store.checkpoint).
    cur.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create the engine for `url` with the settings jobdash relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def insert_rows(conn, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert positional rows with the driver's executemany: the hot path for history samples,
    where SQLAlchemy's per-row parameter processing would cost more than SQLite's own work."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, rows)


def upsert_rows(conn, table, keys: tuple[str, ...], columns: tuple[str, ...], rows: list[tuple],
                merge: dict[str, str] | None = None) -> None:
    """Insert positional rows, updating on a key conflict; the hot path for Celery events.

    `merge` gives, per column, the SQL that picks the stored value (`{t}.col`) or the new one
    (`excluded.col`); columns not named take the new value. The same SQL serves SQLite and
    PostgreSQL, so only the parameter mark differs.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    merge = merge or {}
    updates = ", ".join(
        f"{c} = {merge.get(c, 'excluded.{c}').format(t=table.name, c=c)}" for c in columns if c not in keys
    )
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")
    conn.exec_driver_sql(sql, rows)

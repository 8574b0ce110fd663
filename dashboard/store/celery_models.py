"""Celery history: tasks with their whole lifecycle, workers, and per-minute task statistics."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.store.models import Base
from dashboard.store.packed_text import PackedText
from dashboard.store.runtime_hist import Histogram
from dashboard.store.task_ids import TaskId

# The partial state index's condition, spelled as queries must spell it (a literal, not a bound
# parameter) for SQLite and PostgreSQL to see that it holds.
NOT_SUCCESS = "state <> 'SUCCESS'"


class CeleryTask(Base):
    """One task (by uuid) of one Celery source, merged from every event seen for it."""

    __tablename__ = "celery_tasks"
    # Measured with dbstat (bench.celery_ingest): every index entry costs its columns plus a rowid,
    # so each index is only as wide as the queries that use it. No index on worker: its filter is a
    # substring match, which no index serves.
    __table_args__ = (
        # Paging newest-first, alone or with a filter no other index serves; ties on first_seen_at
        # (rare) are ordered by uuid from the rows.
        Index("ix_celery_tasks_seen", "source", "first_seen_at"),
        # Within a state. SUCCESS, most tasks by far, is left out: its page reads the newest tasks,
        # almost all of them successes. Queries say `NOT_SUCCESS` to use it.
        Index("ix_celery_tasks_state", "source", "state", "first_seen_at",
              sqlite_where=text(NOT_SUCCESS), postgresql_where=text(NOT_SUCCESS)),
        # The failed tasks of a name in a range (celery_queries.failures, for bulk retry): SUCCESS left
        # out as above. The list matches names by substring, which no index serves.
        Index("ix_celery_tasks_name", "source", "name_id", "first_seen_at",
              sqlite_where=text(NOT_SUCCESS), postgresql_where=text(NOT_SUCCESS)),
        # Children and retries of a task, oldest first: few tasks have either, so only those are indexed.
        Index("ix_celery_tasks_parent", "source", "parent_id", "first_seen_at",
              sqlite_where=text("parent_id IS NOT NULL"), postgresql_where=text("parent_id IS NOT NULL")),
        Index("ix_celery_tasks_retry_of", "source", "retry_of", "first_seen_at",
              sqlite_where=text("retry_of IS NOT NULL"), postgresql_where=text("retry_of IS NOT NULL")),
    )

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Task ids are TaskId: 16 bytes on SQLite when they are uuids, as Celery's are.
    uuid: Mapped[str] = mapped_column(TaskId, primary_key=True)
    # Name, worker, queue and routing key are ids into celery_names (see CeleryName).
    name_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    state_at: Mapped[float] = mapped_column(Float)  # time of the event that set `state`
    first_seen_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    succeeded_at: Mapped[float | None] = mapped_column(Float)
    failed_at: Mapped[float | None] = mapped_column(Float)
    retried_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    rejected_at: Mapped[float | None] = mapped_column(Float)
    runtime: Mapped[float | None] = mapped_column(Float)
    worker_id: Mapped[int | None] = mapped_column(Integer)
    queue_id: Mapped[int | None] = mapped_column(Integer)
    exchange: Mapped[str | None] = mapped_column(String(255))  # mostly '' (the default), which costs nothing
    routing_key_id: Mapped[int | None] = mapped_column(Integer)
    retries: Mapped[int | None] = mapped_column(Integer)
    eta: Mapped[str | None] = mapped_column(String(64))
    expires: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[str | None] = mapped_column(TaskId)
    # '' when the task is its own root (most are): its uuid again would cost 36 bytes a task.
    # celery_queries.restore_root gives the uuid back; NULL means no event said.
    root_id: Mapped[str | None] = mapped_column(TaskId)
    # As Celery sent them: reprs, cut at its argsrepr limit; the flag says when they were cut.
    args: Mapped[str | None] = mapped_column(Text)
    kwargs: Mapped[str | None] = mapped_column(Text)
    args_truncated: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[str | None] = mapped_column(Text)
    exception: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(PackedText)  # zlib-packed on SQLite when long
    # How jobdash settled a task its events left unfinished (see collectors.celery_workers).
    note: Mapped[str | None] = mapped_column(Text)
    # Set when jobdash re-sent a failed task: the uuid it retries.
    retry_of: Mapped[str | None] = mapped_column(TaskId)


class CeleryName(Base):
    """A task name, worker hostname, queue or routing key, stored once: tasks refer to it by id.

    A few dozen texts repeat in every task (about 40 bytes of its row); an id takes one or two.
    Ids are never reused or removed, so a text, once stored, keeps its id; the writer alone adds them.
    """

    __tablename__ = "celery_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[str] = mapped_column(String(255), unique=True)


class CeleryWorker(Base):
    """A worker as its last events and inspect replies describe it."""

    __tablename__ = "celery_workers"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean)
    last_heartbeat: Mapped[float | None] = mapped_column(Float)
    freq: Mapped[float | None] = mapped_column(Float)  # heartbeat interval, seconds
    active: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int | None] = mapped_column(Integer)
    loadavg: Mapped[list[float] | None] = mapped_column(JSON)
    sw_ident: Mapped[str | None] = mapped_column(String(64))
    sw_ver: Mapped[str | None] = mapped_column(String(64))
    sw_sys: Mapped[str | None] = mapped_column(String(64))
    # From inspect: pool, queues, prefetch and the rest of `stats`.
    info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)
    # What jobdash last had to clamp in the worker's events (see store.celery_sanitize).
    note: Mapped[str | None] = mapped_column(Text)


ALL_TASKS = "all"


class _Outcomes:
    """Outcomes and runtime histogram of one task name (or queue) over one bucket."""

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "name" or "queue"; or ALL_TASKS (key ALL_TASKS too): every task, named or not, in one row per bucket.
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds, multiple of the step
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    runtime_sum: Mapped[float] = mapped_column(Float, default=0.0)
    # Counts per log-spaced runtime bin (see dashboard.store.runtime_hist).
    runtime_hist: Mapped[list[int]] = mapped_column(Histogram)
    # Fastest and slowest run: percentiles interpolated within a bin never leave this range.
    runtime_min: Mapped[float | None] = mapped_column(Float)
    runtime_max: Mapped[float | None] = mapped_column(Float)


class CeleryMinute(_Outcomes, Base):
    """Outcomes and runtime histogram of one task name (or queue) over one minute."""

    __tablename__ = "celery_minutes"
    __table_args__ = (Index("ix_celery_minutes_bucket", "source", "bucket"),)


class CeleryHour(_Outcomes, Base):
    """The same over one hour: what charts of days and weeks read."""

    __tablename__ = "celery_hours"
    # Covers the outcomes chart: a month of hours is read from the index alone.
    __table_args__ = (Index("ix_celery_hours_outcomes", "source", "dimension", "bucket", "key", "succeeded", "failed",
                            "retried"),)

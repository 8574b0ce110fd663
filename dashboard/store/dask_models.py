"""Dask history: the cluster and its workers as last seen, progress per prefix, erred tasks, minutes."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.store.models import Base
from dashboard.store.runtime_hist import Histogram


class DaskCluster(Base):
    """The scheduler of one Dask source and its totals, as the last poll saw them."""

    __tablename__ = "dask_clusters"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated_at: Mapped[float] = mapped_column(Float)
    # address, version, started, workers, threads, memory..., task states, tasks_per_s
    info: Mapped[dict[str, Any]] = mapped_column(JSON)


class DaskWorker(Base):
    """A worker as the scheduler last described it; one that left is kept, with when, as gone."""

    __tablename__ = "dask_workers"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32))
    nanny: Mapped[str | None] = mapped_column(String(255))
    nthreads: Mapped[int] = mapped_column(Integer)
    memory_limit: Mapped[float | None] = mapped_column(Float)
    memory: Mapped[float] = mapped_column(Float)
    managed: Mapped[float] = mapped_column(Float)
    unmanaged: Mapped[float] = mapped_column(Float)
    spilled: Mapped[float] = mapped_column(Float)
    cpu: Mapped[float] = mapped_column(Float)
    executing: Mapped[int] = mapped_column(Integer)
    ready: Mapped[int] = mapped_column(Integer)
    in_memory: Mapped[int] = mapped_column(Integer)
    last_seen: Mapped[float | None] = mapped_column(Float)
    first_seen_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    gone_at: Mapped[float | None] = mapped_column(Float)


class DaskPrefix(Base):
    """Task counts by state of one task prefix (Dask's progress pane), as the last poll saw them."""

    __tablename__ = "dask_prefixes"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(255), primary_key=True)
    waiting: Mapped[int] = mapped_column(Integer)
    processing: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    erred: Mapped[int] = mapped_column(Integer)
    released: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class DaskErred(Base):
    """A task the task stream reported erred, with its exception and traceback text."""

    __tablename__ = "dask_erred"
    __table_args__ = (Index("ix_dask_erred_newest", "source", "erred_at", "key"),
                      Index("ix_dask_erred_prefix", "source", "prefix", "state"))

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)  # as people read it
    raw: Mapped[str] = mapped_column(Text)  # the key as JSON, to hand back to the scheduler
    prefix: Mapped[str] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    erred_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    exception: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    # erred | retried (jobdash sent it back) | memory (a later run succeeded) | forgotten (no client holds it)
    state: Mapped[str] = mapped_column(String(16))
    state_at: Mapped[float] = mapped_column(Float)
    retries: Mapped[int] = mapped_column(Integer, default=0)


class DaskMinute(Base):
    """Tasks of one prefix that finished or erred in one minute, with a duration histogram."""

    __tablename__ = "dask_minutes"
    __table_args__ = (Index("ix_dask_minutes_bucket", "source", "bucket"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(255), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds, multiple of 60
    completed: Mapped[int] = mapped_column(Integer, default=0)
    erred: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum: Mapped[float] = mapped_column(Float, default=0.0)
    # Counts per log-spaced duration bin (see dashboard.store.runtime_hist).
    duration_hist: Mapped[list[int]] = mapped_column(Histogram)

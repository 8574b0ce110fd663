"""SQLAlchemy models shared by every watched system."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so Alembic migrations match on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SourceStatus(Base):
    """The health of one configured source, as its collector last saw it."""

    __tablename__ = "source_status"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # up | down | degraded | unknown
    updated_at: Mapped[float] = mapped_column(Float)
    last_success_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[float | None] = mapped_column(Float)
    last_poll_ms: Mapped[float | None] = mapped_column(Float)
    # Headline numbers for the overview card, e.g. {"workers": 3, "lag": 120}.
    headline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Sample(Base):
    """One raw measurement of a series, kept for the raw retention window."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_series_ts", "source", "metric", "label", "ts"), Index("ix_samples_ts", "ts"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(82))  # "kind/name"
    metric: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(255), default="")
    ts: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)


class Rollup(Base):
    """Aggregate of a series over one bucket of `step` seconds (60 or 3600)."""

    __tablename__ = "rollups"
    __table_args__ = (Index("ix_rollups_step_bucket", "step", "bucket"),)

    source: Mapped[str] = mapped_column(String(82), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds, multiple of step
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)

"""Gaps: spans where writes of some kind were lost (store full, event stream down, jobdash stopped)."""
from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.store.models import Base


class StoreGap(Base):
    """One span of a source's writes that never reached the store, until reconciled."""

    __tablename__ = "store_gaps"
    __table_args__ = (Index("ix_store_gaps_source", "kind", "source", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # the kind of write that is missing, e.g. celery_event
    source: Mapped[str] = mapped_column(String(82))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float] = mapped_column(Float)
    cause: Mapped[str] = mapped_column(Text)
    lost: Mapped[int | None] = mapped_column(Integer)  # writes given up, when counted
    state: Mapped[str] = mapped_column(String(16))  # open | filled | unfillable
    recovered: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    settled_at: Mapped[float | None] = mapped_column(Float)

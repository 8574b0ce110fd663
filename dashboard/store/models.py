"""SQLAlchemy models shared by every watched system."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, MetaData, String, Text, text
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
    __table_args__ = (
        Index("ix_rollups_step_bucket", "step", "bucket"),
        # History charts of weeks and months read hour buckets from this index alone, series by series
        # (`step` included: SQLite reads the table for a WHERE column the index lacks, and then prefers
        # the primary key, whose table rows lie a page apart per bucket).
        Index("ix_rollups_hours", "source", "metric", "label", "bucket", "step", "count", "total", "min", "max",
              sqlite_where=text("step = 3600"), postgresql_where=text("step = 3600")),
    )

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


class User(Base):
    """Someone who may log in, with one role: viewer < manager < admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, with its own parameters and salt
    created_at: Mapped[float] = mapped_column(Float)


class LoginSession(Base):
    """A logged-in browser; the cookie holds the random id, the table only its SHA-256."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_id", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    # Last request seen (updated at most once a minute): the idle timeout counts from here.
    last_seen_at: Mapped[float | None] = mapped_column(Float)


class LoginFailure(Base):
    """One failed login, kept for the throttling window so that every process sees it."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_name_ip_ts", "name", "ip", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell tokens apart
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class AuditEntry(Base):
    """One action someone asked for, with what came of it; rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_ts", "ts"), Index("ix_audit_log_user_ts", "user", "ts"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float)
    user: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(8))  # http | socket | cli
    source: Mapped[str] = mapped_column(String(82))  # "kind/name", or "" when no watched system is involved
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(8))  # ok | failed | refused
    error: Mapped[str | None] = mapped_column(Text)


class SourceTransition(Base):
    """A source's state changed (up, degraded, down, unknown): the history availability is read from."""

    __tablename__ = "source_transitions"
    __table_args__ = (Index("ix_source_transitions_source_at", "kind", "name", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)

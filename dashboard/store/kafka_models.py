"""Kafka now: each consumer group, each of its partitions and each topic as the last poll saw them.

Columns avoid SQL keywords (group, partition, end): group_name, partition_no, end_offset.
Only the current state is kept per partition (replaced every poll); history lives in the samples
and rollups as per-group and per-topic series (see collectors.kafka_lag.history_points).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.store.models import Base


class KafkaGroup(Base):
    """A consumer group of one Kafka source: its status and why, its lag, members and rates."""

    __tablename__ = "kafka_groups"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))  # OK | WARN | ERR | REWIND | STALL | STOP
    burrow_status: Mapped[str] = mapped_column(String(8))  # Burrow's word: STOP/STALL/REWIND fold into ERR
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    lag: Mapped[int] = mapped_column(BigInteger)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    extrapolated: Mapped[bool] = mapped_column(Boolean)
    topics: Mapped[list[str]] = mapped_column(JSON)
    partitions: Mapped[int] = mapped_column(Integer)
    members: Mapped[int | None] = mapped_column(Integer)  # None: unknown, see members_note
    members_note: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(String(32))
    consume_rate: Mapped[float | None] = mapped_column(Float)
    last_commit: Mapped[float | None] = mapped_column(Float)
    complete: Mapped[float] = mapped_column(Float)  # how full the evaluation window is, 0..1
    max_partition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class KafkaPartition(Base):
    """One partition of a topic as one group consumes it."""

    __tablename__ = "kafka_partitions"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    committed: Mapped[int] = mapped_column(BigInteger)
    end_offset: Mapped[int] = mapped_column(BigInteger)
    lag: Mapped[int] = mapped_column(BigInteger)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    extrapolated: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    last_commit: Mapped[float | None] = mapped_column(Float)
    consume_rate: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    gone: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    # The oldest sample of the evaluation window: {"offset", "ts", "lag"} (Burrow's "start").
    window_start: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class KafkaTopic(Base):
    """A topic some group consumes: its partitions, end offsets and produce rate, each group's consume rate."""

    __tablename__ = "kafka_topics"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partitions: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(BigInteger)
    produce_rate: Mapped[float | None] = mapped_column(Float)
    consumers: Mapped[dict[str, float]] = mapped_column(JSON)  # group -> messages per second
    updated_at: Mapped[float] = mapped_column(Float)

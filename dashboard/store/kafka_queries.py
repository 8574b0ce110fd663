"""Reads of Kafka state: groups worst first, a group's partitions, topics, and lag history."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dashboard.store.kafka_models import KafkaGroup, KafkaPartition, KafkaTopic
from dashboard.store.timeseries import read_series

# Worst first: the evaluator's ranking (collectors.kafka_status.STATUSES), reversed.
SEVERITY = {"STOP": 0, "STALL": 1, "REWIND": 2, "ERR": 3, "WARN": 4, "OK": 5}
RENAMED = {"group_name": "group", "partition_no": "partition", "end_offset": "end"}


def _plain(row) -> dict[str, Any]:
    return {RENAMED.get(k, k): v for k, v in dict(row).items() if k != "source"}


def groups(engine: Engine, source: str) -> list[dict[str, Any]]:
    """Every group of a source, worst status first, then largest lag."""
    with engine.connect() as conn:
        rows = [_plain(r) for r in conn.execute(select(KafkaGroup.__table__).where(KafkaGroup.source == source)).mappings()]
    return sorted(rows, key=lambda g: (SEVERITY.get(g["status"], 3), -g["lag"], g["group"]))


def group(engine: Engine, source: str, name: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(KafkaGroup.__table__).where(KafkaGroup.source == source,
                                                              KafkaGroup.group_name == name)).mappings().first()
    return _plain(row) if row else None


def partitions(engine: Engine, source: str, group_name: str | None = None, topic: str | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
    """Partitions of a group (or of a topic across groups), by topic and partition."""
    table = KafkaPartition.__table__
    query = select(table).where(table.c.source == source)
    if group_name is not None:
        query = query.where(table.c.group_name == group_name)
    if topic is not None:
        query = query.where(table.c.topic == topic)
    query = query.order_by(table.c.group_name, table.c.topic, table.c.partition_no).limit(limit)
    with engine.connect() as conn:
        return [_plain(r) for r in conn.execute(query).mappings()]


def topics(engine: Engine, source: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [_plain(r) for r in conn.execute(select(KafkaTopic.__table__).where(KafkaTopic.source == source)
                                                .order_by(KafkaTopic.topic)).mappings()]


def topic(engine: Engine, source: str, name: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(KafkaTopic.__table__).where(KafkaTopic.source == source,
                                                              KafkaTopic.topic == name)).mappings().first()
    return _plain(row) if row else None


# Messages per second a group may trail its topic's producers by and still keep up: both rates are
# end-offset / committed-offset deltas over the window, and a caught-up group's differ by rounding.
KEEPS_UP_SLACK = 0.05


def keeps_up(consume_rate: float | None, produce_rate: float | None) -> tuple[bool | None, float | None]:
    """Whether a group consumes a topic as fast as it is produced, and if not, by how much it falls short."""
    if consume_rate is None or produce_rate is None:
        return None, None
    if consume_rate + KEEPS_UP_SLACK >= produce_rate:
        return True, None
    return False, produce_rate - consume_rate


def consumers(engine: Engine, source: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each group consuming a topic (a row of `topic`), by name: its consume rate, status, and verdict."""
    name = found["topic"]
    rates = found.get("consumers") or {}
    statuses = {g["group"]: g["status"] for g in groups(engine, source) if name in (g["topics"] or [])}
    rows = []
    for group_name in sorted(set(rates) | set(statuses)):
        verdict, short = keeps_up(rates.get(group_name), found.get("produce_rate"))
        rows.append({"group": group_name, "rate": rates.get(group_name), "status": statuses.get(group_name),
                     "keeps_up": verdict, "short": short})
    return rows


def lag_history(engine: Engine, source: str, group_name: str, metric: str = "lag", span: float = 3600,
                end: float | None = None) -> list[dict[str, float]]:
    """A group's lag series over the last `span` seconds (raw, minute or hour points by span)."""
    end = time.time() if end is None else end
    return read_series(engine, f"kafka/{source}", metric, group_name, end - span, end)


def sparklines(engine: Engine, source: str, names: list[str], span: float = 3600) -> dict[str, list[float]]:
    """Each group's lag values over the last hour, for the list's sparklines."""
    return {name: [p["value"] for p in lag_history(engine, source, name, span=span)] for name in names}

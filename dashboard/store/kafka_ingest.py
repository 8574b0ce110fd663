"""Kafka state into rows: each poll replaces its source's groups, partitions and topics.

Names come from the broker and are untrusted: cut to the column's length and made storable;
numbers are clamped to what the columns hold, so no value can break a page or an API answer.
"""
from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from dashboard.store.db import insert_rows
from dashboard.store.kafka_models import KafkaGroup, KafkaPartition, KafkaTopic

BIG = 2 ** 62
STATUSES = {"OK", "WARN", "ERR", "REWIND", "STALL", "STOP"}
TEXT_MAX = 4000


def text(value: Any, limit: int = 255) -> str | None:
    """A string a database holds: lone surrogates escaped, cut to `limit` characters."""
    if value is None:
        return None
    value = str(value)
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value[:limit]


def integer(value: Any, low: int = -BIG) -> int:
    try:
        return max(low, min(BIG, int(value)))
    except (TypeError, ValueError, OverflowError):
        return 0


def number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def status(value: Any) -> str:
    return value if value in STATUSES else "ERR"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _group_row(source: str, g: dict[str, Any], ts: float) -> tuple:
    return (source, text(g["group"]), status(g.get("status")), status(g.get("burrow_status")), text(g.get("rule"), 32) or "",
            text(g.get("reason"), TEXT_MAX) or "", integer(g.get("lag"), 0), number(g.get("lag_seconds")),
            bool(g.get("extrapolated")), _json([text(t) for t in g.get("topics") or []]), integer(g.get("partitions"), 0),
            None if g.get("members") is None else integer(g["members"], 0), text(g.get("members_note"), TEXT_MAX),
            text(g.get("state"), 32), number(g.get("consume_rate")), number(g.get("last_commit")),
            number(g.get("complete")) or 0.0, _json(g.get("max_partition")), ts)


def _partition_row(source: str, p: dict[str, Any], ts: float) -> tuple:
    return (source, text(p["group"]), text(p["topic"]), integer(p["partition"], 0), integer(p.get("committed")),
            integer(p.get("end")), integer(p.get("lag"), 0), number(p.get("lag_seconds")), bool(p.get("extrapolated")),
            status(p.get("status")), text(p.get("rule"), 32) or "", text(p.get("reason"), TEXT_MAX) or "",
            text(p.get("owner")), text(p.get("host")), number(p.get("last_commit")), number(p.get("consume_rate")),
            integer(p.get("samples"), 0), bool(p.get("gone")), text(p.get("note"), TEXT_MAX),
            _json(_window_start(p.get("window_start"))), ts)


def _window_start(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"offset": integer(value.get("offset")), "ts": number(value.get("ts")), "lag": integer(value.get("lag"), 0)}


def _topic_row(source: str, t: dict[str, Any], ts: float) -> tuple:
    consumers = {text(k): number(v) for k, v in (t.get("consumers") or {}).items()}
    return (source, text(t["topic"]), integer(t.get("partitions"), 0), integer(t.get("end")),
            number(t.get("produce_rate")), _json(consumers), ts)


TABLES = ((KafkaGroup, "groups", _group_row), (KafkaPartition, "partitions", _partition_row),
          (KafkaTopic, "topics", _topic_row))


def write_states(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Replace each source's rows with its latest state in the batch."""
    latest: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        if payload["source"] not in latest or payload["ts"] >= latest[payload["source"]]["ts"]:
            latest[payload["source"]] = payload
    for source, payload in latest.items():
        source = text(source, 64)
        for model, key, build in TABLES:
            table = model.__table__
            conn.execute(delete(table).where(table.c.source == source))
            rows = {}
            for item in payload.get(key) or []:
                row = build(source, item, payload["ts"])
                rows[row[:len(table.primary_key.columns)]] = row  # names cut alike collapse to one row
            if rows:
                insert_rows(conn, table, tuple(c.name for c in table.columns), list(rows.values()))


HANDLERS = {"kafka_state": write_states}

"""Kafka offset control: reset a group's committed offsets for a topic, previewed before it is done.

`plan` reads what a reset would do (per partition: current and resulting offset and lag) and is
what the preview shows; the action runs the same plan and then commits it. Every resulting offset
is clamped to the partition's [earliest, end], as kafka-consumer-groups does. The previous offsets
go into the audit row, with `undo`: the params of the one reset (to=offset, value "partition:offset,...")
that puts them back.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.protocol.consumer import OffsetTimestamp
from kafka.structs import OffsetAndMetadata

from collectors.kafka_lag import MembersAdmin
from dashboard.actions.registry import ActionResult, Invalid, Param, action
from dashboard.config import SourceConfig

TARGETS = ("earliest", "latest", "timestamp", "offset", "shift")
PARTITIONS_MAX = 1000  # partitions one reset may name
PARTITIONS_CHARS = 8000
VALUE_CHARS = PARTITIONS_CHARS * 2  # a per-partition map "0:5,1:17,..." of up to PARTITIONS_MAX entries
TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's own rule for topic names
CLOCK_SLACK = 5.0  # seconds a "now" timestamp may be ahead of this clock


@dataclass(frozen=True)
class ResetRequest:
    topic: str
    to: str
    value: int | None  # offset, shift, or timestamp in epoch milliseconds
    partitions: tuple[int, ...] | None  # None: every partition of the topic
    offsets: dict[int, int] | None = None  # to=offset with a per-partition map: partition -> offset

    def shown_value(self) -> int | str | None:
        """The value as the preview and the audit show it (a map as "partition:offset,...")."""
        return format_offsets(self.offsets) if self.offsets is not None else self.value


def _whole(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise Invalid(400, f"{name} must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,19}", raw.strip()):
        return int(raw.strip())
    raise Invalid(400, f"{name} must be a whole number, got {str(raw)[:40]!r}")


def _timestamp_ms(raw: Any, now: float) -> int:
    """Epoch milliseconds (whole numbers below 10^11 are taken as seconds), or an ISO 8601 time (UTC if no zone)."""
    if isinstance(raw, str) and not re.fullmatch(r"\s*\d+\s*", raw):
        try:
            moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(400, f"value: {raw[:40]!r} is neither epoch milliseconds nor a time like "
                               "2026-11-27T10:00:00Z") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = int(moment.timestamp() * 1000)
    else:
        ms = _whole("value", raw)
        ms = ms * 1000 if 0 <= ms < 10 ** 11 else ms
    if ms < 0:
        raise Invalid(400, "value: a timestamp cannot be before 1970")
    if ms > (now + CLOCK_SLACK) * 1000:
        raise Invalid(400, "value: the timestamp is in the future; no record has it yet")
    return ms


def parse_partitions(raw: Any) -> tuple[int, ...] | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or len(raw) > PARTITIONS_CHARS:
        raise Invalid(400, f"partitions: a comma-separated list of at most {PARTITIONS_MAX} partition numbers")
    items = [p.strip() for p in raw.split(",")]
    if len(items) > PARTITIONS_MAX:
        raise Invalid(400, f"partitions: at most {PARTITIONS_MAX} partitions in one reset, got {len(items)}")
    if not all(re.fullmatch(r"\d{1,9}", p) for p in items):
        raise Invalid(400, "partitions: each must be a partition number (0, 1, ...), comma-separated")
    numbers = tuple(int(p) for p in items)
    if len(set(numbers)) != len(numbers):
        raise Invalid(400, "partitions: a partition is named twice")
    return numbers


def format_offsets(offsets: dict[int, int]) -> str:
    """A per-partition map as the value of a to=offset reset: "0:5,1:17"."""
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def parse_offsets(raw: str) -> dict[int, int]:
    """A value like "0:5,1:17" (partition:offset, comma-separated); Invalid(400) naming what is wrong."""
    if len(raw) > VALUE_CHARS:
        raise Invalid(400, f"value: a partition:offset map of at most {VALUE_CHARS} characters")
    items = [item.strip() for item in raw.split(",")]
    if len(items) > PARTITIONS_MAX:
        raise Invalid(400, f"value: at most {PARTITIONS_MAX} partitions in one reset, got {len(items)}")
    offsets: dict[int, int] = {}
    for item in items:
        found = re.fullmatch(r"([+-]?\d{1,19})\s*:\s*([+-]?\d{1,19})", item)
        if not found:
            raise Invalid(400, f"value: {item[:40]!r} is not partition:offset (a map is written 0:5,1:17)")
        partition, offset = int(found[1]), int(found[2])
        if not 0 <= partition < 10 ** 9:
            raise Invalid(400, f"value: {item[:40]!r}: a partition is a number 0, 1, ...")
        if offset < 0:
            raise Invalid(400, f"value: {item[:40]!r}: an offset cannot be negative")
        if partition in offsets:
            raise Invalid(400, f"value: partition {partition} is named twice")
        offsets[partition] = offset
    return offsets


def parse_request(params: dict[str, Any], now: float | None = None) -> ResetRequest:
    """Check the action's params; Invalid(400) naming what is wrong."""
    now = time.time() if now is None else now
    topic, to = params.get("topic"), params.get("to")
    if not isinstance(topic, str) or not TOPIC_RE.match(topic):
        raise Invalid(400, "topic: a Kafka topic name (letters, digits, . _ -; at most 249)")
    if to not in TARGETS:
        raise Invalid(400, f"to: one of {', '.join(TARGETS)}")
    raw = params.get("value")
    value = None
    if to in ("timestamp", "offset", "shift"):
        if raw is None or raw == "":
            raise Invalid(400, f"value: required with to={to}")
        if to == "offset" and isinstance(raw, str) and ":" in raw:
            return _offsets_request(topic, raw, params.get("partitions"))
        if to == "timestamp":
            value = _timestamp_ms(raw, now)
        else:
            value = _whole("value", raw)
            if to == "offset" and value < 0:
                raise Invalid(400, "value: an offset cannot be negative")
    return ResetRequest(topic, to, value, parse_partitions(params.get("partitions")))


def _offsets_request(topic: str, raw: str, raw_partitions: Any) -> ResetRequest:
    """A to=offset reset with a per-partition map; `partitions`, if given, must name the same partitions."""
    offsets = parse_offsets(raw)
    named = parse_partitions(raw_partitions)
    if named is not None and set(named) != set(offsets):
        raise Invalid(400, "partitions: with a partition:offset map, leave partitions empty or name exactly the "
                           f"map's partitions ({', '.join(map(str, sorted(offsets)[:10]))}"
                           f"{', ...' if len(offsets) > 10 else ''})")
    return ResetRequest(topic, "offset", None, tuple(sorted(offsets)), offsets)


def admin_for(source: SourceConfig) -> MembersAdmin:
    ms = int(source.timeout * 1000)
    return MembersAdmin(bootstrap_servers=source.options["bootstrap_servers"], client_id=f"jobdash-actions-{source.name}",
                        request_timeout_ms=ms, bootstrap_timeout_ms=ms, reconnect_backoff_max_ms=1000)


def members_of(admin: MembersAdmin, group: str) -> tuple[int | None, str]:
    """Active members of the group, or None with why they are unknown."""
    try:
        info = admin.describe_groups([group]).get(group) or {}
    except Exception as exc:  # noqa: BLE001 - the broker itself still refuses a reset of an active group
        return None, f"members unknown: {type(exc).__name__}: {exc}"
    return len(info.get("members") or []), info.get("group_state") or ""


def plan(admin: MembersAdmin, group: str, req: ResetRequest) -> dict[str, Any]:
    """What the reset would do, per partition; Invalid(404) for an unknown group, topic or partition."""
    described = admin.describe_topics([req.topic])
    found = described[0] if described else {}
    if found.get("error_code") or not found.get("partitions"):
        raise Invalid(404, f"no topic {req.topic!r} on this cluster")
    existing = sorted(p["partition_index"] for p in found["partitions"])
    wanted = list(req.partitions) if req.partitions is not None else existing
    missing = sorted(set(wanted) - set(existing))
    if missing:
        raise Invalid(404, f"topic {req.topic!r} has partitions 0-{max(existing)}; no partition "
                           f"{', '.join(map(str, missing[:10]))}")
    tps = [TopicPartition(req.topic, p) for p in wanted]
    committed = admin.list_group_offsets([group]).get(group) or {}
    known = {g["group_id"] for g in admin.list_groups()}
    if not committed and group not in known:
        raise Invalid(404, f"no consumer group {group!r} on this cluster")
    earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
    latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    by_time = (admin.list_partition_offsets({tp: OffsetTimestamp(req.value) for tp in tps})
               if req.to == "timestamp" else {})
    rows = []
    for tp in tps:
        low, end = earliest[tp].offset, latest[tp].offset
        om = committed.get(tp)
        current = om.offset if om is not None and om.offset >= 0 else None
        if req.to == "earliest":
            target = low
        elif req.to == "latest":
            target = end
        elif req.to == "offset":
            target = req.offsets[tp.partition] if req.offsets is not None else req.value
        elif req.to == "shift":
            target = (current if current is not None else end) + req.value
        else:  # no record at or after the time: Kafka answers -1 (tansu a timestamp of -1)
            hit = by_time[tp]
            target = end if hit.offset < 0 or hit.timestamp < 0 else hit.offset
        resulting = min(max(target, low), end)
        rows.append({"partition": tp.partition, "current": current, "earliest": low, "end": end,
                     "current_lag": None if current is None else max(0, end - current),
                     "resulting": resulting, "resulting_lag": end - resulting, "clamped": resulting != target})
    members, state = members_of(admin, group)
    return {"group": group, "topic": req.topic, "to": req.to, "value": req.shown_value(), "partitions": rows,
            "members": members, "members_note": state if members is None else None,
            "refused": _active(members)}


def _active(members: int | None) -> str | None:
    if members:
        return (f"the group has {members} active member(s): Kafka only lets offsets of an empty group change; "
                "stop its consumers first")
    return None


@action("kafka.reset_offsets", role="admin", confirm=True, timeout=60.0,
        params={"topic": Param(str, max_length=249), "to": Param(str, choices=TARGETS),
                "value": Param((int, str), required=False, max_length=VALUE_CHARS),
                "partitions": Param(str, required=False, max_length=PARTITIONS_CHARS)},
        description="Move a consumer group's committed offsets for a topic (all or some partitions) to the earliest "
                    "or latest offset, a time, an offset (one for all, or per partition: 0:5,1:17), or shifted by N. "
                    "The previous offsets are audited, with the one reset that puts them back.")
def reset_offsets(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    """Reset group `target`'s offsets for params["topic"]; refused while the group has members."""
    req = parse_request(params)
    admin = admin_for(source)
    try:
        planned = plan(admin, target, req)
        if planned["refused"]:
            raise Invalid(409, planned["refused"])
        offsets = {TopicPartition(req.topic, r["partition"]): OffsetAndMetadata(r["resulting"], "", -1)
                   for r in planned["partitions"]}
        errors = admin.alter_group_offsets(target, offsets)
        failed = {tp.partition: err.__name__ for tp, err in errors.items() if err.__name__ != "NoError"}
        now = admin.list_group_offsets([target]).get(target) or {}
    finally:
        admin.close()
    previous = {str(r["partition"]): r["current"] for r in planned["partitions"]}
    result = {str(tp.partition): (now[tp].offset if tp in now else None) for tp in offsets}
    details = {"topic": req.topic, "previous": previous, "result": result, **undo_of(req.topic, previous)}
    if failed:
        return ActionResult(False, f"the broker refused partitions {failed}", details)
    wrong = [p for p, r in zip(result, planned["partitions"]) if result[p] != r["resulting"]]
    if wrong:
        return ActionResult(False, f"committed offsets read back differ on partitions {', '.join(wrong)}", details)
    return ActionResult(True, f"reset {len(result)} partition(s) of {req.topic} to {req.to}", details)


def undo_of(topic: str, previous: dict[str, int | None]) -> dict[str, Any]:
    """`undo`: the params of the reset that puts the previous offsets back (or None, with `undo_note`);
    `undo_skipped`: partitions that had no committed offset, which no reset can take back (Kafka has no uncommit)."""
    had = {int(p): o for p, o in previous.items() if o is not None}
    skipped = sorted(int(p) for p, o in previous.items() if o is None)
    out: dict[str, Any] = {"undo": None, "undo_skipped": skipped}
    value = format_offsets(had)
    if not had:
        out["undo_note"] = "no partition had a committed offset before: there is nothing to put back"
    elif len(had) > PARTITIONS_MAX or len(value) > VALUE_CHARS:
        out["undo_note"] = (f"{len(had)} partitions ({len(value)} characters) are more than one reset takes "
                            f"({PARTITIONS_MAX} partitions, {VALUE_CHARS} characters): see `previous`")
    else:
        out["undo"] = {"topic": topic, "to": "offset", "value": value}
    return out

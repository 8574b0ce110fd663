"""A Kafka source over time: per-partition windows of samples and end-offset times, turned into rows.

The collector feeds each poll's committed offsets, end offsets and members in; `update` returns
the source's whole current state (groups, partitions, topics) with statuses, lag in seconds and
rates. A partition that stops being reported keeps counting for one window, then is dropped.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from collectors.kafka_status import (RANK, OffsetTimes, Sample, Verdict, burrow_word, group_status,
                                     partition_status, thresholds_for, worst)

TP = tuple[str, int]  # (topic, partition)


@dataclass
class Members:
    """A group's members as DescribeGroups told them, or why they are unknown."""

    count: int | None
    state: str = ""
    owners: dict[TP, tuple[str, str]] | None = None  # (topic, partition) -> (member/client id, host)
    note: str = ""


def _rate(first_ts: float, first: int, last_ts: float, last: int) -> float | None:
    """Per-second increase from the first to the last point; decreases count as 0."""
    if last_ts <= first_ts:
        return None
    return max(0.0, (last - first) / (last_ts - first_ts))


class KafkaTracker:
    """Hold the last `window` samples of every (group, topic, partition) of one source."""

    def __init__(self, window: int = 10, interval: float = 5.0, table_size: int = 60,
                 options: dict[str, Any] | None = None):
        self.window = max(2, int(window))
        self.interval = interval
        self.table_size = table_size
        self.options = options or {}
        self.samples: dict[tuple[str, str, int], deque[Sample]] = {}
        self.last_commit: dict[tuple[str, str, int], float | None] = {}
        self.seen: dict[tuple[str, str, int], float] = {}
        self.ends: dict[TP, deque[tuple[float, int]]] = {}
        self.times: dict[TP, OffsetTimes] = {}
        self.groups_seen: set[str] = set()

    def update(self, now: float, committed: dict[str, dict[TP, int]], ends: dict[TP, int],
               members: dict[str, Members]) -> dict[str, Any]:
        """Fold one poll in; return {"groups", "partitions", "topics", "removed"} rows for the store."""
        for tp, end in ends.items():
            self.ends.setdefault(tp, deque(maxlen=self.window)).append((now, end))
            self.times.setdefault(tp, OffsetTimes(self.table_size)).add(end, now)
        for group, offsets in committed.items():
            for (topic, partition), offset in offsets.items():
                end = ends.get((topic, partition))
                if end is None:
                    continue  # its topic's end offsets were not read: counts as not seen
                key = (group, topic, partition)
                window = self.samples.setdefault(key, deque(maxlen=self.window))
                if window and window[-1].offset != offset:
                    self.last_commit[key] = now
                else:
                    self.last_commit.setdefault(key, None)  # unchanged since jobdash first saw it
                window.append(Sample(now, offset, end, end - offset))
                self.seen[key] = now
        self._forget(now)
        return self._rows(now, members)

    def _forget(self, now: float) -> None:
        """Drop partitions (and topics) not reported for a whole window."""
        horizon = self.window * self.interval
        for key in [k for k, ts in self.seen.items() if now - ts >= horizon]:
            for table in (self.samples, self.last_commit, self.seen):
                table.pop(key, None)
        live_tps = {(t, p) for _, t, p in self.samples}
        for tp in [tp for tp in self.ends if tp not in live_tps]:
            self.ends.pop(tp)
            self.times.pop(tp, None)

    def _rows(self, now: float, members: dict[str, Members]) -> dict[str, Any]:
        partitions: list[dict[str, Any]] = []
        by_group: dict[str, list[dict[str, Any]]] = {}
        for (group, topic, partition), window in self.samples.items():  # the store orders them
            info = members.get(group) or Members(None, note="not described")
            samples = list(window)
            first, last = samples[0], samples[-1]
            verdict = partition_status(samples, self.window, info.count)
            lag = max(0, last.lag)
            seconds, extrapolated = (self.times[(topic, partition)].lag_seconds(last.offset, now)
                                     if (topic, partition) in self.times else (None, False))
            owner = (info.owners or {}).get((topic, partition))
            notes = []
            if last.lag < 0:
                # tansu reports the base offset of the last batch + 1 as the end: never show a negative lag.
                notes.append(f"committed offset {last.offset} is beyond the end offset {last.end} the broker "
                             "reported; lag shown as 0")
            gone = self.seen[(group, topic, partition)] < now
            if gone:
                notes.append("no longer reported by the broker; stops counting after one window")
            row = {
                "group": group, "topic": topic, "partition": partition, "committed": last.offset, "end": last.end,
                "lag": lag, "lag_seconds": seconds, "extrapolated": extrapolated, "status": verdict.status,
                "rule": verdict.rule, "reason": verdict.reason, "owner": owner[0] if owner else None,
                "host": owner[1] if owner else None, "last_commit": self.last_commit.get((group, topic, partition)),
                "consume_rate": _rate(first.ts, first.offset, last.ts, last.offset), "samples": len(samples),
                "gone": gone, "note": "; ".join(notes) or None,
                "window_start": {"offset": first.offset, "ts": first.ts, "lag": max(0, first.lag)},
            }
            partitions.append(row)
            by_group.setdefault(group, []).append(row)
        groups = [self._group_row(g, rows, members.get(g) or Members(None, note="not described"), now)
                  for g, rows in sorted(by_group.items())]
        for group in sorted(set(members) - set(by_group)):  # described but nothing committed yet
            groups.append(self._group_row(group, [], members[group], now))
        current = {g["group"] for g in groups}
        removed = sorted(self.groups_seen - current)
        self.groups_seen = current
        return {"groups": groups, "partitions": partitions, "topics": self._topic_rows(partitions),
                "removed": removed}

    def _group_row(self, group: str, rows: list[dict[str, Any]], info: Members, now: float) -> dict[str, Any]:
        # Only the worst partition can be the group's verdict: one Verdict, not one per partition.
        top = max(rows, key=lambda r: RANK[r["status"]], default=None)
        verdicts = [Verdict(top["status"], top["rule"], f"{top['topic']}[{top['partition']}]: {top['reason']}")
                    ] if top else []
        total = sum(r["lag"] for r in rows)
        seconds = [r["lag_seconds"] for r in rows if r["lag_seconds"] is not None]
        verdict = group_status(verdicts, total, max(seconds) if seconds else None,
                               thresholds_for(self.options, group), count=len(rows))
        rates = [r["consume_rate"] for r in rows if r["consume_rate"] is not None]
        commits = [r["last_commit"] for r in rows if r["last_commit"] is not None]
        worst_row = max(rows, key=lambda r: r["lag"], default=None)
        return {
            "group": group, "status": verdict.status, "burrow_status": burrow_word(verdict.status),
            "rule": verdict.rule, "reason": verdict.reason, "lag": total,
            "lag_seconds": max(seconds) if seconds else None,
            "extrapolated": any(r["extrapolated"] for r in rows),
            "topics": sorted({r["topic"] for r in rows}), "partitions": len(rows),
            "members": info.count, "members_note": info.note or None, "state": info.state or None,
            "consume_rate": sum(rates) if rates else None, "last_commit": max(commits) if commits else None,
            "complete": round(sum(min(1.0, r["samples"] / self.window) for r in rows) / len(rows), 3) if rows else 1.0,
            "max_partition": ({"topic": worst_row["topic"], "partition": worst_row["partition"],
                               "lag": worst_row["lag"]} if worst_row else None),
            "updated_at": now,
        }

    def _topic_rows(self, partitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per topic: its partitions, produce rate from end-offset deltas, each group's consume rate."""
        topics: dict[str, dict[str, Any]] = {}
        for (topic, partition), points in self.ends.items():
            row = topics.setdefault(topic, {"topic": topic, "partitions": 0, "end": 0, "produce_rate": None,
                                            "consumers": {}})
            row["partitions"] += 1
            row["end"] += points[-1][1]
            rate = _rate(points[0][0], points[0][1], points[-1][0], points[-1][1])
            if rate is not None:
                row["produce_rate"] = (row["produce_rate"] or 0.0) + rate
        for r in partitions:
            if r["topic"] in topics and r["consume_rate"] is not None:
                consumers = topics[r["topic"]]["consumers"]
                consumers[r["group"]] = consumers.get(r["group"], 0.0) + r["consume_rate"]
        return list(topics.values())


def headline(state: dict[str, Any]) -> dict[str, Any]:
    """The overview card's numbers: groups, partitions, lag, worst lag in seconds, members, worst status."""
    groups = state["groups"]
    seconds = [g["lag_seconds"] for g in groups if g["lag_seconds"] is not None]
    counts = [g["members"] for g in groups]
    return {
        "groups": len(groups), "partitions": len(state["partitions"]), "lag": sum(g["lag"] for g in groups),
        "lag_seconds": round(max(seconds), 1) if seconds else None,
        "members": None if any(c is None for c in counts) else sum(counts),
        "status": worst(g["status"] for g in groups), "not_ok": sum(1 for g in groups if g["status"] != "OK"),
    }

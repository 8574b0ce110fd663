"""Dask polls and task-stream batches into rows: cluster, workers (gone ones kept), prefixes,
erred tasks, and per-minute counts and durations by prefix."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from dashboard.store import runtime_hist
from dashboard.store.dask_models import DaskCluster, DaskErred, DaskMinute, DaskPrefix, DaskWorker
from dashboard.store.db import upsert_rows

GONE_KEPT = 48 * 3600.0  # seconds a worker that left stays listed (the raw retention's default)
WORKER_FIELDS = ("name", "status", "nanny", "nthreads", "memory_limit", "memory", "managed", "unmanaged", "spilled",
                 "cpu", "executing", "ready", "in_memory", "last_seen")
WORKER_COLUMNS = ("source", "address", *WORKER_FIELDS, "first_seen_at", "updated_at", "gone_at")
PREFIX_STATES = ("waiting", "processing", "memory", "erred", "released")
ERRED_COLUMNS = ("source", "key", "raw", "prefix", "worker", "erred_at", "started_at", "exception", "traceback",
                 "state", "state_at", "retries")
# A newer failure of the same key replaces the stored one; an older one (a replayed batch) changes nothing.
_NEWER = "excluded.erred_at > {t}.erred_at"
ERRED_MERGE = {c: f"CASE WHEN {_NEWER} THEN excluded.{{c}} ELSE {{t}}.{{c}} END" for c in ERRED_COLUMNS}
ERRED_MERGE["retries"] = "{t}.retries"
CHUNK = 500  # keys per IN (...) list


def write_polls(conn: Connection, polls: list[dict[str, Any]]) -> None:
    """Writer handler for "dask_poll": the latest poll of each source replaces what it describes."""
    latest = {p["source"]: p for p in polls}
    for source, poll in latest.items():
        at = poll["at"]
        upsert_rows(conn, DaskCluster.__table__, ("source",), ("source", "updated_at", "info"),
                    [(source, at, json.dumps(poll["cluster"]))])
        addresses = [w["address"] for w in poll["workers"]]
        if addresses:
            upsert_rows(conn, DaskWorker.__table__, ("source", "address"), WORKER_COLUMNS,
                        [(source, w["address"], *(w[f] for f in WORKER_FIELDS), at, at, None) for w in poll["workers"]],
                        {"first_seen_at": "{t}.first_seen_at"})
        t = DaskWorker
        left = [t.source == source, t.gone_at.is_(None)]
        if addresses:
            left.append(t.address.not_in(addresses))
        conn.execute(update(t).where(*left).values(gone_at=at, executing=0, ready=0, in_memory=0))
        conn.execute(delete(t).where(t.source == source, t.gone_at < at - GONE_KEPT))
        prefixes = poll["prefixes"]
        if prefixes:
            upsert_rows(conn, DaskPrefix.__table__, ("source", "prefix"), ("source", "prefix", *PREFIX_STATES, "updated_at"),
                        [(source, name, *(counts.get(s, 0) for s in PREFIX_STATES), at) for name, counts in prefixes.items()])
        gone = [DaskPrefix.source == source]
        if prefixes:
            gone.append(DaskPrefix.prefix.not_in(list(prefixes)))
        conn.execute(delete(DaskPrefix).where(*gone))


def write_task_batches(conn: Connection, batches: list[dict[str, Any]]) -> None:
    """Writer handler for "dask_tasks": erred tasks kept with their text, later successes noted,
    and finished tasks counted per prefix and minute."""
    erred: dict[tuple[str, str], tuple] = {}
    succeeded: dict[tuple[str, str], float] = {}
    minutes: dict[tuple[str, str, int], dict[str, Any]] = {}
    for batch in batches:
        source = batch["source"]
        for t in batch["tasks"]:
            stop = t["stop"] if t["stop"] is not None else batch["at"]
            if t["erred"]:
                erred[(source, t["key"])] = (source, t["key"], t["raw"], t["prefix"], t["worker"], stop, t["start"],
                                             t["exception"], t["traceback"], "erred", stop, 0)
            else:
                succeeded[(source, t["key"])] = max(stop, succeeded.get((source, t["key"]), 0.0))
            if stop >= batch["counted_after"]:
                agg = minutes.setdefault((source, t["prefix"], int(stop // 60) * 60),
                                         {"completed": 0, "erred": 0, "duration_sum": 0.0, "duration_hist": runtime_hist.empty()})
                agg["erred" if t["erred"] else "completed"] += 1
                if t["duration"] is not None and not t["erred"]:
                    agg["duration_sum"] += t["duration"]
                    agg["duration_hist"][runtime_hist.runtime_bin(t["duration"])] += 1
    if erred:
        upsert_rows(conn, DaskErred.__table__, ("source", "key"), ERRED_COLUMNS, list(erred.values()), ERRED_MERGE)
    _note_successes(conn, succeeded)
    if minutes:
        _write_minutes(conn, minutes)


def _note_successes(conn: Connection, succeeded: dict[tuple[str, str], float]) -> None:
    """Erred tasks that later finished (a retry that worked) show as in memory.

    Read the few tasks still erred (or retried) per source, rather than look up every finished key.
    """
    t = DaskErred
    for source in {s for s, _ in succeeded}:
        rows = conn.execute(select(t.key, t.state_at).where(t.source == source, t.state.in_(("erred", "retried"))))
        for key, state_at in rows.all():
            stop = succeeded.get((source, key))
            if stop is not None and stop >= state_at:
                conn.execute(update(t).where(and_(t.source == source, t.key == key)).values(state="memory", state_at=stop))


def _write_minutes(conn: Connection, minutes: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    m = DaskMinute
    stored = conn.execute(select(m.source, m.prefix, m.bucket, m.completed, m.erred, m.duration_sum, m.duration_hist)
                          .where(m.source.in_({k[0] for k in minutes}), m.bucket.in_({k[2] for k in minutes})))
    # The writer is the only writer, so read-merge-write here cannot race anyone.
    for source, prefix, bucket, completed, erred, duration_sum, hist in stored:
        agg = minutes.get((source, prefix, bucket))
        if agg is None:
            continue
        agg["completed"] += completed
        agg["erred"] += erred
        agg["duration_sum"] += duration_sum
        agg["duration_hist"] = runtime_hist.total([agg["duration_hist"], hist])
    columns = ("source", "prefix", "bucket", "completed", "erred", "duration_sum", "duration_hist")
    upsert_rows(conn, m.__table__, columns[:3], columns, [
        (*key, a["completed"], a["erred"], a["duration_sum"], runtime_hist.encode(a["duration_hist"]))
        for key, a in minutes.items()])


def write_retried(conn: Connection, marks: list[dict[str, Any]]) -> None:
    """Writer handler for "dask_retried": keys jobdash sent back, or found forgotten by the scheduler."""
    t = DaskErred
    for mark in marks:
        values: dict[str, Any] = {"state": mark["state"], "state_at": mark["at"]}
        if mark["state"] == "retried":
            values["retries"] = t.retries + 1
        keys = mark["keys"]
        for i in range(0, len(keys), CHUNK):
            conn.execute(update(t).where(t.source == mark["source"], t.key.in_(keys[i:i + CHUNK]), t.state_at <= mark["at"])
                         .values(**values))


HANDLERS = {"dask_poll": write_polls, "dask_tasks": write_task_batches, "dask_retried": write_retried}

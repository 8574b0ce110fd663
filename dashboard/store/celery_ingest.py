"""Celery events into rows: tasks merged by uuid, workers by hostname, outcomes per minute.

The writer hands a whole batch of events to `write_events`, which folds the events of one
task into one row before touching the database: a task's sent/received/started/succeeded
usually arrive within one batch, so four events cost one upsert.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from dashboard.store import runtime_hist
from dashboard.store.celery_models import ALL_TASKS, CeleryHour, CeleryMinute, CeleryTask, CeleryWorker
from dashboard.store.celery_names import NAMED, add_ids, text_of
from dashboard.store.celery_sanitize import NOTE, clean_event
from dashboard.store.db import upsert_rows

# Celery's argsrepr/kwargsrepr limit (celery.app.amqp: saferepr(args, 1024)); a repr that long
# and ending in saferepr's ellipsis was cut.
ARGSREPR_MAXSIZE = 1024

EVENT_STATE = {
    "task-sent": "PENDING", "task-received": "RECEIVED", "task-started": "STARTED",
    "task-succeeded": "SUCCESS", "task-failed": "FAILURE", "task-retried": "RETRY",
    "task-revoked": "REVOKED", "task-rejected": "REJECTED",
}
# The event's timestamp column and the event fields copied as they are (when not None).
EVENT_TIME = {t: f"{t[5:]}_at" for t in EVENT_STATE}
COPIED = {
    "task-sent": ("name", "queue", "exchange", "routing_key", "retries", "eta", "expires", "parent_id"),
    "task-received": ("name", "retries", "eta", "expires", "parent_id"),
    "task-started": (),
    "task-succeeded": ("runtime", "result"),
    "task-failed": ("exception", "traceback"),
    "task-retried": ("exception", "traceback"),
    "task-revoked": (),
    "task-rejected": (),
}
# The events that carry the task's root, args and kwargs.
ANNOUNCED = ("task-sent", "task-received")
TASK_COLUMNS = tuple(c.name for c in CeleryTask.__table__.columns)
_NO_TASK = dict.fromkeys((*TASK_COLUMNS, *NAMED))  # a folded row holds names as text until _upsert_tasks
ROOT_SELF = ""  # the stored root_id of a task that is its own root (see CeleryTask.root_id)
TASK_KEYS = ("source", "uuid")
# Columns whose type converts a value on its way in (a PackedText traceback): the upsert's raw SQL
# skips the column types, so _upsert_tasks converts these itself.
CONVERTED = tuple(c for c in CeleryTask.__table__.columns if isinstance(c.type, TypeDecorator))
# Which event's state a task shows: the newest, except that the producer's task-sent (PENDING),
# stamped after it published the message, can arrive "later" than the worker's first events and
# must never hide them (Celery's own State ranks PENDING last for the same reason). LOST is jobdash's
# verdict, not an event: any later event of the task overrides it.
TAKES_OVER = ("(excluded.state <> 'PENDING' AND ({t}.state IN ('PENDING', 'LOST') OR excluded.state_at >= {t}.state_at)) "
              "OR (excluded.state = 'PENDING' AND {t}.state = 'PENDING' AND excluded.state_at >= {t}.state_at)")


def takes_over(new_state: str, new_at: float, old_state: str, old_at: float) -> bool:
    """TAKES_OVER, in Python, for folding a batch's events before they meet the stored row."""
    if new_state != "PENDING":
        return old_state in ("PENDING", "LOST") or new_at >= old_at
    return old_state == "PENDING" and new_at >= old_at


# A stored value survives unless the batch brings one; jobdash's own note goes once an event takes over.
TASK_MERGE = {c: "COALESCE(excluded.{c}, {t}.{c})" for c in TASK_COLUMNS}
TASK_MERGE |= {
    "state": f"CASE WHEN {TAKES_OVER} THEN excluded.state ELSE {{t}}.state END",
    "state_at": f"CASE WHEN {TAKES_OVER} THEN excluded.state_at ELSE {{t}}.state_at END",
    "first_seen_at": "CASE WHEN excluded.first_seen_at < {t}.first_seen_at THEN excluded.first_seen_at ELSE {t}.first_seen_at END",
    "note": f"CASE WHEN {TAKES_OVER} THEN excluded.note ELSE {{t}}.note END",
}
# States a reconcile may overwrite: not final, or jobdash's own LOST verdict.
UNSETTLED = ("PENDING", "RECEIVED", "STARTED", "RETRY", "LOST")
# What a backend record may add to a settled task.
RECOVERED = ("result", "exception", "traceback", "name", "worker", "queue", "retries", "args", "kwargs")
OUTCOME_EVENT = {"SUCCESS": "task-succeeded", "FAILURE": "task-failed", "REVOKED": "task-revoked"}
WORKER_COLUMNS = tuple(c.name for c in CeleryWorker.__table__.columns)
WORKER_KEYS = ("source", "hostname")
# A late event (older than what is stored) changes nothing; a newer one keeps what it lacks.
WORKER_MERGE = {
    c: "CASE WHEN excluded.updated_at >= {t}.updated_at THEN COALESCE(excluded.{c}, {t}.{c}) ELSE {t}.{c} END"
    for c in WORKER_COLUMNS
}
WORKER_MERGE["online"] = "CASE WHEN excluded.updated_at >= {t}.updated_at THEN excluded.online ELSE {t}.online END"

OUTCOMES = {"task-succeeded": "succeeded", "task-failed": "failed", "task-retried": "retried"}


def _repr_cut(text: Any) -> bool:
    return isinstance(text, str) and len(text) >= ARGSREPR_MAXSIZE - 8 and text.rstrip("'\")]}, ").endswith("...")


def _storable(value: Any) -> Any:
    """Text a database can hold: lone surrogates (undecodable bytes Python smuggled into a str)
    become visible \\udcXX escapes instead of failing the whole write."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _fold_task(rows: dict, source: str, ev: dict) -> None:
    # clean_event made every text field storable: values are copied as they are.
    etype, uuid, ts = ev["type"], ev["uuid"], ev.get("timestamp") or 0.0
    state = EVENT_STATE[etype]
    row = rows.get((source, uuid))
    if row is None:
        row = rows[(source, uuid)] = dict(_NO_TASK, source=source, uuid=uuid, state=state, state_at=ts,
                                          first_seen_at=ts)
    else:
        if takes_over(state, ts, row["state"], row["state_at"]):
            row["state"], row["state_at"] = state, ts
        if ts < row["first_seen_at"]:
            row["first_seen_at"] = ts
    row[EVENT_TIME[etype]] = ts
    for field in COPIED[etype]:
        value = ev.get(field)
        if value is not None:
            row[field] = value
    if etype in ANNOUNCED:
        root = ev.get("root_id")
        if root:  # "" is no root
            row["root_id"] = ROOT_SELF if root == uuid else root
        if "args" in ev or "kwargs" in ev:
            row["args"], row["kwargs"] = ev.get("args"), ev.get("kwargs")
            row["args_truncated"] = _repr_cut(row["args"]) or _repr_cut(row["kwargs"])
    if ev.get("hostname") and etype != "task-sent":
        row["worker"] = ev["hostname"]
    if ev.get(NOTE):
        row["note"] = ev[NOTE]


def _fold_worker(rows: dict, source: str, ev: dict) -> None:
    key = (source, ev["hostname"])
    ts = ev.get("timestamp") or 0.0
    row = rows.get(key)
    if row is not None and ts < row["updated_at"]:
        return
    row = rows[key] = {**dict.fromkeys(WORKER_COLUMNS), **(row or {})}
    row.update(source=source, hostname=ev["hostname"], online=ev["type"] != "worker-offline",
               last_heartbeat=ts, updated_at=ts)
    for field in ("freq", "active", "processed", "sw_ident", "sw_ver", "sw_sys"):
        if ev.get(field) is not None:
            row[field] = ev[field]
    if ev.get("loadavg") is not None:
        row["loadavg"] = list(ev["loadavg"])
    if ev.get(NOTE):
        row["note"] = ev[NOTE]


def _as_db(row: dict, columns: tuple[str, ...], json_columns: tuple[str, ...] = ()) -> tuple:
    if json_columns:
        row = {**row, **{c: json.dumps(row[c]) for c in json_columns if row[c] is not None}}
    return tuple(map(row.__getitem__, columns))


# Name and queue of stored tasks, built once: the writer runs it for most batches.
_IDENTITY_QUERY = select(CeleryTask.uuid, text_of("name"), text_of("queue")).where(
    CeleryTask.source == bindparam("source"), CeleryTask.uuid.in_(bindparam("uuids", expanding=True)))


def _task_identity(conn: Connection, tasks: dict, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """Name and queue of the tasks with an outcome in this batch (outcome events carry neither):
    from the batch's own rows, else as stored by earlier batches."""
    found: dict[tuple[str, str], tuple] = {}
    wanted: dict[str, list[str]] = {}
    for key in keys:
        row = tasks.get(key)
        if row and row["name"] and row["queue"]:
            found[key] = (row["name"], row["queue"])
        else:
            wanted.setdefault(key[0], []).append(key[1])
    for source, uuids in wanted.items():
        for i in range(0, len(uuids), 500):
            for uuid, name, queue in conn.execute(_IDENTITY_QUERY, {"source": source, "uuids": uuids[i:i + 500]}):
                found[(source, uuid)] = (name, queue)
    return found


def no_outcomes() -> dict[str, Any]:
    return {"succeeded": 0, "failed": 0, "retried": 0, "runtime_sum": 0.0, "runtime_hist": runtime_hist.empty(),
            "runtime_min": None, "runtime_max": None}


def sum_outcomes(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts, histogram and runtime range of outcome rows (of one key, over many buckets) together."""
    out = {field: sum(r[field] for r in rows) for field in ("succeeded", "failed", "retried", "runtime_sum")}
    out["runtime_hist"] = runtime_hist.total([r["runtime_hist"] for r in rows])
    lows = [r["runtime_min"] for r in rows if r["runtime_min"] is not None]
    highs = [r["runtime_max"] for r in rows if r["runtime_max"] is not None]
    out["runtime_min"], out["runtime_max"] = min(lows, default=None), max(highs, default=None)
    return out


def merge_outcomes(agg: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Add `other`'s counts, histogram and runtime range into `agg`."""
    agg.update(sum_outcomes([agg, other]))


OUTCOME_COLUMNS = ("source", "dimension", "key", "bucket", "succeeded", "failed", "retried", "runtime_sum",
                   "runtime_hist", "runtime_min", "runtime_max")


def _stored_outcomes_query(t):
    return select(*(getattr(t, c) for c in OUTCOME_COLUMNS)).where(
        t.source.in_(bindparam("sources", expanding=True)), t.bucket.in_(bindparam("buckets", expanding=True)))


# The outcome rows of some sources and buckets, per table, built once: every batch with an outcome reads them.
_STORED_OUTCOMES = {t: _stored_outcomes_query(t) for t in (CeleryMinute, CeleryHour)}


def _add_outcomes(conn: Connection, table, aggs: dict[tuple, dict[str, Any]]) -> None:
    """Add per-bucket outcomes to what `table` holds (read, merge, write)."""
    # The writer is the only writer, so read-merge-write here cannot race anyone.
    stored = conn.execute(_STORED_OUTCOMES[table], {"sources": list({k[0] for k in aggs}),
                                                    "buckets": list({k[3] for k in aggs})}).mappings()
    for row in stored:
        agg = aggs.get((row["source"], row["dimension"], row["key"], row["bucket"]))
        if agg is not None:  # else: same bucket, another name or queue, not in this batch
            merge_outcomes(agg, row)
    upsert_rows(conn, table.__table__, OUTCOME_COLUMNS[:4], OUTCOME_COLUMNS, [
        (*key, a["succeeded"], a["failed"], a["retried"], a["runtime_sum"], runtime_hist.encode(a["runtime_hist"]),
         a["runtime_min"], a["runtime_max"])
        for key, a in aggs.items()
    ])


def _count_outcome(aggs: dict[tuple, dict[str, Any]], key: tuple, outcome: str, runtime: float | None,
                   runtime_bin: int | None) -> None:
    """One outcome into its bucket's aggregate, made on first use only (it holds an 81-bin histogram)."""
    agg = aggs.get(key)
    if agg is None:
        agg = aggs[key] = no_outcomes()
    agg[outcome] += 1
    if runtime is not None:
        agg["runtime_sum"] += runtime
        agg["runtime_hist"][runtime_bin] += 1
        if agg["runtime_min"] is None or runtime < agg["runtime_min"]:
            agg["runtime_min"] = runtime
        if agg["runtime_max"] is None or runtime > agg["runtime_max"]:
            agg["runtime_max"] = runtime


def _write_minutes(conn: Connection, outcomes: list[tuple], identity: dict) -> None:
    """Add this batch's outcomes to the per-minute and per-hour rows: by task name, by queue, and all tasks."""
    minutes: dict[tuple, dict[str, Any]] = {}
    for source, uuid, outcome, ts, runtime in outcomes:
        name, queue = identity.get((source, uuid), (None, None))
        bucket = int(ts // 60) * 60
        runtime_bin = None if runtime is None else runtime_hist.runtime_bin(runtime)
        if name:
            _count_outcome(minutes, (source, "name", name, bucket), outcome, runtime, runtime_bin)
        if queue:
            _count_outcome(minutes, (source, "queue", queue, bucket), outcome, runtime, runtime_bin)
        _count_outcome(minutes, (source, ALL_TASKS, ALL_TASKS, bucket), outcome, runtime, runtime_bin)
    if not minutes:
        return
    hours: dict[tuple, dict[str, Any]] = {}
    for (source, dimension, key, bucket), agg in minutes.items():
        hour = (source, dimension, key, bucket // 3600 * 3600)
        if hour not in hours:
            hours[hour] = no_outcomes()
        merge_outcomes(hours[hour], agg)
    _add_outcomes(conn, CeleryMinute, minutes)
    _add_outcomes(conn, CeleryHour, hours)


def _upsert_tasks(conn: Connection, rows: list[dict]) -> None:
    """Merge task rows into the stored ones (TASK_MERGE): names by id, each CONVERTED column converted."""
    add_ids(conn, rows)
    dialect = conn.dialect
    for column in CONVERTED:
        convert = column.type.process_bind_param
        for row in rows:
            row[column.name] = convert(row[column.name], dialect)
    upsert_rows(conn, CeleryTask.__table__, TASK_KEYS, TASK_COLUMNS, [_as_db(r, TASK_COLUMNS) for r in rows], TASK_MERGE)


def write_events(conn: Connection, items: list[tuple[str, dict]]) -> None:
    """Writer handler for "celery_event" payloads: (source name, Celery event dict)."""
    tasks: dict[tuple[str, str], dict] = {}
    workers: dict[tuple[str, str], dict] = {}
    outcomes: list[tuple] = []
    for source, ev in items:
        ev = clean_event(ev)  # every field of every event checked and clamped, here only
        if ev is None:
            continue
        etype = ev["type"]
        if etype in EVENT_STATE and ev.get("uuid"):
            _fold_task(tasks, source, ev)
            if etype in OUTCOMES:
                outcomes.append((source, ev["uuid"], OUTCOMES[etype], ev.get("timestamp") or 0.0, ev.get("runtime")))
        elif etype.startswith("worker-") and ev.get("hostname"):
            _fold_worker(workers, source, ev)
    if tasks:
        _upsert_tasks(conn, list(tasks.values()))
    if workers:
        upsert_rows(conn, CeleryWorker.__table__, WORKER_KEYS, WORKER_COLUMNS,
                    [_as_db(r, WORKER_COLUMNS, ("loadavg", "info")) for r in workers.values()], WORKER_MERGE)
    if outcomes:
        _write_minutes(conn, outcomes, _task_identity(conn, tasks, {(s, u) for s, u, *_ in outcomes}))


def write_retry_links(conn: Connection, links: list[dict]) -> None:
    """Record tasks jobdash sent as retries: the new uuid, the task it retries, name and queue.

    state_at 0 lets the new task's own events, whenever they land, set its state.
    """
    rows = []
    for link in links:
        row = dict(_NO_TASK)
        row.update(source=link["source"], uuid=link["uuid"], retry_of=link["retry_of"], name=link["name"],
                   queue=link["queue"], routing_key=link.get("routing_key"), state="PENDING", state_at=0.0,
                   first_seen_at=link["at"], sent_at=link["at"])
        rows.append(row)
    _upsert_tasks(conn, rows)


def write_worker_drains(conn: Connection, drains: list[dict]) -> None:
    """Remember which queues jobdash drained a worker of (empty once resumed)."""
    t = CeleryWorker
    for drain in drains:
        where = (t.source == drain["source"], t.hostname == drain["hostname"])
        info = conn.execute(select(t.info).where(*where)).scalar_one_or_none() or {}
        conn.execute(t.__table__.update().where(*where).values(info={**info, "drained": drain["drained"]}))


def write_worker_info(conn: Connection, infos: list[dict]) -> None:
    """Store what inspect says of each worker (stats, queues, registered...), keeping jobdash's marks."""
    t = CeleryWorker
    for item in infos:
        where = (t.source == item["source"], t.hostname == item["hostname"])
        stored = conn.execute(select(t.info).where(*where)).first()
        if stored is None:
            conn.execute(t.__table__.insert().values(
                source=item["source"], hostname=item["hostname"], online=True, updated_at=item["at"],
                last_heartbeat=None, info=item["info"]))
        else:
            kept = {k: v for k, v in (stored[0] or {}).items() if k == "drained"}
            conn.execute(t.__table__.update().where(*where).values(info={**item["info"], **kept}))


# A task settled from the result backend counts in the outcomes like one its events finished.
SETTLED_OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed"}


def write_reconciled(conn: Connection, settled: list[dict]) -> None:
    """Settle tasks a gap in events left unfinished (or never stored, when `recover`); a newer event wins."""
    t = CeleryTask
    outcomes = []
    recovered = [{k: _storable(item[k]) for k in RECOVERED if item.get(k) is not None} for item in settled]
    add_ids(conn, recovered)  # names, workers and queues by id, looked up once for the batch
    for item, known in zip(settled, recovered):
        values = {"state": item["state"], "state_at": item["at"], "note": item.get("note")}
        values |= {k: v for k, v in known.items() if k not in NAMED}
        if item.get("done_at") and item["state"] in OUTCOME_EVENT:
            values[EVENT_TIME[OUTCOME_EVENT[item["state"]]]] = item["done_at"]
        done = conn.execute(t.__table__.update()
                            .where(t.source == item["source"], t.uuid == item["uuid"], t.state.in_(UNSETTLED),
                                   t.state_at < item["at"])
                            .values(**values)).rowcount
        where = (t.source == item["source"], t.uuid == item["uuid"])
        if not done and item.get("recover") and conn.execute(select(t.uuid).where(*where)).first() is None:
            # Ended inside a gap, never seen at all: stored with what the backend knew.
            conn.execute(t.__table__.insert().values(source=item["source"], uuid=item["uuid"], **values,
                                                     first_seen_at=item.get("done_at") or item["at"]))
            done = 1
        if done and item["state"] in SETTLED_OUTCOMES:
            ended = item.get("done_at") or item["at"]
            outcomes.append((item["source"], item["uuid"], SETTLED_OUTCOMES[item["state"]], ended, None))
    if outcomes:
        _write_minutes(conn, outcomes, _task_identity(conn, {}, {(s, u) for s, u, *_ in outcomes}))


HANDLERS = {
    "celery_event": write_events,
    "celery_reconcile": write_reconciled,
    "celery_retry_link": write_retry_links,
    "celery_worker_drain": write_worker_drains,
    "celery_worker_info": write_worker_info,
}

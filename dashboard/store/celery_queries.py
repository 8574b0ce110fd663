"""Reads of Celery history: task pages with filters and search, task detail, workers, stats."""
from __future__ import annotations

import base64
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from dashboard.store.celery_ingest import EVENT_STATE, ROOT_SELF, sum_outcomes
from dashboard.store.celery_models import NOT_SUCCESS, CeleryMinute, CeleryName, CeleryTask, CeleryWorker
from dashboard.store.celery_names import ID_COLUMN, NAMED, text_of, where_named, where_text
from dashboard.store.runtime_hist import percentile, percentiles
from dashboard.store.safe_values import finite
from dashboard.store.task_ids import id_prefix

# LOST: jobdash's own verdict for a task no worker holds and no backend can settle.
STATES = sorted({*EVENT_STATE.values(), "LOST"})
# States a gap may have left wrong: settled from the result backend when it knows better.
UNFINISHED = ("PENDING", "RECEIVED", "STARTED", "RETRY", "LOST")
# search key -> (column, how it matches); a NAMED field matches on its text.
SEARCH_KEYS = {
    "state": (CeleryTask.state, "exact"),
    "name": (CeleryName.value, "contains"),
    "worker": (CeleryName.value, "contains"),
    "queue": (CeleryName.value, "exact"),
    "uuid": (CeleryTask.uuid, "prefix"),
    "args": (CeleryTask.args, "contains"),
    "kwargs": (CeleryTask.kwargs, "contains"),
    "result": (CeleryTask.result, "contains"),
    "exception": (CeleryTask.exception, "contains"),
}
# A list row carries the start of long text only (a 1 MiB argument would ride on every refresh);
# the task's own page has it whole.
PREVIEWED = ("args", "kwargs", "exception")
PREVIEW_CHARS = 300
COUNT_CAP = 10_000  # beyond this a page says "10,000+" instead of counting millions of rows
LIST_COLUMNS = ("uuid", "name", "state", "state_at", "first_seen_at", "received_at", "started_at", "runtime",
                "worker", "queue", "retries", "args", "kwargs", "args_truncated", "exception", "retry_of")
# A whole task as its page and the retry action read it: names as text, not ids.
TASK_FIELDS = (*(c for c in CeleryTask.__table__.columns if c.name not in ID_COLUMN.values()),
               *(text_of(field) for field in NAMED))


class QueryError(ValueError):
    """A filter or search the user typed that cannot be run; the message says why."""


@dataclass
class TaskFilter:
    state: str | None = None
    name: str | None = None
    worker: str | None = None
    queue: str | None = None
    since: float | None = None
    until: float | None = None
    search: str = ""
    terms: list[tuple[str, str]] = field(default_factory=list)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_search(text: str) -> list[tuple[str, str]]:
    """Split `state:FAILURE name:billing args:42 "free text"` into (key, value) terms, AND-ed.
    A term without a key searches names, args and kwargs."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"search: {exc}") from None
    terms = []
    for token in tokens:
        key, sep, value = token.partition(":")
        if not sep:
            terms.append(("any", token))
            continue
        key = key.lower()
        if key not in SEARCH_KEYS:
            raise QueryError(f"search: unknown key {key!r}; use one of {', '.join(SEARCH_KEYS)}")
        if not value:
            raise QueryError(f"search: {key}: needs a value, e.g. {key}:something")
        if key == "state":
            value = value.upper()
            if value not in STATES:
                raise QueryError(f"search: state must be one of {', '.join(STATES)}; got {value!r}")
        terms.append((key, value))
    return terms


def _condition(dialect: str, source: str, key: str, value: str):
    if key == "any":
        pattern = f"%{_escape_like(value)}%"
        return or_(where_text("name", CeleryName.value.like(pattern, escape="\\")),
                   CeleryTask.args.like(pattern, escape="\\"),
                   CeleryTask.kwargs.like(pattern, escape="\\"), CeleryTask.uuid == value)
    column, how = SEARCH_KEYS[key]
    if key == "state":
        return in_states((value,))
    if how == "prefix":
        return id_prefix(dialect, CeleryTask.source == source, column, value)
    if how == "exact":
        return where_named(key, value) if key in NAMED else column == value
    match = column.like(f"%{_escape_like(value)}%", escape="\\")
    return where_text(key, match) if key in NAMED else match


def in_states(states: tuple[str, ...]) -> Any:
    """Tasks in one of `states`; saying NOT_SUCCESS too (unless SUCCESS is asked) lets the partial
    state index serve it."""
    match = CeleryTask.state == states[0] if len(states) == 1 else CeleryTask.state.in_(states)
    return match if "SUCCESS" in states else and_(match, text(NOT_SUCCESS))


def _where(dialect: str, source: str, flt: TaskFilter) -> list:
    where = [CeleryTask.source == source]
    for key in ("state", "name", "worker", "queue"):
        value = getattr(flt, key)
        if value:
            where.append(_condition(dialect, source, key, value.upper() if key == "state" else value))
    if flt.since is not None:
        where.append(CeleryTask.first_seen_at >= flt.since)
    if flt.until is not None:
        where.append(CeleryTask.first_seen_at <= flt.until)
    where += [_condition(dialect, source, k, v) for k, v in flt.terms]
    return where


def encode_cursor(ts: float, uuid: str) -> str:
    return base64.urlsafe_b64encode(f"{ts!r}|{uuid}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        ts, uuid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(ts), uuid
    except Exception:
        raise QueryError("cursor: not one this server made; start from the first page") from None


def _list_column(c: str):
    if c in NAMED:
        return text_of(c)
    return func.substr(getattr(CeleryTask, c), 1, PREVIEW_CHARS).label(c) if c in PREVIEWED else getattr(CeleryTask, c)


def _list_columns() -> list:
    return [_list_column(c) for c in LIST_COLUMNS]


def list_rows(engine: Engine, source: str, uuids: list[str]) -> list[dict[str, Any]]:
    """The stored list rows (as a page shows them) of these tasks."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(*_list_columns()).where(CeleryTask.source == source, CeleryTask.uuid.in_(uuids))).mappings()]


def counted_rows(engine: Engine, query: Select, count: Select, past_cursor: bool) -> tuple[list[dict], int]:
    """The rows of `query` and the value of `count`, read in one statement (one snapshot): in two,
    a row committed between them was counted but not listed, and a live list that adds each new
    row's delta to the count then counted it twice."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query.add_columns(count.scalar_subquery().label("_count"))).mappings()]
        # No row: nothing matches at all, or (past a cursor) the count is all there is to read.
        total = rows[0]["_count"] if rows else conn.execute(count).scalar_one() if past_cursor else 0
    for row in rows:
        del row["_count"]
    return rows, total


def task_page(engine: Engine, source: str, flt: TaskFilter, after: str | None = None, limit: int = 50) -> dict[str, Any]:
    """One page of tasks, newest first, by keyset (fast at any depth), with a capped count."""
    where = _where(engine.dialect.name, source, flt)
    page_where = list(where)
    if after:
        ts, uuid = decode_cursor(after)
        # The first term alone bounds the index range; the second breaks ties.
        page_where += [CeleryTask.first_seen_at <= ts, or_(CeleryTask.first_seen_at < ts, CeleryTask.uuid < uuid)]
    query = (select(*_list_columns()).where(*page_where)
             .order_by(CeleryTask.first_seen_at.desc(), CeleryTask.uuid.desc()).limit(limit + 1))
    # Counts index entries only when the filter's columns are all in an index.
    capped = select(func.count()).select_from(select(literal(1)).where(*where).limit(COUNT_CAP + 1).subquery())
    rows, total = counted_rows(engine, query, capped, bool(after))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "tasks": rows,
        "next": encode_cursor(rows[-1]["first_seen_at"], rows[-1]["uuid"]) if more else None,
        "total": min(total, COUNT_CAP), "total_capped": total > COUNT_CAP,
    }


def failures(engine: Engine, source: str, name: str, since: float, until: float, limit: int) -> tuple[int, list[dict]]:
    """How many tasks of `name` failed between since and until, and the first `limit` of them."""
    where = [CeleryTask.source == source, where_named("name", name), in_states(("FAILURE",)),
             CeleryTask.first_seen_at >= since, CeleryTask.first_seen_at <= until]
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(CeleryTask).where(*where)).scalar_one()
        rows = [restore_root(r) for r in conn.execute(
            select(*TASK_FIELDS).where(*where).order_by(CeleryTask.first_seen_at).limit(limit)).mappings()]
    return count, rows


def unfinished(engine: Engine, source: str, before: float, limit: int = 500) -> list[dict[str, Any]]:
    """Tasks in a non-final state whose last event is older than `before`, oldest first, with what
    the store knows of their worker's liveness (last heartbeat, its interval, last inspect ping)."""
    t, w, n = CeleryTask, CeleryWorker, aliased(CeleryName)
    query = (select(t.uuid, n.value.label("worker"), t.state, t.state_at, w.last_heartbeat, w.freq, w.info)
             .select_from(t).outerjoin(n, n.id == t.worker_id)
             .outerjoin(w, and_(w.source == t.source, w.hostname == n.value))
             .where(t.source == source, in_states(UNFINISHED), t.state_at < before)
             .order_by(t.state_at).limit(limit))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        info = row.pop("info") or {}
        row["pinged_at"], row["poll_interval"] = info.get("pinged_at"), info.get("poll_interval")
    return rows


def stored_states(engine: Engine, source: str, uuids: list[str]) -> dict[str, str]:
    """The stored state of each of these tasks that is stored at all."""
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for i in range(0, len(uuids), 500):
            query = select(CeleryTask.uuid, CeleryTask.state).where(
                CeleryTask.source == source, CeleryTask.uuid.in_(uuids[i:i + 500]))
            out.update(dict(conn.execute(query).all()))
    return out


def last_seen(engine: Engine, source: str) -> float | None:
    """When the newest stored task of a source was first seen (where a restart's gap begins)."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(CeleryTask.first_seen_at)).where(CeleryTask.source == source)).scalar_one()


def task_detail(engine: Engine, source: str, uuid: str) -> dict[str, Any] | None:
    """One task with its children and the retries jobdash made of it."""
    with engine.connect() as conn:
        row = conn.execute(select(*TASK_FIELDS).where(CeleryTask.source == source, CeleryTask.uuid == uuid)).mappings().first()
        if row is None:
            return None
        task = restore_root(row)
        related = select(CeleryTask.uuid, text_of("name"), CeleryTask.state, CeleryTask.first_seen_at)
        # IS NOT NULL: what the partial indexes hold, said so that they serve these.
        task["children"] = [dict(r) for r in conn.execute(
            related.where(CeleryTask.source == source, CeleryTask.parent_id.is_not(None), CeleryTask.parent_id == uuid)
            .order_by(CeleryTask.first_seen_at).limit(200)).mappings()]
        task["retried_by"] = [dict(r) for r in conn.execute(
            related.where(CeleryTask.source == source, CeleryTask.retry_of.is_not(None), CeleryTask.retry_of == uuid)
            .order_by(CeleryTask.first_seen_at)).mappings()]
    return task


def restore_root(row) -> dict[str, Any]:
    """A stored task row as a dict, its root_id given back where it was stored as ROOT_SELF."""
    task = dict(row)
    if task["root_id"] == ROOT_SELF:
        task["root_id"] = task["uuid"]
    return task


def workers(engine: Engine, source: str, now: float | None = None) -> list[dict[str, Any]]:
    """Workers of a source; one silent for two heartbeat intervals (or, without events, missing
    two inspect pings) counts as offline."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(CeleryWorker).where(CeleryWorker.source == source).order_by(CeleryWorker.hostname)).mappings()]
    for w in rows:
        # Any stored value is checked as it is read: rows from before the ingest clamp may hold anything.
        heartbeat = finite(w["last_heartbeat"])
        age = now - heartbeat if heartbeat else None
        w["heartbeat_age"] = age
        info = w["info"] if isinstance(w["info"], dict) else {}
        pinged = finite(info.get("pinged_at"))
        by_ping = pinged is not None and now - pinged <= 2 * (finite(info.get("poll_interval")) or 5.0)
        w["online"] = bool(w["online"]) and age is not None and age <= 2 * (finite(w["freq"]) or 2.0) or by_ping
        loads = [finite(v) for v in w["loadavg"]] if isinstance(w["loadavg"], list) else []
        w["loadavg"] = loads if loads and None not in loads else None
        drained = info.get("drained")
        w["drained"] = [str(q) for q in drained] if isinstance(drained, list) else []
    return rows


def minute_stats(engine: Engine, source: str, dimension: str, since: float, until: float | None = None) -> list[dict[str, Any]]:
    """Per-minute outcomes and runtime percentiles by task name or queue."""
    until = time.time() if until is None else until
    m = CeleryMinute
    with engine.connect() as conn:
        rows = conn.execute(select(m.key, m.bucket, m.succeeded, m.failed, m.retried, m.runtime_sum, m.runtime_hist,
                                   m.runtime_min, m.runtime_max)
                            .where(m.source == source, m.dimension == dimension, m.bucket >= since, m.bucket <= until)
                            .order_by(m.bucket, m.key)).mappings()
        out = []
        for r in rows:
            done = r["succeeded"] + r["failed"]
            out.append({"key": r["key"], "ts": r["bucket"], "succeeded": r["succeeded"], "failed": r["failed"],
                        "retried": r["retried"], "failure_rate": r["failed"] / done if done else None,
                        "runtime_mean": r["runtime_sum"] / r["succeeded"] if r["succeeded"] else None,
                        **{f"runtime_p{round(q * 100)}": percentile(r["runtime_hist"], q, r["runtime_min"], r["runtime_max"])
                           for q in (0.5, 0.95, 0.99)}})
    return out


def totals_by_name(engine: Engine, source: str, since: float, until: float) -> list[dict[str, Any]]:
    """Per task name over a span: outcomes, and runtime percentiles from the merged histograms."""
    m = CeleryMinute
    by_name: dict[str, list] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(m.key, m.succeeded, m.failed, m.retried, m.runtime_sum, m.runtime_hist,
                                   m.runtime_min, m.runtime_max)
                            .where(m.source == source, m.dimension == "name", m.bucket >= since - 60, m.bucket <= until))
        for row in rows.mappings():
            by_name.setdefault(row["key"], []).append(row)
    return name_table(by_name)


def name_table(by_name: dict[str, list]) -> list[dict[str, Any]]:
    """Per task name, busiest first: outcomes, failure rate and runtime p50 / p95 of its outcome rows together."""
    out = []
    for name, rows in by_name.items():
        t = sum_outcomes(rows)
        done = t["succeeded"] + t["failed"]
        p50, p95 = percentiles(t["runtime_hist"], (0.5, 0.95), t["runtime_min"], t["runtime_max"])
        out.append({"name": name, "succeeded": t["succeeded"], "failed": t["failed"], "retried": t["retried"],
                    "failure_rate": t["failed"] / done if done else None, "p50": p50, "p95": p95})
    return sorted(out, key=lambda r: (-(r["succeeded"] + r["failed"]), r["name"]))

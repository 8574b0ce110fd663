"""Dask: the cluster, its workers, progress per task prefix and the task stream, from the scheduler.

Every figure comes from scheduler RPCs a plain client may call (identity, get_task_prefix_states,
get_task_stream, versions); nothing runs on the scheduler.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from distributed import Client

from collectors.base import Collector, Observation
from collectors.dask_link import DaskLink
from collectors.dask_stream import clip, task_record

logger = logging.getLogger(__name__)

TASK_STATES = ("processing", "waiting", "memory", "erred", "released")
MAX_READ = 20_000  # task-stream records one poll reads at most


async def _ask(client: Client, cursor: int, scheduler_id: str | None, max_read: int) -> dict[str, Any]:
    """The scheduler's identity, prefix states and the task stream from `cursor` on (at most the
    newest `max_read` records), under one deadline."""
    # Not client.scheduler_info(): on a lost scheduler it returns the stale cached answer.
    identity, prefixes, index = await asyncio.gather(
        client.scheduler.identity(n_workers=-1), client.scheduler.get_task_prefix_states(),
        client.scheduler.get_task_stream_index())
    restarted = identity.get("id") != scheduler_id or index < cursor
    if restarted:
        cursor = 0  # a new scheduler (or a new reader) numbers the stream from zero
    # A backlog beyond max_read (a busy scheduler met for the first time, a long outage) is skipped,
    # so that one poll stays within its timeout.
    start = max(cursor, index - max_read)
    records = await client.scheduler.get_task_stream(start_index=start)
    missed = 0 if restarted else start - cursor
    if start + len(records) < index:
        # The buffer dropped records before we read them: jump to its end and say so.
        newest = await client.scheduler.get_task_stream_index()
        missed += max(0, newest - start - len(records))
        cursor = newest
    else:
        cursor = start + len(records)
    answer = {"identity": identity, "prefixes": prefixes, "records": records, "cursor": cursor, "missed": missed}
    if restarted:
        answer["versions"] = await client.scheduler.versions()
    return answer


def _metric(metrics: dict[str, Any], *path: str) -> float:
    value: Any = metrics
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def worker_record(address: str, info: dict[str, Any]) -> dict[str, Any]:
    """What the workers table shows of one worker, from its identity in the scheduler's."""
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    counts = metrics.get("task_counts") if isinstance(metrics.get("task_counts"), dict) else {}
    memory, managed = _metric(metrics, "memory"), _metric(metrics, "managed_bytes")
    return {
        "address": clip(address, 255), "name": clip(info.get("name"), 255), "status": clip(info.get("status"), 32),
        "nthreads": int(_metric(info, "nthreads")), "memory_limit": _metric(info, "memory_limit") or None,
        "memory": memory, "managed": managed, "unmanaged": max(0.0, memory - managed),
        "spilled": _metric(metrics, "spilled_bytes", "disk"), "cpu": _metric(metrics, "cpu"),
        "executing": int(_metric(counts, "executing")),
        "ready": int(_metric(counts, "ready") + _metric(counts, "constrained")),
        "in_memory": int(_metric(counts, "memory")), "last_seen": _metric(info, "last_seen") or None,
        "nanny": clip(info.get("nanny"), 255),
    }


class DaskCollector(Collector):
    """Poll a Dask scheduler through one long-lived link (collectors.dask_link), its client rebuilt after a failure."""

    kind = "dask"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, address: str = "", **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, address=address, **options)
        self.address = address
        # Answer (or fail) a little before the runner abandons the poll, so the error is ours.
        self.call_timeout = max(0.5, timeout * 0.8)
        self.link = DaskLink(address, self.call_timeout)
        self.cursor = 0  # the task stream's index read up to
        self.max_read = MAX_READ
        self.scheduler_id: str | None = None
        self.version: str | None = None
        # Stream records that stopped before this collector started were counted by an earlier run.
        self.started_at = time.time()
        self._last_poll_at: float | None = None

    def _ask(self) -> dict[str, Any]:
        lost = self.link.lost()
        if lost:
            # It noticed the scheduler go and is retrying in the background; a fresh client
            # next poll fails (or succeeds) at once instead of after its reconnect timeout.
            self.link.drop()
            raise ConnectionError(f"scheduler {self.address} lost ({lost})")
        try:
            client = self.link.client
            return self.link.run(_ask, client, self.cursor, self.scheduler_id, self.max_read)
        except Exception as exc:
            self.link.drop()
            if isinstance(exc, (ConnectionError, TimeoutError)):
                raise
            # CommClosedError (an OSError), or AttributeError once the client gave up reconnecting
            # and dropped its scheduler handle.
            if isinstance(exc, (OSError, AttributeError)):
                raise ConnectionError(f"scheduler {self.address} lost: {type(exc).__name__}: {exc}") from exc
            raise

    def collect(self) -> Observation:
        answer = self._ask()
        now = time.time()
        identity, prefixes = answer["identity"], answer["prefixes"]
        self.cursor, self.scheduler_id = answer["cursor"], identity.get("id")
        if "versions" in answer:
            packages = (answer["versions"] or {}).get("packages") or {}
            self.version = clip(packages.get("distributed"), 64)
        workers = [worker_record(addr, info) for addr, info in (identity.get("workers") or {}).items()]
        tasks = [t for t in (task_record(r) for r in answer["records"]) if t is not None]
        fresh = [t for t in tasks if (t["stop"] or now) >= self.started_at]
        completed = sum(1 for t in fresh if not t["erred"])
        elapsed = now - self._last_poll_at if self._last_poll_at else None
        self._last_poll_at = now

        states = {s: sum(c.get(s, 0) for c in prefixes.values()) for s in TASK_STATES}
        memory = sum(w["memory"] for w in workers)
        cluster = {
            "workers": len(workers), "threads": sum(w["nthreads"] for w in workers), "memory": memory,
            "memory_limit": sum(w["memory_limit"] or 0 for w in workers),
            "managed": sum(w["managed"] for w in workers), "unmanaged": sum(w["unmanaged"] for w in workers),
            "spilled": sum(w["spilled"] for w in workers),
            "processing": states["processing"], "waiting": states["waiting"], "in_memory": states["memory"],
            "erred": states["erred"],
            "tasks_per_s": round(completed / elapsed, 2) if elapsed else 0.0,
        }
        headline = {k: cluster[k] for k in ("workers", "threads", "memory", "memory_limit", "processing", "waiting",
                                            "in_memory", "erred", "tasks_per_s")}
        metrics = [("workers", "", float(len(workers))), ("memory_bytes", "", float(memory)),
                   ("memory_managed", "", cluster["managed"]), ("memory_spilled", "", cluster["spilled"]),
                   ("tasks_processing", "", float(states["processing"])), ("tasks_erred", "", float(states["erred"])),
                   ("tasks_completed", "", float(completed)),
                   ("tasks_failed", "", float(len(fresh) - completed))]
        by_prefix: dict[tuple[str, str], int] = {}
        for t in fresh:
            name = "tasks_failed" if t["erred"] else "tasks_completed"
            by_prefix[(name, t["prefix"])] = by_prefix.get((name, t["prefix"]), 0) + 1
        metrics += [(name, prefix, float(n)) for (name, prefix), n in by_prefix.items()]

        info = {"address": clip(identity.get("address") or self.address, 255), "scheduler_id": self.scheduler_id,
                "version": self.version, "started": identity.get("started"), **cluster}
        records: list[tuple[str, Any]] = [("dask_poll", {
            "source": self.name, "at": now, "cluster": info, "workers": workers,
            "prefixes": {clip(p, 255): {s: int(c.get(s, 0)) for s in TASK_STATES} for p, c in prefixes.items()},
        })]
        if tasks:
            records.append(("dask_tasks", {"source": self.name, "at": now, "tasks": tasks,
                                           "counted_after": self.started_at}))
        problems = [] if workers else ["scheduler has no workers"]
        if answer["missed"]:
            problems.append(f"task stream: {answer['missed']} records were not read (too many since the last poll)")
        return Observation(headline=headline, metrics=metrics, records=records, degraded="; ".join(problems) or None)

    def close(self) -> None:
        self.link.close()

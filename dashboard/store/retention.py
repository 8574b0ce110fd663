"""Retention: what is old enough to go, deleted a chunk per writer batch so that ingest never waits long."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from dashboard.store.timeseries import Retention

logger = logging.getLogger(__name__)

CHUNK = 5000  # rows per table per step: a step costs about one ingest batch
UNLIMITED = 2 ** 62


@dataclass
class Cutoffs:
    """Per table, the time below which rows go; computed once per sweep by the pruner."""

    samples: float
    minutes: float  # rollups of 60 s and Celery's per-minute outcomes: buckets starting before this go
    hours: float
    transitions: float  # source and Consul check state changes: kept as long as hour rollups (availability)
    erred: float  # Dask erred tasks: kept as long as Celery task rows
    tasks: dict[str, float] = field(default_factory=dict)  # Celery source -> first_seen_at cut (age or row cap)
    chunk: int = CHUNK


def _age_cutoffs(policy: Retention, now: float) -> Cutoffs:
    """Cutoffs by age alone; a bucket goes only once all of it (bucket + step) is past its retention."""
    return Cutoffs(now - policy.raw_hours * 3600, now - policy.minute_days * 86400 - 60,
                   now - policy.hour_days * 86400 - 3600, now - policy.hour_days * 86400,
                   now - policy.tasks_days * 86400)


# Every source with task rows, one index seek per source (a skip scan): a source taken out of the
# configuration still ages out and keeps to the cap, instead of staying forever.
_STORED_SOURCES = text(
    "WITH RECURSIVE s(source) AS (SELECT MIN(source) FROM celery_tasks UNION ALL "
    "SELECT (SELECT MIN(source) FROM celery_tasks WHERE source > s.source) FROM s WHERE s.source IS NOT NULL) "
    "SELECT source FROM s WHERE source IS NOT NULL")


def cutoffs(engine: Engine, policy: Retention, celery_sources: list[str], now: float | None = None) -> Cutoffs:
    """The cutoffs for `policy` now, for the configured Celery sources and any other with stored tasks;
    a source over its row cap is cut at its cap-th newest task."""
    now = time.time() if now is None else now
    cuts = _age_cutoffs(policy, now)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(_STORED_SOURCES)]
        for source in dict.fromkeys([*celery_sources, *stored]):
            cut = now - policy.tasks_days * 86400
            capped = conn.execute(text("SELECT first_seen_at FROM celery_tasks WHERE source = :s "
                                       "ORDER BY first_seen_at DESC LIMIT 1 OFFSET :cap"),
                                  {"s": source, "cap": policy.tasks_max}).scalar()
            cuts.tasks[source] = max(cut, capped + 1e-6) if capped is not None else cut
    return cuts


# (table, SQL deleting up to :n rows below :cut, the query saying whether any remain)
_STEPS = (
    ("samples", "DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE ts < :cut LIMIT :n)",
     "SELECT 1 FROM samples WHERE ts < :cut LIMIT 1"),
    ("minutes", "DELETE FROM rollups WHERE (source, metric, label, step, bucket) IN (SELECT source, metric, label, "
                "step, bucket FROM rollups WHERE step = 60 AND bucket < :cut LIMIT :n)",
     "SELECT 1 FROM rollups WHERE step = 60 AND bucket < :cut LIMIT 1"),
    ("hours", "DELETE FROM rollups WHERE (source, metric, label, step, bucket) IN (SELECT source, metric, label, "
              "step, bucket FROM rollups WHERE step = 3600 AND bucket < :cut LIMIT :n)",
     "SELECT 1 FROM rollups WHERE step = 3600 AND bucket < :cut LIMIT 1"),
    ("minutes", "DELETE FROM celery_minutes WHERE (source, dimension, key, bucket) IN (SELECT source, dimension, key, "
                "bucket FROM celery_minutes WHERE bucket < :cut LIMIT :n)",
     "SELECT 1 FROM celery_minutes WHERE bucket < :cut LIMIT 1"),
    ("hours", "DELETE FROM celery_hours WHERE (source, dimension, key, bucket) IN (SELECT source, dimension, key, "
              "bucket FROM celery_hours WHERE bucket < :cut LIMIT :n)",
     "SELECT 1 FROM celery_hours WHERE bucket < :cut LIMIT 1"),
    ("minutes", "DELETE FROM dask_minutes WHERE (source, prefix, bucket) IN (SELECT source, prefix, bucket "
                "FROM dask_minutes WHERE bucket < :cut LIMIT :n)",
     "SELECT 1 FROM dask_minutes WHERE bucket < :cut LIMIT 1"),
    ("transitions", "DELETE FROM source_transitions WHERE id IN (SELECT id FROM source_transitions WHERE at < :cut "
                    "LIMIT :n)", "SELECT 1 FROM source_transitions WHERE at < :cut LIMIT 1"),
    ("transitions", "DELETE FROM consul_transitions WHERE id IN (SELECT id FROM consul_transitions WHERE at < :cut "
                    "LIMIT :n)", "SELECT 1 FROM consul_transitions WHERE at < :cut LIMIT 1"),
    ("erred", "DELETE FROM dask_erred WHERE (source, key) IN (SELECT source, key FROM dask_erred "
              "WHERE erred_at < :cut LIMIT :n)", "SELECT 1 FROM dask_erred WHERE erred_at < :cut LIMIT 1"),
)
_TASKS = ("DELETE FROM celery_tasks WHERE source = :s AND uuid IN (SELECT uuid FROM celery_tasks "
          "WHERE source = :s AND first_seen_at < :cut LIMIT :n)",
          "SELECT 1 FROM celery_tasks WHERE source = :s AND first_seen_at < :cut LIMIT 1")


def prune_step(conn: Connection, steps: list[Cutoffs]) -> None:
    """Writer handler for "prune_step": delete up to a chunk of rows below the cutoffs, per table."""
    cuts = steps[-1]
    for name, delete, _ in _STEPS:
        conn.execute(text(delete), {"cut": getattr(cuts, name), "n": cuts.chunk})
    for source, cut in cuts.tasks.items():
        conn.execute(text(_TASKS[0]), {"s": source, "cut": cut, "n": cuts.chunk})


def remaining(engine: Engine, cuts: Cutoffs) -> bool:
    """Whether any row is still below its cutoff (each answered by an index)."""
    with engine.connect() as conn:
        if any(conn.execute(text(query), {"cut": getattr(cuts, name)}).first() for name, _, query in _STEPS):
            return True
        return any(conn.execute(text(_TASKS[1]), {"s": s, "cut": cut}).first() for s, cut in cuts.tasks.items())


def prune(conn: Connection, policies: list[Retention]) -> None:
    """Writer handler for "prune": everything past its retention at once (small stores, tests)."""
    cuts = _age_cutoffs(policies[-1], time.time())
    cuts.chunk = UNLIMITED
    prune_step(conn, [cuts])


def sweep(writer, engine: Engine, policy: Retention, celery_sources: list[str], stop: threading.Event) -> int:
    """Prune a chunk per writer batch until nothing is past its retention; return the steps taken."""
    cuts = cutoffs(engine, policy, celery_sources)
    steps = 0
    while not stop.is_set() and remaining(engine, cuts):
        writer.write("prune_step", cuts, timeout=120)
        steps += 1
    if steps:
        logger.info("retention sweep: %d steps", steps)
    return steps


HANDLERS = {"prune": prune, "prune_step": prune_step}

"""Reads behind the overview's "Needs attention" strip and card sparklines."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from dashboard.store.celery_models import CeleryName, CeleryTask
from dashboard.store.celery_queries import in_states
from dashboard.store.models import Rollup, Sample


def celery_tasks_by_name(engine: Engine, state: str, since: float) -> list[dict[str, Any]]:
    """Tasks now in `state` whose state was set since `since`, counted per source and task name."""
    t = CeleryTask
    # Materialized, so that the tasks are found by the (partial) state index, not by walking every
    # task in name order for the grouping's sake.
    found = select(t.source, t.name_id, t.state_at).where(in_states((state,)), t.state_at >= since).cte("found")
    found = found.prefix_with("MATERIALIZED")
    name = select(CeleryName.value).where(CeleryName.id == found.c.name_id).scalar_subquery().label("name")
    query = (select(found.c.source, name, func.count().label("count"), func.max(found.c.state_at).label("at"))
             .group_by(found.c.source, found.c.name_id))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def minute_series(engine: Engine, source: str, metric: str, since: float,
                  label: str | None = None) -> list[tuple[int, float]]:
    """Per-minute means of a metric since `since`: of one label, or summed over all (e.g. lag over groups)."""
    r = Rollup
    where = [r.source == source, r.metric == metric, r.step == 60, r.bucket >= since]
    if label is not None:
        where.append(r.label == label)
    query = select(r.bucket, func.sum(r.total / r.count)).where(*where).group_by(r.bucket).order_by(r.bucket)
    with engine.connect() as conn:
        return [(int(bucket), float(value)) for bucket, value in conn.execute(query)]


def latest_by_label(engine: Engine, source: str, metric: str, since: float) -> dict[str, float]:
    """The last raw value of each label of a metric sampled since `since`."""
    s = Sample
    newest = (select(s.label, func.max(s.ts).label("ts"))
              .where(s.source == source, s.metric == metric, s.ts >= since).group_by(s.label).subquery())
    query = select(s.label, s.value).join(newest, (s.label == newest.c.label) & (s.ts == newest.c.ts)).where(
        s.source == source, s.metric == metric)
    with engine.connect() as conn:
        return {label: float(value) for label, value in conn.execute(query)}

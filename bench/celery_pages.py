"""Task-list latency with a million stored tasks: jobdash's keyset pages vs Flower's in-memory list.

    python -m bench.celery_pages [--tasks 1000000]

Fills a SQLite store through the real ingest path, then times the queries the Tasks page
makes (first page, a page 10,000 rows deep, a state filter, a search) with their capped count.
Flower keeps at most `max_tasks` (10,000 by default) in memory and sorts and filters them per
request (flower.utils.tasks.iter_tasks); its figure is for the same stream with max_tasks raised
to the whole stream, the only way it can show a million tasks at all.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.celery_ingest import SOURCE, _store
from bench.celery_stream import task_events
from dashboard.store.celery_queries import TaskFilter, parse_search, task_page


def timed(fn, repeat: int = 5) -> float:
    """Median milliseconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine, writer = _store(Path(tmp))
        started = time.perf_counter()
        for i, ev in enumerate(task_events(args.tasks)):
            writer.submit("celery_event", (SOURCE, ev))
            if i % 50_000 == 0:
                writer.flush(timeout=600)
        writer.flush(timeout=600)
        writer.stop()
        print(f"stored {args.tasks:,} tasks in {time.perf_counter() - started:.0f} s")

        cursor = None
        for _ in range(200):  # walk 200 pages of 50 to find a cursor 10,000 rows deep
            cursor = task_page(engine, SOURCE, TaskFilter(), after=cursor)["next"]
        cases = {
            "first page": lambda: task_page(engine, SOURCE, TaskFilter()),
            "page 10,000 rows deep": lambda: task_page(engine, SOURCE, TaskFilter(), after=cursor),
            "state=FAILURE": lambda: task_page(engine, SOURCE, TaskFilter(state="FAILURE")),
            "search name:billing args:42": lambda: task_page(
                engine, SOURCE, TaskFilter(terms=parse_search("name:billing args:42"))),
            "worker=worker-3": lambda: task_page(engine, SOURCE, TaskFilter(worker="worker-3")),
            # About one task in 65,536 has it: the page reads through every task to fill itself.
            "search uuid:ab12": lambda: task_page(engine, SOURCE, TaskFilter(terms=parse_search("uuid:ab12"))),
        }
        for label, fn in cases.items():
            print(f"jobdash {label:<30} {timed(fn):8.1f} ms")
        engine.dispose()

    flower_tasks = min(args.tasks, 200_000)
    from flower.events import EventsState
    from flower.utils.tasks import iter_tasks

    state = EventsState(max_tasks_in_memory=flower_tasks)
    for ev in task_events(flower_tasks):
        state.event(ev)
    events = SimpleNamespace(state=state)  # iter_tasks reads flower's Events object's .state only
    first = lambda: list(iter_tasks(events, limit=50, sort_by="-received"))  # noqa: E731
    failed = lambda: list(iter_tasks(events, limit=50, state="FAILURE", sort_by="-received"))  # noqa: E731
    print(f"Flower first page ({flower_tasks:,} tasks in memory) {timed(first):8.1f} ms")
    print(f"Flower state=FAILURE ({flower_tasks:,} in memory)   {timed(failed):8.1f} ms")


if __name__ == "__main__":
    main()

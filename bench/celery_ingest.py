"""Celery events per second: jobdash's durable ingest vs Flower's EventsState, in one run.

    python bench/celery_ingest.py [--tasks 100000] [--rss-tasks 100000,1000000]

jobdash's figure is end to end: each event handed to the store writer as the event receiver
does, until every row is committed to SQLite (WAL) on disk. Flower's is `EventsState.event`
(flower from PyPI, a bench-only dependency), in memory. Both consume the same pre-built list
of events. Peak RSS is measured in a fresh process per size, with events generated as they
are fed, so the figure is jobdash's own footprint, not the stream's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.celery_stream import task_events

SOURCE = "bench"


def _store(folder: Path):
    from dashboard.store import HANDLERS, Writer, make_engine
    from dashboard.store.migrate import upgrade

    url = f"sqlite:///{folder / 'celery.db'}"
    upgrade(url)
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    return engine, writer


def bench_jobdash(events: list[dict]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        engine, writer = _store(Path(tmp))
        submit = writer.submit
        started = time.perf_counter()
        for ev in events:
            submit("celery_event", (SOURCE, ev))
        writer.flush(timeout=600)
        elapsed = time.perf_counter() - started
        writer.stop()
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one()
        engine.dispose()
    expected = sum(1 for ev in events if ev["type"] == "task-sent")
    assert stored == expected, f"stored {stored} tasks, expected {expected}"
    return len(events) / elapsed


def bench_flower(events: list[dict]) -> float:
    from flower.events import EventsState

    state = EventsState(max_tasks_in_memory=len(events))
    started = time.perf_counter()
    for ev in events:
        state.event(ev)
    return len(events) / (time.perf_counter() - started)


def _hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_rss(tasks: int) -> dict:
    """Feed `tasks` tasks' events through the writer; report peak RSS (run in a fresh process)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine, writer = _store(Path(tmp))
        baseline = _hwm_mib()
        n = 0
        started = time.perf_counter()
        for ev in task_events(tasks):
            writer.submit("celery_event", (SOURCE, ev))
            n += 1
            if n % 20000 == 0:
                writer.flush(timeout=600)  # as a live stream would: never far ahead of the disk
        writer.flush(timeout=600)
        elapsed = time.perf_counter() - started
        writer.stop()
        engine.dispose()
    return {"tasks": tasks, "events": n, "events_per_s": n / elapsed,
            "peak_rss_mib": _hwm_mib(), "rss_before_ingest_mib": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rss-tasks", default="100000,1000000", help="comma-separated sizes; empty to skip")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        print(json.dumps(peak_rss(args.rss_child)))
        return

    events = list(task_events(args.tasks))
    failed = sum(1 for ev in events if ev["type"] == "task-failed")
    print(f"stream: {len(events):,} events, {args.tasks:,} tasks, {failed:,} failed with tracebacks")
    ours = bench_jobdash(events)
    theirs = bench_flower(events)
    print(f"jobdash durable ingest (SQLite, committed): {ours:,.0f} events/s")
    print(f"Flower EventsState.event (in memory):       {theirs:,.0f} events/s")
    print(f"ratio jobdash/Flower:                       {ours / theirs:.2f}  (target >= 2.0)")
    del events
    for size in filter(None, args.rss_tasks.split(",")):
        out = subprocess.run([sys.executable, "-m", "bench.celery_ingest", "--rss-child", size],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak RSS at {r['tasks']:,} tasks ({r['events']:,} events): {r['peak_rss_mib']:.0f} MiB "
              f"(before ingest {r['rss_before_ingest_mib']:.0f} MiB; {r['events_per_s']:,.0f} events/s)  (target <= 150)")


if __name__ == "__main__":
    main()

"""Celery events per second: jobdash's durable ingest vs Flower's EventsState, in one run.

    python bench/celery_ingest.py [--tasks 100000] [--rss-tasks 100000,1000000] [--stored 1000000,10000000]

jobdash's figure is end to end: each event handed to the store writer as the event receiver
does, until every row is committed to SQLite (WAL) on disk. Flower's is `EventsState.event`
(flower from PyPI, a bench-only dependency), in memory. Both consume the same pre-built list
of events. Peak RSS is measured in a fresh process per size, with events generated as they
are fed, so the figure is jobdash's own footprint, not the stream's. With `--stored`, the same
stream is ingested on top of a store already holding that many tasks (copies of real ingested
rows under new random ids, older than the stream), and bytes per task is the database file (after
a WAL checkpoint) over the tasks it holds, then split into the task table and each of its indexes.
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


SEED_TASKS = 10_000


def _fill(engine, stored: int) -> None:
    """Grow the store to `stored` tasks by doubling copies of its rows under new random uuids (16 bytes,
    as dashboard.store.task_ids stores Celery's), each copy moved an hour further back so the measured
    stream stays the newest (as live ingest meets it). A copy of a top-level task stays its own root
    (stored as ''), as in the stream."""
    with engine.begin() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(celery_tasks)")]
        have, k = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one(), 0
        while have < stored:
            k += 1
            picked = ["randomblob(16)" if c == "uuid" else f"{c} - {3600 * k}" if c.endswith("_at") else c
                      for c in columns]
            conn.exec_driver_sql(f"INSERT INTO celery_tasks ({', '.join(columns)}) "  # noqa: S608
                                 f"SELECT {', '.join(picked)} FROM celery_tasks LIMIT {stored - have}")
            have = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one()


def bench_stored(events: list[dict], stored: int) -> dict:
    """Events/s of `events` into a store already holding `stored` tasks; bytes per task after."""
    with tempfile.TemporaryDirectory() as tmp:
        engine, writer = _store(Path(tmp))
        for ev in task_events(SEED_TASKS, start=1_600_000_000.0, seed=11):
            writer.submit("celery_event", (SOURCE, ev))
        writer.flush(timeout=600)
        filled = time.perf_counter()
        _fill(engine, stored)
        with engine.connect() as conn:  # the fill's gigabytes of log go back first, as a live store's long have
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        filled = time.perf_counter() - filled
        with engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one()
        started = time.perf_counter()
        for ev in events:
            writer.submit("celery_event", (SOURCE, ev))
        writer.flush(timeout=3600)
        elapsed = time.perf_counter() - started
        writer.stop()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            total = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one()
            # Where the bytes go: the task table and each of its indexes, pages included whole.
            parts = dict(conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat WHERE name IN "
                                              "(SELECT name FROM sqlite_master WHERE tbl_name = 'celery_tasks') "
                                              "GROUP BY name ORDER BY 2 DESC").all())
        engine.dispose()
        size = (Path(tmp) / "celery.db").stat().st_size
    return {"stored": before, "total": total, "events_per_s": len(events) / elapsed, "bytes_per_task": size / total,
            "size_mib": size / 2 ** 20, "fill_s": filled, "parts": {k: v / total for k, v in parts.items()}}


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
    parser.add_argument("--stored", default="", help="comma-separated stored-task counts to ingest on top of")
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
    for size in filter(None, args.stored.split(",")):
        r = bench_stored(events, int(size))
        print(f"with {r['stored']:,} tasks stored: {r['events_per_s']:,.0f} events/s, ratio to Flower "
              f"{r['events_per_s'] / theirs:.2f} (target >= 2.0); {r['bytes_per_task']:.0f} bytes/task over "
              f"{r['total']:,} tasks "
              f"({r['size_mib']:,.0f} MiB; filled in {r['fill_s']:.0f} s)")
        print("    bytes/task: " + ", ".join(f"{name} {size:.0f}" for name, size in r["parts"].items()))
    del events
    for size in filter(None, args.rss_tasks.split(",")):
        out = subprocess.run([sys.executable, "-m", "bench.celery_ingest", "--rss-child", size],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak RSS at {r['tasks']:,} tasks ({r['events']:,} events): {r['peak_rss_mib']:.0f} MiB "
              f"(before ingest {r['rss_before_ingest_mib']:.0f} MiB; {r['events_per_s']:,.0f} events/s)  (target <= 150)")


if __name__ == "__main__":
    main()

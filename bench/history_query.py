"""History page latency over a year of data: rollup reads vs the same series computed from raw task rows.

    python -m bench.history_query [--tasks 10000000] [--series 50] [--db PATH]

Generates (in SQLite, with SQL) 10 M finished Celery tasks spread over a year, their per-hour
outcomes for the year and per-minute outcomes for the last 14 days (the default retention), and
50 metric series with hour rollups for a year and minute rollups for 14 days. Then times what the
History page asks for over 30 days: the outcomes chart, one metric chart, and the whole page's
data (every chart, the tables and the summary, serialised to JSON); and the same outcomes chart
and per-name runtime percentiles computed from the raw task rows (the peer). `--db` keeps the
generated file for another run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from dashboard.store import history_queries as hq
from dashboard.store import runtime_hist
from dashboard.store import make_engine
from dashboard.store.availability import availability
from dashboard.serving import freeze_startup_heap
from dashboard.store.migrate import upgrade

SOURCE = "bench"
NAMES = 10
QUEUES = 3
YEAR = 365 * 86400
MINUTE_DAYS = 14


def timed(fn, repeat: int = 5) -> float:
    """Median milliseconds of `repeat` calls (after one warm-up call)."""
    fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def _hist_rows(conn, table: str, step: int, since: float) -> None:
    """Fold the generated tasks into `table` rows (outcomes, runtime histogram and range) per `step` seconds."""
    texts = dict(conn.execute("SELECT id, value FROM celery_names").fetchall())
    texts["all"] = "all"
    for dimension, column in (("name", "name_id"), ("queue", "queue_id"), ("all", "'all'")):
        hists: dict[tuple, list[int]] = {}
        for bucket, key, b, n in conn.execute(
                f"SELECT CAST(state_at / {step} AS INT) * {step}, {column}, "
                f"MIN(80, MAX(0, CAST(ceil(4 * log2(runtime / 0.001)) AS INT))), count(*) FROM celery_tasks "
                f"WHERE state = 'SUCCESS' AND state_at >= ? GROUP BY 1, 2, 3", (since,)):
            hists.setdefault((bucket, texts[key]), runtime_hist.empty())[b] = n
        rows = conn.execute(
            f"SELECT CAST(state_at / {step} AS INT) * {step}, {column}, SUM(state = 'SUCCESS'), SUM(state = 'FAILURE'), "
            f"SUM(state = 'RETRY'), TOTAL(runtime), MIN(runtime), MAX(runtime) FROM celery_tasks "
            f"WHERE state_at >= ? GROUP BY 1, 2", (since,)).fetchall()
        conn.executemany(
            f"INSERT INTO {table} (source, dimension, key, bucket, succeeded, failed, retried, runtime_sum, "
            "runtime_hist, runtime_min, runtime_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(SOURCE, dimension, texts[key], bucket, s, f, r, rs,
              runtime_hist.encode(hists.get((bucket, texts[key]), runtime_hist.empty())), lo, hi)
             for bucket, key, s, f, r, rs, lo, hi in rows])


def generate(path: Path, tasks: int, series: int, now: float) -> None:
    """A year of generated history, written with SQL (a real ingest of 10 M tasks would take an hour)."""
    url = f"sqlite:///{path}"
    upgrade(url)
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    start, gap = now - YEAR, YEAR / tasks
    print(f"generating {tasks:,} tasks, {series} series over a year in {path} ...", flush=True)
    # Oldest first, so that every index grows at its end; "random" from i (random() in a CTE is
    # evaluated once per use, so a task's state and runtime would disagree).
    # Names, queues and workers as the store keeps them: ids into celery_names, here 1.. in that order.
    texts = [f"task.{k}" for k in range(NAMES)] + [f"q{k}" for k in range(QUEUES)] + [f"celery@w{k}" for k in range(8)]
    conn.executemany("INSERT INTO celery_names (id, value) VALUES (?, ?)", enumerate(texts, 1))
    conn.execute(
        "INSERT INTO celery_tasks (source, uuid, name_id, state, state_at, first_seen_at, runtime, queue_id, worker_id) "
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?), "
        "g AS (SELECT i, ? + i * ? AS t, (i * 7919) % 100 AS r, (i * 104729) % 1000003 AS u FROM n) "
        "SELECT ?, printf('%012d', i), 1 + u % ?, "
        "CASE WHEN r < 90 THEN 'SUCCESS' WHEN r < 97 THEN 'FAILURE' ELSE 'RETRY' END, t, t, "
        "CASE WHEN r < 90 THEN 0.002 * exp((u % 1000) / 120.0) END, 1 + ? + i % ?, 1 + ? + ? + i % 8 FROM g",
        (tasks, start, gap, SOURCE, NAMES, NAMES, QUEUES, NAMES, QUEUES))
    conn.commit()
    print("folding hours and minutes ...", flush=True)
    _hist_rows(conn, "celery_hours", 3600, 0)
    _hist_rows(conn, "celery_minutes", 60, now - MINUTE_DAYS * 86400)
    for step, since in ((3600, start), (60, now - MINUTE_DAYS * 86400)):
        conn.execute(
            "INSERT INTO rollups (source, metric, label, step, bucket, count, total, min, max, last, last_ts) "
            "WITH RECURSIVE b(t) AS (SELECT ? UNION ALL SELECT t + ? FROM b WHERE t + ? < ?), "
            "s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k + 1 < ?) "
            "SELECT CASE k % 3 WHEN 0 THEN 'kafka/events' WHEN 1 THEN 'dask/analytics' ELSE 'consul/dc1' END, "
            "CASE k % 3 WHEN 0 THEN 'lag' WHEN 1 THEN 'memory_bytes' ELSE 'checks_critical' END, 'series-' || k, "
            "?, t, ? / 5, (abs(random()) % 1000) * (? / 5), 0, 1000, 500, t FROM b, s",
            (int(since) // step * step, step, step, now, series, step, step, step))
    for i, (state, at) in enumerate((("up", start), ("down", now - 20 * 86400), ("up", now - 20 * 86400 + 900))):
        conn.execute("INSERT INTO source_transitions (kind, name, at, state, error) VALUES ('celery', ?, ?, ?, ?)",
                     (SOURCE, at, state, "ConnectionRefusedError" if state == "down" else None))
    conn.commit()  # no ANALYZE: jobdash never runs it, so the plans are those a real store gets
    conn.close()


def page_parts(engine, w: hq.Window, now: float) -> dict:
    """Each read the History page makes for one range, by name."""
    index = hq.metric_catalog(engine, w)
    return {
        "metric catalog": lambda: hq.metric_catalog(engine, w),
        "Celery outcomes": lambda: hq.celery_outcomes(engine, w, SOURCE, "total"),
        "runtimes by name": lambda: hq.celery_runtimes(engine, w, SOURCE),
        f"{sum(len(m['labels']) for m in index)} metric series": lambda: [
            hq.metric_series(engine, w, m["source"], m["metric"], m["labels"]) for m in index],
        "availability": lambda: availability(engine, [("celery", SOURCE)], w.since, w.until, now),
        "summary per day": lambda: hq.summary(engine, w.since, w.until, "day", ZoneInfo("Europe/Berlin"), [SOURCE],
                                              [("celery", SOURCE)]),
    }


def page_data(parts: dict) -> str:
    """Everything the History page loads for one range, serialised as the API does."""
    return json.dumps({name: read() for name, read in parts.items()})


def raw_outcomes(engine, w: hq.Window) -> list[tuple]:
    """The peer: the outcomes chart computed from the raw task rows."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT CAST(first_seen_at / {w.step} AS INT) * {w.step} AS b, SUM(state = 'SUCCESS'), "
            "SUM(state = 'FAILURE'), SUM(state = 'RETRY') FROM celery_tasks "
            "WHERE source = ? AND first_seen_at >= ? AND first_seen_at < ? GROUP BY b ORDER BY b",
            (SOURCE, w.since, w.until)).all()


def raw_percentiles(engine, w: hq.Window) -> dict[str, tuple[float, float]]:
    """The peer: runtime p50 / p95 per task name from the raw rows (exact)."""
    runs: dict[str, list[float]] = {}
    with engine.connect() as conn:
        names = dict(conn.exec_driver_sql("SELECT id, value FROM celery_names").all())
        for name_id, runtime in conn.exec_driver_sql(
                "SELECT name_id, runtime FROM celery_tasks WHERE source = ? AND first_seen_at >= ? AND first_seen_at < ? "
                "AND runtime IS NOT NULL", (SOURCE, w.since, w.until)):
            runs.setdefault(names[name_id], []).append(runtime)
    return {n: (sorted(r)[len(r) // 2], sorted(r)[int(len(r) * 0.95)]) for n, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--db", type=Path, help="keep the generated database here (reused when it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "history.db"
        now = time.time()
        if not path.exists():
            started = time.perf_counter()
            generate(path, args.tasks, args.series, now)
            print(f"generated in {time.perf_counter() - started:.0f} s, {os.path.getsize(path) / 2**30:.2f} GiB")
        engine = make_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            now = conn.exec_driver_sql("SELECT MAX(state_at) FROM celery_tasks").scalar_one() + 60
        w = hq.window(now - 30 * 86400, now)
        rollup = hq.celery_outcomes(engine, w, SOURCE)
        raw = raw_outcomes(engine, w)
        assert sum(r["succeeded"] + r["failed"] + r["retried"] for r in rollup) == sum(s + f + r for _, s, f, r in raw)
        chart = timed(lambda: hq.celery_outcomes(engine, w, SOURCE))
        metric = timed(lambda: hq.metric_series(engine, w, "kafka/events", "lag", ["series-0"]))
        parts = page_parts(engine, w, now)
        freeze_startup_heap()  # as `jobdash serve` and wsgi.py do once started
        page = timed(lambda: page_data(parts), repeat=3)
        # CPU time of this process (SQLite runs inside it): what the page costs, less the waiting on a shared machine.
        cpu_started = time.process_time()
        page_data(parts)
        page_cpu = (time.process_time() - cpu_started) * 1000
        split = {name: timed(read, repeat=1) for name, read in parts.items()}
        peer_chart = timed(lambda: raw_outcomes(engine, w), repeat=3)
        peer_pct = timed(lambda: raw_percentiles(engine, w), repeat=1)
        points = len({r["ts"] for r in rollup})
        print(f"30-day range, {w.step // 60}-minute buckets from the {'minute' if w.stored == 60 else 'hour'} rollups "
              f"({points} points per series)")
        print(f"  Celery outcomes chart:     {chart:8.1f} ms   (target <= 50 ms)")
        print(f"  one metric series chart:   {metric:8.1f} ms")
        print(f"  whole page's data:         {page:8.1f} ms   (target <= 300 ms; {args.series} series, tables, summary)")
        print(f"    CPU time of one call:    {page_cpu:8.1f} ms   (this process, SQLite included)")
        print("    of which " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in split.items()))
        print(f"  machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("peer, from the raw task rows over the same 30 days:")
        print(f"  outcomes chart:            {peer_chart:8.1f} ms   ratio {peer_chart / chart:.0f}x slower")
        print(f"  + runtime p50/p95 by name: {peer_chart + peer_pct:8.1f} ms   "
              f"(the page from rollups is {(peer_chart + peer_pct) / page:.1f}x faster, and draws far more)")
        engine.dispose()


if __name__ == "__main__":
    main()

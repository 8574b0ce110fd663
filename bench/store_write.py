"""Rows per second through jobdash's store writer vs raw sqlite3 executemany, in one run.

    python bench/store_write.py [--rows 200000]

Both sides write the same rows into the same migrated `samples` table (same indexes, WAL,
synchronous=NORMAL), in transactions of 1000 rows. The writer's figure is end to end: from
`submit_many` on a producer thread to rows committed, including its minute/hour rollups.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.migrate import upgrade
from dashboard.store.timeseries import Point

SERIES = 200  # distinct (source, metric, label) series, as from a few dozen sources


def make_points(n: int, start: float) -> list[Point]:
    # One sample per series per second, the shape collectors produce.
    return [Point(f"kafka/src{i % 20}", "lag", float(i), start + i // SERIES, f"group-{i % SERIES}") for i in range(n)]


def fresh_db(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"
    upgrade(url)
    return url


def bench_writer(url: str, points: list[Point]) -> float:
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    started = time.perf_counter()
    for i in range(0, len(points), 1000):
        writer.submit_many("sample", points[i:i + 1000])
    writer.flush(timeout=600)
    elapsed = time.perf_counter() - started
    writer.stop()
    engine.dispose()
    return len(points) / elapsed


def bench_raw(url: str, points: list[Point]) -> float:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = "INSERT INTO samples (source, metric, label, ts, value) VALUES (?, ?, ?, ?, ?)"
    started = time.perf_counter()
    for i in range(0, len(points), 1000):
        with conn:
            conn.executemany(sql, [(p.source, p.metric, p.label, p.ts, p.value) for p in points[i:i + 1000]])
    elapsed = time.perf_counter() - started
    conn.close()
    return len(points) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each; the median is reported")
    args = parser.parse_args()
    points = make_points(args.rows, time.time() - 86400)
    raws, writers = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Alternate the two so that a slow spell of the disk or the other core hits both alike.
        for i in range(args.rounds):
            raws.append(bench_raw(fresh_db(folder, f"raw{i}.db"), points))
            writers.append(bench_writer(fresh_db(folder, f"writer{i}.db"), points))
    raw, writer = statistics.median(raws), statistics.median(writers)
    print(f"rows: {args.rows}, median of {args.rounds} alternating rounds")
    print(f"raw sqlite3 executemany: {raw:,.0f} rows/s")
    print(f"jobdash store writer:    {writer:,.0f} rows/s (with minute and hour rollups)")
    print(f"ratio writer/raw:        {writer / raw:.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()

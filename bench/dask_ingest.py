"""Dask task-stream ingest and poll cost: jobdash's collector into the store vs the bare scheduler RPCs.

    python -m bench.dask_ingest [--workers 50] [--tasks 20000] [--in-memory 100000] [--polls 10] [--interval 2]

A real `dask scheduler` process and processes hosting --workers workers (ten each, one thread
each) run --tasks tiny tasks, and --in-memory more objects are scattered to them; all stay in
memory. Then:

1. records/s: jobdash's first poll reads the whole task stream (every task that finished) and
   commits it to SQLite (WAL, on disk); the peer is the same `get_task_stream` RPC alone, which is
   what Dask's own Client.get_task_stream returns, with nothing stored.
2. cost per poll, steady state: CPU seconds of this process (collector, client, store writer) and
   of the scheduler per poll, as a share of one core at --interval; the peer is the bare RPCs a
   poll makes (identity, prefix states, stream index and stream), with nothing processed or stored.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dashboard.demo.processes import free_port, port_open

WORKERS = """
import asyncio, sys
from distributed import Worker
async def main():
    workers = [await Worker(sys.argv[1], nthreads=1, memory_limit="2GiB", dashboard=False) for _ in range(int(sys.argv[2]))]
    await asyncio.Event().wait()
asyncio.run(main())
"""


def inc(x):
    return x + 1


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def start_cluster(workers: int, tmp: Path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp / "cluster.log").open("wb")
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise SystemExit("the scheduler did not start")
        time.sleep(0.2)
    hosts = [subprocess.Popen([sys.executable, "-c", WORKERS, address, str(min(10, workers - i))], stdout=log,
                              stderr=subprocess.STDOUT) for i in range(0, workers, 10)]
    return address, scheduler, hosts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--in-memory", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()

    from distributed import Client

    from collectors.dask_scheduler import DaskCollector
    from dashboard.store import HANDLERS, Writer, make_engine
    from dashboard.store.migrate import upgrade

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        address, scheduler, hosts = start_cluster(args.workers, tmp)
        try:
            client = Client(address, timeout=60, set_as_default=False)
            client.wait_for_workers(args.workers, timeout=300)
            client.sync(client.scheduler.get_task_stream_index)  # the stream records from now on
            started = time.perf_counter()
            futures = client.map(inc, range(args.tasks))
            client.gather(futures)
            computed = time.perf_counter() - started
            started = time.perf_counter()
            futures += client.scatter(list(range(args.in_memory)))
            print(f"cluster: {args.workers} workers; {args.tasks:,} tasks computed in {computed:.1f} s, "
                  f"{args.in_memory:,} more scattered in {time.perf_counter() - started:.1f} s: "
                  f"{len(futures):,} keys in memory")

            # The peer first: the bare stream read.
            started = time.perf_counter()
            raw = client.sync(client.scheduler.get_task_stream, start_index=0)
            peer_rate = len(raw) / (time.perf_counter() - started)

            url = f"sqlite:///{tmp / 'dask.db'}"
            upgrade(url)
            engine = make_engine(url)
            writer = Writer(engine, HANDLERS)
            writer.start()
            collector = DaskCollector("bench", interval=args.interval, timeout=120, address=address)
            collector.started_at = 0  # count every record, as a first run of jobdash would see them
            collector.max_read = args.tasks  # and read them all in one poll

            def poll() -> int:
                observation = collector.collect()
                n = 0
                for kind, payload in observation.records:
                    writer.submit(kind, payload)
                    n += len(payload.get("tasks", ())) if kind == "dask_tasks" else 0
                writer.flush(timeout=600)
                return n

            started = time.perf_counter()
            records = poll()
            rate = records / (time.perf_counter() - started)
            with engine.connect() as conn:
                stored = conn.exec_driver_sql("SELECT sum(completed) FROM dask_minutes").scalar_one()
            assert stored == records == len(raw), (stored, records, len(raw))
            print(f"task stream into the store: {rate:,.0f} records/s ({records:,} records, committed); "
                  f"bare get_task_stream: {peer_rate:,.0f} records/s; ratio {rate / peer_rate:.2f}")

            me, sched = psutil.Process(), psutil.Process(scheduler.pid)

            def per_poll(fn) -> tuple[float, float, float]:
                mine, theirs, wall = cpu(me), cpu(sched), time.perf_counter()
                for _ in range(args.polls):
                    fn()
                return ((cpu(me) - mine) / args.polls, (cpu(sched) - theirs) / args.polls,
                        (time.perf_counter() - wall) / args.polls)

            async def bare(c):
                import asyncio

                await asyncio.gather(c.scheduler.identity(n_workers=-1), c.scheduler.get_task_prefix_states(),
                                     c.scheduler.get_task_stream_index())
                await c.scheduler.get_task_stream(start_index=collector.cursor)

            ours = per_poll(poll)
            peer = per_poll(lambda: client.sync(bare, client))
            for label, (mine, theirs, wall) in (("jobdash poll", ours), ("bare RPCs   ", peer)):
                print(f"{label}: {mine * 1000:6.1f} ms CPU here + {theirs * 1000:6.1f} ms CPU in the scheduler, "
                      f"{wall * 1000:6.1f} ms wall; {100 * mine / args.interval:.1f} % of one core at a "
                      f"{args.interval:g} s interval")
            print(f"ratio (jobdash / bare, CPU here): {ours[0] / peer[0]:.2f}")
            collector.close()
            writer.stop()
            engine.dispose()
            del futures
            client.close()
        finally:
            for proc in (*hosts, scheduler):
                proc.terminate()
            for proc in (*hosts, scheduler):
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()

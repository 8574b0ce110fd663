"""Consul: how soon a check change is stored and pushed, and how often the agent is asked while idle.

    python -m bench.consul_watch [--services 2000] [--instances 3] [--changes 40] [--idle 30]

Runs jobdash's real runtime (collector, store writer on SQLite, live hub) against the Consul
API double (tests/consul_double.py, in a process of its own) holding services x instances, each
with a TTL check, and flips random checks through the TTL endpoints. For each change it times the stored row (the check's status in SQLite)
and the socket emit of its delta. The peer, measured in the same run, is the same collector
against an agent that does not answer blocking queries (as through a caching proxy): it polls
every interval, as a Consul exporter or the old jobdash poll did. Both run with a 5 s interval. Every answer of /v1/health/state/any
carries all checks, so the double's own time to serialise them (printed) bounds the latency.
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import select

from collectors.consul_client import Agent, get
from dashboard.config import Settings, SourceConfig
from dashboard.live import LiveHub
from dashboard.runtime import Runtime
from dashboard.store.consul_models import ConsulCheck

INTERVAL = 5.0


class EmitClock:
    """A Socket.IO stand-in for the hub: notes when each check's status was emitted."""

    def __init__(self):
        self.seen: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()

    def emit(self, event, data, to=None, namespace=None):
        now = time.monotonic()
        with self.lock:
            for key, item in (data.get("items") or {}).items():
                if key.startswith("check:") and item:
                    self.seen[(key, item["status"])] = now

    def start_background_task(self, fn):
        thread = threading.Thread(target=fn, daemon=True)
        thread.start()
        return thread


class DoubleProcess:
    """The Consul double in a process of its own (as an agent is), holding services x instances."""

    def __init__(self, services: int, instances: int, blocking: bool):
        args = [sys.executable, "-m", "tests.consul_double", "--services", str(services), "--instances", str(instances)]
        self.proc = subprocess.Popen(args + ([] if blocking else ["--no-blocking"]), stdout=subprocess.PIPE, text=True)
        _, self.address, self.node = self.proc.stdout.readline().split()
        self.client = Agent.from_options(self.address).client(30)
        self.checks = [f"service:svc-{s:04d}-{i}" for s in range(services) for i in range(instances)]

    def set_status(self, check_id: str, status: str, output: str) -> None:
        verb = {"passing": "pass", "warning": "warn", "critical": "fail"}[status]
        self.client.http.put(lambda r: r, f"/v1/agent/check/{verb}/{check_id}", params=[("note", output)])

    @property
    def requests(self) -> int:
        return get(self.client, "/_double/requests").data["requests"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def bare_read_ms(double: DoubleProcess) -> float:
    """Median time of one plain read of every check through python-consul2: the double's own floor."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        get(double.client, "/v1/health/state/any")
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


def run(label: str, blocking: bool, args, tmp: Path) -> dict[str, float]:
    double = DoubleProcess(args.services, args.instances, blocking)
    checks = double.checks
    floor = bare_read_ms(double)
    source = SourceConfig("consul", "bench", {"address": double.address}, interval=INTERVAL, timeout=5)
    clock = EmitClock()
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp / f'{label}.db'}", sources=[source]), LiveHub(clock))
    from dashboard.store.migrate import upgrade

    upgrade(runtime.settings.database_url)
    runtime.start()
    node = double.node
    status_of = {check_id: "passing" for check_id in checks}
    try:
        started = time.monotonic()
        while _stored(runtime, None) < len(checks) + 1:
            if time.monotonic() - started > 300:
                raise SystemExit(f"{label}: the first snapshot was not stored within 300 s")
            time.sleep(0.2)
        first = time.monotonic() - started
        rng = random.Random(7)
        to_store, to_emit = [], []
        changes = args.changes if blocking else max(4, args.changes // 5)
        for n in range(changes):
            check_id = rng.choice(checks)
            status = ("critical", "warning", "passing")[n % 3]
            if status_of[check_id] == status:
                status = "critical" if status != "critical" else "passing"
            status_of[check_id] = status
            changed = time.monotonic()
            double.set_status(check_id, status, f"change {n}")
            key = f"check:{node}/{check_id}"
            while _stored(runtime, (node, check_id)) != status:
                time.sleep(0.002)
            to_store.append(time.monotonic() - changed)
            while (key, status) not in clock.seen:
                time.sleep(0.002)
            to_emit.append(clock.seen[(key, status)] - changed)
            time.sleep(rng.uniform(0.05, 0.3))
        time.sleep(1)
        before, idle_from = double.requests, time.monotonic()
        time.sleep(args.idle)
        # Less the one request that reads the counter.
        per_minute = (double.requests - before - 1) / (time.monotonic() - idle_from) * 60
    finally:
        runtime.stop()
        double.stop()
    return {"first": first, "store_p50": pct(to_store, .5), "store_p95": pct(to_store, .95),
            "emit_p50": pct(to_emit, .5), "emit_p95": pct(to_emit, .95), "per_minute": per_minute,
            "changes": changes, "floor": floor}


def _stored(runtime: Runtime, key):
    with runtime.engine.connect() as conn:
        if key is None:
            return conn.execute(select(ConsulCheck.check_id).where(ConsulCheck.source == "bench")).all().__len__()
        return conn.execute(select(ConsulCheck.status).where(ConsulCheck.source == "bench", ConsulCheck.node == key[0],
                                                             ConsulCheck.check_id == key[1])).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of no change over which requests are counted")
    args = parser.parse_args()
    print(f"{args.services} services x {args.instances} instances = {args.services * args.instances} checks "
          f"(+ serfHealth), poll interval {INTERVAL:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        ours = run("blocking", True, args, Path(tmp))
        peer = run("polling", False, args, Path(tmp))
    print(f"{'':34}{'jobdash (blocking)':>20}{'peer: polling':>16}{'ratio':>9}")
    for key, label in (("store_p50", "change -> stored row, p50 (ms)"), ("store_p95", "change -> stored row, p95 (ms)"),
                       ("emit_p50", "change -> socket emit, p50 (ms)"), ("emit_p95", "change -> socket emit, p95 (ms)"),
                       ("per_minute", "agent requests / min, idle")):
        ratio = peer[key] / ours[key] if ours[key] else float("inf")
        print(f"{label:34}{ours[key]:>20.1f}{peer[key]:>16.1f}{ratio:>8.1f}x")
    print(f"first full snapshot stored after {ours['first']:.1f} s (peer {peer['first']:.1f} s); "
          f"changes timed: {ours['changes']} (peer {peer['changes']})")
    print(f"one plain read of all checks from the double takes {ours['floor']:.0f} ms (the Python double, not a "
          "Go agent, serialising every check): the floor under each blocking answer here")


if __name__ == "__main__":
    main()

"""Event -> browser latency of the live path, and final states missed, with N WebSocket viewers.

    python -m bench.live_latency [--clients 1 50 200] [--rates 20 500] [--seconds 15] [--server serve|gunicorn]
                                 [--viewer-procs 4] [--senders 4]

A real `celery worker -E` on Redis runs quick tasks sent at a steady rate (a task makes four
events: sent, received, started, succeeded, so 500 events/s is 125 tasks/s) by several sender
processes (one could not keep up on a loaded machine); one jobdash server watches it, and N
Socket.IO clients over WebSocket, spread over a few processes, join the source's room. Latency is
a task's success as it reaches each client minus the task-succeeded event's own timestamp.
"Missed" counts, per client, the tasks whose latest value in the room is not their final state.
The peer, in the same run: a bare Celery event receiver in this process (what Flower's event
thread sees), i.e. the event bus's own delay before any dashboard work.
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import redis
from celery import Celery

from bench.live_clients import login, viewer_process
from collectors.celery_client import celery_app
from collectors.celery_events import EventReceiver
from dashboard.demo import processes

REDIS = "redis://127.0.0.1:6379"
CLAIM_KEY = "jobdash-test-claim"  # the tests' claim on a Redis database number, honoured here too
PASSWORD = "live latency bench"
TASK = "dashboard.demo.tasks.add"


def claim_redis_db() -> str:
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.set(CLAIM_KEY, "bench", nx=True, ex=3600):
            client.flushdb()
            client.set(CLAIM_KEY, "bench", ex=3600)
            return f"{REDIS}/{db}"
    raise SystemExit("every Redis database is claimed")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


class Dashboard:
    """A jobdash server (`jobdash serve` or the README's gunicorn command) on a temp SQLite store."""

    def __init__(self, workdir: Path, broker: str, server: str):
        config = workdir / "jobdash.toml"
        config.write_text(f'database_url = "sqlite:///{workdir / "jobdash.db"}"\nsecret_key = "bench"\n'
                          f'[[celery]]\nname = "bench"\nbroker = "{broker}"\nbackend = "{broker}"\ninterval = 1\n')
        self.env = {"JOBDASH_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
        run = [sys.executable, "-m", "dashboard.cli"]
        subprocess.run([*run, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        subprocess.run([*run, "user", "add", "viewer", "--role", "viewer", "--password-stdin"], env=self.env,
                       input=PASSWORD + "\n", text=True, check=True, capture_output=True)
        port = processes.free_port()
        self.base = f"http://127.0.0.1:{port}"
        repo = Path(__file__).resolve().parents[1]
        args = ([*run, "serve", "--host", "127.0.0.1", "--port", str(port)] if server == "serve" else
                [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "400", "-b", f"127.0.0.1:{port}", "wsgi:app"])
        self.log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(args, env=self.env, cwd=repo, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        cookie = None
        while True:  # the source's state is in /readyz's details, which only a logged-in user gets
            try:
                cookie = cookie or login(self.base, "viewer", PASSWORD)
                request = urllib.request.Request(self.base + "/readyz", headers={"Cookie": cookie})
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if b'"state":"up"' in answer.read().replace(b" ", b""):
                        break
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()  # the log goes with the temporary directory: show its end
                raise SystemExit("jobdash did not come up; its log ends:\n"
                                 + (workdir / "server.log").read_text(errors="replace")[-2000:])
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def send_share(broker: str, task_ids: list[str], tasks_per_s: float, start_at: float, conn) -> None:
    """A sender process: send these tasks at `tasks_per_s` from wall time `start_at`; report the seconds taken."""
    sender = Celery("sender", broker=broker, backend=broker, set_as_current=False)
    sender.conf.task_send_sent_event = True
    time.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    for i, task_id in enumerate(task_ids):
        sender.send_task(TASK, args=[i, i], task_id=task_id, ignore_result=True)
        delay = started + (i + 1) / tasks_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    conn.send(time.monotonic() - started)
    sender.close()


def run_case(dash: Dashboard, broker: str, n_clients: int, rate: float, seconds: float,
             viewer_procs: int, senders: int) -> dict:
    """Send tasks at `rate` events/s for `seconds` to N clients; return latencies and missed counts.

    The viewers are spread over `viewer_procs` processes and the sending over `senders`, so that
    neither one process's GIL nor one sender's round trips sets the pace instead of the server.
    """
    ctx = multiprocessing.get_context("spawn")
    cookie = login(dash.base, "viewer", PASSWORD)
    tasks_per_s = rate / 4
    prefix = uuid.uuid4().hex[:8]  # this case's tasks, told apart from any earlier case's stragglers
    task_ids = [f"{prefix}-{k:06d}" for k in range(max(1, int(tasks_per_s * seconds)))]
    wanted = set(task_ids)
    peer: list[float] = []

    def on_event(_kind, payloads):
        now = time.time()
        for _source, ev in payloads:
            if ev.get("type") == "task-succeeded" and ev.get("uuid") in wanted:
                peer.append(now - ev["timestamp"])

    receiver = EventReceiver(celery_app("peer", broker, timeout=5.0), "peer", on_event)
    receiver.start()
    viewers = []
    for share in (n_clients // viewer_procs + (k < n_clients % viewer_procs) for k in range(viewer_procs)):
        if share:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=viewer_process, args=(dash.base, cookie, "celery/bench", share, task_ids, theirs),
                               daemon=True)
            proc.start()
            viewers.append((proc, ours))
    try:
        for proc, pipe in viewers:
            if not pipe.poll(300):
                raise SystemExit(f"viewers did not join within 300 s (exit code {proc.exitcode})")
            pipe.recv()
        start_at = time.time() + 1.0  # every sender connected and waiting
        sending = []
        for k in range(senders):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=send_share, daemon=True, args=(
                broker, task_ids[k::senders], tasks_per_s / senders, start_at + k / tasks_per_s, theirs))
            proc.start()
            sending.append((proc, ours))
        send_s = max(pipe.recv() for _proc, pipe in sending)
        for _proc, pipe in viewers:
            pipe.send("sent")
        results = [pipe.recv() for _proc, pipe in viewers]
        return {"tasks": len(task_ids), "send_s": send_s, "peer": list(peer),
                "latencies": [x for r in results for x in r["latencies"]],
                "missed": [m for r in results for m in r["missed"]],
                "disconnected": sum(r["disconnected"] for r in results)}
    finally:
        for proc, _pipe in viewers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 500], help="task events per second")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--server", choices=["serve", "gunicorn"], default="serve")
    parser.add_argument("--viewer-procs", type=int, default=4, help="processes the viewers are spread over")
    parser.add_argument("--senders", type=int, default=4, help="processes sending the tasks")
    args = parser.parse_args()
    broker = claim_redis_db()
    with tempfile.TemporaryDirectory() as tmp:
        worker = processes.start_celery_worker("dashboard.demo.tasks", broker, broker,
                                               f"bench-{uuid.uuid4().hex[:6]}@localhost", concurrency=4)
        dash = None
        try:
            dash = Dashboard(Path(tmp), broker, args.server)
            print(f"server: {args.server}; latency = task success at the client - the event's own timestamp")
            print(f"{'clients':>7} {'events/s':>8} {'tasks':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
                  f"{'peer p50':>8} {'peer p95':>8} {'p95 ratio':>9} {'missed/client':>13}")
            for rate in args.rates:
                for n in args.clients:
                    r = run_case(dash, broker, n, rate, args.seconds, min(n, args.viewer_procs), args.senders)
                    lat = [x * 1000 for x in r["latencies"]]
                    peer = [x * 1000 for x in r["peer"]]
                    ratio = pct(lat, 95) / pct(peer, 95) if peer else float("nan")
                    print(f"{n:>7} {rate:>8g} {r['tasks']:>6} {pct(lat, 50):>7.0f} {pct(lat, 95):>7.0f} "
                          f"{pct(lat, 99):>7.0f} {pct(peer, 50):>8.0f} {pct(peer, 95):>8.0f} {ratio:>9.1f} "
                          f"{max(r['missed']):>6} max, {statistics.mean(r['missed']):.1f} mean"
                          + (f"; {r['disconnected']} disconnected" if r["disconnected"] else "")
                          + (f"; sending took {r['send_s']:.1f} s" if r["send_s"] > args.seconds * 1.1 else ""),
                          flush=True)
        finally:  # a server that did not come up has stopped itself; the worker must not outlive the bench
            if dash is not None:
                dash.stop()
            worker.cleanup()
            redis.Redis.from_url(broker).flushdb()


if __name__ == "__main__":
    main()

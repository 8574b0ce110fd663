"""Chaos: jobdash is killed with -9 and restarted twice while a real worker runs a mixed stream;
in the end every task's stored state equals the result backend's, each task stored once."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

from celery import Celery
from sqlalchemy import select, text

from dashboard.store import make_engine
from dashboard.store.celery_models import CeleryTask
from tests.fixtures_services import wait_for

TASKS = "dashboard.demo.tasks"
FINAL = ("SUCCESS", "FAILURE")


def start_jobdash(config, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dashboard.cli", "--config", str(config), "collect"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def polled_since(engine, since: float) -> bool:
    """The collector has polled the source since `since` (the process runs and writes)."""
    try:
        with engine.connect() as conn:
            at = conn.execute(text("SELECT max(updated_at) FROM source_status WHERE kind = 'celery'")).scalar()
    except Exception:  # noqa: BLE001 - the database is not created yet
        return False
    return at is not None and at > since


def stored(engine, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 400):
            rows = conn.execute(select(CeleryTask.uuid, CeleryTask.state).where(
                CeleryTask.source == "main", CeleryTask.uuid.in_(ids[i:i + 400])))
            for uuid, state in rows:  # every row, so that a task stored twice shows
                out.setdefault(uuid, []).append(state)
    return out


def send_mixed_stream(app: Celery, sent: list, stop: threading.Event) -> None:
    rng = random.Random(11)
    calls = [("add", [1, 2]), ("add", [3, 4]), ("fail", ["chaos"]), ("echo", ["x"]), ("flaky", [2]), ("sleep", [0.05])]
    while not stop.is_set():
        name, args = rng.choice(calls)
        sent.append(app.send_task(f"{TASKS}.{name}", args=args))
        time.sleep(0.03)


def test_kill_9_twice_under_load_leaves_the_store_equal_to_the_result_backend(tmp_path, redis_url, celery_worker_redis):
    db = tmp_path / "jobdash.db"
    config = tmp_path / "jobdash.toml"
    config.write_text(f'database_url = "sqlite:///{db}"\n\n[[celery]]\nname = "main"\nbroker = "{redis_url}"\n'
                      f'backend = "{redis_url}"\ninterval = 0.5\ntimeout = 3\n')
    engine = make_engine(f"sqlite:///{db}")
    sender = Celery("chaos", broker=redis_url, backend=redis_url, set_as_current=False)
    sender.conf.task_send_sent_event = True
    sent: list = []
    stop = threading.Event()
    stream = threading.Thread(target=send_mixed_stream, args=(sender, sent, stop))
    with open(tmp_path / "jobdash.log", "ab") as log:
        proc = start_jobdash(config, log)
        try:
            wait_for(lambda: polled_since(engine, 0), bool, timeout=60)
            stream.start()
            for _ in range(2):
                time.sleep(3)  # the stream runs on; then jobdash dies mid-write
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                time.sleep(1)  # tasks run while nobody listens
                restarted = time.time()
                proc = start_jobdash(config, log)
                wait_for(lambda: polled_since(engine, restarted), bool, timeout=60)
            time.sleep(3)
            stop.set()
            stream.join(10)
            backend = {r.id: r for r in sent}
            truth = {i: wait_for(lambda: r.state, lambda s: s in FINAL, timeout=60) for i, r in backend.items()}
            assert len(truth) > 200 and set(truth.values()) == {"SUCCESS", "FAILURE"}

            def mismatches():
                rows = stored(engine, list(truth))
                return {i: (rows.get(i), s) for i, s in truth.items() if rows.get(i) != [s]}

            wait_for(mismatches, lambda m: not m, timeout=120, interval=1.0)
        finally:
            stop.set()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
            sender.close()
            engine.dispose()

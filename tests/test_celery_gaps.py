"""After a gap in Celery's events: every non-final state is settled from the result backend, tasks
that ran entirely inside the gap are recovered from a listable backend, a gap that cannot be filled
says so on the page, and a paused worker's task is not called LOST before its worker is gone."""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from celery import Celery

import collectors.celery_reconcile as reconcile
from dashboard.demo import processes
from tests.conftest import login
from tests.fixtures_services import celery_dashboard, wait_for

TASKS = "dashboard.demo.tasks"


@pytest.fixture(scope="module")
def dash(redis_url, celery_worker_redis, tmp_path_factory):
    yield from celery_dashboard(redis_url, tmp_path_factory.mktemp("celery-gaps") / "jobdash.db")


@pytest.fixture(scope="module")
def viewer(dash):
    return login(dash, "viewer")


@pytest.fixture(scope="module")
def elsewhere(redis_url, rabbitmq_url):
    """A worker on another broker sharing this source's result backend (extended results): its
    events never reach the dashboard, as in a gap, but its results land where it can look."""
    worker = processes.start_celery_worker(TASKS, rabbitmq_url, redis_url, f"gap-{uuid.uuid4().hex[:6]}@localhost",
                                           extra_args=["-E"])
    app = Celery("other", broker=rabbitmq_url, backend=redis_url, set_as_current=False)
    app.conf.result_extended = True
    yield app
    app.close()
    worker.cleanup()


def task(client, task_id: str) -> dict:
    response = client.get(f"/api/celery/main/tasks/{task_id}")
    return response.json if response.status_code == 200 else {}


def worker(client, hostname: str) -> dict:
    workers = client.get("/api/celery/main/workers").json["workers"]
    return next(w for w in workers if w["hostname"] == hostname)


def heard(dash, event: dict) -> None:
    """What the dashboard last heard of a task before the gap."""
    dash.extensions["jobdash"].writer.write("celery_event", ("main", event))


def test_pending_and_retry_left_by_a_gap_are_settled_from_the_backend(dash, viewer, elsewhere):
    ok = elsewhere.send_task(f"{TASKS}.add", args=[1, 2])
    bad = elsewhere.send_task(f"{TASKS}.fail", args=["gone wrong"])
    assert ok.get(timeout=30) == 3
    with pytest.raises(Exception):
        bad.get(timeout=30)
    heard(dash, {"type": "task-sent", "uuid": ok.id, "timestamp": time.time() - 60, "name": f"{TASKS}.add", "queue": "celery"})
    heard(dash, {"type": "task-retried", "uuid": bad.id, "timestamp": time.time() - 60, "hostname": "w@x",
                 "exception": "RuntimeError('try again')"})
    t = wait_for(lambda: task(viewer, ok.id), lambda t: t.get("state") == "SUCCESS", timeout=30)
    assert t["result"] == "3" and "result backend" in t["note"]
    t = wait_for(lambda: task(viewer, bad.id), lambda t: t.get("state") == "FAILURE", timeout=30)
    assert "gone wrong" in t["exception"]


def test_tasks_that_ran_entirely_inside_a_gap_are_recovered_from_the_backend(dash, viewer, elsewhere):
    runtime = dash.extensions["jobdash"]
    started = time.time()
    results = [elsewhere.send_task(f"{TASKS}.add", args=[i, i]) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]
    runtime.writer.write("store_gap", {"kind": "celery_event", "source": "main", "started_at": started,
                                       "ended_at": time.time(), "cause": "event stream down (test)"})
    assert "Gaps in this source" in viewer.get("/celery/main/tasks").text
    for i, r in enumerate(results):
        t = wait_for(lambda: task(viewer, r.id), lambda t: t.get("state") == "SUCCESS", timeout=60)
        assert t["result"] == str(2 * i) and t["name"] == f"{TASKS}.add" and "recovered" in t["note"]
    wait_for(lambda: viewer.get("/celery/main/tasks").text, lambda page: "Gaps in this source" not in page, timeout=30)


def test_a_gap_an_rpc_backend_cannot_fill_is_said_on_the_page(dash, viewer, redis_url):
    app = Celery("rpc", broker=redis_url, backend="rpc://", set_as_current=False)
    try:
        r = reconcile.Reconciler(app, "main", 0.5, budget=1.0)
        runtime = dash.extensions["jobdash"]
        runtime.writer.write("store_gap", {"kind": "celery_event", "source": "rpc-only", "started_at": time.time() - 5,
                                           "ended_at": time.time(), "cause": "event stream down (test)"})
        r.source = "rpc-only"
        records = r.fill_gaps(runtime, time.time())
    finally:
        app.close()
    (kind, settled), = records
    assert kind == "store_gap_settled" and settled["state"] == "unfillable" and "rpc://" in settled["note"]
    runtime.writer.write(kind, settled)
    from dashboard.store.gaps import unfilled_gaps
    gap, = unfilled_gaps(runtime.engine, "celery", "rpc-only")
    assert gap["note"] == "could not be filled: the rpc:// result backend cannot be listed"


def test_a_paused_worker_is_not_lost_at_once_and_a_later_event_clears_the_verdict(dash, viewer, redis_url, monkeypatch):
    monkeypatch.setattr(reconcile, "SETTLE_AFTER", 1.0)
    paused = processes.start_celery_worker(TASKS, redis_url, redis_url, f"paused-{uuid.uuid4().hex[:6]}@localhost",
                                           queues="paused", concurrency=1)
    sender = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    try:
        wait_for(lambda: viewer.get("/api/celery/main/workers").json["workers"],
                 lambda ws: any(w["hostname"] == paused.hostname and w["online"] for w in ws), timeout=30)
        running = sender.send_task(f"{TASKS}.sleep", args=[10], queue="paused")
        wait_for(lambda: task(viewer, running.id), lambda t: t.get("state") == "STARTED", timeout=30)
        time.sleep(1.5)  # older than SETTLE_AFTER, so every poll now checks it
        os.killpg(paused.procs[0].pid, signal.SIGSTOP)
        time.sleep(0.5)  # a heartbeat sent just before the stop has been stored by now
        beat = worker(viewer, paused.hostname)["last_heartbeat"]
        # The clock starts at the worker's last heartbeat, not at the stop (up to one heartbeat later):
        # under two heartbeats (2 x 2 s) since it, nothing says the worker is gone and the task stays STARTED.
        while time.time() - beat < 3.5:
            assert task(viewer, running.id)["state"] == "STARTED"
            time.sleep(0.2)
        t = wait_for(lambda: task(viewer, running.id), lambda t: t.get("state") == "LOST", timeout=30)
        assert "went offline" in t["note"] and time.time() - beat >= 4.0
        os.killpg(paused.procs[0].pid, signal.SIGCONT)
        t = wait_for(lambda: task(viewer, running.id), lambda t: t.get("state") == "SUCCESS", timeout=40)
        assert t["note"] is None
    finally:
        os.killpg(paused.procs[0].pid, signal.SIGCONT)
        sender.close()
        paused.cleanup()

"""Celery end to end on Redis: a real worker, the dashboard's collector and receiver, its controls."""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from celery import Celery

from dashboard.demo import processes
from tests.conftest import csrf_of, login
from tests.fixtures_services import celery_dashboard, wait_for

TASKS = "dashboard.demo.tasks"


@pytest.fixture(scope="module")
def dash(redis_url, celery_worker_redis, tmp_path_factory):
    """The dashboard watching this module's Redis, with a fast poll."""
    yield from celery_dashboard(redis_url, tmp_path_factory.mktemp("celery-live") / "jobdash.db")


@pytest.fixture(scope="module")
def admin(dash):
    client = login(dash, "admin")
    client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(client)
    return client


@pytest.fixture(scope="module")
def sender(redis_url):
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.task_send_sent_event = True  # so the dashboard learns each task's queue
    yield app
    app.close()


def task(client, task_id: str) -> dict:
    response = client.get(f"/api/celery/main/tasks/{task_id}")
    return response.json if response.status_code == 200 else {}


def wait_state(client, task_id: str, state: str, timeout: float = 20.0) -> dict:
    return wait_for(lambda: task(client, task_id), lambda t: t.get("state") == state, timeout=timeout)


def act(client, name: str, target: str, **params) -> tuple[int, dict]:
    response = client.post(f"/api/actions/{name}", json={"source": "main", "target": target, "params": params})
    return response.status_code, response.json


def worker_name(service) -> str:
    return service.hostname


def test_a_successful_task_is_stored_with_its_whole_lifecycle(admin, sender, celery_worker_redis):
    result = sender.send_task(f"{TASKS}.add", args=[2, 3])
    t = wait_state(admin, result.id, "SUCCESS")
    assert t["name"] == f"{TASKS}.add" and t["result"] == "5" and t["args"] == "[2, 3]"
    assert t["worker"] == worker_name(celery_worker_redis) and t["queue"] == "celery"
    assert t["received_at"] <= t["started_at"] <= t["succeeded_at"]
    # The producer publishes task-sent after the message itself, so a busy machine may see the
    # worker receive it a few milliseconds before the sent event's own timestamp.
    assert t["sent_at"] <= t["started_at"] and abs(t["sent_at"] - t["received_at"]) < 1
    assert t["runtime"] is not None and t["runtime"] >= 0


def test_a_failure_keeps_its_exception_and_traceback(admin, sender):
    result = sender.send_task(f"{TASKS}.fail", args=["card declined <b>"])
    t = wait_state(admin, result.id, "FAILURE")
    assert "card declined <b>" in t["exception"] and "RuntimeError" in t["traceback"]
    failed = admin.get("/api/celery/main/tasks", query_string={"q": "state:FAILURE exception:declined"}).json
    assert result.id in [row["uuid"] for row in failed["tasks"]]


def test_a_task_retrying_itself_with_countdown_ends_in_success(admin, sender):
    result = sender.send_task(f"{TASKS}.flaky", kwargs={"attempts": 2})
    t = wait_state(admin, result.id, "SUCCESS")
    assert t["retried_at"] is not None and t["retries"] == 1 and "attempt 1 failed" in t["exception"]
    assert t["result"] == "2"


def test_retry_from_the_dashboard_resends_the_same_call_and_links_back(admin, sender, tmp_path):
    marker = str(tmp_path / "marker")
    failed = sender.send_task(f"{TASKS}.fail_once", args=[marker])
    wait_state(admin, failed.id, "FAILURE")
    status, body = act(admin, "celery.retry", failed.id, confirm=True)
    assert status == 200, body
    new_id = body["details"]["new_task"]
    assert body["details"]["queue"] == "celery"
    new = wait_state(admin, new_id, "SUCCESS")
    assert new["args"] == repr((marker,)) and new["retry_of"] == failed.id and new["result"] == "'second try worked'"
    assert [r["uuid"] for r in task(admin, failed.id)["retried_by"]] == [new_id]


def test_retry_refusals_change_nothing(admin, sender):
    done = sender.send_task(f"{TASKS}.add", args=[1, 1])
    wait_state(admin, done.id, "SUCCESS")
    before = admin.get("/api/celery/main/tasks").json["total"]
    status, body = act(admin, "celery.retry", done.id, confirm=True)
    assert status == 409 and "only FAILURE or REVOKED" in body["error"]
    status, body = act(admin, "celery.retry", "no-such-task", confirm=True)
    assert status == 404 and "no task" in body["error"]
    status, body = act(admin, "celery.retry", done.id)
    assert status == 400 and "confirmation required" in body["error"]
    time.sleep(1.5)  # a re-sent task would have shown up by now
    assert admin.get("/api/celery/main/tasks").json["total"] == before


def test_revoke_of_a_queued_task_discards_it(admin, sender, celery_worker_redis):
    blockers = [sender.send_task(f"{TASKS}.sleep", args=[3]) for _ in range(4)]  # 2 run, 1 reserved, 1 queued
    queued = sender.send_task(f"{TASKS}.add", args=[40, 2])
    wait_state(admin, queued.id, "PENDING")
    status, body = act(admin, "celery.revoke", queued.id, confirm=True)
    assert status == 200, body
    assert body["details"]["workers"][worker_name(celery_worker_redis)].startswith("ok")
    t = wait_state(admin, queued.id, "REVOKED", timeout=30)
    assert t["result"] is None
    for b in blockers:
        wait_state(admin, b.id, "SUCCESS", timeout=30)


def test_terminate_kills_a_running_task(admin, sender):
    running = sender.send_task(f"{TASKS}.sleep", args=[60])
    wait_state(admin, running.id, "STARTED")
    status, body = act(admin, "celery.terminate", running.id, signal="SIGKILL", confirm=True)
    assert status == 200, body
    wait_state(admin, running.id, "REVOKED")


def test_drain_holds_new_tasks_in_the_queue_and_resume_runs_them(dash, admin, sender, celery_worker_redis):
    worker = worker_name(celery_worker_redis)
    status, body = act(admin, "celery.drain", worker)
    assert status == 200 and body["details"]["queues"] == ["celery"], body
    held = [sender.send_task(f"{TASKS}.add", args=[i, i]) for i in range(3)]
    # The depth the operator sees is the broker's own count of what waits.
    runtime = dash.extensions["jobdash"]
    wait_for(lambda: runtime.readiness()["collectors"]["celery/main"]["headline"], lambda h: h["queued"] == 3)
    workers = admin.get("/api/celery/main/workers").json["workers"]
    assert [w["drained"] for w in workers if w["hostname"] == worker] == [["celery"]]
    assert all(task(admin, r.id)["state"] == "PENDING" for r in held)
    status, body = act(admin, "celery.resume", worker)
    assert status == 200, body
    for r in held:
        wait_state(admin, r.id, "SUCCESS")
    queues = admin.get("/api/celery/main/queues").json["queues"]
    depths = {q["queue"]: [p["value"] for p in q["series"]] for q in queues}
    assert 3 in depths["celery"]  # the history kept the backlog


def test_a_worker_killed_with_sigkill_goes_offline_and_its_task_is_settled(admin, sender, redis_url):
    doomed = processes.start_celery_worker(TASKS, redis_url, redis_url, f"doomed-{uuid.uuid4().hex[:6]}@localhost",
                                           queues="doomed", concurrency=1)
    try:
        wait_for(lambda: admin.get("/api/celery/main/workers").json["workers"],
                 lambda ws: any(w["hostname"] == doomed.hostname and w["online"] for w in ws))
        stuck = sender.send_task(f"{TASKS}.sleep", args=[120], queue="doomed")
        wait_state(admin, stuck.id, "STARTED")
        os.killpg(doomed.procs[0].pid, signal.SIGKILL)
        wait_for(lambda: admin.get("/api/celery/main/workers").json["workers"],
                 lambda ws: any(w["hostname"] == doomed.hostname and not w["online"] for w in ws), timeout=20)
        t = wait_state(admin, stuck.id, "LOST", timeout=40)
        assert doomed.hostname in t["note"]
    finally:
        doomed.cleanup()


@pytest.mark.parametrize("path, status, needle", [
    ("/api/celery/main/tasks/unknown-id", 404, "no task"),
    ("/api/celery/nope/tasks", 404, "no Celery source"),
    ("/api/celery/main/tasks?state=DONE", 400, "state: must be one of"),
    ("/api/celery/main/tasks?q=colour:red", 400, "unknown key"),
    ("/api/celery/main/tasks?since=yesterday", 400, "neither epoch seconds"),
    ("/api/celery/main/tasks?limit=0", 400, "between 1 and"),
    ("/api/celery/main/tasks?after=forged", 400, "cursor"),
    ("/api/celery/main/workers/celery@nobody", 404, "no worker"),
    ("/api/celery/main/stats?by=colour", 400, "by: must be"),
    ("/api/celery/main/failures?name=x", 400, "required"),
])
def test_bad_requests_get_a_clear_error(admin, path, status, needle):
    response = admin.get(path)
    assert response.status_code == status
    assert needle in response.json["error"]


@pytest.mark.parametrize("name, params, needle", [
    ("celery.rate_limit", {"rate": "fast"}, "rate must look like"),
    ("celery.time_limit", {"soft": 10.0, "hard": 5.0}, "soft <= hard"),
    ("celery.pool_grow", {"n": 0}, "between 1 and 64"),
    ("celery.autoscale", {"min": 5, "max": 2}, "min <= max"),
])
def test_bad_control_parameters_are_refused_before_anything_is_sent(admin, celery_worker_redis, name, params, needle):
    target = f"{TASKS}.add" if name.startswith(("celery.rate", "celery.time")) else worker_name(celery_worker_redis)
    status, body = act(admin, name, target, **params)
    assert status == 400 and needle in body["error"]


def test_rate_limit_and_pool_size_controls_reach_the_worker(admin, celery_worker_redis):
    worker = worker_name(celery_worker_redis)
    status, body = act(admin, "celery.rate_limit", f"{TASKS}.add", rate="100/m")
    assert status == 200 and body["details"]["workers"][worker].startswith("ok"), body
    status, body = act(admin, "celery.rate_limit", f"{TASKS}.add", rate="0")
    assert status == 200, body
    status, body = act(admin, "celery.pool_grow", worker, n=1)
    assert status == 200, body
    status, body = act(admin, "celery.pool_shrink", worker, n=1)
    assert status == 200, body


def test_a_task_whose_end_the_events_missed_is_settled_from_the_result_backend(dash, admin, redis_url, rabbitmq_url):
    # A worker on another broker shares this source's result backend: its events never reach the
    # dashboard, as if the stream had a gap, but its results land where the dashboard can look.
    elsewhere = processes.start_celery_worker(TASKS, rabbitmq_url, redis_url, f"gap-{uuid.uuid4().hex[:6]}@localhost")
    try:
        other = Celery("other", broker=rabbitmq_url, backend=redis_url, set_as_current=False)
        result = other.send_task(f"{TASKS}.add", args=[19, 23])
        assert result.get(timeout=20) == 42
        other.close()
    finally:
        elsewhere.cleanup()
    # What the dashboard last heard before the gap: the task was received (a minute ago).
    dash.extensions["jobdash"].writer.write("celery_event", ("main", {
        "type": "task-received", "uuid": result.id, "timestamp": time.time() - 60, "hostname": elsewhere.hostname,
        "name": f"{TASKS}.add", "args": "[19, 23]", "kwargs": "{}"}))
    t = wait_state(admin, result.id, "SUCCESS")
    assert t["result"] == "42" and "result backend" in t["note"]

"""Every Celery control through perform(): each role on each channel against a real worker.

Refused asks (anonymous, viewer, manager) leave the worker and the broker exactly as they were:
same queues consumed, pool size, rate and time limits, revoked ids, queue backlog and stored
tasks. An admin's ask takes effect, seen from the worker itself.
"""
from __future__ import annotations

import time
import uuid

import pytest
import redis
from celery import Celery

from dashboard import create_app
from dashboard.actions import REGISTRY
from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes
from dashboard.store import celery_queries
from tests.action_channels import Channel, action_rows
from tests.fixtures_services import wait_for

TASKS = "dashboard.demo.tasks"
CELERY_ACTIONS = sorted(n for n, a in REGISTRY.items() if a.kind == "celery")


@pytest.fixture(scope="module")
def workers(redis_url):
    """The main worker, and a spare one (autoscaling) for the controls that end or resize it."""
    main = processes.start_celery_worker(TASKS, redis_url, redis_url, f"matrix-{uuid.uuid4().hex[:6]}@localhost",
                                         concurrency=2)
    spare = processes.start_celery_worker(TASKS, redis_url, redis_url, f"spare-{uuid.uuid4().hex[:6]}@localhost",
                                          queues="spare", extra_args=["--autoscale", "3,1"])
    yield main.hostname, spare.hostname
    spare.cleanup()
    main.cleanup()


@pytest.fixture(scope="module")
def app(redis_url, workers, tmp_path_factory):
    db = tmp_path_factory.mktemp("celery-matrix") / "jobdash.db"
    source = SourceConfig("celery", "main", {"broker": redis_url, "backend": redis_url}, interval=0.5, timeout=4.0)
    app = create_app(Settings(database_url=f"sqlite:///{db}", secret_key="t", sources=[source]))
    engine = app.extensions["jobdash"].engine
    # The worker controls act on workers the dashboard has seen.
    wait_for(lambda: {w["hostname"] for w in celery_queries.workers(engine, "main")},
             lambda names: set(workers) <= names, timeout=30)
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture(scope="module")
def control(redis_url):
    control = Celery("matrix-control", broker=redis_url, backend=redis_url, set_as_current=False)
    control.conf.task_send_sent_event = True
    yield control
    control.close()


@pytest.fixture(scope="module")
def failed(app, control, tmp_path_factory):
    """A task that failed once and works when retried."""
    marker = tmp_path_factory.mktemp("marker") / "m"
    result = control.send_task(f"{TASKS}.fail_once", args=[str(marker)])
    engine = app.extensions["jobdash"].engine
    wait_for(lambda: celery_queries.task_detail(engine, "main", result.id) or {}, lambda t: t.get("state") == "FAILURE")
    return result.id


def fingerprint(app, control, redis_url, worker: str) -> dict:
    """What a control could change, read from the worker, the broker and the store."""
    inspect = control.control.inspect(destination=[worker], timeout=2)
    stats = (inspect.stats() or {}).get(worker, {})
    with app.extensions["jobdash"].engine.connect() as conn:
        tasks = conn.exec_driver_sql("SELECT count(*) FROM celery_tasks").scalar_one()
    return {
        "alive": worker in (inspect.ping() or {}),
        "queues": sorted(q["name"] for q in (inspect.active_queues() or {}).get(worker, [])),
        "pool": len(stats.get("pool", {}).get("processes", [])),
        "limits": sorted((inspect.registered("rate_limit", "time_limit", "soft_time_limit") or {}).get(worker, [])),
        "revoked": sorted((inspect.revoked() or {}).get(worker, [])),
        "queued": redis.Redis.from_url(redis_url).llen("celery"),
        "tasks": tasks,
    }


def valid_request(name: str, app, workers: tuple[str, str], failed: str) -> dict:
    """A request `name` accepts; for the worker controls, aimed at the main worker."""
    main, spare = workers
    now = time.time()
    failures, _ = celery_queries.failures(app.extensions["jobdash"].engine, "main", f"{TASKS}.fail_once", now - 3600, now, 0)
    params = {
        "celery.retry": (failed, {"confirm": True}),
        "celery.retry_selected": ("selection", {"uuids": failed, "confirm": True}),
        "celery.retry_failures": (f"{TASKS}.fail_once", {"since": now - 3600, "until": now, "expected": failures,
                                                        "confirm": True}),
        "celery.revoke": (f"never-sent-{uuid.uuid4().hex[:6]}", {"confirm": True}),
        "celery.terminate": (f"never-sent-{uuid.uuid4().hex[:6]}", {"signal": "SIGTERM", "confirm": True}),
        "celery.rate_limit": (f"{TASKS}.add", {"rate": "10/m"}),
        "celery.time_limit": (f"{TASKS}.add", {"soft": 10.0, "hard": 20.0}),
        "celery.drain": (main, {}),
        "celery.resume": (main, {"queues": "celery"}),
        "celery.pool_grow": (main, {"n": 1}),
        "celery.pool_shrink": (main, {"n": 1}),
        "celery.autoscale": (spare, {"max": 4, "min": 2}),
        "celery.pool_restart": (main, {"confirm": True}),
        "celery.shutdown": (spare, {"confirm": True}),
    }[name]
    return {"source": "main", "target": params[0], "params": params[1]}


@pytest.mark.parametrize("channel", ["http", "socket"])
@pytest.mark.parametrize("role", [None, "viewer", "manager"])
@pytest.mark.parametrize("name", CELERY_ACTIONS)
def test_anyone_but_an_admin_is_refused_and_celery_is_unchanged(app, control, redis_url, workers, failed, name, role,
                                                                channel):
    asker = Channel(app, channel, role)
    request = valid_request(name, app, workers, failed)
    target_worker = request["target"] if request["target"] in workers else workers[0]
    before = fingerprint(app, control, redis_url, target_worker)
    rows_before = len(action_rows(app))
    status, body = asker.ask(name, request)
    assert status == (401 if role is None else 403), body
    time.sleep(0.3)  # a control that slipped through would have reached the worker by now
    assert fingerprint(app, control, redis_url, target_worker) == before
    rows = action_rows(app)
    if role is None:
        assert len(rows) == rows_before  # nobody to name
    else:
        assert len(rows) == rows_before + 1
        assert (rows[0]["user"], rows[0]["action"], rows[0]["outcome"], rows[0]["via"]) == (role, name, "refused", channel)


def effect(name: str, before: dict, after: dict, body: dict, request: dict) -> bool:
    """Whether the admin's control is visible on the worker (or in what it sent)."""
    target = request["target"]
    return {
        "celery.retry": lambda: bool(body["details"].get("new_task")),
        "celery.retry_selected": lambda: all(t.get("new_task") for t in body["details"]["tasks"]),
        "celery.retry_failures": lambda: all(t.get("new_task") for t in body["details"]["tasks"]),
        "celery.revoke": lambda: target in after["revoked"],
        "celery.terminate": lambda: target in after["revoked"],
        "celery.rate_limit": lambda: any("rate_limit=10/m" in r for r in after["limits"]),
        "celery.time_limit": lambda: any(" time_limit=20.0" in r and "soft_time_limit=10.0" in r for r in after["limits"]),
        "celery.drain": lambda: after["queues"] == [],
        "celery.resume": lambda: after["queues"] == ["celery"],
        "celery.pool_grow": lambda: after["pool"] == before["pool"] + 1,
        "celery.pool_shrink": lambda: after["pool"] == before["pool"] - 1,
        "celery.autoscale": lambda: body["details"]["workers"][target].startswith("ok"),
        "celery.pool_restart": lambda: body["details"]["workers"][target].startswith("ok"),
        "celery.shutdown": lambda: not after["alive"],
    }[name]()


# Run in an order where each control leaves the worker ready for the next (drain before resume,
# grow before shrink, shut the spare down last).
ADMIN_ORDER = ["celery.retry", "celery.retry_selected", "celery.retry_failures", "celery.revoke", "celery.terminate",
               "celery.rate_limit", "celery.time_limit", "celery.drain", "celery.resume", "celery.pool_grow",
               "celery.pool_shrink", "celery.pool_restart", "celery.autoscale", "celery.shutdown"]


def test_the_matrix_covers_every_celery_action():
    assert sorted(ADMIN_ORDER) == CELERY_ACTIONS  # a new action needs its request, effect and place here


@pytest.mark.parametrize("name", ADMIN_ORDER)
def test_an_admin_succeeds_and_the_worker_shows_it(app, control, redis_url, workers, failed, name):
    channel = "socket" if ADMIN_ORDER.index(name) % 2 else "http"  # both channels, alternately
    asker = Channel(app, channel, "admin")
    request = valid_request(name, app, workers, failed)
    target_worker = request["target"] if request["target"] in workers else workers[0]
    before = fingerprint(app, control, redis_url, target_worker)
    status, body = asker.ask(name, request)
    assert (status, body["outcome"]) == (200, "ok"), body
    after = wait_for(lambda: fingerprint(app, control, redis_url, target_worker),
                     lambda fp: effect(name, before, fp, body, request), timeout=20)
    assert effect(name, before, after, body, request)
    row = action_rows(app)[0]
    assert (row["user"], row["action"], row["outcome"], row["via"], row["target"]) == (
        "admin", name, "ok", channel, request["target"])

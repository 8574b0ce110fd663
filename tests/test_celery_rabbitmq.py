"""Celery end to end on RabbitMQ (the smaller set): events, failure, dashboard retry, drain/resume."""
from __future__ import annotations

import uuid

import pytest
from celery import Celery

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes
from tests.conftest import csrf_of, login
from tests.fixtures_services import wait_for
from tests.test_celery_live import TASKS, act, wait_state


@pytest.fixture(scope="module")
def worker(rabbitmq_url):
    service = processes.start_celery_worker(TASKS, rabbitmq_url, None, f"rabbit-{uuid.uuid4().hex[:6]}@localhost",
                                            concurrency=2, extra_args=["--prefetch-multiplier", "1"])
    yield service
    service.cleanup()


@pytest.fixture(scope="module")
def admin(rabbitmq_url, worker, tmp_path_factory):
    db = tmp_path_factory.mktemp("celery-rabbit") / "jobdash.db"
    source = SourceConfig("celery", "main", {"broker": rabbitmq_url}, interval=0.5, timeout=3.0)
    app = create_app(Settings(database_url=f"sqlite:///{db}", sources=[source], secret_key="t"))
    runtime = app.extensions["jobdash"]
    wait_for(lambda: runtime.readiness()["collectors"]["celery/main"],
             lambda s: s["state"] == "up" and s["headline"].get("events", 0) > 0, timeout=30)
    client = login(app, "admin")
    client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(client)
    yield client
    runtime.stop()


@pytest.fixture(scope="module")
def sender(rabbitmq_url):
    app = Celery("sender", broker=rabbitmq_url, set_as_current=False)
    app.conf.task_send_sent_event = True
    yield app
    app.close()


def test_success_and_failure_arrive_as_events(admin, sender, worker):
    ok = sender.send_task(f"{TASKS}.add", args=[20, 22])
    bad = sender.send_task(f"{TASKS}.fail", args=["amqp says no"])
    t = wait_state(admin, ok.id, "SUCCESS")
    assert t["result"] == "42" and t["worker"] == worker.hostname and t["queue"] == "celery"
    assert "amqp says no" in wait_state(admin, bad.id, "FAILURE")["exception"]


def test_retry_from_the_dashboard(admin, sender, tmp_path):
    failed = sender.send_task(f"{TASKS}.fail_once", args=[str(tmp_path / "m")])
    wait_state(admin, failed.id, "FAILURE")
    status, body = act(admin, "celery.retry", failed.id, confirm=True)
    assert status == 200, body
    assert wait_state(admin, body["details"]["new_task"], "SUCCESS")["retry_of"] == failed.id


def test_drain_then_resume(admin, sender, worker):
    status, body = act(admin, "celery.drain", worker.hostname)
    assert status == 200, body
    held = [sender.send_task(f"{TASKS}.add", args=[1, i]) for i in range(2)]
    # RabbitMQ's passive declare counts what waits in the queue.
    wait_for(lambda: admin.get("/readyz").json["collectors"]["celery/main"]["headline"], lambda h: h["queued"] == 2)
    status, body = act(admin, "celery.resume", worker.hostname)
    assert status == 200, body
    for r in held:
        wait_state(admin, r.id, "SUCCESS")

"""CeleryCollector against real `celery worker` processes on Redis and RabbitMQ."""
from __future__ import annotations

import time
import uuid

import pytest
import redis
from celery import Celery

from collectors.celery_workers import CeleryCollector
from dashboard.demo import processes
from tests.fixtures_services import silent_server, wait_for

SLEEP = "dashboard.demo.tasks.sleep"


def metric(observation, name: str, label: str = "") -> float | None:
    return next((value for m, lbl, value in observation.metrics if m == name and lbl == label), None)


@pytest.fixture
def collector(redis_url):
    c = CeleryCollector("test", interval=1, timeout=5, broker=redis_url)
    yield c
    c.close()


@pytest.fixture
def sender(redis_url):
    app = Celery("sender", broker=redis_url, set_as_current=False)
    yield app
    app.close()


def test_an_idle_worker_is_online_with_nothing_to_do(celery_worker_redis, collector):
    obs = collector.collect()
    assert obs.degraded is None
    assert obs.headline == {"workers": 1, "active": 0, "reserved": 0, "queued": 0}
    assert metric(obs, "workers_online") == 1
    assert metric(obs, "queue_depth", "celery") == 0


def test_active_and_queued_follow_the_tasks_sent(celery_worker_redis, collector, sender, redis_url):
    sent = 5
    ids = [sender.send_task(SLEEP, args=[30]).id for _ in range(sent)]
    try:
        # Two pool processes, prefetch 1: two tasks run, the rest wait in the broker.
        obs = wait_for(collector.collect, lambda o: o.headline["active"] == 2)
        backlog = redis.Redis.from_url(redis_url).llen("celery")
        assert obs.headline["queued"] == backlog == sent - 2 - obs.headline["reserved"]
        assert metric(obs, "tasks_active") == 2
        assert metric(obs, "queue_depth", "celery") == backlog
    finally:
        sender.control.purge()
        sender.control.revoke(ids, terminate=True, signal="SIGKILL")
    obs = wait_for(collector.collect, lambda o: o.headline["active"] == 0)
    assert obs.headline["queued"] == 0


def test_a_second_worker_comes_and_goes_and_its_queue_stays_watched(celery_worker_redis, collector, redis_url, sender):
    second = processes.start_celery_worker("dashboard.demo.tasks", redis_url, redis_url,
                                           f"second-{uuid.uuid4().hex[:6]}@localhost", queues="celery,reports",
                                           concurrency=1)
    try:
        obs = collector.collect()
        assert obs.headline["workers"] == 2
        assert metric(obs, "queue_depth", "reports") == 0
    finally:
        second.cleanup()
    obs = collector.collect()
    assert obs.headline["workers"] == 1
    # Nobody consumes "reports" now: what is sent there piles up, and the depth must show it.
    for _ in range(3):
        sender.send_task(SLEEP, args=[0], queue="reports")
    obs = collector.collect()
    assert metric(obs, "queue_depth", "reports") == 3
    assert obs.headline["queued"] == 3
    sender.control.purge()


def test_no_worker_is_degraded_and_the_backlog_still_counted(rabbitmq_url):
    sender = Celery("sender", broker=rabbitmq_url, set_as_current=False)
    for _ in range(3):
        sender.send_task(SLEEP, args=[1])
    sender.close()
    collector = CeleryCollector("test", timeout=5, broker=rabbitmq_url)
    try:
        obs = collector.collect()
    finally:
        collector.close()
    assert obs.degraded == "no worker answered"
    assert obs.headline == {"workers": 0, "active": 0, "reserved": 0, "queued": 3}
    assert metric(obs, "queue_depth", "celery") == 3


def test_a_worker_on_rabbitmq_is_seen(rabbitmq_url):
    queue = f"q-{uuid.uuid4().hex[:6]}"
    worker = processes.start_celery_worker("dashboard.demo.tasks", rabbitmq_url, None,
                                           f"rabbit-{uuid.uuid4().hex[:6]}@localhost", queues=queue, concurrency=1)
    collector = CeleryCollector("test", timeout=5, broker=rabbitmq_url)
    try:
        obs = collector.collect()
    finally:
        collector.close()
        worker.cleanup()
    assert obs.degraded is None
    assert obs.headline["workers"] == 1
    assert metric(obs, "queue_depth", queue) == 0


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_closed_broker_port_fails_at_once(scheme):
    port = processes.free_port()
    collector = CeleryCollector("test", timeout=5, broker=f"{scheme}://guest:guest@127.0.0.1:{port}//"
                                if scheme == "amqp" else f"redis://127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="unreachable.*(refused|111)"):
        collector.collect()
    assert time.monotonic() - started < 1.0
    collector.close()


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_silent_broker_fails_within_the_timeout(scheme):
    server = silent_server()
    port = server.getsockname()[1]
    url = f"amqp://guest:guest@127.0.0.1:{port}//" if scheme == "amqp" else f"redis://127.0.0.1:{port}/0"
    collector = CeleryCollector("test", timeout=3, broker=url)
    started = time.monotonic()
    try:
        with pytest.raises(Exception):
            collector.collect()
        assert time.monotonic() - started < 3.0
    finally:
        collector.close()
        server.close()


def test_a_poll_returns_as_soon_as_every_known_worker_answered(celery_worker_redis, redis_url):
    # A long timeout: a poll that waited it out would take at least reply_timeout per call.
    collector = CeleryCollector("fast", interval=1, timeout=20, broker=redis_url)
    try:
        started = time.monotonic()
        assert collector.collect().headline["workers"] == 1  # the first ping waits for every worker
        first = time.monotonic() - started
        assert first >= collector.reply_timeout
        took = []
        for _ in range(3):
            started = time.monotonic()
            assert collector.collect().headline["workers"] == 1
            took.append(time.monotonic() - started)
        # The known worker answers at once; the poll does not sit out the reply timeout.
        assert min(took) < collector.reply_timeout / 2, (first, took)
    finally:
        collector.close()


def test_a_worker_whose_slow_replies_went_missing_is_asked_again_at_the_next_poll(celery_worker_redis, collector):
    """Its registered tasks must not show as none until the next slow round, 30 s later."""
    collector.collect()
    (worker,) = collector._known
    # As a poll meets a worker whose stats and registered replies miss the timeout: a round in
    # which, for the collector, the worker said nothing (the question went to nobody it knows).
    collector._slow.clear()
    collector._refresh_slow(collector.app.control.inspect(destination=["celery@nobody"], timeout=0.2), [worker])
    info = next(p["info"] for kind, p in collector.collect().records if kind == "celery_worker_info")
    assert any(name.startswith(SLEEP) for name in info["registered"]), info

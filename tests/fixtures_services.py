"""Fixtures that run the real watched systems (and the Consul double) for the slow tier."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest
import redis

from dashboard.demo import processes
from tests.consul_double import ConsulDouble

logger = logging.getLogger(__name__)

REDIS = "redis://127.0.0.1:6379"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"
CLAIM_KEY = "jobdash-test-claim"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis database number of this module's own, empty at start and flushed at the end."""
    admin = redis.Redis.from_url(f"{REDIS}/0", socket_timeout=5)
    try:
        databases = int(admin.config_get("databases").get("databases", 16))
    except redis.ResponseError:  # CONFIG may be disabled; 16 is Redis's default
        databases = 16
    finally:
        admin.close()
    # db 0 is left to whoever else uses this Redis; a claim key stops two modules sharing a db.
    for db in range(1, databases):
        client = redis.Redis.from_url(f"{REDIS}/{db}", socket_timeout=5)
        if client.set(CLAIM_KEY, os.getpid(), nx=True, ex=3600):
            client.flushdb()
            client.set(CLAIM_KEY, os.getpid(), ex=3600)
            try:
                yield f"{REDIS}/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    pytest.fail("every Redis database is claimed by another test run")


@pytest.fixture(scope="module")
def celery_worker_redis(redis_url: str) -> Iterator[processes.Service]:
    """A real `celery worker -E` of dashboard.demo.tasks on this module's Redis database.

    Two prefork processes and a prefetch multiplier of 1, so what is active, reserved and
    still queued follows directly from what a test sends.
    """
    service = processes.start_celery_worker(
        "dashboard.demo.tasks", redis_url, redis_url, f"jobdash-test-{uuid.uuid4().hex[:8]}@localhost",
        concurrency=2, extra_args=["--prefetch-multiplier", "1"])
    yield service
    service.cleanup()


@pytest.fixture(scope="module")
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this module's own (the default vhost if rabbitmqctl is missing)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        yield f"{RABBITMQ}//"
        return
    vhost = f"jobdash-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=30)
    subprocess.run([ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=30)
    try:
        yield f"{RABBITMQ}/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[processes.Service]:
    """A Dask scheduler with two one-thread worker processes; `.address` is the scheduler's."""
    service = processes.start_dask_scheduler(n_workers=2, nthreads=1, memory_limit="1GB")
    yield service
    service.cleanup()


@contextmanager
def producing(producer, topic: str, partition: int = 0, pause: float = 0.05) -> Iterator[None]:
    """Write records to one partition, one per batch (tansu's end offsets stay exact), until the block ends."""
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            producer.send(topic, b"m", partition=partition).get(timeout=10)
            time.sleep(pause)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


@pytest.fixture(scope="module")
def kafka_broker() -> Iterator[processes.Service]:
    """A tansu Kafka-protocol broker; `.bootstrap` is "127.0.0.1:PORT"."""
    service = processes.start_tansu()
    yield service
    service.cleanup()


class ConsulAgent:
    """The Consul the tests talk to: the in-process double, or the agent at CONSUL_HTTP_ADDR."""

    def __init__(self, real_address: str | None = None):
        self.double = None if real_address else ConsulDouble().start()
        self.address = real_address or self.double.address

    @property
    def is_double(self) -> bool:
        return self.double is not None

    def client(self):
        """A python-consul2 client for this agent."""
        import warnings

        import consul

        host, _, port = self.address.rpartition("//")[2].rpartition(":")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # python-consul2's legacy-API notices
            return consul.Consul(host=host, port=int(port))

    def set_check_status(self, check_id: str, status: str, output: str = "") -> None:
        """Set a check's status: directly on the double, through its TTL endpoint on a real agent."""
        if self.double is not None:
            self.double.set_check_status(check_id, status, output)
            return
        ttl = self.client().agent.check
        {"passing": ttl.ttl_pass, "warning": ttl.ttl_warn, "critical": ttl.ttl_fail}[status](check_id, output)

    def stop(self) -> None:
        if self.double is not None:
            self.double.stop()


@pytest.fixture(scope="module")
def consul_agent() -> Iterator[ConsulAgent]:
    """A Consul HTTP API: the test double, or the real agent named by CONSUL_HTTP_ADDR."""
    agent = ConsulAgent(os.environ.get("CONSUL_HTTP_ADDR") or None)
    yield agent
    agent.stop()


def wait_for(probe, until, timeout: float = 15.0, interval: float = 0.2):
    """Call probe() until until(value) holds; return that value, or fail with the last one seen."""
    import time

    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g}s; last value: {value!r}")
        time.sleep(interval)


def silent_server():
    """A TCP port that accepts connections and never says a word (a hung source)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def celery_dashboard(redis_url: str, db_path) -> Iterator:
    """A dashboard app watching a real worker on `redis_url` with a fast poll, its event receiver connected."""
    from dashboard import create_app
    from dashboard.config import Settings, SourceConfig

    source = SourceConfig("celery", "main", {"broker": redis_url, "backend": redis_url}, interval=0.5, timeout=3.0)
    app = create_app(Settings(database_url=f"sqlite:///{db_path}", sources=[source], secret_key="t"))
    runtime = app.extensions["jobdash"]
    # The receiver is connected once the status stops saying the event stream is down.
    wait_for(lambda: runtime.readiness()["collectors"]["celery/main"],
             lambda s: s["state"] == "up" and s["headline"].get("events", 0) > 0, timeout=30)
    yield app
    runtime.stop()

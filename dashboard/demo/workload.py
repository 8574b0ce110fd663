"""`jobdash demo`: real local Celery, Dask and Kafka with a steady made-up workload, watched live."""
from __future__ import annotations

import logging
import os
import random
import threading
from contextlib import ExitStack
from pathlib import Path

from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes

logger = logging.getLogger(__name__)

TOPIC = "orders"
GROUP = "billing"


def _celery_load(stop: threading.Event) -> None:
    """Send a mix of quick, slow and failing tasks."""
    from dashboard.demo import tasks

    rng = random.Random()
    while not stop.wait(rng.uniform(0.3, 1.2)):
        roll = rng.random()
        if roll < 0.08:
            tasks.fail.delay(f"card declined for order {rng.randint(1000, 9999)}")
        elif roll < 0.25:
            tasks.sleep.delay(rng.uniform(1, 4))
        else:
            tasks.add.delay(rng.randint(0, 100), rng.randint(0, 100))


def _dask_load(stop: threading.Event, address: str) -> None:
    """Submit small batches of work, now and then one that errs."""
    from distributed import Client

    def square(x):
        import time

        time.sleep(0.05)
        if x == 13:
            raise ValueError("unlucky thirteen")
        return x * x

    rng = random.Random()
    with Client(address, set_as_default=False, timeout=10) as client:
        while not stop.wait(rng.uniform(1, 3)):
            futures = client.map(square, range(rng.randint(5, 30)), pure=False)
            client.gather(futures, errors="skip")


def _kafka_load(stop: threading.Event, bootstrap: str) -> None:
    """Produce orders steadily; a consumer group reads in bursts, so lag rises and falls."""
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    rng = random.Random()
    n = 0
    try:
        while not stop.wait(0.2):
            # One record per send keeps tansu's end offsets exact (see ENVIRONMENT.md).
            producer.send(TOPIC, f"order {n}".encode()).get(timeout=10)
            n += 1
            if rng.random() < 0.1:
                consumer.poll(timeout_ms=200, max_records=rng.randint(5, 40))
                consumer.commit()
    finally:
        producer.close()
        consumer.close()


def _loop(name: str, target, stop: threading.Event, *args) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            try:
                target(stop, *args)
            except Exception:
                logger.exception("demo %s load failed; restarting in 5 s", name)
                stop.wait(5)

    thread = threading.Thread(target=run, name=f"demo-{name}", daemon=True)
    thread.start()
    return thread


def run_demo(host: str, port: int, workdir: str) -> None:
    """Start the demo services and their workload, then serve the dashboard until stopped."""
    from dashboard import create_app
    from dashboard.cli import serve_app

    root = Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["JOBDASH_DEMO_DIR"] = str(root)  # read by dashboard.demo.tasks at import
    broker, backend = "filesystem://", f"db+sqlite:///{root / 'results.db'}"
    stop = threading.Event()
    with ExitStack() as services:
        logger.info("starting the demo's Celery worker, Dask cluster and Kafka broker")
        services.enter_context(processes.start_celery_worker(
            "dashboard.demo.tasks", broker, backend, "demo@localhost", concurrency=2,
            env={"JOBDASH_DEMO_DIR": str(root)}))
        dask = services.enter_context(processes.start_dask_scheduler(n_workers=2))
        kafka = services.enter_context(processes.start_tansu())
        services.callback(stop.set)
        settings = Settings(
            database_url=f"sqlite:///{root / 'jobdash.db'}",
            sources=[
                SourceConfig("celery", "demo", {"broker": broker, "backend": backend,
                                                "transport_options": processes.demo_transport_options(root)},
                             interval=2.0),
                SourceConfig("dask", "demo", {"address": dask.address}, interval=2.0),
                SourceConfig("kafka", "demo", {"bootstrap_servers": kafka.bootstrap}, interval=2.0),
            ],
        )
        _loop("celery", _celery_load, stop)
        _loop("dask", _dask_load, stop, dask.address)
        _loop("kafka", _kafka_load, stop, kafka.bootstrap)
        serve_app(create_app(settings), host, port)

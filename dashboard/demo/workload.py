"""`jobdash demo`: real local Celery, Dask and Kafka with a steady made-up workload, watched live."""
from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import threading
import time
from pathlib import Path

from dashboard.auth.users import MIN_PASSWORD_LENGTH
from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes

logger = logging.getLogger(__name__)

TOPIC = "orders"
PARTITIONS = 3
# Consumer groups of the demo and how each behaves (see _kafka_consume).
GROUPS = {"search": "keeps-up", "billing": "falls-behind", "analytics": "stuck"}
PASSWORD_FILE = "admin-password"
# A hostname of its own keeps kombu from warning that none was supplied.
BROKER = "filesystem://localhost/"


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


def _dask_load(stop: threading.Event, address: str, workdir: str) -> None:
    """Submit batches of work under a few prefixes; now and then a task errs. Flaky tasks fail on
    their first run only: the workload retries half of them itself, and keeps the rest erred for a
    few minutes, so that a retry from jobdash's page succeeds."""
    import time
    from pathlib import Path

    from distributed import Client

    flaky_dir = Path(workdir) / "dask-flaky"
    flaky_dir.mkdir(parents=True, exist_ok=True)

    def square(x):
        import time

        time.sleep(0.05)
        if x == 13:
            raise ValueError("unlucky thirteen")
        return x * x

    def resize(x):
        import time

        time.sleep(0.2)
        return x * 2

    def fetch_report(marker):
        import os

        if not os.path.exists(marker):
            open(marker, "w").close()  # the next run finds what this one lacked
            raise ConnectionError(f"report service timed out ({os.path.basename(marker)})")
        return marker

    rng = random.Random()
    held: list[tuple[float, list]] = []  # erred futures kept for a retry from the page
    with Client(address, set_as_default=False, timeout=10) as client:
        n = 0
        while not stop.wait(rng.uniform(1, 3)):
            n += 1
            futures = client.map(square, range(rng.randint(5, 30)), pure=False)
            futures += client.map(resize, range(rng.randint(2, 10)), pure=False)
            if n % 5 == 0:
                flaky = [client.submit(fetch_report, str(flaky_dir / f"report-{n}-{i}"), pure=False) for i in range(2)]
                client.gather(flaky, errors="skip")
                client.retry(flaky[:1])  # the workload's own retry: erred, then in memory
                held.append((time.monotonic(), flaky[1:]))
            client.gather(futures, errors="skip")
            held = [(at, kept) for at, kept in held if time.monotonic() - at < 300]


def _kafka_topic(bootstrap: str) -> None:
    """Create the demo's topic. Done before any consumer subscribes: tansu creates a topic a consumer
    asks for on its own, with 4 partitions, and a group that joined before the topic existed waits
    for a rebalance to be assigned anything."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def _kafka_produce(stop: threading.Event, bootstrap: str) -> None:
    """Produce about five orders a second over the topic's partitions."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        n = 0
        while not stop.wait(0.2):
            # One record per send keeps tansu's end offsets exact (see ENVIRONMENT.md).
            producer.send(TOPIC, f"order {n}".encode(), partition=n % PARTITIONS).get(timeout=10)
            n += 1
    finally:
        producer.close()


def _kafka_consume(stop: threading.Event, bootstrap: str, group: str, behaviour: str) -> None:
    """One consumer of `group`: "keeps-up" (OK), "falls-behind" (commits a little less than is produced
    on every partition, so lag grows: WARN, with a catch-up now and then) or "stuck" (stays in the group
    but commits its starting positions once, as soon as it is assigned, and never again: STALL while
    records keep arriving)."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    # With kafka-python's defaults (10 s session, 5 min rebalance timeout) tansu took 23 s to assign
    # a group's first member; with these, under 4 s.
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                             max_poll_interval_ms=30000)
    rng = random.Random()
    stuck = False
    try:
        while not stop.is_set():
            records = consumer.poll(timeout_ms=500, max_records=500)
            assigned = list(consumer.assignment())
            if behaviour == "keeps-up" and records:
                consumer.commit()
            elif behaviour == "stuck" and assigned and not stuck:
                # Not waiting for records: a first fetch that is slow must not leave the group uncommitted.
                consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in assigned})
                stuck = True
            elif behaviour == "falls-behind" and assigned:
                ends = consumer.end_offsets(assigned)
                catch_up = rng.random() < 0.01
                offsets = {}
                for tp, end in ends.items():
                    done = consumer.committed(tp) or 0
                    offsets[tp] = OffsetAndMetadata(end if catch_up else min(end, done + rng.randint(1, 2)), "", -1)
                consumer.commit(offsets)
            stop.wait(0.5 if behaviour == "keeps-up" else 1.0)
    finally:
        consumer.close()


def start_kafka_load(stop: threading.Event, bootstrap: str) -> list[threading.Thread]:
    """The demo's topic, its producer and one consumer per group of GROUPS."""
    _kafka_topic(bootstrap)
    return [_loop("kafka-producer", _kafka_produce, stop, bootstrap)] + [
        _loop(f"kafka-{group}", _kafka_consume, stop, bootstrap, group, behaviour)
        for group, behaviour in GROUPS.items()]


def _loop(name: str, target, stop: threading.Event, *args) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            try:
                target(stop, *args)
            except Exception:
                if stop.is_set():
                    return  # its service is going away: expected while stopping
                logger.exception("demo %s load failed; restarting in 5 s", name)
                stop.wait(5)

    thread = threading.Thread(target=run, name=f"demo-{name}", daemon=True)
    thread.start()
    return thread


def demo_password(root: Path) -> str:
    """The demo admin's password, kept in <workdir>/admin-password so that restarts keep it."""
    path = root / PASSWORD_FILE
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if len(password) < MIN_PASSWORD_LENGTH:
        password = secrets.token_urlsafe(12)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(password + "\n")
    return password


def login_banner(host: str, port: int, password: str, root: Path) -> str:
    """The block that tells how to log in: the last thing startup prints."""
    rule = "-" * 64
    return "\n".join([
        "", rule, "  jobdash demo is running.  Log in at:", "",
        f"    http://{host}:{port}/login", "    user      admin", f"    password  {password}", "",
        "  The password stays the same across restarts; for a new one delete",
        f"  {root / PASSWORD_FILE} and start again.  Ctrl-C stops everything.", rule,
    ])


class Shutdown:
    """Stop the workload, then every demo process at once; once, quietly, within a few seconds."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.loads: list[threading.Thread] = []
        self.services: list[processes.Service] = []
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:  # a second caller waits for the first to finish
            if self._done:
                return
            self._done = True
            self.stop.set()
            # Clients and collectors seeing their broker or scheduler go away now is expected, not news.
            logging.disable(logging.ERROR)
            deadline = time.monotonic() + 1.0
            for thread in self.loads:
                thread.join(max(0.0, deadline - time.monotonic()))
            # Nothing of the demo's is worth waiting for: its broker and results live in files, tansu in memory.
            processes.stop_together(self.services, grace=1.0)
            for service in self.services:
                shutil.rmtree(service.log_dir, ignore_errors=True)


def run_demo(host: str, port: int, workdir: str) -> None:
    """Start the demo services and their workload, then serve the dashboard until stopped."""
    from dashboard import create_app
    from dashboard.auth.users import ensure_demo_admin
    from dashboard.serving import serve_app

    if processes.port_open(host, port):
        raise SystemExit(f"jobdash demo: {host}:{port} is already in use; pass --port to choose another")
    root = Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["JOBDASH_DEMO_DIR"] = str(root)  # read by dashboard.demo.tasks at import
    stop = threading.Event()
    shutdown = Shutdown(stop)
    services = shutdown.services
    try:
        logger.info("starting the demo's Celery worker, Dask cluster and Kafka broker in %s", root)
        services.append(processes.start_celery_worker(
            "dashboard.demo.tasks", BROKER, f"db+sqlite:///{root / 'results.db'}", "demo@localhost",
            concurrency=2, env={"JOBDASH_DEMO_DIR": str(root)}))
        dask = processes.start_dask_scheduler(n_workers=2, nanny=True)
        services.append(dask)
        kafka = processes.start_tansu()
        services.append(kafka)
        settings = Settings(
            database_url=f"sqlite:///{root / 'jobdash.db'}",
            sources=[
                SourceConfig("celery", "demo", {"broker": BROKER, "backend": f"db+sqlite:///{root / 'results.db'}",
                                                "transport_options": processes.demo_transport_options(root)},
                             interval=2.0),
                SourceConfig("dask", "demo", {"address": dask.address}, interval=2.0),
                SourceConfig("kafka", "demo", {"bootstrap_servers": kafka.bootstrap, "lag_warn": 2000},
                             interval=2.0),
            ],
        )
        shutdown.loads += [_loop("celery", _celery_load, stop), _loop("dask", _dask_load, stop, dask.address, str(root))]
        shutdown.loads += start_kafka_load(stop, kafka.bootstrap)
        app = create_app(settings)
        password = ensure_demo_admin(app.extensions["jobdash"], demo_password(root))
        # The demo's own processes stop while the dashboard does.
        serve_app(app, host, port, banner=login_banner(host, port, password, root), on_signal=shutdown)
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: stop what is up, quietly
    finally:
        shutdown()
    print("jobdash demo: stopped", flush=True)

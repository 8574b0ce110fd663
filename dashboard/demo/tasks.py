"""A tiny Celery app for the demo and the tests; broker and backend come from the environment."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery import Celery

from collectors import kombu_filesystem
from dashboard.demo.processes import demo_transport_options

logger = logging.getLogger(__name__)


def _configure(app: Celery) -> None:
    broker = os.environ.get("JOBDASH_DEMO_BROKER", "filesystem://localhost/")
    backend = os.environ.get("JOBDASH_DEMO_BACKEND")
    if broker.startswith("filesystem://"):
        kombu_filesystem.install()
        # Kombu's filesystem transport needs its folders to exist before anyone connects.
        options = demo_transport_options()
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = options
        if backend is None:
            backend = f"db+sqlite:///{Path(options['data_folder_in']).parent / 'results.db'}"
    app.conf.update(
        broker_url=broker,
        result_backend=backend or None,
        worker_send_task_events=True,
        worker_pool_restarts=True,  # lets the dashboard's "restart pool" control work on demo workers
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        result_extended=True,  # the backend then knows name, args and worker: what gap recovery stores
    )


app = Celery("jobdash_demo")
_configure(app)


@app.task
def add(x, y):
    """Add two numbers."""
    return x + y


@app.task
def fail(msg="failed on purpose"):
    """Raise, so the dashboard has a failure to show."""
    raise RuntimeError(msg)


@app.task
def sleep(seconds=1.0):
    """Hold a worker slot for a while."""
    time.sleep(float(seconds))
    return seconds


@app.task
def echo(*args, **kwargs):
    """Return what it was given."""
    return {"args": list(args), "kwargs": kwargs}


@app.task(bind=True, max_retries=3)
def flaky(self, attempts=2):
    """Fail and retry itself a second later until the given attempt, then succeed."""
    if self.request.retries < attempts - 1:
        raise self.retry(countdown=1, exc=RuntimeError(f"attempt {self.request.retries + 1} failed"))
    return self.request.retries + 1


@app.task
def fail_once(marker):
    """Fail the first time (leaving `marker` behind), succeed on any later try: a retryable failure."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError(f"first try fails; {marker} now exists")
    return "second try worked"

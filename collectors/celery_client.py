"""A Celery app for talking to one configured broker, with every wait bounded."""
from __future__ import annotations

from typing import Any

from celery import Celery

from collectors import kombu_filesystem


def celery_app(name: str, broker: str, backend: str | None = None, timeout: float = 5.0,
               transport_options: dict[str, Any] | None = None) -> Celery:
    """An app that fails fast: one connection attempt, socket waits within `timeout`."""
    if broker.startswith("filesystem://"):
        kombu_filesystem.install()
    io_timeout = max(0.5, timeout / 3)
    app = Celery(f"jobdash-{name}", broker=broker, backend=backend or None, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=io_timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_transport_options={
            # redis-py
            "socket_timeout": io_timeout, "socket_connect_timeout": io_timeout, "max_retries": 0,
            # py-amqp
            "read_timeout": io_timeout, "write_timeout": io_timeout,
            **(transport_options or {}),
        },
        result_backend_transport_options={"socket_timeout": io_timeout, "socket_connect_timeout": io_timeout},
    )
    return app

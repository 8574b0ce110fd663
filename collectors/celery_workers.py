"""Celery: which workers answer, what they run and hold, how deep their queues are."""
from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from collectors.base import Collector, Observation

logger = logging.getLogger(__name__)


class CeleryCollector(Collector):
    """Poll a Celery cluster through its broker with remote-control inspect calls."""

    kind = "celery"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, broker: str = "",
                 backend: str | None = None, transport_options: dict[str, Any] | None = None, **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, broker=broker, backend=backend, **options)
        # The ping must wait its whole timeout (nobody knows how many workers exist); the calls
        # after it name the workers that answered and return as soon as all of them reply.
        # Four such waits plus socket I/O must fit in the poll's budget. Kombu's filesystem
        # transport (the demo's) polls folders, and a worker busy taking tasks answers late there.
        slow = broker.startswith("filesystem")
        self.reply_timeout = timeout / 3 if slow else max(0.2, min(1.0, timeout / 5))
        io_timeout = max(0.5, timeout / 3)
        self.app = Celery(f"jobdash-{name}", broker=broker, backend=backend or None, set_as_current=False)
        self.app.conf.update(
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
        )

    def collect(self) -> Observation:
        with self.app.connection_for_write() as conn:
            try:
                # connect() would retry once after a 2 s pause; a poll gets one attempt.
                conn.ensure_connection(max_retries=0)
            except Exception as exc:
                raise ConnectionError(f"broker {conn.as_uri()} unreachable: {exc}") from exc
            return self._observe(conn)

    def _observe(self, conn) -> Observation:
        ping = self.app.control.inspect(timeout=self.reply_timeout, connection=conn).ping() or {}
        workers = sorted(ping)
        problems: list[str] = []
        active: dict[str, list] = {}
        reserved: dict[str, list] = {}
        queue_names: set[str] = set()
        if workers:
            inspect = self.app.control.inspect(destination=workers, timeout=self.reply_timeout, connection=conn)
            active = inspect.active() or {}
            reserved = inspect.reserved() or {}
            for worker_queues in (inspect.active_queues() or {}).values():
                queue_names.update(q["name"] for q in worker_queues or [] if q.get("name"))
            for what, replies in (("active", active), ("reserved", reserved)):
                silent = [w for w in workers if w not in replies]
                if silent:
                    problems.append(f"no {what} reply from {', '.join(silent)}")
        else:
            problems.append("no worker answered")
        # With no worker (or none telling its queues) the default queue is still worth watching:
        # that is where tasks pile up.
        queue_names = queue_names or {self.app.conf.task_default_queue}
        depths = self._queue_depths(conn, sorted(queue_names), problems)

        n_active = sum(len(tasks or []) for tasks in active.values())
        n_reserved = sum(len(tasks or []) for tasks in reserved.values())
        metrics = [("workers_online", "", float(len(workers))), ("tasks_active", "", float(n_active)),
                   ("tasks_reserved", "", float(n_reserved))]
        metrics += [("queue_depth", queue, float(depth)) for queue, depth in depths.items()]
        return Observation(
            headline={"workers": len(workers), "active": n_active, "reserved": n_reserved,
                      "queued": sum(depths.values())},
            metrics=metrics,
            degraded="; ".join(problems) or None,
        )

    def _queue_depths(self, conn, queues: list[str], problems: list[str]) -> dict[str, int]:
        """Messages waiting in each queue, by a passive declare (Redis LLEN, AMQP message count)."""
        depths: dict[str, int] = {}
        for queue in queues:
            channel = conn.channel()
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except conn.channel_errors:
                # Kombu's Redis transport has no key for an empty queue; AMQP says 404 if none exists.
                depths[queue] = 0
            except Exception as exc:  # noqa: BLE001 - depth is a bonus; the rest of the poll stands
                problems.append(f"queue depth of {queue!r} unknown: {exc}")
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - a channel the broker already closed
                    pass
        return depths

    def close(self) -> None:
        self.app.close()

"""Celery: which workers answer, what they run and hold, how deep their queues are.

Each poll also keeps the event receiver (collectors.celery_events) running, and reconciles
tasks the store still thinks are running but no worker holds: after a gap in the event
stream (broker or dashboard down), the result backend or the workers say how they ended.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from collectors.base import Collector, Observation
from collectors.celery_client import celery_app
from collectors.celery_events import EventReceiver
from collectors.celery_reconcile import Reconciler

logger = logging.getLogger(__name__)

SLOW_EVERY = 30.0  # seconds between the inspect calls whose answers rarely change
STATS_KEPT = ("pid", "uptime", "prefetch_count", "total", "broker")


class CeleryCollector(Collector):
    """Poll a Celery cluster through its broker with remote-control inspect calls."""

    kind = "celery"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, broker: str = "",
                 backend: str | None = None, transport_options: dict[str, Any] | None = None, **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, broker=broker, backend=backend, **options)
        # A broadcast ping must wait its whole timeout (nobody knows how many workers exist), so
        # it runs only every SLOW_EVERY; in between the ping names the workers known from the
        # last one, and like every call after it returns as soon as all of them reply.
        # Kombu's filesystem transport (the demo's) polls folders, so replies come late there.
        slow = broker.startswith("filesystem")
        self.reply_timeout = timeout / 3 if slow else max(0.2, min(1.0, timeout / 5))
        self.app = celery_app(name, broker, backend, timeout, transport_options)
        self.receiver: EventReceiver | None = None
        self.reconciler = Reconciler(self.app, name, interval, budget=timeout / 4)
        self.store = None  # the sink's Celery reads (celery_unfinished, celery_gaps...), once bound
        # Queues ever consumed: a drained worker stops listing its queues, whose depth still matters.
        self.known_queues: set[str] = set()
        self._slow: dict[str, dict[str, Any]] = {}
        self._slow_at = 0.0
        self._known: list[str] = []
        self._discovered_at = 0.0

    def bind(self, sink) -> None:
        super().bind(sink)
        self.store = sink if hasattr(sink, "celery_unfinished") else None

    def collect(self) -> Observation:
        if self.receiver is None and self.bound:
            if self.store is not None:
                self.reconciler.before_listening(self.store)
            self.receiver = EventReceiver(self.app, self.name, self.emit, timeout=self.timeout)
            self.receiver.start()
        with self.app.connection_for_write() as conn:
            try:
                # connect() would retry once after a 2 s pause; a poll gets one attempt.
                conn.ensure_connection(max_retries=0)
            except Exception as exc:
                raise ConnectionError(f"broker {conn.as_uri()} unreachable: {exc}") from exc
            observation = self._observe(conn)
        if self.receiver is not None:
            events = self.receiver.status()
            observation.headline["events"] = events["events"]
            if not events["connected"]:
                why = f"event stream down: {events['last_error'] or 'connecting'}"
                observation.degraded = f"{observation.degraded}; {why}" if observation.degraded else why
        return observation

    def _observe(self, conn) -> Observation:
        now = time.time()
        workers = self._ping(conn, now)
        problems: list[str] = []
        replies: dict[str, dict[str, Any]] = {}
        if workers:
            inspect = self.app.control.inspect(destination=workers, timeout=self.reply_timeout, connection=conn)
            for what in ("active", "reserved", "scheduled", "active_queues"):
                replies[what] = getattr(inspect, what)() or {}
                silent = [w for w in workers if w not in replies[what]]
                if silent and what in ("active", "reserved"):
                    problems.append(f"no {what} reply from {', '.join(silent)}")
            if now - self._slow_at > SLOW_EVERY or set(workers) - set(self._slow):
                self._refresh_slow(inspect, workers)
                self._slow_at = now
        else:
            problems.append("no worker answered")
        for worker_queues in replies.get("active_queues", {}).values():
            self.known_queues.update(q["name"] for q in worker_queues or [] if q.get("name"))
        # With no worker telling its queues, the default queue is still where tasks pile up.
        depths = self._queue_depths(conn, sorted(self.known_queues or {self.app.conf.task_default_queue}), problems)

        records = [("celery_worker_info", self._worker_info(w, replies, now)) for w in workers]
        self._reconcile(workers, replies, now)
        n_active = sum(len(t or []) for t in replies.get("active", {}).values())
        n_reserved = sum(len(t or []) for t in replies.get("reserved", {}).values())
        metrics = [("workers_online", "", float(len(workers))), ("tasks_active", "", float(n_active)),
                   ("tasks_reserved", "", float(n_reserved))]
        metrics += [("queue_depth", queue, float(depth)) for queue, depth in depths.items()]
        return Observation(
            headline={"workers": len(workers), "active": n_active, "reserved": n_reserved, "queued": sum(depths.values())},
            metrics=metrics, records=records, degraded="; ".join(problems) or None,
        )

    def _ping(self, conn, now: float) -> list[str]:
        """The workers answering a ping: all of them every SLOW_EVERY, else the ones known."""
        discover = not self._known or now - self._discovered_at > SLOW_EVERY
        destination = None if discover else self._known
        ping = self.app.control.inspect(destination=destination, timeout=self.reply_timeout, connection=conn).ping() or {}
        if discover:
            self._discovered_at = now
        self._known = sorted(ping)
        return self._known

    def _refresh_slow(self, inspect, workers: list[str]) -> None:
        """Stats (pool, prefetch), registered task names and revoked ids: asked every SLOW_EVERY.
        A worker whose replies came too late keeps what it said before; one that never answered
        stays unknown here, so the next poll asks it again (not SLOW_EVERY later)."""
        stats = inspect.stats() or {}
        registered = inspect.registered("rate_limit", "time_limit") or {}
        revoked = inspect.revoked() or {}
        for worker in workers:
            if not all(worker in replies for replies in (stats, registered, revoked)):
                continue
            s = stats.get(worker) or {}
            self._slow[worker] = {
                "pool": s.get("pool") or {}, **{k: s[k] for k in STATS_KEPT if k in s},
                "registered": registered.get(worker) or [], "revoked": len(revoked.get(worker) or []),
            }

    def _worker_info(self, worker: str, replies: dict[str, dict[str, Any]], now: float) -> dict[str, Any]:
        queues = replies.get("active_queues", {}).get(worker) or []
        info = {
            **self._slow.get(worker, {}),
            "queues": [{"name": q.get("name"), "exchange": (q.get("exchange") or {}).get("name"),
                        "routing_key": q.get("routing_key")} for q in queues],
            "active": len(replies.get("active", {}).get(worker) or []),
            "reserved": len(replies.get("reserved", {}).get(worker) or []),
            "scheduled": len(replies.get("scheduled", {}).get(worker) or []),
            "pinged_at": now, "poll_interval": self.interval,
        }
        return {"source": self.name, "hostname": worker, "at": now, "info": info}

    def _reconcile(self, workers: list[str], replies: dict[str, dict[str, Any]], now: float) -> None:
        """Settle tasks left unfinished and fill gaps in events (collectors.celery_reconcile).

        Its writes go out at once, not with the poll's records: a poll the runner gave up on
        must not take what the reconciler already counted as done with it."""
        if self.store is None:
            return
        connected_at = self.receiver.status()["connected_at"] if self.receiver is not None else None
        for kind, payload in (self.reconciler.resume(connected_at) + self.reconciler.settle(self.store, workers, replies, now)
                              + self.reconciler.fill_gaps(self.store, now)):
            self.emit(kind, [payload])

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
        if self.receiver is not None:
            self.receiver.stop()
        self.app.close()

"""The thread that runs one collector: interval, jittered backoff, timeouts, status."""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Protocol

from collectors.base import Collector, Observation

logger = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a runner sends what it saw; the dashboard's store adapter implements it."""

    def publish(self, collector: Collector, status: dict[str, Any], observation: Observation | None) -> None: ...

    def emit(self, kind: str, payloads: list[Any]) -> None: ...


def backoff_delay(interval: float, failures: int, cap: float, rng: random.Random) -> float:
    """Delay before the next try after `failures` consecutive failures: doubled each time,
    capped, with full jitter in its upper half so many sources do not retry in step."""
    if failures <= 0:
        return interval
    base = min(cap, interval * (2 ** min(failures - 1, 60)))  # bounded: a huge int overflows float
    return base * rng.uniform(0.5, 1.0)


class CollectorRunner:
    """Poll one collector on its own thread until stopped; a failing source never kills it."""

    def __init__(self, collector: Collector, sink: Sink, backoff_cap: float = 60.0):
        self.collector = collector
        self.sink = sink
        collector.bind(sink)
        self.backoff_cap = backoff_cap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._call: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.failures = 0
        self._status: dict[str, Any] = {
            "kind": collector.kind, "name": collector.name, "state": "unknown", "updated_at": time.time(),
            "last_success_at": None, "last_error": None, "last_error_at": None, "last_poll_ms": None,
            "headline": {},
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"collector-{self.collector.key}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread:
            self._thread.join(timeout)
        try:
            self.collector.close()
        except Exception:
            logger.exception("closing %s failed", self.collector.key)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            delay = backoff_delay(self.collector.interval, self.failures, self.backoff_cap, self._rng)
            self._stop.wait(delay)

    def _call_with_timeout(self) -> Observation:
        """Run collect() on a helper thread; give up on it after the collector's timeout."""
        if self._call is not None and self._call.is_alive():
            raise TimeoutError(f"previous poll still hanging (over {self.collector.timeout:g}s)")
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = self.collector.collect()
            except BaseException as exc:  # noqa: BLE001 - reported as the source's error
                box["error"] = exc

        self._call = threading.Thread(target=call, name=f"poll-{self.collector.key}", daemon=True)
        self._call.start()
        deadline = time.monotonic() + self.collector.timeout
        # Waited on in slices, so that stop() need not sit out a slow poll.
        while self._call.is_alive() and not self._stop.is_set() and time.monotonic() < deadline:
            self._call.join(0.1)
        if self._call.is_alive():
            raise TimeoutError(f"no answer within {self.collector.timeout:g}s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def poll_once(self) -> None:
        """Poll the source once, update the status and hand both to the sink."""
        started = time.monotonic()
        observation: Observation | None = None
        try:
            observation = self._call_with_timeout()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            error = None
        if observation is None and self._stop.is_set():
            return  # cut short by stop(): not the source's fault, so not stored as its state
        now = time.time()
        with self._lock:
            status = self._status
            status["updated_at"] = now
            status["last_poll_ms"] = round((time.monotonic() - started) * 1000, 1)
            if observation is None:
                self.failures += 1
                status.update(state="down", last_error=error, last_error_at=now)
                logger.warning("%s down (%d in a row): %s", self.collector.key, self.failures, error)
            else:
                self.failures = 0
                status.update(state="degraded" if observation.degraded else "up", last_success_at=now,
                              headline=observation.headline)
                if observation.degraded:
                    status.update(last_error=observation.degraded, last_error_at=now)
            snapshot = dict(status)
        try:
            self.sink.publish(self.collector, snapshot, observation)
        except Exception:
            logger.exception("publishing %s failed", self.collector.key)

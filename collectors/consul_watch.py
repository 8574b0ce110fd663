"""Consul blocking queries: follow one endpoint on a thread of its own, falling back to polling.

https://developer.hashicorp.com/consul/api-docs/features/blocking: pass the X-Consul-Index of
the last answer as ?index= with a ?wait=; the agent answers when the index moves or the wait
ends (plus up to wait/16 of jitter). An index that goes backwards (a restarted agent, a new
leader) means start again from scratch.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from collectors.consul_client import Agent, Answer, get
from collectors.runner import backoff_delay

logger = logging.getLogger(__name__)


class BlockingWatch:
    """Re-ask `path` with ?index=&wait= whenever it answers; hand every changed answer to on_change.

    An agent that answers a blocking query at once with an unchanged index does not block (a
    proxy may do that): then the watch asks every `interval` seconds instead, never faster.
    """

    MIN_GAP = 0.05  # between two blocking queries that both changed: Consul's docs ask for a rate limit

    def __init__(self, agent: Agent, path: str, on_change: Callable[[Answer], None], interval: float,
                 wait: float, timeout: float, name: str = ""):
        # The HTTP timeout covers the wait, Consul's jitter (wait/16) and the source's own timeout.
        self.client = agent.client(wait * 17 / 16 + timeout)
        self.path, self.on_change = path, on_change
        self.interval, self.wait = interval, wait
        self.name = name or path
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self.first = threading.Event()  # set after the first answer or failure
        self.index: int | None = None
        self.blocking: bool | None = None  # None until a blocking query has been tried
        self.requests = 0
        self.last_ok_at: float | None = None
        self.error: Exception | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"consul-watch-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.client.http.session.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"index": self.index, "blocking": self.blocking, "last_ok_at": self.last_ok_at,
                    "error": self.error, "requests": self.requests}

    def _ask(self) -> Answer:
        params = [("index", self.index), ("wait", f"{self.wait:g}s")] if self.index else []
        with self._lock:
            self.requests += 1
        return get(self.client, self.path, params)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = self._ask()
                if self._stop.is_set():
                    return
                changed = self.index is None or answer.index != self.index
                if changed:
                    self.on_change(answer)
            except Exception as exc:  # noqa: BLE001 - a dead agent must not end the thread
                failures += 1
                with self._lock:
                    self.error, self.index = exc, None
                self.first.set()
                logger.info("consul watch %s failed (%d in a row): %s", self.name, failures, exc)
                self._stop.wait(backoff_delay(self.interval, failures, 60.0, self._rng))
                continue
            failures = 0
            asked_with, elapsed = self.index, time.monotonic() - started
            with self._lock:
                self.error, self.last_ok_at = None, time.time()
                # Backwards or missing index: start over (Consul's blocking-query rules).
                self.index = answer.index if answer.index and (not asked_with or answer.index >= asked_with) else None
                if asked_with and not changed:
                    self.blocking = elapsed >= min(1.0, self.wait / 2)
            self.first.set()
            self._stop.wait(self.interval if self.blocking is False else self.MIN_GAP)

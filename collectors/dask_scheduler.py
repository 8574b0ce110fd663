"""Dask: workers, threads, memory and task states as the scheduler reports them."""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from distributed import Client
from distributed.comm import parse_address, parse_host_port

from collectors.base import Collector, Observation

logger = logging.getLogger(__name__)

TASK_STATES = ("processing", "waiting", "memory", "erred")


async def _ask(client: Client) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Both scheduler RPCs at once, under one deadline."""
    # Not client.scheduler_info(): on a lost scheduler it returns the stale cached answer.
    return tuple(await asyncio.gather(client.scheduler.identity(n_workers=-1),
                                      client.scheduler.get_task_prefix_states()))


class DaskCollector(Collector):
    """Poll a Dask scheduler through one long-lived Client, rebuilt after a failure."""

    kind = "dask"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, address: str = "", **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, address=address, **options)
        self.address = address
        # Answer (or fail) a little before the runner abandons the poll, so the error is ours.
        self.call_timeout = max(0.5, timeout * 0.8)
        self._client: Client | None = None

    def _connect(self) -> Client:
        if self._client is None:
            self._probe()
            self._client = Client(self.address, timeout=self.call_timeout, set_as_default=False)
        return self._client

    def _probe(self) -> None:
        """Fail at once on a refused TCP port; the Client would retry until its timeout."""
        scheme, location = parse_address(self.address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
        try:
            socket.create_connection((host, port), timeout=self.call_timeout).close()
        except OSError as exc:
            raise ConnectionError(f"scheduler {self.address} unreachable: {exc}") from exc

    def collect(self) -> Observation:
        if self._client is not None and self._client.status != "running":
            # It noticed the scheduler go and is retrying in the background; a fresh client
            # next poll fails (or succeeds) at once instead of after its reconnect timeout.
            status = self._client.status
            self._drop_client()
            raise ConnectionError(f"scheduler {self.address} lost (client {status})")
        try:
            client = self._connect()
            identity, prefixes = client.sync(_ask, client, callback_timeout=self.call_timeout)
        except Exception as exc:
            self._drop_client()
            if isinstance(exc, ConnectionError):
                raise
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"scheduler {self.address} did not answer within {self.call_timeout:g}s") from exc
            # CommClosedError (an OSError), or AttributeError once the client gave up reconnecting
            # and dropped its scheduler handle.
            if isinstance(exc, (OSError, AttributeError)):
                raise ConnectionError(f"scheduler {self.address} lost: {type(exc).__name__}: {exc}") from exc
            raise
        workers = identity.get("workers", {}).values()
        tasks = {state: sum(counts.get(state, 0) for counts in prefixes.values()) for state in TASK_STATES}
        memory = sum(w.get("metrics", {}).get("memory", 0) for w in workers)
        headline = {
            "workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers),
            "memory": memory,
            "memory_limit": sum(w.get("memory_limit") or 0 for w in workers),
            "processing": tasks["processing"],
            "waiting": tasks["waiting"],
            "in_memory": tasks["memory"],
            "erred": tasks["erred"],
        }
        metrics = [("workers", "", float(len(workers))), ("memory_bytes", "", float(memory)),
                   ("tasks_processing", "", float(tasks["processing"])), ("tasks_erred", "", float(tasks["erred"]))]
        return Observation(headline=headline, metrics=metrics,
                           degraded=None if workers else "scheduler has no workers")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close(timeout=min(self.timeout, 2.0))
            except Exception:  # noqa: BLE001 - the client of a dead scheduler may not close cleanly
                logger.debug("closing dask client for %s failed", self.address, exc_info=True)

    def close(self) -> None:
        self._drop_client()

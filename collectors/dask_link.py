"""One connection to a Dask scheduler with a deadline on all of it: its start, every call, its close.

Not distributed's blocking `Client(address)`: after the TCP connect it reads the scheduler's
handshake with no deadline, so a port that accepts and never answers holds it (and whoever waits
for it) forever. Here the client is asynchronous, on an event-loop thread of the link's own, and
whatever runs on that loop is cancelled at its deadline. The collector and the controls share it.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from distributed import Client
from distributed.comm import parse_address, parse_host_port
from distributed.utils import LoopRunner, sync

logger = logging.getLogger(__name__)


async def _open_client(address: str, timeout: float) -> Client:
    """A client connected within `timeout`; cancelling its start aborts the half-open comm."""
    client = Client(address, asynchronous=True, timeout=timeout, set_as_default=False)
    try:
        await asyncio.wait_for(client, timeout)
    except BaseException:
        await client.close(timeout=timeout)
        raise
    return client


class DaskLink:
    """A lazily connected client of one scheduler; `run` calls its coroutines with a deadline.

    `timeout` bounds the connect (and the close); `call_timeout` each call, by default the same.
    """

    def __init__(self, address: str, timeout: float, call_timeout: float | None = None):
        self.address, self.timeout = address, timeout
        self.call_timeout = call_timeout or timeout
        self._runner: LoopRunner | None = None
        self._client: Client | None = None
        self._starting = threading.Lock()  # guards the loop's start
        self._connecting = threading.Lock()  # one connect at a time: held for at most about `timeout`

    def run(self, func, *args: Any, deadline: float | None = None, **kwargs: Any) -> Any:
        """Await `func(*args, **kwargs)` on the link's loop; past `deadline` seconds (default the link's
        call timeout), a TimeoutError naming the scheduler."""
        if self._runner is None:
            with self._starting:
                if self._runner is None:
                    runner = LoopRunner(asynchronous=False)
                    runner.start()
                    self._runner = runner
        deadline = deadline or self.call_timeout
        try:
            return sync(self._runner.loop, func, *args, callback_timeout=deadline, **kwargs)
        except TimeoutError as exc:
            raise TimeoutError(f"scheduler {self.address} did not answer within {deadline:g}s") from exc

    @property
    def client(self) -> Client:
        """The connected client, connecting first (probe, then handshake, within the timeout)."""
        with self._connecting:
            if self._client is None:
                self._probe()
                self._client = self.run(_open_client, self.address, self.timeout, deadline=self.timeout)
            return self._client

    def lost(self) -> str | None:
        """Why the client can no longer be used (it noticed the scheduler go), else None."""
        client = self._client
        return None if client is None or client.status == "running" else f"client {client.status}"

    def _probe(self) -> None:
        """Fail at once on a refused TCP port; the client would retry until its timeout."""
        scheme, location = parse_address(self.address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
        try:
            socket.create_connection((host, port), timeout=self.timeout).close()
        except OSError as exc:
            raise ConnectionError(f"scheduler {self.address} unreachable: {exc}") from exc

    def drop(self) -> None:
        """Close the client (the next call connects afresh); the loop stays for the next one."""
        # Not under _connecting: a connect under way holds it for up to `timeout`, and a stop must not wait that out.
        client, self._client = self._client, None
        if client is not None:
            try:
                self.run(client.close, min(self.timeout, 2.0), deadline=self.timeout)
            except Exception:  # noqa: BLE001 - the client of a dead scheduler may not close cleanly
                logger.debug("closing dask client for %s failed", self.address, exc_info=True)

    def close(self) -> None:
        self.drop()
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

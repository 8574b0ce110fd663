"""The single writer: one thread owns every write and commits them in batches."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

# A handler writes every payload of its kind queued in one batch, inside the batch's transaction.
Handler = Callable[[Connection, list[Any]], None]
# A listener hears, after each commit, what was committed: {kind: [payload, ...]}.
Listener = Callable[[dict[str, list[Any]]], None]

_BARRIER = "__barrier__"


class WriteError(Exception):
    """A write that was waited for failed; the message says why."""


class _Item:
    """One queue entry: payloads of one kind submitted together (one queue hop for many rows)."""

    __slots__ = ("kind", "payloads", "done", "error")

    def __init__(self, kind: str, payloads: list[Any], done: threading.Event | None):
        self.kind, self.payloads, self.done, self.error = kind, payloads, done, None


class Writer:
    """Serialise all writes through one thread; one transaction per batch of rows or of time."""

    def __init__(self, engine: Engine, handlers: dict[str, Handler], max_batch: int = 1000, max_delay: float = 0.1):
        self.engine = engine
        self.handlers = dict(handlers)
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.committed_batches = 0

    # -- producers -----------------------------------------------------------------------
    def submit(self, kind: str, payload: Any) -> None:
        """Queue one write; it is committed with the next batch."""
        if kind not in self.handlers:
            raise KeyError(f"no store handler for {kind!r}")
        self._queue.put(_Item(kind, [payload], None))

    def submit_many(self, kind: str, payloads: Iterable[Any]) -> None:
        if kind not in self.handlers:
            raise KeyError(f"no store handler for {kind!r}")
        payloads = list(payloads)
        if payloads:
            self._queue.put(_Item(kind, payloads, None))

    def write(self, kind: str, payload: Any, timeout: float = 10.0) -> None:
        """Queue one write and wait until it is committed; raise WriteError if it failed."""
        if kind not in self.handlers:
            raise KeyError(f"no store handler for {kind!r}")
        item = _Item(kind, [payload], threading.Event())
        self._queue.put(item)
        self._wait(item, timeout)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued before this call is committed."""
        item = _Item(_BARRIER, [], threading.Event())
        self._queue.put(item)
        self._wait(item, timeout)

    def _wait(self, item: _Item, timeout: float) -> None:
        if not self.running:
            raise WriteError("the store writer is not running")
        if not item.done.wait(timeout):
            raise WriteError(f"write not committed within {timeout}s")
        if item.error:
            raise WriteError(item.error)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued, then stop the thread."""
        if not self.running:
            return
        self._stop.set()
        self._queue.put(_Item(_BARRIER, [], None))  # wake the thread
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------
    def _next_batch(self) -> list[_Item]:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch, rows = [first], len(first.payloads)
        # Take what is already queued, for at most max_delay, and commit as soon as the queue runs
        # dry: an idle store commits a lone write at once, a busy one batches what piled up meanwhile.
        deadline = time.monotonic() + self.max_delay
        while rows < self.max_batch and time.monotonic() < deadline:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
            rows += len(item.payloads)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._commit(batch)
            if self._stop.is_set() and self._queue.empty():
                return

    def _commit(self, batch: list[_Item]) -> None:
        grouped: dict[str, list[_Item]] = {}
        for item in batch:
            if item.kind != _BARRIER:
                grouped.setdefault(item.kind, []).append(item)
        try:
            with self.engine.begin() as conn:
                for kind, items in grouped.items():
                    self.handlers[kind](conn, [p for i in items for p in i.payloads])
        except Exception:
            # One bad payload must not cost the batch: retry each alone and drop only the bad ones.
            logger.exception("store batch of %d failed; retrying its writes one by one", len(batch))
            grouped = self._commit_one_by_one(grouped)
        self.committed_batches += 1
        for item in batch:
            if item.done is not None:
                item.done.set()
        committed = {kind: [p for i in items for p in i.payloads] for kind, items in grouped.items() if items}
        if committed:
            for listener in self._listeners:
                try:
                    listener(committed)
                except Exception:
                    logger.exception("store listener %r failed", listener)

    def _commit_one_by_one(self, grouped: dict[str, list[_Item]]) -> dict[str, list[_Item]]:
        kept: dict[str, list[_Item]] = {}
        for kind, items in grouped.items():
            for item in items:
                good = []
                for payload in item.payloads:
                    try:
                        with self.engine.begin() as conn:
                            self.handlers[kind](conn, [payload])
                        good.append(payload)
                    except Exception as exc:
                        logger.warning("dropped a %s write: %s", kind, exc)
                        item.error = f"{kind} write failed: {exc}"
                if good:
                    kept.setdefault(kind, []).append(_Item(kind, good, None))
        return kept

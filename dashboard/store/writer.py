"""The single writer: one thread owns every write and commits them in batches."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Connection, Engine

from dashboard.store.checkpoint import Checkpointer
from dashboard.store.health import GapBook, StoreHealth, store_unavailable

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

    def __init__(self, engine: Engine, handlers: dict[str, Handler], max_batch: int = 1000, max_delay: float = 0.1,
                 max_held: int = 200_000, hold_wait: float = 1.0):
        self.engine = engine
        self.handlers = dict(handlers)
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.committed_batches = 0
        # While the store cannot commit, at most max_held rows wait; a producer then waits up to
        # hold_wait for room (back-pressure) before its rows are given up and recorded as a gap.
        self.max_held, self.hold_wait = max_held, hold_wait
        self._held = 0
        self._room = threading.Condition()
        self._health = StoreHealth()
        self._gaps = GapBook()
        # SQLite's log is copied back beside this thread, not in its commits (see store.checkpoint).
        self._checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None

    # -- producers -----------------------------------------------------------------------
    def submit(self, kind: str, payload: Any) -> None:
        """Queue one write; it is committed with the next batch."""
        self._enqueue(_Item(kind, [payload], None))

    def submit_many(self, kind: str, payloads: Iterable[Any]) -> None:
        payloads = list(payloads)
        if payloads:
            self._enqueue(_Item(kind, payloads, None))

    def write(self, kind: str, payload: Any, timeout: float = 10.0) -> None:
        """Queue one write and wait until it is committed; raise WriteError if it failed."""
        item = _Item(kind, [payload], threading.Event())
        if not self._enqueue(item):
            raise WriteError(f"{kind} write given up: the store cannot write ({self._health.error})")
        self._wait(item, timeout)

    def _enqueue(self, item: _Item) -> bool:
        """Queue an item if there is room (waiting up to hold_wait for it); else give it up as a gap."""
        if item.kind not in self.handlers:
            raise KeyError(f"no store handler for {item.kind!r}")
        rows = len(item.payloads)
        with self._room:
            # A slow store makes producers wait; one that cannot write (or no writer) makes them give up.
            while not self._room.wait_for(lambda: self._held + rows <= self.max_held or self._held == 0, self.hold_wait):
                if self._health.error or not self.running:
                    self._gaps.give_up(item.kind, item.payloads, self._health.error or "the store writer is not running")
                    return False
            self._held += rows
        self._queue.put(item)
        return True

    def _release(self, batch: list[_Item]) -> None:
        with self._room:
            self._held -= sum(len(i.payloads) for i in batch if i.kind != _BARRIER)
            self._room.notify_all()

    def health(self) -> dict[str, Any]:
        """Whether the store commits, why not since when, rows held and writes given up."""
        with self._room:
            held = self._held
        return {**self._health.report(), "running": self.running, "held": held, "given_up": self._gaps.given_up}

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
        if self._checkpointer is not None:
            self._checkpointer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued, then stop the thread."""
        if not self.running:
            return
        self._stop.set()
        self._queue.put(_Item(_BARRIER, [], None))  # wake the thread
        self._thread.join(timeout)
        if self._checkpointer is not None:
            self._checkpointer.stop()

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
            self._until_committed(lambda: self._transaction({k: [p for i in items for p in i.payloads]
                                                             for k, items in grouped.items()}))
        except _Stopping as stopping:
            self._give_up(grouped, str(stopping))
            grouped = {}
        except Exception:
            # One bad payload must not cost the batch: retry each alone and drop only the bad ones.
            logger.exception("store batch of %d failed; retrying its writes one by one", len(batch))
            grouped = self._commit_one_by_one(grouped)
        self._release(batch)
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

    def _transaction(self, writes: dict[str, list[Any]]) -> None:
        """Commit the writes in one transaction, with any gaps recorded since the last commit."""
        gaps = self._gaps.take() if "store_gap" in self.handlers else []
        try:
            with self.engine.begin() as conn:
                for kind, payloads in writes.items():
                    self.handlers[kind](conn, payloads)
                if gaps:
                    self.handlers["store_gap"](conn, gaps)
        except BaseException:
            self._gaps.put_back(gaps)
            raise

    def _until_committed(self, commit: Callable[[], None]) -> None:
        """Run commit(); while the store cannot write (disk full, database gone), keep the writes,
        say so, and retry with backoff. Errors of the writes themselves are raised."""
        delay = 0.2
        while True:
            try:
                commit()
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                if self._health.down(exc):
                    logger.error("store cannot write, holding writes and retrying: %s", self._health.error)
                if self._stop.wait(delay):
                    raise _Stopping(f"stopped while the store could not write: {self._health.error}") from None
                delay = min(5.0, delay * 2)
                continue
            if self._health.up():
                logger.warning("store writes again; held writes committed")
            return

    def _give_up(self, grouped: dict[str, list[_Item]], why: str) -> None:
        for kind, items in grouped.items():
            for item in items:
                self._gaps.give_up(kind, item.payloads, why)
                item.error = f"{kind} write given up: {why}"
        logger.error("gave up %d writes: %s", sum(len(i.payloads) for items in grouped.values() for i in items), why)

    def _commit_one_by_one(self, grouped: dict[str, list[_Item]]) -> dict[str, list[_Item]]:
        kept: dict[str, list[_Item]] = {}
        for kind, items in grouped.items():
            for item in items:
                good = []
                for payload in item.payloads:
                    try:
                        self._until_committed(lambda: self._transaction({kind: [payload]}))
                        good.append(payload)
                    except _Stopping as stopping:
                        self._gaps.give_up(kind, [payload], str(stopping))
                        item.error = f"{kind} write given up: {stopping}"
                    except Exception as exc:
                        logger.warning("dropped a %s write: %s", kind, exc)
                        item.error = f"{kind} write failed: {exc}"
                if good:
                    kept.setdefault(kind, []).append(_Item(kind, good, None))
        return kept


class _Stopping(Exception):
    """The writer was stopped while the store could not write: what it holds is given up."""

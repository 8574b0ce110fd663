"""SQLite's write-ahead log copied into the database file by a thread of its own, not by the writer.

By default SQLite checkpoints in the connection that commits, once the log passes 1,000 pages. With
millions of tasks stored, each commit dirties pages all over the task table's primary key (uuids are
random), and writing them back with an fsync took half the store writer's time: 45k events/s at
10 M stored tasks against 86-94k with no checkpoint at all (bench.celery_ingest's stream). A
Checkpointer copies the log every `interval` beside the writer, on another core: about 59k events/s.
The writer still checkpoints itself once the log passes WRITER_CHECKPOINT_PAGES (db.py sets it on
every connection), so a checkpointer that falls behind, or a process without one, cannot let the log
grow without bound; a bound of 10,000 pages gave 55k, a checkpoint every 0.25 s 52k.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

WRITER_CHECKPOINT_PAGES = 20_000  # about 80 MiB of log


class Checkpointer:
    """A PASSIVE checkpoint every `interval` seconds: it never waits for, nor blocks, readers or the writer."""

    def __init__(self, engine: Engine, interval: float = 1.0):
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="store-checkpointer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # a full disk, say: the writer's own commits report the store down
                if not failing:
                    logger.warning("WAL checkpoint failed (tried again every %gs): %s", self.interval, exc)
                failing = True
                continue
            if failing:
                logger.info("WAL checkpoints succeed again")
                failing = False

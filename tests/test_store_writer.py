"""The single writer batches, never surfaces lock errors, and loses nothing good for one bad write."""
from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.store import WriteError
from dashboard.store.models import Sample
from dashboard.store.timeseries import Point
from tests.fixtures_services import wait_for


def count_samples(engine, source=None) -> int:
    query = select(func.count()).select_from(Sample)
    if source:
        query = query.where(Sample.source == source)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_four_writers_and_four_readers_for_ten_seconds(store):
    engine, writer = store
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0] * 4
    reads = [0] * 4

    def write(i: int) -> None:
        try:
            n = 0
            while not stop.is_set():
                writer.submit_many("sample", [Point(f"load/{i}", "m", float(n + k), time.time(), "") for k in range(50)])
                n += 50
                time.sleep(0.002)
            written[i] = n
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    def read(i: int) -> None:
        try:
            while not stop.is_set():
                count_samples(engine, f"load/{i}")
                reads[i] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(10)
    stop.set()
    for t in threads:
        t.join(30)
    writer.flush(timeout=60)

    assert errors == []
    assert all(r > 10 for r in reads), reads
    for i in range(4):
        assert written[i] > 1000
        assert count_samples(engine, f"load/{i}") == written[i]
    # Batching: far fewer transactions than rows.
    assert writer.committed_batches < sum(written) / 20


def test_a_bad_write_is_dropped_alone_and_reported_to_its_waiter(store):
    engine, writer = store
    writer.submit_many("sample", [Point("ok/a", "m", 1.0, time.time()) for _ in range(10)])
    with pytest.raises(WriteError, match="sample write failed"):
        writer.write("sample", Point("bad", "m", None, time.time()))  # value is NOT NULL
    writer.submit_many("sample", [Point("ok/b", "m", 2.0, time.time()) for _ in range(10)])
    writer.flush()
    assert count_samples(engine, "ok/a") == 10
    assert count_samples(engine, "ok/b") == 10
    assert count_samples(engine, "bad") == 0


def test_unknown_write_kind_is_refused_at_submit(store):
    _, writer = store
    with pytest.raises(KeyError, match="no store handler"):
        writer.submit("nonsense", {})


def test_listeners_hear_each_commit_after_it_is_visible(store):
    engine, writer = store
    seen = []
    writer.add_listener(lambda committed: seen.append((committed, count_samples(engine, "lst"))))
    writer.write("sample", Point("lst", "m", 3.0, time.time()))
    writer.flush()
    (committed, visible), = [s for s in seen if "sample" in s[0]]
    assert [p.value for p in committed["sample"]] == [3.0]
    assert visible == 1


def test_a_bad_row_in_a_bulk_submit_costs_only_itself(store):
    engine, writer = store
    now = time.time()
    writer.submit_many("sample", [Point("bulk", "m", 1.0, now), Point("bulk", "m", None, now), Point("bulk", "m", 3.0, now)])
    writer.flush()
    assert count_samples(engine, "bulk") == 2


def test_an_idle_writer_commits_a_lone_write_without_waiting_out_the_batching_delay(migrated_url):
    from dashboard.store import HANDLERS, Writer, make_engine

    engine = make_engine(migrated_url)
    writer = Writer(engine, HANDLERS, max_delay=5.0)  # a delay no one would miss
    heard = threading.Event()
    writer.add_listener(lambda committed: heard.set())
    writer.start()
    try:
        started = time.monotonic()
        writer.submit("sample", Point("idle/1", "m", 1.0, time.time(), ""))
        assert heard.wait(4.0), "the lone write waited for the batching delay"
        assert time.monotonic() - started < 4.0
        assert count_samples(engine, "idle/1") == 1
    finally:
        writer.stop()
        engine.dispose()


def test_what_the_writer_commits_reaches_the_sqlite_file_itself_within_seconds(sqlite_url, tmp_path):
    """The log is copied back beside the writer (store.checkpoint), not once it passes thousands of pages:
    the database file alone, without its -wal, holds a small write a few seconds later."""
    from dashboard.store import HANDLERS, Writer, make_engine
    from dashboard.store.migrate import upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    try:
        writer.submit_many("sample", [Point("ckpt", "m", float(k), time.time(), "") for k in range(20)])
        writer.flush()
        assert count_samples(engine, "ckpt") == 20

        def in_the_file_alone() -> int:
            alone = tmp_path / "alone.db"  # a copy of the file without its log: what a checkpoint wrote
            shutil.copyfile(path, alone)
            with closing(sqlite3.connect(alone)) as conn:
                return conn.execute("SELECT count(*) FROM samples WHERE source = 'ckpt'").fetchone()[0]

        wait_for(in_the_file_alone, lambda n: n == 20, timeout=10)  # before: 0 for good, the write stayed in the log
    finally:
        writer.stop()
        engine.dispose()

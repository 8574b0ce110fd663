"""A full disk loses nothing silently: the writer holds, says so on /readyz and every page, and
commits everything once there is room; what it had to give up is counted and recorded as a gap."""
from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest
from sqlalchemy import func, select

from dashboard import create_app
from dashboard.config import Settings
from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.celery_models import CeleryTask
from dashboard.store.gaps import open_gaps
from dashboard.store.migrate import upgrade
from tests.conftest import login
from tests.fixtures_services import wait_for

# SQLite says either, depending on which file (database or WAL) found the disk full.
FULL_DISK_ERRORS = ("database or disk is full", "disk I/O error")
PAD = "x" * 2000  # each task row needs room: 3,000 of them cannot fit in what a full disk has left


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs of its own (root only), so that filling it touches nothing else."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI here runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk) -> object:
    """Take every free byte of the disk with a filler file; return its path."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def events(n: int, source: str = "main") -> list[tuple[str, dict]]:
    now = time.time()
    return [(source, {"type": "task-succeeded", "uuid": f"t-{i:05d}", "timestamp": now, "runtime": 0.1,
                      "result": PAD, "hostname": "w1"}) for i in range(n)]


def stored_tasks(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CeleryTask)).scalar_one()


def test_a_full_disk_holds_writes_says_so_and_commits_them_all_when_room_returns(small_disk):
    app = create_app(Settings(database_url=f"sqlite:///{small_disk / 'jobdash.db'}", secret_key="t"))
    runtime = app.extensions["jobdash"]
    try:
        viewer = login(app, "viewer")
        filler = fill(small_disk)
        runtime.emit("celery_event", events(3000))
        ready = wait_for(lambda: viewer.get("/readyz"), lambda r: r.status_code == 503, timeout=30)
        error = ready.json["writer"]["error"]
        assert error in FULL_DISK_ERRORS and ready.json["writer"]["held"] > 0
        page = viewer.get("/").text
        assert "The store cannot write" in page and error in page

        filler.unlink()
        wait_for(lambda: stored_tasks(runtime.engine), lambda n: n == 3000, timeout=60)
        assert wait_for(lambda: app.test_client().get("/readyz").status_code, lambda s: s == 200, timeout=30) == 200
        assert "The store cannot write" not in viewer.get("/").text
    finally:
        runtime.stop()


def test_what_the_writer_gives_up_past_its_bound_is_counted_and_recorded_as_a_gap(small_disk):
    url = f"sqlite:///{small_disk / 'jobdash.db'}"
    upgrade(url)
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS, max_held=500, hold_wait=0.05)
    writer.start()
    try:
        filler = fill(small_disk)
        for chunk in range(10):
            writer.submit_many("celery_event", events(3000)[chunk * 300:(chunk + 1) * 300])
        health = wait_for(writer.health, lambda h: h["given_up"] > 0, timeout=30)
        assert not health["ok"] and health["held"] <= 500 + 300
        filler.unlink()
        writer.flush(timeout=60)
        given_up = writer.health()["given_up"]
        assert stored_tasks(engine) == 3000 - given_up
        gaps = open_gaps(engine, "celery", "main")
        assert len(gaps) == 1 and gaps[0]["lost"] == given_up
        assert gaps[0]["cause"] in {f"given up: {e}" for e in FULL_DISK_ERRORS}
    finally:
        writer.stop()
        engine.dispose()

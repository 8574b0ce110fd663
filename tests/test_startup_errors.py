"""Settings that cannot work stop jobdash at start with exit 2 and one line naming the setting;
a new database is announced; a damaged one is refused; `jobdash db check` says what the database holds."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from dashboard.demo.processes import free_port


def jobdash(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dashboard.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=90)


def write_config(tmp_path, text: str) -> object:
    config = tmp_path / "jobdash.toml"
    if "database_url" not in text:
        text = f"database_url = 'sqlite:///{tmp_path / 'j.db'}'\n" + text
    config.write_text(text)
    return config


CLOSED_PORT = free_port()
CASES = {
    "no such folder": ("database_url = 'sqlite:////nonexistent/dir/x.db'", "database_url: folder /nonexistent/dir does not exist"),
    "no file": ("database_url = 'sqlite:'", "database_url: 'sqlite:' names no file"),
    "postgresql unreachable": (f"database_url = 'postgresql://postgres@127.0.0.1:{CLOSED_PORT}/x'", "database_url: PostgreSQL at 127.0.0.1"),
    "postgresql database missing": ("database_url = 'postgresql://postgres@127.0.0.1:5432/jobdash_no_such_db'",
                                    "database_url: database 'jobdash_no_such_db' does not exist"),
    "consul without a host": ("[[consul]]\nname = 'dc1'\naddress = 'http://'", "consul.dc1.address: not a Consul address"),
    "unknown message queue": ("message_queue = 'nope://x'", "message_queue: 'nope://x' is not a URL of a supported queue"),
    "unresolvable host": ("host = 'no-such-host.invalid'", "host: cannot resolve 'no-such-host.invalid'"),
    "no such transport": ("[[celery]]\nname = 'c'\nbroker = 'bogus://nowhere'", "celery.c.broker: no such transport"),
    "broker not a url": ("[[celery]]\nname = 'c'\nbroker = 'not a url'", "celery.c.broker: 'not a url' is not a broker URL"),
    "dask address": ("[[dask]]\nname = 'd'\naddress = '::::'", "dask.d.address: invalid address"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_setting_that_cannot_work_stops_serve_with_one_line_and_exit_2(tmp_path, case):
    text, needle = CASES[case]
    done = jobdash(write_config(tmp_path, text), "serve", "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr


def test_a_new_database_is_announced_with_where_it_is(tmp_path):
    done = jobdash(write_config(tmp_path, ""), "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"created a new, empty database at {tmp_path / 'j.db'}" in done.stderr
    assert "created a new" not in jobdash(write_config(tmp_path, ""), "db", "upgrade").stderr


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path):
    (tmp_path / "j.db").write_bytes(b"this is no database\n" * 100)
    done = jobdash(write_config(tmp_path, ""), "serve", "--port", str(free_port()))
    assert done.returncode == 2
    line, = done.stderr.strip().splitlines()
    assert "database_url" in line and "is not an SQLite database (bad header)" in line


def test_a_read_only_database_is_refused_in_one_line(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a read-only mount needs root (CI here runs as root)")
    disk = tmp_path / "ro"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        config = write_config(tmp_path, f"database_url = 'sqlite:///{disk / 'j.db'}'")
        assert jobdash(config, "db", "upgrade").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = jobdash(config, "serve", "--port", str(free_port()))
        assert done.returncode == 2
        line, = done.stderr.strip().splitlines()
        assert f"database_url: folder {disk} is read-only" in line
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_db_check_reports_rows_and_size_and_finds_damaged_pages(tmp_path):
    config = write_config(tmp_path, "")
    assert jobdash(config, "db", "upgrade").returncode == 0
    db = tmp_path / "j.db"
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO samples (source, metric, label, ts, value) VALUES ('s', 'm', '', ?, 1.0)",
                     [(float(i),) for i in range(20000)])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    done = jobdash(config, "db", "check")
    assert done.returncode == 0, done.stderr
    assert "samples\t20000 rows\toldest 0" in done.stdout and "integrity\tok" in done.stdout and "size\t" in done.stdout
    # Scribble over pages in the middle of the file, as a bad disk would.
    with open(db, "r+b") as fh:
        fh.seek(os.path.getsize(db) // 2)
        fh.write(b"\xff" * 8192)
    done = jobdash(config, "db", "check")
    assert done.returncode == 2
    assert "jobdash: database damaged:" in done.stderr.strip().splitlines()[-1]


def test_corrupt_pages_found_while_serving_turn_readyz_503_with_the_reason(tmp_path):
    from sqlalchemy import text

    from dashboard import create_app
    from dashboard.config import Settings, SourceConfig
    from tests.conftest import login

    db = tmp_path / "j.db"
    source = SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/0"})
    app = create_app(Settings(database_url=f"sqlite:///{db}", secret_key="t", run_collectors=False, sources=[source]))
    runtime = app.extensions["jobdash"]
    try:
        viewer = login(app, "viewer")
        runtime.emit("celery_event", [("main", {"type": "task-succeeded", "uuid": f"t{i}", "timestamp": 1.0 + i,
                                                "result": "r" * 200}) for i in range(20000)])
        runtime.writer.flush(timeout=60)
        with runtime.engine.begin() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        runtime.engine.dispose()
        with open(db, "r+b") as fh:
            fh.seek(os.path.getsize(db) // 2)
            fh.write(b"\xff" * 65536)
        response = viewer.get("/api/celery/main/tasks?q=nothing-matches")
        assert response.status_code == 503 and "The store cannot be read" in response.json["error"]
        ready = viewer.get("/readyz")
        assert ready.status_code == 503 and "malformed" in ready.json["store"]["error"]
    finally:
        runtime.stop()

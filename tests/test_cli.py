"""The jobdash command: db upgrade, and serve and collect shutting down cleanly on SIGTERM."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from sqlalchemy import inspect

from dashboard.auth import tokens
from dashboard.auth.users import add_user, find_user
from dashboard.demo.processes import free_port
from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.migrate import upgrade
from dashboard.store.models import Base


def jobdash(*args: str, config=None) -> list[str]:
    return [sys.executable, "-m", "dashboard.cli", *(["--config", str(config)] if config else []), *args]


def api_token(database_url: str) -> str:
    """A viewer's API token in a new database (readyz tells the collectors' status only to a login)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    try:
        add_user(writer, engine, "ops", "viewer", "long enough password")
        return tokens.create(writer, find_user(engine, "ops"), "test")
    finally:
        writer.stop()
        engine.dispose()


def dask_config(tmp_path, port: int, extra: str = ""):
    """A config with one Dask source, polled every 0.2 s, at `port` of this host."""
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = 'sqlite:///{tmp_path / 'j.db'}'\n[[dask]]\nname = \"gone\"\n"
                      f"address = \"tcp://127.0.0.1:{port}\"\ninterval = 0.2\n{extra}")
    return config


def test_db_upgrade_creates_the_schema(tmp_path):
    db = tmp_path / "j.db"
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = 'sqlite:///{db}'\n")
    proc = subprocess.run(jobdash("db", "upgrade", config=config), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    engine = make_engine(f"sqlite:///{db}")
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_serve_stops_within_five_seconds_of_sigterm_even_with_a_hanging_source(tmp_path):
    port = free_port()
    # A listener that never answers: connections complete in its backlog, then hang.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    dead_port = silent.getsockname()[1]
    config = dask_config(tmp_path, dead_port, "timeout = 30\n")
    token = api_token(f"sqlite:///{tmp_path / 'j.db'}")
    proc = subprocess.Popen(jobdash("serve", "--port", str(port), config=config),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        ready = urllib.request.Request(f"http://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {token}"})
        while True:
            try:
                with urllib.request.urlopen(ready, timeout=2) as resp:
                    report = json.load(resp)
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else "not ready"
                time.sleep(0.3)
        assert "dask/gone" in report["collectors"]
        time.sleep(1.5)  # the collector is now mid-poll on the silent source
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert time.monotonic() - started < 5
        assert proc.returncode == 0
        output = proc.stdout.read()
        assert output.rstrip().splitlines()[-1] == "jobdash: stopped", output
        assert "Traceback" not in output and "production deployment" not in output, output
    finally:
        silent.close()
        if proc.poll() is None:
            proc.kill()



def test_collect_stops_within_five_seconds_of_sigterm(tmp_path):
    config = dask_config(tmp_path, free_port())
    proc = subprocess.Popen(jobdash("collect", config=config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:  # log lines, then the banner once the collectors run
            lines.append(line)
            if "collecting from 1 source(s)" in line:
                break
        assert proc.poll() is None, "".join(lines)
        time.sleep(1.0)  # a few failed polls of the absent scheduler
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert time.monotonic() - started < 5
        assert proc.returncode == 0
        assert "Traceback" not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()

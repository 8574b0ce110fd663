"""200 live viewers connect over WebSocket, stay connected and keep receiving, under both servers."""
from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path

import pytest

from bench.live_clients import connect_many, login
from tests.browser import REPO, serve, stop_dashboard, toml_str
from tests.conftest import PASSWORD
from tests.fixtures_services import wait_for

VIEWERS = 200


def readme_gunicorn_args() -> list[str]:
    """The README's production command, minus the bind address (a free port is used instead)."""
    command = re.search(r"gunicorn (-w \d+ --threads \d+) -b \S+ wsgi:app", (REPO / "README.md").read_text())
    assert command, "the README's production command is not where this test looks for it"
    return command.group(1).split()


def source_toml(redis_url: str) -> str:
    # A Celery source polled twice a second: each poll's status reaches the overview room as a delta.
    return f'[[celery]]\nname = "main"\nbroker = {toml_str(redis_url)}\ninterval = 0.5\ntimeout = 3\n'


def gunicorn(procs, tmp_path: Path, base: str) -> str:
    """Swap the `jobdash serve` that serve() started (config, database, user) for the README's gunicorn."""
    stop_dashboard(procs)
    proc = procs.start("gunicorn", [sys.executable, "-m", "gunicorn", *readme_gunicorn_args(), "-b",
                                    base.removeprefix("http://"), "--chdir", str(REPO), "wsgi:app"],
                       env={"JOBDASH_CONFIG": str(tmp_path / "jobdash.toml")})

    def answers() -> bool:
        assert proc.poll() is None, procs.log_tail(proc)
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(answers, bool, timeout=60, interval=0.3)
    return base


def hold_viewers(base: str) -> None:
    cookie = login(base, "viewer", PASSWORD)
    clients = connect_many(base, cookie, "overview", VIEWERS, timeout=120)
    try:
        start = [c.deltas for c in clients]
        # Every one of them keeps getting the room's deltas, for several polls.
        wait_for(lambda: [c.deltas - s for c, s in zip(clients, start)], lambda got: min(got) >= 4, timeout=60,
                 interval=0.5)
        assert [c.error for c in clients if not c.connected] == []
    finally:
        for client in clients:
            client.close()


@pytest.mark.timeout(400)
def test_two_hundred_viewers_on_jobdash_serve(procs, tmp_path, redis_url):
    hold_viewers(serve(procs, tmp_path, source_toml(redis_url)))


@pytest.mark.timeout(400)
def test_two_hundred_viewers_on_the_readme_gunicorn_command(procs, tmp_path, redis_url):
    hold_viewers(gunicorn(procs, tmp_path, serve(procs, tmp_path, source_toml(redis_url))))

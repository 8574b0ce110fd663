"""Every collector kind polled 100 times against a port that accepts and never answers keeps its
open file descriptors flat: nothing half-built is left open by a failed poll. (Dask is missing: its
first poll against such a port does not return at all; the runner abandons it.)"""
from __future__ import annotations

import gc
import os

import pytest

import collectors
from tests.fixtures_services import silent_server

POLLS = 100
KINDS = {
    "celery-redis": ("celery", lambda port: {"broker": f"redis://127.0.0.1:{port}/0"}),
    "celery-amqp": ("celery", lambda port: {"broker": f"amqp://guest:guest@127.0.0.1:{port}//"}),
    "kafka": ("kafka", lambda port: {"bootstrap_servers": f"127.0.0.1:{port}"}),
    "consul": ("consul", lambda port: {"address": f"127.0.0.1:{port}"}),
}


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(KINDS))
def test_failed_polls_against_a_hung_source_leak_no_file_descriptors(name):
    kind, options = KINDS[name]
    server = silent_server()
    collector = collectors.build(kind, "hung", 1.0, 0.3, options(server.getsockname()[1]))
    accepted = []

    def poll() -> None:
        try:
            collector.collect()
        except Exception:  # noqa: BLE001 - every poll is meant to fail
            pass
        while True:  # the test's own end of each connection is not the collector's
            server.setblocking(False)
            try:
                accepted.append(server.accept()[0])
            except BlockingIOError:
                break

    try:
        for _ in range(5):  # warm up: lazily built clients, thread pools
            poll()
        before = open_fds() - len(accepted)
        for _ in range(POLLS):
            poll()
        after = open_fds() - len(accepted)
        assert after - before <= 3, f"{after - before} more file descriptors after {POLLS} failed polls"
    finally:
        collector.close()
        for sock in accepted:
            sock.close()
        server.close()

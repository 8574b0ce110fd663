"""Every collector kind polled 100 times against a port that accepts and never answers keeps its
open file descriptors and threads flat, and each poll fails within the source's timeout: nothing
half-built is left open by a failed poll."""
from __future__ import annotations

import gc
import os
import threading
import time

import pytest

import collectors
from tests.fixtures_services import silent_server

POLLS = 100
KINDS = {
    "celery-redis": ("celery", lambda port: {"broker": f"redis://127.0.0.1:{port}/0"}),
    "celery-amqp": ("celery", lambda port: {"broker": f"amqp://guest:guest@127.0.0.1:{port}//"}),
    "kafka": ("kafka", lambda port: {"bootstrap_servers": f"127.0.0.1:{port}"}),
    "consul": ("consul", lambda port: {"address": f"127.0.0.1:{port}"}),
    "dask": ("dask", lambda port: {"address": f"tcp://127.0.0.1:{port}"}),
}
TIMEOUT = 0.3


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(KINDS))
def test_failed_polls_against_a_hung_source_leak_no_file_descriptors(name):
    kind, options = KINDS[name]
    server = silent_server()
    collector = collectors.build(kind, "hung", 1.0, TIMEOUT, options(server.getsockname()[1]))
    accepted = []
    slowest = 0.0

    def poll() -> None:
        nonlocal slowest
        # On a thread of its own, as the runner calls it, so that a poll that never returns fails the test.
        answers: list[object] = []

        def collect() -> None:
            try:
                answers.append(collector.collect())
            except Exception as exc:  # noqa: BLE001 - every poll is meant to fail
                answers.append(exc)

        call = threading.Thread(target=collect, daemon=True)
        started = time.monotonic()
        call.start()
        call.join(30)
        assert not call.is_alive(), "a poll against the hung port never returned"
        assert isinstance(answers[0], Exception), f"a poll against the hung port succeeded: {answers[0]!r}"
        slowest = max(slowest, time.monotonic() - started)
        while True:  # the test's own end of each connection is not the collector's
            server.setblocking(False)
            try:
                accepted.append(server.accept()[0])
            except BlockingIOError:
                break

    try:
        for _ in range(5):  # warm up: lazily built clients, thread pools
            poll()
        before, threads_before = open_fds() - len(accepted), threading.active_count()
        for _ in range(POLLS):
            poll()
        after, threads_after = open_fds() - len(accepted), threading.active_count()
        assert after - before <= 3, f"{after - before} more file descriptors after {POLLS} failed polls"
        assert threads_after <= threads_before, f"{threads_after - threads_before} more threads after {POLLS} polls"
        # Within the source's timeout, give or take scheduling on a loaded machine.
        assert slowest < TIMEOUT * 3 + 1.0, f"a failed poll took {slowest:.2f}s against a {TIMEOUT}s timeout"
    finally:
        collector.close()
        for sock in accepted:
            sock.close()
        server.close()

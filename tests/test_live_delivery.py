"""Every client in a room ends with every key's latest value: counted per client, real worker, real sockets."""
from __future__ import annotations

import time

import pytest
import requests
from celery import Celery

from bench.live_clients import connect_many, login
from tests.browser import serve, toml_str
from tests.conftest import PASSWORD
from tests.fixtures_services import wait_for

TASKS = "dashboard.demo.tasks"


def celery_toml(redis_url: str) -> str:
    return (f'[[celery]]\nname = "main"\nbroker = {toml_str(redis_url)}\nbackend = {toml_str(redis_url)}\n'
            "interval = 0.5\ntimeout = 3\n")


@pytest.fixture
def sender(redis_url):
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.task_send_sent_event = True
    yield app
    app.close()


def stored_states(base: str, cookie: str, ids: list[str]) -> dict[str, str]:
    states = {}
    for task_id in ids:
        answer = requests.get(f"{base}/api/celery/main/tasks/{task_id}", headers={"Cookie": cookie}, timeout=10)
        states[task_id] = answer.json().get("state") if answer.status_code == 200 else None
    return states


def missed(clients, finals: dict[str, str]) -> dict[int, dict[str, str | None]]:
    """Per client: the task keys whose latest value is not the task's final state."""
    out = {}
    for n, client in enumerate(clients):
        held = client.latest()
        wrong = {uuid: (held.get(f"task:{uuid}") or {}).get("state") for uuid, state in finals.items()
                 if (held.get(f"task:{uuid}") or {}).get("state") != state}
        if wrong:
            out[n] = wrong
    return out


def test_fifty_clients_each_end_with_every_tasks_final_state(procs, tmp_path, redis_url, celery_worker_redis, sender):
    # Found with this test: a task's delta carried its event's state, so the producer's task-sent,
    # published after the message and often arriving after the worker's quick task-succeeded,
    # turned every client's finished task back to PENDING (the store already kept SUCCESS).
    base = serve(procs, tmp_path, celery_toml(redis_url))
    cookie = login(base, "viewer", PASSWORD)
    wait_for(lambda: requests.get(f"{base}/readyz", headers={"Cookie": cookie}, timeout=10).json()["collectors"]["celery/main"],
             lambda s: s["state"] == "up", timeout=30)
    clients = connect_many(base, cookie, "celery/main", 50)
    try:
        ids = []
        for i in range(150):  # quick tasks, about 40 a second
            ids.append(sender.send_task(f"{TASKS}.add", args=[i, i]).id)
            time.sleep(0.025)
        finals = wait_for(lambda: stored_states(base, cookie, ids),
                          lambda s: all(v == "SUCCESS" for v in s.values()), timeout=60, interval=1.0)
        # Generous on a loaded machine, but every client must get every final state.
        try:
            wait_for(lambda: missed(clients, finals), lambda m: not m, timeout=30, interval=0.5)
        except AssertionError:
            report = missed(clients, finals)
            pytest.fail(f"{len(report)} of {len(clients)} clients missed final states, e.g. {list(report.items())[:2]}")
        assert [c.error for c in clients if not c.connected] == []
    finally:
        for client in clients:
            client.close()

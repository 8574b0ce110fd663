"""Every Dask control through perform(), against real clusters: a LocalCluster of worker processes
with nannies, and a `dask scheduler` + `dask worker --no-nanny` pair.

Refused asks (anonymous, viewer, manager; anyone in read-only mode; bad input) leave the cluster
as it was: same workers, same task states. An admin's ask takes effect, seen from the scheduler.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from dashboard import create_app
from dashboard.actions import REGISTRY
from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes
from dashboard.store import dask_queries
from tests.action_channels import Channel, action_rows
from tests.conftest import csrf_of, login
from tests.fixtures_services import silent_server, wait_for

DASK_ACTIONS = sorted(n for n, a in REGISTRY.items() if a.kind == "dask")


def needs_marker(path: str) -> str:
    """Fails until the file exists: the cause of the failure, removable from outside."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no marker at {path}")
    return path


def hold_data(n: int) -> bytes:
    return b"x" * n


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="512MiB") as c:
        yield c


@pytest.fixture(scope="module")
def user_client(cluster):
    """The application whose futures the scheduler keeps (and retries)."""
    with Client(cluster.scheduler_address, timeout=10, set_as_default=False) as c:
        yield c


def make_app(tmp_path_factory, sources, **settings):
    db = tmp_path_factory.mktemp("dask-actions") / "jobdash.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", sources=sources, secret_key="t", **settings))
    runtime = app.extensions["jobdash"]
    for source in sources:
        wait_for(lambda: runtime.readiness()["collectors"][source.key], lambda s: s["state"] == "up", timeout=30)
    return app


@pytest.fixture(scope="module")
def app(cluster, dask_cluster, tmp_path_factory):
    app = make_app(tmp_path_factory, [
        SourceConfig("dask", "main", {"address": cluster.scheduler_address}, interval=0.5, timeout=4.0),
        SourceConfig("dask", "plain", {"address": dask_cluster.address}, interval=0.5, timeout=4.0)])
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture(scope="module")
def admin(app):
    client = login(app, "admin")
    client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(client)
    return client


def act(client, name: str, target, source: str = "main", **params) -> tuple[int, dict]:
    response = client.post(f"/api/actions/{name}", json={"source": source, "target": target, "params": params})
    return response.status_code, response.json


def erred_state(app, key: str) -> str | None:
    row = dask_queries.erred_task(app.extensions["jobdash"].engine, "main", key)
    return row["state"] if row else None


def fail_now(app, user_client, tmp_path, n: int = 1, prefix: str | None = None):
    """n tasks that err now (each with its own missing marker), seen as erred by the dashboard."""
    prefix = prefix or f"marker{uuid.uuid4().hex[:6]}"
    markers = [str(tmp_path / f"{prefix}-{i}") for i in range(n)]
    futures = [user_client.submit(needs_marker, m, key=f"{prefix}-{i}") for i, m in enumerate(markers)]
    for f in futures:
        # Generous: on a loaded machine a fresh worker process can take long to run its first task.
        wait_for(lambda: f.status, lambda s: s == "error", timeout=120)
        wait_for(lambda: erred_state(app, f.key), lambda s: s == "erred", timeout=60)
    return futures, markers


def fingerprint(user_client) -> dict:
    info = user_client.scheduler_info(n_workers=-1)
    return {"workers": sorted(info["workers"]),
            "tasks": user_client.run_on_scheduler(lambda dask_scheduler: sorted(
                (str(k), ts.state) for k, ts in dask_scheduler.tasks.items()))}


@pytest.fixture(scope="module")
def erred_one(app, user_client, tmp_path_factory):
    futures, _ = fail_now(app, user_client, tmp_path_factory.mktemp("matrix"))
    return futures[0]


def valid_request(name: str, cluster, erred_key: str) -> dict:
    worker = sorted(cluster.scheduler_info["workers"])[0]
    target, params = {
        "dask.retry": (erred_key, {}),
        "dask.retry_selected": ("selection", {"keys": [erred_key], "confirm": True}),
        "dask.retry_prefix": (erred_key.rsplit("-", 1)[0], {"confirm": True}),
        "dask.retire_worker": (worker, {"confirm": True}),
        "dask.restart_worker": (worker, {"confirm": True}),
    }[name]
    return {"source": "main", "target": target, "params": params}


def test_the_matrix_covers_every_dask_action():
    assert DASK_ACTIONS == ["dask.restart_worker", "dask.retire_worker", "dask.retry", "dask.retry_prefix",
                            "dask.retry_selected"]


@pytest.mark.parametrize("channel", ["http", "socket"])
@pytest.mark.parametrize("role", [None, "viewer", "manager"])
@pytest.mark.parametrize("name", DASK_ACTIONS)
def test_anyone_but_an_admin_is_refused_and_the_cluster_is_unchanged(app, cluster, user_client, erred_one, name, role,
                                                                    channel):
    # The test's own client checks the cluster (run_on_scheduler is the test's, never jobdash's).
    before = fingerprint(user_client)
    rows_before = len(action_rows(app))
    status, body = Channel(app, channel, role).ask(name, valid_request(name, cluster, erred_one.key))
    assert status == (401 if role is None else 403), body
    time.sleep(0.3)  # a control that slipped through would have reached the scheduler by now
    assert fingerprint(user_client) == before
    rows = action_rows(app)
    if role is None:
        assert len(rows) == rows_before
    else:
        assert (rows[0]["user"], rows[0]["action"], rows[0]["outcome"], rows[0]["via"]) == (role, name, "refused", channel)


def test_read_only_refuses_every_control_even_to_an_admin(cluster, user_client, erred_one, tmp_path_factory):
    ro = make_app(tmp_path_factory, [SourceConfig("dask", "main", {"address": cluster.scheduler_address},
                                                  interval=0.5, timeout=4.0)], read_only=True)
    try:
        client = login(ro, "admin")
        client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(client)
        before = fingerprint(user_client)
        for name in DASK_ACTIONS:
            request = valid_request(name, cluster, erred_one.key)
            status, body = act(client, name, request["target"], **request["params"])
            assert status == 403 and "read-only" in body["error"], (name, body)
        assert fingerprint(user_client) == before
        page = client.get("/dask/main").text
        assert 'data-action="dask.retry"' not in page and 'data-action="dask.retire_worker"' not in page
    finally:
        ro.extensions["jobdash"].stop()


@pytest.mark.parametrize("params, says", [
    ({"keys": [f"k{i}" for i in range(10_000)], "confirm": True}, "longer than 1000 items"),
    ({"keys": [1, 2], "confirm": True}, "a list of strings"),
    ({"keys": "a,b", "confirm": True}, "a list of strings"),
    ({"keys": [], "confirm": True}, "at least one"),
    ({"keys": ["x"]}, "confirmation required"),
])
def test_bad_selections_are_refused_with_a_clear_4xx(admin, user_client, params, says):
    before = fingerprint(user_client)
    status, body = act(admin, "dask.retry_selected", "selection", **params)
    assert status == 400 and says in body["error"], body
    assert fingerprint(user_client) == before


def test_unknown_keys_workers_and_sources_are_refused(admin, user_client):
    before = fingerprint(user_client)
    assert act(admin, "dask.retry", "no-such-key")[0] == 404
    assert act(admin, "dask.retry_prefix", "no-such-prefix", confirm=True)[0] == 404
    status, body = act(admin, "dask.retry_selected", "selection", keys=["no-such-key"], confirm=True)
    assert status == 404 and "no erred task 'no-such-key'" in body["error"]
    status, body = act(admin, "dask.retry_selected", "selection", keys=["no-such-key", "nor-this"], confirm=True)
    assert status == 409 and "nothing retried" in body["error"] and "nor-this: unknown" in body["error"]
    for name in ("dask.retire_worker", "dask.restart_worker"):
        status, body = act(admin, name, "tcp://127.0.0.1:1", confirm=True)
        assert status == 404 and "no worker" in body["error"]
    assert act(admin, "dask.retry", "k", source="nowhere")[0] == 404
    assert act(admin, "dask.retry", 42)[0] == 400
    assert fingerprint(user_client) == before


def test_retry_flips_erred_keys_to_memory_once_the_cause_is_removed(app, admin, user_client, tmp_path):
    (one,), (marker,) = fail_now(app, user_client, tmp_path)
    status, body = act(admin, "dask.retry", one.key)
    assert status == 200, body  # nothing fixed yet: it errs again
    wait_for(lambda: erred_state(app, one.key), lambda s: s == "erred", timeout=120)
    Path(marker).touch()
    status, body = act(admin, "dask.retry", one.key)
    assert (status, body["outcome"]) == (200, "ok"), body
    assert body["details"]["replies"][one.key].startswith("ok: back to")
    assert one.result(timeout=30) == marker
    wait_for(lambda: erred_state(app, one.key), lambda s: s == "memory", timeout=30)
    row = action_rows(app)[0]
    assert (row["action"], row["outcome"], row["target"]) == ("dask.retry", "ok", one.key)


def test_retry_selected_and_by_prefix(app, admin, user_client, tmp_path):
    futures, markers = fail_now(app, user_client, tmp_path, n=4, prefix=f"batch{uuid.uuid4().hex[:6]}")
    for m in markers:
        Path(m).touch()
    status, body = act(admin, "dask.retry_selected", "selection", keys=[f.key for f in futures[:2]], confirm=True)
    assert status == 200 and sorted(body["details"]["retried"]) == sorted(f.key for f in futures[:2])
    for f in futures[:2]:
        f.result(timeout=30)
    wait_for(lambda: [erred_state(app, f.key) for f in futures[:2]], lambda s: s == ["memory"] * 2, timeout=30)
    prefix = futures[0].key.rsplit("-", 1)[0]
    status, body = act(admin, "dask.retry_prefix", prefix, confirm=True)
    assert status == 200 and sorted(body["details"]["retried"]) == sorted(f.key for f in futures[2:])
    for f in futures[2:]:
        f.result(timeout=30)


def test_a_key_no_client_holds_is_refused_not_ignored(app, admin, user_client, tmp_path):
    futures, _ = fail_now(app, user_client, tmp_path)
    key = futures[0].key
    del futures  # the only holder lets go: the scheduler forgets the task
    wait_for(lambda: user_client.run_on_scheduler(lambda dask_scheduler, k=key: k in dask_scheduler.tasks),
             lambda held: not held, timeout=30)
    status, body = act(admin, "dask.retry", key)
    assert status == 409 and "no client holds it" in body["error"], body
    assert erred_state(app, key) == "forgotten"
    assert action_rows(app)[0]["outcome"] == "refused"


def test_drain_moves_the_data_and_removes_the_worker(app, admin, cluster, user_client):
    addresses = sorted(user_client.scheduler_info(n_workers=-1)["workers"])
    victim = addresses[0]
    data = user_client.submit(hold_data, 1 << 20, workers=[victim], key=f"data-{uuid.uuid4().hex[:6]}")
    data.result(timeout=30)
    status, body = act(admin, "dask.retire_worker", victim, confirm=True)
    assert (status, body["outcome"]) == (200, "ok"), body
    assert victim not in user_client.scheduler_info(n_workers=-1)["workers"]
    holders = user_client.who_has([data])[data.key]
    assert holders and victim not in holders
    assert len(data.result(timeout=30)) == 1 << 20
    page = wait_for(lambda: admin.get("/api/dask/main/workers").json["workers"],
                    lambda ws: any(w["address"] == victim and w["gone"] for w in ws), timeout=30)
    assert next(w for w in page if w["address"] == victim)["gone_at"] is not None
    wait_for(lambda: len(cluster.scheduler_info["workers"]), lambda n: n >= 2, timeout=30)


def test_drain_refuses_the_last_worker_holding_data(tmp_path_factory):
    with processes.start_dask_scheduler(n_workers=1, timeout=120) as lone, \
            Client(lone.address, timeout=60, set_as_default=False) as c:
        app = make_app(tmp_path_factory, [SourceConfig("dask", "main", {"address": lone.address},
                                                       interval=0.5, timeout=4.0)])
        try:
            data = c.submit(hold_data, 1024)
            data.result(timeout=30)
            client = login(app, "admin")
            client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(client)
            (only,) = c.scheduler_info(n_workers=-1)["workers"]
            status, body = act(client, "dask.retire_worker", only, confirm=True)
            assert status == 409 and "last running worker" in body["error"], body
            assert list(c.scheduler_info(n_workers=-1)["workers"]) == [only]
        finally:
            app.extensions["jobdash"].stop()


def test_restart_brings_the_worker_back_with_a_new_address(admin, user_client):
    before = sorted(user_client.scheduler_info(n_workers=-1)["workers"])
    victim = before[0]
    status, body = act(admin, "dask.restart_worker", victim, confirm=True)
    assert (status, body["outcome"]) == (200, "ok"), body
    # The answer names the new address when the nanny brought it back within the action's wait.
    after = wait_for(lambda: sorted(user_client.scheduler_info(n_workers=-1)["workers"]),
                     lambda ws: victim not in ws and len(ws) == len(before), timeout=120)
    new = body["details"].get("new_address")
    assert new is None or (new != victim and new in after)


def test_restart_is_refused_for_a_worker_without_a_nanny(admin, dask_cluster):
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as c:
        before = sorted(c.scheduler_info(n_workers=-1)["workers"])
        status, body = act(admin, "dask.restart_worker", before[0], source="plain", confirm=True)
        assert status == 409 and "no nanny" in body["error"], body
        assert sorted(c.scheduler_info(n_workers=-1)["workers"]) == before


def test_a_control_against_a_scheduler_that_never_answers_fails_in_time_and_holds_up_no_other(tmp_path_factory):
    server = silent_server()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    db = tmp_path_factory.mktemp("dask-hung") / "jobdash.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", secret_key="t", sources=[
        SourceConfig("dask", "hung", {"address": address}, interval=60.0, timeout=1.0)]))
    try:
        admin = login(app, "admin")
        admin.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(admin)
        for _ in range(2):  # the second click must not wait behind the first one's connect
            started = time.monotonic()
            status, body = act(admin, "dask.retry", "some-key", source="hung")
            assert time.monotonic() - started < 10, body
            assert status == 502 and f"scheduler {address} did not answer within" in body["error"], body
    finally:
        app.extensions["jobdash"].stop()
        server.close()

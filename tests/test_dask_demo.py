"""The demo's Dask workload on a real cluster shows what the Dask page is for: erred tasks, a retry
by the workload that succeeds, and erred tasks kept so that a retry from jobdash succeeds."""
from __future__ import annotations

import threading

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.demo.workload import _dask_load
from dashboard.store import dask_queries
from tests.conftest import csrf_of, login
from tests.fixtures_services import wait_for


def test_the_demo_workload_errs_and_its_flaky_tasks_succeed_when_retried(dask_cluster, tmp_path):
    source = SourceConfig("dask", "demo", {"address": dask_cluster.address}, interval=0.5, timeout=4.0)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'j.db'}", sources=[source], secret_key="t"))
    engine = app.extensions["jobdash"].engine
    stop = threading.Event()
    load = threading.Thread(target=_dask_load, args=(stop, dask_cluster.address, str(tmp_path)), daemon=True)
    load.start()
    try:
        def reports():
            return {t["state"] for t in dask_queries.erred_page(engine, "demo", prefix="fetch_report", limit=50)["tasks"]}

        wait_for(reports, lambda states: {"memory", "erred"} <= states, timeout=180)
        finished = {p["prefix"] for p in dask_queries.prefix_stats(engine, "demo", 0)["prefixes"]}
        assert {"square", "resize", "fetch_report"} <= finished
        admin = login(app, "admin")
        admin.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_of(admin)
        held = next(t["key"] for t in dask_queries.erred_page(engine, "demo", prefix="fetch_report", state="erred")["tasks"])
        response = admin.post("/api/actions/dask.retry", json={"source": "demo", "target": held, "params": {}})
        assert response.status_code == 200, response.json
        wait_for(lambda: dask_queries.erred_task(engine, "demo", held)["state"], lambda s: s == "memory", timeout=60)
    finally:
        stop.set()
        load.join(30)
        app.extensions["jobdash"].stop()

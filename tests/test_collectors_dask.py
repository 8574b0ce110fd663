"""DaskCollector against a real scheduler and real worker processes."""
from __future__ import annotations

import time
import uuid

import pytest
from dask.utils import parse_bytes
from distributed import Client, Event

from collectors.dask_scheduler import DaskCollector
from dashboard.demo import processes
from tests.fixtures_services import wait_for


def explode(x):
    raise ValueError(f"boom {x}")


def hold(event_name):
    Event(event_name).wait(60)
    return event_name


@pytest.fixture
def collector(dask_cluster):
    c = DaskCollector("test", interval=1, timeout=5, address=dask_cluster.address)
    yield c
    c.close()


@pytest.fixture
def client(dask_cluster):
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as c:
        yield c


def test_workers_threads_and_memory_are_the_clusters(dask_cluster, collector):
    obs = collector.collect()
    assert obs.degraded is None
    assert obs.headline["workers"] == dask_cluster.n_workers
    assert obs.headline["threads"] == dask_cluster.n_workers * dask_cluster.nthreads
    assert obs.headline["memory_limit"] == dask_cluster.n_workers * parse_bytes(dask_cluster.memory_limit)
    # Each worker is a live Python process: tens of megabytes at least, well under its limit.
    assert 10e6 * dask_cluster.n_workers < obs.headline["memory"] < obs.headline["memory_limit"]
    assert ("workers", "", float(dask_cluster.n_workers)) in obs.metrics


def patient(collector):
    """collect(), but None for a poll the scheduler answered too late: its event loop stalls for
    seconds on a loaded machine while workers take up new work."""
    try:
        return collector.collect()
    except TimeoutError:
        return None


def test_processing_and_erred_follow_the_tasks_submitted(dask_cluster, collector, client):
    before = collector.collect().headline
    failing = client.map(explode, range(3), pure=False)
    go = f"go-{uuid.uuid4().hex}"
    held = [client.submit(hold, go, pure=False) for _ in range(dask_cluster.n_workers * dask_cluster.nthreads)]
    try:
        obs = wait_for(lambda: patient(collector), lambda o: o is not None and o.headline["erred"] == before["erred"] + 3
                       and o.headline["processing"] == before["processing"] + len(held), timeout=30)
        assert ("tasks_erred", "", float(before["erred"] + 3)) in obs.metrics
        assert ("tasks_processing", "", float(before["processing"] + len(held))) in obs.metrics
    finally:
        Event(go, client=client).set()
    obs = wait_for(lambda: patient(collector), lambda o: o is not None and o.headline["processing"] == before["processing"],
                   timeout=30)
    assert obs.headline["in_memory"] >= len(held)
    del failing, held
    wait_for(lambda: patient(collector), lambda o: o is not None and o.headline["erred"] == before["erred"], timeout=30)


def test_the_client_is_kept_then_rebuilt_after_the_scheduler_comes_back():
    cluster = processes.start_dask_scheduler(n_workers=1)
    collector = DaskCollector("test", timeout=3, address=cluster.address)
    try:
        assert collector.collect().headline["workers"] == 1
        first = collector.link._client
        assert collector.collect().headline["workers"] == 1
        assert collector.link._client is first
        cluster.cleanup()
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"scheduler {cluster.address}"):
            collector.collect()
        assert time.monotonic() - started < 3.0
        assert collector.link._client is None
        cluster = processes.start_dask_scheduler(port=cluster.port, n_workers=1)
        assert collector.collect().headline["workers"] == 1
        assert collector.link._client is not first
    finally:
        collector.close()
        cluster.cleanup()


def test_an_unreachable_scheduler_fails_at_once():
    address = f"tcp://127.0.0.1:{processes.free_port()}"
    collector = DaskCollector("test", timeout=5, address=address)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="unreachable"):
        collector.collect()
    assert time.monotonic() - started < 1.0
    collector.close()

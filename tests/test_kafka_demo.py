"""The demo's Kafka workload on a real tansu broker shows OK, WARN and STALL groups, and the source is up."""
from __future__ import annotations

import threading
import time

import pytest

from collectors.kafka_lag import KafkaLagCollector
from dashboard.demo import workload


# Its own deadline (240 s) is what bounds it: WARN needs the lag to have grown across a whole window.
@pytest.mark.timeout(300)
def test_the_demo_workload_shows_ok_warn_and_stall_groups(kafka_broker):
    stop = threading.Event()
    workload.start_kafka_load(stop, kafka_broker.bootstrap)
    collector = KafkaLagCollector("demo", interval=1.0, timeout=5, bootstrap_servers=kafka_broker.bootstrap,
                                  groups=list(workload.GROUPS), window=5)
    wanted = {"search": "OK", "billing": "WARN", "analytics": "STALL"}
    seen: dict[str, set[str]] = {g: set() for g in wanted}
    try:
        deadline = time.monotonic() + 240
        while not all(wanted[g] in seen[g] for g in wanted):
            assert time.monotonic() < deadline, f"statuses seen: {seen}"
            obs = collector.collect()
            assert obs.degraded is None, obs.degraded
            (state,) = [p for kind, p in obs.records if kind == "kafka_state"]
            for g in state["groups"]:
                seen[g["group"]].add(g["status"])
            time.sleep(1.0)
        assert obs.headline["members"] == 3
        assert not seen["search"] & {"STOP", "STALL", "REWIND", "ERR"}  # the healthy group never errs
    finally:
        stop.set()
        collector.close()

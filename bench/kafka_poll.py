"""One Kafka poll over 10k partitions on tansu: time, broker requests, store growth per day.

    python -m bench.kafka_poll [--groups 50] [--partitions 200] [--cycles 5]

Each group consumes a topic of its own. jobdash's collector is measured against the peer in
the same run: polling group by group as `kafka-consumer-groups --describe` does (an OffsetFetch
and a ListOffsets per group). Requests are counted at the admin client's connection manager.
The cycle is split into jobdash's evaluation (the tracker's CPU), kafka-python's CPU (building
and decoding the requests: the process's CPU time, all threads, less the evaluation) and the
wait for the broker (wall time less the process's CPU; on a loaded machine it also holds time spent
waiting for a core). Store growth: one simulated day at a 5 s interval (state rows replaced every poll, history
points every history_interval) written through the real store writer into SQLite.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kafka import TopicPartition
from kafka.admin import NewTopic, OffsetSpec
from kafka.structs import OffsetAndMetadata

from collectors.kafka_lag import KafkaLagCollector, MembersAdmin, history_points
from dashboard.demo import processes
from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.migrate import upgrade
from dashboard.store.timeseries import Point


def count_requests(admin) -> list[int]:
    """Wrap the admin client's send so every request it makes to a broker is counted."""
    counter = [0]
    manager = admin._manager
    send = manager.send

    def counted(*args, **kwargs):
        counter[0] += 1
        return send(*args, **kwargs)

    manager.send = counted
    return counter


def setup(bootstrap: str, groups: int, partitions: int) -> list[str]:
    admin = MembersAdmin(bootstrap_servers=bootstrap, request_timeout_ms=60000)
    names = [f"bench-{i:02d}" for i in range(groups)]
    admin.create_topics([NewTopic(f"topic-{n}", partitions, 1) for n in names])
    for name in names:
        admin.alter_group_offsets(name, {TopicPartition(f"topic-{name}", p): OffsetAndMetadata(0, "", -1)
                                         for p in range(partitions)})
    admin.close()
    return names


def peer_poll(admin, names: list[str]) -> None:
    """Group by group, as kafka-consumer-groups --describe does."""
    for name in names:
        offsets = admin.list_group_offsets([name])[name]
        admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in offsets})


def used_bytes(engine) -> int:
    """Bytes of the SQLite database in use (pages minus free pages), WAL included."""
    with engine.connect() as conn:
        pages, free, size = (conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("page_count", "freelist_count",
                                                                                     "page_size"))
    return (pages - free) * size


def store_growth(observation, interval: float = 5.0, history_interval: float = 60.0) -> tuple[float, float]:
    """MiB one day adds to a SQLite store, from one real observation repeated at `interval`, and
    the MiB the current state (replaced every poll) takes once."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "growth.db"
        upgrade(f"sqlite:///{db}")
        engine = make_engine(f"sqlite:///{db}")
        writer = Writer(engine, HANDLERS)
        writer.start()
        (state,) = [p for kind, p in observation.records if kind == "kafka_state"]
        points = history_points(state)
        start, hour = time.time() - 86400, 3600
        # The current state is replaced every poll, so its rows are there once, not per day: not growth.
        writer.submit("kafka_state", {**state, "ts": start - 1})
        writer.flush(timeout=600)
        before = used_bytes(engine)
        for i in range(int(hour / interval)):  # one hour, extrapolated to a day below
            ts = start + i * interval
            writer.submit("kafka_state", {**state, "ts": ts})
            if i % int(history_interval / interval) == 0:
                writer.submit_many("sample", [Point("kafka/bench", m, v, ts, label) for m, label, v in points])
        writer.flush(timeout=600)
        after = used_bytes(engine)
        writer.stop()
        engine.dispose()
        return (after - before) * 24 / 2 ** 20, before / 2 ** 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    broker = processes.start_tansu()
    try:
        names = setup(broker.bootstrap, args.groups, args.partitions)
        collector = KafkaLagCollector("bench", interval=5, timeout=30, bootstrap_servers=broker.bootstrap,
                                      groups=names)
        collector.collect()  # connect and learn coordinators and leaders once, as a running collector has
        requests = count_requests(collector._admin)
        tracking: list[float] = []
        update = collector.tracker.update

        def timed_update(*args):  # jobdash's own work in a cycle: windows, statuses, lag seconds, rows
            started = time.thread_time()
            try:
                return update(*args)
            finally:
                tracking.append(time.thread_time() - started)

        collector.tracker.update = timed_update
        peer_admin = MembersAdmin(bootstrap_servers=broker.bootstrap, request_timeout_ms=60000)
        peer_poll(peer_admin, names[:1])
        peer_requests = count_requests(peer_admin)
        ours, theirs, ours_cpu, theirs_cpu, ours_requests, theirs_requests = [], [], [], [], [], []
        for _ in range(args.cycles):  # alternate, so a slow spell of the machine hits both
            requests[0] = 0
            started, cpu = time.perf_counter(), time.process_time()
            observation = collector.collect()
            ours.append(time.perf_counter() - started)
            ours_cpu.append(time.process_time() - cpu)
            ours_requests.append(requests[0])
            peer_requests[0] = 0
            started, cpu = time.perf_counter(), time.process_time()
            peer_poll(peer_admin, names)
            theirs.append(time.perf_counter() - started)
            theirs_cpu.append(time.process_time() - cpu)
            theirs_requests.append(peer_requests[0])
        collector.close()
        peer_admin.close()
        total = observation.headline["partitions"]
        growth, state_mib = store_growth(observation)
    finally:
        broker.cleanup()
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    evaluating = statistics.median(tracking)
    client = statistics.median(c - t for c, t in zip(ours_cpu, tracking))
    wait = statistics.median(w - c for w, c in zip(ours, ours_cpu))
    theirs_wait = statistics.median(w - c for w, c in zip(theirs, theirs_cpu))
    print(f"{args.groups} groups x {args.partitions} partitions = {total} partitions, median of {args.cycles} cycles")
    print(f"jobdash poll cycle:            {ours_s:.3f} s, {max(ours_requests)} broker requests "
          "(members and status included; target < 1 s)")
    print(f"  split: evaluating {evaluating:.3f} s CPU, kafka-python {client:.3f} s CPU, "
          f"waiting for the broker {wait:.3f} s")
    print(f"peer (group by group) poll:    {theirs_s:.3f} s, {max(theirs_requests)} broker requests; "
          f"kafka-python {statistics.median(theirs_cpu):.3f} s CPU, waiting for the broker {theirs_wait:.3f} s")
    print(f"ratio jobdash/peer time:       {ours_s / theirs_s:.2f}; requests {max(ours_requests) / max(theirs_requests):.2f}")
    print(f"store growth at a 5 s interval: {growth:.1f} MiB/day (target <= 100); "
          f"the current state of every partition takes {state_mib:.1f} MiB once")


if __name__ == "__main__":
    main()

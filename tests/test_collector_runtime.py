"""CollectorRunner with real collectors: down, recovery, hanging sources, backoff, stopping."""
from __future__ import annotations

import random
import threading
import time

import pytest

from collectors.base import Collector, Observation
from collectors.consul_health import ConsulCollector
from collectors.kafka_lag import KafkaLagCollector
from collectors.runner import CollectorRunner, backoff_delay
from dashboard.demo import processes
from tests.fixtures_services import wait_for


class RecordingSink:
    """Keeps everything runners hand over."""

    def __init__(self):
        self._lock = threading.Lock()
        self.published: list[tuple[str, dict, Observation | None]] = []
        self.emitted: list[tuple[str, list]] = []

    def publish(self, collector, status, observation):
        with self._lock:
            self.published.append((collector.key, status, observation))

    def emit(self, kind, payloads):
        with self._lock:
            self.emitted.append((kind, payloads))

    def statuses(self, key: str) -> list[dict]:
        with self._lock:
            return [status for k, status, _ in self.published if k == key]


class HangingCollector(Collector):
    """A source whose answer never comes until the test lets it."""

    kind = "hanging"

    def __init__(self, name: str, timeout: float, release: threading.Event):
        super().__init__(name, interval=0.1, timeout=timeout)
        self.release = release

    def collect(self) -> Observation:
        self.release.wait()
        return Observation(headline={"answered": 1})


@pytest.fixture
def runners():
    started: list[CollectorRunner] = []

    def start(collector, sink, backoff_cap=0.5):
        runner = CollectorRunner(collector, sink, backoff_cap=backoff_cap)
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()
    for runner in started:
        runner.join(5)


def test_a_down_kafka_comes_up_by_itself_while_consul_keeps_publishing(consul_agent, runners):
    sink = RecordingSink()
    port = processes.free_port()
    kafka = runners(KafkaLagCollector("lag", interval=0.2, timeout=2, bootstrap_servers=f"127.0.0.1:{port}"), sink)
    health = runners(ConsulCollector("health", interval=0.2, timeout=2, address=consul_agent.address), sink)

    down = wait_for(kafka.status, lambda s: s["state"] == "down", timeout=5)
    assert "kafka unreachable" in down["last_error"] and str(port) in down["last_error"]
    assert down["last_success_at"] is None
    consul_before = wait_for(health.status, lambda s: s["state"] == "up", timeout=5)["last_success_at"]

    broker = processes.start_tansu(port=port)
    try:
        up = wait_for(kafka.status, lambda s: s["state"] == "up", timeout=10)
        assert up["headline"]["groups"] == 0
        assert up["last_success_at"] > down["last_error_at"]
    finally:
        broker.cleanup()
    consul_after = wait_for(health.status, lambda s: s["last_success_at"] > up["last_success_at"], timeout=5)
    assert consul_after["last_success_at"] > consul_before
    consul_published = sink.statuses(health.collector.key)
    assert len(consul_published) >= 5
    assert {s["state"] for s in consul_published} == {"up"}
    successes = [s["last_success_at"] for s in consul_published]
    assert successes == sorted(successes) and len(set(successes)) == len(successes)
    kafka_states = [s["state"] for s in sink.statuses(kafka.collector.key)]
    assert kafka_states[0] == "down" and "up" in kafka_states


def test_a_hanging_source_is_down_on_time_and_holds_up_nobody(consul_agent, runners):
    sink = RecordingSink()
    release = threading.Event()
    try:
        hanging = runners(HangingCollector("stuck", timeout=0.5, release=release), sink)
        health = runners(ConsulCollector("health", interval=0.1, timeout=2, address=consul_agent.address), sink)
        started = time.monotonic()
        down = wait_for(hanging.status, lambda s: s["state"] == "down", timeout=3, interval=0.05)
        assert time.monotonic() - started < 0.5 + 1.0  # the collector's timeout, plus scheduling slack
        assert down["last_error"] == "TimeoutError: no answer within 0.5s"
        time.sleep(1.0)
        assert hanging.status()["state"] == "down"
        during = [s for s in sink.statuses(health.collector.key) if s["updated_at"] >= started]
        assert len(during) >= 5 and {s["state"] for s in during} == {"up"}
    finally:
        release.set()
    # The answer that finally comes ends the hang; the source is up again by itself.
    wait_for(hanging.status, lambda s: s["state"] == "up", timeout=5)


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(7)
    interval, cap = 1.0, 10.0
    assert backoff_delay(interval, 0, cap, rng) == interval
    for failures in range(1, 8):
        ceiling = min(cap, interval * 2 ** (failures - 1))
        delays = [backoff_delay(interval, failures, cap, rng) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jitter: no two sources retry in step
    upper = [max(backoff_delay(interval, f, cap, rng) for _ in range(200)) for f in range(1, 6)]
    assert upper == sorted(upper) and upper[-1] > 4 * upper[0]
    # A source down for days must not overflow the arithmetic and kill its thread.
    assert cap * 0.5 <= backoff_delay(interval, 5000, cap, rng) <= cap


def test_stop_ends_a_runner_promptly_mid_backoff(runners):
    sink = RecordingSink()
    collector = KafkaLagCollector("lag", interval=30, timeout=2,
                                  bootstrap_servers=f"127.0.0.1:{processes.free_port()}")
    runner = runners(collector, sink, backoff_cap=60)
    wait_for(runner.status, lambda s: s["state"] == "down", timeout=5)
    time.sleep(0.2)  # now waiting out a backoff of 15-30 s
    started = time.monotonic()
    runner.stop()
    runner.join(5)
    assert time.monotonic() - started < 5
    assert not runner._thread.is_alive()
    assert len(sink.statuses(collector.key)) == 1


def test_stop_ends_a_runner_promptly_mid_poll(runners):
    release = threading.Event()
    try:
        runner = runners(HangingCollector("stuck", timeout=1.0, release=release), RecordingSink())
        time.sleep(0.2)  # inside a poll that will not answer
        started = time.monotonic()
        runner.stop()
        runner.join(5)
        assert time.monotonic() - started < 5
        assert not runner._thread.is_alive()
    finally:
        release.set()

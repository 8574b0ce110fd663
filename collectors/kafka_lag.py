"""Kafka: consumer-group lag per partition, from committed and end offsets."""
from __future__ import annotations

import logging
import socket
from typing import Any

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec

from collectors.base import Collector, Observation

logger = logging.getLogger(__name__)


def _err(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class KafkaLagCollector(Collector):
    """Poll consumer groups' lag through one admin client, rebuilt after a failure."""

    kind = "kafka"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, bootstrap_servers: str = "",
                 groups: list[str] | None = None, **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, bootstrap_servers=bootstrap_servers,
                         groups=groups, **options)
        self.bootstrap_servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        self.groups = list(groups or [])
        # Several requests per poll must fit in the runner's budget for the whole poll.
        self.request_ms = max(500, int(timeout * 600))
        self._admin: KafkaAdminClient | None = None

    def _probe(self) -> None:
        """Fail at once when no bootstrap server accepts TCP; the admin client would retry until its timeout."""
        errors = []
        for server in self.bootstrap_servers:
            host, sep, port = server.rpartition(":")
            host, port = (host.strip("[]"), port) if sep else (server, "9092")
            try:
                socket.create_connection((host, int(port)), timeout=self.request_ms / 1000).close()
                return
            except (OSError, ValueError) as exc:
                errors.append(f"{server}: {exc}")
        raise ConnectionError(f"kafka unreachable: {'; '.join(errors) or 'no bootstrap_servers'}")

    def _connect(self) -> KafkaAdminClient:
        if self._admin is None:
            self._probe()
            built: list[Any] = []  # so that a client whose bootstrap failed is closed, not leaked

            def client(**configs: Any) -> Any:
                built.append(KafkaAdminClient.DEFAULT_CONFIG["kafka_client"](**configs))
                return built[-1]

            try:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers, client_id=f"jobdash-{self.name}",
                    request_timeout_ms=self.request_ms, bootstrap_timeout_ms=self.request_ms,
                    reconnect_backoff_max_ms=1000, kafka_client=client)
            except Exception as exc:
                for half_built in built:
                    half_built.close()
                raise ConnectionError(f"kafka {','.join(self.bootstrap_servers)} unreachable: {_err(exc)}") from exc
        return self._admin

    def collect(self) -> Observation:
        admin = self._connect()
        try:
            groups = self.groups or sorted(g["group_id"] for g in admin.list_groups())
        except Exception as exc:
            self._drop_admin()
            servers = ",".join(self.bootstrap_servers)
            raise ConnectionError(f"kafka {servers}: listing groups failed: {_err(exc)}") from exc
        problems: list[str] = []
        committed = self._committed(admin, groups, problems)
        if groups and not committed:
            self._drop_admin()
            raise ConnectionError("no consumer group's offsets could be read: " + "; ".join(problems))
        ends = self._end_offsets(admin, committed, problems)
        members = self._members(admin, list(committed), problems) if committed else 0

        lag_by_group: dict[str, int] = {}
        clamped: list[str] = []
        partitions = 0
        for group, offsets in committed.items():
            total = 0
            for tp, offset in sorted(offsets.items()):
                end = ends.get(tp)
                if end is None:
                    continue
                partitions += 1
                lag = end - offset
                if lag < 0:
                    # A committed offset past the end means the broker's end offset is not exact
                    # (tansu reports base offset of the last batch + 1); never show a negative lag.
                    clamped.append(f"{group}:{tp.topic}[{tp.partition}]")
                    lag = 0
                total += lag
            lag_by_group[group] = total
        if clamped:
            problems.append("committed offset beyond end offset, lag shown as 0: " + ", ".join(clamped))
        return Observation(
            headline={"groups": len(groups), "partitions": partitions, "lag": sum(lag_by_group.values()),
                      "members": members},
            metrics=[("lag", group, float(lag)) for group, lag in lag_by_group.items()],
            degraded="; ".join(problems) or None,
        )

    def _committed(self, admin: KafkaAdminClient, groups: list[str],
                   problems: list[str]) -> dict[str, dict[TopicPartition, int]]:
        """Committed offsets per group; one group failing leaves the others."""
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            try:
                offsets = admin.list_group_offsets(group).get(group, {})
            except Exception as exc:  # noqa: BLE001 - reported as degraded
                problems.append(f"offsets of group {group}: {_err(exc)}")
                continue
            # -1 means nothing committed for that partition.
            committed[group] = {tp: om.offset for tp, om in offsets.items() if om is not None and om.offset >= 0}
        return committed

    def _end_offsets(self, admin: KafkaAdminClient, committed: dict[str, dict[TopicPartition, int]],
                     problems: list[str]) -> dict[TopicPartition, int]:
        """Latest offsets, asked topic by topic so a deleted topic does not hide the others."""
        by_topic: dict[str, set[TopicPartition]] = {}
        for offsets in committed.values():
            for tp in offsets:
                by_topic.setdefault(tp.topic, set()).add(tp)
        ends: dict[TopicPartition, int] = {}
        for topic, tps in sorted(by_topic.items()):
            try:
                found = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}, timeout_ms=self.request_ms)
            except Exception as exc:  # noqa: BLE001 - reported as degraded
                problems.append(f"end offsets of topic {topic}: {_err(exc)}")
                continue
            ends.update({tp: result.offset for tp, result in found.items()})
        return ends

    def _members(self, admin: KafkaAdminClient, groups: list[str], problems: list[str]) -> int | None:
        """Members across the groups, or None when the broker's answer cannot be read."""
        try:
            described = admin.describe_groups(groups)
        except Exception as exc:  # noqa: BLE001 - e.g. tansu's ACL bitfield kafka-python cannot decode
            problems.append(f"group members unknown: describe_groups failed: {_err(exc)}")
            return None
        return sum(len(info.get("members") or []) for info in described.values())

    def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 - closing a client of a dead broker
                logger.debug("closing kafka admin for %s failed", self.bootstrap_servers, exc_info=True)

    def close(self) -> None:
        self._drop_admin()

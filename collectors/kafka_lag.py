"""Kafka: consumer-group lag per partition, from committed and end offsets, with Burrow-style status.

Each poll costs a fixed number of requests whatever the number of partitions: ListGroups (when no
groups are configured), one OffsetFetch for every group (v8), one ListOffsets per partition leader
and one DescribeGroups per coordinator; Metadata only when a partition's leader is not known yet.
"""
from __future__ import annotations

import logging
import socket
import time
from collections import defaultdict
from typing import Any

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.protocol.admin import DescribeGroupsRequest

from collectors.base import Collector, Observation
from collectors.kafka_track import KafkaTracker, Members, headline

logger = logging.getLogger(__name__)


def _err(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class MembersAdmin(KafkaAdminClient):
    """An admin client whose DescribeGroups asks for no ACL operations (protocol v0-v2).

    kafka-python 3 always asks for them (v3+), and fails decoding the bitfield tansu sends back
    ("15 is not a valid ACLOperation"); without them every broker answers members alike.
    """

    def _describe_groups_request(self, group_ids):
        return DescribeGroupsRequest(groups=list(group_ids), include_authorized_operations=False, max_version=2)


class LagAdmin(MembersAdmin):
    """A MembersAdmin that remembers partition leaders from one poll to the next.

    kafka-python asks for Metadata before every ListOffsets to find the leaders; on tansu that
    took half of a 10k-partition poll. The cache answers the first leader lookup of a
    list_partition_offsets call when it knows every partition; the lookup of a retry (after
    NotLeaderForPartition) and any partition not seen before ask the broker, and a failed call
    empties the cache (a deleted topic, a moved leader).
    """

    def __init__(self, **configs: Any):
        super().__init__(**configs)
        self._leaders: dict[TopicPartition, int] = {}
        self._first_lookup = False

    async def _async_list_partition_offsets(self, *args: Any, **kwargs: Any):
        self._first_lookup = True
        try:
            return await super()._async_list_partition_offsets(*args, **kwargs)
        except Exception:
            self._leaders.clear()
            raise

    async def _async_get_leader_for_partitions(self, partitions):
        partitions = set(partitions)
        cached, self._first_lookup = self._first_lookup, False
        if cached and partitions <= self._leaders.keys():
            found: dict[int, set[TopicPartition]] = defaultdict(set)
            for tp in partitions:
                found[self._leaders[tp]].add(tp)
            return found
        found = await super()._async_get_leader_for_partitions(partitions)
        self._leaders.update((tp, leader) for leader, tps in found.items() for tp in tps)
        return found


def _assigned(assignment: Any) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a member's decoded assignment; none when it could not be decoded."""
    if hasattr(assignment, "partitions"):
        return [(tp.topic, tp.partition) for tp in assignment.partitions()]
    if isinstance(assignment, dict):
        return [(topic, p) for topic, parts in assignment.get("assigned_partitions") or [] for p in parts]
    return []


def history_points(state: dict[str, Any]) -> list[tuple[str, str, float]]:
    """History series: lag (messages, seconds) and consume rate per group, lag per group and topic, produce rate per topic."""
    points: list[tuple[str, str, float]] = []
    for g in state["groups"]:
        points.append(("lag", g["group"], float(g["lag"])))
        if g["lag_seconds"] is not None:
            points.append(("lag_seconds", g["group"], float(g["lag_seconds"])))
        if g["consume_rate"] is not None:
            points.append(("consume_rate", g["group"], float(g["consume_rate"])))
    points.extend(("produce_rate", t["topic"], float(t["produce_rate"])) for t in state["topics"]
                  if t["produce_rate"] is not None)
    # Per topic only for groups of several topics (else it is the group's lag). Kafka topic names
    # hold no "/": the label splits at the last one.
    several = {g["group"] for g in state["groups"] if len(g["topics"]) > 1}
    per_topic: dict[str, float] = {}
    for r in state["partitions"]:
        if r["group"] in several:
            label = f"{r['group']}/{r['topic']}"
            per_topic[label] = per_topic.get(label, 0.0) + r["lag"]
    points.extend(("topic_lag", label, lag) for label, lag in per_topic.items())
    return points


class KafkaLagCollector(Collector):
    """Poll consumer groups' lag through one admin client, rebuilt after a failure."""

    kind = "kafka"

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, bootstrap_servers: str = "",
                 groups: list[str] | None = None, window: int = 10, history_interval: float = 60.0,
                 **options: Any):
        super().__init__(name, interval=interval, timeout=timeout, bootstrap_servers=bootstrap_servers,
                         groups=groups, **options)
        self.bootstrap_servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        self.groups = list(groups or [])
        # Thresholds (lag_warn, ..., group_thresholds) come in as options.
        self.tracker = KafkaTracker(window=window, interval=interval, options=options)
        self.history_interval = history_interval
        self._history_at = 0.0
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
                self._admin = LagAdmin(
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
        now = time.time()
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
        members = self._members(admin, list(committed)) if committed else {}
        state = self.tracker.update(now, {g: {(tp.topic, tp.partition): o for tp, o in offsets.items()}
                                          for g, offsets in committed.items()},
                                    {(tp.topic, tp.partition): o for tp, o in ends.items()}, members)
        metrics: list[tuple[str, str, float]] = []
        if now - self._history_at >= self.history_interval:
            self._history_at = now
            metrics = history_points(state)
        return Observation(headline=headline(state), metrics=metrics,
                           records=[("kafka_state", {"source": self.name, "ts": now, **state})],
                           degraded="; ".join(problems) or None)

    def _committed(self, admin: KafkaAdminClient, groups: list[str],
                   problems: list[str]) -> dict[str, dict[TopicPartition, int]]:
        """Committed offsets per group: one request for all groups; if that fails, group by group
        so that one failing group leaves the others."""
        if not groups:
            return {}
        try:
            found = admin.list_group_offsets(groups)
        except Exception:  # noqa: BLE001 - retried one by one below, which names the culprit
            found = {}
            for group in groups:
                try:
                    found.update(admin.list_group_offsets([group]))
                except Exception as exc:  # noqa: BLE001 - reported as degraded
                    problems.append(f"offsets of group {group}: {_err(exc)}")
        # -1 means nothing committed for that partition.
        return {group: {tp: om.offset for tp, om in (offsets or {}).items() if om is not None and om.offset >= 0}
                for group, offsets in found.items()}

    def _end_offsets(self, admin: KafkaAdminClient, committed: dict[str, dict[TopicPartition, int]],
                     problems: list[str]) -> dict[TopicPartition, int]:
        """Latest offsets of every committed partition in one request; if that fails, topic by topic
        so that a deleted topic does not hide the others."""
        tps = {tp for offsets in committed.values() for tp in offsets}
        if not tps:
            return {}
        try:
            found = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}, timeout_ms=self.request_ms)
            return {tp: result.offset for tp, result in found.items()}
        except Exception:  # noqa: BLE001 - retried per topic below
            pass
        ends: dict[TopicPartition, int] = {}
        for topic in sorted({tp.topic for tp in tps}):
            specs = {tp: OffsetSpec.LATEST for tp in tps if tp.topic == topic}
            try:
                found = admin.list_partition_offsets(specs, timeout_ms=self.request_ms)
            except Exception as exc:  # noqa: BLE001 - reported as degraded
                problems.append(f"end offsets of topic {topic}: {_err(exc)}")
                continue
            ends.update({tp: result.offset for tp, result in found.items()})
        return ends

    def _members(self, admin: KafkaAdminClient, groups: list[str]) -> dict[str, Members]:
        """Each group's members and their partitions; unknown, with the reason, when unreadable.

        Members are extra: a broker that cannot describe groups leaves the source up."""
        try:
            described = admin.describe_groups(groups)
        except Exception as exc:  # noqa: BLE001 - the lag is still worth showing
            note = f"members unknown: DescribeGroups failed: {_err(exc)}"
            return {group: Members(None, note=note) for group in groups}
        found = {}
        for group in groups:
            info = described.get(group) or {}
            if info.get("error"):
                found[group] = Members(None, note=f"members unknown: {info['error']}")
                continue
            owners = {}
            for member in info.get("members") or []:
                who = member.get("client_id") or member.get("member_id") or "?"
                for tp in _assigned(member.get("member_assignment")):
                    owners[tp] = (who, member.get("client_host") or "")
            found[group] = Members(len(info.get("members") or []), info.get("group_state") or "", owners)
        return found

    def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 - closing a client of a dead broker
                logger.debug("closing kafka admin for %s failed", self.bootstrap_servers, exc_info=True)

    def close(self) -> None:
        self._drop_admin()

"""Burrow's read API (v3) over jobdash's Kafka state, for scripts written against Burrow.

A Kafka source is a Burrow "cluster". Shapes follow Burrow's documentation: every answer carries
error, message and request; status and lag carry status, complete, partitions, partition_count,
maxlag and totallag; offsets' timestamps are epoch milliseconds. /status lists the partitions that
are not OK, /lag lists them all, as Burrow does. Auth is jobdash's: a session or a bearer token.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from dashboard.store import kafka_queries as q

kafka_burrow = Blueprint("kafka_burrow", __name__, url_prefix="/v3/kafka")


@kafka_burrow.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _answer(message: str, code: int = 200, error: bool = False, **body: Any):
    return jsonify(error=error, message=message, request={"url": request.path, "host": request.host}, **body), code


def _not_found(what: str):
    return _answer(f"{what} not found", 404, error=True)


def _engine():
    return current_app.extensions["jobdash"].engine


def _cluster(name: str) -> bool:
    return current_app.extensions["jobdash"].settings.source("kafka", name) is not None


def _ms(ts: float | None) -> int:
    return int(ts * 1000) if ts else 0


def burrow_partition(p: dict[str, Any], window: int) -> dict[str, Any]:
    """One partition in Burrow's PartitionStatus shape; complete is how full its window of `window` samples is."""
    start = p.get("window_start") or {}
    end_ts = p.get("last_commit") or p.get("updated_at")
    return {
        "topic": p["topic"], "partition": p["partition"], "owner": p.get("host") or "", "client_id": p.get("owner") or "",
        "status": p["status"],
        "start": {"offset": start.get("offset", p["committed"]), "timestamp": _ms(start.get("ts")),
                  "observedAt": _ms(start.get("ts")), "lag": start.get("lag", p["lag"])},
        "end": {"offset": p["committed"], "timestamp": _ms(end_ts), "observedAt": _ms(p.get("updated_at")),
                "lag": p["lag"]},
        "current_lag": p["lag"], "complete": round(min(1.0, p["samples"] / max(1, window)), 3),
    }


def group_status(cluster: str, group: dict[str, Any], partitions: list[dict[str, Any]], window: int,
                 all_partitions: bool):
    """Burrow's ConsumerGroupStatus: the group word is Burrow's (STOP/STALL/REWIND count as ERR)."""
    shaped = [burrow_partition(p, window) for p in partitions]
    worst = max(shaped, key=lambda p: p["current_lag"], default=None)
    return {
        "cluster": cluster, "group": group["group"], "status": group["burrow_status"], "complete": group["complete"],
        "partitions": shaped if all_partitions else [p for p in shaped if p["status"] != "OK"],
        "partition_count": len(shaped), "maxlag": worst, "totallag": group["lag"],
    }


@kafka_burrow.get("")
def clusters():
    names = [s.name for s in current_app.extensions["jobdash"].settings.sources if s.kind == "kafka"]
    return _answer("cluster list returned", clusters=names)


@kafka_burrow.get("/<cluster>")
def cluster(cluster: str):
    if not _cluster(cluster):
        return _not_found("cluster")
    source = current_app.extensions["jobdash"].settings.source("kafka", cluster)
    servers = [s.strip() for s in source.options["bootstrap_servers"].split(",") if s.strip()]
    return _answer("cluster module detail returned", module={"class-name": "jobdash", "servers": servers,
                                                              "offset-refresh": source.interval})


@kafka_burrow.get("/<cluster>/consumer")
def consumers(cluster: str):
    if not _cluster(cluster):
        return _not_found("cluster")
    return _answer("consumer list returned", consumers=sorted(g["group"] for g in q.groups(_engine(), cluster)))


@kafka_burrow.get("/<cluster>/topic")
def topics(cluster: str):
    if not _cluster(cluster):
        return _not_found("cluster")
    return _answer("topic list returned", topics=[t["topic"] for t in q.topics(_engine(), cluster)])


def _status(cluster: str, group: str, all_partitions: bool):
    if not _cluster(cluster):
        return _not_found("cluster or consumer")
    engine = _engine()
    found = q.group(engine, cluster, group)
    if found is None:
        return _not_found("cluster or consumer")
    window = current_app.extensions["jobdash"].settings.source("kafka", cluster).options.get("window", 10)
    status = group_status(cluster, found, q.partitions(engine, cluster, group), window, all_partitions)
    return _answer("consumer status returned", status=status)


@kafka_burrow.get("/<cluster>/consumer/<group>/status")
def status(cluster: str, group: str):
    return _status(cluster, group, all_partitions=False)


@kafka_burrow.get("/<cluster>/consumer/<group>/lag")
def lag(cluster: str, group: str):
    return _status(cluster, group, all_partitions=True)

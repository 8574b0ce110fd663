"""JSON API for Kafka sources: groups, a group's partitions, topics, lag history, and the reset preview."""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.actions import Invalid
from dashboard.actions.kafka_offsets import admin_for, parse_request, plan
from dashboard.store import kafka_queries as q

kafka_api = Blueprint("kafka_api", __name__, url_prefix="/api/kafka")

SPANS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
METRICS = ("lag", "lag_seconds", "consume_rate")


@kafka_api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@kafka_api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


@kafka_api.errorhandler(Invalid)
def invalid(exc: Invalid):
    return jsonify(error=exc.message), exc.status


def _runtime():
    return current_app.extensions["jobdash"]


def kafka_source(name: str):
    source = _runtime().settings.source("kafka", name)
    if source is None:
        abort(404, description=f"no Kafka source named {name!r}")
    return source


def span_arg() -> tuple[str, int]:
    span = request.args.get("span", "1h")
    if span not in SPANS:
        raise Invalid(400, f"span: one of {', '.join(SPANS)}")
    return span, SPANS[span]


@kafka_api.get("/<source>/groups")
def groups(source: str):
    kafka_source(source)
    return jsonify(groups=q.groups(_runtime().engine, source))


@kafka_api.get("/<source>/groups/<group>")
def group(source: str, group: str):
    kafka_source(source)
    engine = _runtime().engine
    found = q.group(engine, source, group)
    if found is None:
        abort(404, description=f"no consumer group {group!r} in Kafka source {source!r}")
    return jsonify(group=found, partitions=q.partitions(engine, source, group))


@kafka_api.get("/<source>/groups/<group>/history")
def history(source: str, group: str):
    """A group's lag (or lag_seconds, consume_rate) over a span, in total and per topic."""
    kafka_source(source)
    metric = request.args.get("metric", "lag")
    if metric not in METRICS:
        raise Invalid(400, f"metric: one of {', '.join(METRICS)}")
    span, seconds = span_arg()
    engine, until = _runtime().engine, time.time()
    found = q.group(engine, source, group)
    topics = {"total": q.lag_history(engine, source, group, metric, seconds, until)}
    names = (found or {}).get("topics") or []
    if metric == "lag" and len(names) == 1:
        topics[names[0]] = topics["total"]  # one topic: its lag is the group's (only that is recorded)
    elif metric == "lag":
        for topic in names:
            topics[topic] = q.lag_history(engine, source, f"{group}/{topic}", "topic_lag", seconds, until)
    return jsonify(group=group, metric=metric, span=span, since=until - seconds, until=until, series=topics)


@kafka_api.get("/<source>/topics")
def topics(source: str):
    kafka_source(source)
    return jsonify(topics=q.topics(_runtime().engine, source))


@kafka_api.get("/<source>/topics/<topic>")
def topic(source: str, topic: str):
    kafka_source(source)
    engine = _runtime().engine
    found = q.topic(engine, source, topic)
    if found is None:
        abort(404, description=f"no topic {topic!r} is consumed by any group of Kafka source {source!r}")
    return jsonify(topic=found, consumers=q.consumers(engine, source, found),
                   partitions=q.partitions(engine, source, topic=topic))


@kafka_api.get("/<source>/groups/<group>/reset-preview")
def reset_preview(source: str, group: str):
    """Per partition, the current and resulting offset and lag of kafka.reset_offsets with these params."""
    src = kafka_source(source)
    req = parse_request({k: request.args.get(k) for k in ("topic", "to", "value", "partitions")})
    try:
        admin = admin_for(src)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, as a gateway would
        return jsonify(error=f"Kafka unreachable: {type(exc).__name__}: {exc}"), 502
    try:
        return jsonify(plan(admin, group, req))
    except Invalid:
        raise
    except Exception as exc:  # noqa: BLE001
        return jsonify(error=f"Kafka answered with an error: {type(exc).__name__}: {exc}"), 502
    finally:
        admin.close()

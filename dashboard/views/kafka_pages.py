"""Kafka pages: consumer groups worst first (live), a group's partitions with lag charts and the
offset reset, and a topic's produce rate against each group's consume rate."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request

from dashboard.actions import REGISTRY
from dashboard.actions.kafka_offsets import TARGETS
from dashboard.store import kafka_queries as q
from dashboard.views.kafka_api import SPANS

kafka_pages = Blueprint("kafka_pages", __name__)

# Status word -> (symbol, what it means): the word is always shown, never colour alone.
STATUSES = {
    "OK": ("●", "consuming and keeping up"),
    "WARN": ("▲", "lag is growing, or over a warning threshold"),
    "ERR": ("✕", "over an error threshold"),
    "REWIND": ("↺", "committed offsets went backwards"),
    "STALL": ("◼", "members are active but the offset does not move"),
    "STOP": ("■", "nobody commits: the offset has not moved for a whole window"),
}
SPARK_W, SPARK_H = 120, 24
SPARK_MAX = 240  # points a sparkline keeps (static/js/kafka_groups.js agrees)
# The blank row static/js/kafka_groups.js clones for a group the page did not render.
BLANK_GROUP = {"group": "", "status": "OK", "rule": "", "reason": "", "lag": 0, "lag_seconds": None,
               "extrapolated": False, "topics": [], "partitions": 0, "members": None, "members_note": None,
               "consume_rate": None, "last_commit": None}


class NotFound(Exception):
    """An unknown source, group or topic: answered with the 404 page saying which."""


@kafka_pages.errorhandler(NotFound)
def not_found(exc: NotFound):
    return render_template("kafka/not_found.html", page="kafka", title="Not found", message=str(exc)), 404


def _runtime():
    return current_app.extensions["jobdash"]


def _sources() -> list:
    return [s for s in _runtime().settings.sources if s.kind == "kafka"]


def _source(name: str):
    source = _runtime().settings.source("kafka", name)
    if source is None:
        raise NotFound(f"There is no Kafka source named {name!r}.")
    return source


def spark_points(values: list[float]) -> str:
    """An SVG polyline's points for values scaled into the sparkline box (static/js/kafka_groups.js agrees)."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = SPARK_W / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{SPARK_H - 1 - (v / top) * (SPARK_H - 2):.1f}" for i, v in enumerate(values))


@kafka_pages.app_template_filter("rate")
def rate(value: float | None) -> str:
    """Messages per second, short (static/js/kafka_common.js agrees)."""
    if value is None:
        return "–"
    return f"{value:,.1f}/s" if value < 100 else f"{value:,.0f}/s"


def _common(source, tab: str, **extra: Any) -> dict[str, Any]:
    status = _runtime().overview_snapshot().get(source.key, {})
    return {"page": "kafka", "source": source.name, "tab": tab, "statuses": STATUSES, "source_status": status,
            "read_only": _runtime().settings.read_only, "socketio_path": request.script_root + "/socket.io",
            "spark": {"w": SPARK_W, "h": SPARK_H}, **extra}


def _groups_page(src):
    engine = _runtime().engine
    rows = q.groups(engine, src.name)
    lines = q.sparklines(engine, src.name, [g["group"] for g in rows])
    for g in rows:
        values = lines.get(g["group"], [])[-SPARK_MAX:]
        g["spark"], g["spark_values"] = spark_points(values), ",".join(f"{v:g}" for v in values)
    return render_template("kafka/groups.html", **_common(src, "groups", title=f"Consumer groups · {src.name}"),
                           groups=rows, blank_group=BLANK_GROUP | {"spark": "", "spark_values": ""})


@kafka_pages.get("/kafka")
def index():
    sources = _sources()
    if len(sources) == 1:
        return _groups_page(sources[0])
    statuses = _runtime().overview_snapshot()
    cards = [{"name": s.name, "state": (statuses.get(s.key) or {}).get("state") or "unknown",
              "headline": (statuses.get(s.key) or {}).get("headline") or {},
              "groups": q.groups(_runtime().engine, s.name)} for s in sources]
    return render_template("kafka/index.html", page="kafka", title="Kafka", cards=cards, statuses=STATUSES)


@kafka_pages.get("/kafka/<source>")
def groups(source: str):
    return _groups_page(_source(source))


@kafka_pages.get("/kafka/<source>/groups/<group>")
def group(source: str, group: str):
    src = _source(source)
    engine = _runtime().engine
    found = q.group(engine, src.name, group)
    if found is None:
        raise NotFound(f"No consumer group {group!r} is known in Kafka source {src.name!r}: it has committed no "
                       "offset jobdash has seen.")
    partitions = q.partitions(engine, src.name, group)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for p in partitions:
        by_topic.setdefault(p["topic"], []).append(p)
    act = REGISTRY["kafka.reset_offsets"]
    return render_template("kafka/group.html", **_common(src, "groups", title=f"{group} · {src.name}"),
                           group=found, by_topic=by_topic, spans=SPANS, targets=TARGETS,
                           action={"confirm": act.confirm, "description": act.description})


@kafka_pages.get("/kafka/<source>/topics")
def topics(source: str):
    src = _source(source)
    return render_template("kafka/topics.html", **_common(src, "topics", title=f"Topics · {src.name}"),
                           topics=q.topics(_runtime().engine, src.name))


@kafka_pages.get("/kafka/<source>/topics/<topic>")
def topic(source: str, topic: str):
    src = _source(source)
    engine = _runtime().engine
    found = q.topic(engine, src.name, topic)
    if found is None:
        raise NotFound(f"No group of Kafka source {src.name!r} consumes a topic {topic!r}.")
    return render_template("kafka/topic.html", **_common(src, "topics", title=f"{topic} · {src.name}"),
                           topic=found, consumers=q.consumers(engine, src.name, found),
                           partitions=q.partitions(engine, src.name, topic=topic))

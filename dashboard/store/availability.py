"""Availability of each source: its state transitions, and time up / degraded / down over a range."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection, Engine

from dashboard.store.models import SourceStatus, SourceTransition

STATES = ("up", "degraded", "down", "unknown")
STRIP_RESOLUTION = 1000


def record_transitions(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Store a transition for every status payload whose state differs from the one before it."""
    keys = {(p["kind"], p["name"]) for p in payloads}
    t = SourceStatus
    last = dict(((k, n), s) for k, n, s in conn.execute(
        select(t.kind, t.name, t.state).where(tuple_(t.kind, t.name).in_(list(keys)))))
    rows = []
    for p in sorted(payloads, key=lambda p: p.get("updated_at") or 0.0):
        key, state = (p["kind"], p["name"]), p.get("state") or "unknown"
        if last.get(key) != state:
            error = None if state == "up" else p.get("last_error")
            rows.append({"kind": key[0], "name": key[1], "at": p.get("updated_at") or 0.0, "state": state,
                         "error": error})
            last[key] = state
    if rows:
        conn.execute(SourceTransition.__table__.insert(), rows)


def segments(engine: Engine, kind: str, name: str, since: float, end: float) -> list[dict[str, Any]]:
    """The source's states over [since, end): consecutive {from, until, state, error}."""
    t = SourceTransition
    where = (t.kind == kind, t.name == name)
    with engine.connect() as conn:
        before = conn.execute(select(t.state, t.error).where(*where, t.at <= since)
                              .order_by(t.at.desc(), t.id.desc()).limit(1)).first()
        changes = conn.execute(select(t.state, t.at, t.error).where(*where, t.at > since, t.at < end)
                               .order_by(t.at, t.id)).all()
    state, error = (before.state, before.error) if before else ("unknown", None)
    out, at = [], since
    for change in changes:
        if change.state != state:
            out.append({"from": at, "until": change.at, "state": state, "error": error})
            at = change.at
        state, error = change.state, change.error
    if end > at:
        out.append({"from": at, "until": end, "state": state, "error": error})
    return out


def availability(engine: Engine, sources: list[tuple[str, str]], since: float, until: float,
                 now: float | None = None) -> list[dict[str, Any]]:
    """Per (kind, name): seconds and share of the range (up to now) in each state, the strip and the incidents."""
    end = min(until, time.time() if now is None else now)
    out = []
    for kind, name in sources:
        segs = segments(engine, kind, name, since, end)
        seconds = dict.fromkeys(STATES, 0.0)
        for s in segs:
            seconds[s["state"] if s["state"] in seconds else "unknown"] += s["until"] - s["from"]
        span = max(end - since, 1e-9)
        incidents = [{"state": s["state"], "from": s["from"], "until": s["until"], "seconds": s["until"] - s["from"],
                      "ongoing": end < until and s is segs[-1], "error": s["error"]}
                     for s in segs if s["state"] in ("down", "degraded")]
        out.append({"source": f"{kind}/{name}", "kind": kind, "name": name, "seconds": seconds,
                    "percent": {k: 100.0 * v / span for k, v in seconds.items()},
                    "segments": _thin(segs, span), "incidents": incidents})
    return out


def _thin(segments: list[dict], span: float) -> list[dict]:
    """The strip: segments shorter than 1/STRIP_RESOLUTION of the range join the one before
    (too narrow to draw; the incidents list keeps every one)."""
    floor, out = span / STRIP_RESOLUTION, []
    for s in segments:
        if out and (s["until"] - s["from"] < floor or out[-1]["state"] == s["state"]):
            out[-1]["until"] = s["until"]
        else:
            out.append({"from": s["from"], "until": s["until"], "state": s["state"]})
    return out

"""Recorded gaps: written by the writer (writes given up) and by collectors (streams down), settled by reconcilers."""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from dashboard.store.gap_models import StoreGap

# Gaps a page still shows: those not yet filled.
SHOWN = ("open", "unfillable")


def write_gaps(conn: Connection, gaps: list[dict[str, Any]]) -> None:
    """Record gaps: kind, source, started_at, ended_at, cause and (when counted) lost."""
    conn.execute(insert(StoreGap), [
        {"kind": g["kind"], "source": g["source"], "started_at": g["started_at"], "ended_at": g["ended_at"],
         "cause": str(g["cause"])[:2000], "lost": g.get("lost"), "state": "open"} for g in gaps])


def write_settled(conn: Connection, settled: list[dict[str, Any]]) -> None:
    """Mark gaps filled or unfillable, with how many items were recovered and a note."""
    for s in settled:
        conn.execute(update(StoreGap).where(StoreGap.id == s["id"]).values(
            state=s["state"], recovered=s.get("recovered"), note=s.get("note"), settled_at=s["at"]))


def open_gaps(engine: Engine, kind_prefix: str, source: str) -> list[dict[str, Any]]:
    """Gaps of a source still to reconcile (kinds starting with `kind_prefix`), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(StoreGap).where(
            StoreGap.kind.startswith(kind_prefix), StoreGap.source == source, StoreGap.state == "open")
            .order_by(StoreGap.started_at)).mappings()
        return [dict(r) for r in rows]


def unfilled_gaps(engine: Engine, kind_prefix: str, source: str, limit: int = 20) -> list[dict[str, Any]]:
    """Gaps a page should mention: still open, or known not to be fillable; newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(StoreGap).where(
            StoreGap.kind.startswith(kind_prefix), StoreGap.source == source, StoreGap.state.in_(SHOWN))
            .order_by(StoreGap.started_at.desc()).limit(limit)).mappings()
        return [dict(r) for r in rows]


HANDLERS = {"store_gap": write_gaps, "store_gap_settled": write_settled}

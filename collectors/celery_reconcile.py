"""Settling what a gap in Celery's events left wrong or missing, from the workers and the result backend.

Two jobs, each poll: tasks the store holds in a non-final state are settled from the backend (or,
when RECEIVED/STARTED on a worker that is gone on two checks, marked LOST); and open gaps are
filled by listing the backend for tasks that ended but were never stored.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from celery import Celery

from collectors.celery_backend import FINAL_STATES, Unlistable, list_ended, lookup

logger = logging.getLogger(__name__)

SETTLE_AFTER = 15.0  # seconds a task must have been quiet before it is checked
RECONCILE_MAX = 100  # backend lookups of stored unfinished tasks per poll
RECHECK_AFTER = 60.0  # seconds before a queued (PENDING/RETRY) task unknown to the backend is asked again
GAP_MARGIN = 60.0  # seconds before a gap whose endings count as inside it (tasks run long, clocks differ)
GAP_AFTER = 5.0  # ... and after it: by then events flow again
LISTED_PER_STEP = 1000


def offline(task: dict[str, Any], now: float) -> bool:
    """The worker rule of celery_queries.workers: silent for two heartbeats and missing two pings."""
    beat = task.get("last_heartbeat")
    if beat is not None and now - beat <= 2 * (task.get("freq") or 2.0):
        return False
    pinged = task.get("pinged_at")
    return pinged is None or now - pinged > 2 * (task.get("poll_interval") or 5.0)


class Reconciler:
    """Per Celery source: what earlier checks found, so a verdict needs two of them."""

    def __init__(self, app: Celery, source: str, interval: float, budget: float):
        self.app, self.source, self.interval, self.budget = app, source, interval, budget
        self._suspects: dict[str, float] = {}  # uuid -> when first found with its worker gone
        self._next_check: dict[str, float] = {}
        self._cursor: Any = None
        self._pass: list[dict[str, Any]] | None = None  # the gaps the running backend scan fills
        self._recovered = 0
        self._resume_from: float | None = None

    # -- stored tasks left unfinished ---------------------------------------------------------
    def settle(self, sink, workers: list[str], replies: dict[str, dict[str, Any]], now: float) -> list[tuple[str, Any]]:
        """Settle tasks stored in a non-final state that no worker holds any more."""
        held: set[str] = set()
        for what in ("active", "reserved", "scheduled"):
            for tasks in replies.get(what, {}).values():
                for task in tasks or []:
                    held.add(task.get("request", task).get("id"))  # scheduled entries wrap the request
        answered = set(replies.get("active", {}))
        records, lookups = [], 0
        # Tasks younger than a few polls may simply have finished in between; their events will come.
        for task in sink.celery_unfinished(self.source, now - max(SETTLE_AFTER, 3 * self.interval)):
            uuid, worker, state = task["uuid"], task["worker"], task["state"]
            if uuid in held or self._next_check.get(uuid, 0.0) > now:
                self._suspects.pop(uuid, None)
                continue
            if lookups >= RECONCILE_MAX:
                break
            lookups += 1
            end = lookup(self.app, uuid)
            if end is not None:
                records.append(self._record(uuid, now, end, "settled from the result backend after a gap in events"))
                continue
            if state not in ("RECEIVED", "STARTED"):  # still queued, as far as anyone knows
                self._next_check[uuid] = now + RECHECK_AFTER
                continue
            if worker in workers and worker not in answered:
                continue  # its worker did not say what it holds: no verdict this time
            if worker in workers:
                why = f"{worker} no longer holds it"
            elif offline(task, now):
                why = f"{worker or 'its worker'} went offline"
            else:
                self._suspects.pop(uuid, None)
                continue
            if self._suspects.setdefault(uuid, now) < now:  # gone on an earlier check too
                self._suspects.pop(uuid)
                records.append(self._record(uuid, now, {"state": "LOST"},
                                            f"{why} and no result backend knows its end"))
        self._forget(now)
        return records

    def _record(self, uuid: str, now: float, values: dict[str, Any], note: str) -> tuple[str, Any]:
        return ("celery_reconcile", {"source": self.source, "uuid": uuid, "at": now, "note": note, **values})

    def _forget(self, now: float) -> None:
        """Keep the memory of earlier checks bounded: an hour of it."""
        for memo in (self._suspects, self._next_check):
            if len(memo) > 10_000:
                for uuid in [u for u, t in memo.items() if abs(now - t) > 3600]:
                    del memo[uuid]

    # -- gaps: tasks that ended while nobody listened -----------------------------------------
    def before_listening(self, sink) -> None:
        """Note where the stored events end, before this process adds any: a restart's gap begins there."""
        self._resume_from = sink.celery_last_seen(self.source)

    def resume(self, connected_at: float | None) -> list[tuple[str, Any]]:
        """Once events flow: the span since the newest task stored before is a gap (jobdash was stopped)."""
        if self._resume_from is None or connected_at is None:
            return []
        started, self._resume_from = self._resume_from, None
        return [("store_gap", {"kind": "celery_event", "source": self.source, "started_at": started,
                               "ended_at": connected_at, "cause": "jobdash was not receiving events (stopped or restarting)"})]

    def fill_gaps(self, sink, now: float) -> list[tuple[str, Any]]:
        """Walk the backend a step at a time for tasks that ended inside an open gap and store them."""
        if self._pass is None:
            self._pass = sink.celery_gaps(self.source)
            self._cursor, self._recovered = None, 0
            if not self._pass:
                self._pass = None
                return []
        records: list[tuple[str, Any]] = []
        since = min(g["started_at"] for g in self._pass) - GAP_MARGIN
        until = max(g["ended_at"] for g in self._pass) + GAP_AFTER
        deadline = time.monotonic() + self.budget
        try:
            while time.monotonic() < deadline:
                found, self._cursor = list_ended(self.app, self._cursor, LISTED_PER_STEP)
                inside = {u: end for u, end in found if end["done_at"] is not None and since <= end["done_at"] <= until}
                stored = sink.celery_stored_states(self.source, list(inside)) if inside else {}
                for uuid, end in inside.items():
                    if stored.get(uuid) not in FINAL_STATES:
                        records.append(self._record(uuid, now, {**end, "recover": True},
                                                    "recovered from the result backend: its events were lost in a gap"))
                        self._recovered += 1
                if self._cursor is None:
                    return records + self._close_pass(now, None)
        except Unlistable as exc:
            return records + self._close_pass(now, f"could not be filled: {exc}")
        except Exception as exc:  # noqa: BLE001 - the backend being down: try again next poll
            logger.info("celery/%s: listing the result backend failed: %s", self.source, exc)
        return records

    def _close_pass(self, now: float, unfillable: str | None) -> list[tuple[str, Any]]:
        gaps, self._pass = self._pass or [], None
        expires = self.app.conf.result_expires
        expires = expires.total_seconds() if isinstance(expires, timedelta) else expires
        out = []
        for gap in gaps:
            note, state = unfillable, "unfillable" if unfillable else "filled"
            if not unfillable and expires and gap["started_at"] < now - expires:
                note, state = f"could be filled only in part: the backend forgets results after {expires:g} s", "unfillable"
            out.append(("store_gap_settled", {"id": gap["id"], "state": state, "at": now, "recovered": self._recovered,
                                              "note": note or f"filled from the result backend ({self._recovered} tasks recovered)"}))
        return out

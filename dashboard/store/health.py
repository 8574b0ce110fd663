"""The writer's view of the store: whether it commits, and what it had to give up."""
from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy.exc import DatabaseError, DBAPIError, DisconnectionError, OperationalError


def store_unavailable(exc: BaseException) -> bool:
    """True when the store itself cannot write (disk full, read-only, gone, corrupt), as opposed to
    one write being wrong: the first is held and retried, the second dropped alone."""
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    # A bare DatabaseError (not Integrity/Data/Programming...) is SQLite's "malformed" or "not a database".
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or type(exc) is DatabaseError)


def reason(exc: BaseException) -> str:
    """The driver's own words, one line: 'database or disk is full'."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:500]


class StoreHealth:
    """Down since when and why; thread-safe; transitions reported so they are logged once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error: str | None = None
        self.down_since: float | None = None

    def down(self, exc: BaseException) -> bool:
        with self._lock:
            first = self.down_since is None
            self.error = reason(exc)
            self.down_since = self.down_since or time.time()
            return first

    def up(self) -> bool:
        with self._lock:
            was_down = self.down_since is not None
            self.error = self.down_since = None
            return was_down

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"ok": self.down_since is None, "error": self.error, "down_since": self.down_since}


def _origin(payload: Any) -> str:
    """The source a payload belongs to, as far as the writer can tell: ("name", event), {"source": ...}, .source."""
    if isinstance(payload, tuple) and payload and isinstance(payload[0], str):
        return payload[0]
    if isinstance(payload, dict):
        return str(payload.get("source") or "")
    return str(getattr(payload, "source", "") or "")


class GapBook:
    """Writes given up, per kind and source, until they are recorded as gaps in the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], dict[str, Any]] = {}
        self.given_up = 0

    def give_up(self, kind: str, payloads: list[Any], cause: str) -> None:
        now = time.time()
        with self._lock:
            self.given_up += len(payloads)
            for payload in payloads:
                key = (kind, _origin(payload))
                gap = self._open.setdefault(key, {"kind": kind, "source": key[1], "started_at": now, "lost": 0,
                                                  "cause": f"given up: {cause}"})
                gap["lost"] += 1
                gap["ended_at"] = now

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            gaps, self._open = list(self._open.values()), {}
            return gaps

    def put_back(self, gaps: list[dict[str, Any]]) -> None:
        with self._lock:
            for gap in gaps:
                seen = self._open.get((gap["kind"], gap["source"]))
                if seen is None:
                    self._open[(gap["kind"], gap["source"])] = gap
                else:
                    seen.update(started_at=min(seen["started_at"], gap["started_at"]), lost=seen["lost"] + gap["lost"])

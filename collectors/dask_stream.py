"""Dask's task stream as plain records: Dask's equivalent of Celery's event stream.

The scheduler's TaskStreamPlugin (registered by the first `get_task_stream` call) keeps each
task that finished or erred in a bounded buffer, numbered by a counter that only grows; a
reader asks for everything from its own index on. Records carry pickled exception objects
too: only their text forms are kept, so nothing from a watched system is ever unpickled.
"""
from __future__ import annotations

import json
from typing import Any

from dask.utils import key_split

KEY_MAX = 500  # characters of a key's text kept (the store's column holds 512)
TEXT_MAX = 64 * 1024  # exception and traceback text kept, each


def key_text(key: Any) -> str:
    """A Dask key as people read it: a string key as is, a tuple key as its repr."""
    return key if isinstance(key, str) else repr(key)


def key_json(key: Any) -> str:
    """A Dask key as JSON (tuples become lists), to hand it back to the scheduler later."""
    return json.dumps(key, default=str)


def key_from_json(raw: str) -> Any:
    """The key key_json stored: lists become tuples again."""
    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value
    return tuples(json.loads(raw))


def clip(text: Any, limit: int) -> str | None:
    if text is None:
        return None
    text = text if isinstance(text, str) else str(text)
    return text if len(text) <= limit else text[:limit] + f"\n… cut by jobdash at {limit:,} characters"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def task_record(raw: dict[str, Any]) -> dict[str, Any] | None:
    """One task-stream entry as a store record; None for an entry without a usable key."""
    key = raw.get("key")
    if key is None:
        return None
    starts = [s for s in raw.get("startstops") or () if isinstance(s, dict)]
    computes = [s for s in starts if s.get("action") == "compute"] or starts
    start = min((_number(s.get("start")) for s in computes if _number(s.get("start")) is not None), default=None)
    stop = max((_number(s.get("stop")) for s in computes if _number(s.get("stop")) is not None), default=None)
    erred = raw.get("status") == "error"
    return {
        # The JSON form is needed only to hand an erred key back to the scheduler.
        "key": clip(key_text(key), KEY_MAX), "raw": key_json(key) if erred else None,
        "prefix": clip(key_split(key), 255),
        "worker": clip(raw.get("worker"), 255), "erred": erred, "start": start, "stop": stop,
        "duration": stop - start if start is not None and stop is not None else None,
        "exception": clip(raw.get("exception_text"), TEXT_MAX) if erred else None,
        "traceback": clip(raw.get("traceback_text"), TEXT_MAX) if erred else None,
    }

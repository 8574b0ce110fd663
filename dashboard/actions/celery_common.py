"""What every Celery control shares: one app per source, and reading the workers' replies."""
from __future__ import annotations

import threading
from typing import Any

from celery import Celery

from collectors.celery_client import celery_app
from dashboard.actions.registry import ActionResult
from dashboard.config import SourceConfig

_apps: dict[tuple, Celery] = {}
_lock = threading.Lock()


def app_for(source: SourceConfig) -> Celery:
    """The Celery app for a source, built once: its broker connection pool is reused per click."""
    options = source.options
    key = (source.key, repr(sorted(options.items())), source.timeout)
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = _apps[key] = celery_app(f"actions-{source.name}", options["broker"], options.get("backend"),
                                             source.timeout, options.get("transport_options"))
        return app


def replies_result(replies: list[dict[str, Any]] | None, expected: list[str] | None, done: str) -> ActionResult:
    """Turn control replies ([{worker: {"ok"|"error": text}}]) into a per-worker result.

    With `expected` workers, each must answer ok; without, at least one must and none may err.
    """
    per_worker: dict[str, str] = {}
    for reply in replies or []:
        for worker, answer in reply.items():
            if isinstance(answer, dict) and "error" in answer:
                per_worker[worker] = f"error: {answer['error']}"
            elif isinstance(answer, dict) and "ok" in answer:
                per_worker[worker] = f"ok: {answer['ok']}"
            else:
                per_worker[worker] = f"ok: {answer}"
    for worker in expected or []:
        per_worker.setdefault(worker, "no reply")
    failed = sorted(w for w, text in per_worker.items() if not text.startswith("ok"))
    if not per_worker:
        return ActionResult(False, "no worker replied; is any worker online?", {"workers": {}})
    if failed:
        return ActionResult(False, f"{done} failed on {', '.join(failed)}", {"workers": per_worker})
    return ActionResult(True, f"{done} ({len(per_worker)} worker{'s' if len(per_worker) != 1 else ''} confirmed)",
                        {"workers": per_worker})

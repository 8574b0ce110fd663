"""The banner every page shows while the store cannot write: why, since when, what is held or lost."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app


def store_problem() -> dict[str, Any] | None:
    """The writer's health when it is not committing (or not running), else None."""
    runtime = current_app.extensions.get("jobdash")
    if runtime is None:
        return None
    health = runtime.writer.health()
    if health["ok"] and health["running"]:
        return None
    return {**health, "error": health["error"] or "the store writer is not running"}


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"store_problem": store_problem()})

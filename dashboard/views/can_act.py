"""The `can_act` template global: which controls the current user may use now (to show or hide their buttons)."""
from __future__ import annotations

from flask import Flask, current_app

from dashboard.actions import REGISTRY, may_perform
from dashboard.auth.web import current_user


class CanAct:
    """Truthy when the user may use some action now; can_act("name") for one."""

    def __call__(self, name: str) -> bool:
        return may_perform(current_app.extensions["jobdash"].settings, name, current_user())

    def __bool__(self) -> bool:
        return any(self(name) for name in REGISTRY)


def init_app(app: Flask) -> None:
    """Expose `can_act` to every template (here, not in auth: auth knows no controls)."""
    app.context_processor(lambda: {"can_act": CanAct()})

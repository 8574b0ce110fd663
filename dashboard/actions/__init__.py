"""Controls of watched systems: a registry of actions and the one audited way to run them.

Add an action in the module of its watched system (consul_services.py, ...):

    @action("consul.maintenance", role="admin", params={"enable": Param(bool)}, description="...")
    def maintenance(runtime, source, target, params) -> ActionResult: ...

and import that module below. The function returns ActionResult(ok, message, details); it may
raise Invalid(status, message) to refuse once it has looked (e.g. a task in the wrong state),
provided it changed nothing. perform() is the only caller: every channel (HTTP, Socket.IO) goes
through it, so read-only mode, roles, input checks, confirmation, the timeout and the audit row
apply to every action alike.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from dashboard.actions.registry import REGISTRY, Action, ActionResult, Invalid, Param, action
from dashboard.actions.registry import check_params, check_target, find_source
from dashboard.auth.users import User, has_role
from dashboard.config import Settings
from dashboard.store import WriteError
from dashboard.store.audit_log import audit_row

# Each module registers its actions when imported.
from dashboard.actions import celery_tasks, celery_workers, consul_services  # noqa: F401
from dashboard.actions import dask_controls  # noqa: F401
from dashboard.actions import kafka_offsets  # noqa: F401

logger = logging.getLogger(__name__)

READ_ONLY = "jobdash is read-only: actions are turned off (read_only / JOBDASH_READ_ONLY)"


@dataclass(frozen=True)
class Outcome:
    """What came of asking for an action: ok | failed | refused, with the HTTP status to answer."""

    outcome: str
    status: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body = {"ok": self.outcome == "ok", "outcome": self.outcome, "status": self.status}
        body["message" if self.outcome == "ok" else "error"] = self.message
        if self.details:
            body["details"] = self.details
        return body


def may_perform(settings: Settings, name: str, user: User | None) -> bool:
    """Whether `user` could run `name` now (for showing its button)."""
    act = REGISTRY.get(name)
    return act is not None and user is not None and not settings.read_only and has_role(user.role, act.role)


def perform(runtime, name: str, source: Any, target: Any, params: Any, user: User | None,
            via: str = "http") -> Outcome:
    """Check, run and audit one action; the audit row is committed before this returns."""
    if user is None:
        return Outcome("refused", 401, "login required")  # nobody to audit: never got past the door
    act = REGISTRY.get(name)
    try:
        if act is None:
            raise Invalid(404, f"unknown action {name!r}")
        if runtime.settings.read_only:
            raise Invalid(403, READ_ONLY)
        if not has_role(user.role, act.role):
            raise Invalid(403, f"{name} needs the {act.role} role; {user.name} is {user.role}")
        source_config = find_source(runtime.settings, act, source)
        target = check_target(target)
        checked = check_params(act, params)
        if not runtime.writer.running:
            raise Invalid(503, "the audit log cannot be written now, so nothing is done")
    except Invalid as exc:
        return refuse(runtime, name, source, target, params, user, via, exc.status, exc.message)

    try:
        result, status = _run(act, runtime, source_config, target, checked)
    except Invalid as exc:
        return refuse(runtime, name, source, target, params, user, via, exc.status, exc.message)
    outcome = Outcome("ok" if result.ok else "failed", status, result.message, result.details)
    # The details (e.g. what was deregistered, so it can be put back) are kept with the parameters.
    audited = {**(params or {}), "recorded": result.details} if result.details else params
    _audit(runtime, user, via, name, source_config.key, target, audited, outcome)
    return outcome


def refuse(runtime, name: Any, source: Any, target: Any, params: Any, user: User, via: str, status: int,
           reason: str) -> Outcome:
    """Audit a refusal (nothing was done) and return it."""
    outcome = Outcome("refused", status, reason)
    source_key = source if isinstance(source, str) else ""
    act = REGISTRY.get(name) if isinstance(name, str) else None
    if act is not None and source_key and "/" not in source_key:
        source_key = f"{act.kind}/{source_key}"
    _audit(runtime, user, via, str(name), source_key, target if isinstance(target, str) else repr(target), params,
           outcome)
    return outcome


def _run(act: Action, runtime, source, target: str, params: dict[str, Any]) -> tuple[ActionResult, int]:
    """Call the action in a thread of its own, so that a hung watched system cannot hang the caller.

    Raises the Invalid the action raised, if it refused.
    """
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["result"] = act.fn(runtime, source, target, params)
        except Invalid as exc:
            box["refused"] = exc
        except Exception as exc:  # any failure of the watched system or the client is a failed action
            logger.warning("action %s on %s failed", act.name, source.key, exc_info=True)
            box["result"] = ActionResult(False, f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=call, name=f"action-{act.name}", daemon=True)
    thread.start()
    thread.join(act.timeout)
    if thread.is_alive():
        return ActionResult(False, f"no answer within {act.timeout:g} s; whether it took effect is unknown"), 504
    if "refused" in box:
        raise box["refused"]
    result = box["result"]
    return result, 200 if result.ok else 502


def _audit(runtime, user: User, via: str, name: str, source: str, target: str, params: Any, outcome: Outcome) -> None:
    row = audit_row(user=user.name, role=user.role, via=via, action=name, source=source, target=target,
                    params=params, outcome=outcome.outcome, error=None if outcome.outcome == "ok" else outcome.message)
    try:
        runtime.writer.write("audit", row)
    except WriteError:
        # Too late to refuse: say so loudly, so the gap in the audit log is known.
        logger.critical("AUDIT ROW NOT WRITTEN: %s", row)
        raise


__all__ = ["REGISTRY", "Action", "ActionResult", "Invalid", "Outcome", "Param", "action", "may_perform", "perform",
           "refuse"]

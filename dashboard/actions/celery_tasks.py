"""Celery task controls: retry with the original arguments, revoke, terminate, rate and time limits."""
from __future__ import annotations

import ast
import re
import time
import uuid as uuidlib
from typing import Any

from dashboard.actions.celery_common import app_for, replies_result
from dashboard.actions.registry import ActionResult, Invalid, Param, action
from dashboard.config import SourceConfig
from dashboard.store import celery_queries

RETRYABLE = ("FAILURE", "REVOKED")
BULK_MAX = 500
SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGUSR1")
RATE_RE = re.compile(r"^(0|\d+(\.\d+)?(/[smh])?)$")


def _has_bytes(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, dict):
        return any(_has_bytes(k) or _has_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_bytes(v) for v in value)
    return False


def _literal(text: str | None, expected: type, what: str) -> Any:
    value = ast.literal_eval(text) if text not in (None, "") else expected()
    if expected is tuple and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, expected):
        raise ValueError(f"{what} is a {type(value).__name__}, not a {expected.__name__}")
    # Celery's saferepr writes bytes as their hex (b'\xff\xfe' shows as b'fffe'): not the call.
    if _has_bytes(value):
        raise ValueError(f"{what} holds bytes, which Celery's repr does not keep")
    return value


def original_call(app, task: dict[str, Any]) -> tuple[tuple, dict, str]:
    """The task's args, kwargs and where they came from: its events, else the result backend.

    Events carry reprs that Celery cuts at 1024 characters; a cut or non-literal repr is never
    re-sent as if it were the call. `result_extended` backends keep the whole call.
    """
    if not task["args_truncated"]:
        try:
            return _literal(task["args"], tuple, "args"), _literal(task["kwargs"], dict, "kwargs"), "events"
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass  # not plain literals (e.g. a datetime's repr): the backend may have the real values
    if app.conf.result_backend:
        meta = app.AsyncResult(task["uuid"])._get_task_meta() or {}
        if meta.get("args") is not None and meta.get("kwargs") is not None:
            return tuple(meta["args"]), dict(meta["kwargs"]), "result backend"
    why = ("were truncated by Celery" if task["args_truncated"]
           else "are not plain Python literals (or hold bytes, which Celery's repr alters)")
    raise Invalid(409, f"the stored arguments of task {task['uuid']} {why} and no full copy exists "
                       "(a result backend with result_extended=True keeps one); nothing was sent")


def _resend(runtime, source: SourceConfig, task: dict[str, Any], queue: str | None) -> dict[str, Any]:
    """Send a copy of a failed or revoked task; record which task it retries."""
    if task["state"] not in RETRYABLE:
        raise Invalid(409, f"task {task['uuid']} is {task['state']}; only {' or '.join(RETRYABLE)} tasks can be retried")
    if not task["name"]:
        raise Invalid(409, f"task {task['uuid']} has no known name (its task-received event was never seen)")
    queue = queue or task["queue"]
    if not queue:
        raise Invalid(409, f"the queue of task {task['uuid']} is unknown (its producer sends no task-sent events); "
                           "give the queue to send the retry to")
    app = app_for(source)
    args, kwargs, origin = original_call(app, task)
    new_id = str(uuidlib.uuid4())
    routing_key = task["routing_key"] if queue == task["queue"] and task["routing_key"] else queue
    app.send_task(task["name"], args=args, kwargs=kwargs, task_id=new_id, queue=queue, routing_key=routing_key)
    # The new task's own events merge into this row by uuid, whichever lands first.
    runtime.writer.write("celery_retry_link", {"source": source.name, "uuid": new_id, "retry_of": task["uuid"],
                                               "name": task["name"], "queue": queue, "routing_key": routing_key,
                                               "at": time.time()})
    return {"retried": task["uuid"], "new_task": new_id, "name": task["name"], "queue": queue, "arguments_from": origin}


def _task(runtime, source: SourceConfig, task_id: str) -> dict[str, Any]:
    task = celery_queries.task_detail(runtime.engine, source.name, task_id)
    if task is None:
        raise Invalid(404, f"no task {task_id!r} in Celery source {source.name!r}")
    return task


@action("celery.retry", confirm=True, params={"queue": Param(str, required=False, max_length=255)},
        description="Send a failed or revoked task again, with its original name, arguments and queue.")
def retry(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    sent = _resend(runtime, source, _task(runtime, source, target), params["queue"])
    return ActionResult(True, f"re-sent {sent['name']} as {sent['new_task']} on queue {sent['queue']}", sent)


def _bulk(runtime, source: SourceConfig, tasks: list[dict[str, Any]], queue: str | None) -> ActionResult:
    results, failures = [], 0
    for task in tasks:
        try:
            results.append(_resend(runtime, source, task, queue))
        except Invalid as exc:
            failures += 1
            results.append({"retried": task["uuid"], "error": exc.message})
    sent = len(tasks) - failures
    return ActionResult(failures == 0, f"re-sent {sent} of {len(tasks)} tasks" + (f"; {failures} refused" if failures else ""),
                        {"tasks": results})


@action("celery.retry_selected", confirm=True,
        params={"uuids": Param(str, max_length=BULK_MAX * 40), "queue": Param(str, required=False, max_length=255)},
        description=f"Retry the listed tasks (comma-separated ids, at most {BULK_MAX}); target is a label for the audit.")
def retry_selected(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    ids = [i.strip() for i in params["uuids"].split(",") if i.strip()]
    if not ids or len(ids) > BULK_MAX:
        raise Invalid(400, f"uuids must list between 1 and {BULK_MAX} task ids")
    return _bulk(runtime, source, [_task(runtime, source, i) for i in ids], params["queue"])


@action("celery.retry_failures", confirm=True,
        params={"since": Param(float), "until": Param(float), "expected": Param(int),
                "queue": Param(str, required=False, max_length=255)},
        description="Retry every failure of task name `target` between since and until (epoch seconds). "
                    "`expected` is the count the user was shown; a different count refuses.")
def retry_failures(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    count, tasks = celery_queries.failures(runtime.engine, source.name, target, params["since"], params["until"], BULK_MAX)
    if count != params["expected"]:
        raise Invalid(409, f"{count} failures match now, not the {params['expected']} you confirmed; review and confirm again")
    if count > BULK_MAX:
        raise Invalid(409, f"{count} failures match; narrow the time range to at most {BULK_MAX}")
    return _bulk(runtime, source, tasks, params["queue"])


@action("celery.revoke", confirm=True, description="Revoke a task: workers discard it if it has not started.")
def revoke(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    replies = app_for(source).control.revoke(target, reply=True, timeout=source.timeout / 2)
    return replies_result(replies, None, f"revoked task {target}")


@action("celery.terminate", confirm=True, params={"signal": Param(str, required=False, default="SIGTERM", choices=SIGNALS)},
        description="Revoke a task and kill the worker process running it with the chosen signal.")
def terminate(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    replies = app_for(source).control.revoke(target, terminate=True, signal=params["signal"], reply=True,
                                             timeout=source.timeout / 2)
    return replies_result(replies, None, f"terminated task {target} with {params['signal']}")


@action("celery.rate_limit", params={"rate": Param(str, max_length=32)},
        description="Set the rate limit of task name `target` on every worker, e.g. 10/m; 0 removes it.")
def rate_limit(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    rate = params["rate"].strip()
    if not RATE_RE.match(rate):
        raise Invalid(400, f"rate must look like 10, 10/s, 2.5/m or 100/h (0 removes the limit); got {rate!r}")
    replies = app_for(source).control.rate_limit(target, rate, reply=True, timeout=source.timeout / 2)
    return replies_result(replies, None, f"rate limit of {target} set to {rate}")


@action("celery.time_limit", params={"soft": Param(float), "hard": Param(float)},
        description="Set the soft and hard time limits (seconds) of task name `target` on every worker.")
def time_limit(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    soft, hard = params["soft"], params["hard"]
    if not 0 < soft <= hard:
        raise Invalid(400, f"limits must satisfy 0 < soft <= hard; got soft={soft:g}, hard={hard:g}")
    replies = app_for(source).control.time_limit(target, soft=soft, hard=hard, reply=True, timeout=source.timeout / 2)
    return replies_result(replies, None, f"time limits of {target} set to soft {soft:g} s, hard {hard:g} s")

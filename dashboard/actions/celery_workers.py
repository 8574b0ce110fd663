"""Celery worker controls: drain and resume, pool size, autoscale, pool restart, shutdown."""
from __future__ import annotations

import time

from dashboard.actions.celery_common import app_for, replies_result
from dashboard.actions.registry import ActionResult, Invalid, Param, action
from dashboard.config import SourceConfig
from dashboard.store import celery_queries


def _timeout(source: SourceConfig) -> float:
    return source.timeout / 2


def _known_worker(runtime, source: SourceConfig, hostname: str) -> dict:
    for worker in celery_queries.workers(runtime.engine, source.name):
        if worker["hostname"] == hostname:
            return worker
    raise Invalid(404, f"no worker {hostname!r} in Celery source {source.name!r}")


def _on_worker(runtime, source: SourceConfig, hostname: str, call: str, done: str, *args, **kwargs) -> ActionResult:
    """Broadcast one control command to a single worker and wait for its reply."""
    _known_worker(runtime, source, hostname)
    control = app_for(source).control
    replies = getattr(control, call)(*args, destination=[hostname], reply=True, timeout=_timeout(source), **kwargs)
    return replies_result(replies, [hostname], done)


def _per_queue(source: SourceConfig, target: str, command: str, queues: list[str]) -> tuple[bool, dict[str, str]]:
    """Send `command` (cancel_consumer or add_consumer) for each queue to one worker; its reply per queue."""
    control = app_for(source).control
    details, ok = {}, True
    for name in queues:
        result = replies_result(getattr(control, command)(name, destination=[target], reply=True, timeout=_timeout(source)),
                                [target], f"{command} {name}")
        details[name] = result.details["workers"].get(target, "no reply")
        ok = ok and result.ok
    return ok, details


@action("celery.drain", description="Stop a worker taking new tasks: cancel its consumers for every queue. "
                                     "Running tasks finish; resume undoes it.")
def drain(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    _known_worker(runtime, source, target)
    control = app_for(source).control
    queues = (control.inspect(destination=[target], timeout=_timeout(source)).active_queues() or {}).get(target)
    if queues is None:
        return ActionResult(False, f"{target} did not say which queues it consumes; nothing was changed")
    names = sorted(q["name"] for q in queues)
    if not names:
        return ActionResult(False, f"{target} consumes no queue: already drained?")
    ok, details = _per_queue(source, target, "cancel_consumer", names)
    runtime.writer.write("celery_worker_drain", {"source": source.name, "hostname": target, "drained": names})
    message = f"drained {target}: stopped consuming {', '.join(names)}" if ok else f"draining {target} failed in part"
    return ActionResult(ok, message, {"queues": names, "replies": details})


@action("celery.resume", params={"queues": Param(str, required=False, default="", max_length=2000)},
        description="Make a drained worker consume again: the queues it was drained of, or those listed (comma-separated).")
def resume(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    worker = _known_worker(runtime, source, target)
    names = [q.strip() for q in params["queues"].split(",") if q.strip()] or (worker.get("info") or {}).get("drained") or []
    if not names:
        raise Invalid(409, f"{target} was not drained by jobdash; name the queues to consume")
    ok, details = _per_queue(source, target, "add_consumer", names)
    if ok:
        runtime.writer.write("celery_worker_drain", {"source": source.name, "hostname": target, "drained": []})
    return ActionResult(ok, f"{target} consumes {', '.join(names)} again" if ok else f"resuming {target} failed in part",
                        {"queues": names, "replies": details})


@action("celery.pool_grow", params={"n": Param(int, required=False, default=1)},
        description="Add n processes to a worker's pool (pool_shrink undoes it).")
def pool_grow(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    return _resize(runtime, source, target, "pool_grow", "grew", params["n"])


@action("celery.pool_shrink", params={"n": Param(int, required=False, default=1)},
        description="Remove n processes from a worker's pool (pool_grow undoes it).")
def pool_shrink(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    return _resize(runtime, source, target, "pool_shrink", "shrank", params["n"])


def _resize(runtime, source: SourceConfig, target: str, command: str, verb: str, n: int) -> ActionResult:
    if not 1 <= n <= 64:
        raise Invalid(400, "n must be between 1 and 64")
    return _on_worker(runtime, source, target, command, f"{verb} the pool of {target} by {n}", n)


@action("celery.autoscale", params={"max": Param(int), "min": Param(int)},
        description="Set a worker's autoscale bounds (needs a worker started with --autoscale).")
def autoscale(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    low, high = params["min"], params["max"]
    if not 0 <= low <= high <= 256:
        raise Invalid(400, f"bounds must satisfy 0 <= min <= max <= 256; got min={low}, max={high}")
    return _on_worker(runtime, source, target, "autoscale", f"autoscale of {target} set to {low}..{high}", high, low)


@action("celery.pool_restart", confirm=True,
        description="Restart a worker's pool processes (needs worker_pool_restarts enabled on the worker).")
def pool_restart(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    return _on_worker(runtime, source, target, "pool_restart", f"restarted the pool of {target}")


@action("celery.shutdown", confirm=True,
        description="Shut a worker down warmly: it finishes running tasks, then exits. Only its supervisor restarts it.")
def shutdown(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    _known_worker(runtime, source, target)
    control = app_for(source).control
    # A worker raises WorkerShutdown instead of replying: the proof is that it stops answering.
    control.shutdown(destination=[target])
    deadline = time.monotonic() + source.timeout * 3
    while time.monotonic() < deadline:
        if target not in (control.inspect(destination=[target], timeout=_timeout(source)).ping() or {}):
            return ActionResult(True, f"{target} shut down: it no longer answers", {"workers": {target: "stopped"}})
    return ActionResult(False, f"{target} still answers {source.timeout * 3:g} s after being asked to shut down "
                               "(long tasks finish first)", {"workers": {target: "still running"}})

"""Dask controls through the scheduler's own RPCs: retry erred keys, retire (drain) a worker,
restart a worker through its nanny. Each checks what the scheduler holds first and refuses,
changing nothing, when the control could not do what it says."""
from __future__ import annotations

import threading
import time
from typing import Any

from collectors.dask_link import DaskLink
from collectors.dask_stream import key_from_json
from dashboard.actions.registry import ActionResult, Invalid, Param, action
from dashboard.config import SourceConfig
from dashboard.store import dask_queries

MAX_KEYS = 1000
# A control's scheduler call may take longer than a poll's (a busy scheduler, a loaded machine), within
# the action's own 30 s; connecting still fails within the source's timeout.
CALL_DEADLINE = 20.0
RETIRE_DEADLINE = 80.0  # moving a worker's data: within dask.retire_worker's 90 s
_links: dict[tuple, DaskLink] = {}
_lock = threading.Lock()  # guards _links only: connecting happens in the link, under its own deadline


def link_for(source: SourceConfig) -> DaskLink:
    """A link to the source's scheduler, kept between clicks; its client is rebuilt once it lost the scheduler."""
    key = (source.key, source.options["address"])
    with _lock:
        link = _links.get(key)
        if link is None:
            link = _links[key] = DaskLink(source.options["address"], source.timeout, CALL_DEADLINE)
    if link.lost():
        link.drop()
    return link


# -- retry ---------------------------------------------------------------------------------------

def _states(link: DaskLink, keys: list[Any]) -> list[str | None]:
    answer = link.run(link.client.scheduler.get_task_status, keys=keys)
    return [answer.get(k) for k in keys]


def _retry(runtime, source: SourceConfig, texts: list[str], known: dict[str, dict], strict: bool) -> ActionResult:
    """Send erred keys back to the scheduler; with `strict`, any key that cannot be retried refuses all."""
    link = link_for(source)
    keys = [key_from_json(known[t]["raw"]) if t in known else t for t in texts]
    states = _states(link, keys)
    problems: dict[str, str] = {}
    for text, state in zip(texts, states):
        if state is None:
            problems[text] = ("no client holds it any more, so the scheduler has forgotten it" if text in known
                              else "unknown to jobdash and to the scheduler")
        elif state != "erred":
            problems[text] = f"not erred: the scheduler has it as {state}"
    forgotten = [t for t, why in problems.items() if why.startswith("no client")]
    if forgotten:
        runtime.writer.write("dask_retried", {"source": source.name, "keys": forgotten, "state": "forgotten",
                                              "at": time.time()})
    if problems and (strict or len(problems) == len(texts)):
        if len(texts) == 1 and texts[0] not in known and states[0] is None:
            raise Invalid(404, f"no erred task {texts[0]!r} in Dask source {source.name!r}")
        listed = "; ".join(f"{k}: {why}" for k, why in list(problems.items())[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise Invalid(409, f"nothing retried: {listed}{more}")
    chosen = [(t, k) for t, k, s in zip(texts, keys, states) if s == "erred"]
    # Marked before the scheduler hears of it: a retry that succeeds at once must end in memory.
    mark = {"source": source.name, "keys": [t for t, _ in chosen], "state": "retried", "at": time.time()}
    runtime.writer.write("dask_retried", mark)
    try:
        link.run(link.client.scheduler.retry, keys=[k for _, k in chosen])
    except Exception:
        runtime.writer.write("dask_retried", {**mark, "state": "erred", "at": time.time()})
        raise
    after = _states(link, [k for _, k in chosen])
    replies = {t: f"ok: back to {state}" for (t, _), state in zip(chosen, after)}
    replies |= {t: f"skipped: {why}" for t, why in problems.items()}
    n = len(chosen)
    return ActionResult(True, f"sent {n} erred task{'s' if n != 1 else ''} back to the scheduler"
                              + (f"; skipped {len(problems)}" if problems else ""),
                        {"replies": replies, "retried": [t for t, _ in chosen]})


@action("dask.retry", description="Run an erred task again (the scheduler's retry); its erred dependencies go too.")
def retry(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    return _retry(runtime, source, [target], dask_queries.erred_keys(runtime.engine, source.name, keys=[target]), True)


@action("dask.retry_selected", confirm=True, params={"keys": Param(list, max_length=MAX_KEYS)},
        description=f"Run the selected erred tasks again (at most {MAX_KEYS}); refused whole if any cannot be retried.")
def retry_selected(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    texts = list(dict.fromkeys(params["keys"]))
    if not texts:
        raise Invalid(400, "keys: select at least one erred task")
    return _retry(runtime, source, texts, dask_queries.erred_keys(runtime.engine, source.name, keys=texts), True)


@action("dask.retry_prefix", confirm=True,
        description=f"Run again every erred task of a prefix that jobdash has seen (at most {MAX_KEYS}); "
                    "those no client holds any more are skipped and listed.")
def retry_prefix(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    known = dask_queries.erred_keys(runtime.engine, source.name, prefix=target, limit=MAX_KEYS)
    if not known:
        raise Invalid(404, f"no erred task of prefix {target!r} is known in Dask source {source.name!r}")
    return _retry(runtime, source, list(known), known, False)


# -- workers ---------------------------------------------------------------------------------------

def _workers(link: DaskLink) -> dict[str, dict[str, Any]]:
    return link.run(link.client.scheduler.identity, n_workers=-1).get("workers") or {}


def _known_worker(link: DaskLink, source: SourceConfig, address: str) -> tuple[dict, dict[str, dict]]:
    workers = _workers(link)
    if address not in workers:
        raise Invalid(404, f"no worker {address!r} in Dask source {source.name!r}")
    return workers[address], workers


def _holds_data(link: DaskLink, address: str) -> bool:
    """Whether the scheduler has keys in memory on the worker now (not its last heartbeat's metrics,
    which lag a result that was just computed)."""
    return bool(link.run(link.client.scheduler.has_what, workers=[address]).get(address))


@action("dask.retire_worker", confirm=True, timeout=90.0,
        params={"close_workers": Param(bool, required=False, default=True)},
        description="Drain a worker: move its data to the other workers, then remove it (and close it, unless "
                    "close_workers is false).")
def retire_worker(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    link = link_for(source)
    _, workers = _known_worker(link, source, target)
    others = [a for a, w in workers.items() if a != target and w.get("status") == "running"]
    if not others and _holds_data(link, target):
        raise Invalid(409, f"{target} is the last running worker and holds data: retiring it would lose that data")
    retired = link.run(link.client.retire_workers, workers=[target], close_workers=params["close_workers"],
                       deadline=RETIRE_DEADLINE)
    if target not in (retired or {}):
        return ActionResult(False, f"the scheduler did not retire {target} (its data could not be moved)",
                            {"replies": {target: "not retired"}})
    gone = "and closed it" if params["close_workers"] else "(the process keeps running, without work)"
    return ActionResult(True, f"retired {target}: moved its data to {len(others)} other worker"
                              f"{'s' if len(others) != 1 else ''} {gone}", {"replies": {target: "ok: retired"}})


@action("dask.restart_worker", confirm=True, timeout=90.0,
        description="Restart a worker through its nanny: it loses its data and running tasks (the scheduler "
                    "recomputes them) and comes back with a new address.")
def restart_worker(runtime, source: SourceConfig, target: str, params: dict) -> ActionResult:
    link = link_for(source)
    worker, _ = _known_worker(link, source, target)
    nanny = worker.get("nanny")
    if not nanny:
        raise Invalid(409, f"{target} has no nanny: it cannot be restarted from here, only stopped")
    wait = max(10.0, source.timeout * 6)
    answer = link.run(link.client.restart_workers, [target], timeout=wait, raise_for_error=False,
                      deadline=wait + source.timeout)
    said = (answer or {}).get(target)
    if said != "OK":
        return ActionResult(False, f"restarting {target} failed: the scheduler said {said!r}", {"replies": {target: str(said)}})
    deadline = time.monotonic() + 60.0  # within the action's own timeout
    while time.monotonic() < deadline:
        back = [a for a, w in _workers(link).items() if w.get("nanny") == nanny and a != target]
        if back:
            return ActionResult(True, f"restarted {target}: back as {back[0]}",
                                {"replies": {target: f"ok: back as {back[0]}"}, "new_address": back[0]})
        time.sleep(0.3)
    return ActionResult(True, f"restarted {target}; its nanny has not brought it back yet",
                        {"replies": {target: "ok: restarting"}})

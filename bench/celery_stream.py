"""A realistic stream of Celery events, shaped like what `celery worker -E` sends."""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

TASK_NAMES = ["billing.charge", "billing.refund", "emails.send", "reports.build", "search.index",
              "images.resize", "orders.sync", "users.cleanup"]
QUEUES = ["celery", "billing", "emails", "reports"]
WORKERS = [f"celery@worker-{i}" for i in range(8)]
TRACEBACK = """Traceback (most recent call last):
  File "/app/venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task
    R = retval = fun(*args, **kwargs)
  File "/app/venv/lib/python3.11/site-packages/celery/app/trace.py", line 736, in __protected_call__
    return self.run(*args, **kwargs)
  File "/app/billing/tasks.py", line 88, in charge
    response = gateway.charge(customer_id, amount_cents, idempotency_key=key)
  File "/app/billing/gateway.py", line 41, in charge
    raise GatewayTimeout(f"gateway did not answer within {self.timeout}s")
billing.gateway.GatewayTimeout: gateway did not answer within 30s
"""


def _base(etype: str, hostname: str, ts: float, clock: int) -> dict:
    return {"type": etype, "hostname": hostname, "timestamp": ts, "utcoffset": 0, "pid": 4242,
            "clock": clock, "local_received": ts + 0.001}


def task_events(n_tasks: int, start: float = 1_700_000_000.0, failure_rate: float = 0.05,
                seed: int = 7) -> Iterator[dict]:
    """Yield sent/received/started/succeeded-or-failed for n_tasks, with worker heartbeats
    (every worker every 2 s of event time) interleaved, in timestamp order per task."""
    rng = random.Random(seed)
    clock = 0
    ts = start
    next_heartbeat = start
    for i in range(n_tasks):
        ts += 0.01  # 100 tasks per second of event time
        if ts >= next_heartbeat:
            for w, worker in enumerate(WORKERS):
                clock += 1
                yield {**_base("worker-heartbeat", worker, ts, clock), "freq": 2.0, "sw_ident": "py-celery",
                       "sw_ver": "5.7.0", "sw_sys": "Linux", "active": rng.randint(0, 4),
                       "processed": i // len(WORKERS), "loadavg": [0.5, 0.4, 0.3]}
            next_heartbeat += 2.0
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = TASK_NAMES[i % len(TASK_NAMES)]
        queue = QUEUES[i % len(QUEUES)]
        worker = WORKERS[rng.randrange(len(WORKERS))]
        args = f"({rng.randint(1, 10**6)}, {rng.randint(1, 10**4)})"
        kwargs = f"{{'user_id': {rng.randint(1, 10**5)}, 'currency': 'EUR'}}"
        runtime = rng.lognormvariate(-2.5, 1.0)
        clock += 4
        yield {**_base("task-sent", "producer@web-1", ts, clock - 3), "uuid": task_id, "name": name,
               "args": args, "kwargs": kwargs, "retries": 0, "eta": None, "expires": None, "queue": queue,
               "exchange": "", "routing_key": queue, "root_id": task_id, "parent_id": None}
        yield {**_base("task-received", worker, ts + 0.002, clock - 2), "uuid": task_id, "name": name,
               "args": args, "kwargs": kwargs, "root_id": task_id, "parent_id": None, "retries": 0,
               "eta": None, "expires": None}
        yield {**_base("task-started", worker, ts + 0.003, clock - 1), "uuid": task_id}
        if rng.random() < failure_rate:
            yield {**_base("task-failed", worker, ts + 0.003 + runtime, clock), "uuid": task_id,
                   "exception": "GatewayTimeout('gateway did not answer within 30s')", "traceback": TRACEBACK}
        else:
            yield {**_base("task-succeeded", worker, ts + 0.003 + runtime, clock), "uuid": task_id,
                   "result": "{'charged': True}", "runtime": runtime}

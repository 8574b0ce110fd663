"""Persistence: models, the engine, the single batched writer, history and queries."""
from dashboard.store import audit_log, auth_store, celery_ingest, gaps, retention, status, timeseries
from dashboard.store import consul_ingest, dask_ingest, kafka_ingest
from dashboard.store.db import make_engine
from dashboard.store.writer import Writer, WriteError

# Every kind of write the store accepts, by the name producers submit it under.
HANDLERS = {**status.HANDLERS, **timeseries.HANDLERS, **celery_ingest.HANDLERS, **auth_store.HANDLERS,
            **audit_log.HANDLERS, **gaps.HANDLERS, **retention.HANDLERS, **dask_ingest.HANDLERS, **kafka_ingest.HANDLERS,
            **consul_ingest.HANDLERS}

__all__ = ["HANDLERS", "make_engine", "Writer", "WriteError"]

"""Readers of watched systems. Nothing here imports Flask or Socket.IO."""
from __future__ import annotations

import importlib
from typing import Any

from collectors.base import Collector, Observation

# kind -> "module:Class"; imported on demand so a kind nobody configured costs nothing.
REGISTRY = {
    "celery": "collectors.celery_workers:CeleryCollector",
    "dask": "collectors.dask_scheduler:DaskCollector",
    "kafka": "collectors.kafka_lag:KafkaLagCollector",
    "consul": "collectors.consul_health:ConsulCollector",
}


def build(kind: str, name: str, interval: float, timeout: float, options: dict[str, Any]) -> Collector:
    """Instantiate the collector for one configured source."""
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)(name, interval=interval, timeout=timeout, **options)


__all__ = ["Collector", "Observation", "REGISTRY", "build"]

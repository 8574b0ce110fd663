"""The collector interface: one object per configured source, polled by its own thread."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Observation:
    """What one poll of a source saw."""

    # Headline numbers for the source's overview card, e.g. {"workers": 3}.
    headline: dict[str, Any] = field(default_factory=dict)
    # History points: (metric, label, value); the runner stamps source and time.
    metrics: list[tuple[str, str, float]] = field(default_factory=list)
    # System-specific store writes: (store kind, payload).
    records: list[tuple[str, Any]] = field(default_factory=list)
    # Set when the source answered only in part: why the view is incomplete.
    degraded: str | None = None


class Collector:
    """Reads one watched source. Subclasses set `kind` and implement `collect`.

    Every call a collector makes to its source must carry `self.timeout`; the runner also
    abandons a poll that outlives it, so a hanging source never holds up the others.
    """

    kind = ""

    def __init__(self, name: str, interval: float = 5.0, timeout: float = 5.0, **options: Any):
        self.name = name
        self.interval = interval
        self.timeout = timeout
        self.options = options

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    bound = False

    def bind(self, sink: Any) -> None:
        """Connect to the runner's sink; called once, before the first poll."""
        self.emit = sink.emit
        self.bound = True

    def emit(self, kind: str, payloads: list[Any]) -> None:
        """Hand store writes over between polls (streamed events); bind() replaces this."""
        raise RuntimeError(f"{self.key}: emit() called before the collector was bound to a sink")

    def collect(self) -> Observation:
        """Poll the source once; raise on failure (the runner records it and backs off)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once when the runner stops."""

"""Live rooms of Consul sources: one per source, fed by the checks and catalog the store commits."""
from __future__ import annotations

import time
from typing import Any

from dashboard.live import LiveHub

OUTPUT_SHOWN = 300  # a delta carries the start of a check's output; pages re-read the rest


def health_deltas(payloads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each stored check as an item keyed "check:<node>/<check id>"; a vanished one as None."""
    rooms: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        items = rooms.setdefault(f"consul/{payload['source']}", {})
        for check in payload.get("stored", ()):
            items[f"check:{check['node']}/{check['check_id']}"] = {
                **{k: check[k] for k in ("node", "check_id", "service_id", "service", "name", "status")},
                "output": check["output"][:OUTPUT_SHOWN], "updated_at": payload["at"]}
        for node, check_id in payload.get("gone", ()):
            items[f"check:{node}/{check_id}"] = None
    return rooms


def catalog_deltas(payloads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One "catalog" item per source: services, instances or nodes changed; pages re-read them."""
    return {f"consul/{p['source']}": {"catalog": {"updated_at": p["at"], "services": len(p["services"]),
                                                  "instances": len(p["instances"]), "nodes": len(p["nodes"])}}
            for p in payloads}


def register(hub: LiveHub, runtime) -> None:
    """A room per Consul source; joining sends a marker the pages answer by reading the API."""
    hub.add_translator("consul_health", health_deltas)
    hub.add_translator("consul_catalog", catalog_deltas)
    for source in runtime.settings.sources:
        if source.kind == "consul":
            hub.add_room(f"consul/{source.name}", lambda: {"catalog": {"updated_at": time.time()}})

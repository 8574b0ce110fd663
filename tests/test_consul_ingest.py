"""Consul writes on SQLite and PostgreSQL: transitions only on change, full snapshots drop what is gone,
hostile or malformed values are clamped, never fatal."""
from __future__ import annotations

from dashboard.store import consul_queries as q
from dashboard.store.consul_ingest import EXCERPT_MAX, OUTPUT_MAX


def check(check_id: str, status: str, output: str = "", service: str = "web", node: str = "n1") -> dict:
    return {"Node": node, "CheckID": check_id, "Name": check_id, "Status": status, "Output": output,
            "ServiceID": f"{service}-1" if service else "", "ServiceName": service, "Notes": "", "Type": "ttl"}


def catalog(source: str = "dc1") -> dict:
    return {"source": source, "at": 1000.0, "services": {"web": ["blue"], "consul": []},
            "instances": [{"node": "n1", "service_id": "web-1", "service": "web", "address": "10.0.0.1",
                           "port": 8080, "tags": ["blue"], "meta": {"v": "1"}, "owner": "agent"}],
            "nodes": [{"node": "n1", "address": "10.0.0.1", "datacenter": "dc1", "meta": {}}]}


def test_transitions_are_recorded_only_when_the_status_changes(store):
    engine, writer = store
    writer.write("consul_catalog", catalog())
    writer.write("consul_health", {"source": "dc1", "at": 1000.0, "full": True, "removed": [],
                                   "checks": [check("c1", "passing", "ok"), check("serfHealth", "passing", "", "")]})
    writer.write("consul_health", {"source": "dc1", "at": 1001.0, "full": False, "removed": [],
                                   "checks": [check("c1", "passing", "still ok")]})
    writer.write("consul_health", {"source": "dc1", "at": 1002.0, "full": False, "removed": [],
                                   "checks": [check("c1", "critical", "refused")]})
    moves = [(t["check_id"], t["from_status"], t["to_status"], t["at"]) for t in q.transitions(engine, "dc1")]
    assert moves == [("c1", "passing", "critical", 1002.0), ("serfHealth", None, "passing", 1000.0),
                     ("c1", None, "passing", 1000.0)]
    (inst,) = q.service(engine, "dc1", "web", now=1003.0)["instances"]
    assert (inst["state"], inst["checks"][0]["changed_at"], inst["checks"][0]["output"]) == ("critical", 1002.0, "refused")
    assert [c["check_id"] for c in inst["node_checks"]] == ["serfHealth"]
    # A full snapshot without c1 drops it; nothing else is touched.
    writer.write("consul_health", {"source": "dc1", "at": 1003.0, "full": True, "removed": [],
                                   "checks": [check("serfHealth", "passing", "", "")]})
    assert q.service(engine, "dc1", "web")["instances"][0]["checks"] == []


def test_hostile_and_malformed_values_are_clamped(store):
    engine, writer = store
    huge = "<script>alert(1)</script>" + "x" * (OUTPUT_MAX * 2)
    bad = catalog()
    bad["instances"][0].update(port="80; DROP", tags=["t"] * 500, meta={"k" * 500: "v" * 5000})
    writer.write("consul_catalog", bad)
    writer.write("consul_health", {"source": "dc1", "at": 1.0, "full": True, "removed": [], "checks": [
        check("c1", "exploded", huge), {**check("c2", "passing"), "Name": None, "Node": "n1"}, "not a dict"]})
    (inst,) = q.service(engine, "dc1", "web")["instances"]
    assert inst["port"] == 0 and len(inst["tags"]) == 100 and len(next(iter(inst["meta"]))) == 128
    by_id = {c["check_id"]: c for c in inst["checks"]}
    assert by_id["c1"]["status"] == "critical" and by_id["c1"]["output"].startswith("[Consul reported status 'exploded']")
    assert by_id["c2"]["name"] == ""
    (moved,) = [t for t in q.transitions(engine, "dc1") if t["check_id"] == "c1"]
    assert len(moved["output"]) == EXCERPT_MAX
    assert q.critical_checks(engine, "dc1")[0]["check_id"] == "c1"

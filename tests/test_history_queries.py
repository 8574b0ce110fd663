"""History reads: series from a known event stream, resolution, ranges, compare, DST, availability, pruning."""
from __future__ import annotations

import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.store.availability import availability
from dashboard.store.celery_models import CeleryHour, CeleryMinute
from dashboard.store.history_queries import (
    MAX_LABELS, MAX_POINTS, OTHER, SERIES_FIELDS, Window, celery_outcomes, celery_runtimes, metric_catalog, metric_series, series_rows,
    summary, unit_of, window,
)
from dashboard.store.models import Rollup, Sample
from dashboard.store.runtime_hist import empty, percentile, runtime_bin
from dashboard.store.timeseries import Point, Retention

T0 = 1_789_999_200  # a whole hour (and minute), UTC, in the past: ingest clamps future times
NAMES = ["billing.charge", "mail.send", "report.build", "image.resize", "search.index", "audit.write", "cache.warm"]
QUEUES = ["default", "billing", "slow"]


def stream(n: int, start: float, span: float, seed: int = 7) -> list[dict]:
    """A known stream of finished tasks: sent, then one outcome each, at known times."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = start + rnd.random() * span
        name = NAMES[min(int(rnd.expovariate(0.6)), len(NAMES) - 1)]
        outcome = rnd.choices(["task-succeeded", "task-failed", "task-retried"], [90, 7, 3])[0]
        out.append({"uuid": f"u{i}", "name": name, "queue": QUEUES[i % 3], "ts": ts, "type": outcome,
                    "runtime": rnd.lognormvariate(-1, 1) if outcome == "task-succeeded" else None})
    return out


def events_of(tasks, source="s") -> list[tuple[str, dict]]:
    """The Celery events a worker would send for the stream: task-sent, then the outcome."""
    events = []
    for t in tasks:
        events.append((source, {"type": "task-sent", "uuid": t["uuid"], "timestamp": t["ts"] - 0.5, "name": t["name"],
                                "queue": t["queue"], "hostname": "producer"}))
        outcome = {"type": t["type"], "uuid": t["uuid"], "timestamp": t["ts"], "hostname": "w1"}
        if t["runtime"] is not None:
            outcome["runtime"] = t["runtime"]
        events.append((source, outcome))
    return events


def feed(writer, tasks, source="s"):
    events = events_of(tasks, source)
    for i in range(0, len(events), 700):  # several batches: rows merge in the database
        writer.submit_many("celery_event", events[i:i + 700])
    writer.flush(30)


OUTCOME = {"task-succeeded": "succeeded", "task-failed": "failed", "task-retried": "retried"}


def expected(tasks, since, until, key=None):
    """Totals computed from the stream itself, not from any rollup."""
    out = {"succeeded": 0, "failed": 0, "retried": 0}
    for t in tasks:
        if since <= t["ts"] < until and (key is None or key(t)):
            out[OUTCOME[t["type"]]] += 1
    return out


def totals(rows, key=None):
    return {c: sum(r[c] for r in rows if key is None or r["key"] == key) for c in ("succeeded", "failed", "retried")}


def test_resolution_follows_the_range_and_never_exceeds_the_point_budget():
    for span, stored in ((3600, 60), (86400, 60), (2 * 86400, 60), (7 * 86400, 3600), (30 * 86400, 3600),
                         (90 * 86400, 3600), (400 * 86400, 3600), (5000 * 86400, 3600)):
        w = window(T0 - span, T0)
        assert w.stored == stored and w.step % w.stored == 0
        assert w.span / w.step <= MAX_POINTS
        assert w.since <= T0 - span and w.until >= T0 and w.since % w.step == 0
    assert window(T0 - 3600, T0).step == 60 and window(T0 - 86400, T0).step == 60


def test_series_from_a_known_stream_match_independent_totals(store):
    engine, writer = store
    tasks = stream(3000, T0, 6 * 3600)
    feed(writer, tasks)
    w = window(T0, T0 + 6 * 3600)
    assert (w.stored, w.step) == (60, 60)
    everything = celery_outcomes(engine, w, "s", "total")
    assert totals(everything) == expected(tasks, T0, T0 + 6 * 3600)
    for r in everything:  # each bucket too
        assert {c: r[c] for c in OUTCOME.values()} == expected(tasks, r["ts"], r["ts"] + 60)
        done = r["succeeded"] + r["failed"]
        assert r["failure_rate"] == (r["failed"] / done if done else None)
    by_name = celery_outcomes(engine, w, "s", "name", top=3)
    keys = {r["key"] for r in by_name}
    assert len(keys) == 4 and OTHER in keys
    for name in keys - {OTHER}:
        assert totals(by_name, name) == expected(tasks, T0, T0 + 6 * 3600, lambda t, n=name: t["name"] == n)
    assert totals(by_name, OTHER) == expected(tasks, T0, T0 + 6 * 3600, lambda t: t["name"] not in keys)
    by_queue = celery_outcomes(engine, w, "s", "queue")
    assert totals(by_queue, "slow") == expected(tasks, T0, T0 + 6 * 3600, lambda t: t["queue"] == "slow")

    # The same range read from hours, and a coarser bucket, gives the same totals.
    assert totals(celery_outcomes(engine, Window(T0, T0 + 6 * 3600, 3600, 3600), "s")) == totals(everything)
    assert totals(celery_outcomes(engine, Window(T0, T0 + 6 * 3600, 60, 1800), "s")) == totals(everything)
    with engine.connect() as conn:
        for table in (CeleryMinute, CeleryHour):
            hist = sum(sum(h) for h in conn.execute(select(table.runtime_hist).where(table.dimension == "name")).scalars())
            assert hist == sum(1 for t in tasks if t["runtime"] is not None)

    # Range boundaries: a bucket's tasks count in the range that holds the bucket, never in two.
    first, second = window(T0, T0 + 3600), window(T0 + 3600, T0 + 7200)
    assert totals(celery_outcomes(engine, first, "s"))["succeeded"] + totals(celery_outcomes(engine, second, "s"))["succeeded"] \
        == expected(tasks, T0, T0 + 7200)["succeeded"]
    assert totals(celery_outcomes(engine, first, "s")) == expected(tasks, T0, T0 + 3600)

    runtimes = celery_runtimes(engine, w, "s", top=2)
    charge = next(n for n in runtimes["names"] if n["name"] == "billing.charge")
    runs = sorted(t["runtime"] for t in tasks if t["name"] == "billing.charge" and t["runtime"] is not None)
    exact = runs[int(0.95 * len(runs))]
    assert exact / 1.19 <= charge["p95"] <= exact * 1.19
    assert [s["name"] for s in runtimes["series"]] == [n["name"] for n in runtimes["names"][:2]]


def test_compare_overlays_the_previous_period_bucket_for_bucket(store):
    engine, writer = store
    day = 86400
    tasks = stream(400, T0 - day, day, seed=1) + [dict(t, uuid="n" + t["uuid"]) for t in stream(500, T0, day, seed=2)]
    feed(writer, tasks)
    w = window(T0, T0 + day)
    prev = w.previous()
    assert (prev.since, prev.until, prev.step) == (T0 - day, T0, w.step)
    now_rows, prev_rows = celery_outcomes(engine, w, "s"), celery_outcomes(engine, prev, "s")
    assert totals(prev_rows) == expected(tasks, T0 - day, T0)
    assert totals(now_rows) == expected(tasks, T0, T0 + day)
    # Shifted by the span, each previous bucket lands on a bucket of the current range.
    assert {r["ts"] + w.span for r in prev_rows} <= set(range(w.since, w.until, w.step))


def test_percentiles_are_interpolated_and_never_exceed_the_slowest_run(store):
    engine, writer = store
    feed(writer, [{"uuid": f"a{i}", "name": "same", "queue": "q", "ts": T0 + i, "type": "task-succeeded",
                   "runtime": 1.0} for i in range(20)])
    (row,) = celery_runtimes(engine, window(T0, T0 + 60), "s")["names"]
    assert row["p50"] == 1.0 and row["p95"] == 1.0  # the bin's upper bound would say 1.024 s
    rnd = random.Random(3)
    runs = [rnd.uniform(0.01, 5) for _ in range(5000)]
    hist = empty()
    for r in runs:
        hist[runtime_bin(r)] += 1
    runs.sort()
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = runs[int(q * len(runs)) - 1]
        got = percentile(hist, q, runs[0], runs[-1])
        assert exact / 2 ** 0.25 <= got <= exact * 2 ** 0.25  # the stated bound: one bin, 19%
        assert runs[0] <= got <= runs[-1]


def test_settled_tasks_count_in_the_outcomes(store):
    engine, writer = store
    writer.submit_many("celery_event", [("s", {"type": "task-received", "uuid": u, "timestamp": T0, "name": "n",
                                                "queue": "q", "hostname": "w"}) for u in ("a", "b", "c")])
    writer.flush()
    for uuid, state in (("a", "SUCCESS"), ("b", "FAILURE"), ("c", "LOST")):
        writer.submit("celery_reconcile", {"source": "s", "uuid": uuid, "at": T0 + 100, "state": state})
    writer.submit("celery_reconcile", {"source": "s", "uuid": "a", "at": T0 + 200, "state": "SUCCESS"})  # once only
    writer.flush()
    rows = celery_outcomes(engine, window(T0, T0 + 3600), "s", "name")
    assert totals(rows) == {"succeeded": 1, "failed": 1, "retried": 0}
    assert rows[0]["ts"] == T0 + 60 and rows[0]["key"] == "n"


def test_any_recorded_metric_shows_up_by_name_and_minutes_equal_hours(store):
    engine, writer = store
    points = [Point("kafka/ev", "lag", float(i % 50), T0 + i * 30, f"g{i % 2}") for i in range(600)]
    points += [Point("dask/x", "memory_bytes", 1e6 * i, T0 + i * 60) for i in range(300)]
    writer.submit_many("sample", points)
    writer.flush()
    w = window(T0, T0 + 5 * 3600)
    catalog = {(c["source"], c["metric"]): c for c in metric_catalog(engine, w)}
    assert catalog["kafka/ev", "lag"]["labels"] == ["g0", "g1"] and catalog["dask/x", "memory_bytes"]["unit"] == "bytes"
    lag = {s["label"]: s for s in metric_series(engine, w, "kafka/ev", "lag")}
    g0 = [p for p in points if p.label == "g0"]
    assert sum(lag["g0"]["count"]) == len(g0)
    assert max(lag["g0"]["max"]) == max(p.value for p in g0)
    assert lag["g0"]["ts"] == sorted(lag["g0"]["ts"]) and len(set(map(len, (lag["g0"][f] for f in SERIES_FIELDS)))) == 1
    hours = metric_series(engine, Window(T0, T0 + 5 * 3600, 3600, 3600), "kafka/ev", "lag")
    minutes = metric_series(engine, Window(T0, T0 + 5 * 3600, 60, 3600), "kafka/ev", "lag")
    assert hours == minutes  # the same buckets from either rollup
    assert sum(p["mean"] * p["count"] for p in series_rows(hours)) == pytest.approx(sum(p.value for p in points[:600]))


def status(kind, name, state, at, error=None):
    return {"kind": kind, "name": name, "state": state, "updated_at": at, "last_success_at": None,
            "last_error": error, "last_error_at": at if error else None, "last_poll_ms": 1.0, "headline": {}}


def test_availability_from_state_transitions(store):
    engine, writer = store
    for at, state, error in ((T0, "up", None), (T0 + 5, "up", None), (T0 + 600, "down", "ConnectionRefused"),
                             (T0 + 605, "down", "ConnectionRefused"), (T0 + 900, "up", None),
                             (T0 + 1800, "degraded", "one admin call failed"), (T0 + 2400, "up", None)):
        writer.submit("source_status", status("kafka", "ev", state, at, error))
        writer.flush()
    (a,) = availability(engine, [("kafka", "ev")], T0, T0 + 3600, now=T0 + 10_000)
    assert a["seconds"] == {"up": 2700.0, "down": 300.0, "degraded": 600.0, "unknown": 0.0}
    assert a["percent"]["down"] == pytest.approx(100 * 300 / 3600)
    assert [(i["state"], i["from"], i["seconds"], i["error"]) for i in a["incidents"]] == [
        ("down", T0 + 600, 300.0, "ConnectionRefused"), ("degraded", T0 + 1800, 600.0, "one admin call failed")]
    # Before the first status the state is unknown; an incident still going on says so.
    (b,) = availability(engine, [("kafka", "ev")], T0 - 100, T0 + 3600, now=T0 + 700)
    assert b["seconds"]["unknown"] == 100.0 and b["incidents"][-1]["ongoing"] is True


def test_summary_per_local_day_across_a_dst_change(store):
    engine, writer = store
    berlin = ZoneInfo("Europe/Berlin")
    # Clocks go forward on 2026-03-29 in Berlin: that day has 23 hours.
    start = datetime(2026, 3, 28, tzinfo=berlin).timestamp()
    end = datetime(2026, 3, 31, tzinfo=berlin).timestamp()
    tasks = stream(2000, start, end - start, seed=5)
    feed(writer, tasks)
    writer.submit_many("sample", [Point("kafka/ev", "lag", 10.0 * i, start + i * 3600, "g") for i in range(71)])
    writer.flush()
    rows = summary(engine, start, end, "day", berlin, ["s"], [])
    assert [r["period"][:10] for r in rows] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [r["until"] - r["from"] for r in rows] == [24 * 3600, 23 * 3600, 24 * 3600]
    for r in rows:
        e = expected(tasks, r["from"], r["until"])
        assert r["tasks"] == e["succeeded"] + e["failed"] and r["failed"] == e["failed"]
    assert rows[2]["peak_lag"] == 700.0
    utc = summary(engine, start, end, "day", ZoneInfo("UTC"), ["s"], [])
    assert sum(r["tasks"] for r in utc) == sum(r["tasks"] for r in rows)
    assert utc[0]["period"].startswith("2026-03-27T00:00")  # Berlin's midnight is 23:00 UTC the day before


def test_summary_counts_tasks_whose_name_never_arrived(store):
    """A task seen only by its outcome (the task-sent and task-received were lost) has no name: the
    summary still counts it, as the day's total of finished tasks."""
    engine, writer = store
    writer.submit_many("celery_event", [("s", {"type": "task-succeeded", "uuid": f"n{i}", "timestamp": T0 + i,
                                               "hostname": "w1", "runtime": 0.5}) for i in range(3)]
                       + [("s", {"type": "task-failed", "uuid": "n9", "timestamp": T0 + 9, "hostname": "w1"})])
    writer.flush()
    (day,) = summary(engine, T0, T0 + 3600, "day", ZoneInfo("UTC"), ["s"], [])
    assert (day["tasks"], day["failed"]) == (4, 1)
    assert day["p95_runtime"] == pytest.approx(0.5)


def test_pruning_never_removes_a_bucket_inside_its_retention(store):
    engine, writer = store
    now = time.time()
    keep, gone = {}, {}
    for step, key in ((60, "minute_days"), (3600, "hour_days")):
        # A moment 30 s into a bucket, 10 s inside the retention when the sweep runs.
        target = (int(now - 3 * 86400) // step) * step + 30
        keep[key] = (time.time() - target + 10) / 86400
        gone[step] = target - 2 * step
        writer.submit_many("sample", [Point("s", f"m{step}", 1.0, target), Point("s", f"m{step}", 1.0, gone[step])])
    writer.flush()
    writer.write("prune", Retention(raw_hours=1000, **keep))
    with engine.connect() as conn:
        buckets = {(m, s): b for m, s, b in conn.execute(select(Rollup.metric, Rollup.step, Rollup.bucket))}
        raw = conn.execute(select(Sample.ts)).scalars().all()
    assert len(raw) == 4
    for step in (60, 3600):
        held = (int(now - 3 * 86400) // step) * step
        assert buckets[(f"m{step}", step)] == held  # the bucket holding a moment inside retention stays
    assert (int(gone[60] // 60) * 60) not in {b for (m, s), b in buckets.items() if s == 60 and m == "m60"}


def test_upgrade_folds_the_minutes_already_stored_into_hours(database_url):
    from sqlalchemy import text

    from dashboard.store import make_engine
    from dashboard.store.migrate import upgrade

    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO celery_minutes VALUES ('s', 'name', 'a', :b, 3, 1, 0, 0.5, :h)"),
                     [{"b": T0 + 60, "h": '{"5": 3}'}, {"b": T0 + 120, "h": '{"5": 1, "7": 1}'}])
    upgrade(database_url)
    with engine.connect() as conn:
        rows = {r["dimension"]: r for r in conn.execute(select(CeleryHour)).mappings()}
    engine.dispose()
    assert set(rows) == {"name", "all"}  # and the row of all tasks, summed from the names
    for row in rows.values():
        binned = {i: n for i, n in enumerate(row["runtime_hist"]) if n}
        assert (row["bucket"], row["succeeded"], row["failed"], binned) == (T0, 6, 2, {5: 4, 7: 1})


def test_a_metric_with_many_labels_draws_its_top_ones_and_says_how_many_are_not(store):
    """Beyond MAX_LABELS the catalog names the labels drawn (highest peak in the range first); the rest are counted."""
    engine, writer = store
    many = MAX_LABELS + 7
    # Alphabetical order is the reverse of the peaks' order: the busiest services sort last.
    writer.submit_many("sample", [Point("consul/dc1", "service_critical", float(k * (i % 3)), T0 + i * 60, f"svc-{k:02d}")
                                  for k in range(many) for i in range(6)])
    writer.flush()
    w = window(T0, T0 + 3600)
    (entry,) = [c for c in metric_catalog(engine, w) if c["metric"] == "service_critical"]
    assert entry["labels"] == [f"svc-{k:02d}" for k in range(many - 1, many - 1 - MAX_LABELS, -1)]
    assert entry["labels_not_drawn"] == many - MAX_LABELS
    drawn = metric_series(engine, w, "consul/dc1", "service_critical", entry["labels"])
    assert sorted(s["label"] for s in drawn) == sorted(entry["labels"])
    assert len(metric_series(engine, w, "consul/dc1", "service_critical")) == many  # the full data stays readable


@pytest.mark.parametrize("span", [30 * 3600, 5 * 86400], ids=["minutes", "hours"])
def test_summary_totals_equal_the_outcomes_chart_over_a_range_starting_mid_hour(store, span):
    """The summary reads the range as the charts do (rounded out to whole chart buckets), all tasks included."""
    engine, writer = store
    tasks = stream(4000, T0 - 2 * 3600, 6 * 86400, seed=13)
    feed(writer, tasks)
    # Three tasks seen only by their outcome (no name, no queue), one inside the first partial hour.
    writer.submit_many("celery_event", [("s", {"type": t, "uuid": f"nameless{i}", "timestamp": T0 + 1300 + i * 7200,
                                               "hostname": "w1"})
                                        for i, t in enumerate(("task-succeeded", "task-failed", "task-succeeded"))])
    writer.flush()
    since, until = T0 + 1234.5, T0 + 1234.5 + span
    w = window(since, until)
    chart = celery_outcomes(engine, w, "s", "total")
    rows = summary(engine, since, until, "day", ZoneInfo("UTC"), ["s"], [])
    chart_run = sum(r["succeeded"] + r["failed"] for r in chart)
    chart_failed = sum(r["failed"] for r in chart)
    assert (sum(r["tasks"] for r in rows), sum(r["failed"] for r in rows)) == (chart_run, chart_failed)
    e = expected(tasks, w.since, w.until)
    assert chart_run == e["succeeded"] + e["failed"] + 3 and chart_failed == e["failed"] + 1
    assert rows[0]["from"] == w.since and rows[-1]["until"] == w.until


def test_a_count_metric_is_charted_as_its_sum_per_bucket_from_minutes_and_hours(store):
    """Dask's tasks_completed is a count per poll: the chart shows tasks per bucket (the sum), not the mean per poll."""
    engine, writer = store
    rnd = random.Random(17)
    points = [Point("dask/x", "tasks_completed", float(rnd.randint(0, 40)), T0 + i * 7, "") for i in range(3 * 3600 // 7)]
    points += [Point("dask/x", "memory_managed", 1e9, T0 + i * 60) for i in range(60)]
    writer.submit_many("sample", points)
    writer.flush()
    counts = [p for p in points if p.metric == "tasks_completed"]

    def summed(step):
        out: dict[int, float] = {}
        for p in counts:
            out[int(p.ts // step) * step] = out.get(int(p.ts // step) * step, 0.0) + p.value
        return out

    for w in (Window(T0, T0 + 3 * 3600, 60, 60), Window(T0, T0 + 3 * 3600, 60, 600),
              Window(T0, T0 + 3 * 3600, 60, 3600), Window(T0, T0 + 3 * 3600, 3600, 3600)):
        (series,) = metric_series(engine, w, "dask/x", "tasks_completed")
        assert dict(zip(series["ts"], series["sum"])) == summed(w.step)
    catalog = {c["metric"]: c for c in metric_catalog(engine, window(T0, T0 + 3 * 3600))}
    assert (catalog["tasks_completed"]["value"], catalog["tasks_completed"]["unit"]) == ("sum", "per minute")
    hours = {c["metric"]: c for c in metric_catalog(engine, window(T0, T0 + 7 * 86400))}
    assert hours["tasks_completed"]["unit"] == "per hour"
    assert (catalog["memory_managed"]["value"], catalog["memory_managed"]["unit"]) == ("mean", "bytes")
    assert unit_of("memory_spilled") == "bytes" and unit_of("lag") == ""
    assert unit_of("consume_rate") == unit_of("produce_rate") == "/s"  # collectors/kafka_lag.py's rates

"""History: raw samples, minute and hour rollups, and retention."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from dashboard.store.models import Rollup, Sample
from dashboard.store.timeseries import Point, Retention, read_series


def test_rollups_aggregate_across_batches(store):
    engine, writer = store
    hour = (int(time.time()) // 3600) * 3600 - 3600  # a whole past hour
    values = {hour + 10: 4.0, hour + 20: 8.0, hour + 70: 1.0, hour + 3000: 7.0}
    for ts, value in values.items():  # separate commits, so rollups merge in the database
        writer.write("sample", Point("kafka/ev", "lag", value, ts, "g1"))

    minutes = read_series(engine, "kafka/ev", "lag", "g1", hour, hour + 3599, step=60)
    assert [(p["ts"], p["value"], p["min"], p["max"], p["count"]) for p in minutes] == [
        (hour, 6.0, 4.0, 8.0, 2), (hour + 60, 1.0, 1.0, 1.0, 1), (hour + 3000, 7.0, 7.0, 7.0, 1)]
    (hourly,) = read_series(engine, "kafka/ev", "lag", "g1", hour, hour + 3599, step=3600)
    assert (hourly["value"], hourly["min"], hourly["max"], hourly["count"]) == (5.0, 1.0, 8.0, 4)
    raw = read_series(engine, "kafka/ev", "lag", "g1", hour, hour + 3599)
    assert [p["value"] for p in raw] == list(values.values())
    # Other labels are other series.
    assert read_series(engine, "kafka/ev", "lag", "g2", hour, hour + 3599) == []


def test_last_value_of_a_bucket_follows_time_not_arrival(store):
    engine, writer = store
    bucket = (int(time.time()) // 60) * 60 - 600
    writer.write("sample", Point("s", "m", 2.0, bucket + 50))
    writer.write("sample", Point("s", "m", 9.0, bucket + 5))  # arrives late, is older
    with engine.connect() as conn:
        last = conn.execute(select(Rollup.last).where(Rollup.step == 60, Rollup.bucket == bucket)).scalar_one()
    assert last == 2.0


def test_resolution_follows_the_span(store):
    engine, writer = store
    now = time.time()
    writer.write("sample", Point("s", "m", 1.0, now - 30))
    assert "count" not in read_series(engine, "s", "m", start=now - 3600)[0]          # raw
    assert read_series(engine, "s", "m", start=now - 86400)[0]["count"] == 1          # minutes
    assert read_series(engine, "s", "m", start=now - 30 * 86400)[0]["count"] == 1     # hours


def test_prune_keeps_each_resolution_for_its_own_window(store):
    engine, writer = store
    now = time.time()
    old = now - 3 * 86400  # older than 48 h raw, within 14 days of minutes
    ancient = now - 30 * 86400  # older than minutes' window, within hours'
    for ts in (old, ancient, now - 10):
        writer.write("sample", Point("s", "m", 1.0, ts))
    writer.write("prune", Retention(raw_hours=48, minute_days=14, hour_days=400))
    with engine.connect() as conn:
        raw_ts = conn.execute(select(Sample.ts)).scalars().all()
        minutes = conn.execute(select(Rollup.bucket).where(Rollup.step == 60)).scalars().all()
        hours = conn.execute(select(Rollup.bucket).where(Rollup.step == 3600)).scalars().all()
    assert raw_ts == [pytest.approx(now - 10)]
    assert sorted(minutes) == sorted({int(old // 60) * 60, int((now - 10) // 60) * 60})
    assert len(hours) == 3

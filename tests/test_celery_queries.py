"""Task pages: keyset paging, filters, Flower-style search, capped counts, bad input."""
from __future__ import annotations

import pytest

from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.celery_queries import (QueryError, TaskFilter, decode_cursor, parse_search, task_detail,
                                            task_page, workers)

T0 = 1_700_000_040.0


@pytest.fixture
def engine(migrated_url):
    engine = make_engine(migrated_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    events = []
    for i in range(120):
        uid = f"task-{i:03d}"
        name = ["billing.charge", "emails.send", "reports.build"][i % 3]
        events.append({"type": "task-received", "uuid": uid, "timestamp": T0 + i, "hostname": f"celery@w{i % 2}",
                       "name": name, "args": f"({i},)", "kwargs": "{'user_id': %d}" % (i % 7)})
        if i % 10 == 0:
            events.append({"type": "task-failed", "uuid": uid, "timestamp": T0 + i + 0.5, "hostname": f"celery@w{i % 2}",
                           "exception": "Timeout('gateway')" if i % 20 == 0 else "KeyError('x')", "traceback": "tb"})
    events.append({"type": "task-received", "uuid": "child-1", "timestamp": T0 + 500, "hostname": "celery@w0",
                   "name": "emails.send", "parent_id": "task-000", "args": "()", "kwargs": "{}"})
    writer.submit_many("celery_event", [("s", e) for e in events])
    writer.flush()
    writer.stop()
    yield engine
    engine.dispose()


def test_pages_walk_every_task_once_newest_first(engine):
    seen, cursor = [], None
    while True:
        page = task_page(engine, "s", TaskFilter(), after=cursor, limit=50)
        seen += [t["uuid"] for t in page["tasks"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen[0] == "child-1" and seen[1] == "task-119" and seen[-1] == "task-000"
    assert len(seen) == len(set(seen)) == 121
    assert page["total"] == 121 and page["total_capped"] is False


def test_filters_and_search_are_anded(engine):
    page = task_page(engine, "s", TaskFilter(state="failure", worker="w0"))
    assert {t["uuid"] for t in page["tasks"]} == {f"task-{i:03d}" for i in range(0, 120, 20)} | {
        f"task-{i:03d}" for i in range(10, 120, 20) if i % 2 == 0}
    terms = parse_search("state:FAILURE name:billing exception:Timeout")
    page = task_page(engine, "s", TaskFilter(terms=terms))
    expected = {f"task-{i:03d}" for i in range(120) if i % 20 == 0 and i % 3 == 0}
    assert {t["uuid"] for t in page["tasks"]} == expected
    page = task_page(engine, "s", TaskFilter(terms=parse_search("kwargs:\"'user_id': 3}\"")))
    assert {t["uuid"] for t in page["tasks"]} == {f"task-{i:03d}" for i in range(120) if i % 7 == 3}
    page = task_page(engine, "s", TaskFilter(since=T0 + 100, until=T0 + 109))
    assert len(page["tasks"]) == 10


def test_search_treats_like_wildcards_literally(engine):
    assert task_page(engine, "s", TaskFilter(terms=parse_search("name:%")))["tasks"] == []
    assert task_page(engine, "s", TaskFilter(terms=parse_search("args:_")))["tasks"] == []


@pytest.mark.parametrize("text, message", [
    ("colour:red", "unknown key 'colour'"),
    ("state:DONE", "state must be one of"),
    ("name:", "needs a value"),
    ('args:"unclosed', "No closing quotation"),
])
def test_bad_search_says_what_is_wrong(text, message):
    with pytest.raises(QueryError, match=message):
        parse_search(text)


def test_a_forged_cursor_is_refused():
    with pytest.raises(QueryError, match="cursor"):
        decode_cursor("not-a-cursor!!")


def test_detail_links_children_and_unknown_is_none(engine):
    detail = task_detail(engine, "s", "task-000")
    assert detail["state"] == "FAILURE" and [c["uuid"] for c in detail["children"]] == ["child-1"]
    assert task_detail(engine, "s", "nope") is None
    assert task_detail(engine, "other-source", "task-000") is None


def test_workers_silent_for_two_heartbeats_are_offline(migrated_url):
    engine = make_engine(migrated_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    writer.write("celery_event", ("s", {"type": "worker-heartbeat", "hostname": "celery@a", "timestamp": T0, "freq": 2.0}))
    writer.stop()
    assert workers(engine, "s", now=T0 + 3.9)[0]["online"] is True
    assert workers(engine, "s", now=T0 + 4.1)[0]["online"] is False
    engine.dispose()


def test_list_rows_carry_only_the_start_of_long_text(migrated_url):
    engine = make_engine(migrated_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    long = "(" + repr("z" * 5000) + ",)"
    writer.write("celery_event", ("s", {"type": "task-received", "uuid": "long", "timestamp": T0, "hostname": "w",
                                        "name": "n", "args": long, "kwargs": "{}"}))
    writer.stop()
    (row,) = task_page(engine, "s", TaskFilter())["tasks"]
    assert row["args"] == long[:300]
    assert task_detail(engine, "s", "long")["args"] == long
    engine.dispose()

"""Task pages: keyset paging, filters, Flower-style search, capped counts, bad input."""
from __future__ import annotations

import random
import sys
import uuid

import pytest
from sqlalchemy import event

from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.celery_queries import (QueryError, TaskFilter, decode_cursor, encode_cursor, failures, last_seen,
                                            parse_search, task_detail, task_page, unfinished, workers)
from dashboard.store.migrate import upgrade
from dashboard.store.overview_queries import celery_tasks_by_name

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


def _store_events(url: str, events: list[dict]):
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    writer.submit_many("celery_event", [("s", e) for e in events])
    writer.flush()
    writer.stop()
    return engine


def test_pages_walk_tasks_seen_at_the_same_time_once_by_uuid(migrated_url):
    # The time index holds no uuid any more: ties must still page in uuid order, none twice.
    events = [{"type": "task-received", "uuid": f"tie-{i}", "timestamp": T0 + (i >= 5), "hostname": "w", "name": "n"}
              for i in range(9)]
    engine = _store_events(migrated_url, events)
    seen, cursor = [], None
    while True:
        page = task_page(engine, "s", TaskFilter(), after=cursor, limit=2)
        seen += [t["uuid"] for t in page["tasks"]]
        if (cursor := page["next"]) is None:
            break
    assert seen == [f"tie-{i}" for i in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
    engine.dispose()


def test_a_task_that_is_its_own_root_shows_its_uuid_as_root(migrated_url):
    # Stored as '' (36 bytes saved a task); read back as the uuid, apart from a root no event named.
    events = [
        {"type": "task-sent", "uuid": "top", "timestamp": T0, "name": "n", "root_id": "top", "queue": "q"},
        {"type": "task-received", "uuid": "top", "timestamp": T0 + 1, "hostname": "w", "root_id": "top"},
        {"type": "task-failed", "uuid": "top", "timestamp": T0 + 2, "hostname": "w", "exception": "E()"},
        {"type": "task-received", "uuid": "kid", "timestamp": T0 + 3, "hostname": "w", "root_id": "top", "parent_id": "top"},
        {"type": "task-received", "uuid": "rootless", "timestamp": T0 + 4, "hostname": "w", "root_id": ""},
    ]
    engine = _store_events(migrated_url, events)
    with engine.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT uuid, root_id FROM celery_tasks").all())
    assert stored == {"top": "", "kid": "top", "rootless": None}
    assert task_detail(engine, "s", "top")["root_id"] == "top"
    assert task_detail(engine, "s", "kid")["root_id"] == "top"
    assert task_detail(engine, "s", "rootless")["root_id"] is None
    assert [t["root_id"] for t in failures(engine, "s", "n", T0 - 1, T0 + 9, 10)[1]] == ["top"]
    engine.dispose()


def test_celery_uuids_are_stored_in_16_bytes_and_read_linked_paged_and_searched_as_text(migrated_url):
    rng = random.Random(5)
    top, *kids, retry = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(6)]
    custom = "Report-2026-12-07"  # Celery takes any string as a task id
    events = [{"type": "task-failed", "uuid": top, "timestamp": T0, "hostname": "w", "exception": "E()"}]
    events += [{"type": "task-received", "uuid": u, "timestamp": T0 + 1, "hostname": "w", "name": "n",
                "root_id": top, "parent_id": top} for u in [*kids, custom]]
    engine = _store_events(migrated_url, events)
    writer = Writer(engine, HANDLERS)
    writer.start()
    writer.write("celery_retry_link", {"source": "s", "uuid": retry, "retry_of": top, "name": "n", "queue": "q",
                                       "at": T0 + 2})
    writer.stop()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT typeof(uuid), length(uuid), typeof(parent_id), length(root_id), "
                                          "length(retry_of) FROM celery_tasks ORDER BY first_seen_at").all()
        assert stored[0][:2] == ("blob", 16) and stored[-1] == ("blob", 16, "null", None, 16)
        assert sorted(stored[1:-1])[-1] == ("text", len(custom), "blob", 16, None)  # a custom id stays text
        assert sorted(stored[1:-1])[0] == ("blob", 16, "blob", 16, None)

    detail = task_detail(engine, "s", top)
    assert sorted(c["uuid"] for c in detail["children"]) == sorted([*kids, custom])
    assert [r["uuid"] for r in detail["retried_by"]] == [retry]
    assert task_detail(engine, "s", kids[0])["parent_id"] == top and task_detail(engine, "s", kids[0])["root_id"] == top
    assert task_detail(engine, "s", custom)["uuid"] == custom
    seen, cursor = [], None  # five tasks seen at once: paged by id, blobs and text alike, none twice
    while True:
        page = task_page(engine, "s", TaskFilter(), after=cursor, limit=2)
        seen += [t["uuid"] for t in page["tasks"]]
        if (cursor := page["next"]) is None:
            break
    assert sorted(seen) == sorted([top, *kids, custom, retry]) and len(seen) == 7

    def found(search: str) -> list[str]:
        return [t["uuid"] for t in task_page(engine, "s", TaskFilter(terms=parse_search(search)))["tasks"]]
    assert found(f"uuid:{kids[1][:10]}") == [kids[1]]  # across the first dash
    assert kids[1] in found(f"uuid:{kids[1][0]}")
    assert found(f"uuid:{kids[2][:6].upper()}") == [kids[2]]  # case does not matter
    assert found(f"uuid:{kids[3]}") == [kids[3]] and found(kids[0]) == [kids[0]]
    assert found("uuid:Report-") == [custom] and found(f"uuid:{kids[1][:4]}-") == []
    engine.dispose()


def test_an_id_prefix_ending_in_the_last_unicode_character_still_matches_exactly(migrated_url):
    last = chr(sys.maxunicode)  # no text sorts right after it: the prefix's range has no end to name
    engine = _store_events(migrated_url, [{"type": "task-received", "uuid": u, "timestamp": T0, "hostname": "w"}
                                          for u in (f"job{last}1", f"job{last}", "job~", f"jo{last}")])
    page = task_page(engine, "s", TaskFilter(terms=[("uuid", f"job{last}")]))
    assert sorted(t["uuid"] for t in page["tasks"]) == [f"job{last}", f"job{last}1"]
    engine.dispose()


def test_every_task_query_searches_an_index(tmp_path):
    """What the pages, the API, the reconciler and the attention strip ask of celery_tasks reads an
    index (EXPLAIN QUERY PLAN on SQLite), each the one meant for it: no query walks the table."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    engine = _store_events(url, [{"type": "task-received", "uuid": "a", "timestamp": T0, "hostname": "w", "name": "n"}])
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, *_: statements.append((sql, params)) if "celery_tasks" in sql else None)

    def plan(call) -> str:
        statements.clear()
        call()
        asked = list(statements)
        with engine.connect() as conn:
            return "\n".join(row[-1] for sql, params in asked
                             for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))

    cursor = encode_cursor(T0, "a")
    expected = [
        ("ix_celery_tasks_seen (source=? AND first_seen_at<?)", lambda: task_page(engine, "s", TaskFilter(), after=cursor)),
        ("ix_celery_tasks_state (source=? AND state=?)", lambda: task_page(engine, "s", TaskFilter(state="FAILURE"))),
        ("ix_celery_tasks_name (source=? AND name_id=? AND first_seen_at>? AND first_seen_at<?)",
         lambda: failures(engine, "s", "n", T0, T0 + 1, 10)),
        ("ix_celery_tasks_parent (source=? AND parent_id=?)", lambda: task_detail(engine, "s", "a")),
        ("ix_celery_tasks_retry_of (source=? AND retry_of=?)", lambda: task_detail(engine, "s", "a")),
        ("ix_celery_tasks_state (source=? AND state=?)", lambda: unfinished(engine, "s", T0)),
        ("COVERING INDEX ix_celery_tasks_seen (source=?)", lambda: last_seen(engine, "s")),
        ("sqlite_autoindex_celery_tasks_1 (source=? AND uuid>? AND uuid<?)",
         lambda: task_page(engine, "s", TaskFilter(terms=parse_search("uuid:ab12")))),
    ]
    for index, call in expected:
        found = plan(call)
        assert index in found, found
        assert "SCAN celery_tasks" not in found, found
    # Across sources: the partial state index whole (tasks not successful), not every task by name.
    found = plan(lambda: celery_tasks_by_name(engine, "FAILURE", T0))
    assert "SCAN celery_tasks USING INDEX ix_celery_tasks_state" in found, found
    engine.dispose()


def test_recent_tasks_in_a_state_are_counted_per_source_and_name(migrated_url):
    events = [{"type": "task-received", "uuid": f"t{i}", "timestamp": T0 + i, "hostname": "w", "name": f"n{i % 2}"}
              for i in range(6)]
    events += [{"type": "task-failed", "uuid": f"t{i}", "timestamp": T0 + 10 + i, "hostname": "w", "exception": "E()"}
               for i in range(5)]
    engine = _store_events(migrated_url, events)
    rows = sorted(celery_tasks_by_name(engine, "FAILURE", T0 + 11), key=lambda r: r["name"])
    assert rows == [{"source": "s", "name": "n0", "count": 2, "at": T0 + 14},
                    {"source": "s", "name": "n1", "count": 2, "at": T0 + 13}]
    assert celery_tasks_by_name(engine, "STARTED", T0) == []
    engine.dispose()


def test_a_page_and_its_count_read_the_same_tasks(migrated_url):
    # CI saw a live list say "6" over 5 tasks: a task committed between reading page one's rows
    # and counting them was counted but not listed, and the page then added its delta once more.
    engine = _store_events(migrated_url, [{"type": "task-received", "uuid": f"t{i}", "timestamp": T0 + i,
                                           "hostname": "w", "name": "n"} for i in range(4)])
    other = make_engine(migrated_url)
    writer = Writer(other, HANDLERS)
    writer.start()
    late = iter([{"type": "task-received", "uuid": "late", "timestamp": T0 + 9, "hostname": "w", "name": "n"}])

    def commit_a_task_in_between(conn, cursor, sql, *_):
        if "count(" in sql and (event_ := next(late, None)):
            writer.write("celery_event", ("s", event_))
            writer.flush()

    event.listen(engine, "before_cursor_execute", commit_a_task_in_between)
    try:
        page = task_page(engine, "s", TaskFilter())
    finally:
        event.remove(engine, "before_cursor_execute", commit_a_task_in_between)
        writer.stop()
        other.dispose()
    assert page["total"] == len(page["tasks"]), page
    assert task_page(engine, "s", TaskFilter())["total"] == 5
    engine.dispose()

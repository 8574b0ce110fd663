"""The Celery pages with the Flask test client, over events seeded through the store's writer."""
from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest
from celery.utils.saferepr import saferepr

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.store import celery_queries
from dashboard.store.timeseries import Point
from tests.conftest import login

T0 = time.time() - 1800  # half an hour before the tests: inside every default range
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
LONG_ARGS = saferepr(("x" * 2000,), 1024)  # as Celery sends a long argument: cut, ending "...',)"
TRACEBACK = "Traceback (most recent call last):\n" + '  File "billing.py", line 9, in charge\n' * 40 + "Timeout: gateway"
SOURCE = SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/15"})


def _events(now: float) -> list[dict]:
    ev = []
    for i in range(60):  # 60 tasks a second apart: more than one page of 50
        uid = f"task-{i:03d}"
        name = ("billing.charge", "emails.send", "reports.build")[i % 3]
        worker, queue = f"celery@w{i % 2}", ("default", "mail")[i % 2]
        ev += [{"type": "task-sent", "uuid": uid, "timestamp": T0 + i, "name": name, "queue": queue,
                "routing_key": queue, "exchange": "", "retries": 0},
               {"type": "task-received", "uuid": uid, "timestamp": T0 + i + 0.01, "hostname": worker, "name": name,
                "args": f"({i},)", "kwargs": "{'user_id': %d}" % (i % 7)},
               {"type": "task-started", "uuid": uid, "timestamp": T0 + i + 0.02, "hostname": worker}]
        if i % 10 == 0:
            ev.append({"type": "task-failed", "uuid": uid, "timestamp": T0 + i + 0.5, "hostname": worker,
                       "exception": "Timeout('gateway')", "traceback": TRACEBACK})
        else:
            ev.append({"type": "task-succeeded", "uuid": uid, "timestamp": T0 + i + 0.25, "hostname": worker,
                       "runtime": 0.23, "result": "None"})
    ev += [
        {"type": "task-received", "uuid": "hostile", "timestamp": T0 + 100, "hostname": "celery@w0",
         "name": "evil<b>name</b>", "args": f"({HOSTILE!r},)", "kwargs": "{}"},
        {"type": "task-failed", "uuid": "hostile", "timestamp": T0 + 101, "hostname": "celery@w0",
         "exception": f"ValueError({HOSTILE!r})", "traceback": HOSTILE},
        {"type": "task-received", "uuid": "long", "timestamp": T0 + 102, "hostname": "celery@w1",
         "name": "reports.build", "args": LONG_ARGS, "kwargs": "{}", "parent_id": "task-000", "root_id": "task-000"},
        {"type": "worker-heartbeat", "hostname": "celery@w0", "timestamp": now - 1, "freq": 300.0, "active": 1,
         "processed": 1234, "loadavg": [0.5, 0.25, 0.125], "sw_ident": "py-celery", "sw_ver": "5.7.0"},
        {"type": "worker-heartbeat", "hostname": "celery@w1", "timestamp": now - 600, "freq": 2.0, "active": 0,
         "processed": 7, "loadavg": [0, 0, 0]},
    ]
    return ev


WORKER_INFO = {  # the shape collectors/celery_workers.py stores (pinged_at set when stored)
    "pool": {"implementation": "celery.concurrency.prefork:TaskPool", "max-concurrency": 2, "processes": [11, 12]},
    "pid": 10, "prefetch_count": 8, "total": {"billing.charge": 20},
    "registered": ["billing.charge [rate_limit=10/m]", "emails.send"], "revoked": 0,
    "queues": [{"name": "default", "exchange": "default", "routing_key": "default"}],
    "active": 1, "reserved": 0, "scheduled": 0, "poll_interval": 5.0,
    "broker": {"hostname": HOSTILE},
}


def _make_app(sqlite_url: str, **overrides):
    settings = Settings(database_url=sqlite_url, secret_key="test-secret", run_collectors=False,
                        sources=[SOURCE], **overrides)
    app = create_app(settings)
    writer, now = app.extensions["jobdash"].writer, time.time()
    writer.submit_many("celery_event", [("main", e) for e in _events(now)])
    writer.submit("celery_retry_link", {"source": "main", "uuid": "retry-1", "retry_of": "task-000",
                                        "name": "billing.charge", "queue": "default", "at": T0 + 200})
    writer.submit("celery_worker_info", {"source": "main", "hostname": "celery@w0", "at": now,
                                         "info": WORKER_INFO | {"pinged_at": now}})
    writer.submit("celery_worker_drain", {"source": "main", "hostname": "celery@w0", "drained": ["default"]})
    writer.submit_many("sample", [Point("celery/main", "queue_depth", v, now - 60 + i, "default")
                                  for i, v in enumerate((3, 5, 8))])
    writer.flush()
    return app


@pytest.fixture
def dash(sqlite_url):
    app = _make_app(sqlite_url)
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture
def admin(dash):
    return login(dash, "admin")


def uuids(html: str) -> list[str]:
    """The task rows of a tasks page, in order (the blank row template excluded)."""
    body = html.split('<template id="task-row">')[0]
    return re.findall(r'<tr data-uuid="([^"]+)"', body)


def element_text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    return match.group(1).strip() if match else ""


class InlineCode(HTMLParser):
    """What a strict CSP would block: inline scripts, style attributes and elements, on* handlers."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline script")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{n} on <{tag}>" for n in names if n == "style" or n.startswith("on")]


PAGES = ("/celery/main/tasks", "/celery/main/tasks?state=FAILURE", "/celery/main/tasks/hostile",
         "/celery/main/tasks/long", "/celery/main/tasks/task-000", "/celery/main/workers",
         "/celery/main/workers/celery@w0", "/celery/main/queues", "/celery/main/queues?span=7d")


def test_every_page_renders_escaped_and_csp_clean(admin):
    for path in PAGES:
        response = admin.get(path)
        assert response.status_code == 200, path
        html = response.text
        parser = InlineCode()
        parser.feed(html)
        assert parser.found == [], path
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>name" not in html, path
        assert response.headers["Cache-Control"] == "no-store"
    # The Celery link in the main navigation stays current on every page of a source.
    assert re.search(r'<a href="/celery" aria-current="page">Celery</a>', admin.get("/celery/main/workers").text)


def test_celery_index_redirects_to_the_only_source_and_lists_several(admin, sqlite_url, tmp_path):
    response = admin.get("/celery")
    assert response.status_code == 302 and response.headers["Location"] == "/celery/main/tasks"
    assert admin.get("/celery/main").headers["Location"] == "/celery/main/tasks"

    two = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'two.db'}", secret_key="s", run_collectors=False,
                              sources=[SOURCE, SourceConfig("celery", "other", {"broker": "redis://127.0.0.1:6379/15"})]))
    try:
        writer = two.extensions["jobdash"].writer
        writer.submit_many("celery_event", [("main", e) for e in _events(time.time())])
        writer.flush()
        page = login(two, "viewer").get("/celery")
        assert page.status_code == 200
        main = page.text.split('data-key="celery/main"')[1].split("</article>")[0]
        # One worker heartbeat is fresh, one ten minutes old; failures are per minute, last hour.
        assert re.search(r"<dt>workers online</dt><dd>1 <small>of 2</small>", main)
        assert re.search(r"<dt>active</dt><dd>1</dd>", main)
        assert re.search(r"<dt>failures, last hour</dt><dd>7</dd>", main)  # 6 of task-0x0 + "hostile"
        assert 'data-key="celery/other"' in page.text
    finally:
        two.extensions["jobdash"].stop()

    none = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'none.db'}", secret_key="s", run_collectors=False))
    try:
        page = login(none, "viewer").get("/celery")
        assert page.status_code == 200 and "No Celery source configured" in page.text and "[[celery]]" in page.text
    finally:
        none.extensions["jobdash"].stop()


def test_tasks_list_is_newest_first_with_states_times_and_a_total(admin):
    html = admin.get("/celery/main/tasks").text
    rows = uuids(html)
    assert rows[:4] == ["retry-1", "long", "hostile", "task-059"] and len(rows) == 50
    assert element_text(html, "total") == "63"
    row = html.split('<tr data-uuid="task-050"')[1].split("</tr>")[0]
    assert '<span class="state-symbol" aria-hidden="true">✕</span> <span class="state-label">failure</span>' in row
    assert "billing.charge" not in row and "reports.build" in row  # 50 % 3 == 2
    assert '<a data-field="uuid" href="/celery/main/tasks/task-050">task-050</a>' in row
    assert re.search(r'<time data-field="seen" data-ts="[\d.]+" datetime="[^"]+Z" title="[^"]+\.\d{3}Z">\d+ min ago</time>',
                     row)
    assert "(50,) {&#39;user_id&#39;: 1}" in row
    ok = html.split('<tr data-uuid="task-059"')[1].split("</tr>")[0]
    assert "230 ms" in ok and "✓" in ok and "celery@w1" in ok and ">mail<" in ok
    # Hostile text is escaped, in cells and in attributes alike.
    hostile = html.split('<tr data-uuid="hostile"')[1].split("</tr>")[0]
    assert "evil&lt;b&gt;name&lt;/b&gt;" in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img" in hostile
    # Long args are shortened in the list; the page is live only on page one without errors.
    long_row = html.split('<tr data-uuid="long"')[1].split("</tr>")[0]
    assert "x" * 100 not in long_row.split("title=")[0] and "…" in long_row
    assert 'data-live="true"' in html and 'data-api-query="limit=50"' in html


@pytest.mark.parametrize("query, expected", [
    ("state=FAILURE", {f"task-{i:03d}" for i in range(0, 60, 10)} | {"hostile"}),
    ("state=failure&name=billing", {f"task-{i:03d}" for i in range(0, 60, 10) if i % 3 == 0}),
    ("worker=w1&queue=mail&name=emails", {f"task-{i:03d}" for i in range(60) if i % 2 == 1 and i % 3 == 1}),
    ("q=state:FAILURE+name:billing.charge+exception:Timeout", {f"task-{i:03d}" for i in range(0, 60, 30)}),
    ("q=kwargs:%22%27user_id%27:+3%7D%22", {f"task-{i:03d}" for i in range(60) if i % 7 == 3}),
    ("q=args:script", {"hostile"}),
])
def test_filters_and_search_narrow_the_list(admin, query, expected):
    response = admin.get(f"/celery/main/tasks?{query}")
    assert response.status_code == 200
    assert set(uuids(response.text)) == expected
    assert element_text(response.text, "total") == str(len(expected))


def test_time_range_without_a_zone_is_utc_and_goes_to_the_api_as_epoch_seconds(admin):
    from datetime import datetime, timezone

    since = datetime.fromtimestamp(T0 + 10, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    until = datetime.fromtimestamp(T0 + 19.5, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    html = admin.get(f"/celery/main/tasks?since={since}&until={until}&state=SUCCESS").text
    assert set(uuids(html)) == {f"task-{i:03d}" for i in range(11, 20)}
    query = re.search(r'data-api-query="([^"]+)"', html).group(1).replace("&amp;", "&")
    api = admin.get(f"/api/celery/main/tasks?{query}").json
    assert {t["uuid"] for t in api["tasks"]} == {f"task-{i:03d}" for i in range(11, 20)}
    # The bulk retry's range starts as the list's own.
    assert f'value="{since}Z"' in html


def test_older_pages_follow_the_cursor_and_keep_the_filter(admin):
    first = admin.get("/celery/main/tasks?name=.&q=args:%2C").text  # every task whose args hold a comma
    older = re.search(r'<a href="([^"]+)" id="older" rel="next">Older →</a>', first)
    assert older and 'id="newest"' not in first
    href = older.group(1).replace("&amp;", "&")
    assert "name=." in href and "q=args" in href and "after=" in href
    second = admin.get(href).text
    assert set(uuids(first)).isdisjoint(uuids(second))
    # Every task but the retry link (args unknown) and "hostile" (no dot in its name).
    assert len(uuids(first)) + len(uuids(second)) == 61
    assert 'id="older"' not in second and 'data-live="false"' in second
    newest = re.search(r'<a href="([^"]+)" id="newest">← Newest</a>', second).group(1).replace("&amp;", "&")
    assert "after=" not in newest and "name=." in newest


def test_the_total_is_capped(admin, monkeypatch):
    monkeypatch.setattr(celery_queries, "COUNT_CAP", 40)
    html = admin.get("/celery/main/tasks").text
    assert element_text(html, "total") == "40+"


@pytest.mark.parametrize("query, message", [
    ("q=colour:red", "search: unknown key &#39;colour&#39;"),
    ("q=args:%22unclosed", "No closing quotation"),
    ("q=state:DONE", "state must be one of"),
    ("state=DONE", "state: must be one of"),
    ("since=yesterday", "since: &#39;yesterday&#39; is neither epoch seconds nor a time"),
    ("since=2030-01-01&until=2029-01-01", "since: must not be later than until"),
    ("after=forged!!", "cursor: not one this server made"),
])
def test_a_malformed_filter_or_search_is_a_400_with_the_message_by_the_box(admin, query, message):
    response = admin.get(f"/celery/main/tasks?{query}")
    assert response.status_code == 400
    error = re.search(r'<p class="form-error" id="search-error" role="alert">(.*?)</p>', response.text, re.S)
    assert error and message in error.group(1)
    assert uuids(response.text) == [] and 'data-live="false"' in response.text
    # What was typed stays in the form, to be fixed.
    if query.startswith("q="):
        assert 'id="search" value="' in response.text


def test_unknown_source_task_and_worker_are_404_pages_saying_so(admin):
    for path, says in (("/celery/nope/tasks", "no Celery source named &#39;nope&#39;"),
                       ("/celery/nope", "no Celery source named"),
                       ("/celery/nope/workers", "no Celery source named"),
                       ("/celery/main/tasks/no-such-uuid", "No task &#39;no-such-uuid&#39; is known"),
                       ("/celery/main/tasks/%3Cscript%3E", "No task &#39;&lt;script&gt;&#39;"),
                       ("/celery/main/workers/celery@gone", "No worker &#39;celery@gone&#39;")):
        response = admin.get(path)
        assert response.status_code == 404, path
        assert says.lower() in response.text.lower(), path


def test_task_detail_shows_the_lifecycle_fields_texts_and_links(admin):
    html = admin.get("/celery/main/tasks/task-000").text
    steps = re.findall(r'<li data-step="(\w+)">', html)
    assert steps == ["sent", "received", "started", "failed"]
    failed = html.split('<li data-step="failed">')[1].split("</li>")[0]
    assert "+480 ms" in failed  # started at +0.02 s, failed at +0.5 s
    assert "+10 ms" in html.split('<li data-step="received">')[1].split("</li>")[0]
    for label, value in (("queue", "default"), ("routing key", "default"), ("retries", "0"), ("worker", "celery@w0")):
        assert re.search(rf"<dt>{label}</dt><dd[^>]*>(<a [^>]+>)?{value}", html), label
    # Related: the child (parent_id), the retry jobdash made of it.
    assert '<div id="children">' in html and "/celery/main/tasks/long" in html
    assert '<div id="retried-by">' in html and "/celery/main/tasks/retry-1" in html
    # A long traceback is collapsed with its size; the exception is short and inline.
    traceback = html.split('data-text="traceback"')[1].split("</section>")[0]
    assert "<details" in traceback and f"{len(TRACEBACK):,} characters" in traceback and " open" not in traceback
    exception = html.split('data-text="exception"')[1].split("</section>")[0]
    assert "<details" not in exception and "Timeout(&#39;gateway&#39;)" in exception

    retry = admin.get("/celery/main/tasks/retry-1").text
    assert '<dd id="retry-of"><a href="/celery/main/tasks/task-000"' in retry

    child = admin.get("/celery/main/tasks/long").text
    args = child.split('data-text="args"')[1].split("</section>")[0]
    assert "truncated by Celery" in args and "<details" in args
    assert "/celery/main/tasks/task-000" in child.split("<dt>parent</dt>")[1]

    hostile = admin.get("/celery/main/tasks/hostile").text
    assert "evil&lt;b&gt;name&lt;/b&gt;" in hostile and HOSTILE not in hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in hostile


def _actions_on(html: str) -> set[str]:
    return set(re.findall(r'<form class="action[^"]*" data-action="([^"]+)"', html))


def test_admins_get_the_controls_that_fit_the_state(admin):
    assert _actions_on(admin.get("/celery/main/tasks").text) == {"celery.retry_selected", "celery.retry_failures"}
    assert 'class="pick-box"' in admin.get("/celery/main/tasks").text
    failed = admin.get("/celery/main/tasks/task-000").text
    assert _actions_on(failed) == {"celery.retry"}  # finished: nothing to revoke
    assert 'data-confirm="true"' in failed and "Re-send billing.charge with its stored arguments (0,)" in failed
    running = admin.get("/celery/main/tasks/long").text
    assert _actions_on(running) == {"celery.revoke", "celery.terminate"}
    assert '<option>SIGKILL</option>' in running
    worker = admin.get("/celery/main/workers/celery@w0").text
    assert _actions_on(worker) == {"celery.drain", "celery.resume", "celery.pool_grow", "celery.pool_shrink",
                                   "celery.autoscale", "celery.pool_restart", "celery.shutdown", "celery.rate_limit",
                                   "celery.time_limit"}
    confirmed = set(re.findall(r'data-action="([^"]+)" data-source="main" data-target="[^"]*"\s+data-confirm="true"',
                               worker))
    assert confirmed == {"celery.pool_restart", "celery.shutdown"}
    assert re.search(r'<meta name="csrf-token" content="[0-9a-f]{64}">', worker)


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_viewers_and_managers_see_no_controls(dash, role):
    client = login(dash, role)
    for path in PAGES:
        html = client.get(path).text
        assert _actions_on(html) == set(), path
        assert "pick-box" not in html and "pick-all" not in html, path


def test_read_only_hides_every_control_even_from_admins(sqlite_url):
    app = _make_app(sqlite_url, read_only=True)
    try:
        client = login(app, "admin")
        for path in PAGES:
            html = client.get(path).text
            assert _actions_on(html) == set(), path
            assert "pick-box" not in html
            assert "read-only: controls are turned off" in html
    finally:
        app.extensions["jobdash"].stop()


def test_workers_list_and_detail_show_liveness_pool_queues_and_what_inspect_said(admin):
    html = admin.get("/celery/main/workers").text
    w0 = html.split('data-hostname="celery@w0"')[1].split("</tr>")[0]
    w1 = html.split('data-hostname="celery@w1"')[1].split("</tr>")[0]
    assert 'data-online="true"' in w0 and ">online<" in w0
    assert 'data-online="false"' in w1 and ">offline<" in w1 and "10 min ago" in w1
    assert "prefork × 2" in w0 and ">default<" in w0 and ">8<" in w0 and "1,234" in w0
    assert "0.50 0.25 0.12" in w0
    assert 'class="badge drained" data-field="drained"' in w0 and "hidden" not in w0.split("badge drained")[1][:60]
    assert re.search(r'class="badge drained" data-field="drained" hidden', w1)
    assert re.search(r'<span id="online-count">1</span> of <span id="worker-count">2</span>', html)

    detail = admin.get("/celery/main/workers/celery@w0").text
    assert "drained of default" in detail
    registered = detail.split('class="grid registered"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-task-name="([^"]+)">', registered) == ["billing.charge", "emails.send"]
    assert "rate_limit=10/m" in registered
    # The rest of inspect's reply, generically: keys as terms, hostile values as text.
    assert "<summary>pool <span" in detail and "<dt>max-concurrency</dt>" in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and HOSTILE not in detail


def test_queues_page_shows_depth_now_and_runtime_per_task_name(admin):
    html = admin.get("/celery/main/queues").text
    depth = html.split('<tr data-queue="default">')[1].split("</tr>")[0]
    assert '<td class="num">8</td>' in depth
    names = html.split('id="names"')[1].split("</table>")[0]
    billing = names.split('<tr data-name="billing.charge">')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(.*?)</td>', billing, re.S)
    assert cells[0] == "18" and ">2</a>" in cells[1] and cells[3] == "10.0 %"  # 20 tasks, 2 failed
    assert "ms" in cells[4] and "ms" in cells[5]  # p50 / p95 from the merged histograms
    assert 'href="/vendor/uplot/dist/uPlot.min.css"' in html and "js/celery_queues.js" in html
    assert 'aria-current="true">1 h<' in html
    assert 'aria-current="true">7 d<' in admin.get("/celery/main/queues?span=7d").text
    assert 'aria-current="true">1 h<' in admin.get("/celery/main/queues?span=bogus").text


def test_a_task_whose_arguments_hold_a_lone_surrogate_still_shows(dash, admin):
    # A worker sends such text for a str built from undecodable bytes; it is kept, escaped visibly.
    writer = dash.extensions["jobdash"].writer
    writer.submit("celery_event", ("main", {"type": "task-received", "uuid": "surrogate", "timestamp": time.time(),
                                            "hostname": "celery@w0", "name": "odd.bytes", "args": "('x\udcffy',)"}))
    writer.flush()
    response = admin.get("/celery/main/tasks/surrogate")
    assert response.status_code == 200 and "odd.bytes" in response.text
    assert "x\\udcffy" in response.text

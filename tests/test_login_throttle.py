"""The login throttle: atomic under parallel guesses, per address across names, per account with
growing delays that never lock a user out of a browser they logged in from; behind trusted proxies."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import insert

from dashboard import create_app
from dashboard.auth import sessions
from dashboard.auth import users as accounts
from dashboard.config import Settings
from dashboard.store.models import LoginFailure
from tests.conftest import PASSWORD, add_user, form_csrf


def attempt(client, name: str, password: str, ip: str = "10.0.0.1", **extra):
    token = form_csrf(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf": token},
                       environ_base={"REMOTE_ADDR": ip}, **extra)


def test_forty_parallel_wrong_passwords_get_at_most_five_checked(app, monkeypatch):
    add_user(app, "ann", "viewer")
    checked = []
    real = accounts.authenticate

    def counting(engine, name, password):
        checked.append(name)
        return real(engine, name, password)

    monkeypatch.setattr(accounts, "authenticate", counting)
    clients = [app.test_client() for _ in range(40)]
    tokens = [form_csrf(c.get("/login").text) for c in clients]
    start = threading.Barrier(40)
    codes: list[int] = []

    def guess(client, token):
        start.wait()
        codes.append(client.post("/login", data={"name": "ann", "password": "wrong password!", "csrf": token},
                                  environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(set(codes)) == [401, 429] and len(codes) == 40
    assert codes.count(401) == len(checked) <= sessions.MAX_FAILURES


def test_one_address_guessing_many_names_is_held_back_for_every_name(app):
    client = app.test_client()
    codes = [attempt(client, f"user{n}", "wrong password!").status_code for n in range(8) for _ in range(3)]
    assert codes[:sessions.IP_MAX_FAILURES] == [401] * sessions.IP_MAX_FAILURES
    assert set(codes[sessions.IP_MAX_FAILURES:]) == {429}
    add_user(app, "ann", "viewer")
    assert attempt(client, "ann", PASSWORD).status_code == 429  # a ninth name from that address waits too
    assert attempt(app.test_client(), "ann", PASSWORD, ip="10.0.0.2").status_code == 302  # not another address


def test_account_delays_grow_but_a_browser_that_logged_in_before_still_gets_in(app):
    add_user(app, "ann", "viewer")
    own_browser = app.test_client()
    assert attempt(own_browser, "ann", PASSWORD, ip="192.168.1.5").status_code == 302
    own_browser.post("/logout", data={"csrf": own_browser.get("/api/me").json["csrf"]})
    # Guesses from many addresses, a few each: no address reaches its own limit.
    attacker = app.test_client()
    for n in range(sessions.ACCOUNT_FREE_FAILURES):
        assert attempt(attacker, "ann", "wrong password!", ip=f"172.16.0.{n}").status_code == 401
    # An attacker patient enough to wait out each delay makes it grow (written directly: waiting takes minutes).
    engine = app.extensions["jobdash"].engine
    with engine.begin() as conn:
        conn.execute(insert(LoginFailure), [{"name": "ann", "ip": f"172.16.2.{n}", "ts": time.time()} for n in range(6)])
    held = attempt(attacker, "ann", PASSWORD, ip="172.16.1.1")
    assert held.status_code == 429 and 60 <= int(held.headers["Retry-After"]) <= sessions.ACCOUNT_MAX_DELAY
    # A new browser, even on the user's own network, waits as well ...
    assert attempt(app.test_client(), "ann", PASSWORD, ip="192.168.1.5").status_code == 429
    # ... but the browser ann logged in from before is not held back by strangers' guesses.
    assert attempt(own_browser, "ann", PASSWORD, ip="192.168.1.5").status_code == 302
    assert own_browser.get("/api/me").json["name"] == "ann"


def test_the_delay_doubles_with_each_further_failure():
    now, base = 1000.0, sessions.ACCOUNT_FREE_FAILURES
    waits = [sessions._wait(now, [], [], [now] * n) for n in range(base, base + 4)]
    assert waits == [2.0, 4.0, 8.0, 16.0]
    assert sessions._wait(now, [], [], [now] * 40) == sessions.ACCOUNT_MAX_DELAY
    assert sessions._wait(now, [], [], [now] * (base - 1)) == 0


@pytest.fixture
def proxied(sqlite_url):
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", trusted_proxies=1))
    yield app
    app.extensions["jobdash"].stop()


def test_behind_a_trusted_proxy_the_client_address_is_throttled_and_cookies_are_secure(proxied):
    add_user(proxied, "ann", "viewer")
    via_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    client = proxied.test_client()
    for _ in range(sessions.MAX_FAILURES):
        assert attempt(client, "ann", "wrong password!", ip="127.0.0.1",
                       headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401
    assert attempt(client, "ann", PASSWORD, ip="127.0.0.1", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    # Another client behind the same proxy is another address.
    other = proxied.test_client()
    headers = {"X-Forwarded-For": "198.51.100.2", "X-Forwarded-Proto": "https"}
    token = form_csrf(other.get("/login", headers=headers, environ_base=via_proxy).text)
    response = other.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": token}, headers=headers,
                          environ_base=via_proxy)
    assert response.status_code == 302
    assert all("Secure" in c for c in response.headers.getlist("Set-Cookie"))
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(app):
    add_user(app, "ann", "viewer")
    client = app.test_client()
    for n in range(sessions.MAX_FAILURES):
        assert attempt(client, "ann", "wrong password!", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401
    assert attempt(client, "ann", PASSWORD, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 429
    plain = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in plain.headers


def test_two_writers_on_one_database_let_at_most_five_attempts_through(store, migrated_url):
    """Counting and recording are one step on SQLite and PostgreSQL alike, across processes' writers."""
    from dashboard.store import HANDLERS, Writer, make_engine

    engine, writer = store
    other_engine = make_engine(migrated_url)
    other = Writer(other_engine, HANDLERS)
    other.start()
    try:
        start, waits = threading.Barrier(40), []

        def go(w):
            start.wait()
            waits.append(sessions.attempt(w, "ann", "10.0.0.3"))

        threads = [threading.Thread(target=go, args=(writer if i % 2 else other,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(waits) == 40 and waits.count(0) == sessions.MAX_FAILURES
    finally:
        other.stop()
        other_engine.dispose()

"""Users, roles, sessions, CSRF, throttling, API tokens, the CLI and the security headers."""
from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dashboard import create_app
from dashboard.auth.sessions import MAX_FAILURES
from dashboard.auth.users import ensure_demo_admin
from dashboard.auth.web import SECURITY_HEADERS
from dashboard.cli import main
from dashboard.config import Settings
from dashboard.demo.processes import free_port
from dashboard.store.audit_log import AuditFilter, read_audit
from dashboard.store.models import ApiToken, LoginSession
from tests.conftest import PASSWORD, add_user, csrf_of, form_csrf, login


def audit_rows(app, action: str) -> list[dict]:
    return read_audit(app.extensions["jobdash"].engine, AuditFilter(action=action))


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    """A new client presenting a given session cookie (a replayed or planted one)."""
    client = app.test_client()
    client.set_cookie("session", value)
    return client


# -- anonymous -------------------------------------------------------------------------------

def test_anonymous_pages_redirect_to_login_and_the_api_answers_401(client):
    page = client.get("/celery?x=1")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/celery?x%3D1"
    api = client.get("/api/overview")
    assert api.status_code == 401 and api.json == {"ok": False, "error": "login required"}
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/actions/consul.deregister", json={}).status_code == 401
    assert client.get("/unknown-page").status_code == 302  # nothing about the site is told before login


def test_health_readiness_static_and_login_stay_public(client):
    for path in ("/healthz", "/readyz", "/login", "/static/css/app.css"):
        assert client.get(path).status_code == 200, path


def test_every_response_carries_the_security_headers(app, client):
    admin = login(app, "admin")
    responses = [client.get(p) for p in ("/healthz", "/login", "/", "/api/overview", "/static/css/app.css", "/nope")]
    responses += [admin.get(p) for p in ("/", "/audit", "/tokens", "/users", "/nope")]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.path, name)
    assert "script-src 'self';" in SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]


# -- login, sessions, logout -----------------------------------------------------------------

def test_login_sets_a_httponly_lax_cookie_secure_only_over_tls(app):
    add_user(app, "ann", "viewer")
    for base, secure in (("http://localhost", False), ("https://localhost", True)):
        client = app.test_client()
        token = form_csrf(client.get("/login", base_url=base).text)
        response = client.post("/login", base_url=base, data={"name": "ann", "password": PASSWORD, "csrf": token})
        assert response.status_code == 302
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_wrong_password_is_401_and_audited_as_failed(app, client):
    add_user(app, "ann", "viewer")
    token = form_csrf(client.get("/login").text)
    response = client.post("/login", data={"name": "ann", "password": "wrong password!", "csrf": token})
    assert response.status_code == 401 and "Wrong name or password." in response.text
    assert client.get("/api/me").status_code == 401
    (row,) = audit_rows(app, "auth.login")
    assert (row["user"], row["outcome"]) == ("ann", "failed")


def test_login_needs_the_csrf_token_of_its_form(app, client):
    add_user(app, "ann", "viewer")
    client.get("/login")
    assert client.post("/login", data={"name": "ann", "password": PASSWORD}).status_code == 403
    assert client.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": "0" * 64}).status_code == 403
    assert client.get("/api/me").status_code == 401


def test_login_renews_the_session_id_so_a_planted_cookie_logs_nobody_in(app):
    add_user(app, "ann", "viewer")
    attacker = app.test_client()
    attacker.get("/login")
    planted = session_cookie(attacker)
    victim = with_cookie(app, planted)
    victim.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": form_csrf(victim.get("/login").text)})
    assert victim.get("/api/me").json["name"] == "ann"
    assert session_cookie(victim) != planted
    assert with_cookie(app, planted).get("/api/me").status_code == 401
    # Logging in again replaces the server-side session too: the first cookie stops working.
    first = session_cookie(victim)
    victim.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": csrf_of(victim)})
    assert session_cookie(victim) != first
    assert with_cookie(app, first).get("/api/me").status_code == 401


def test_logout_ends_the_session_on_the_server_and_a_replayed_cookie_fails(app):
    client = login(app, "admin")
    old_cookie, old_csrf = session_cookie(client), csrf_of(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 403  # no CSRF token: still logged in
    assert client.get("/api/me").status_code == 200
    response = client.post("/logout", data={"csrf": old_csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    replay = with_cookie(app, old_cookie)
    assert replay.get("/api/me").status_code == 401
    assert replay.get("/").status_code == 302
    replayed = replay.post("/api/actions/consul.maintenance", json={}, headers={"X-CSRF-Token": old_csrf})
    assert replayed.status_code == 401
    with app.extensions["jobdash"].engine.connect() as conn:
        assert conn.execute(select(LoginSession)).all() == []


def test_session_ids_are_stored_hashed(app):
    client = login(app, "viewer")
    with client.session_transaction() as flask_session:
        sid = flask_session["sid"]
    with app.extensions["jobdash"].engine.connect() as conn:
        (row,) = conn.execute(select(LoginSession.id_hash)).all()
    assert row.id_hash == hashlib.sha256(sid.encode()).hexdigest() != sid


def test_after_safe_next_only_same_site_paths_are_followed(app):
    add_user(app, "ann", "viewer")
    for wanted, landed in (("/celery", "/celery"), ("//evil.example/", "/"), ("https://evil.example/", "/"),
                           ("/\\evil.example", "/")):
        client = app.test_client()
        token = form_csrf(client.get("/login").text)
        response = client.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": token, "next": wanted})
        assert response.headers["Location"] == landed, wanted


def test_five_failures_throttle_that_name_from_that_address_across_processes(app, settings):
    add_user(app, "ann", "viewer")
    client = app.test_client()

    def attempt(password, ip="10.0.0.1", target=client):
        token = form_csrf(target.get("/login").text)
        return target.post("/login", data={"name": "ann", "password": password, "csrf": token},
                           environ_base={"REMOTE_ADDR": ip})

    for _ in range(MAX_FAILURES):
        assert attempt("wrong password!").status_code == 401
    throttled = attempt(PASSWORD)  # even the right password now waits
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 15 * 60
    assert client.get("/api/me").status_code == 401
    assert audit_rows(app, "auth.login")[0]["outcome"] == "refused"
    # A second process on the same database sees the same failures.
    other = create_app(settings)
    try:
        assert attempt(PASSWORD, target=other.test_client()).status_code == 429
    finally:
        other.extensions["jobdash"].stop()
    # Another address is not held back by them.
    assert attempt(PASSWORD, ip="10.0.0.2", target=app.test_client()).status_code == 302


# -- roles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role, allowed", [
    ("viewer", {"/", "/celery", "/api/overview", "/tokens", "/api/me"}),
    ("manager", {"/", "/celery", "/api/overview", "/tokens", "/api/me", "/history"}),
    ("admin", {"/", "/celery", "/api/overview", "/tokens", "/api/me", "/history", "/audit", "/audit.csv", "/users"}),
])
def test_each_role_opens_its_pages_and_is_refused_the_rest(app, role, allowed):
    client = login(app, role)
    for path in ("/", "/celery", "/api/overview", "/tokens", "/api/me", "/history", "/audit", "/audit.csv", "/users"):
        assert client.get(path).status_code == (200 if path in allowed else 403), path


def test_users_page_adds_and_removes_users_and_a_removed_user_is_logged_out(app):
    admin = login(app, "admin")
    token = csrf_of(admin)
    form = {"name": "bob", "role": "manager", "password": PASSWORD, "password2": PASSWORD, "csrf": token}
    assert admin.post("/users", data={**form, "password2": "something else"}).status_code == 400
    assert admin.post("/users", data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
    assert admin.post("/users", data=form).status_code == 302
    bob = login(app, "manager", name="bob")
    assert bob.get("/history").status_code == 200
    assert bob.post("/users", data={**form, "name": "eve", "csrf": csrf_of(bob)}).status_code == 403
    assert admin.post("/users/admin/remove", data={"csrf": token}).status_code == 400  # not oneself
    assert admin.post("/users/bob/remove", data={"csrf": token}).status_code == 302
    assert bob.get("/api/me").status_code == 401
    rows = read_audit(app.extensions["jobdash"].engine, AuditFilter())
    outcomes = [(r["action"], r["target"], r["outcome"]) for r in rows if r["action"].startswith("user.")]
    assert outcomes == [("user.remove", "bob", "ok"), ("user.remove", "admin", "refused"),
                        ("user.add", "/users", "refused"),  # bob, a manager, tried
                        ("user.add", "bob", "ok"), ("user.add", "/users", "refused"),  # no CSRF token
                        ("user.add", "bob", "refused")]  # passwords differ


def test_passwords_are_argon2_hashes(app):
    add_user(app, "ann", "viewer")
    from dashboard.store.auth_store import user_row

    assert user_row(app.extensions["jobdash"].engine, "ann")["password_hash"].startswith("$argon2id$")


def test_demo_admin_gets_a_fresh_random_password_each_time(app):
    runtime = app.extensions["jobdash"]
    first = ensure_demo_admin(runtime)
    login(app, "admin", password=first)
    second = ensure_demo_admin(runtime)
    assert second != first and len(second) >= 16
    client = app.test_client()
    token = form_csrf(client.get("/login").text)
    response = client.post("/login", data={"name": "admin", "password": first, "csrf": token})
    assert response.status_code == 401
    login(app, "admin", password=second)


# -- API tokens ------------------------------------------------------------------------------

def create_token(client, name="script") -> str:
    response = client.post("/tokens", data={"name": name, "csrf": csrf_of(client)})
    assert response.status_code == 201
    return re.search(r'id="new-token">([^<]+)<', response.text).group(1)


def test_a_token_is_shown_once_stored_hashed_and_carries_its_users_role(app):
    viewer = login(app, "viewer")
    token = create_token(viewer)
    assert token not in viewer.get("/tokens").text
    with app.extensions["jobdash"].engine.connect() as conn:
        (row,) = conn.execute(select(ApiToken.token_hash, ApiToken.prefix)).all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token.startswith(row.prefix)
    bearer = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert bearer.get("/api/me", headers=headers).json == {"name": "viewer", "role": "viewer", "via": "bearer"}
    assert bearer.get("/api/overview", headers=headers).status_code == 200
    assert bearer.get("/", headers=headers).status_code == 302  # tokens are for the API, not the pages
    assert bearer.post("/api/actions/consul.maintenance", json={}, headers=headers).status_code == 403


def test_a_revoked_or_wrong_token_is_refused_and_never_falls_back_to_the_cookie(app):
    admin = login(app, "admin")
    token = create_token(admin)
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/me", headers=headers).status_code == 200
    (own,) = [t for t in admin.get("/tokens").text.split("/tokens/")[1:2]]
    token_id = int(own.split("/")[0])
    other = login(app, "viewer")
    assert other.post(f"/tokens/{token_id}/revoke", data={"csrf": csrf_of(other)}).status_code == 404
    assert app.test_client().get("/api/me", headers=headers).status_code == 200
    assert admin.post(f"/tokens/{token_id}/revoke", data={"csrf": csrf_of(admin)}).status_code == 302
    assert app.test_client().get("/api/me", headers=headers).status_code == 401
    assert admin.get("/api/me", headers={"Authorization": "Bearer jd_wrong"}).status_code == 401
    assert [r["outcome"] for r in audit_rows(app, "token.revoke")] == ["ok", "refused"]


# -- Socket.IO ---------------------------------------------------------------------------------

def test_an_anonymous_socket_is_refused_and_a_logged_out_one_can_act_no_more(app):
    socketio = app.extensions["socketio"]
    assert not socketio.test_client(app, namespace="/live").is_connected("/live")
    client = login(app, "admin")
    sock = socketio.test_client(app, namespace="/live", flask_test_client=client)
    assert sock.is_connected("/live")
    token = csrf_of(client)
    client.post("/logout", data={"csrf": token})
    assert not sock.is_connected("/live")  # logout ends the session's sockets at once


# -- the command line ------------------------------------------------------------------------

def test_cli_adds_lists_and_removes_users(tmp_path, sqlite_url):
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = '{sqlite_url}'\n")
    runner = CliRunner()

    def run(*args, stdin=None):
        return runner.invoke(main, ["--config", str(config), "user", *args], input=stdin)

    assert run("add", "ann", "--role", "admin", stdin=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    assert run("add", "bob", "--password-stdin", stdin=f"{PASSWORD}\n").exit_code == 0
    result = run("add", "bob", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert result.exit_code == 2 and "already exists" in result.output
    assert run("add", "cy", "--password-stdin", stdin="short\n").exit_code == 2
    assert run("list").output.split("\n") == ["ann\tadmin", "bob\tviewer", ""]
    assert run("remove", "bob").exit_code == 0
    assert run("remove", "bob").exit_code == 2
    assert run("list").output == "ann\tadmin\n"
    app = create_app(Settings(database_url=sqlite_url, secret_key="k"), start=False)
    app.extensions["jobdash"].writer.start()
    try:
        login(app, "admin", name="ann")
        rows = read_audit(app.extensions["jobdash"].engine, AuditFilter())
        assert [(r["via"], r["action"], r["target"], r["outcome"]) for r in rows if r["via"] == "cli"] == [
            ("cli", "user.remove", "bob", "refused"), ("cli", "user.remove", "bob", "ok"),
            ("cli", "user.add", "cy", "refused"), ("cli", "user.add", "bob", "refused"),
            ("cli", "user.add", "bob", "ok"), ("cli", "user.add", "ann", "ok")]
    finally:
        app.extensions["jobdash"].stop()


def test_serve_without_users_starts_read_only_and_says_how_to_add_one(tmp_path):
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = 'sqlite:///{tmp_path / 'j.db'}'\n")
    proc = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "--config", str(config), "serve", "--port",
                             str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any("serving on" in line for line in lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        output = "".join(lines)
        assert "read-only" in output and "jobdash user add NAME --role admin" in output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)

"""Login, logout, one's own API tokens, user management (admin) and /api/me."""
from __future__ import annotations

import math

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for

from dashboard.auth import csrf, devices, sessions
from dashboard.auth import tokens as api_tokens
from dashboard.auth import users as accounts
from dashboard.auth.sockets import end_socket_sessions
from dashboard.auth.web import audit_event, audited_as, current_user, requires_role, safe_next
from dashboard.store import auth_store

auth = Blueprint("auth", __name__)


def _runtime():
    return current_app.extensions["jobdash"]


@auth.route("/login", methods=["GET", "POST"])
@audited_as("auth.login")
def login():
    """The login form; on success a new server-side session replaces whatever the cookie held."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(next_url)
        return render_template("login.html", page="login", next=next_url)
    runtime = _runtime()
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    ip = request.remote_addr or ""  # the client's, behind trusted_proxies proxies
    device = devices.known_for(name)
    wait = sessions.attempt(runtime.writer, name, ip, device)
    if wait:
        audit_event("refused", name=name, error=f"too many failed logins from {ip}; retry in {wait} s")
        later = f"{wait} s" if wait < 120 else f"{math.ceil(wait / 60)} min"
        error = f"Too many failed attempts. Try again in {later}."
        return (render_template("login.html", page="login", next=next_url, name=name, error=error), 429,
                {"Retry-After": str(wait)})
    user = accounts.authenticate(runtime.engine, name, password)
    if user is None:  # the attempt stays recorded as a failure
        audit_event("failed", name=name, error=f"wrong name or password (from {ip})")
        return render_template("login.html", page="login", next=next_url, name=name,
                               error="Wrong name or password."), 401
    sessions.clear_failures(runtime.writer, name, sessions.key_of(ip, device))
    if session.get("sid"):
        end_socket_sessions(session_ids=[session["sid"]])
        sessions.end(runtime.writer, session["sid"])
    # A fresh session id at login: one planted in the browser beforehand is worth nothing.
    session.clear()
    session["sid"] = sessions.start(runtime.writer, user, runtime.settings.session_lifetime_hours * 3600)
    audit_event("ok", user=user)
    response = redirect(next_url)
    devices.remember(response, user.name)
    return response


@auth.post("/logout")
@audited_as("auth.logout")
def logout():
    """End the session on the server, so that even a copy of the cookie is logged out."""
    end_socket_sessions(session_ids=[session["sid"]])
    sessions.end(_runtime().writer, session["sid"])
    audit_event("ok")
    session.clear()
    return redirect(url_for("auth.login"))


@auth.get("/api/me")
def me():
    """Who is asking, their role, and (for a browser session) the CSRF token for fetch()."""
    user = current_user()
    body = {"name": user.name, "role": user.role, "via": g.via}
    if g.via == "session":
        body["csrf"] = csrf.token()
    return jsonify(body)


# -- API tokens (one's own) ------------------------------------------------------------------

def _tokens_page(status: int = 200, **extra):
    own = api_tokens.owned_by(_runtime().engine, current_user())
    return render_template("tokens.html", page="tokens", tokens=own, **extra), status


@auth.get("/tokens")
def tokens():
    return _tokens_page()


@auth.post("/tokens")
@audited_as("token.create")
def create_token():
    """Make a token and show it, this once."""
    name = request.form.get("name", "")
    try:
        token = api_tokens.create(_runtime().writer, current_user(), name)
    except ValueError as exc:
        audit_event("refused", target=name, error=str(exc))
        return _tokens_page(400, error=str(exc))
    audit_event("ok", target=name)
    return _tokens_page(201, new_token=token, new_name=name)


@auth.post("/tokens/<int:token_id>/revoke")
@audited_as("token.revoke")
def revoke_token(token_id: int):
    runtime, user = _runtime(), current_user()
    own = {t["id"]: t for t in api_tokens.owned_by(runtime.engine, user)}
    if token_id not in own:
        audit_event("refused", target=str(token_id), error="no such token of yours")
        return _tokens_page(404, error="No such token of yours.")
    api_tokens.revoke(runtime.writer, user, token_id)
    audit_event("ok", target=f"{token_id} ({own[token_id]['name']})")
    return redirect(url_for("auth.tokens"))


# -- users (admin) ---------------------------------------------------------------------------

def _users_page(status: int = 200, **extra):
    return render_template("users.html", page="users", users=auth_store.user_rows(_runtime().engine),
                           roles=accounts.ROLES, **extra), status


@auth.get("/users")
@requires_role("admin")
def users():
    return _users_page()


@auth.post("/users")
@requires_role("admin")
@audited_as("user.add")
def add_user():
    runtime = _runtime()
    name, role = request.form.get("name", "").strip(), request.form.get("role", "")
    password = request.form.get("password", "")
    try:
        if password != request.form.get("password2", ""):
            raise ValueError("the two passwords differ")
        accounts.add_user(runtime.writer, runtime.engine, name, role, password)
    except ValueError as exc:
        audit_event("refused", target=name, params={"role": role}, error=str(exc))
        return _users_page(400, error=str(exc), name=name, role=role)
    audit_event("ok", target=name, params={"role": role})
    return redirect(url_for("auth.users"))


@auth.post("/users/<name>/remove")
@requires_role("admin")
@audited_as("user.remove")
def remove_user(name: str):
    runtime = _runtime()
    try:
        if name == current_user().name:
            raise ValueError("you cannot remove yourself; another admin can")
        accounts.remove_user(runtime.writer, runtime.engine, name)
        end_socket_sessions(user_name=name)
    except ValueError as exc:
        audit_event("refused", target=name, error=str(exc))
        return _users_page(400, error=str(exc))
    audit_event("ok", target=name)
    return redirect(url_for("auth.users"))

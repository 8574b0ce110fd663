"""The web side of auth: who is asking, what they may open, CSRF checks and security headers."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from dashboard.auth import csrf, sessions, tokens
from dashboard.auth.users import User, has_role
from dashboard.store.audit_log import audit_row

logger = logging.getLogger(__name__)

# Everything anyone may open without logging in. Every other endpoint needs a login, and the
# role its view asks for with @requires_role (viewer when it asks for none).
PUBLIC_ENDPOINTS = {"static", "api.healthz", "api.readyz", "auth.login"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_REFUSED = "CSRF token missing or wrong; reload the page and try again"
# Paths that answer JSON and take bearer tokens: jobdash's API and the Burrow-compatible /v3/kafka.
API_PATHS = ("/api/", "/v3/")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


# -- view markers ------------------------------------------------------------------------------

def requires_role(role: str) -> Callable:
    """Let only `role` and those above it open the view."""

    def mark(view):
        view.required_role = role
        return view

    return mark


def checks_csrf_itself(view):
    """The view checks the CSRF token itself (so that it can audit a refusal in its own terms)."""
    view.checks_csrf_itself = True
    return view


def audited_as(action: str) -> Callable:
    """Name the view's audit rows, refusals by the guard included."""

    def mark(view):
        view.audit_action = action
        return view

    return mark


# -- the current request ---------------------------------------------------------------------

def current_user() -> User | None:
    return g.get("user")


def csrf_ok() -> bool:
    """A bearer request needs no CSRF token; any other needs the session's, in header or form."""
    return g.get("via") == "bearer" or csrf.valid(request.headers.get("X-CSRF-Token") or request.form.get("csrf"))


def session_user() -> User | None:
    """The user of this request's (or this socket's) server-side session, checked now; its use noted."""
    runtime = current_app.extensions["jobdash"]
    settings = runtime.settings
    found = sessions.lookup(runtime.engine, session.get("sid"), settings.session_idle_hours * 3600,
                            settings.session_lifetime_hours * 3600)
    if found is None:
        if session.get("sid"):
            session.pop("sid")  # ended, expired or idle too long: drop it from the cookie too
        return None
    sessions.touch(runtime.writer, session["sid"], found[1])
    return found[0]


def audit_event(outcome: str, user: User | None = None, name: str = "", target: str = "",
                params: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Write the audit row of this request's action (its view's audited_as) before answering."""
    user = user or current_user()
    view = current_app.view_functions.get(request.endpoint)
    action = getattr(view, "audit_action", request.endpoint or request.path)
    runtime = current_app.extensions["jobdash"]
    runtime.writer.write("audit", audit_row(
        user=user.name if user else name, role=user.role if user else "", via="http", action=action,
        outcome=outcome, target=target, params=params, error=error))


def safe_next(target: str | None) -> str:
    """A same-site path to go to after login; anything else (another host, //x) becomes "/"."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return url_for("pages.overview")
    return target


# -- hooks -----------------------------------------------------------------------------------

def _identify() -> tuple[User | None, str]:
    header = request.headers.get("Authorization", "")
    if (request.path.startswith(API_PATHS) or request.endpoint == "api.readyz") and header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            # A bad token is a failed login, never a fall-back to the cookie.
            return tokens.user_of(current_app.extensions["jobdash"].engine, token.strip()), "bearer"
    return session_user(), "session"


def _wants_json() -> bool:
    return request.path.startswith(API_PATHS)


def _refuse(status: int, message: str):
    user = current_user()
    if user is not None and request.method in UNSAFE_METHODS:
        audit_event("refused", error=message, target=request.path)
    logger.info("refused %s %s for %s: %s", request.method, request.path, user.name if user else "anonymous", message)
    if _wants_json():
        return jsonify(ok=False, outcome="refused", error=message), status
    abort(status, description=message)


def _guard():
    g.user, g.via = _identify()
    unsafe = request.method in UNSAFE_METHODS
    if request.endpoint in PUBLIC_ENDPOINTS:
        if unsafe and not csrf_ok():
            return _refuse(403, CSRF_REFUSED)
        return None
    if g.user is None:
        if _wants_json():
            return jsonify(ok=False, error="login required"), 401, {"WWW-Authenticate": 'Bearer realm="jobdash"'}
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.routing_exception is not None:
        return None  # no such page or method: let Flask say 404 / 405
    view = current_app.view_functions.get(request.endpoint)
    needed = getattr(view, "required_role", "viewer")
    if not has_role(g.user.role, needed):
        return _refuse(403, f"this needs the {needed} role; {g.user.name} is {g.user.role}")
    if unsafe and not getattr(view, "checks_csrf_itself", False) and not csrf_ok():
        return _refuse(403, CSRF_REFUSED)
    return None


def _headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages show who may do what; none of them may be served from a cache after logout.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def allowed(endpoint: str) -> bool:
    """Whether the current user may open `endpoint` (for navigation links)."""
    if endpoint in PUBLIC_ENDPOINTS:
        return True
    user = current_user()
    view = current_app.view_functions.get(endpoint)
    return user is not None and view is not None and has_role(user.role, getattr(view, "required_role", "viewer"))


def _template_context() -> dict[str, Any]:
    return {"current_user": current_user(), "csrf_token": csrf.token, "allowed": allowed}


def init_app(app: Flask) -> None:
    """Guard every request, add security headers to every response, expose auth to templates."""
    app.session_interface = SessionCookie()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.before_request(_guard)
    app.after_request(_headers)
    app.context_processor(_template_context)

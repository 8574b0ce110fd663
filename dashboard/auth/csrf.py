"""CSRF tokens bound to the session: an HMAC of the session id under the app's secret key."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, session


def _key() -> str:
    # Logged in: the server-side session id, so the token changes at each login. Not yet logged
    # in (the login form): a random value kept in the signed cookie.
    if session.get("sid"):
        return "sid:" + session["sid"]
    if not session.get("anon"):
        session["anon"] = secrets.token_urlsafe(16)
    return "anon:" + session["anon"]


def token() -> str:
    """This session's CSRF token, for a form's hidden field or the X-CSRF-Token header."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"csrf:" + _key().encode(), hashlib.sha256).hexdigest()


def valid(given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given, token())

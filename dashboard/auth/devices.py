"""Device cookies: a browser that has logged in as a name is known to the throttle (OWASP's advice).

Failed logins from a known browser count against that browser only, so an attacker guessing a
user's password from anywhere else cannot lock the user out of their own browser.
"""
from __future__ import annotations

import secrets

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "jobdash_device"
MAX_AGE = 90 * 86400


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="jobdash-device")


def known_for(name: str) -> str | None:
    """This browser's device id, if it has logged in as `name` before."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    if isinstance(value, dict) and value.get("name") == name and isinstance(value.get("id"), str):
        return value["id"][:32]
    return None


def remember(response, name: str) -> None:
    """Mark this browser as one that logged in as `name` (keeping its id if it had one)."""
    device = known_for(name) or secrets.token_urlsafe(12)
    response.set_cookie(COOKIE, _serializer().dumps({"name": name, "id": device}), max_age=MAX_AGE, httponly=True,
                        samesite="Lax", secure=request.is_secure, path="/login")

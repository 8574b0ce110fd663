"""Request-wide defences: body size, bounded JSON both ways, trusted proxies, HSTS, a quiet Server header."""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # no form or action body comes near this; refused before it is read
MAX_DEPTH = 32  # nesting of any JSON received; an action's params are two or three deep
HSTS = "max-age=31536000"


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return True


def _finite(value: Any) -> Any:
    """The value with NaN and infinities as None: browsers' JSON.parse refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class SafeJSON:
    """json.dumps/loads for Flask and Socket.IO: strict JSON out, bounded nesting in."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # a NaN or infinity somewhere (the common case pays nothing)
            return json.dumps(_finite(obj), allow_nan=False, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(text, **kwargs)
        except RecursionError:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        if not _depth_ok(value):
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        return value


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON through SafeJSON."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return SafeJSON.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return SafeJSON.loads(s, **kwargs)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its 'Werkzeug/x Python/y' Server header."""

    def version_string(self) -> str:
        return "jobdash"


def _too_large(exc: RequestEntityTooLarge):
    if request.path.startswith("/api/"):
        return jsonify(ok=False, error=f"the request body is over {MAX_BODY:,} bytes"), 413
    return exc


def _hsts(response):
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask, trusted_proxies: int = 0) -> None:
    """Limit bodies, bound JSON, trust `trusted_proxies` proxies' X-Forwarded-* and add HSTS over TLS."""
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    if trusted_proxies:
        # Each proxy appends one hop; trust exactly that many, so a client cannot forge its address.
        n = trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.after_request(_hsts)

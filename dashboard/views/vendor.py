"""Front-end libraries from node_modules (installed by `npm ci`), an explicit whitelist only."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file

logger = logging.getLogger(__name__)

vendor = Blueprint("vendor", __name__)

# The repository root holds package.json; override with app.config["JOBDASH_NODE_MODULES"].
DEFAULT_NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

# URL name (relative to node_modules) -> mimetype. Nothing else under node_modules is served.
FILES = {
    "socket.io-client/dist/socket.io.esm.min.js": "text/javascript",
    "socket.io-client/dist/socket.io.esm.min.js.map": "application/json",
    "socket.io-client/dist/socket.io.min.js": "text/javascript",
    "uplot/dist/uPlot.esm.js": "text/javascript",
    "uplot/dist/uPlot.iife.min.js": "text/javascript",
    "uplot/dist/uPlot.min.css": "text/css",
}

NOT_INSTALLED = (
    "jobdash: front-end libraries are not installed ({path} is missing).\n"
    "Run the setup once in the repository root:  npm ci\n"
)


def node_modules() -> Path:
    return Path(current_app.config.get("JOBDASH_NODE_MODULES") or DEFAULT_NODE_MODULES)


@vendor.get("/vendor/<path:name>")
def vendor_file(name: str):
    """Serve one whitelisted library file; 404 for anything else, 503 when setup was not run."""
    mimetype = FILES.get(name)
    if mimetype is None:
        abort(404)
    # The name is a whitelist key, never a user-built path, so no traversal is possible.
    path = node_modules() / name
    if not path.is_file():
        logger.warning("vendor file missing: %s (run `npm ci`)", path)
        return NOT_INSTALLED.format(path=path), 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "60"}
    response = send_file(path, mimetype=mimetype, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

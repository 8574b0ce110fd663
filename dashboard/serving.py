"""Serving until a stop signal: the web server `serve` and `demo` run, and the signal handling `collect` shares."""
from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable

import click

from dashboard.hardening import QuietRequestHandler

logger = logging.getLogger(__name__)


def on_stop_signal(*callbacks: Callable[[], object]) -> None:
    """On the first SIGTERM or SIGINT, ignore any further one and run each callback on a thread of its own.

    Threads, because the signal lands in the main thread, which may be the one a callback waits
    for (`server.shutdown()` waits for `serve_forever()` to return).
    """

    def handler(signum, _frame):
        logger.info("signal %s: shutting down", signum)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for callback in callbacks:
            threading.Thread(target=callback, name="on-stop-signal", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, the app, SQLAlchemy's caches) out of every later garbage collection.

    Each full collection walks every tracked object, and startup alone leaves ~200k: the collections
    that a History answer's allocations set off cost it a quarter of its time (bench.history_query).
    """
    gc.collect()
    gc.freeze()


def serve_app(app, host: str, port: int, banner: str | None = None,
              on_signal: Callable[[], object] | None = None) -> None:
    """Serve `app` with Socket.IO (WebSocket via simple-websocket) until SIGTERM/SIGINT, then stop its runtime.

    `banner` is printed once the port is bound, as the last thing startup prints; `on_signal`
    runs as soon as the signal comes, alongside the server's shutdown.
    """
    from werkzeug.serving import make_server

    runtime = app.extensions["jobdash"]
    # Werkzeug's threaded server is fine for one machine and the demo; README gives the gunicorn command.
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    on_stop_signal(*([on_signal] if on_signal else []), server.shutdown)
    click.echo(banner or f"jobdash: serving on http://{host}:{port}/ (Ctrl-C to stop)")
    freeze_startup_heap()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        click.echo("jobdash: stopping…")
        runtime.stop()
        server.server_close()

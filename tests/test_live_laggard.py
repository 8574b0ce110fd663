"""A client that stops reading is set aside, and gets a fresh snapshot once it has caught up."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request, TextMessage

from bench.live_clients import LiveClient, login
from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.demo.processes import free_port
from tests.conftest import PASSWORD, add_user
from tests.fixtures_services import wait_for

SOURCE = SourceConfig(kind="dask", name="lab", options={"address": "tcp://127.0.0.1:1"})


class StallingClient:
    """A raw WebSocket with a tiny receive buffer that reads only when told to."""

    def __init__(self, port: int, cookie: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target="/socket.io/?EIO=4&transport=websocket",
                                               extra_headers=[(b"cookie", cookie.encode())])))
        self.messages: list[str] = []
        self._part = ""

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def read_until(self, done, timeout: float = 30.0) -> None:
        self.sock.settimeout(1.0)
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    self._part += event.data
                    if event.message_finished:
                        self._handle(self._part)
                        self._part = ""
                elif isinstance(event, AcceptConnection):
                    pass
        assert done(), f"gave up after {timeout:g}s; last messages: {[m[:80] for m in self.messages[-3:]]}"

    def _handle(self, text: str) -> None:
        if text == "2":
            self.send("3")
        elif text.startswith("0"):
            self.send("40/live,")
        elif text.startswith("40/live,"):
            self.send('42/live,["join",{"room":"overview"}]')
        self.messages.append(text)

    def events(self, name: str) -> list[dict]:
        prefix = f'42/live,["{name}",'
        return [json.loads(m[len("42/live,"):])[1] for m in self.messages if m.startswith(prefix)]


@pytest.fixture
def served(sqlite_url):
    app = create_app(Settings(database_url=sqlite_url, sources=[SOURCE], run_collectors=False, secret_key="k"))
    add_user(app, "viewer", "viewer")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, port
    server.shutdown()
    app.extensions["jobdash"].stop()


def status(n: int) -> dict:
    return {"kind": "dask", "name": "lab", "state": "up", "updated_at": time.time(), "last_success_at": None,
            "last_error": None, "last_error_at": None, "last_poll_ms": 1.0, "headline": {"workers": n}}


def test_a_client_that_stops_reading_catches_up_through_a_fresh_snapshot(served):
    app, port = served
    runtime = app.extensions["jobdash"]
    hub = runtime.hub
    base = f"http://127.0.0.1:{port}"
    cookie = login(base, "viewer", PASSWORD)
    reader = LiveClient(base, cookie, "overview").start()  # keeps reading throughout
    stalled = StallingClient(port, cookie)
    stalled.read_until(lambda: stalled.events("snapshot"))
    assert reader.joined.wait(30)

    hub.interval = 0.01  # many emits a second, so that the stalled socket's buffers fill quickly
    noise = {"pad": "x" * 100_000}
    n = 0
    deadline = time.monotonic() + 60
    while not hub.behind and time.monotonic() < deadline:  # until the hub has set the client aside
        hub.publish("overview", {f"noise/{n % 5}": noise})
        n += 1
        time.sleep(0.005)
    assert hub.behind, "the stalled client was never set aside"
    runtime.writer.write("source_status", status(999))  # while it is set aside: it gets no delta of this

    # Once it reads again it gets all that was queued, then a fresh snapshot holding the write.
    stalled.read_until(lambda: len(stalled.events("snapshot")) >= 2, timeout=60)
    fresh = stalled.events("snapshot")[-1]["items"]
    assert fresh["dask/lab"]["headline"] == {"workers": 999}
    assert hub.catch_ups >= 1
    # The client that kept up was never set aside and saw the write as a delta.
    wait_for(lambda: reader.latest().get("dask/lab", {}).get("headline"), lambda h: h == {"workers": 999})
    assert reader.snapshots == 1 and reader.connected
    reader.close()

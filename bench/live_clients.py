"""Socket.IO clients over a raw WebSocket that apply messages strictly in arrival order, as a browser does.

python-socketio's threaded client runs each incoming message's handler in a thread of its own, so
under load a client built on it can apply an older delta after a newer one and "miss" a final state
that the server did send. These clients read one socket in one thread and record, per room key,
the latest item and when it arrived; they answer Engine.IO pings and rejoin nothing by themselves.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

import requests
import simple_websocket

NAMESPACE = "/live"


def login(base: str, name: str, password: str) -> str:
    """Log in through the form; return the Cookie header value of the session."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = session.post(f"{base}/login", data={"name": name, "password": password, "csrf": csrf},
                          allow_redirects=False, timeout=10)
    if answer.status_code != 302:
        raise RuntimeError(f"login as {name} failed: HTTP {answer.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class LiveClient:
    """One WebSocket joined to one room; `items` holds the latest item per key.

    on_item(client, key, item, arrival time) hears every item of every snapshot and delta.
    """

    def __init__(self, base: str, cookie: str, room: str, on_item: Callable[[LiveClient, str, dict, float], None] | None = None):
        self.base, self.cookie, self.room, self.on_item = base, cookie, room, on_item
        self.items: dict[str, dict] = {}
        self.snapshots = 0
        self.deltas = 0
        self.joined = threading.Event()
        self.closed = threading.Event()
        self.error: str | None = None
        self._lock = threading.Lock()
        self._ws: simple_websocket.Client | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LiveClient:
        url = self.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        # A 64 KiB read takes a whole delta in one go (the default 4 KiB parses one in many small steps).
        self._ws = simple_websocket.Client.connect(url, headers={"Cookie": self.cookie}, receive_bytes=65536)
        # Ask for the namespace at once, without waiting for Engine.IO's open packet: simple-websocket's
        # client can leave a packet that came in with the handshake unread until more data arrives.
        self._ws.send(f"40{NAMESPACE},")
        self._thread = threading.Thread(target=self._read, name="live-client", daemon=True)
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._ws.connected and not self.closed.is_set()

    def latest(self) -> dict[str, dict]:
        with self._lock:
            return dict(self.items)

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # already gone
                pass

    def _read(self) -> None:
        try:
            while True:
                message = self._ws.receive(timeout=60)
                if message is None:
                    break
                self._handle(message)
        except Exception as exc:  # the connection closed or broke: say why
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.closed.set()

    def _handle(self, message: str) -> None:
        arrived = time.time()
        if message == "2":  # Engine.IO ping
            self._ws.send("3")
        elif message.startswith(f"40{NAMESPACE},"):
            self._ws.send(f'42{NAMESPACE},["join",{{"room":{json.dumps(self.room)}}}]')
        elif message.startswith(f"44{NAMESPACE},"):
            self.error = f"refused: {message}"
            self._ws.close()
        elif message.startswith(f"42{NAMESPACE},"):
            event, payload = json.loads(message[len(NAMESPACE) + 3:])[:2]
            if event == "snapshot" and payload.get("room") == self.room:
                with self._lock:
                    self.items = dict(payload["items"])
                    self.snapshots += 1
                self._report(payload["items"], arrived)
                self.joined.set()
            elif event == "delta" and payload.get("room") == self.room:
                with self._lock:
                    for key, item in payload["items"].items():
                        if item is None:
                            self.items.pop(key, None)
                        else:
                            self.items[key] = item
                    self.deltas += 1
                self._report(payload["items"], arrived)

    def _report(self, items: dict, arrived: float) -> None:
        if self.on_item is not None:
            for key, item in items.items():
                if item is not None:
                    self.on_item(self, key, item, arrived)


def connect_many(base: str, cookie: str, room: str, n: int, on_item=None, timeout: float = 120.0) -> list[LiveClient]:
    """Open n clients joined to `room`; wait until each has its snapshot (or raise)."""
    clients = [LiveClient(base, cookie, room, on_item).start() for _ in range(n)]
    deadline = time.monotonic() + timeout
    for client in clients:
        if not client.joined.wait(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"{sum(c.joined.is_set() for c in clients)} of {n} clients joined {room} "
                               f"within {timeout:g}s; first error: {next((c.error for c in clients if c.error), None)}")
    return clients


def viewer_process(base: str, cookie: str, room: str, n: int, task_ids: list[str], conn, wait: float = 60.0) -> None:
    """A child process's share of the viewers, as browsers are processes of their own: n clients in `room`.

    Says "joined" over `conn`, then, once told the sending is over, waits (up to `wait`) for every
    client to see every task of `task_ids` succeed and sends back each first arrival's latency (arrival
    minus the state's own time), the tasks each client's latest value does not show final, and how
    many clients had dropped.
    """
    expected = set(task_ids)
    seen: dict[LiveClient, set[str]] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def on_item(client, key, item, arrived):
        if item.get("state") == "SUCCESS" and item.get("uuid") in expected and client in seen:
            with lock:
                if item["uuid"] not in seen[client]:
                    seen[client].add(item["uuid"])
                    latencies.append(arrived - item["state_at"])

    clients = connect_many(base, cookie, room, n, on_item=on_item, timeout=300)
    with lock:
        seen.update({client: set() for client in clients})
    conn.send("joined")
    conn.recv()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with lock:
            if all(len(s) >= len(expected) for s in seen.values()):
                break
        time.sleep(0.2)
    finals = {f"task:{t}" for t in expected}
    missed = [sum(1 for key in finals if (c.latest().get(key) or {}).get("state") != "SUCCESS") for c in clients]
    with lock:
        conn.send({"latencies": list(latencies), "missed": missed, "disconnected": sum(not c.connected for c in clients)})
    for client in clients:
        client.close()

"""The README's production command (gunicorn, threaded worker) serves pages and real WebSockets."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import simple_websocket

from dashboard.demo.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "gunicorn test password"


@pytest.fixture
def gunicorn(tmp_path):
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = 'sqlite:///{tmp_path / 'j.db'}'\nsecret_key = 'k'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBDASH_")} | {"JOBDASH_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "dashboard.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "dashboard.cli", "user", "add", "ops", "--role", "viewer", "--password-stdin"],
                   env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    port = free_port()
    # The README's command, on a free port.
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "20", "-b", f"127.0.0.1:{port}",
                             "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=2).ok:
                break
        except (requests.ConnectionError, requests.Timeout):  # the worker is still loading the app
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(15)


def login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=5).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = session.post(f"{base}/login", data={"name": "ops", "password": PASSWORD, "csrf": csrf},
                            allow_redirects=False, timeout=5)
    assert response.status_code == 302
    return session


def test_gunicorn_serves_the_live_namespace_over_a_websocket(gunicorn):
    session = login(gunicorn)
    assert "Overview" in session.get(f"{gunicorn}/", timeout=5).text
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws_url = gunicorn.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = simple_websocket.Client.connect(ws_url, headers={"Cookie": cookie})
    try:
        opened = ws.receive(timeout=5)
        assert opened.startswith("0") and json.loads(opened[1:])["sid"]  # Engine.IO open, over the WebSocket itself
        ws.send("40/live,")
        assert ws.receive(timeout=5).startswith("40/live,")  # the namespace accepted this session
        ws.send('42/live,1["join",{"room":"overview"}]')
        messages = [ws.receive(timeout=5) for _ in range(2)]
        assert any(m.startswith('42/live,["snapshot"') for m in messages), messages
    finally:
        ws.close()


def test_an_anonymous_websocket_gets_nothing(gunicorn):
    ws_url = gunicorn.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = simple_websocket.Client.connect(ws_url)
    try:
        assert ws.receive(timeout=5).startswith("0")
        ws.send("40/live,")
        refused = ws.receive(timeout=5)
        assert refused.startswith("44/live,"), refused  # CONNECT_ERROR
    finally:
        ws.close()

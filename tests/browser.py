"""Real-browser test kit: a `jobdash serve` subprocess, a logged-in headless Chromium page
that records dialogs and errors, and the Dask processes that make a card change.

Registered as a pytest plugin in tests/conftest.py, so its fixtures (procs, browser, watched)
are there for every test module; helpers are imported by name.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api
from playwright.sync_api import expect

from dashboard.demo.processes import free_port
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]



def toml_str(value: str) -> str:
    """A TOML basic string (JSON string syntax is a subset of it)."""
    return json.dumps(value)


class Processes:
    """Subprocesses started by one test, each in its own process group, stopped in reverse."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.started: list[tuple[subprocess.Popen, Path]] = []
        self.dashboard: tuple[subprocess.Popen, Path, int] | None = None  # the last one started

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.logdir / f"{len(self.started):02d}-{name}.log"
        proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.logdir,
                                env={**child_env(), **(env or {})}, start_new_session=True)
        self.started.append((proc, log))
        return proc

    def log_tail(self, proc: subprocess.Popen, chars: int = 3000) -> str:
        log = next(log for p, log in self.started if p is proc)
        return log.read_text(errors="replace")[-chars:]

    def stop_all(self) -> None:
        for proc, _log in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _log in reversed(self.started):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def procs(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def child_env() -> dict[str, str]:
    """The environment of a process the tests start: this checkout's code first on the path (a
    worktree sharing another checkout's venv would otherwise run that checkout's code), and no
    JOBDASH_* variable but the test's own (the dashboard reads each as a setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBDASH_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def serve(procs: Processes, tmp_path: Path, sources_toml: str, extra_toml: str = "", role: str = "viewer") -> str:
    """Run `python -m dashboard.cli serve` on a free port with a temp config and a user named after
    `role` (added with `jobdash user add`, password PASSWORD); return the base URL."""
    if not (REPO / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("front-end libraries missing: run `npm ci` in the repository root")
    config = tmp_path / "jobdash.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "jobdash.db"}"\n'
                      f'secret_key = "browser-test"\n{extra_toml}\n{sources_toml}')
    env = {**child_env(), "JOBDASH_CONFIG": str(config)}
    added = subprocess.run([sys.executable, "-m", "dashboard.cli", "user", "add", role, "--role", role,
                            "--password-stdin"], input=PASSWORD + "\n", text=True, capture_output=True,
                           env=env, cwd=tmp_path, timeout=60)
    assert added.returncode == 0, added.stderr
    return start_dashboard(procs, config, free_port())


def start_dashboard(procs: Processes, config: Path, port: int) -> str:
    """Start `jobdash serve` for `config` on `port` and wait until it answers; return its base URL."""
    proc = procs.start("dashboard", [sys.executable, "-m", "dashboard.cli", "serve", "--host", "127.0.0.1",
                                     "--port", str(port)], env={"JOBDASH_CONFIG": str(config)})
    procs.dashboard = (proc, config, port)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited with {proc.returncode}:\n{procs.log_tail(proc)}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return base
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"dashboard did not answer on {base}:\n{procs.log_tail(proc)}")


def stop_dashboard(procs: Processes) -> None:
    proc = procs.dashboard[0]
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)


def mark_document(page) -> None:
    """Tag the page's current document; a reload or a navigation starts a new one without the tag.
    (The count of navigation entries cannot tell: a reloaded document has one entry again.)"""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page) -> None:
    """The document tagged by mark_document is still the one shown: nothing reloaded the page."""
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded or left"


def log_in(page, base: str, name: str = "viewer") -> None:
    """Log in through the login form, as a person would; lands on the overview."""
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    expect(page).to_have_url(base + "/")


def start_dask(procs: Processes, port: int) -> None:
    """A real scheduler on `port` and one worker (no nanny, so one process each)."""
    procs.start("dask-scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard"])
    procs.start("dask-worker", [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "512MiB",
                                "--host", "127.0.0.1"])


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page plus everything it reported that a safe page never does: dialogs and errors."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Watched(page)
    context.close()

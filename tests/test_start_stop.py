"""What a new user meets first: `make setup` runs once, `jobdash demo` starts with a clear login
block and stops on Ctrl-C within 5 s, every process it started gone, ending with "stopped".
The demo test also takes the README's screenshot: `JOBDASH_UPDATE_SCREENSHOT=1 pytest
tests/test_start_stop.py -k demo` regenerates docs/screenshot.png from the running demo."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from dashboard.demo.processes import free_port
from tests.browser import CHROMIUM, CHROMIUM_ARGS, expect, playwright_api
from tests.test_browser_new_user import ARTIFACTS

REPO = Path(__file__).resolve().parents[1]
NOISE = ("Traceback", "No hostname was supplied", "production deployment", "ERROR", "WARNING", "!!")


class Output:
    """A process's merged output, read line by line on a thread so the test can wait on it."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.lines):
            assert time.monotonic() < deadline, f"no line matching {pattern!r} within {timeout}s:\n" + "\n".join(self.lines)
            time.sleep(0.2)

    def finish(self) -> str:
        self._thread.join(10)
        return "\n".join(self.lines)


def stop_within(proc: subprocess.Popen, signum: int, seconds: float) -> float:
    """Send `signum`; return how long until the process and every descendant of it had gone."""
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    started = time.monotonic()
    proc.send_signal(signum)
    proc.wait(30)
    _gone, alive = psutil.wait_procs(family, timeout=max(0.1, started + seconds + 5 - time.monotonic()))
    took = time.monotonic() - started
    assert not alive, f"still running after {took:.1f}s: {[p.cmdline() for p in alive]}"
    return took


def start_demo(workdir: Path, port: int) -> tuple[subprocess.Popen, Output]:
    proc = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "demo", "--port", str(port), "--workdir",
                             str(workdir)], cwd=workdir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    return proc, Output(proc)


def shoot_overview(base: str, password: str) -> None:
    """Log in to the running demo as a user would and photograph the overview once every source has
    reported and the sparklines are drawn: kept under test-artifacts/, and as the README's picture when
    JOBDASH_UPDATE_SCREENSHOT=1."""
    if not Path(CHROMIUM).exists():
        return
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 760})
            page.goto(base + "/login")
            page.fill('input[name="name"]', "admin")
            page.fill('input[name="password"]', password)
            page.click('button[type="submit"]')
            cards = page.locator("#cards > article.card")
            expect(cards).to_have_count(3, timeout=30_000)
            for index in range(3):  # each source reported
                expect(cards.nth(index)).not_to_have_attribute("data-state", "unknown", timeout=90_000)
            # Kafka too: tansu's DescribeGroups answer, unreadable to kafka-python, no longer degrades it.
            for key in ("celery/demo", "kafka/demo"):
                expect(page.locator(f'article.card[data-key="{key}"]')).to_have_attribute("data-state", "up",
                                                                                         timeout=90_000)
            expect(page.locator('article.card[data-key="celery/demo"] [data-field="spark"]')).to_be_visible(timeout=60_000)
            expect(page.locator("#attention")).not_to_have_attribute("data-state", "loading")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo-overview-1400.png"))
            if os.environ.get("JOBDASH_UPDATE_SCREENSHOT") == "1":
                page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
        finally:
            browser.close()


@pytest.mark.timeout(900)  # two demo starts on a busy machine
def test_demo_prints_one_login_block_last_and_stops_within_five_seconds_on_ctrl_c(tmp_path):
    workdir = tmp_path / ".demo"
    passwords = []
    for _run in range(2):
        port = free_port()
        proc, out = start_demo(workdir, port)
        try:
            out.wait_for(r"Ctrl-C stops everything", 150)
            time.sleep(4)  # anything printed after the block would show by now
            text = "\n".join(out.lines)
            block = text[text.index("jobdash demo is running"):]
            assert f"http://127.0.0.1:{port}/login" in block and "user      admin" in block
            passwords.append(re.search(r"password  (\S+)", block).group(1))
            assert out.lines[-1].startswith("-" * 20), f"printed after the login block:\n{text}"
            if len(passwords) == 1:
                shoot_overview(f"http://127.0.0.1:{port}", passwords[0])
            took = stop_within(proc, signal.SIGINT, 5)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = out.finish()
        assert took < 5, text
        assert proc.returncode == 0
        assert out.lines[-1] == "jobdash demo: stopped", text
        for noise in NOISE:
            assert noise not in text, f"{noise!r} in the demo's output:\n{text}"
    # The same .demo/ folder keeps its password; the file named in the block resets it.
    assert passwords[0] == passwords[1]
    assert (workdir / "admin-password").read_text().strip() == passwords[0]


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_setup_installs_again_only_when_the_pinned_files_change(tmp_path):
    for name in ("Makefile", "pyproject.toml", "package-lock.json"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / "node_modules").mkdir()

    def planned() -> str:
        return subprocess.run(["make", "-n", "setup"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    assert "pip install" in planned() and "npm ci" in planned()  # a fresh clone installs both
    (tmp_path / ".venv" / ".installed").touch()
    (tmp_path / "node_modules" / ".package-lock.json").touch()
    assert "pip install" not in planned() and "npm ci" not in planned()
    time.sleep(1.1)  # mtimes: a later change must look later
    (tmp_path / "pyproject.toml").touch()
    assert "pip install" in planned() and "npm ci" not in planned()

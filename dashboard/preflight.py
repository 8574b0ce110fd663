"""Checks before anything starts: each problem found becomes one ConfigError line naming the setting."""
from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

from dashboard.config import ConfigError, Settings, SourceConfig

SQLITE_HEADER = b"SQLite format 3\x00"
MESSAGE_QUEUES = ("redis", "rediss", "amqp", "amqps", "kafka", "zmq")


def check(settings: Settings, database: bool = True) -> list[str]:
    """Raise ConfigError for the first setting that cannot work; return notices worth printing."""
    origin = settings.origin
    try:
        socket.getaddrinfo(settings.host, settings.port)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(origin, "host", f"cannot resolve {settings.host!r}: {exc}") from None
    if settings.message_queue:
        scheme = settings.message_queue.split("://", 1)[0] if "://" in settings.message_queue else ""
        if scheme not in MESSAGE_QUEUES:
            raise ConfigError(origin, "message_queue", f"{settings.message_queue!r} is not a URL of a supported queue "
                                                       f"({', '.join(s + '://' for s in MESSAGE_QUEUES)})")
    for source in settings.sources:
        _check_source(origin, source)
    return check_database(settings) if database else []


def _check_source(origin: str, source: SourceConfig) -> None:
    where = f"{source.kind}.{source.name}"
    opts = source.options
    try:
        if source.kind == "celery":
            _check_celery(opts)
        elif source.kind == "dask":
            from distributed.comm import parse_address, parse_host_port

            parse_host_port(parse_address(opts["address"])[1])
        elif source.kind == "kafka":
            for server in opts["bootstrap_servers"].split(","):
                host, sep, port = server.strip().rpartition(":")
                if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                    raise ValueError(f"{server.strip()!r} is not host:port")
        elif source.kind == "consul":
            from collectors.consul_client import parse_address

            parse_address(opts["address"], opts.get("scheme", "http"))
    except (ValueError, KeyError) as exc:
        key = {"celery": "broker", "dask": "address", "kafka": "bootstrap_servers", "consul": "address"}[source.kind]
        key = getattr(exc, "key", key)
        raise ConfigError(origin, f"{where}.{key}", str(exc.args[0] if exc.args else exc)) from None


class _SourceValueError(ValueError):
    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key = key


def _check_celery(opts: dict) -> None:
    from kombu.transport import resolve_transport

    broker = opts["broker"]
    if "://" not in broker:
        raise _SourceValueError("broker", f"{broker!r} is not a broker URL like redis://host:6379/0")
    try:
        resolve_transport(broker.split("://", 1)[0].split("+", 1)[0])
    except KeyError:
        raise _SourceValueError("broker", f"no such transport in {broker!r}") from None
    backend = opts.get("backend")
    if backend:
        from celery.app.backends import by_url

        try:
            by_url(backend)
        except Exception:  # noqa: BLE001 - Celery raises ImportError, KeyError or its own here
            raise _SourceValueError("backend", f"no such result backend in {backend!r}") from None


def check_database(settings: Settings) -> list[str]:
    """The database can be opened and written; a new SQLite file is announced."""
    url = settings.database_url
    if url.startswith("sqlite"):
        return _check_sqlite(settings.origin, url)
    _check_postgresql(settings.origin, url)
    return []


def _check_sqlite(origin: str, url: str) -> list[str]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        database = None
    if not database or database == ":memory:":
        raise ConfigError(origin, "database_url", f"{url!r} names no file; use sqlite:///path/to/jobdash.db")
    path = Path(database).expanduser()
    folder = path.parent.resolve()
    if not folder.is_dir():
        raise ConfigError(origin, "database_url", f"folder {folder} does not exist (create it, or point to another)")
    # SQLite writes its -wal and -shm files next to the database: the folder must be writable too.
    if not os.access(folder, os.W_OK):
        raise ConfigError(origin, "database_url", f"folder {folder} is read-only; SQLite needs to write there")
    if not path.exists():
        return [f"created a new, empty database at {path.resolve()}"]
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(origin, "database_url", f"{path} is read-only")
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise ConfigError(origin, "database_url", f"{path} is not an SQLite database (bad header); restore it or move it away")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(origin, "database_url", f"{path} cannot be read: {exc}; restore it or move it away") from None
    return [] if header else [f"created a new, empty database at {path.resolve()}"]


def _check_postgresql(origin: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    try:
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            raise ConfigError(origin, "database_url", f"database {parsed.database!r} does not exist on {where} "
                                                      f"(create it: createdb {parsed.database})") from None
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        raise ConfigError(origin, "database_url", f"PostgreSQL at {where} cannot be reached: {first}") from None

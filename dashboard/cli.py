"""The `jobdash` command: serve, collect, demo, db upgrade/downgrade, user add/list/remove."""
from __future__ import annotations

import getpass
import logging
import os
import sys
import threading
from contextlib import contextmanager

import click

from dashboard.auth.users import ROLES
from dashboard.config import ConfigError, Settings, load_settings
from dashboard.serving import on_stop_signal, serve_app

logger = logging.getLogger(__name__)


def _settings(config_path: str | None) -> Settings:
    """Load settings or exit non-zero naming the file, the key and the problem."""
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        click.echo(f"jobdash: configuration error: {exc}", err=True)
        sys.exit(2)


def _checked(config_path: str | None, database: bool = True) -> Settings:
    """Settings, checked before anything starts (dashboard.preflight): exit 2 with one line if one cannot work."""
    from dashboard.preflight import check

    settings = _settings(config_path)
    try:
        notices = check(settings, database=database)
    except ConfigError as exc:
        click.echo(f"jobdash: configuration error: {exc}", err=True)
        sys.exit(2)
    for notice in notices:
        click.echo(f"jobdash: {notice}", err=True)
    return settings


@click.group()
@click.option("--config", "config_path", envvar="JOBDASH_CONFIG", help="TOML file (default ./jobdash.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """jobdash: watch and control Celery, Dask, Kafka consumer groups and Consul in one place."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Chatty libraries: their INFO lines drown jobdash's own.
    for name in ("alembic.runtime.plugins", "kafka", "distributed", "werkzeug", "kombu"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # kafka-python warns of its own event loop running slow whenever the machine is busy.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    ctx.obj = {"config_path": config_path}


@main.command()
@click.option("--host", help="Listen address (default from config: 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default from config: 5000).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the web dashboard (and, unless run_collectors is off, the collectors)."""
    from dashboard import create_app

    from dashboard.store.auth_store import count_users

    settings = _checked(ctx.obj["config_path"])
    if not settings.secret_key:
        click.echo("jobdash: no secret_key is set, so each start makes a random one: every login ends when jobdash\n"
                   "  restarts. Set secret_key in jobdash.toml (or JOBDASH_SECRET_KEY) to keep them.", err=True)
    app = create_app(settings)
    if not count_users(app.extensions["jobdash"].engine):
        settings.read_only = True
        click.echo("jobdash: no users yet, so nobody can log in and actions are off (read-only).\n"
                   "  Add an admin, then restart:  jobdash user add NAME --role admin", err=True)
    serve_app(app, host or settings.host, port or settings.port)
    click.echo("jobdash: stopped")


@main.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Run only the collectors and the store writer, no web server."""
    from dashboard.live import LiveHub
    from dashboard.runtime import Runtime

    settings = _checked(ctx.obj["config_path"])
    hub = None
    if settings.message_queue:
        # Deltas reach the web processes through the shared Socket.IO message queue.
        from flask_socketio import SocketIO

        hub = LiveHub(SocketIO(message_queue=settings.message_queue))
    if settings.database_url.startswith("sqlite"):
        from dashboard.store.migrate import upgrade

        upgrade(settings.database_url)
    runtime = Runtime(settings, hub)
    done = threading.Event()
    on_stop_signal(done.set)
    runtime.start(run_collectors=True)
    click.echo(f"jobdash: collecting from {len(settings.sources)} source(s); Ctrl-C to stop")
    done.wait()
    runtime.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workdir", default=".demo", show_default=True, help="Where the demo keeps its broker files and database.")
def demo(host: str, port: int, workdir: str) -> None:
    """Start a local demo workload (Celery, Dask, Kafka) and the dashboard watching it."""
    from dashboard.demo.workload import run_demo

    run_demo(host=host, port=port, workdir=workdir)
    # Every process is gone and the store closed; client libraries' daemon threads (Kafka's I/O
    # loop) would otherwise hold the interpreter's exit for seconds.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from dashboard.store.migrate import upgrade as do_upgrade

    settings = _checked(ctx.find_root().obj["config_path"])
    do_upgrade(settings.database_url, revision)
    click.echo(f"jobdash: database at {revision}")


@db.command()
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from dashboard.store.migrate import downgrade as do_downgrade

    settings = _checked(ctx.find_root().obj["config_path"])
    do_downgrade(settings.database_url, revision)
    click.echo(f"jobdash: database at {revision}")


@db.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the database: integrity, size, rows and oldest row per table; exit 2 if it is damaged."""
    from dashboard.store import make_engine
    from dashboard.store.storage import db_size, integrity, oldest_rows, row_counts

    settings = _checked(ctx.find_root().obj["config_path"])
    engine = make_engine(settings.database_url)
    try:
        problems = integrity(engine)
        click.echo(f"size\t{db_size(engine)} bytes")
        oldest = oldest_rows(engine, [s.name for s in settings.sources if s.kind == "celery"])
        for table, count in row_counts(engine).items():
            click.echo(f"{table}\t{count} rows" + (f"\toldest {oldest[table]:.0f}" if oldest.get(table) is not None else ""))
    except Exception as exc:  # noqa: BLE001 - a damaged file fails anywhere; say so in one line
        problems = [f"{type(exc).__name__}: {str(exc).splitlines()[0]}"]
    finally:
        engine.dispose()
    if problems:
        # SQLite's integrity_check rows may hold line breaks: the report stays one line.
        click.echo(f"jobdash: database damaged: {' '.join('; '.join(problems[:5]).split())}", err=True)
        sys.exit(2)
    click.echo("integrity\tok")


@contextmanager
def _store(settings: Settings):
    """The database's engine and a running store writer, for commands run without the server."""
    from dashboard.store import HANDLERS, Writer, make_engine

    if settings.database_url.startswith("sqlite"):
        from dashboard.store.migrate import upgrade as do_upgrade

        do_upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    try:
        yield engine, writer
    finally:
        writer.stop()
        engine.dispose()


def _audited(writer, action: str, name: str, params: dict | None, error: Exception | None) -> None:
    """Audit a user command (as cli:<login name>); on error, say why and exit non-zero."""
    from dashboard.store.audit_log import audit_row

    writer.write("audit", audit_row(user=f"cli:{getpass.getuser()}", role="", via="cli", action=action, target=name,
                                    params=params, outcome="refused" if error else "ok",
                                    error=str(error) if error else None))
    if error:
        click.echo(f"jobdash: {error}", err=True)
        sys.exit(2)


@main.group()
def user() -> None:
    """Users who may log in (roles: viewer < manager < admin)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME; the password is asked for twice (or read from stdin)."""
    from dashboard.auth.users import add_user

    settings = _checked(ctx.find_root().obj["config_path"])
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _store(settings) as (engine, writer):
        try:
            add_user(writer, engine, name, role, password)
        except ValueError as exc:
            _audited(writer, "user.add", name, {"role": role}, exc)
        _audited(writer, "user.add", name, {"role": role}, None)
    click.echo(f"jobdash: added {name} ({role})")


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List users and their roles."""
    from dashboard.store.auth_store import user_rows

    with _store(_checked(ctx.find_root().obj["config_path"])) as (engine, _writer):
        for row in user_rows(engine):
            click.echo(f"{row['name']}\t{row['role']}")


@user.command("remove")
@click.argument("name")
@click.pass_context
def user_remove(ctx: click.Context, name: str) -> None:
    """Remove user NAME, ending their sessions and revoking their API tokens."""
    from dashboard.auth.users import remove_user

    with _store(_checked(ctx.find_root().obj["config_path"])) as (engine, writer):
        try:
            remove_user(writer, engine, name)
        except ValueError as exc:
            _audited(writer, "user.remove", name, None, exc)
        _audited(writer, "user.remove", name, None, None)
    click.echo(f"jobdash: removed {name}")


if __name__ == "__main__":
    main()

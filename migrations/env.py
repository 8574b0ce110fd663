"""Alembic environment: migrates the database named by the config (or JOBDASH_DATABASE_URL)."""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from dashboard.store.db import make_engine
import dashboard.store  # noqa: F401 - imports every model module onto Base.metadata
from dashboard.store.models import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

url = config.get_main_option("sqlalchemy.url")
if config.cmd_opts is not None:  # run as `alembic ...`: the environment may name the database
    url = os.environ.get("JOBDASH_DATABASE_URL", url)


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # Batch mode lets later migrations alter SQLite tables (it has no ALTER COLUMN).
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

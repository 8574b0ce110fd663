"""Celery task ids stored in 16 bytes on SQLite instead of 36 characters.

A task's uuid is stored in its row and again in the primary key's index, and its parent's and
root's ids beside it: as text, the ids were about a sixth of what a task cost. On SQLite an id
in Celery's canonical form (lowercase 8-4-4-4-12 hex) is stored as the uuid's 16 bytes, a BLOB;
any other id (Celery accepts any string as a task id) is stored as the text it is, so every id
reads back exactly as it was given, and a BLOB never equals a TEXT. PostgreSQL stores the text.

SQL that reads the columns directly sees the bytes: `hex(uuid)` spells them (uppercase, no dashes).
"""
from __future__ import annotations

import string

from sqlalchemy import String, type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement, literal
from sqlalchemy.types import Boolean, TypeDecorator

DASHES = (8, 13, 18, 23)  # where Celery's ids have them
_HEX = frozenset(string.hexdigits)


def _spelled(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def compact(task_id: str | None) -> str | bytes | None:
    """The stored form of a task id on SQLite: 16 bytes for a canonical uuid, else the id itself."""
    if task_id is None or len(task_id) != 36 or task_id[8] != "-":
        return task_id
    try:
        raw = bytes.fromhex(task_id.replace("-", ""))
    except ValueError:
        return task_id
    return raw if len(raw) == 16 and _spelled(raw) == task_id else task_id


def expand(value: str | bytes | None) -> str | None:
    return _spelled(value) if isinstance(value, bytes) else value


class TaskId(TypeDecorator):
    """A task id column, compact on SQLite (see the module's docstring)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return compact(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return expand(value)


class IdPrefix(ColumnElement):
    """`column` (a TaskId) starts with `prefix`, ignoring case (ids are hex, typed or pasted in either)."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column, prefix: str):
        self.column, self.prefix = column, prefix


def _starts_with(element) -> ColumnElement:
    # As text: the bound prefix must not be compacted, even when it is a whole uuid.
    return type_coerce(element.column, String).istartswith(element.prefix, autoescape=True)


@compiles(IdPrefix)
def _prefix_as_text(element, compiler, **kw):
    return compiler.process(_starts_with(element), **kw)


@compiles(IdPrefix, "sqlite")
def _prefix_on_sqlite(element, compiler, **kw):
    # A stored uuid is 16 bytes: its hex() must start with the prefix's digits, which only a prefix
    # shaped like the start of a canonical id can be.
    prefix = element.prefix
    fits = len(prefix) <= 36 and all(c == "-" if i in DASHES else c in _HEX for i, c in enumerate(prefix))
    column = compiler.process(element.column, **kw)
    as_text = compiler.process(_starts_with(element), **kw)
    if not fits:
        return f"(typeof({column}) = 'text' AND {as_text})"
    as_hex = compiler.process(literal(prefix.replace("-", "") + "%", String), **kw)
    return f"(CASE typeof({column}) WHEN 'blob' THEN hex({column}) LIKE {as_hex} ELSE {as_text} END)"

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
import sys

from sqlalchemy import ColumnElement, LargeBinary, String, and_, func, literal, literal_column, or_, type_coerce
from sqlalchemy.types import TypeDecorator

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


def id_prefix(dialect: str, scope: ColumnElement, column, prefix: str) -> ColumnElement:
    """Rows meeting `scope` whose id in `column` (a TaskId) starts with `prefix`. On SQLite each way
    an id can be stored is one range of an index on (scope's column, column), so `scope` is said in
    each; elsewhere ids are text, matched in either case (they are hex, typed or pasted in either)."""
    as_text = type_coerce(column, String)  # bound values stay as given, never compacted
    if dialect != "sqlite":
        return as_text.istartswith(prefix, autoescape=True)
    ranges, share = [], 0.0001  # how many tasks the prefix is expected to match
    if len(prefix) <= 36 and all(c == "-" if i in DASHES else c in _HEX for i, c in enumerate(prefix)):
        # A uuid stored as 16 bytes starts with these hex digits (either case) if it lies between them
        # followed by all 0s and by all fs.
        digits = prefix.replace("-", "")
        share = 16.0 ** -len(digits)
        low, high = (literal(bytes.fromhex(digits.ljust(32, pad)), LargeBinary) for pad in "0f")
        ranges.append(and_(scope, column.between(low, high)))
    # Any other id, stored as text (which sorts before every BLOB): exactly this prefix.
    if prefix[-1] < chr(sys.maxunicode):
        ranges.append(and_(scope, as_text >= prefix, as_text < prefix[:-1] + chr(ord(prefix[-1]) + 1)))
    else:  # no text sorts right after it
        ranges.append(and_(scope, as_text >= prefix, func.substr(as_text, 1, len(prefix)) == prefix,
                           func.typeof(column) == "text"))
    # Told how rare a match is, SQLite reads these ranges for a prefix of two digits or more, and for a
    # single digit (one task in 16) the tasks in the order the page asks for, until it has enough.
    return func.likelihood(or_(*ranges), literal_column(f"{share:g}"))

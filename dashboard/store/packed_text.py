"""Long text stored zlib-compressed on SQLite: tracebacks, which repeat within and across tasks.

A failing task's traceback is its largest field by far, and a burst of failures stores the same
frames again and again: compressed, a traceback takes about a third of its bytes. Text shorter
than PACK_FROM, or that compression does not shrink, is stored as it is, so old rows and short
values read unchanged; a packed value is a BLOB, which SQLite never confuses with TEXT.
PostgreSQL compresses long values itself (TOAST), so there the column holds plain text.
"""
from __future__ import annotations

import zlib

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

PACK_FROM = 200  # characters; below this zlib's header and a short text's little repetition gain nothing


def pack(text: str | None) -> str | bytes | None:
    """The stored form of `text` on SQLite: zlib bytes when that is smaller, else the text."""
    if text is None or len(text) < PACK_FROM:
        return text
    raw = text.encode("utf-8")
    packed = zlib.compress(raw, 6)
    return packed if len(packed) < len(raw) else text


def unpack(value: str | bytes | None) -> str | None:
    return zlib.decompress(value).decode("utf-8") if isinstance(value, bytes) else value


class PackedText(TypeDecorator):
    """A Text column whose long values SQLite stores packed (see the module's docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return pack(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return unpack(value)

"""API tokens: random bearer tokens, stored as SHA-256, revocable, carrying their user's role."""
from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from sqlalchemy.engine import Engine

from dashboard.auth.users import User
from dashboard.store import Writer, auth_store

PREFIX = "jd_"
NAME_MAX = 64


def _digest(token: str) -> str:
    # 256 random bits need no slow hash: nobody can guess their way back from the digest.
    return hashlib.sha256(token.encode()).hexdigest()


def create(writer: Writer, user: User, name: str) -> str:
    """Make a token for `user` and return it; this is the only time it can be seen."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"a token needs a name of 1 to {NAME_MAX} characters")
    token = PREFIX + secrets.token_urlsafe(32)
    writer.write("token_add", {"user_id": user.id, "name": name, "token_hash": _digest(token),
                               "prefix": token[:len(PREFIX) + 6], "created_at": time.time(), "revoked_at": None})
    return token


def revoke(writer: Writer, user: User, token_id: int) -> None:
    """Revoke one of `user`'s own tokens (others' are left alone)."""
    writer.write("token_revoke", {"id": token_id, "user_id": user.id, "revoked_at": time.time()})


def owned_by(engine: Engine, user: User) -> list[dict[str, Any]]:
    return auth_store.token_rows(engine, user.id)


def user_of(engine: Engine, token: str) -> User | None:
    if not token.startswith(PREFIX):
        return None
    row = auth_store.token_user(engine, _digest(token))
    return User(row["id"], row["name"], row["role"]) if row else None

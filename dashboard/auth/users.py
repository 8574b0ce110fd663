"""Users and roles: argon2 password hashes, role order, adding and removing users."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from dashboard.store import Writer
from dashboard.store import auth_store

# In increasing power: each role may do everything the ones before it may.
ROLES = ("viewer", "manager", "admin")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 10
DEMO_ADMIN = "admin"

_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    """Someone logged in (by session or by API token)."""

    id: int
    name: str
    role: str


def has_role(role: str, needed: str) -> bool:
    """Whether `role` is `needed` or above it."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def check_new_user(name: str, role: str, password: str) -> None:
    """Raise ValueError saying what is wrong with a user about to be added."""
    if not NAME_RE.match(name or ""):
        raise ValueError("a user name is 1 to 64 letters, digits or _ . @ -, starting with a letter or digit")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    check_password(password)


def check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def find_user(engine: Engine, name: str) -> User | None:
    row = auth_store.user_row(engine, name)
    return User(row["id"], row["name"], row["role"]) if row else None


def add_user(writer: Writer, engine: Engine, name: str, role: str, password: str) -> None:
    """Add a user; ValueError if the input is bad or the name is taken."""
    check_new_user(name, role, password)
    if auth_store.user_row(engine, name):
        raise ValueError(f"a user called {name!r} already exists")
    writer.write("user_add", {"name": name, "role": role, "password_hash": _hasher.hash(password),
                              "created_at": time.time()})


def remove_user(writer: Writer, engine: Engine, name: str) -> None:
    """Remove a user with their sessions and tokens; ValueError if there is no such user."""
    if not auth_store.user_row(engine, name):
        raise ValueError(f"no user called {name!r}")
    writer.write("user_remove", {"name": name})


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user if the password is theirs, else None (taking as long either way)."""
    row = auth_store.user_row(engine, name) if NAME_RE.match(name or "") else None
    try:
        # An unknown name still costs one verification, so timing does not tell names apart.
        _hasher.verify(row["password_hash"] if row else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        return None
    return User(row["id"], row["name"], row["role"]) if row else None


def ensure_demo_admin(runtime, password: str | None = None) -> str:
    """Give the demo an admin with `password` or a new random one (added or reset); return the password."""
    password = password or secrets.token_urlsafe(12)
    if auth_store.user_row(runtime.engine, DEMO_ADMIN):
        runtime.writer.write("user_password", {"name": DEMO_ADMIN, "password_hash": _hasher.hash(password)})
    else:
        add_user(runtime.writer, runtime.engine, DEMO_ADMIN, "admin", password)
    return password


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))

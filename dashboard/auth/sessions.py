"""Server-side login sessions and login throttling, both kept in the database."""
from __future__ import annotations

import hashlib
import math
import secrets
import time

from sqlalchemy.engine import Engine

from dashboard.auth.users import User
from dashboard.store import Writer, auth_store

SESSION_LIFETIME = 12 * 3600.0  # seconds from login; then the user logs in again
# Failed logins for one name from one address: this many within the window, and the next
# attempt is refused until the oldest of them leaves the window.
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60.0


def _digest(session_id: str) -> str:
    # Only the hash is stored: a copy of the database does not let anyone in.
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(writer: Writer, user: User) -> str:
    """Open a session for `user` and return its new random id, for the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    writer.write("session_start", {"id_hash": _digest(session_id), "user_id": user.id, "created_at": now,
                                   "expires_at": now + SESSION_LIFETIME})
    return session_id


def end(writer: Writer, session_id: str) -> None:
    """Delete the session, so that its cookie, even replayed, no longer logs anyone in."""
    writer.write("session_end", {"id_hash": _digest(session_id)})


def user_of(engine: Engine, session_id: str | None) -> User | None:
    if not isinstance(session_id, str) or not session_id:
        return None
    row = auth_store.session_user(engine, _digest(session_id), time.time())
    return User(row["id"], row["name"], row["role"]) if row else None


def retry_after(engine: Engine, name: str, ip: str) -> int:
    """Seconds until `name` may try to log in again from `ip`; 0 when it may now."""
    now = time.time()
    failures = auth_store.login_failure_times(engine, name, ip, now - FAILURE_WINDOW)
    if len(failures) < MAX_FAILURES:
        return 0
    return max(1, math.ceil(failures[-MAX_FAILURES] + FAILURE_WINDOW - now))


def record_failure(writer: Writer, name: str, ip: str) -> None:
    now = time.time()
    writer.write("login_failure", {"name": name[:64], "ip": ip[:64], "ts": now, "forget_before": now - FAILURE_WINDOW})


def clear_failures(writer: Writer, name: str, ip: str) -> None:
    writer.write("login_failures_clear", {"name": name, "ip": ip})

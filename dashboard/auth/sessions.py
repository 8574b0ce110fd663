"""Server-side login sessions (idle and absolute limits) and login throttling, both kept in the database."""
from __future__ import annotations

import hashlib
import math
import secrets
import time

from sqlalchemy.engine import Engine

from dashboard.auth.users import User
from dashboard.store import Writer, auth_store

SESSION_LIFETIME = 7 * 24 * 3600.0  # seconds from login at most (settings: session_lifetime_hours)
SESSION_IDLE = 12 * 3600.0  # seconds without a request (settings: session_idle_hours)
TOUCH_EVERY = 60.0  # a session's last request is written at most this often

# Throttling. Each attempt is recorded as a failure before its password is checked, in one
# serialised step with the counting, so parallel guesses cannot slip past the count; a right
# password then takes its row back. Failures count for FAILURE_WINDOW.
FAILURE_WINDOW = 15 * 60.0
MAX_FAILURES = 5  # one name from one address (or one browser that logged in as that name before)
IP_MAX_FAILURES = 20  # one address, whatever the names
# One name from every untrusted address together: after this many failures each try waits
# 2, 4, 8... seconds after the last, up to ACCOUNT_MAX_DELAY. A browser that has logged in as
# that name before (see auth.devices) is exempt, so an attacker cannot lock its owner out.
ACCOUNT_FREE_FAILURES = 10
ACCOUNT_MAX_DELAY = 300.0
DEVICE_PREFIX = "device:"


def _digest(session_id: str) -> str:
    # Only the hash is stored: a copy of the database does not let anyone in.
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(writer: Writer, user: User, lifetime: float = SESSION_LIFETIME) -> str:
    """Open a session for `user` and return its new random id, for the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    writer.write("session_start", {"id_hash": _digest(session_id), "user_id": user.id, "created_at": now,
                                   "expires_at": now + lifetime, "last_seen_at": now})
    return session_id


def end(writer: Writer, session_id: str) -> None:
    """Delete the session, so that its cookie, even replayed, no longer logs anyone in."""
    writer.write("session_end", {"id_hash": _digest(session_id)})


def lookup(engine: Engine, session_id: str | None, idle: float = SESSION_IDLE,
           lifetime: float = SESSION_LIFETIME) -> tuple[User, float] | None:
    """The user of a live session and when it was last used; None if it ended, expired or idled out."""
    if not isinstance(session_id, str) or not session_id:
        return None
    row = auth_store.session_user(engine, _digest(session_id), time.time(), idle, lifetime)
    return (User(row["id"], row["name"], row["role"]), row["last_seen"]) if row else None


def touch(writer: Writer, session_id: str, last_seen: float) -> None:
    """Note that the session is in use (not waited for; at most once every TOUCH_EVERY)."""
    now = time.time()
    if now - last_seen >= TOUCH_EVERY:
        writer.submit("session_touch", {"id_hash": _digest(session_id), "last_seen_at": now})


def key_of(ip: str, device: str | None) -> str:
    """What failures are counted under: the trusted browser if there is one, else the address."""
    return (DEVICE_PREFIX + device if device else ip)[:64]


def _wait(now: float, own: list[float], by_ip: list[float], by_name: list[float]) -> float:
    """Seconds this attempt must wait, from the window's failures (oldest first); 0 to go on."""
    waits = [0.0]
    if len(own) >= MAX_FAILURES:
        waits.append(own[-MAX_FAILURES] + FAILURE_WINDOW - now)
    if len(by_ip) >= IP_MAX_FAILURES:
        waits.append(by_ip[-IP_MAX_FAILURES] + FAILURE_WINDOW - now)
    if len(by_name) >= ACCOUNT_FREE_FAILURES:
        delay = min(ACCOUNT_MAX_DELAY, 2.0 ** (len(by_name) - ACCOUNT_FREE_FAILURES + 1))
        waits.append(by_name[-1] + delay - now)
    return max(waits)


def attempt(writer: Writer, name: str, ip: str, device: str | None = None) -> int:
    """Record a login attempt as a failure unless it must wait; the seconds to wait (0: go on)."""
    now = time.time()
    payload = {"name": name[:64], "key": key_of(ip, device), "ip": ip[:64], "trusted": device is not None,
               "ts": now, "since": now - FAILURE_WINDOW, "decide": _wait, "wait": None}
    writer.write("login_attempt", payload)
    return math.ceil(payload["wait"]) if payload["wait"] > 0 else 0


def clear_failures(writer: Writer, name: str, key: str) -> None:
    """A right password: forget the failures of that name under that key (this attempt's included)."""
    writer.write("login_failures_clear", {"name": name[:64], "ip": key})

"""Users, login sessions, login failures and API tokens: the writer's handlers and the reads."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from dashboard.store.models import ApiToken, LoginFailure, LoginSession, User

USER_COLUMNS = (User.id, User.name, User.role)


# -- writer handlers (each runs inside the batch's transaction) -----------------------------

def add_users(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    conn.execute(insert(User), payloads)


def set_passwords(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Replace a user's password hash and end their sessions: a new password locks out the old."""
    for p in payloads:
        user_id = conn.execute(select(User.id).where(User.name == p["name"])).scalar_one()
        conn.execute(update(User).where(User.id == user_id).values(password_hash=p["password_hash"]))
        conn.execute(delete(LoginSession).where(LoginSession.user_id == user_id))


def remove_users(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        user_id = conn.execute(select(User.id).where(User.name == p["name"])).scalar_one_or_none()
        if user_id is None:
            continue
        # Explicit rather than trusting ON DELETE CASCADE, which SQLite honours only with its pragma.
        conn.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
        conn.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        conn.execute(delete(User).where(User.id == user_id))


def start_sessions(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Add sessions; expired ones are swept at the same time, so the table stays small."""
    conn.execute(delete(LoginSession).where(LoginSession.expires_at < min(p["created_at"] for p in payloads)))
    conn.execute(insert(LoginSession), payloads)


def end_sessions(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    conn.execute(delete(LoginSession).where(LoginSession.id_hash.in_([p["id_hash"] for p in payloads])))


def record_login_attempts(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Count each attempt's failures and, unless its `decide` says wait, record it as one.

    Counting and recording happen in one serialised step: the writer is the only writer of its
    process, and on PostgreSQL a table lock keeps other processes' writers out until commit.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE login_failures IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(delete(LoginFailure).where(LoginFailure.ts < min(p["since"] for p in payloads)))
    f = LoginFailure

    def times(since: float, *where) -> list[float]:
        return list(conn.execute(select(f.ts).where(f.ts >= since, *where).order_by(f.ts)).scalars())

    for p in payloads:
        own = times(p["since"], f.name == p["name"], f.ip == p["key"])
        # A trusted browser is held to its own count only (see auth.sessions).
        by_ip = [] if p["trusted"] else times(p["since"], f.ip == p["ip"])
        by_name = [] if p["trusted"] else times(p["since"], f.name == p["name"], ~f.ip.startswith("device:"))
        p["wait"] = p["decide"](p["ts"], own, by_ip, by_name)
        if p["wait"] <= 0:
            conn.execute(insert(LoginFailure).values(name=p["name"], ip=p["key"], ts=p["ts"]))


def touch_sessions(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        conn.execute(update(LoginSession).where(LoginSession.id_hash == p["id_hash"])
                     .values(last_seen_at=p["last_seen_at"]))


def clear_login_failures(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        conn.execute(delete(LoginFailure).where(LoginFailure.name == p["name"], LoginFailure.ip == p["ip"]))


def add_tokens(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    conn.execute(insert(ApiToken), payloads)


def revoke_tokens(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        conn.execute(update(ApiToken)
                     .where(ApiToken.id == p["id"], ApiToken.user_id == p["user_id"], ApiToken.revoked_at.is_(None))
                     .values(revoked_at=p["revoked_at"]))


HANDLERS = {
    "user_add": add_users,
    "user_password": set_passwords,
    "user_remove": remove_users,
    "session_start": start_sessions,
    "session_end": end_sessions,
    "login_attempt": record_login_attempts,
    "session_touch": touch_sessions,
    "login_failures_clear": clear_login_failures,
    "token_add": add_tokens,
    "token_revoke": revoke_tokens,
}


# -- reads -----------------------------------------------------------------------------------

def user_row(engine: Engine, name: str) -> dict[str, Any] | None:
    """The user called `name` with their password hash, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(*USER_COLUMNS, User.password_hash).where(User.name == name)).mappings().first()
        return dict(row) if row else None


def user_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*USER_COLUMNS, User.created_at).order_by(User.name)).mappings()]


def count_users(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(User)).scalar_one()


def session_user(engine: Engine, id_hash: str, now: float, idle: float, lifetime: float) -> dict[str, Any] | None:
    """The user of a session neither expired, older than `lifetime` nor idle for `idle`; with its last use."""
    s = LoginSession
    last_seen = func.coalesce(s.last_seen_at, s.created_at)
    with engine.connect() as conn:
        row = conn.execute(
            select(*USER_COLUMNS, last_seen.label("last_seen")).join(s, s.user_id == User.id)
            .where(s.id_hash == id_hash, s.expires_at > now, s.created_at > now - lifetime, last_seen > now - idle)
        ).mappings().first()
        return dict(row) if row else None


def token_user(engine: Engine, token_hash: str) -> dict[str, Any] | None:
    """The user owning an unrevoked token, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*USER_COLUMNS).join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        ).mappings().first()
        return dict(row) if row else None


def token_rows(engine: Engine, user_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.created_at, ApiToken.revoked_at)
            .where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())
        ).mappings()]

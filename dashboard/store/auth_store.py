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


def add_login_failures(conn: Connection, payloads: list[dict[str, Any]]) -> None:
    """Record failures; those older than the throttling window are swept at the same time."""
    conn.execute(delete(LoginFailure).where(LoginFailure.ts < min(p["forget_before"] for p in payloads)))
    conn.execute(insert(LoginFailure), [{k: p[k] for k in ("name", "ip", "ts")} for p in payloads])


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
    "login_failure": add_login_failures,
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


def session_user(engine: Engine, id_hash: str, now: float) -> dict[str, Any] | None:
    """The user of an unexpired session, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*USER_COLUMNS).join(LoginSession, LoginSession.user_id == User.id)
            .where(LoginSession.id_hash == id_hash, LoginSession.expires_at > now)
        ).mappings().first()
        return dict(row) if row else None


def login_failure_times(engine: Engine, name: str, ip: str, since: float) -> list[float]:
    with engine.connect() as conn:
        return list(conn.execute(
            select(LoginFailure.ts).where(LoginFailure.name == name, LoginFailure.ip == ip, LoginFailure.ts >= since)
            .order_by(LoginFailure.ts)
        ).scalars())


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

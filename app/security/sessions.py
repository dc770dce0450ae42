"""Authentication and server-side login sessions (lockout, idle and absolute timeouts)."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import lazyload

from app import clock
from app.audit import service as audit
from app.audit.context import set_actor
from app.db import session
from app.security import passwords
from app.security.models import Agent, AgentSession

# Writing last_seen_at on every request would turn every page view into a write.
TOUCH_INTERVAL = timedelta(seconds=60)
ENDED_SESSIONS_KEPT = timedelta(days=90)


def authenticate(*, login: str, password: str) -> Agent | None:
    """The agent if login and password are right and the account is usable, else None.

    Every refusal costs one argon2 verification and is audited with its real reason; the
    caller shows the same message whatever the reason.
    """
    now = clock.now()
    login = (login or "").strip().lower()[:64]
    # FOR UPDATE: parallel attempts on one account queue here, so each failure is counted.
    # lazyload: a known login costs no extra queries compared with an unknown one.
    agent = session.execute(
        select(Agent).where(Agent.login == login).options(lazyload(Agent.roles), lazyload(Agent.territories))
        .with_for_update()
    ).scalar_one_or_none()
    password_ok = passwords.verify_password(agent.password_hash if agent else None, password or "")
    reason = None
    if agent is None:
        reason = "unknown_login"
    elif not agent.active:
        reason = "inactive"
    elif agent.is_locked(now):
        reason = "locked"
    elif not password_ok:
        reason = "bad_password"
        agent.failed_logins += 1
        if agent.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            agent.locked_until = now + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
            agent.failed_logins = 0
            reason = "bad_password_locked"
    if reason is not None:
        # Nobody is authenticated: the attempt is not the targeted agent's action.
        set_actor(actor_id=None, actor_label=f"anonymous:{login}")
        audit.record("login.failed", object_type="agent", object_id=str(agent.id) if agent else None,
                     data={"reason": reason})
        session.flush()
        return None
    agent.failed_logins = 0
    agent.locked_until = None
    agent.last_login_at = now
    if passwords.needs_rehash(agent.password_hash):
        agent.password_hash = passwords.hash_password(password)
    session.flush()
    return agent


def open_session(*, agent: Agent, client_addr: str | None, user_agent: str | None) -> AgentSession:
    """Start a new server-side session for agent (a fresh id at every login)."""
    now = clock.now()
    agent_session = AgentSession(
        id=secrets.token_urlsafe(32),
        agent_id=agent.id,
        created_at=now,
        last_seen_at=now,
        client_addr=client_addr,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(agent_session)
    set_actor(actor_id=agent.id, actor_label=agent.login)
    audit.record("login", object_type="agent", object_id=str(agent.id))
    session.flush()
    return agent_session


def _expiry_reason(agent_session: AgentSession, now: datetime) -> str | None:
    config = current_app.config
    if now - agent_session.created_at > config["SESSION_ABSOLUTE_TIMEOUT"]:
        return "absolute_timeout"
    if now - agent_session.last_seen_at > config["SESSION_IDLE_TIMEOUT"]:
        return "idle_timeout"
    return None


def resume_session(*, session_id: str | None, agent_id: int) -> Agent | None:
    """The agent of a live session, touching it; None when it ended, expired or is not theirs."""
    if not session_id:
        return None
    agent_session = session.get(AgentSession, session_id)
    if agent_session is None or agent_session.agent_id != agent_id or agent_session.ended_at is not None:
        return None
    now = clock.now()
    reason = _expiry_reason(agent_session, now)
    agent = agent_session.agent
    if reason is None and not agent.active:
        reason = "deactivated"
    if reason is not None:
        agent_session.ended_at = now
        agent_session.end_reason = reason
        session.flush()
        return None
    if now - agent_session.last_seen_at >= TOUCH_INTERVAL:
        agent_session.last_seen_at = now
        session.flush()
    return agent


def end_session(*, session_id: str | None, reason: str = "logout") -> None:
    """End one session (logout)."""
    agent_session = session.get(AgentSession, session_id) if session_id else None
    if agent_session is not None and agent_session.ended_at is None:
        agent_session.ended_at = clock.now()
        agent_session.end_reason = reason
        if reason == "logout":
            audit.record("logout", object_type="agent", object_id=str(agent_session.agent_id))
        session.flush()


def end_agent_sessions(*, agent: Agent, reason: str) -> int:
    """End every open session of agent at once; returns how many were open."""
    result = session.execute(
        update(AgentSession)
        .where(AgentSession.agent_id == agent.id, AgentSession.ended_at.is_(None))
        .values(ended_at=clock.now(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def purge_sessions() -> dict[str, int]:
    """End sessions past their timeouts and delete ended ones older than the retention period."""
    now = clock.now()
    config = current_app.config
    expired = session.execute(
        update(AgentSession)
        .where(
            AgentSession.ended_at.is_(None),
            or_(
                AgentSession.last_seen_at < now - config["SESSION_IDLE_TIMEOUT"],
                AgentSession.created_at < now - config["SESSION_ABSOLUTE_TIMEOUT"],
            ),
        )
        .values(ended_at=now, end_reason="expired")
        .execution_options(synchronize_session=False)
    ).rowcount
    deleted = session.execute(
        delete(AgentSession)
        .where(AgentSession.ended_at < now - ENDED_SESSIONS_KEPT)
        .execution_options(synchronize_session=False)
    ).rowcount
    return {"expired": expired, "deleted": deleted}

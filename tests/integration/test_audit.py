"""The audit trail records true before/after values and cannot be bypassed by bulk writes."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.audit.models import AuditEntry
from app.db import session
from app.security.models import Agent, AgentSession
from tests.factories import AgentFactory


def _last_entry(agent_id: int) -> AuditEntry:
    return session.execute(
        select(AuditEntry).where(AuditEntry.object_type == "agent", AuditEntry.object_id == str(agent_id))
        .order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one()


def test_previous_value_is_recorded_even_when_it_was_not_loaded():
    agent = AgentFactory(full_name="Avant")
    session.expire(agent, ["full_name"])  # as after a rollback, or a deferred column
    agent.full_name = "Après"
    session.commit()
    assert _last_entry(agent.id).changes == {"full_name": ["Avant", "Après"]}


def test_an_unchanged_value_writes_no_entry():
    agent = AgentFactory(full_name="Même")
    before = _last_entry(agent.id).id
    agent.full_name = "Même"
    session.commit()
    assert _last_entry(agent.id).id == before


def test_bulk_update_of_an_audited_model_is_refused():
    agent = AgentFactory()
    with pytest.raises(RuntimeError, match="audit trail"):
        session.execute(update(Agent).where(Agent.id == agent.id).values(full_name="sans trace"))
    session.rollback()
    assert session.get(Agent, agent.id).full_name != "sans trace"


def test_bulk_update_of_an_unaudited_model_is_allowed():
    agent = AgentFactory()
    session.execute(update(AgentSession).where(AgentSession.agent_id == agent.id).values(end_reason="x"))


def test_each_application_context_has_its_own_session(app):
    with app.app_context():
        outer = session()
        with app.app_context():
            inner = session()
        assert outer is not inner
        assert session() is outer

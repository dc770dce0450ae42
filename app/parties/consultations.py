"""Who opened a party's 360° view, and when (GDPR: a customer's access request lists who saw their
data). One row per full view of the customer page, written in the request's transaction; the
page's htmx fragments (history pages, contract tabs, invoice pages) write none."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app import clock
from app.db import session
from app.parties.models import PartyConsultation
from app.security.models import Agent


@dataclass(frozen=True)
class Consultation:
    agent_id: int
    login: str
    full_name: str
    consulted_at: datetime


def record(*, party_id: int, agent: Agent) -> PartyConsultation:
    """Write that this agent is viewing this party now (flushed with the request's commit)."""
    row = PartyConsultation(party_id=party_id, agent_id=agent.id, consulted_at=clock.now())
    session.add(row)
    return row


def consultations_of(party_id: int, limit: int | None = None) -> list[Consultation]:
    """The views of the party's page, newest first, with the agent's login and full name."""
    stmt = (select(PartyConsultation.agent_id, Agent.login, Agent.full_name, PartyConsultation.consulted_at)
            .join(Agent, Agent.id == PartyConsultation.agent_id)
            .where(PartyConsultation.party_id == party_id)
            .order_by(PartyConsultation.consulted_at.desc(), PartyConsultation.id.desc()))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Consultation(*row) for row in session.execute(stmt)]

"""Reading party data; every read goes through the agent's scope."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from app.db import session
from app.parties.models import Party
from app.security.models import Agent
from app.security.scope import get_scoped, scope_condition, scoped_select

READ = "party.read"


def get_party(*, agent: Agent, party_id: int) -> Party | None:
    """The party if the agent may read it, else None (as for a missing one)."""
    return get_scoped(Party, party_id, agent=agent, permission=READ)


def list_parties(*, agent: Agent, limit: int = 50, offset: int = 0) -> list[Party]:
    """Parties in the agent's scope, by name."""
    stmt = scoped_select(Party, agent=agent, permission=READ).order_by(Party.last_name, Party.id)
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())



def readable_party_ids(*, agent: Agent, party_ids: Iterable[int]) -> set[int]:
    """Which of these parties the agent may read (a contact or dossier lists its other parties by
    name only, and links to these)."""
    stmt = select(Party.id).where(Party.id.in_(list(party_ids)), scope_condition(Party, agent=agent, permission=READ))
    return set(session.execute(stmt).scalars())

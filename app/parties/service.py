"""Reading party data; every read goes through the agent's scope."""
from __future__ import annotations

from app.db import session
from app.parties.models import Party
from app.security.models import Agent
from app.security.scope import get_scoped, scoped_select

READ = "party.read"


def get_party(*, agent: Agent, party_id: int) -> Party | None:
    """The party if the agent may read it, else None (as for a missing one)."""
    return get_scoped(Party, party_id, agent=agent, permission=READ)


def list_parties(*, agent: Agent, limit: int = 50, offset: int = 0) -> list[Party]:
    """Parties in the agent's scope, by name."""
    stmt = scoped_select(Party, agent=agent, permission=READ).order_by(Party.last_name, Party.id)
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


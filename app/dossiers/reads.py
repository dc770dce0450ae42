"""Reads of dossiers through the agent's scope (a dossier is in scope when one of its parties is).
Kept apart from the service so that the contact templates can read open dossiers without a cycle."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload

from app.db import session
from app.dossiers.models import Dossier, DossierContact, DossierParty, DossierStatus, DossierType
from app.security.models import Agent
from app.security.scope import get_scoped, scoped_select

READ = "party.read"


def list_options() -> tuple:
    """Lists show a dossier's reference, classification, status and dates, not its links (built
    when a query needs them, as app.contacts.service.list_options)."""
    return (
        lazyload(Dossier.parties), lazyload(Dossier.agents), lazyload(Dossier.objects),
        joinedload(Dossier.dossier_type).lazyload(DossierType.items),
        joinedload(Dossier.created_by).options(lazyload(Agent.roles), lazyload(Agent.territories)),
    )


def get_dossier(*, agent: Agent, dossier_id: int) -> Dossier | None:
    return get_scoped(Dossier, dossier_id, agent=agent, permission=READ)


def dossiers_of_party(*, agent: Agent, party_id: int, open_only: bool = False, limit: int = 50) -> list[Dossier]:
    """The party's dossiers the agent may read, newest first."""
    stmt = (scoped_select(Dossier, agent=agent, permission=READ)
            .where(Dossier.id.in_(select(DossierParty.dossier_id).where(DossierParty.party_id == party_id)))
            .order_by(Dossier.created_at.desc(), Dossier.id.desc()).limit(limit).options(*list_options()))
    if open_only:
        stmt = stmt.where(Dossier.status.in_(DossierStatus.NOT_CLOSED))
    return list(session.execute(stmt).scalars())


def open_dossiers_of_party(*, agent: Agent, party_id: int) -> list[Dossier]:
    return dossiers_of_party(agent=agent, party_id=party_id, open_only=True)


def dossiers_of_contact(*, agent: Agent, contact_id: int) -> list[Dossier]:
    """The dossiers the contact is referenced in ("dossiers liés"), those the agent may read."""
    stmt = (scoped_select(Dossier, agent=agent, permission=READ)
            .join(DossierContact, DossierContact.dossier_id == Dossier.id)
            .where(DossierContact.contact_id == contact_id)
            .order_by(DossierContact.added_at, Dossier.id))
    return list(session.execute(stmt).scalars())

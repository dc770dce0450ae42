"""Contacts: capture with their links, reads through the scope. Functions flush; the caller commits."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload

from app import clock
from app.audit import service as audit
from app.contacts import links as link_rules
from app.contacts import objects
from app.contacts.models import Contact, ContactAgent, ContactObject, ContactParty, ContactType, Direction
from app.db import session
from app.errors import BusinessError
from app.labels import CHANNELS
from app.parties.editing import clean_text
from app.security.models import Agent
from app.security.scope import get_scoped, scoped_select

READ = "party.read"
WRITE = "contact.create"
MAX_DURATION_MINUTES = 24 * 60
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of the agent's PC and the server differ a little
MAX_AGE = timedelta(days=366)  # a contact is traced when it happens, or caught up within the year
SUBJECT_MAX = 200
NOTES_MAX = 20_000


def active_types() -> list[ContactType]:
    stmt = select(ContactType).where(ContactType.active.is_(True)).order_by(ContactType.position, ContactType.label)
    return list(session.execute(stmt).scalars())


def get_type(type_id: int | None, *, active_only: bool = True) -> ContactType | None:
    if type_id is None:
        return None
    contact_type = session.get(ContactType, type_id)
    if contact_type is None or (active_only and not contact_type.active):
        return None
    return contact_type


def without_nul(text: str | None) -> str:
    """Free text without NUL characters (PostgreSQL refuses them in text columns)."""
    return (text or "").replace("\x00", "")


def one_line(text: str | None) -> str:
    """Free text made one line: trimmed, runs of blanks one space, without NUL characters."""
    return clean_text(without_nul(text))


def check_subject(subject: str | None, *, default: str) -> str:
    """The subject of a contact or a dossier: one line, the default when blank, SUBJECT_MAX at most."""
    subject = one_line(subject) or default
    if len(subject) > SUBJECT_MAX:
        raise BusinessError(_("L'objet tient en %(max)d caractères.", max=SUBJECT_MAX), field="subject")
    return subject


def get_contact(*, agent: Agent, contact_id: int) -> Contact | None:
    return get_scoped(Contact, contact_id, agent=agent, permission=READ)


def link_summary(links: link_rules.Links) -> dict:
    """The links as the audit trail keeps them."""
    return {
        "parties": [f"{link.party_id}:{link.role}" for link in links.parties],
        "agents": [f"{link.agent_id}:{link.role}" for link in links.agents],
        "objects": [link.ref.key for link in links.objects],
    }


SUBMISSION_KEY_RE = re.compile(r"^[0-9a-f]{32}$")


class AlreadySubmitted(BusinessError):
    """This form was already saved (a double click, a resent request): the contact it traced."""

    def __init__(self, contact: Contact) -> None:
        super().__init__(_("Ce contact était déjà enregistré (n° %(id)s).", id=contact.id))
        self.contact = contact


def contact_of_submission(key: str | None) -> Contact | None:
    if not key or not SUBMISSION_KEY_RE.match(key):
        return None
    return session.execute(select(Contact).where(Contact.submission_key == key)).scalar_one_or_none()


def create_contact(*, agent: Agent, contact_type_id: int | None, channel: str | None, direction: str | None,
                   subject: str | None, notes: str | None, occurred_at: datetime | None,
                   duration_minutes: int | None, links: link_rules.Links,
                   submission_key: str | None = None) -> Contact:
    """Trace a contact with its links. Every check runs before the first write: a refused contact
    leaves nothing behind. A form's submission_key traces one contact however often it is posted
    (AlreadySubmitted names it; the unique constraint settles two posts at the same instant)."""
    if agent is None or not agent.can(WRITE):
        raise BusinessError(_("Vous n'avez pas l'habilitation de tracer un contact."))
    previous = contact_of_submission(submission_key)
    if previous is not None:
        raise AlreadySubmitted(previous)
    contact_type = get_type(contact_type_id)
    if contact_type is None:
        raise BusinessError(_("Choisissez un type de contact."), field="contact_type")
    channel = channel or contact_type.default_channel
    if channel not in CHANNELS:
        raise BusinessError(_("Choisissez le canal du contact."), field="channel")
    direction = direction or contact_type.default_direction
    if direction not in Direction.ALL:
        raise BusinessError(_("Choisissez le sens du contact."), field="direction")
    subject = check_subject(subject, default=contact_type.label)
    notes = without_nul(notes).strip() or None
    if notes and len(notes) > NOTES_MAX:
        raise BusinessError(_("Les notes tiennent en %(max)d caractères.", max=NOTES_MAX), field="notes")
    now = clock.now()
    occurred_at = occurred_at or now
    if occurred_at > now + FUTURE_TOLERANCE:
        raise BusinessError(_("Un contact ne peut pas être daté dans le futur."), field="occurred_at")
    if occurred_at < now - MAX_AGE:
        raise BusinessError(_("Un contact se trace dans l'année qui suit : vérifiez la date."), field="occurred_at")
    if duration_minutes is not None and not 0 <= duration_minutes <= MAX_DURATION_MINUTES:
        raise BusinessError(_("La durée est comprise entre 0 et %(max)d minutes.", max=MAX_DURATION_MINUTES),
                            field="duration_minutes")
    links = link_rules.check(links, agent=agent, items=contact_type.items)

    contact = Contact(contact_type=contact_type, channel=channel, direction=direction, subject=subject, notes=notes,
                      occurred_at=occurred_at, duration_minutes=duration_minutes, created_by_id=agent.id,
                      created_at=now,
                      submission_key=submission_key if submission_key and SUBMISSION_KEY_RE.match(submission_key)
                      else None, territory_id=link_rules.territory_of_record(links))
    contact.parties = [ContactParty(party_id=x.party_id, role=x.role, origin=x.origin) for x in links.parties]
    contact.agents = [ContactAgent(agent_id=x.agent_id, role=x.role, origin=x.origin) for x in links.agents]
    contact.objects = [ContactObject(object_type=x.ref.kind, object_id=x.ref.id, origin=x.origin)
                       for x in links.objects]
    session.add(contact)
    session.flush()
    audit.record("link", obj=contact, data=link_summary(links))
    return contact


def links_of(contact, *, origin: str | None = None) -> link_rules.Links:
    """A contact's current links, in the form the checks and copies take; with origin, each link
    says it comes from there instead of where it came from into the contact."""
    return link_rules.Links(
        parties=[link_rules.PartyLink(x.party_id, x.role, origin or x.origin) for x in contact.parties],
        agents=[link_rules.AgentLink(x.agent_id, x.role, origin or x.origin) for x in contact.agents],
        objects=[link_rules.ObjectLink(objects.Ref(x.object_type, x.object_id), origin or x.origin)
                 for x in contact.objects],
    )


# A list of contacts shows each one's type and author, not its links: without these options every
# contact listed would load its parties (with phones and e-mails), agents (with roles and
# territories), objects and its type's template (12 more statements on the customer view). Built
# when a query needs them: building them at import would configure the mappers before every
# model module is loaded.
def list_options() -> tuple:
    return (
        lazyload(Contact.parties), lazyload(Contact.agents), lazyload(Contact.objects),
        joinedload(Contact.contact_type).lazyload(ContactType.items),
        joinedload(Contact.created_by).options(lazyload(Agent.roles), lazyload(Agent.territories)),
    )


def contacts_of_party(*, agent: Agent, party_id: int, limit: int, channel: str | None = None) -> list[Contact]:
    """The party's latest contacts, newest first (the caller has checked the agent may read the party)."""
    stmt = (scoped_select(Contact, agent=agent, permission=READ)
            .where(Contact.id.in_(select(ContactParty.contact_id).where(ContactParty.party_id == party_id)))
            .order_by(Contact.occurred_at.desc(), Contact.id.desc()).limit(limit)
            .options(*list_options()))
    if channel:
        stmt = stmt.where(Contact.channel == channel)
    return list(session.execute(stmt).scalars())

"""Dossiers: opening one (from a contact, by hand, or by a service call), moving a contact into
one, notes, status, and the dossier's elements grouped by kind. Functions flush; the caller
commits, so a refused request leaves nothing half-written."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app import clock
from app.audit import service as audit
from app.contacts import links as link_rules
from app.contacts import objects, templating
from app.contacts.models import AgentLinkRole, Contact, PartyLinkRole
from app.contacts.service import (
    SUBJECT_MAX,
    check_subject,
    get_contact,
    link_summary,
    links_of,
    one_line,
    without_nul,
)
from app.contracts.models import Contract, Invoice
from app.db import lock_row, session
from app.dossiers.models import (
    Dossier,
    DossierAgent,
    DossierContact,
    DossierElement,
    DossierObject,
    DossierOrigin,
    DossierParty,
    DossierStatus,
    DossierType,
    ElementKind,
    ReferenceCounter,
)
from app.dossiers.reads import get_dossier
from app.errors import BusinessError
from app.integration import connector
from app.labels import label
from app.parties.models import Party
from app.parties.overview import local_today
from app.parties.service import get_party
from app.processes.models import ProcessInstance, ProcessTask
from app.security.models import Agent
from app.security.scope import scope_condition

CREATE = "dossier.create"
PROCESS = "dossier.process"
SERIES = "DOS"
NOTE_MAX = 20_000


# --- Referentials -----------------------------------------------------------------------------

def active_types() -> list[DossierType]:
    stmt = select(DossierType).where(DossierType.active.is_(True)).order_by(DossierType.position, DossierType.label)
    return list(session.execute(stmt).scalars())


def _type(dossier_type_id: int | None) -> DossierType:
    dossier_type = session.get(DossierType, dossier_type_id) if dossier_type_id else None
    if dossier_type is None or not dossier_type.active:
        raise BusinessError(_("Choisissez une classification de dossier."), field="dossier_type")
    return dossier_type


def type_by_code(code: str) -> DossierType | None:
    return session.execute(select(DossierType).where(DossierType.code == code)).scalar_one_or_none()


# --- References -------------------------------------------------------------------------------

def next_reference(year: int) -> str:
    """The next reference of the year, "DOS-2026-000042". The UPDATE … RETURNING locks the
    counter's row until the transaction ends, so concurrent creations get distinct numbers; a
    rolled-back creation gives its number back (no hole when nothing was created)."""
    bump = (update(ReferenceCounter).where(ReferenceCounter.series == SERIES, ReferenceCounter.year == year)
            .values(last_value=ReferenceCounter.last_value + 1).returning(ReferenceCounter.last_value))
    value = session.execute(bump).scalar_one_or_none()
    if value is None:  # first dossier of the year: create the counter (once, whoever comes first)
        dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(dialect_insert(ReferenceCounter).values(series=SERIES, year=year, last_value=0)
                        .on_conflict_do_nothing(index_elements=["series", "year"]))
        value = session.execute(bump).scalar_one()
    return f"{SERIES}-{year}-{value:06d}"


# --- Opening ----------------------------------------------------------------------------------

def _split(dossier: Dossier, links: link_rules.Links) -> tuple[link_rules.Links, link_rules.Links]:
    """links as (those the dossier lacks, those it already has)."""
    have_parties = {(x.party_id, x.role) for x in dossier.parties}
    have_agents = {(x.agent_id, x.role) for x in dossier.agents}
    have_objects = {(x.object_type, x.object_id) for x in dossier.objects}
    lacking, present = link_rules.Links(), link_rules.Links()
    for x in links.parties:
        (present if (x.party_id, x.role) in have_parties else lacking).parties.append(x)
    for x in links.agents:
        (present if (x.agent_id, x.role) in have_agents else lacking).agents.append(x)
    for x in links.objects:
        (present if (x.ref.kind, x.ref.id) in have_objects else lacking).objects.append(x)
    return lacking, present


def _add_links(dossier: Dossier, links: link_rules.Links) -> link_rules.Links:
    """Add to the dossier the links it does not have yet; return those added."""
    added, _present = _split(dossier, links)
    if dossier.territory_id is None and added.parties:  # opened without a placing party: placed by the first
        dossier.territory_id = link_rules.territory_of_record(added)
    dossier.parties.extend(DossierParty(party_id=x.party_id, role=x.role, origin=x.origin) for x in added.parties)
    dossier.agents.extend(DossierAgent(agent_id=x.agent_id, role=x.role, origin=x.origin) for x in added.agents)
    dossier.objects.extend(DossierObject(object_type=x.ref.kind, object_id=x.ref.id, origin=x.origin)
                           for x in added.objects)
    return added


class AlreadyOpen(BusinessError):
    """A classification that allows one open dossier per contract already has one on it."""

    def __init__(self, dossier: Dossier) -> None:
        super().__init__(_("Un dossier « %(type)s » est déjà ouvert pour ce contrat : %(reference)s.",
                           type=dossier.dossier_type.label, reference=dossier.reference))
        self.dossier = dossier


def exclusive_contract(dossier_type: DossierType, links: link_rules.Links) -> int | None:
    """The contract a one-per-contract dossier is about: the first linked contract, else the
    contract of the first linked invoice; None for other classifications."""
    if not dossier_type.one_per_contract:
        return None
    refs = sorted((x.ref.kind, x.ref.id) for x in links.objects)
    contract_ids = [object_id for kind, object_id in refs if kind == "contract"]
    if contract_ids:
        return contract_ids[0]
    invoice_ids = [object_id for kind, object_id in refs if kind == "invoice"]
    if invoice_ids:
        return session.execute(select(Invoice.contract_id).where(Invoice.id == invoice_ids[0])).scalar_one()
    return None


def open_on_contract(dossier_type_id: int, contract_id: int) -> Dossier | None:
    """The open dossier of this one-per-contract classification on the contract, if any (what the
    session holds unwritten is not flushed by this read)."""
    with session.no_autoflush:
        return session.execute(select(Dossier).where(
            Dossier.dossier_type_id == dossier_type_id, Dossier.exclusive_contract_id == contract_id,
            Dossier.status != DossierStatus.CLOSED)).scalars().first()


def _add_new(dossier: Dossier) -> None:
    """Add and write a new dossier. One that may collide with the one-open-per-contract index gets
    a clear refusal, the rest of the transaction kept (its insert is rolled back to a savepoint)."""
    if dossier.exclusive_contract_id is None:
        session.add(dossier)
        session.flush()
        return
    type_id = dossier.dossier_type.id
    other = open_on_contract(type_id, dossier.exclusive_contract_id)
    if other is not None:
        raise AlreadyOpen(other)
    savepoint = session.begin_nested()
    session.add(dossier)
    try:
        session.flush()
    except IntegrityError:  # opened at the same instant by another transaction, which won
        savepoint.rollback()
        other = open_on_contract(type_id, dossier.exclusive_contract_id)
        raise AlreadyOpen(other) if other is not None else BusinessError(
            _("Un dossier de cette classification vient d'être ouvert pour ce contrat.")) from None
    savepoint.commit()


def _open(*, dossier_type: DossierType, links: link_rules.Links, subject: str, origin: str,
          agent: Agent | None, contact: Contact | None = None) -> Dossier:
    """Open the dossier; when its classification says so, start its process (a process that cannot
    start refuses the dossier: nothing is written)."""
    created_by_id = agent.id if agent else None
    now = clock.now()
    dossier = Dossier(reference=next_reference(local_today().year), dossier_type=dossier_type, subject=subject,
                      status=DossierStatus.OPEN, origin=origin, created_by_id=created_by_id, created_at=now,
                      due_at=now + timedelta(days=dossier_type.target_days) if dossier_type.target_days else None,
                      exclusive_contract_id=exclusive_contract(dossier_type, links),
                      territory_id=link_rules.territory_of_record(links))
    _add_links(dossier, links)
    _add_new(dossier)
    audit.record("link", obj=dossier, data=link_summary(links))
    if contact is not None:
        session.add(DossierContact(dossier_id=dossier.id, contact_id=contact.id, origin="created_from",
                                   added_at=now, added_by_id=created_by_id))
        session.flush()
    connector.enqueue_create(dossier)  # its affaire in the billing system, sent by a worker
    if dossier_type.auto_start and dossier_type.process_key:
        from app.processes import service as processes  # processes build on dossiers

        processes.start(key=dossier_type.process_key, agent=agent, dossier=dossier, contact=contact)
    return dossier


def open_dossier(*, agent: Agent | None, dossier_type_id: int, links: link_rules.Links, subject: str | None = None,
                 origin: str | None = None) -> Dossier:
    """Open a dossier with these links. agent None is a service call of the system (a scheduled
    job, an external action; origin "automatic"): the caller passes every link, parties and
    objects need only exist. An agent needs dossier.create and may link only what it may read."""
    if agent is not None and not agent.can(CREATE):
        raise BusinessError(_("Vous n'avez pas l'habilitation d'ouvrir un dossier."))
    origin = origin or (DossierOrigin.AUTOMATIC if agent is None else DossierOrigin.MANUAL)
    if origin not in DossierOrigin.ALL:
        raise BusinessError(_("Origine de dossier inconnue : %(origin)s.", origin=origin))
    dossier_type = _type(dossier_type_id)
    subject = check_subject(subject, default=dossier_type.label)
    links = link_rules.check(links, agent=agent, items=dossier_type.items)
    return _open(dossier_type=dossier_type, links=links, subject=subject, origin=origin, agent=agent)


def _contact_context_objects(agent: Agent, contact: Contact) -> tuple[Party | None, Contract | None]:
    """The customer and contract a dossier created from this contact is about, for its template:
    the contact's first readable customer party and first readable contract."""
    party = contract = None
    # The customer role first: a co-holder or a third party linked too is not whom the dossier is about.
    for link in sorted(contact.parties, key=lambda x: (x.role != PartyLinkRole.CUSTOMER, x.role, x.party_id)):
        party = get_party(agent=agent, party_id=link.party_id)
        if party is not None:
            break
    for link in contact.objects:
        if link.object_type == "contract":
            contract = objects.load(agent, [objects.Ref("contract", link.object_id)]).get(
                objects.Ref("contract", link.object_id))
            if contract is not None:
                break
    return party, contract


def proposals_from_contact(*, agent: Agent, contact: Contact,
                           dossier_type: DossierType | None) -> list[templating.Proposal]:
    """What the classification's template adds to the contact's links, with the eligibility of
    each item in the contact's context; nothing for no classification or an inactive one."""
    if dossier_type is None or not dossier_type.active:
        return []
    party, contract = _contact_context_objects(agent, contact)
    ctx = templating.build_context(agent=agent, party=party, contract=contract, channel=contact.channel,
                                   direction=contact.direction)
    return templating.propose(ctx, dossier_type.items, defaults=False)


class DossierExists(BusinessError):
    """The contact already opened a dossier of this classification, still open: it is that one."""

    def __init__(self, dossier: Dossier) -> None:
        super().__init__(_("Ce contact a déjà ouvert le dossier %(ref)s, toujours en cours.", ref=dossier.reference))
        self.dossier = dossier


def already_created_from(*, contact_id: int, dossier_type_id: int) -> Dossier | None:
    """The open dossier of this classification created from this contact, if any."""
    stmt = (select(Dossier).join(DossierContact, DossierContact.dossier_id == Dossier.id)
            .where(DossierContact.contact_id == contact_id, DossierContact.origin == "created_from",
                   Dossier.dossier_type_id == dossier_type_id, Dossier.status.in_(DossierStatus.NOT_CLOSED)))
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def create_from_contact(*, agent: Agent, contact_id: int, dossier_type_id: int, subject: str | None = None) -> Dossier:
    """"Créer un dossier": every party, agent and business object of the contact is published to
    the new dossier, with the agent as its sender and what the classification's template adds.
    Once per classification while that dossier is open (a double click opens one dossier):
    DossierExists names the one already opened."""
    if not agent.can(CREATE):
        raise BusinessError(_("Vous n'avez pas l'habilitation d'ouvrir un dossier."))
    contact = get_contact(agent=agent, contact_id=contact_id)
    if contact is None:
        raise BusinessError(_("Contact introuvable ou hors de votre périmètre."))
    dossier_type = _type(dossier_type_id)
    subject = check_subject(subject, default=contact.subject)
    _lock(contact)  # two clicks on "Créer le dossier" queue here
    already = already_created_from(contact_id=contact.id, dossier_type_id=dossier_type.id)
    if already is not None:
        raise DossierExists(already)
    links = links_of(contact, origin=f"contact:{contact.id}")
    links.agents.insert(0, link_rules.AgentLink(agent.id, AgentLinkRole.EMITTER, "default"))
    for proposal in proposals_from_contact(agent=agent, contact=contact, dossier_type=dossier_type):
        if not proposal.eligible:
            continue
        if proposal.kind == "party":
            links.parties.append(link_rules.PartyLink(proposal.target, proposal.role, proposal.origin))
        elif proposal.kind == "agent":
            links.agents.append(link_rules.AgentLink(proposal.target, proposal.role, proposal.origin))
        else:
            links.objects.append(link_rules.ObjectLink(proposal.target, proposal.origin))
    # The contact's links were checked when it was traced and the dossier takes them all, even a
    # party the agent does not see (the contact is about it): here they need only still exist.
    links = link_rules.check(links, agent=None, items=dossier_type.items)
    dossier = _open(dossier_type=dossier_type, links=links, subject=subject, origin=DossierOrigin.CONTACT,
                    agent=agent, contact=contact)
    audit.record("create_from_contact", obj=dossier, data={"contact": contact.id})
    return dossier


# --- Moving a contact into a dossier ----------------------------------------------------------

@dataclass
class MovePreview:
    contact: Contact
    dossier: Dossier
    to_add: link_rules.Links
    existing: link_rules.Links
    already_attached: bool

    @property
    def adds_nothing(self) -> bool:
        return self.already_attached and not (self.to_add.parties or self.to_add.agents or self.to_add.objects)


def _flush_dossier() -> None:
    """Write the dossier; another write committed since it was read (the row lock prevents it on
    PostgreSQL, this is the last line of defence) is a message, not an error page."""
    try:
        session.flush()
    except StaleDataError:
        raise BusinessError(_("Le dossier vient d'être modifié par quelqu'un d'autre : rechargez la page.")) from None


def _lock(row: Dossier | Contact) -> None:
    """Lock the row and read it again: two agents writing to one dossier (links, notes, status), or
    creating a dossier from one contact, queue instead of racing. SQLite serialises writers anyway."""
    if lock_row(row):
        session.refresh(row)


def _shared_party(contact: Contact, dossier: Dossier) -> bool:
    return bool({x.party_id for x in contact.parties} & {x.party_id for x in dossier.parties})


def _movable(agent: Agent, contact_id: int, dossier_id: int, *, lock: bool = False) -> tuple[Contact, Dossier]:
    if not agent.can(CREATE):
        raise BusinessError(_("Vous n'avez pas l'habilitation d'alimenter un dossier."))
    contact = get_contact(agent=agent, contact_id=contact_id)
    if contact is None:
        raise BusinessError(_("Contact introuvable ou hors de votre périmètre."))
    dossier = get_dossier(agent=agent, dossier_id=dossier_id)
    if dossier is None:
        raise BusinessError(_("Dossier introuvable ou hors de votre périmètre."), field="dossier")
    if lock:
        _lock(dossier)
    if dossier.is_closed:
        raise BusinessError(_("Le dossier %(ref)s est clos : rouvrez-le avant d'y rattacher un contact.",
                              ref=dossier.reference), field="dossier")
    if not _shared_party(contact, dossier):
        raise BusinessError(_("Le dossier %(ref)s ne concerne pas le même client que ce contact.",
                              ref=dossier.reference), field="dossier")
    return contact, dossier


def _split_preview(contact: Contact, dossier: Dossier) -> MovePreview:
    to_add, existing = _split(dossier, links_of(contact, origin=f"contact:{contact.id}"))
    attached = session.get(DossierContact, (dossier.id, contact.id)) is not None
    return MovePreview(contact=contact, dossier=dossier, to_add=to_add, existing=existing, already_attached=attached)


def preview_move(*, agent: Agent, contact_id: int, dossier_id: int) -> MovePreview:
    """What "Déplacer vers dossier" would add to the dossier, and what it already has."""
    contact, dossier = _movable(agent, contact_id, dossier_id)
    return _split_preview(contact, dossier)


def move_contact(*, agent: Agent, contact_id: int, dossier_id: int) -> MovePreview:
    """Attach the contact to the dossier and add what the dossier lacks of the contact's links.
    Doing it again adds nothing."""
    contact, dossier = _movable(agent, contact_id, dossier_id, lock=True)
    preview = _split_preview(contact, dossier)
    if preview.adds_nothing:
        return preview
    _add_links(dossier, preview.to_add)
    if not preview.already_attached:
        session.add(DossierContact(dossier_id=dossier.id, contact_id=contact.id, origin="moved",
                                   added_at=clock.now(), added_by_id=agent.id))
    dossier.updated_at = clock.now()
    session.flush()
    audit.record("move_contact", obj=dossier, data={"contact": contact.id, "added": link_summary(preview.to_add)})
    audit.record("moved_to_dossier", obj=contact, data={"dossier": dossier.reference})
    return preview


def candidate_dossiers(*, agent: Agent, contact: Contact) -> list[Dossier]:
    """The open dossiers of the contact's parties that the agent may read: where it can be moved."""
    from app.dossiers.reads import open_dossiers_of_party

    seen, found = set(), []
    for link in contact.parties:
        for dossier in open_dossiers_of_party(agent=agent, party_id=link.party_id):
            if dossier.id not in seen:
                seen.add(dossier.id)
                found.append(dossier)
    return found


# --- Notes and status -------------------------------------------------------------------------

def _writable(agent: Agent, dossier_id: int, permission: str) -> Dossier:
    if not agent.can(permission):
        raise BusinessError(_("Vous n'avez pas l'habilitation nécessaire sur ce dossier."))
    dossier = get_dossier(agent=agent, dossier_id=dossier_id)
    if dossier is None:
        raise BusinessError(_("Dossier introuvable ou hors de votre périmètre."))
    _lock(dossier)
    return dossier


def open_for_writing(agent: Agent, dossier_id: int, permission: str = CREATE) -> Dossier:
    """The dossier an agent adds to (a note, a letter, a mail): in scope, the permission held, not
    closed, and locked until the transaction ends."""
    dossier = _writable(agent, dossier_id, permission)
    if dossier.is_closed:
        raise BusinessError(_("Le dossier est clos."))
    return dossier


def add_note(*, agent: Agent, dossier_id: int, title: str | None, body: str | None) -> DossierElement:
    dossier = open_for_writing(agent, dossier_id)
    body = without_nul(body).strip()
    if not body:
        raise BusinessError(_("Écrivez la note."), field="body")
    if len(body) > NOTE_MAX:
        raise BusinessError(_("La note tient en %(max)d caractères.", max=NOTE_MAX), field="body")
    title = one_line(title) or _("Note")
    if len(title) > SUBJECT_MAX:
        raise BusinessError(_("Le titre tient en %(max)d caractères.", max=SUBJECT_MAX), field="title")
    note = DossierElement(dossier_id=dossier.id, kind=ElementKind.NOTE, title=title, body=body,
                          created_by_id=agent.id, created_at=clock.now())
    session.add(note)
    dossier.updated_at = clock.now()
    _flush_dossier()
    audit.record("add_note", obj=dossier, data={"note": note.id, "title": title})
    return note


def change_status(*, agent: Agent, dossier_id: int, status: str, version: int | None = None) -> Dossier:
    """Move the dossier to another status; version is the one the agent saw (optimistic lock)."""
    dossier = _writable(agent, dossier_id, PROCESS)
    if version is not None and version != dossier.version:
        raise BusinessError(_("Le dossier vient d'être modifié par quelqu'un d'autre : rechargez la page."))
    if status not in DossierStatus.TRANSITIONS.get(dossier.status, ()):
        raise BusinessError(_("Un dossier « %(current)s » ne peut pas passer « %(wanted)s ».",
                              current=label(dossier.status, "dossier_status"),
                              wanted=label(status, "dossier_status")), field="status")
    return set_status(dossier, status)


def set_status(dossier: Dossier, status: str) -> Dossier:
    """Write the new status (checked by the caller) and mirror it to the billing system. Reopening
    a one-per-contract dossier while another is open on its contract is refused."""
    dossier.status = status
    dossier.closed_at = clock.now() if status == DossierStatus.CLOSED else None
    if status != DossierStatus.CLOSED:
        dossier.close_reason = None  # reopened: how it closed no longer holds
    if status != DossierStatus.CLOSED and dossier.exclusive_contract_id is not None:
        other = open_on_contract(dossier.dossier_type_id, dossier.exclusive_contract_id)
        if other is not None and other.id != dossier.id:
            raise AlreadyOpen(other)
    _flush_dossier()
    connector.enqueue_status(dossier)
    return dossier


# --- Elements ---------------------------------------------------------------------------------

@dataclass
class LinkedObject:
    ref: objects.Ref
    display: str
    origin: str


@dataclass
class Elements:
    """The dossier's elements by kind, in the order the page shows them."""

    contacts: list[DossierContact] = field(default_factory=list)
    letters: list[DossierElement] = field(default_factory=list)
    mails: list[DossierElement] = field(default_factory=list)
    notes: list[DossierElement] = field(default_factory=list)
    parties: list = field(default_factory=list)
    agents: list = field(default_factory=list)
    objects: list[LinkedObject] = field(default_factory=list)
    process_steps: list = field(default_factory=list)  # the user tasks of its processes, in order
    processes: list = field(default_factory=list)  # its process instances, newest first


def elements(*, agent: Agent, dossier: Dossier) -> Elements:
    """The elements of a dossier the agent may read (the caller read the dossier through the scope)."""
    # Only the contacts the agent may read: a contact about another of the dossier's customers,
    # traced in another territory, stays out of sight (the history says one was moved in).
    contacts = session.execute(
        select(DossierContact).join(Contact, Contact.id == DossierContact.contact_id)
        .where(DossierContact.dossier_id == dossier.id, scope_condition(Contact, agent=agent, permission="party.read"))
        .order_by(DossierContact.added_at, DossierContact.contact_id)).scalars().all()
    content = session.execute(
        select(DossierElement).where(DossierElement.dossier_id == dossier.id)
        .order_by(DossierElement.created_at.desc(), DossierElement.id.desc())).scalars().all()
    refs = [objects.Ref(x.object_type, x.object_id) for x in dossier.objects]
    found = objects.load(agent, refs)
    origins = {(x.object_type, x.object_id): x.origin for x in dossier.objects}
    instances = session.execute(select(ProcessInstance).where(ProcessInstance.dossier_id == dossier.id)
                                .order_by(ProcessInstance.id.desc())).scalars().all()
    steps = session.execute(select(ProcessTask).where(ProcessTask.instance_id.in_([i.id for i in instances]))
                            .order_by(ProcessTask.id)).scalars().all() if instances else []
    return Elements(
        processes=list(instances), process_steps=list(steps),
        contacts=list(contacts),
        letters=[e for e in content if e.kind == ElementKind.LETTER],
        mails=[e for e in content if e.kind == ElementKind.MAIL],
        notes=[e for e in content if e.kind == ElementKind.NOTE],
        parties=list(dossier.parties),
        agents=list(dossier.agents),
        objects=[LinkedObject(ref, objects.describe(ref, found.get(ref)), origins[(ref.kind, ref.id)]) for ref in refs],
    )

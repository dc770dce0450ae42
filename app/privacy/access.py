"""The right of access (RGPD art. 15): everything Guichet holds about one party, as plain data.

``collect(party_id)`` gathers it section by section, each with a French title, as JSON-able
values (ISO dates, amounts as strings, codes replaced by their French labels): the identity with
bank details and birth date (the export is for the data subject), phones, e-mails, the contracts
with their premises, meters, readings, invoices, payments, payment plans, dunning blocks and
relaunches, the contacts and dossiers it is linked to with their elements, contacts and process
instances (the answers of their completed steps, the messages they received), the mails sent to
it from its dossiers, the templates naming it, the audit entries about all of these, and who
opened its 360° view.

What is linked to the party is exported according to its role there, so that the export never
hands over another person's data: a contact or a dossier where the party is only named as third
party (a social-services office, a neighbour on someone else's contact) is one line (reference,
date, type, role) without its content; in its own contacts and dossiers the other parties appear
by role, not by name; a contract's bills, payments, payment plans and dunning go only to who
holds or pays it (its meters and readings also to its occupant), a landlord (owner) getting the
contract's number and the premises' address; the mails are those of its own dossiers sent to one
of its addresses; the audit entries those about it and about the records exported in full.

It reads without a territory filter: the caller (app.privacy.views) has already checked that the
agent may handle privacy requests and that the party lies in its territories; what is linked to
the party is the party's data wherever it sits. ``SOURCES`` names, for each table holding a
foreign key to ``party.id``, the section that exports it; a test walks the metadata and fails when
a new such table is neither there nor deliberately left out.
"""
from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select

from app import clock
from app.audit.models import AuditEntry
from app.contacts import objects as business_objects
from app.contacts.models import Contact, ContactParty, ContactType, PartyLinkRole, TemplateItem
from app.contracts.models import (
    Contract,
    ContractParty,
    ContractRole,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
)
from app.db import session
from app.dossiers.models import Dossier, DossierContact, DossierElement, DossierParty, DossierType
from app.dunning.models import DunningBlock, DunningRunItem, PaymentPlan
from app.labels import LABELS
from app.mails.models import OutgoingMail
from app.parties.models import Party
from app.processes.models import ProcessInstance, ProcessMessage, ProcessTask, TaskStatus
from app.security.models import Agent, Territory

log = logging.getLogger(__name__)

FORMAT = "guichet-rgpd-acces/1"

# The roles on a contact or a dossier that make it the party's own record, exported in full. A party
# only named as third party (a social-services office, a neighbour) on another person's contact or
# dossier gets one line: that the record exists and names it, not its content.
OWN_LINK_ROLES = frozenset(PartyLinkRole.ALL) - {PartyLinkRole.THIRD_PARTY}
# The roles on a contract that hold or pay it: its bills, payments, payment plans and dunning are theirs.
LIABLE_ROLES = (ContractRole.HOLDER, ContractRole.CO_HOLDER, ContractRole.PAYER)
# The roles supplied at the contract's premises: its meters and readings are their consumption. An
# occupant is not told the payer's debt (app.contracts.service.overdue_of_party); an owner (the
# landlord) gets the contract's number and the premises' address only.
SUPPLIED_ROLES = (*LIABLE_ROLES, ContractRole.OCCUPANT)

THIRD_PARTY_CONTACT = ("Contact figurant au dossier d'une autre personne, où vous êtes cité comme tiers : "
                       "son contenu concerne cette personne et n'est pas repris ici.")
THIRD_PARTY_DOSSIER = ("Dossier d'une autre personne, où vous êtes cité comme tiers : "
                       "son contenu concerne cette personne et n'est pas repris ici.")
OWNER_SCOPE = ("Contrat portant sur des locaux dont vous êtes propriétaire : ses factures, paiements, relèves "
               "et relances concernent son titulaire et ne sont pas repris ici.")
OCCUPANT_SCOPE = ("Les factures, paiements, échéanciers et relances de ce contrat concernent son titulaire et son "
                  "payeur : ils ne sont pas repris ici.")

# Each table holding a foreign key to party.id → the section of the export that shows its rows.
SOURCES: dict[str, str] = {
    "party": "identity",
    "party_phone": "phones",
    "party_email": "emails",
    "contract_party": "contracts",
    "contact_party": "contacts",
    "dossier_party": "dossiers",
    "template_item": "templates",
    "party_consultation": "consultations",
}

TITLES: dict[str, str] = {
    "identity": "Identité",
    "phones": "Téléphones",
    "emails": "Adresses électroniques",
    "contracts": "Contrats",
    "contacts": "Contacts",
    "dossiers": "Dossiers",
    "mails": "Courriels envoyés",
    "templates": "Modèles de contact et de dossier qui vous désignent",
    "audit": "Journal des modifications et des accès",
    "consultations": "Consultations de votre fiche",
}

# The French name of every field the export writes (the HTML page's headers; JSON keeps the keys).
FIELD_LABELS: dict[str, str] = {
    "id": "Identifiant interne", "number": "Numéro", "external_ref": "Référence dans le système de facturation",
    "kind": "Type", "civility": "Civilité", "first_name": "Prénom", "last_name": "Nom",
    "company_name": "Raison sociale", "birth_date": "Date de naissance", "status": "Statut",
    "vulnerable": "Client fragile", "iban": "IBAN", "bic": "BIC", "anonymised_at": "Anonymisé le",
    "street": "Voie", "address_extra": "Complément d'adresse", "postal_code": "Code postal", "city": "Commune",
    "insee_code": "Code INSEE", "territory": "Territoire", "created_at": "Créé le", "updated_at": "Modifié le",
    "display": "Affichage", "label": "Libellé", "position": "Ordre", "address": "Adresse",
    "roles": "Vos rôles", "start_date": "Début", "end_date": "Fin", "offer": "Offre",
    "service_point": "Point de desserte", "national_id": "PDL / PCE / n° de branchement",
    "main_residence": "Résidence principale", "meters": "Compteurs", "serial": "Numéro de série",
    "installed_on": "Posé le", "removed_on": "Déposé le", "readings": "Relèves", "read_on": "Date de relève",
    "meter": "Compteur", "index_value": "Index", "invoices": "Factures", "issued_on": "Émise le",
    "due_on": "Date d'exigibilité", "amount": "Montant", "amount_paid": "Montant payé", "balance": "Reste dû",
    "payments": "Paiements", "paid_on": "Payé le", "method": "Moyen de paiement",
    "payment_plans": "Échéanciers", "starts_on": "Début", "ends_on": "Fin", "instalments": "Échéances",
    "cancelled_at": "Annulé le", "dossier": "Dossier", "dunning_blocks": "Blocages de relance",
    "until": "Jusqu'au", "reason": "Motif", "lifted_at": "Levé le", "created_by": "Par",
    "dunning": "Relances", "done_at": "Le", "outcome": "Résultat", "detail": "Détail",
    "occurred_at": "Date", "contact_type": "Type de contact", "channel": "Canal", "direction": "Sens",
    "subject": "Objet", "notes": "Notes", "duration_minutes": "Durée (minutes)", "parties": "Interlocuteurs",
    "agents": "Agents", "objects": "Objets métier", "dossiers": "Dossiers", "processes": "Plans d'action",
    "reference": "Référence", "classification": "Classification", "origin": "Origine", "due_at": "Échéance",
    "closed_at": "Clos le", "close_reason": "Motif de clôture", "elements": "Éléments", "title": "Titre",
    "body": "Texte", "files": "Fichiers", "contacts": "Contacts", "process": "Processus", "version": "Version",
    "started_at": "Démarré le", "ended_at": "Terminé le", "started_by": "Démarré par",
    "cancel_reason": "Motif d'annulation", "tasks": "Étapes", "name": "Nom", "completed_at": "Faite le",
    "completed_by": "Faite par", "answers": "Réponses", "question": "Question", "answer": "Réponse",
    "draft": "Brouillon", "messages": "Messages reçus", "received_at": "Reçu le", "delivered_at": "Pris en compte le",
    "source": "Source", "payload": "Contenu", "recipient": "Destinataire", "sent_at": "Envoyé le",
    "attachment": "Pièce jointe", "sent_to_your_address": "Envoyé à l'une de vos adresses",
    "owner": "Modèle", "link_role": "Rôle", "at": "Date", "action": "Action", "object": "Objet",
    "actor": "Auteur", "changes": "Détail", "agent": "Agent", "consulted_at": "Consulté le",
    "scope": "Étendue",
}

_YES, _NO = "Oui", "Non"


# --- Values -----------------------------------------------------------------------------------

def value(v: Any) -> Any:
    """A value as JSON holds it: ISO dates, amounts as strings, yes/no in words."""
    if v is None or isinstance(v, (int, float, str)) and not isinstance(v, bool):
        return v
    if isinstance(v, bool):
        return _YES if v else _NO
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [value(x) for x in v]
    return str(v)


def _label(code: str | None, kind: str) -> str | None:
    """The French label of a stored code (the code itself when it has none)."""
    if code is None:
        return None
    return str(LABELS[kind].get(code, code))


def _raw(v: Any) -> Any:
    """Like value(), but booleans kept as booleans (data answered in a form, a changed flag)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, dict):
        return {str(k): _raw(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_raw(x) for x in v]
    return value(v)


class _Agents:
    """Agent names, read once per export."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def load(self, ids: Iterable[int | None]) -> None:
        missing = {i for i in ids if i is not None and i not in self._names}
        if missing:
            for agent_id, name in session.execute(select(Agent.id, Agent.full_name).where(Agent.id.in_(missing))):
                self._names[agent_id] = name

    def name(self, agent_id: int | None) -> str | None:
        if agent_id is None:
            return None
        self.load([agent_id])
        return self._names.get(agent_id, f"agent n° {agent_id}")


# --- Sections ---------------------------------------------------------------------------------

def _identity(party: Party) -> dict:
    skipped = {"version", "territory_id"}
    found = {column.key: value(getattr(party, column.key)) for column in Party.__table__.columns
             if column.key not in skipped}
    found["kind"] = _label(party.kind, "party_kind")
    found["status"] = _label(party.status, "party_status")
    territory = session.get(Territory, party.territory_id) if party.territory_id else None
    found["territory"] = territory.name if territory else None
    return found


def _phones(party: Party) -> list[dict]:
    return [{"number": p.number, "display": p.display, "label": _label(p.label, "phone_label"),
             "position": p.position} for p in party.phones]


def _emails(party: Party) -> list[dict]:
    return [{"address": e.address, "position": e.position} for e in party.emails]


def _contracts(party_id: int, agents: _Agents) -> tuple[list[dict], dict[str, list[str]]]:
    """The contracts the party holds a role on; and the ids of the audited rows met (payment plans,
    dunning blocks) by table. What hangs from a contract is exported by role: its bills, payments,
    payment plans and dunning to who holds or pays it, its meters and readings (the consumption of
    the premises) to them and to its occupant, and to a landlord (owner) only the contract's number
    and the premises' address: the rest is the tenant's data."""
    roles: dict[int, list[str]] = defaultdict(list)
    for contract_id, role in session.execute(select(ContractParty.contract_id, ContractParty.role)
                                             .where(ContractParty.party_id == party_id)
                                             .order_by(ContractParty.contract_id, ContractParty.role)):
        roles[contract_id].append(role)
    audited: dict[str, list[str]] = defaultdict(list)
    if not roles:
        return [], audited
    contracts = session.execute(select(Contract).where(Contract.id.in_(roles)).order_by(Contract.start_date,
                                                                                       Contract.id)).scalars()
    found = []
    for contract in contracts:
        point = contract.service_point
        labels = [_label(role, "contract_role") for role in roles[contract.id]]
        liable = any(role in LIABLE_ROLES for role in roles[contract.id])
        supplied = liable or any(role in SUPPLIED_ROLES for role in roles[contract.id])
        if not supplied:
            found.append({
                "id": contract.id, "number": contract.number, "roles": labels,
                "service_point": {"street": point.street, "address_extra": point.address_extra,
                                  "postal_code": point.postal_code, "city": point.city},
                "scope": OWNER_SCOPE,
            })
            continue
        record = {
            "id": contract.id, "number": contract.number, "external_ref": contract.external_ref,
            "roles": labels, "status": _label(contract.status, "contract_status"),
            "start_date": value(contract.start_date), "end_date": value(contract.end_date), "offer": contract.offer,
            "service_point": {
                "kind": _label(point.kind, "service_point_kind"), "national_id": point.national_id,
                "external_ref": point.external_ref, "street": point.street, "address_extra": point.address_extra,
                "postal_code": point.postal_code, "city": point.city, "insee_code": point.insee_code,
                "main_residence": value(point.main_residence),
            },
            **_premises(contract),
        }
        if liable:
            record.update(_billing(contract, agents, audited))
        else:
            record["scope"] = OCCUPANT_SCOPE
        found.append(record)
    return found, audited


def _premises(contract: Contract) -> dict:
    """The meters and readings of the contract's premises during the contract: readings and meters
    stay with the premises, only those of the contract's period are the party's."""
    point, start, end = contract.service_point, contract.start_date, contract.end_date
    installations = session.execute(
        select(MeterInstallation).join(Meter, Meter.id == MeterInstallation.meter_id)
        .where(MeterInstallation.service_point_id == point.id,
               or_(MeterInstallation.removed_on.is_(None), MeterInstallation.removed_on >= start),
               *([MeterInstallation.installed_on <= end] if end else []))
        .order_by(MeterInstallation.installed_on)).scalars().all()
    readings = session.execute(
        select(MeterReading, Meter.serial).join(Meter, Meter.id == MeterReading.meter_id)
        .where(MeterReading.service_point_id == point.id, MeterReading.read_on >= start,
               *([MeterReading.read_on <= end] if end else []))
        .order_by(MeterReading.read_on, MeterReading.id)).all()
    return {
        "meters": [{"serial": i.meter.serial, "kind": _label(i.meter.kind, "service_point_kind"),
                    "installed_on": value(i.installed_on), "removed_on": value(i.removed_on)}
                   for i in installations],
        "readings": [{"read_on": value(r.read_on), "meter": serial, "index_value": r.index_value,
                      "kind": _label(r.kind, "reading_kind"), "external_ref": r.external_ref}
                     for r, serial in readings],
    }


def _billing(contract: Contract, agents: _Agents, audited: dict[str, list[str]]) -> dict:
    """The contract's invoices with their payments, its payment plans, dunning blocks and relaunches
    (for who holds or pays it); the audited rows met are added to audited."""
    invoices = session.execute(select(Invoice).where(Invoice.contract_id == contract.id)
                               .order_by(Invoice.issued_on, Invoice.id)).scalars().all()
    payments: dict[int, list[Payment]] = defaultdict(list)
    if invoices:
        for payment in session.execute(select(Payment).where(Payment.invoice_id.in_([i.id for i in invoices]))
                                       .order_by(Payment.paid_on, Payment.id)).scalars():
            payments[payment.invoice_id].append(payment)
    plans = session.execute(select(PaymentPlan).where(PaymentPlan.contract_id == contract.id)
                            .order_by(PaymentPlan.starts_on, PaymentPlan.id)).scalars().all()
    blocks = session.execute(select(DunningBlock).where(DunningBlock.contract_id == contract.id)
                             .order_by(DunningBlock.created_at, DunningBlock.id)).scalars().all()
    relaunches = session.execute(
        select(DunningRunItem, Dossier.reference).outerjoin(Dossier, Dossier.id == DunningRunItem.dossier_id)
        .where(DunningRunItem.contract_id == contract.id).order_by(DunningRunItem.done_at)).all()
    audited["payment_plan"] += [str(p.id) for p in plans]
    audited["dunning_block"] += [str(b.id) for b in blocks]
    dossier_refs = _references({p.dossier_id for p in plans})
    agents.load(b.created_by_id for b in blocks)
    return {
        "invoices": [{
            "number": i.number, "external_ref": i.external_ref, "issued_on": value(i.issued_on),
            "due_on": value(i.due_on), "amount": value(i.amount), "amount_paid": value(i.amount_paid),
            "balance": value(i.balance), "status": _label(i.status, "invoice_status"),
            "payments": [{"paid_on": value(p.paid_on), "amount": value(p.amount),
                          "method": _label(p.method, "payment_method"), "external_ref": p.external_ref}
                         for p in payments[i.id]],
        } for i in invoices],
        "payment_plans": [{"starts_on": value(p.starts_on), "ends_on": value(p.ends_on),
                           "instalments": p.instalments, "dossier": dossier_refs.get(p.dossier_id),
                           "created_at": value(p.created_at), "cancelled_at": value(p.cancelled_at)}
                          for p in plans],
        "dunning_blocks": [{"until": value(b.until), "reason": b.reason, "created_by": agents.name(b.created_by_id),
                            "created_at": value(b.created_at), "lifted_at": value(b.lifted_at)} for b in blocks],
        "dunning": [{"done_at": value(item.done_at), "outcome": _label(item.outcome, "dunning_outcome"),
                     "dossier": reference, "detail": item.detail} for item, reference in relaunches],
    }


def _references(dossier_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in dossier_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Dossier.id, Dossier.reference).where(Dossier.id.in_(ids))).all())


def _own_roles(owner, party_id: int) -> list[str]:
    """The party's role codes on a contact or a dossier."""
    return [link.role for link in owner.parties if link.party_id == party_id]


def _in_full(roles: Iterable[str]) -> bool:
    """Whether a contact or a dossier is the party's own record: linked in a role other than third party."""
    return any(role in OWN_LINK_ROLES for role in roles)


def _links(owner, party_id: int, agents: _Agents) -> dict:
    """A contact's or a dossier's links as labels: the party's own roles, the others by role only
    (their names are not the party's data), the agents, the objects."""
    refs = [business_objects.Ref(o.object_type, o.object_id) for o in owner.objects
            if o.object_type in business_objects.KINDS]
    loaded = {}
    for ref in refs:
        spec = business_objects.KINDS[ref.kind]
        loaded[ref] = session.get(spec.model, ref.id, options=list(spec.options) or None)
    return {
        "roles": [_label(link.role, "party_link_role") for link in owner.parties if link.party_id == party_id],
        "parties": [f"Autre interlocuteur ({str(_label(link.role, 'party_link_role')).lower()})"
                    for link in owner.parties if link.party_id != party_id],
        "agents": [f"{_label(link.role, 'agent_link_role')} : {agents.name(link.agent_id)}" for link in owner.agents],
        "objects": [f"{_label(ref.kind, 'object_kind')} : {business_objects.describe(ref, loaded[ref])}"
                    for ref in refs],
    }


def _processes(instances: list[ProcessInstance], agents: _Agents) -> list[dict]:
    from app.processes import service as processes

    found = []
    for instance in instances:
        tasks = session.execute(select(ProcessTask).where(ProcessTask.instance_id == instance.id)
                                .order_by(ProcessTask.created_at, ProcessTask.id)).scalars().all()
        answers: dict[int, list[dict]] = {}
        try:
            for task, shown in processes.progress(instance).answers:
                answers[task.id] = [{"question": str(question), "answer": _raw(answer)} for question, answer in shown]
        except Exception:  # a definition that no longer loads: the steps are listed without their answers
            log.exception("privacy export: answers of process instance %s unreadable", instance.id)
        messages = session.execute(select(ProcessMessage).where(ProcessMessage.instance_id == instance.id)
                                   .order_by(ProcessMessage.received_at, ProcessMessage.id)).scalars().all()
        agents.load([instance.started_by_id, *(t.completed_by_id for t in tasks)])
        found.append({
            "id": instance.id, "process": instance.definition.name, "version": instance.definition.version,
            "status": _label(instance.status, "process_status"), "started_at": value(instance.started_at),
            "started_by": agents.name(instance.started_by_id), "ended_at": value(instance.ended_at),
            "cancel_reason": instance.cancel_reason,
            "tasks": [{
                "name": t.name, "status": _label(t.status, "task_status"), "created_at": value(t.created_at),
                "completed_at": value(t.completed_at), "completed_by": agents.name(t.completed_by_id),
                "answers": answers.get(t.id, []),
                **({"draft": _raw(t.draft)} if t.draft and t.status != TaskStatus.COMPLETED else {}),
            } for t in tasks],
            "messages": [{"name": m.name, "received_at": value(m.received_at), "delivered_at": value(m.delivered_at),
                          "source": m.source, "payload": _raw(m.payload)} for m in messages],
        })
    return found


def _instances_by(column, ids: list[int]) -> dict[int, list[ProcessInstance]]:
    found: dict[int, list[ProcessInstance]] = defaultdict(list)
    if ids:
        for instance in session.execute(select(ProcessInstance).where(column.in_(ids))
                                        .order_by(ProcessInstance.started_at, ProcessInstance.id)).scalars():
            found[getattr(instance, column.key)].append(instance)
    return found


def _contacts(party_id: int, agents: _Agents) -> tuple[list[dict], list[int], list[int]]:
    """The contacts linked to the party: in full where it is the customer (or holds any role other
    than third party), as one line where it is only named as third party on another person's contact;
    the ids of those exported in full and of their process instances."""
    contacts = session.execute(
        select(Contact).where(Contact.id.in_(select(ContactParty.contact_id).where(ContactParty.party_id == party_id)))
        .order_by(Contact.occurred_at, Contact.id)).scalars().all()
    own = [c for c in contacts if _in_full(_own_roles(c, party_id))]
    ids = [c.id for c in own]
    full = set(ids)
    agents.load([c.created_by_id for c in own] + [link.agent_id for c in own for link in c.agents])
    in_dossiers: dict[int, list[str]] = defaultdict(list)
    if ids:
        for contact_id, reference in session.execute(
                select(DossierContact.contact_id, Dossier.reference)
                .join(Dossier, Dossier.id == DossierContact.dossier_id)
                .where(DossierContact.contact_id.in_(ids)).order_by(Dossier.reference)):
            in_dossiers[contact_id].append(reference)
    instances = _instances_by(ProcessInstance.contact_id, ids)
    found = []
    for contact in contacts:
        if contact.id not in full:
            found.append({
                "id": contact.id, "occurred_at": value(contact.occurred_at),
                "contact_type": contact.contact_type.label,
                "roles": [_label(role, "party_link_role") for role in _own_roles(contact, party_id)],
                "scope": THIRD_PARTY_CONTACT,
            })
            continue
        found.append({
            "id": contact.id, "occurred_at": value(contact.occurred_at), "created_at": value(contact.created_at),
            "contact_type": contact.contact_type.label, "channel": _label(contact.channel, "channel"),
            "direction": _label(contact.direction, "direction"), "subject": contact.subject, "notes": contact.notes,
            "duration_minutes": contact.duration_minutes, "created_by": agents.name(contact.created_by_id),
            **_links(contact, party_id, agents),
            "dossiers": in_dossiers[contact.id],
            "processes": _processes(instances[contact.id], agents),
        })
    return found, ids, [i.id for group in instances.values() for i in group]


def _dossiers(party_id: int, agents: _Agents) -> tuple[list[dict], list[int], list[int], list[int]]:
    """The dossiers linked to the party: in full where it is the customer (or holds any role other
    than third party), as one line where it is only named as third party on another person's dossier;
    the ids of those exported in full, of their elements and of their process instances."""
    dossiers = session.execute(
        select(Dossier).where(Dossier.id.in_(select(DossierParty.dossier_id).where(DossierParty.party_id == party_id)))
        .order_by(Dossier.created_at, Dossier.id)).scalars().all()
    own = [d for d in dossiers if _in_full(_own_roles(d, party_id))]
    ids = [d.id for d in own]
    full = set(ids)
    elements: dict[int, list[DossierElement]] = defaultdict(list)
    contacts: dict[int, list[DossierContact]] = defaultdict(list)
    if ids:
        for element in session.execute(select(DossierElement).where(DossierElement.dossier_id.in_(ids))
                                       .order_by(DossierElement.created_at, DossierElement.id)).scalars():
            elements[element.dossier_id].append(element)
        for link in session.execute(select(DossierContact).where(DossierContact.dossier_id.in_(ids))
                                    .order_by(DossierContact.added_at)).scalars():
            contacts[link.dossier_id].append(link)
    agents.load([d.created_by_id for d in own] + [link.agent_id for d in own for link in d.agents]
                + [e.created_by_id for group in elements.values() for e in group])
    instances = _instances_by(ProcessInstance.dossier_id, ids)
    found = []
    for dossier in dossiers:
        if dossier.id not in full:
            found.append({
                "id": dossier.id, "reference": dossier.reference, "created_at": value(dossier.created_at),
                "classification": dossier.dossier_type.label,
                "roles": [_label(role, "party_link_role") for role in _own_roles(dossier, party_id)],
                "scope": THIRD_PARTY_DOSSIER,
            })
            continue
        found.append({
            "id": dossier.id, "reference": dossier.reference, "classification": dossier.dossier_type.label,
            "status": _label(dossier.status, "dossier_status"), "origin": _label(dossier.origin, "dossier_origin"),
            "subject": dossier.subject, "created_at": value(dossier.created_at),
            "created_by": agents.name(dossier.created_by_id), "due_at": value(dossier.due_at),
            "closed_at": value(dossier.closed_at), "close_reason": dossier.close_reason,
            "external_ref": dossier.external_ref,
            **_links(dossier, party_id, agents),
            "elements": [{
                "kind": {"note": "Note", "letter": "Courrier", "mail": "Courriel"}.get(e.kind, e.kind),
                "title": e.title, "body": e.body, "created_at": value(e.created_at),
                "created_by": agents.name(e.created_by_id),
                "files": [f.filename for f in (e.file, e.pdf_file) if f is not None],
            } for e in elements[dossier.id]],
            "contacts": [{"id": link.contact.id, "occurred_at": value(link.contact.occurred_at),
                          "contact_type": link.contact.contact_type.label,
                          "channel": _label(link.contact.channel, "channel"), "subject": link.contact.subject}
                         for link in contacts[dossier.id]],
            "processes": _processes(instances[dossier.id], agents),
        })
    element_ids = [e.id for group in elements.values() for e in group]
    return found, ids, element_ids, [i.id for group in instances.values() for i in group]


def _mails(dossier_ids: list[int], addresses: set[str], agents: _Agents) -> tuple[list[dict], list[int]]:
    """The mails of the party's own dossiers (the outbox) sent to one of its addresses: a mail to
    another person of the same dossier is that person's."""
    if not dossier_ids or not addresses:
        return [], []
    mails = [m for m in session.execute(select(OutgoingMail).where(OutgoingMail.dossier_id.in_(dossier_ids))
                                        .order_by(OutgoingMail.created_at, OutgoingMail.id)).scalars()
             if m.recipient.strip().lower() in addresses]
    references = _references({m.dossier_id for m in mails})
    agents.load(m.created_by_id for m in mails)
    found = []
    for mail in mails:
        attachment = mail.attachment
        found.append({
            "id": mail.id, "dossier": references.get(mail.dossier_id), "recipient": mail.recipient,
            "sent_to_your_address": value(True),
            "subject": mail.subject, "body": mail.body,
            "status": {"queued": "En attente", "sending": "En cours d'envoi", "sent": "Envoyé",
                       "failed": "Échec"}.get(mail.status, mail.status),
            "created_at": value(mail.created_at), "created_by": agents.name(mail.created_by_id),
            "sent_at": value(mail.sent_at),
            "attachment": None if attachment is None else ", ".join(
                [attachment.title, *(f.filename for f in (attachment.file, attachment.pdf_file) if f is not None)]),
        })
    return found, [m.id for m in mails]


def _templates(party_id: int) -> list[dict]:
    """Contact types and dossier classifications whose template names the party (a third party
    such as a social-services office, linked to every contact of that type)."""
    items = session.execute(select(TemplateItem).where(TemplateItem.fixed_party_id == party_id)
                            .order_by(TemplateItem.id)).scalars().all()
    found = []
    for item in items:
        if item.contact_type_id is not None:
            owner = session.get(ContactType, item.contact_type_id)
            owner_label = f"Type de contact : {owner.label}" if owner else None
        else:
            owner = session.get(DossierType, item.dossier_type_id)
            owner_label = f"Classification de dossier : {owner.label}" if owner else None
        found.append({"owner": owner_label, "source": _label(item.source, "template_source"),
                      "link_role": _label(item.link_role, "party_link_role")})
    return found


AUDIT_OBJECTS = {
    "party": "Fiche", "contact": "Contact", "dossier": "Dossier", "dossier_element": "Élément de dossier",
    "process_instance": "Plan d'action", "outgoing_mail": "Courriel", "payment_plan": "Échéancier",
    "dunning_block": "Blocage de relance",
}
AUDIT_ACTIONS = {
    "create": "Création", "update": "Modification", "delete": "Suppression", "link": "Lien",
    "move_contact": "Contact déplacé", "privacy_export": "Export des données personnelles",
}


# Entries written on a dossier about one of its mails ({"mail": id, "subject", "to"}): shown only
# with the mail itself, a mail to another person of the dossier being that person's.
MAIL_ACTIONS = frozenset({"queue_mail", "mail_sent"})


def _audit(objects: dict[str, list[str]], mail_ids: Iterable[int], agents: _Agents) -> list[dict]:
    """The audit entries about the party and about the audited rows exported in full."""
    clauses = [and_(AuditEntry.object_type == kind, AuditEntry.object_id.in_(ids))
               for kind, ids in objects.items() if ids]
    mails = set(mail_ids)
    entries = [e for e in session.execute(select(AuditEntry).where(or_(*clauses))
                                          .order_by(AuditEntry.created_at, AuditEntry.id)).scalars()
               if e.action not in MAIL_ACTIONS or (isinstance(e.changes, dict) and e.changes.get("mail") in mails)]
    agents.load(e.actor_id for e in entries)
    return [{
        "at": value(e.created_at), "action": AUDIT_ACTIONS.get(e.action, e.action),
        "object": f"{AUDIT_OBJECTS.get(e.object_type, e.object_type)} n° {e.object_id}",
        "actor": agents.name(e.actor_id) if e.actor_id is not None else e.actor_label,
        "changes": _raw(e.changes),
    } for e in entries]


def _consultations(party_id: int) -> list[dict]:
    """Who opened the party's 360° view, newest first."""
    from app.parties.consultations import consultations_of

    return [{"consulted_at": value(c.consulted_at), "agent": c.full_name} for c in consultations_of(party_id)]


# --- The export -------------------------------------------------------------------------------

def collect(party_id: int) -> dict:
    """Everything held about the party, by section: ``{"export": {...}, "sections": {key: {"title",
    "data"}}}``. Raises LookupError for a party that does not exist."""
    party = session.get(Party, party_id)
    if party is None:
        raise LookupError(party_id)
    agents = _Agents()
    contracts, audited = _contracts(party_id, agents)
    contacts, contact_ids, contact_instance_ids = _contacts(party_id, agents)
    dossiers, dossier_ids, element_ids, dossier_instance_ids = _dossiers(party_id, agents)
    addresses = {e.address.strip().lower() for e in party.emails}
    mails, mail_ids = _mails(dossier_ids, addresses, agents)
    audit_objects = {
        "party": [str(party_id)], "contact": [str(i) for i in contact_ids], "dossier": [str(i) for i in dossier_ids],
        "dossier_element": [str(i) for i in element_ids],
        "process_instance": [str(i) for i in contact_instance_ids + dossier_instance_ids],
        "outgoing_mail": [str(i) for i in mail_ids], **audited,
    }
    data = {
        "identity": _identity(party),
        "phones": _phones(party),
        "emails": _emails(party),
        "contracts": contracts,
        "contacts": contacts,
        "dossiers": dossiers,
        "mails": mails,
        "templates": _templates(party_id),
        "audit": _audit(audit_objects, mail_ids, agents),
        "consultations": _consultations(party_id),
    }
    return {
        "export": {"format": FORMAT, "generated_at": value(clock.now()), "party_id": party.id,
                   "party_number": party.number, "party_name": party.display_name},
        "sections": {key: {"title": TITLES[key], "data": section} for key, section in data.items()},
    }


def counts(export: dict) -> dict[str, int]:
    """Rows per section (the identity counts one)."""
    return {key: len(section["data"]) if isinstance(section["data"], list) else 1
            for key, section in export["sections"].items()}

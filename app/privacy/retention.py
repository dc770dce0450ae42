"""GDPR retention and erasure: anonymising prospects and former customers.

A party is never deleted: its row, its contacts and its dossiers stay for the statistics (how
many contacts of which type, in which territory, when), but every personal value they hold is
erased, wherever a copy of it lives:

- the party: names → ``MARKER``, civility, birth date, bank details, street and address
  complement erased, phones and e-mails deleted, ``vulnerable`` false, ``anonymised_at`` set. The
  postal code, city, INSEE code and territory stay (statistics); so do ``number`` (our own
  sequence) and ``external_ref``: the billing system's account id is a pseudonymous key it still
  needs (it keeps invoices for its own legal period, and its imports must recognise the row
  instead of creating a duplicate of the person);
- its search-index row, rebuilt from the erased values (the name can no longer be found);
- its contacts: subject → the contact type's label, notes erased;
- its dossiers: subject → the classification's label; notes' titles and bodies, mails' copies and
  generated letters (their stored .docx and PDF files, deleted) erased; the affaire calls' copies
  of the subject too;
- the outbox mails of those dossiers: recipient, subject, body and last error erased (an unsent one
  is failed: it can no longer go out);
- the process instances of those contacts and dossiers: every value in their serialized data
  (form answers, variables, messages) replaced, their tasks' drafts dropped, messages' payloads
  scrubbed;
- the dunning blocks of its ended contracts: their free-text reason;
- the audit trail about all of these: values replaced by ``MARKER``, keys kept (who changed which
  field when stays known).

A contact or dossier shared with someone else is not the party's to erase: when it also links
another party, not anonymised, in a role other than ``third_party`` (a customer whose neighbour was
noted as third party, the co-holder of a joint contract), only the party's link row goes
(contact_party, dossier_party), and its own values are cut out of the record and of everything
hanging from it — subject, notes, note and mail copies, outbox mails, affaire calls, process data,
task drafts, messages, audit entries: each of its names (present and former, from its own audit
trail), e-mail addresses, phone numbers, IBAN, BIC, street, address complement and birth date is
replaced, as a whole word and whatever its case, by ``ERASED`` (« [personne effacée] »); the rest
of the text, written about the other person, stays theirs. A generated letter of such a dossier
whose .docx names the party (or that has no .docx to check) loses its files. The other records
(the party the only one left, third parties aside) are erased whole, as above. A name or number
typed in another form (a phone with dots, a nickname) cannot be recognised: free text of a shared
record is cleaned of the exact values only.

All of it is written with table-level statements (which the audit hook does not see, so no new
entry copies the old values) in the caller's transaction, then one ``anonymise`` entry says why
and how much was erased — never what. A customer (or a party with a running contract), an open
dossier, an active process instance, an unpaid invoice or a contact/dossier template naming the party
refuses the erasure, with nothing written.

``candidates`` finds, set-based, the parties past their retention period
(PRIVACY_PROSPECT_RETENTION_DAYS, PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS); ``run`` anonymises
them, one transaction each (the nightly job, ``flask privacy retention``), then compacts the
search index (``compact_search_index``), once per run — never in a request.
"""
from __future__ import annotations

import html
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, delete, exists, func, not_, or_, select, text, update

from app import clock
from app.audit import service as audit
from app.audit.context import current as current_audit_context
from app.audit.context import set_actor
from app.audit.models import AuditEntry
from app.contacts.models import Contact, ContactParty, ContactType, PartyLinkRole, TemplateItem
from app.contracts.models import Contract, ContractParty, ContractStatus, Invoice, InvoiceStatus
from app.db import session
from app.documents.models import StoredFile
from app.dossiers.models import Dossier, DossierElement, DossierParty, DossierStatus, DossierType, ElementKind
from app.dunning.models import DunningBlock
from app.errors import BusinessError
from app.integration.models import AffaireSync
from app.mails.models import MailStatus, OutgoingMail
from app.parties.models import Party, PartyEmail, PartyKind, PartyPhone, PartyStatus
from app.processes.models import InstanceStatus, ProcessInstance, ProcessMessage, ProcessTask
from app.security.models import Agent

log = logging.getLogger(__name__)

MARKER = "Anonymisé"
ERASED = "[personne effacée]"  # in place of the party's values in a record shared with someone else
REASON_RETENTION = "durée de conservation dépassée"
REASON_REQUEST = "demande de la personne"
BATCH = 200
# The nightly job compacts the search index when it erased someone, or when someone was erased (on
# request) within these days: a few missed nights are caught up.
COMPACT_LOOKBACK_DAYS = 7

UNPAID = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)
# Audit actions whose data hold ids and codes only: left as they are.
VALUELESS_ACTIONS = frozenset({
    "link", "start", "complete_task", "claim_task", "release_task", "reassign_task", "retry", "timer", "migrate",
    "dunning_level", "create_from_contact", "affaire_created", "anonymise",
})
# Fields whose values describe the record, not the person: kept in the audit entries.
KEPT_AUDIT_KEYS = frozenset({
    "status", "kind", "territory_id", "channel", "direction", "contact_type_id", "dossier_type_id", "origin",
    "reference", "number", "created_by_id", "occurred_at", "created_at", "closed_at", "due_at", "duration_minutes",
    "definition_id", "dossier_id", "contact_id", "template_id", "pdf_pending", "attempts", "insee_code",
    "postal_code", "city", "anonymised_at", "exclusive_contract_id", "dunning_rank", "close_reason",
})
# The party's audit keys whose values (present and former) are the person's own: cut out of shared records.
PERSONAL_AUDIT_KEYS = frozenset({"last_name", "first_name", "company_name", "emails", "phones", "iban", "bic",
                                 "street", "address_extra", "birth_date"})
# The roles that make a contact or dossier someone's own; a third party (a neighbour, a relative) does not.
OWNER_ROLES = tuple(role for role in PartyLinkRole.ALL if role != PartyLinkRole.THIRD_PARTY)
# Keys of a serialized workflow whose content is the process's data (answers, variables, events).
STATE_DATA_KEYS = frozenset({"data", "internal_data", "delta", "bpmn_events", "correlations", "payload"})


# --- Finding them -----------------------------------------------------------------------------

def retention_days() -> tuple[int, int]:
    config = current_app.config
    return config["PRIVACY_PROSPECT_RETENTION_DAYS"], config["PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS"]


def _no_activity_since(cutoff: datetime):
    """No contact and no dossier of the party since cutoff, and no dossier still open."""
    recent_contact = exists(
        select(ContactParty.contact_id).join(Contact, Contact.id == ContactParty.contact_id)
        .where(ContactParty.party_id == Party.id, or_(Contact.occurred_at >= cutoff, Contact.created_at >= cutoff)))
    recent_dossier = exists(
        select(DossierParty.dossier_id).join(Dossier, Dossier.id == DossierParty.dossier_id)
        .where(DossierParty.party_id == Party.id,
               or_(Dossier.status != DossierStatus.CLOSED, Dossier.updated_at >= cutoff, Dossier.created_at >= cutoff,
                   Dossier.closed_at >= cutoff)))
    return and_(Party.updated_at < cutoff, Party.created_at < cutoff, not_(recent_contact), not_(recent_dossier))


def _active_instance():
    """A process instance still running on one of the party's contacts or dossiers."""
    on_dossier = exists(
        select(ProcessInstance.id).join(DossierParty, DossierParty.dossier_id == ProcessInstance.dossier_id)
        .where(DossierParty.party_id == Party.id, ProcessInstance.status.in_(InstanceStatus.ACTIVE)))
    on_contact = exists(
        select(ProcessInstance.id).join(ContactParty, ContactParty.contact_id == ProcessInstance.contact_id)
        .where(ContactParty.party_id == Party.id, ProcessInstance.status.in_(InstanceStatus.ACTIVE)))
    return or_(on_dossier, on_contact)


def _unpaid_invoice():
    return exists(select(Invoice.id).join(ContractParty, ContractParty.contract_id == Invoice.contract_id)
                  .where(ContractParty.party_id == Party.id, Invoice.status.in_(UNPAID)))


def candidates(now: datetime, limit: int | None = None, *, after_id: int = 0,
               among: list[int] | None = None) -> list[int]:
    """Ids of the parties past their retention period, in id order: prospects with no contract and
    no activity for PRIVACY_PROSPECT_RETENTION_DAYS, former customers whose contracts all ended
    PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS ago with no activity since; none anonymised already,
    none with an active process instance or an unpaid invoice. One statement, index-driven (party
    status, then NOT EXISTS on the link tables by party); among: only these ids (the job checks each
    batch again just before erasing it)."""
    return list(session.execute(_candidates_statement(now, limit, after_id=after_id, among=among)).scalars())


def _candidates_statement(now: datetime, limit: int | None, *, after_id: int = 0, among: list[int] | None = None):
    prospect_days, former_days = retention_days()
    prospect_cutoff = now - timedelta(days=prospect_days)
    former_cutoff = now - timedelta(days=former_days)
    any_contract = exists(select(ContractParty.party_id).where(ContractParty.party_id == Party.id))
    contract_not_ended = exists(
        select(ContractParty.party_id).join(Contract, Contract.id == ContractParty.contract_id)
        .where(ContractParty.party_id == Party.id,
               or_(Contract.status != ContractStatus.TERMINATED, Contract.end_date.is_(None),
                   Contract.end_date >= former_cutoff.date())))
    prospect = and_(Party.status == PartyStatus.PROSPECT, not_(any_contract), _no_activity_since(prospect_cutoff))
    former = and_(Party.status == PartyStatus.FORMER_CUSTOMER, not_(contract_not_ended),
                  _no_activity_since(former_cutoff))
    # A party a contact or dossier template names (a social-services office…) is a partner, not a person to forget.
    in_template = exists(select(TemplateItem.id).where(TemplateItem.fixed_party_id == Party.id))
    stmt = (select(Party.id)
            .where(Party.status.in_((PartyStatus.PROSPECT, PartyStatus.FORMER_CUSTOMER)),
                   Party.id > after_id, Party.anonymised_at.is_(None), or_(prospect, former),
                   not_(_active_instance()), not_(_unpaid_invoice()), not_(in_template))
            .order_by(Party.id))
    if among is not None:
        stmt = stmt.where(Party.id.in_(among))
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


# --- Refusals ---------------------------------------------------------------------------------

def refusal(party: Party) -> str | None:
    """Why this party's data cannot be erased now (in French), or None."""
    if party.anonymised_at is not None:
        return _("Les données de cet interlocuteur ont déjà été anonymisées.")
    running = session.execute(
        select(Contract.number).join(ContractParty, ContractParty.contract_id == Contract.id)
        .where(ContractParty.party_id == party.id, Contract.status != ContractStatus.TERMINATED)
        .order_by(Contract.number).limit(1)).scalar()
    if running:
        return _("Cet interlocuteur est client (contrat %(contract)s en cours) : ses données sont nécessaires "
                 "à l'exécution du contrat et ne peuvent pas être effacées.", contract=running)
    if party.status == PartyStatus.CUSTOMER:
        return _("Cet interlocuteur est client : ses données sont nécessaires à l'exécution de son contrat et ne "
                 "peuvent pas être effacées.")
    if session.execute(select(TemplateItem.id).where(TemplateItem.fixed_party_id == party.id).limit(1)).scalar():
        return _("Cet interlocuteur est désigné par un modèle de contact ou de dossier : retirez-le du modèle "
                 "avant d'effacer ses données.")
    open_dossier = session.execute(
        select(Dossier.reference).join(DossierParty, DossierParty.dossier_id == Dossier.id)
        .where(DossierParty.party_id == party.id, Dossier.status != DossierStatus.CLOSED)
        .order_by(Dossier.reference).limit(1)).scalar()
    if open_dossier:
        return _("Le dossier %(reference)s de cet interlocuteur n'est pas clos : clôturez-le avant d'effacer "
                 "ses données.", reference=open_dossier)
    active = session.execute(select(ProcessInstance.id).where(
        ProcessInstance.status.in_(InstanceStatus.ACTIVE),
        or_(ProcessInstance.dossier_id.in_(select(DossierParty.dossier_id).where(DossierParty.party_id == party.id)),
            ProcessInstance.contact_id.in_(select(ContactParty.contact_id).where(ContactParty.party_id == party.id))))
        .order_by(ProcessInstance.id).limit(1)).scalar()
    if active:
        return _("Le processus n° %(id)s de cet interlocuteur est encore en cours : terminez-le ou annulez-le "
                 "avant d'effacer ses données.", id=active)
    unpaid = session.execute(
        select(Invoice.number).join(ContractParty, ContractParty.contract_id == Invoice.contract_id)
        .where(ContractParty.party_id == party.id, Invoice.status.in_(UNPAID)).order_by(Invoice.number).limit(1)
    ).scalar()
    if unpaid:
        return _("La facture %(number)s de cet interlocuteur n'est pas soldée : ses données restent nécessaires "
                 "au recouvrement.", number=unpaid)
    return None


# --- Scrubbing values -------------------------------------------------------------------------

def _scrub(value: Any) -> Any:
    """Every text in value replaced by MARKER, keys kept; numbers, booleans and None kept."""
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return MARKER
    return value


def _scrub_changes(value: Any) -> Any:
    """An audit entry's changes: values replaced, keys kept, record-describing fields kept."""
    if isinstance(value, dict):
        return {key: item if key in KEPT_AUDIT_KEYS else _scrub_changes(item) for key, item in value.items()}
    return _scrub(value)


def _scrub_data(value: Any) -> Any:
    """Process data: texts replaced; the serializer's typed values kept readable (a date stays a date,
    a business-object reference keeps its kind and id)."""
    if isinstance(value, dict):
        typename = value.get("typename")
        if typename == "date":
            return {**value, "value": "1900-01-01"}
        if typename == "Decimal":
            return {**value, "value": "0"}
        if typename == "Ref":
            return value
        return {key: item if key == "typename" else _scrub_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_data(item) for item in value]
    if isinstance(value, str):
        return MARKER
    return value


def _scrub_state(value: Any, scrub: Callable[[Any], Any] = _scrub_data) -> Any:
    """A serialized workflow: the content of its data keys scrubbed, its structure (task tree, states,
    spec names) kept, so that the finished instance still reads."""
    if isinstance(value, dict):
        return {key: scrub(item) if key in STATE_DATA_KEYS else _scrub_state(item, scrub)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_state(item, scrub) for item in value]
    return value


def scrub_state_text(state: str) -> str:
    try:
        parsed = json.loads(state)
    except ValueError:
        return json.dumps({})
    return json.dumps(_scrub_state(parsed))


# --- The party's own values, in a record shared with someone else -------------------------------

def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _variants(key: str, value: str) -> list[str]:
    """A value as it may be typed in free text besides its stored form."""
    value = value.strip()
    if key == "phones":
        value = value.split(" (")[0]  # the audit label: "+33612345678 (mobile)"
        digits = value.replace(" ", "")
        national = "0" + digits[3:] if digits.startswith("+33") else digits
        return [value, digits, national, " ".join(national[i:i + 2] for i in range(0, len(national), 2))]
    if key == "iban":
        compact = value.replace(" ", "")
        return [value, compact, " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))]
    if key == "birth_date" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return [value, f"{value[8:10]}/{value[5:7]}/{value[:4]}"]
    return [value]


def own_values(party: Party) -> list[str]:
    """The party's own values, present and former (its audit trail keeps the names and numbers it
    had): names, e-mails, phones, IBAN, BIC, street, address complement, birth date; longest first."""
    found: list[tuple[str, str]] = [
        ("last_name", party.last_name or ""), ("first_name", party.first_name or ""),
        ("company_name", party.company_name or ""), ("iban", party.iban or ""), ("bic", party.bic or ""),
        ("street", party.street or ""), ("address_extra", party.address_extra or ""),
        ("birth_date", party.birth_date.isoformat() if party.birth_date else ""),
        *(("emails", email.address) for email in party.emails),
        *(("phones", phone.number) for phone in party.phones),
    ]
    a = _table(AuditEntry)
    for changes in session.execute(select(a.c.changes).where(
            a.c.object_type == "party", a.c.object_id == str(party.id), a.c.changes.is_not(None))).scalars():
        if isinstance(changes, dict):
            found += [(key, text) for key in PERSONAL_AUDIT_KEYS & changes.keys() for text in _strings(changes[key])]
    values = {variant for key, value in found if value for variant in _variants(key, value)}
    names = {party.first_name or "", party.last_name or ""}
    for first in names:  # the full name in either order, with the civility
        for last in names - {first}:
            values.update({f"{first} {last}", f"{party.civility or ''} {first} {last}".strip()})
    return sorted((v for v in values if len(v) >= 2 and any(ch.isalnum() for ch in v) and v != MARKER),
                  key=lambda v: (-len(v), v))


class _Redactor:
    """Cuts the party's own values out of texts: each, as a whole word, whatever its case, becomes
    ERASED; so do the "party id:role" labels of the party in the audit entries' link lists."""

    def __init__(self, party_id: int, values: list[str]) -> None:
        alternatives = "|".join(re.escape(value) for value in values)
        self.pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if values else None
        self.link_label = re.compile(rf"{party_id}:[a-z_]+")

    def found(self, text: str) -> bool:
        return bool(self.pattern and self.pattern.search(text))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            if self.link_label.fullmatch(value):
                return ERASED
            return self.pattern.sub(ERASED, value) if self.pattern else value
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value


def _fit(table, column: str, value: Any) -> Any:
    length = getattr(table.c[column].type, "length", None)
    return value[:length] if isinstance(value, str) and length else value


def _rewrite(table, ids: list[int], columns: tuple[str, ...], redact: _Redactor, **also) -> list[int]:
    """Redact these columns of these rows, row by row, writing only the rows that change (with also,
    each a value or a function of the row); the ids written."""
    written = []
    for start in range(0, len(ids), 500):
        rows = session.execute(select(table.c.id, *(table.c[c] for c in columns))
                               .where(table.c.id.in_(ids[start:start + 500]))).all()
        for row in rows:
            values = {c: _fit(table, c, redact(getattr(row, c))) for c in columns}
            if all(values[c] == getattr(row, c) for c in columns):
                continue
            values.update({key: item(row) if callable(item) else item for key, item in also.items()})
            session.execute(update(table).where(table.c.id == row.id).values(**values))
            written.append(row.id)
    return written


def _letter_names(file_id: int | None, redact: _Redactor) -> bool:
    """Whether a generated letter's .docx names the party (with no .docx to read: assumed so)."""
    if file_id is None:
        return True
    content = session.execute(select(_table(StoredFile).c.content).where(_table(StoredFile).c.id == file_id)).scalar()
    if content is None:
        return True
    content = bytes(content)
    texts = []
    if content[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                for name in archive.namelist():
                    xml = html.unescape(archive.read(name).decode("utf-8", "replace"))
                    texts += [xml, re.sub(r"<[^>]+>", "", xml)]  # a value split over runs is found too
        except zipfile.BadZipFile:
            return True
    else:
        texts.append(content.decode("utf-8", "replace"))
    return any(redact.found(text) for text in texts)


def _shared(link, owner_column, party_id: int, owner_ids: list[int]) -> set[int]:
    """Those of owner_ids (contacts or dossiers) that also link another party, not anonymised, in
    an owner's role: someone else's records, which the party only leaves."""
    found: set[int] = set()
    for start in range(0, len(owner_ids), 500):
        found.update(session.execute(
            select(owner_column).join(Party, Party.id == link.party_id)
            .where(owner_column.in_(owner_ids[start:start + 500]), link.party_id != party_id,
                   link.role.in_(OWNER_ROLES), Party.anonymised_at.is_(None))).scalars())
    return found


def _leave_shared(party_id: int, contact_ids: list[int], dossier_ids: list[int], redact: _Redactor) -> int:
    """Take the party out of these contacts and dossiers, someone else's: its link rows deleted, its
    own values cut out of everything they hold; the count of files deleted (letters naming it)."""
    if contact_ids:
        session.execute(delete(_table(ContactParty)).where(
            _table(ContactParty).c.party_id == party_id, _table(ContactParty).c.contact_id.in_(contact_ids)))
    if dossier_ids:
        session.execute(delete(_table(DossierParty)).where(
            _table(DossierParty).c.party_id == party_id, _table(DossierParty).c.dossier_id.in_(dossier_ids)))
    _rewrite(_table(Contact), contact_ids, ("subject", "notes"), redact)
    d = _table(Dossier)
    _rewrite(d, dossier_ids, ("subject",), redact, version=d.c.version + 1)

    e = _table(DossierElement)
    element_rows = session.execute(select(e.c.id, e.c.kind, e.c.file_id, e.c.pdf_file_id)
                                   .where(e.c.dossier_id.in_(dossier_ids))).all() if dossier_ids else []
    element_ids = [row.id for row in element_rows]
    _rewrite(e, element_ids, ("title", "body"), redact)
    file_ids: set[int] = set()
    for row in element_rows:
        if (row.file_id or row.pdf_file_id) and _letter_names(row.file_id, redact):
            session.execute(update(e).where(e.c.id == row.id).values(file_id=None, pdf_file_id=None,
                                                                     pdf_pending=False))
            file_ids.update(f for f in (row.file_id, row.pdf_file_id) if f is not None)
    files = session.execute(delete(_table(StoredFile)).where(
        _table(StoredFile).c.id.in_(sorted(file_ids)))).rowcount if file_ids else 0

    m = _table(OutgoingMail)
    mail_ids = _ids(select(m.c.id).where(m.c.dossier_id.in_(dossier_ids))) if dossier_ids else []
    for mail_id in _rewrite(m, mail_ids, ("recipient", "subject", "body", "last_error"), redact):
        # A mail not sent yet whose address or text was the party's can no longer go out.
        session.execute(update(m).where(m.c.id == mail_id, m.c.status.in_((MailStatus.QUEUED, MailStatus.SENDING)))
                        .values(status=MailStatus.FAILED, next_attempt_at=None, claimed_at=None))
    _rewrite(_table(AffaireSync), _ids(select(AffaireSync.id).where(AffaireSync.dossier_id.in_(dossier_ids))),
             ("payload", "last_error"), redact)

    i = _table(ProcessInstance)
    instance_ids = _ids(select(i.c.id).where(or_(i.c.dossier_id.in_(dossier_ids), i.c.contact_id.in_(contact_ids))))
    for row in session.execute(select(i.c.id, i.c.state, i.c.error_message, i.c.cancel_reason)
                               .where(i.c.id.in_(instance_ids))).all():
        try:
            state = json.dumps(_scrub_state(json.loads(row.state), redact))
        except (TypeError, ValueError):
            state = row.state
        values = {"state": state, "error_message": redact(row.error_message),
                  "cancel_reason": redact(row.cancel_reason)}
        if values != {"state": row.state, "error_message": row.error_message, "cancel_reason": row.cancel_reason}:
            session.execute(update(i).where(i.c.id == row.id).values(**values, revision=i.c.revision + 1))
    t = _table(ProcessTask)
    _rewrite(t, _ids(select(t.c.id).where(t.c.instance_id.in_(instance_ids))), ("draft",), redact)
    pm = _table(ProcessMessage)
    _rewrite(pm, _ids(select(pm.c.id).where(pm.c.instance_id.in_(instance_ids))), ("payload",), redact)

    _scrub_audit({"contact": contact_ids, "dossier": dossier_ids, "dossier_element": element_ids,
                  "outgoing_mail": mail_ids, "process_instance": instance_ids}, scrub=redact, every_action=True)
    return files


# --- Anonymising one party --------------------------------------------------------------------

def _ids(stmt) -> list[int]:
    return sorted(set(session.execute(stmt).scalars()))


def _table(model):
    return model.__table__


def anonymise(party: Party, *, reason: str, actor_agent: Agent | None = None) -> dict[str, int]:
    """Erase every personal value of party, everywhere it is stored, in the caller's transaction
    (the caller commits); the counts of what was erased. BusinessError, nothing written, when the
    party may not be erased (see refusal)."""
    session.flush()
    locked = session.execute(select(Party).where(Party.id == party.id).with_for_update()).scalar_one()
    session.refresh(locked)
    why = refusal(locked)
    if why:
        raise BusinessError(why)
    if actor_agent is not None and current_audit_context().actor_id != actor_agent.id:
        set_actor(actor_id=actor_agent.id, actor_label=actor_agent.login)
    now = clock.now()
    party_id = locked.id
    counts: dict[str, int] = {}

    # Someone else's contacts and dossiers (another party, not anonymised, linked in an owner's role):
    # the party only leaves them; the others are erased whole.
    all_contact_ids = _ids(select(ContactParty.contact_id).where(ContactParty.party_id == party_id))
    all_dossier_ids = _ids(select(DossierParty.dossier_id).where(DossierParty.party_id == party_id))
    shared_contact_ids = sorted(_shared(ContactParty, ContactParty.contact_id, party_id, all_contact_ids))
    shared_dossier_ids = sorted(_shared(DossierParty, DossierParty.dossier_id, party_id, all_dossier_ids))
    contact_ids = sorted(set(all_contact_ids) - set(shared_contact_ids))
    dossier_ids = sorted(set(all_dossier_ids) - set(shared_dossier_ids))
    redact = _Redactor(party_id, own_values(locked))  # read before the party and its audit entries are erased
    element_rows = session.execute(select(DossierElement.id, DossierElement.kind, DossierElement.file_id,
                                          DossierElement.pdf_file_id)
                                   .where(DossierElement.dossier_id.in_(dossier_ids))).all()
    element_ids = [row.id for row in element_rows]
    file_ids = sorted({f for row in element_rows for f in (row.file_id, row.pdf_file_id) if f is not None})
    mail_ids = _ids(select(OutgoingMail.id).where(OutgoingMail.dossier_id.in_(dossier_ids)))
    # An instance hanging from a shared record too (a dossier's, started from a contact) is left to its owner.
    instance_ids = sorted(row.id for row in session.execute(
        select(ProcessInstance.id, ProcessInstance.dossier_id, ProcessInstance.contact_id).where(
            or_(ProcessInstance.dossier_id.in_(dossier_ids), ProcessInstance.contact_id.in_(contact_ids))))
        if row.dossier_id not in shared_dossier_ids and row.contact_id not in shared_contact_ids)
    ended_contract_ids = _ids(
        select(ContractParty.contract_id).join(Contract, Contract.id == ContractParty.contract_id)
        .where(ContractParty.party_id == party_id, Contract.status == ContractStatus.TERMINATED))
    block_ids = _ids(select(DunningBlock.id).where(DunningBlock.contract_id.in_(ended_contract_ids)))

    # The party itself, its phones and e-mails, its search row.
    counts["phones"] = session.execute(delete(_table(PartyPhone)).where(
        _table(PartyPhone).c.party_id == party_id)).rowcount
    counts["emails"] = session.execute(delete(_table(PartyEmail)).where(
        _table(PartyEmail).c.party_id == party_id)).rowcount
    is_organisation = locked.kind == PartyKind.ORGANISATION
    p = _table(Party)
    session.execute(update(p).where(p.c.id == party_id).values(
        civility=None, first_name=None, last_name=None if is_organisation else MARKER,
        company_name=MARKER if is_organisation else None, birth_date=None, iban=None, bic=None,
        street=None, address_extra=None, vulnerable=False, anonymised_at=now, updated_at=now,
        version=p.c.version + 1))
    from app.search import index as search_index

    search_index.refresh([party_id])

    # Contacts: the type's label as subject, no notes.
    c = _table(Contact)
    if contact_ids:
        type_label = select(_table(ContactType).c.label).where(
            _table(ContactType).c.id == c.c.contact_type_id).scalar_subquery()
        session.execute(update(c).where(c.c.id.in_(contact_ids)).values(
            subject=func.substr(type_label, 1, 200), notes=None))
    counts["contacts"] = len(contact_ids)

    # Dossiers: the classification's label as subject; their elements, files, mails, affaire calls.
    d = _table(Dossier)
    if dossier_ids:
        type_label = select(_table(DossierType).c.label).where(
            _table(DossierType).c.id == d.c.dossier_type_id).scalar_subquery()
        session.execute(update(d).where(d.c.id.in_(dossier_ids)).values(
            subject=func.substr(type_label, 1, 200), version=d.c.version + 1))
    counts["dossiers"] = len(dossier_ids)
    e = _table(DossierElement)
    if element_ids:
        session.execute(update(e).where(e.c.id.in_(element_ids)).values(body=None, file_id=None, pdf_file_id=None,
                                                                       pdf_pending=False))
        for kind in (ElementKind.NOTE, ElementKind.MAIL):
            session.execute(update(e).where(e.c.id.in_(element_ids), e.c.kind == kind).values(title=MARKER))
    counts["notes"] = sum(1 for row in element_rows if row.kind == ElementKind.NOTE)
    counts["letters"] = sum(1 for row in element_rows if row.kind == ElementKind.LETTER)
    counts["files"] = session.execute(delete(_table(StoredFile)).where(
        _table(StoredFile).c.id.in_(file_ids))).rowcount if file_ids else 0
    m = _table(OutgoingMail)
    if mail_ids:
        session.execute(update(m).where(m.c.id.in_(mail_ids), m.c.status.in_((MailStatus.QUEUED, MailStatus.SENDING)))
                        .values(status=MailStatus.FAILED, next_attempt_at=None, claimed_at=None))
        session.execute(update(m).where(m.c.id.in_(mail_ids)).values(
            recipient=MARKER, subject=MARKER, body="", last_error=None))
    counts["mails"] = len(mail_ids)
    for row in session.execute(select(AffaireSync.id, AffaireSync.payload)
                               .where(AffaireSync.dossier_id.in_(dossier_ids))).all():
        if isinstance(row.payload, dict) and "subject" in row.payload:
            session.execute(update(_table(AffaireSync)).where(_table(AffaireSync).c.id == row.id).values(
                payload={**row.payload, "subject": MARKER}, last_error=None))

    # Process instances: their data, their tasks' drafts, their messages.
    i = _table(ProcessInstance)
    for row in session.execute(select(i.c.id, i.c.state, i.c.error_message, i.c.cancel_reason)
                               .where(i.c.id.in_(instance_ids))).all():
        session.execute(update(i).where(i.c.id == row.id).values(
            state=scrub_state_text(row.state),
            error_message=MARKER if row.error_message else None,
            cancel_reason=MARKER if row.cancel_reason else None,
            revision=i.c.revision + 1))
    if instance_ids:
        session.execute(update(_table(ProcessTask)).where(_table(ProcessTask).c.instance_id.in_(instance_ids))
                        .values(draft=None))
        for row in session.execute(select(ProcessMessage.id, ProcessMessage.payload)
                                   .where(ProcessMessage.instance_id.in_(instance_ids))).all():
            session.execute(update(_table(ProcessMessage)).where(_table(ProcessMessage).c.id == row.id)
                            .values(payload=_scrub(row.payload or {})))
    counts["processes"] = len(instance_ids)

    # Dunning blocks of its ended contracts: their free-text reason.
    if block_ids:
        session.execute(update(_table(DunningBlock)).where(_table(DunningBlock).c.id.in_(block_ids))
                        .values(reason=MARKER))

    # The contacts and dossiers of someone else: the party's link and its own values only.
    counts["files"] += _leave_shared(party_id, shared_contact_ids, shared_dossier_ids, redact)
    counts["shared_contacts"] = len(shared_contact_ids)
    counts["shared_dossiers"] = len(shared_dossier_ids)

    # The audit trail about all of these.
    counts["audit_entries"] = _scrub_audit({
        "party": [party_id], "contact": contact_ids, "dossier": dossier_ids, "dossier_element": element_ids,
        "outgoing_mail": mail_ids, "process_instance": instance_ids, "dunning_block": block_ids,
    })

    session.expire_all()
    anonymised = session.get(Party, party_id)
    audit.record("anonymise", obj=anonymised, data={"reason": reason, "counts": counts})
    session.flush()
    return counts


def _scrub_audit(objects: dict[str, list[int]], *, scrub: Callable[[Any], Any] = _scrub_changes,
                 every_action: bool = False) -> int:
    """Replace the values of the audit entries about these objects (keys kept); how many changed.
    scrub: how (by default every value, the record-describing fields aside); every_action: the entries
    whose data are ids and codes too (a link list names the party by its id)."""
    a = _table(AuditEntry)
    changed = 0
    for object_type, ids in objects.items():
        keys = [str(i) for i in ids]
        for start in range(0, len(keys), 500):
            rows = session.execute(select(a.c.id, a.c.action, a.c.changes).where(
                a.c.object_type == object_type, a.c.object_id.in_(keys[start:start + 500]),
                a.c.changes.is_not(None))).all()
            for row in rows:
                if (row.action in VALUELESS_ACTIONS and not every_action) or not row.changes:
                    continue
                scrubbed = scrub(row.changes)
                if scrubbed != row.changes:
                    session.execute(update(a).where(a.c.id == row.id).values(changes=scrubbed))
                    changed += 1
    return changed


# --- The job ----------------------------------------------------------------------------------

def run(now: datetime, *, batch: int = BATCH, limit: int | None = None) -> dict[str, int]:
    """Anonymise every candidate (at most limit), one transaction per party; the counts of parties
    anonymised and left as they are (something changed since the selection: a contact traced, a
    dossier opened). The selection runs once (its cost grows with the candidates, not with the
    batches: about a second at 110,000 parties, bench/privacy_retention.py); each batch of ids is checked
    again, by primary key, just before it is erased. Idempotent: a second run finds nobody left."""
    selected = candidates(now, limit)
    session.commit()  # no transaction held while working through the list
    done = refused = 0
    for start in range(0, len(selected), batch):
        chunk = selected[start:start + batch]
        still = set(candidates(now, among=chunk))
        for party_id in chunk:
            party = session.get(Party, party_id) if party_id in still else None
            if party is None:
                refused += 1
                continue
            try:
                anonymise(party, reason=REASON_RETENTION)
                session.commit()
                done += 1
            except BusinessError as exc:
                session.rollback()
                refused += 1
                log.info("retention: party %s left as is: %s", party_id, exc.message)
        session.commit()
    # Once per run, after the batches: this night's erasures and those made on request since the last runs.
    if done or session.execute(select(Party.id).where(
            Party.anonymised_at >= now - timedelta(days=COMPACT_LOOKBACK_DAYS)).limit(1)).first():
        compact_search_index()
        session.commit()
    return {"anonymised": done, "refused": refused}


def compact_search_index() -> None:
    """SQLite: merge the FTS5 index of party_search, so that the trigrams of the erased names do not
    linger in its older segments (PostgreSQL's trigram indexes drop them with the dead rows, at VACUUM).
    It rewrites the whole index (minutes at a million parties): the nightly job only, never a request.
    An erased party's row is rewritten at once (``search_index.refresh``; the triggers delete its old
    terms from the FTS index), so a search no longer finds it meanwhile: only the bytes wait for the night."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("INSERT INTO party_search_fts(party_search_fts) VALUES ('optimize')"))

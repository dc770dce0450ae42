"""Changing a customer's identity and contact details (coordonnées), as the front office does.

Three rules shape this module:

- access control is in the queries: the party is loaded within the agent's ``party.write``
  scope, and a move to an address outside the agent's territories is refused unless the party
  stays visible through one of its contracts;
- everything is validated before the first write, so a refusal leaves nothing behind;
- optimistic locking: the form carries the version it was read at (``Party.version`` is the
  mapper's version_id_col). If someone saved in between, the save is refused with what they
  changed, read from the audit trail, so that nothing is silently overwritten.

Billing-owned data (customer number, billing reference, status, contracts, invoices) is not
editable here: the billing system is its master and its next import would overwrite it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from app import clock
from app.audit.models import AuditEntry
from app.contracts.models import Contract, ContractParty
from app.db import session
from app.errors import BusinessError
from app.labels import LABELS
from app.parties import sensitive
from app.parties.addresses import resolve_address
from app.parties.models import Party, PartyEmail, PartyKind, PartyPhone
from app.parties.phones import display_phone, normalise_phone
from app.security.models import Agent
from app.security.scope import get_scoped, scope_condition, territory_in_scope

WRITE = "party.write"
# The civilities the form offers: the stored value, its label in the agent's language.
CIVILITIES = {"M.": _l("M."), "Mme": _l("Mme")}
PHONE_LABELS = tuple(LABELS["phone_label"])
ADDRESS_FIELDS = ("street", "address_extra", "postal_code", "city")
NAME_MAX = {"first_name": 100, "last_name": 100, "company_name": 200}
MAX_PHONES, MAX_EMAILS = 5, 5
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The fields an agent sees in a conflict report, in this order (derived ones are left out).
FIELD_LABELS = {
    "civility": _l("civilité"), "first_name": _l("prénom"), "last_name": _l("nom"),
    "company_name": _l("raison sociale"), "birth_date": _l("date de naissance"),
    "iban": _l("IBAN"), "bic": _l("BIC"),
    "phones": _l("téléphones"), "emails": _l("e-mails"), "street": _l("adresse"),
    "address_extra": _l("complément d'adresse"), "postal_code": _l("code postal"), "city": _l("commune"),
    "status": _l("statut"), "vulnerable": _l("client vulnérable"),
}


class PartyNotFound(LookupError):
    """The party does not exist or is outside the agent's write scope (the two look the same)."""


class InvalidChanges(BusinessError):
    """Some fields are refused; ``errors`` maps each form field name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)
        self.errors = errors


@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class ConcurrentChange:
    """One save by someone else, as its audit entry tells it."""

    actor: str
    at: datetime
    fields: list[FieldChange] = field(default_factory=list)


class EditConflict(BusinessError):
    """The party changed since the form was read; ``changes`` says what changed, by whom, when."""

    def __init__(self, changes: list[ConcurrentChange], current_version: int) -> None:
        super().__init__(_l("Ce client a été modifié par quelqu'un d'autre pendant votre saisie. "
                            "Vos modifications n'ont pas été enregistrées ; vérifiez puis enregistrez à nouveau."))
        self.changes = changes
        self.current_version = current_version


# --- Validation (reads only) -----------------------------------------------------------------


def clean_text(value: Any) -> str:
    """The value as text, trimmed, its runs of blanks (tabs, line breaks) made one space."""
    return " ".join(str(value or "").split())


def civility_choices(stored: str | None = None) -> list[tuple[str, str]]:
    """The civility select's options; a stored civility the form does not offer ("Mlle", as the
    billing system may send it) is one of them, so that saving the form does not erase it."""
    options = [("", "—")] + [(value, str(label)) for value, label in CIVILITIES.items()]
    if stored and stored not in CIVILITIES:
        options.append((stored, stored))
    return options


def _name_values(party: Party, changes: dict) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "civility" in changes:
        civility = clean_text(changes["civility"]) or None
        # The stored one stays acceptable: the billing system may send others ("Mlle").
        if civility is not None and civility not in CIVILITIES and civility != party.civility:
            raise BusinessError(_l("Civilité inconnue."), field="civility")
        values["civility"] = civility if party.kind == PartyKind.PERSON else None
    for key, maximum in NAME_MAX.items():
        if key not in changes:
            continue
        text = clean_text(changes[key])
        if len(text) > maximum:
            raise BusinessError(_l("%(max)d caractères au plus.", max=maximum), field=key)
        values[key] = text or None
    required = "company_name" if party.kind == PartyKind.ORGANISATION else "last_name"
    if required in values and not values[required]:
        if required == "company_name":
            raise BusinessError(_l("La raison sociale est obligatoire."), field=required)
        raise BusinessError(_l("Le nom est obligatoire."), field=required)
    return values


def _birth_date(value: Any, stored: date | None = None) -> date | None:
    """The typed birth date; its plausibility is checked only when it differs from the stored
    one, so that a date the billing system sent (1895, say) does not block every other change."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise BusinessError(_l("Date de naissance invalide."), field="birth_date") from exc
    if value != stored and (value > clock.now().date() or value.year < 1900):
        raise BusinessError(_l("Date de naissance invraisemblable."), field="birth_date")
    return value


def _phones(rows: list[dict], maximum: int = MAX_PHONES) -> list[tuple[str, str | None]]:
    """(E.164 number, label) per non-empty row, in the order typed."""
    result: list[tuple[str, str | None]] = []
    for i, row in enumerate(rows):
        raw = clean_text(row.get("number"))
        if not raw:
            continue
        number = normalise_phone(raw)
        label = clean_text(row.get("label")) or None
        if label is not None and label not in PHONE_LABELS:
            raise BusinessError(_l("Type de téléphone inconnu."), field=f"phones-{i}-label")
        if number in (n for n, _label in result):
            raise BusinessError(_l("Ce numéro est déjà saisi."), field=f"phones-{i}-number")
        result.append((number, label))
    if len(result) > maximum:
        raise BusinessError(_l("%(max)d numéros au plus.", max=maximum), field="phones")
    return result


def _phone_row_errors(rows: list[dict]) -> dict[str, str]:
    """normalise_phone says which number is wrong but not which row: locate it."""
    errors: dict[str, str] = {}
    for i, row in enumerate(rows):
        raw = clean_text(row.get("number"))
        if raw:
            try:
                normalise_phone(raw)
            except BusinessError as exc:
                errors[f"phones-{i}-number"] = exc.message
    return errors


def _emails(values: list[str], maximum: int = MAX_EMAILS) -> list[str]:
    result: list[str] = []
    for i, value in enumerate(values):
        address = clean_text(value).lower()  # as the billing import stores them: the search compares lowercase
        if not address:
            continue
        if len(address) > 254 or not _EMAIL.fullmatch(address):
            raise BusinessError(_l("Adresse e-mail invalide : « %(address)s ».", address=address), field=f"emails-{i}")
        if address in result:
            raise BusinessError(_l("Cette adresse est déjà saisie."), field=f"emails-{i}")
        result.append(address)
    if len(result) > maximum:
        raise BusinessError(_l("%(max)d adresses au plus.", max=maximum), field="emails")
    return result


def _address_changed(party: Party, typed: dict[str, Any]) -> bool:
    """Whether the typed address differs from the stored one. An unchanged address is not checked
    again: an address the billing system sent that the reference does not know must not block
    a change of phone number."""
    return any(clean_text(typed[key]) != clean_text(getattr(party, key)) for key in ADDRESS_FIELDS)


@dataclass
class _Plan:
    """What a save will write, computed and checked before anything is written."""

    columns: dict[str, Any] = field(default_factory=dict)
    phones: list[tuple[str, str | None]] | None = None
    emails: list[str] | None = None


def plan_changes(party: Party, changes: dict) -> _Plan:
    """Validate every requested change; all the refusals at once, in InvalidChanges."""
    plan, errors = _Plan(), {}

    def attempt(step, *fields_of_step):
        try:
            step()
        except InvalidChanges as exc:
            errors.update(exc.errors)
        except BusinessError as exc:
            errors.setdefault(exc.field or fields_of_step[0], exc.message)

    attempt(lambda: plan.columns.update(_name_values(party, changes)), "last_name")
    # An organisation has no birth date: the form does not show one, so it changes none.
    if "birth_date" in changes and party.kind != PartyKind.ORGANISATION:
        attempt(lambda: plan.columns.update(birth_date=_birth_date(changes["birth_date"], party.birth_date)),
                "birth_date")
    # Bank details (sensitive: the caller checked the agent may change them, see update_party).
    if "iban" in changes:
        attempt(lambda: plan.columns.update(iban=sensitive.normalise_iban(changes["iban"])), "iban")
    if "bic" in changes:
        attempt(lambda: plan.columns.update(bic=sensitive.normalise_bic(changes["bic"])), "bic")
    # The billing system may have sent more than the form allows: what is stored stays possible.
    if "phones" in changes:
        rows = list(changes["phones"] or [])
        row_errors = _phone_row_errors(rows)
        if row_errors:
            errors.update(row_errors)
        else:
            attempt(lambda: setattr(plan, "phones", _phones(rows, max(MAX_PHONES, len(party.phones)))), "phones")
    if "emails" in changes:
        attempt(lambda: setattr(plan, "emails", _emails(list(changes["emails"] or []),
                                                         max(MAX_EMAILS, len(party.emails)))), "emails")
    typed = {key: changes.get(key, getattr(party, key)) for key in ADDRESS_FIELDS}
    if _address_changed(party, typed):
        # The same postal code and city as stored: the stored commune tells apart two communes of
        # that name under that postal code (62760 serves two Thièvres).
        same_commune = all(clean_text(typed[key]) == clean_text(getattr(party, key)) for key in ("postal_code", "city"))

        def address() -> None:
            resolved = resolve_address(**typed, insee_code=party.insee_code if same_commune else None)
            plan.columns.update(street=resolved.street, address_extra=resolved.address_extra,
                                postal_code=resolved.postal_code, city=resolved.city,
                                insee_code=resolved.insee_code, territory_id=resolved.territory_id)
        attempt(address, "postal_code")
    if errors:
        raise InvalidChanges(errors)
    return plan


def _stays_in_scope(*, agent: Agent, party_id: int, territory_id: int | None) -> bool:
    """Whether the agent may still write the party once in territory_id: that territory is one
    of theirs, or one of the party's contracts is (the same rule as Party.scope_clause)."""
    through_territory = territory_in_scope(agent, territory_id) if territory_id is not None else None
    through_contract = exists(
        select(Contract.id)
        .where(scope_condition(Contract, agent=agent, permission=WRITE))
        .where(Contract.id.in_(select(ContractParty.contract_id).where(ContractParty.party_id == party_id)))
    )
    condition = through_contract if through_territory is None else or_(through_territory, through_contract)
    return bool(session.execute(select(condition)).scalar())


# --- Conflicts ---------------------------------------------------------------------------------


def latest_audit_id(party_id: int) -> int:
    """The id of the party's latest audit entry (0 if none): the form's mark of what it has seen."""
    stmt = select(func.max(AuditEntry.id)).where(AuditEntry.object_type == Party.__tablename__,
                                                 AuditEntry.object_id == str(party_id))
    return session.execute(stmt).scalar() or 0


def _value_text(key: str, value: Any, allowed: bool = True) -> str:
    if value is None or value == [] or value == "":
        return "—"
    if key in sensitive.FIELDS and not allowed:
        return sensitive.display(key, value, allowed=False)
    if key == "iban" and isinstance(value, str):
        return sensitive.format_iban(value)
    if isinstance(value, list):
        return ", ".join(_value_text(key, v, allowed) for v in value)
    if isinstance(value, bool):
        return str(_l("oui") if value else _l("non"))
    if key == "phones" and isinstance(value, str):
        number, _sep, label = value.partition(" (")
        label = label.rstrip(")")
        shown = display_phone(number)
        return f"{shown} ({LABELS['phone_label'].get(label, label)})" if label else shown
    if key == "birth_date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    if key == "status":
        return str(LABELS["party_status"].get(value, value))
    return str(value)


def _actor_name(entry: AuditEntry) -> str:
    from app.audit.display import actor_label

    return entry.actor.full_name if entry.actor is not None else actor_label(entry.actor_label)


def changes_since(*, party_id: int, seen_audit_id: int | None, versions_behind: int,
                  agent: Agent | None = None) -> list[ConcurrentChange]:
    """The saves of the party that the form has not seen, oldest first; the values of sensitive
    fields masked unless ``agent`` may see them (app.parties.sensitive).

    The form's mark is the latest audit entry id it was read with; without one, the last
    ``versions_behind`` entries that changed something (one per version, as a rule).
    """
    stmt = (select(AuditEntry).options(selectinload(AuditEntry.actor))
            .where(AuditEntry.object_type == Party.__tablename__, AuditEntry.object_id == str(party_id),
                   AuditEntry.changes.is_not(None))
            .order_by(AuditEntry.id.desc()))
    if seen_audit_id is not None:
        stmt = stmt.where(AuditEntry.id > seen_audit_id).limit(20)
    else:
        stmt = stmt.limit(max(1, min(versions_behind, 20)))
    result = []
    allowed = sensitive.may_see(agent)
    for entry in reversed(list(session.execute(stmt).scalars())):
        fields = [FieldChange(str(label), _value_text(key, change[0], allowed), _value_text(key, change[1], allowed))
                  for key, label in FIELD_LABELS.items()
                  if isinstance(change := entry.changes.get(key), list) and len(change) == 2]
        if fields:
            result.append(ConcurrentChange(actor=_actor_name(entry), at=entry.created_at, fields=fields))
    return result


def _conflict(party: Party, *, expected_version: int, seen_audit_id: int | None,
              agent: Agent | None = None) -> EditConflict:
    changes = changes_since(party_id=party.id, seen_audit_id=seen_audit_id,
                            versions_behind=party.version - expected_version, agent=agent)
    return EditConflict(changes, party.version)


# --- Writing -----------------------------------------------------------------------------------


def _apply(party: Party, plan: _Plan) -> bool:
    """Set what differs; True when something changed."""
    changed = False
    for key, value in plan.columns.items():
        if getattr(party, key) != value:
            setattr(party, key, value)
            changed = True
    if plan.phones is not None and [(p.number, p.label) for p in party.phones] != plan.phones:
        # New rows rather than edited ones: the party's audit entry then lists the numbers
        # before and after (a relationship change), in the same entry as its other fields.
        party.phones = [PartyPhone(number=n, label=label, position=i) for i, (n, label) in enumerate(plan.phones)]
        changed = True
    if plan.emails is not None and [e.address for e in party.emails] != plan.emails:
        party.emails = [PartyEmail(address=a, position=i) for i, a in enumerate(plan.emails)]
        changed = True
    if changed:
        # A change of phones or emails alone updates no party column: this one makes the flush
        # update the row, so that the version moves on and the next stale form is refused.
        party.updated_at = clock.now()
    return changed


def update_party(*, agent: Agent, party_id: int, expected_version: int, changes: dict,
                 seen_audit_id: int | None = None) -> Party:
    """Apply an agent's changes to a party's identity, contact details and address.

    ``changes`` holds the form's fields (civility, first_name, last_name, company_name,
    birth_date, iban, bic, phones as [{number, label}], emails as [str], street, address_extra,
    postal_code, city); a missing key leaves that field as it is. Raises PartyNotFound,
    InvalidChanges (nothing written; also when it names a sensitive field and the agent lacks
    party.sensitive), a BusinessError when the new address leaves the agent's
    scope, or EditConflict when the party changed since ``expected_version``.
    """
    party = get_scoped(Party, party_id, agent=agent, permission=WRITE)
    if party is None:
        raise PartyNotFound(party_id)
    if party.version != expected_version:
        raise _conflict(party, expected_version=expected_version, seen_audit_id=seen_audit_id, agent=agent)
    # Sensitive fields are changed only by an agent who may see them; refused, not ignored.
    sensitive.refuse_changes(agent, changes)
    plan = plan_changes(party, changes)
    new_territory = plan.columns.get("territory_id", party.territory_id)
    if new_territory != party.territory_id and not _stays_in_scope(
            agent=agent, party_id=party.id, territory_id=new_territory):
        raise BusinessError(_l("Cette adresse est hors de vos territoires : le client ne serait plus visible "
                               "pour vous. Un agent du territoire concerné doit faire ce déménagement."),
                            field="postal_code")
    savepoint = session.begin_nested()
    try:
        _apply(party, plan)
        session.flush()
    except StaleDataError:
        # Saved by someone else between our read and our write.
        savepoint.rollback()
        session.refresh(party)
        raise _conflict(party, expected_version=expected_version, seen_audit_id=seen_audit_id,
                        agent=agent) from None
    savepoint.commit()
    return party

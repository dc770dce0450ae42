"""Creating a prospect: a person or company the front office talks with before any contract.

The order of the checks is what the agent sees:

1. the fields are validated with the same rules as the customer edit (``editing.plan_changes``:
   names, phones, emails, address against the postal code reference), all refusals at once;
2. the address must be in one of the agent's territories: a prospect gets the territory of its
   address, and an agent creates prospects only in their own scope (an address outside every
   territory is refused too: nobody could see the prospect);
3. duplicates in the agent's scope (``find_duplicates``: same phone, same email, close name at
   the same address) stop the creation with ``DuplicatesFound``, unless the agent confirms; a
   creation despite duplicates is recorded in the audit trail with the candidates' numbers.

Nothing is written before every check has passed.
"""
from __future__ import annotations

from collections.abc import Collection

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit.service import record
from app.db import session
from app.errors import BusinessError
from app.parties import editing
from app.parties.duplicates import Candidate, find_duplicates
from app.parties.models import Party, PartyEmail, PartyKind, PartyPhone, PartyStatus
from app.security.models import Agent
from app.security.scope import territory_in_scope

WRITE = editing.WRITE
NUMBER_PREFIX = "PR"
NUMBER_DIGITS = 8
NUMBER_ATTEMPTS = 5
PERSON_FIELDS = ("civility", "first_name", "last_name")
ORGANISATION_FIELDS = ("company_name",)


class DuplicatesFound(Exception):
    """Parties in the agent's scope look like the prospect: the agent chooses to open one or to
    create anyway (``confirmed=True``)."""

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__(f"{len(candidates)} duplicate candidate(s)")
        self.candidates = candidates


def _changes(kind: str, data: dict) -> dict:
    """The fields editing.plan_changes validates, for this kind of party."""
    names = ORGANISATION_FIELDS if kind == PartyKind.ORGANISATION else PERSON_FIELDS
    changes = {key: data.get(key) for key in names}
    changes["phones"] = list(data.get("phones") or [])
    changes["emails"] = list(data.get("emails") or [])
    changes.update({key: data.get(key) for key in editing.ADDRESS_FIELDS})
    return changes


def validate(data: dict) -> tuple[str, editing._Plan]:
    """The kind and the validated values of a prospect; InvalidChanges with every refusal."""
    kind = data.get("kind") or PartyKind.PERSON
    if kind not in PartyKind.ALL:
        raise editing.InvalidChanges({"kind": str(_l("Type d'interlocuteur inconnu."))})
    changes = _changes(kind, data)
    # A draft with no stored value: every typed field is a change, hence checked.
    draft = Party(kind=kind)
    errors: dict[str, str] = {}
    plan = None
    try:
        plan = editing.plan_changes(draft, changes)
    except editing.InvalidChanges as exc:
        errors.update(exc.errors)
    if kind == PartyKind.ORGANISATION and not editing.clean_text(changes.get("company_name")):
        errors.setdefault("company_name", str(_l("La raison sociale est obligatoire.")))
    if kind == PartyKind.PERSON and not editing.clean_text(changes.get("last_name")):
        errors.setdefault("last_name", str(_l("Le nom est obligatoire.")))
    # The draft has no address: plan_changes resolves the address only when one was typed.
    if not any(editing.clean_text(changes.get(key)) for key in ("postal_code", "city", "street")):
        errors.setdefault("postal_code", str(_l("Le code postal est obligatoire.")))
    if not editing.clean_text(changes.get("street")):
        errors.setdefault("street", str(_l("L'adresse (numéro et voie) est obligatoire.")))
    if errors:
        raise editing.InvalidChanges(errors)
    return kind, plan


def _in_scope(agent: Agent, territory_id: int | None) -> bool:
    if territory_id is None:
        return False
    return bool(session.execute(select(territory_in_scope(agent, territory_id))).scalar())


def _check_scope(agent: Agent, territory_id: int | None) -> None:
    if territory_id is None:
        raise BusinessError(_l("Cette commune n'appartient à aucun territoire desservi : le prospect ne peut pas "
                               "être créé."), field="postal_code")
    if not _in_scope(agent, territory_id):
        raise BusinessError(_l("Cette adresse est hors de vos territoires : vous ne pouvez créer un prospect que "
                               "dans votre périmètre. Un agent du territoire concerné doit le créer."),
                            field="postal_code")


def _max_prospect_number() -> int:
    """The highest number allocated so far in the prospect range (0 if none)."""
    low, high = NUMBER_PREFIX + "0" * NUMBER_DIGITS, NUMBER_PREFIX + "9" * NUMBER_DIGITS
    value = session.execute(select(func.max(Party.number))
                            .where(Party.number >= low, Party.number <= high)).scalar()
    try:
        return int(value[len(NUMBER_PREFIX):]) if value else 0
    except ValueError:  # not one of ours (a non-digit number in the range): start after nothing
        return 0


def format_number(n: int) -> str:
    return f"{NUMBER_PREFIX}{n:0{NUMBER_DIGITS}d}"


def _build(kind: str, plan: editing._Plan) -> Party:
    party = Party(kind=kind, status=PartyStatus.PROSPECT, **plan.columns)
    party.phones = [PartyPhone(number=n, label=label, position=i) for i, (n, label) in enumerate(plan.phones or [])]
    party.emails = [PartyEmail(address=a, position=i) for i, a in enumerate(plan.emails or [])]
    return party


def _insert_with_number(kind: str, plan: editing._Plan) -> Party:
    """Insert the prospect with the next free number of the prospect range.

    Customer numbers come from the billing system (``CL`` + 8 digits in the demo data) and are
    imported as they are; prospects exist before billing knows them, so Guichet numbers them
    itself in a range of its own, ``PR`` + 8 digits, that billing numbers never use (the billing
    import refuses a number already held by another party, so an overlap would be reported,
    never merged silently). The next number is the highest PR number + 1, read with an index
    range scan on ``party.number``. Two agents creating at the same moment may read the same
    maximum: the unique index refuses the second insert, which is rolled back to its savepoint
    (the rest of the transaction stays) and tried again with a number read afresh. A fresh
    Party is built for each attempt, as the rolled-back one may keep its stale primary key.
    """
    for _attempt in range(NUMBER_ATTEMPTS):
        party = _build(kind, plan)
        party.number = format_number(_max_prospect_number() + 1)
        savepoint = session.begin_nested()
        try:
            session.add(party)
            session.flush()
        except IntegrityError:
            savepoint.rollback()
            continue
        savepoint.commit()
        return party
    raise BusinessError(_l("Le numéro du prospect n'a pas pu être attribué (trop de créations simultanées). "
                           "Réessayez."))


def create_prospect(*, agent: Agent, data: dict, confirmed: bool = False,
                    acknowledged: Collection[int] | None = None) -> Party:
    """Create a prospect from the form's data; the caller commits.

    ``data`` holds kind (person or organisation), civility, first_name, last_name, company_name,
    phones as [{number, label}], emails as [str], street, address_extra, postal_code, city.
    Raises PermissionError without party.write and party.read, InvalidChanges (field → message) or a
    BusinessError (address out of scope) with nothing written, DuplicatesFound when parties in
    the agent's scope look alike and ``confirmed`` is false. ``acknowledged``, when given with
    ``confirmed``, lists the candidates' ids the agent was shown: a candidate that appeared since
    (the agent changed the phone, say) warns again rather than being confirmed unseen.
    """
    # Reading is needed too: without it the duplicate check would see nothing and warn of nothing.
    for permission in (WRITE, "party.read"):
        if agent is None or not agent.is_active or not agent.can(permission):
            raise PermissionError(permission)
    kind, plan = validate(data)
    _check_scope(agent, plan.columns.get("territory_id"))
    columns = plan.columns
    candidates = find_duplicates(
        agent=agent, last_name=columns.get("last_name"), first_name=columns.get("first_name"),
        company_name=columns.get("company_name"), street=columns.get("street"),
        postal_code=columns.get("postal_code"), phones=[n for n, _label in plan.phones or []],
        emails=plan.emails or [])
    if candidates:
        unseen = [c for c in candidates if acknowledged is not None and c.party.id not in set(acknowledged)]
        if not confirmed or unseen:
            raise DuplicatesFound(candidates)
    party = _insert_with_number(kind, plan)
    if candidates:
        record("create_despite_duplicates", obj=party, data={
            "candidates": [c.party.number for c in candidates],
            "reasons": {c.party.number: c.reasons for c in candidates},
        })
        session.flush()
    return party

"""Dossiers for another system: opening one (POST /api/v1/dossiers: numbers in, links out) and
reading where one stands (GET /api/v1/dossiers/<reference>), within the token's territories.

The dossier itself is opened by app.dossiers.service.open_dossier, the service call every
automatic creation goes through. Every field of the request is checked before anything is
looked up, and every problem is reported at once, by field (422); a number that does not exist,
or lies outside the token's territories, is one and the same 404.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from flask_babel import gettext as _
from sqlalchemy import select

from app.api.errors import ApiError, ValidationError
from app.contacts import links as link_rules
from app.contacts import objects
from app.contacts.models import PartyLinkRole
from app.contacts.service import SUBJECT_MAX
from app.contracts.models import Contract, Invoice
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierOrigin
from app.errors import BusinessError
from app.parties.models import Party
from app.processes import service as processes
from app.processes.models import ProcessTask, TaskStatus
from app.security.models import Territory
from app.security.scope import territory_ids_under

MAX_ITEMS = 50
NUMBER_MAX = 40
REFERENCE_MAX = 20
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _numbers(body: dict, key: str, fields: dict[str, str]) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        fields[key] = _("Une liste de numéros est attendue.")
        return []
    if len(value) > MAX_ITEMS:
        fields[key] = _("%(max)d éléments au plus.", max=MAX_ITEMS)
        return []
    for i, number in enumerate(value):
        if not isinstance(number, str) or not 0 < len(number.strip()) <= NUMBER_MAX:
            fields[f"{key}[{i}]"] = _("Un numéro de 1 à %(max)d caractères est attendu.", max=NUMBER_MAX)
    return [n.strip() for n in value if isinstance(n, str)]


def _in_scope(model, column, numbers: list[str], territory_ids, field: str, missing: dict[str, str]) -> dict[str, int]:
    """number → id of the rows with these numbers within the territories; the others go to missing."""
    if not numbers:
        return {}
    found = dict(session.execute(select(column, model.id).where(column.in_(set(numbers)),
                                                                 model.scope_clause(territory_ids))).all())
    for i, number in enumerate(numbers):
        if number not in found:
            missing[f"{field}[{i}]" if field != "parties" else f"parties[{i}].number"] = _(
                "Numéro inconnu ou hors du périmètre de ce jeton : %(number)s.", number=number)
    return found


def _checked(body: dict) -> tuple:
    """The classification, subject and wanted links of the request, or a 422 naming every problem."""
    fields: dict[str, str] = {}
    code = body.get("classification")
    dossier_type = None
    if not isinstance(code, str) or not code.strip():
        fields["classification"] = _("Le code de la classification du dossier est obligatoire.")
    else:
        dossier_type = dossiers.type_by_code(code.strip()[:40])
        if dossier_type is None or not dossier_type.active:
            fields["classification"] = _("Classification de dossier inconnue ou inactive : %(code)s.",
                                         code=code[:40])
    subject = body.get("subject")
    if subject is not None:
        if not isinstance(subject, str):
            fields["subject"] = _("Un texte est attendu.")
        elif len(subject.strip()) > SUBJECT_MAX:
            fields["subject"] = _("L'objet tient en %(max)d caractères.", max=SUBJECT_MAX)
        elif CONTROL_CHARS.search(subject):
            fields["subject"] = _("L'objet ne doit pas contenir de caractères de contrôle.")
    raw_parties = body.get("parties")
    wanted: list[tuple[str, str]] = []
    if not isinstance(raw_parties, list) or not raw_parties:
        fields["parties"] = _("Au moins un interlocuteur {number, role} est obligatoire.")
    elif len(raw_parties) > MAX_ITEMS:
        fields["parties"] = _("%(max)d interlocuteurs au plus.", max=MAX_ITEMS)
    else:
        for i, item in enumerate(raw_parties):
            if not isinstance(item, dict):
                fields[f"parties[{i}]"] = _("Un objet {number, role} est attendu.")
                continue
            number, role = item.get("number"), item.get("role") or PartyLinkRole.CUSTOMER
            if not isinstance(number, str) or not 0 < len(number.strip()) <= NUMBER_MAX:
                fields[f"parties[{i}].number"] = _("Le numéro de client est obligatoire (%(max)d caractères au "
                                                   "plus).", max=NUMBER_MAX)
            if not isinstance(role, str) or role not in PartyLinkRole.ALL:
                fields[f"parties[{i}].role"] = _("Rôle d'interlocuteur inconnu : %(role)s (permis : %(known)s).",
                                                 role=str(role)[:40], known=", ".join(PartyLinkRole.ALL))
            elif isinstance(number, str):
                if (number.strip(), role) in wanted:
                    fields[f"parties[{i}]"] = _("Cet interlocuteur est déjà cité avec ce rôle.")
                wanted.append((number.strip(), role))
    contracts = _numbers(body, "contracts", fields)
    invoices = _numbers(body, "invoices", fields)
    if fields:
        raise ValidationError(fields)
    return dossier_type, subject, wanted, contracts, invoices


def open_from_request(body: dict, *, territories: Sequence[Territory]) -> Dossier:
    """Open the dossier the request describes. Raises ValidationError (422) for a malformed field,
    ApiError 404 for a number unknown or out of the token's territories; flushes, never commits."""
    dossier_type, subject, wanted, contract_numbers, invoice_numbers = _checked(body)
    territory_ids = territory_ids_under(territories)
    missing: dict[str, str] = {}
    parties = _in_scope(Party, Party.number, [n for n, _r in wanted], territory_ids, "parties", missing)
    contracts = _in_scope(Contract, Contract.number, contract_numbers, territory_ids, "contracts", missing)
    invoices = _in_scope(Invoice, Invoice.number, invoice_numbers, territory_ids, "invoices", missing)
    if missing:
        raise ApiError(404, next(iter(missing.values())), fields=missing)
    links = link_rules.Links(
        parties=[link_rules.PartyLink(parties[n], role, "default") for n, role in wanted],
        objects=[link_rules.ObjectLink(objects.Ref("contract", i), "default") for i in contracts.values()]
        + [link_rules.ObjectLink(objects.Ref("invoice", i), "default") for i in invoices.values()],
    )
    try:
        return dossiers.open_dossier(agent=None, dossier_type_id=dossier_type.id, links=links, subject=subject,
                                     origin=DossierOrigin.AUTOMATIC)
    except BusinessError as exc:
        raise ValidationError({exc.field or "body": exc.message}) from None


def find_in_scope(reference: str, territories: Sequence[Territory]) -> Dossier | None:
    """The dossier with this reference if it lies within the territories, else None (as a missing one)."""
    if not reference or len(reference) > REFERENCE_MAX:
        return None
    return session.execute(select(Dossier).where(
        Dossier.reference == reference, Dossier.scope_clause(territory_ids_under(territories)))).scalar_one_or_none()


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def status_of(dossier: Dossier) -> dict:
    """Where the dossier stands, as another system needs it: status, classification, dates, the
    affaire in the billing system, and its process with the steps waiting now."""
    instance = processes.last_on(dossier_id=dossier.id)
    process = None
    if instance is not None:
        ready = session.execute(select(ProcessTask).where(
            ProcessTask.instance_id == instance.id, ProcessTask.status == TaskStatus.READY)
            .order_by(ProcessTask.id)).scalars().all()
        process = {
            "id": instance.id,
            "key": instance.definition.key,
            "name": instance.definition.name,
            "status": instance.status,
            "started_at": _iso(instance.started_at),
            "ended_at": _iso(instance.ended_at),
            "error": instance.error_message,
            "current_steps": [{"element": t.element_id, "name": t.name, "role": t.role_code,
                               "assigned": t.assignee_id is not None, "due_at": _iso(t.due_at)} for t in ready],
        }
    return {
        "id": dossier.id,
        "reference": dossier.reference,
        "status": dossier.status,
        "classification": {"code": dossier.dossier_type.code, "label": dossier.dossier_type.label},
        "subject": dossier.subject,
        "origin": dossier.origin,
        "created_at": _iso(dossier.created_at),
        "due_at": _iso(dossier.due_at),
        "closed_at": _iso(dossier.closed_at),
        "external_ref": dossier.external_ref,
        "process": process,
    }

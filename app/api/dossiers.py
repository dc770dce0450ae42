"""Opening a dossier for another system (POST /api/v1/dossiers): numbers in, links out, within the
token's territories. The dossier itself is opened by app.dossiers.service.open_dossier, the
service call every automatic creation goes through."""
from __future__ import annotations

from collections.abc import Sequence

from flask_babel import gettext as _
from sqlalchemy import select

from app.contacts import links as link_rules
from app.contacts import objects
from app.contacts.models import PartyLinkRole
from app.contracts.models import Contract, Invoice
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import DossierOrigin
from app.errors import BusinessError
from app.parties.models import Party
from app.security.models import Territory
from app.security.scope import territory_ids_under

MAX_ITEMS = 50


def _numbers(body: dict, key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 40 for v in value):
        raise BusinessError(_("« %(key)s » doit être une liste de numéros.", key=key))
    if len(value) > MAX_ITEMS:
        raise BusinessError(_("« %(key)s » : %(max)d éléments au plus.", key=key, max=MAX_ITEMS))
    return value


def _in_scope(model, column, numbers: list[str], territory_ids) -> dict[str, int]:
    if not numbers:
        return {}
    stmt = select(column, model.id).where(column.in_(numbers), model.scope_clause(territory_ids))
    found = dict(session.execute(stmt).all())
    missing = [n for n in numbers if n not in found]
    if missing:
        raise LookupError(_("Numéro inconnu ou hors du périmètre de ce jeton : %(number)s.", number=missing[0]))
    return found


def open_from_request(body: dict, *, territories: Sequence[Territory]):
    code = body.get("classification")
    dossier_type = dossiers.type_by_code(code) if isinstance(code, str) else None
    if dossier_type is None or not dossier_type.active:
        raise BusinessError(_("Classification de dossier inconnue ou inactive : %(code)s.", code=code))
    subject = body.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise BusinessError(_("« subject » doit être un texte."))
    raw_parties = body.get("parties")
    if not isinstance(raw_parties, list) or not raw_parties or len(raw_parties) > MAX_ITEMS:
        raise BusinessError(_("« parties » : de 1 à %(max)d interlocuteurs {number, role}.", max=MAX_ITEMS))
    wanted = []
    for item in raw_parties:
        if not isinstance(item, dict) or not isinstance(item.get("number"), str):
            raise BusinessError(_("Chaque interlocuteur est un objet {number, role}."))
        role = item.get("role") or PartyLinkRole.CUSTOMER
        if role not in PartyLinkRole.ALL:
            raise BusinessError(_("Rôle d'interlocuteur inconnu : %(role)s.", role=role))
        wanted.append((item["number"], role))
    territory_ids = territory_ids_under(territories)
    parties = _in_scope(Party, Party.number, [n for n, _r in wanted], territory_ids)
    contracts = _in_scope(Contract, Contract.number, _numbers(body, "contracts"), territory_ids)
    invoices = _in_scope(Invoice, Invoice.number, _numbers(body, "invoices"), territory_ids)
    links = link_rules.Links(
        parties=[link_rules.PartyLink(parties[n], role, "default") for n, role in wanted],
        objects=[link_rules.ObjectLink(objects.Ref("contract", i), "default") for i in contracts.values()]
        + [link_rules.ObjectLink(objects.Ref("invoice", i), "default") for i in invoices.values()],
    )
    return dossiers.open_dossier(agent=None, dossier_type_id=dossier_type.id, links=links, subject=subject,
                                 origin=DossierOrigin.AUTOMATIC)

"""The demo contact types and dossier classifications, with their templates and eligibility rules.
Created when missing (by code); an administrator's later changes are left as they are."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.contacts.models import ContactType, TemplateItem
from app.db import session
from app.dossiers.models import DossierType
from app.dunning.models import DunningLevel, DunningProcedure
from app.security.models import Role

HAS_OVERDUE = [{"fact": "overdue_amount", "op": "gt", "value": "0"}]
ACTIVE_CONTRACT = [{"fact": "contract_status", "op": "in", "value": ["active"]}]
DIRECT_CHANNELS = [{"fact": "channel", "op": "in", "value": ["phone", "front_desk"]}]

# (code, label, process, target days, [template items])
DOSSIER_TYPES = [
    ("EMMENAGEMENT", "Emménagement", "move_in", 10, [
        ("party", "contract_holder", None, None),
        ("agent", "role_in_territory", "responsible", None, "back_office"),
        ("object", "current_service_point", None, None),
    ]),
    ("DEMENAGEMENT", "Déménagement (résiliation)", "move_out", 10, [
        ("party", "contract_holder", None, None),
        ("object", "last_reading", None, ACTIVE_CONTRACT),
        ("object", "current_meter", None, ACTIVE_CONTRACT),
    ]),
    ("CONTESTATION_RELEVE", "Contestation de relève", "reading_dispute", 15, [
        ("object", "last_reading", None, None),
        ("object", "current_meter", None, None),
        ("agent", "role_in_territory", "responsible", None, "back_office"),
    ]),
    ("PLAN_PAIEMENT", "Difficulté de paiement (échéancier)", "payment_difficulty", 30, [
        ("party", "contract_payer", None, None),
        ("object", "overdue_invoices", None, HAS_OVERDUE),
        ("agent", "role_in_territory", "responsible", None, "back_office"),
    ]),
    ("RELANCE_IMPAYE", "Relance d'impayé", "unpaid_relaunch", 60, [
        ("party", "contract_payer", None, None),
        ("object", "overdue_invoices", None, HAS_OVERDUE),
    ]),
    ("RECLAMATION", "Réclamation", None, 30, [
        ("object", "last_invoice", None, None),
    ]),
]

ONE_PER_CONTRACT = {"RELANCE_IMPAYE"}  # one open relaunch per contract
SUSPENDS_DUNNING = {"CONTESTATION_RELEVE", "RECLAMATION"}  # an invoice disputed is not chased meanwhile

# The dunning procedure: (rank, label, days after the due date and the grace, minimum owed,
# letter, mail, agent's task, formal notice).
DUNNING_GRACE_DAYS = 7
DUNNING_LEVELS = [
    (1, "Premier rappel", 0, "5.00", "unpaid_reminder_1", "unpaid_reminder_mail", False, False),
    (2, "Second rappel", 15, "5.00", "unpaid_reminder_2", "unpaid_reminder_mail", False, False),
    (3, "Mise en demeure", 30, "15.00", "formal_notice", "unpaid_reminder_mail", True, True),
]

# (code, label, channel, direction, process, dossier type, [template items])
CONTACT_TYPES = [
    ("RENSEIGNEMENT", "Demande de renseignement", "phone", "in", "information_request", None, []),
    ("EMMENAGEMENT", "Demande d'emménagement", "phone", "in", None, "EMMENAGEMENT", [
        ("agent", "role_in_territory", "responsible", None, "back_office"),
    ]),
    ("DEMENAGEMENT", "Demande de résiliation (déménagement)", "phone", "in", None, "DEMENAGEMENT", [
        ("party", "contract_holder", None, None),
        ("object", "last_reading", None, ACTIVE_CONTRACT),
    ]),
    ("RELEVE", "Transmission ou contestation de relève", "phone", "in", None, "CONTESTATION_RELEVE", [
        ("object", "last_reading", None, None),
        ("object", "current_meter", None, None),
    ]),
    ("FACTURE", "Question sur une facture", "phone", "in", None, "RECLAMATION", [
        ("object", "last_invoice", None, None),
        ("object", "overdue_invoices", None, HAS_OVERDUE),
    ]),
    ("DIFFICULTE_PAIEMENT", "Difficulté de paiement", "phone", "in", None, "PLAN_PAIEMENT", [
        ("party", "contract_payer", None, None),
        ("object", "overdue_invoices", None, HAS_OVERDUE),
        ("agent", "role_in_territory", "responsible", DIRECT_CHANNELS, "back_office"),
    ]),
    ("RECLAMATION", "Réclamation", "letter", "in", None, "RECLAMATION", [
        ("agent", "role_in_territory", "responsible", None, "back_office"),
    ]),
    ("APPEL_SORTANT", "Appel sortant", "phone", "out", None, None, []),
]


def _items(specs: list[tuple], roles: dict[str, Role]) -> list[TemplateItem]:
    items = []
    for position, (kind, source, link_role, rule, *rest) in enumerate(specs):
        role = roles.get(rest[0]) if rest else None
        items.append(TemplateItem(kind=kind, source=source, link_role=link_role, rule=rule, role=role,
                                  position=position))
    return items


def seed_referentials() -> dict[str, int]:
    """Create the missing demo contact types and dossier classifications; return how many."""
    roles = {r.code: r for r in session.execute(select(Role)).scalars()}
    counts = {"dossier_types": 0, "contact_types": 0}
    by_code = {t.code: t for t in session.execute(select(DossierType)).scalars()}
    for position, (code, label, process, days, items) in enumerate(DOSSIER_TYPES):
        if code not in by_code:
            by_code[code] = DossierType(code=code, label=label, process_key=process, target_days=days,
                                        auto_start=process is not None, position=position,
                                        one_per_contract=code in ONE_PER_CONTRACT,
                                        suspends_dunning=code in SUSPENDS_DUNNING, items=_items(items, roles))
            session.add(by_code[code])
            counts["dossier_types"] += 1
    existing = set(session.execute(select(ContactType.code)).scalars())
    for position, (code, label, channel, direction, process, dossier, items) in enumerate(CONTACT_TYPES):
        if code not in existing:
            session.add(ContactType(code=code, label=label, default_channel=channel, default_direction=direction,
                                    process_key=process, dossier_type=by_code.get(dossier), position=position,
                                    items=_items(items, roles)))
            counts["contact_types"] += 1
    session.flush()
    counts["dunning_procedures"] = _seed_dunning(by_code["RELANCE_IMPAYE"])
    return counts


def _seed_dunning(relaunch: DossierType) -> int:
    """The standard dunning procedure, when there is none."""
    if session.execute(select(DunningProcedure.id).limit(1)).first():
        return 0
    session.add(standard_procedure(relaunch))
    session.flush()
    return 1


def standard_procedure(dossier_type: DossierType, code: str = "STANDARD") -> DunningProcedure:
    """The standard procedure (three levels, seven days' grace) for the dossiers of this classification."""
    return DunningProcedure(
        code=code, label="Relance standard", grace_days=DUNNING_GRACE_DAYS, dossier_type=dossier_type, active=True,
        levels=[DunningLevel(rank=rank, label=label, delay_days=delay, min_amount=Decimal(minimum),
                             letter_template=letter, mail_template=mail, agent_task=task, formal_notice=notice)
                for rank, label, delay, minimum, letter, mail, task, notice in DUNNING_LEVELS])

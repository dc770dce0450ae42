"""Changing the dunning procedure (admin.referentials) and blocking a contract's dunning
(dunning.manage). Functions check, write and flush; the caller commits. A refusal is a
BusinessError naming its field, and nothing is written."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app import clock
from app.contracts.models import Contract
from app.db import session
from app.documents import templates as registry
from app.documents.models import TemplateKind
from app.dossiers.models import DossierType
from app.dunning.models import DunningBlock, DunningLevel, DunningProcedure
from app.errors import BusinessError
from app.parties.overview import local_today
from app.security.models import Agent
from app.security.scope import scope_condition

GRACE_MAX = 365
DELAY_MAX = 3650
RANK_MAX = 20
REASON_MAX = 500
READ = "party.read"


def procedures() -> list[DunningProcedure]:
    return list(session.execute(select(DunningProcedure).order_by(DunningProcedure.id)).scalars())


def one_per_contract_types() -> list[DossierType]:
    """The classifications a procedure may open its dossiers in."""
    return list(session.execute(select(DossierType).where(DossierType.one_per_contract.is_(True))
                                .order_by(DossierType.position, DossierType.label)).scalars())


def template_codes(kind: str) -> list[tuple[str, str]]:
    """(code, label) of the active templates of this kind, for the level's letter and mail."""
    return [(t.code, t.label) for t in registry.catalogue(kind, active_only=True)]


def _label(value: str | None) -> str:
    value = (value or "").strip()
    if not value or len(value) > 200:
        raise BusinessError(_l("Un libellé de 1 à 200 caractères est attendu."), field="label")
    return value


def update_procedure(procedure: DunningProcedure, *, label: str | None, grace_days: int | None,
                     dossier_type_id: int | None, active: bool) -> DunningProcedure:
    """Change the procedure; made active, it becomes the only active one."""
    label = _label(label)
    if grace_days is None or not 0 <= grace_days <= GRACE_MAX:
        raise BusinessError(_l("Le délai de grâce est un nombre de jours entre 0 et %(max)d.", max=GRACE_MAX),
                            field="grace_days")
    dossier_type = session.get(DossierType, dossier_type_id) if dossier_type_id else None
    if dossier_type is None or not dossier_type.one_per_contract:
        raise BusinessError(_l("Choisissez une classification qui n'admet qu'un dossier ouvert par contrat : c'est "
                               "ce qui empêche deux relances du même contrat."), field="dossier_type_id")
    procedure.label, procedure.grace_days, procedure.dossier_type_id = label, grace_days, dossier_type.id
    if active and not procedure.active:
        for other in procedures():
            if other.id != procedure.id and other.active:
                other.active = False
    procedure.active = bool(active)
    session.flush()
    return procedure


@dataclass(frozen=True)
class LevelValues:
    rank: int | None
    label: str | None
    delay_days: int | None
    min_amount: str | Decimal | None
    letter_template: str | None
    mail_template: str | None
    agent_task: bool
    formal_notice: bool


def _amount(value) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", ".").replace(" ", "")) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        raise BusinessError(_l("Un montant en euros est attendu, par exemple 15,00."), field="min_amount") from None
    if amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1000000"):
        raise BusinessError(_l("Un montant positif, avec deux décimales au plus, est attendu."), field="min_amount")
    return amount.quantize(Decimal("0.01"))


def _template(code: str | None, kind: str, field: str) -> str | None:
    code = (code or "").strip() or None
    if code is not None and code not in dict(template_codes(kind)):
        raise BusinessError(_l("Modèle inconnu ou désactivé : %(code)s.", code=code), field=field)
    return code


def save_level(procedure: DunningProcedure, level: DunningLevel | None, values: LevelValues) -> DunningLevel:
    """Add a level (level None) or change one. Ranks are unique; delays grow with the rank."""
    if values.rank is None or not 1 <= values.rank <= RANK_MAX:
        raise BusinessError(_l("Le rang est un nombre entre 1 et %(max)d.", max=RANK_MAX), field="rank")
    if values.delay_days is None or not 0 <= values.delay_days <= DELAY_MAX:
        raise BusinessError(_l("Le délai est un nombre de jours entre 0 et %(max)d.", max=DELAY_MAX),
                            field="delay_days")
    others = [x for x in procedure.levels if level is None or x.id != level.id]
    if any(x.rank == values.rank for x in others):
        raise BusinessError(_l("La procédure a déjà un niveau %(rank)s.", rank=values.rank), field="rank")
    for other in others:
        if (other.rank < values.rank and other.delay_days >= values.delay_days) or \
                (other.rank > values.rank and other.delay_days <= values.delay_days):
            raise BusinessError(_l("Les délais croissent avec le rang : le niveau %(rank)s est à %(days)s jours.",
                                   rank=other.rank, days=other.delay_days), field="delay_days")
    fields = {"rank": values.rank, "label": _label(values.label), "delay_days": values.delay_days,
              "min_amount": _amount(values.min_amount),
              "letter_template": _template(values.letter_template, TemplateKind.LETTER, "letter_template"),
              "mail_template": _template(values.mail_template, TemplateKind.MAIL, "mail_template"),
              "agent_task": bool(values.agent_task), "formal_notice": bool(values.formal_notice)}
    if level is None:
        level = DunningLevel(procedure=procedure, **fields)
        session.add(level)
    else:
        for key, value in fields.items():
            setattr(level, key, value)
    session.flush()
    session.refresh(procedure, ["levels"])
    return level


def delete_level(procedure: DunningProcedure, level: DunningLevel) -> None:
    """Remove a level; a procedure keeps at least one (the runs need a first level)."""
    if len(procedure.levels) <= 1:
        raise BusinessError(_l("Une procédure garde au moins un niveau."))
    session.delete(level)
    session.flush()
    session.refresh(procedure, ["levels"])


# --- Manual blocks ---------------------------------------------------------------------------

def _readable_contract(agent: Agent, number: str | None) -> Contract:
    number = (number or "").strip()
    found = session.execute(select(Contract).where(
        Contract.number == number, scope_condition(Contract, agent=agent, permission=READ))).scalar_one_or_none() \
        if number else None
    if found is None:  # out of the agent's territories: the same answer as a missing one
        raise BusinessError(_l("Aucun contrat n° %(number)s dans votre périmètre.", number=number or "—"),
                            field="contract_number")
    return found


def add_block(*, agent: Agent, contract_number: str | None, until: date | None, reason: str | None) -> DunningBlock:
    contract = _readable_contract(agent, contract_number)
    if until is None or until < local_today():
        raise BusinessError(_l("La date de fin est aujourd'hui ou plus tard."), field="until")
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise BusinessError(_l("Donnez la raison du blocage (%(max)d caractères au plus).", max=REASON_MAX),
                            field="reason")
    block = DunningBlock(contract_id=contract.id, until=until, reason=reason, created_by_id=agent.id,
                         created_at=clock.now())
    session.add(block)
    session.flush()
    return block


def _in_scope(agent: Agent):
    return select(DunningBlock, Contract).join(Contract, Contract.id == DunningBlock.contract_id).where(
        scope_condition(Contract, agent=agent, permission=READ))


def active_blocks(*, agent: Agent) -> list[tuple[DunningBlock, Contract]]:
    """The blocks running today or later, on contracts the agent may read."""
    stmt = _in_scope(agent).where(DunningBlock.lifted_at.is_(None), DunningBlock.until >= local_today()) \
        .order_by(DunningBlock.until, DunningBlock.id)
    return [(block, contract) for block, contract in session.execute(stmt).all()]


def lift_block(*, agent: Agent, block_id: int) -> DunningBlock:
    row = session.execute(_in_scope(agent).where(DunningBlock.id == block_id)).first()
    if row is None:
        raise BusinessError(_l("Blocage introuvable ou hors de votre périmètre."))
    block = row[0]
    if block.lifted_at is None:
        block.lifted_at = clock.now()
        session.flush()
    return block

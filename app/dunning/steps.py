"""The relaunch process's own steps, as service operations and a form guard.

- ``dunning_level`` (params ``rank``, ``social_done``): apply one level of the procedure to the
  dossier — its letter, its mail — unless the invoices are paid meanwhile (``paid``), what is owed
  fell below the level's minimum (``below_min``), or a guardrail holds it (``social``: a vulnerable
  customer's formal notice waits for the social-support step). Returns what the process branches on.
- ``close_dossier`` (param ``note``): close the dossier with a final note (paid).
- ``record_payment_plan``: the plan agreed in a payment-difficulty dossier, which suspends dunning.
- The form guard ``dunning_cut_off``: a collection task cannot ask for a cut-off or a reduction the
  law forbids (app.dunning.guardrails); the page says why before the agent tries.
"""
from __future__ import annotations

import calendar
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.contracts.models import Contract, Invoice
from app.db import session
from app.documents import service as documents
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierElement, DossierObject, DossierParty, DossierStatus, ElementKind
from app.dunning import guardrails
from app.dunning.models import PaymentPlan
from app.dunning.service import invoices_owed, procedure_of
from app.parties.models import Party
from app.parties.overview import local_today


class DunningStepError(RuntimeError):
    """A relaunch step that cannot run: the message says what to fix."""


def _rank(value) -> int:
    try:
        rank = int(value)
    except (TypeError, ValueError):
        raise DunningStepError(_("Paramètre « rank » : le numéro du niveau de relance (1, 2, 3…).")) from None
    return rank


def vulnerable(dossier) -> bool:
    """A party the relaunch is addressed to (customer, payer, holder) is flagged vulnerable."""
    return bool(session.execute(select(Party.id).join(DossierParty, DossierParty.party_id == Party.id).where(
        DossierParty.dossier_id == dossier.id, DossierParty.role.in_(("customer", "payer", "holder", "co_holder")),
        Party.vulnerable.is_(True)).limit(1)).first())


def dunning_level(data: dict, params: dict) -> dict:
    dossier, agent, answers = documents.step_context(data)
    procedure = procedure_of(dossier)
    if procedure is None:
        raise DunningStepError(_("Aucune procédure de relance active pour la classification « %(type)s ».",
                                 type=dossier.dossier_type.label))
    rank = _rank(params.get("rank"))
    levels = {level.rank: level for level in procedure.levels}
    level = levels.get(rank)
    if level is None:
        raise DunningStepError(_("La procédure « %(label)s » n'a pas de niveau %(rank)s.", label=procedure.label,
                                 rank=rank))
    owed, invoices = invoices_owed(dossier)
    ranks = sorted(levels)
    following = next((levels[r] for r in ranks if r > rank), None)
    result = {"rank": rank, "label": level.label, "amount": str(owed), "invoices": len(invoices),
              "task": bool(level.agent_task), "last": following is None,
              # the wait before the next level: the gap between their delays, at least a day
              "wait": f"P{max(1, following.delay_days - level.delay_days)}D" if following else "P1D",
              "letter": None, "mail": None, "reason": ""}
    if not invoices:
        return {**result, "outcome": "paid"}
    if owed < level.min_amount:
        return {**result, "outcome": "below_min",
                "reason": _("Reste dû %(owed)s € sous le seuil du niveau (%(minimum)s €) : niveau passé.",
                            owed=owed, minimum=level.min_amount)}
    if level.formal_notice:
        verdict = guardrails.formal_notice(vulnerable=vulnerable(dossier),
                                           social_step_done=bool(params.get("social_done")))
        if not verdict.allowed:
            return {**result, "outcome": "social", "reason": verdict.reason}
    if level.letter_template:
        letter = documents.generate(dossier=dossier, template_code=level.letter_template, agent=agent,
                                    answers=answers, convert=False)
        result["letter"] = letter.id
    if level.mail_template:
        from app.mails import service as mails

        mail = mails.run_operation(data, {"template": level.mail_template, "if_email": True,
                                          **({"attach": level.letter_template} if level.letter_template else {})})
        result["mail"] = mail.get("mail_id") if isinstance(mail, dict) else None
    dossier.dunning_rank = max(rank, dossier.dunning_rank or 0)  # the funnel of supervision counts it
    audit.record("dunning_level", obj=dossier, data={"rank": rank, "amount": str(owed)})
    return {**result, "outcome": "done"}


def close_dossier(data: dict, params: dict) -> dict:
    """Close the dossier the process runs in, with a final note (``note``; a default otherwise)."""
    dossier, agent, _answers = documents.step_context(data)
    note = params.get("note") if isinstance(params.get("note"), str) and params.get("note") else \
        _("Factures réglées : relance terminée, dossier clos.")
    session.add(DossierElement(dossier_id=dossier.id, kind=ElementKind.NOTE, title=_("Clôture"), body=note[:2000],
                               created_by_id=agent.id if agent else None, created_at=clock.now()))
    if dossier.status != DossierStatus.CLOSED:
        dossiers.set_status(dossier, DossierStatus.CLOSED)
        if procedure_of(dossier) is not None:  # a relaunch closes here when it is paid: the funnel's last stage
            dossier.close_reason = "paid"
    session.flush()
    return {"closed": True}


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _contract_of(data: dict, dossier) -> Contract | None:
    """The dossier's contract: the one its process started with, else that of its first invoice."""
    context = data.get("context") or {}
    contract = session.get(Contract, context.get("contract_id") or 0)
    if contract is None:
        contract = session.execute(
            select(Contract).join(Invoice, Invoice.contract_id == Contract.id)
            .join(DossierObject, DossierObject.object_id == Invoice.id)
            .where(DossierObject.dossier_id == dossier.id, DossierObject.object_type == "invoice")
            .order_by(Invoice.id).limit(1)).scalar_one_or_none()
    return contract


def record_payment_plan(data: dict, params: dict) -> dict:
    """Record the plan the customer accepted (answers ``instalments``, ``first_due_on``, and
    ``accepted`` when the step asks): monthly instalments, the contract of the dossier. While it
    runs, dunning leaves the contract alone; a refused plan records nothing."""
    dossier, _agent, answers = documents.step_context(data)
    if answers.get("accepted") is False:  # the customer turned the plan down: nothing suspends dunning
        return {"skipped": "refused"}
    contract = _contract_of(data, dossier)
    if contract is None:  # nothing to suspend: the plan stays in the dossier's answers and its letter
        return {"skipped": "no_contract"}
    try:
        count = int(answers.get("instalments"))
        first = date.fromisoformat(str(answers.get("first_due_on")))
    except (TypeError, ValueError):
        raise DunningStepError(_("L'échéancier demande un nombre d'échéances et la date de la première.")) from None
    plan = PaymentPlan(contract_id=contract.id, starts_on=min(first, local_today()),
                       ends_on=_add_months(first, max(count, 1) - 1), instalments=count, dossier_id=dossier.id,
                       created_at=clock.now())
    session.add(plan)
    session.flush()
    return {"plan_id": plan.id, "ends_on": plan.ends_on.isoformat()}


# --- The form guard of collection tasks -------------------------------------------------------

CUT_OFF, REDUCTION = "coupure", "reduction"


def _verdicts(data: dict) -> dict[str, guardrails.Verdict]:
    context = data.get("context") or {}
    dossier = session.get(Dossier, context.get("dossier_id") or 0)
    contract = _contract_of(data, dossier) if dossier is not None else None
    if contract is None:  # no premises to check the law against: no measure may be asked
        unknown = guardrails.Verdict(False, str(_("Aucun contrat dans ce dossier : la loi applicable au point de "
                                                  "desserte ne peut pas être vérifiée, aucune coupure ni réduction.")))
        return {CUT_OFF: unknown, REDUCTION: unknown}
    point, today = contract.service_point, local_today()
    return {CUT_OFF: guardrails.cut_off(kind=point.kind, main_residence=point.main_residence, day=today),
            REDUCTION: guardrails.reduction(kind=point.kind, main_residence=point.main_residence, day=today)}


def explain(data: dict) -> list[str]:
    """What the task page shows before the agent answers: the measures the law forbids today."""
    return [verdict.reason for verdict in _verdicts(data).values() if not verdict.allowed and verdict.reason]


def check(data: dict, answers: dict) -> dict[str, str]:
    """Refuse an answer asking for a measure the law forbids (field ``measure``)."""
    wanted = answers.get("measure")
    verdict = _verdicts(data).get(wanted) if wanted in (CUT_OFF, REDUCTION) else None
    return {"measure": verdict.reason} if verdict is not None and not verdict.allowed else {}


def init_app() -> None:
    from app.processes import engine

    engine.register_operation("dunning_level", dunning_level)
    engine.register_operation("close_dossier", close_dossier)
    engine.register_operation("record_payment_plan", record_payment_plan)
    engine.register_form_guard("dunning_cut_off", check=check, explain=explain)


"""The dunning run: which contracts to chase today, and opening one relaunch dossier for each.

**Selection.** An invoice is overdue when it is still owed (``contracts.service.unpaid_condition``)
and its due date is past; dunning takes it once the procedure's grace and its first level's delay
are over too. Invoices are grouped per contract. A contract is left out, with its reason, when:

1. a dossier of the procedure's classification is already open on it (``already_open``);
2. a manual block runs on that day (``blocked``);
3. a payment plan runs on that day (``payment_plan``);
4. every such invoice has a dispute dossier open on it (``dispute``; a disputed invoice is left
   out of the group, the others are chased);
5. what remains owed is below the first level's minimum (``below_min``).

The selection is "overdue and without an open relaunch dossier", not "due today": a day without a
run is caught up by the next one.

**Exactly once.** Each selected contract gets its dossier in a transaction of its own, which also
writes the contract's ``dunning_run_item``. The dossier's classification allows one open dossier
per contract (a partial unique index), so two workers, a worker and an agent, or two runs cannot
open two; a chunk delivered again (its worker died) skips the contracts it already did.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, case, exists, func, literal, not_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.audit import service as audit
from app.contacts import links as link_rules
from app.contacts import objects
from app.contacts.models import PartyLinkRole
from app.contracts.models import Contract, ContractParty, ContractRole, Invoice
from app.contracts.service import unpaid_condition
from app.db import Money, session
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierObject, DossierOrigin, DossierStatus, DossierType
from app.dunning.models import (
    DunningBlock,
    DunningProcedure,
    DunningRun,
    DunningRunChunk,
    DunningRunItem,
    ItemOutcome,
    PaymentPlan,
    RunStatus,
)
from app.errors import BusinessError
from app.security.models import Agent
from app.security.scope import scope_condition

log = logging.getLogger(__name__)

REASONS = ("already_open", "blocked", "payment_plan", "dispute", "below_min")
CHUNK_SIZE = 200


def active_procedure() -> DunningProcedure | None:
    return session.execute(select(DunningProcedure).where(DunningProcedure.active.is_(True))
                           .order_by(DunningProcedure.id).limit(1)).scalar_one_or_none()


def procedure_of(dossier: Dossier) -> DunningProcedure | None:
    """The procedure a relaunch dossier follows: the active one of its classification."""
    return session.execute(select(DunningProcedure).where(
        DunningProcedure.dossier_type_id == dossier.dossier_type_id, DunningProcedure.active.is_(True))
        .order_by(DunningProcedure.id).limit(1)).scalar_one_or_none()


# --- Selection ---------------------------------------------------------------------------------

def cutoff(procedure: DunningProcedure, as_of: date) -> date:
    """Invoices due before this day are chased on as_of: grace and first delay are over."""
    first = procedure.levels[0].delay_days if procedure.levels else 0
    return as_of - timedelta(days=procedure.grace_days + first)


def disputed(invoice_id) -> object:
    """An open dossier of a classification that suspends dunning (a dispute) is on the invoice."""
    return exists(select(DossierObject.dossier_id)
                  .join(Dossier, Dossier.id == DossierObject.dossier_id)
                  .join(DossierType, DossierType.id == Dossier.dossier_type_id)
                  .where(DossierObject.object_type == "invoice", DossierObject.object_id == invoice_id,
                         Dossier.status != DossierStatus.CLOSED, DossierType.suspends_dunning.is_(True)))


def chased_invoices(procedure: DunningProcedure, as_of: date, contract_id: int | None = None):
    """The statement of the invoices chased on as_of (optionally of one contract), disputed ones out."""
    stmt = select(Invoice).where(unpaid_condition(), Invoice.due_on < cutoff(procedure, as_of),
                                 not_(disputed(Invoice.id)))
    if contract_id is not None:
        stmt = stmt.where(Invoice.contract_id == contract_id)
    return stmt.order_by(Invoice.due_on, Invoice.id)


def _evaluation(procedure: DunningProcedure, as_of: date, contract_ids: Iterable[int] | None = None):
    """One row per contract with an invoice past the cutoff: contract id, amount chased, invoices
    chased, oldest due date, and the reason it is left out (None: to open)."""
    is_disputed = disputed(Invoice.id)
    balance = Invoice.amount - Invoice.amount_paid
    grouped = (select(Invoice.contract_id.label("contract_id"),
                      type_coerce(func.sum(case((is_disputed, literal(0)), else_=balance)), Money()).label("amount"),
                      func.count(case((is_disputed, None), else_=Invoice.id)).label("invoices"),
                      func.min(Invoice.due_on).label("since"))
               .where(unpaid_condition(), Invoice.due_on < cutoff(procedure, as_of)))
    if contract_ids is not None:
        grouped = grouped.where(Invoice.contract_id.in_(list(contract_ids)))
    grouped = grouped.group_by(Invoice.contract_id).subquery()
    minimum = procedure.levels[0].min_amount if procedure.levels else Decimal("0.00")
    reason = case(
        (exists(select(Dossier.id).where(Dossier.dossier_type_id == procedure.dossier_type_id,
                                         Dossier.exclusive_contract_id == grouped.c.contract_id,
                                         Dossier.status != DossierStatus.CLOSED)), "already_open"),
        (exists(select(DunningBlock.id).where(DunningBlock.contract_id == grouped.c.contract_id,
                                              DunningBlock.lifted_at.is_(None), DunningBlock.until >= as_of)),
         "blocked"),
        (exists(select(PaymentPlan.id).where(PaymentPlan.contract_id == grouped.c.contract_id,
                                             PaymentPlan.cancelled_at.is_(None), PaymentPlan.starts_on <= as_of,
                                             PaymentPlan.ends_on >= as_of)), "payment_plan"),
        (grouped.c.invoices == 0, "dispute"),
        (grouped.c.amount < literal(minimum, Money()), "below_min"),
        else_=None)
    return select(grouped.c.contract_id, grouped.c.amount, grouped.c.invoices, grouped.c.since,
                  reason.label("reason"))


@dataclass(frozen=True)
class Selection:
    to_open: list[int]  # contract ids, in id order
    skipped: dict[str, int]  # reason → contracts


def select_contracts(procedure: DunningProcedure, as_of: date) -> Selection:
    rows = _evaluation(procedure, as_of).subquery()
    to_open = list(session.execute(select(rows.c.contract_id).where(rows.c.reason.is_(None))
                                   .order_by(rows.c.contract_id)).scalars())
    skipped = {reason: count for reason, count in session.execute(
        select(rows.c.reason, func.count()).where(rows.c.reason.is_not(None)).group_by(rows.c.reason))}
    return Selection(to_open=to_open, skipped={r: skipped.get(r, 0) for r in REASONS})


@dataclass(frozen=True)
class Planned:
    """A line of the dry run: a contract and what the run would do with it."""
    contract_id: int
    contract_number: str
    amount: Decimal
    invoices: int
    since: date
    reason: str | None  # None: a dossier would be opened


def dry_run(procedure: DunningProcedure, as_of: date, *, limit: int | None = None,
            reader: Agent | None = None) -> list[Planned]:
    """What a run on as_of would do, contract by contract (those it would open first); writes
    nothing. reader: only the contracts this agent may read (the run itself covers them all)."""
    rows = _evaluation(procedure, as_of).subquery()
    stmt = (select(rows, Contract.number).join(Contract, Contract.id == rows.c.contract_id)
            .order_by(rows.c.reason.is_not(None), rows.c.reason, rows.c.contract_id))
    if reader is not None:
        stmt = stmt.where(scope_condition(Contract, agent=reader, permission="party.read"))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Planned(r.contract_id, r.number, r.amount, r.invoices, r.since, r.reason)
            for r in session.execute(stmt)]


# --- Opening one dossier -----------------------------------------------------------------------

PARTY_ROLES = {ContractRole.PAYER: PartyLinkRole.PAYER, ContractRole.HOLDER: PartyLinkRole.HOLDER,
               ContractRole.CO_HOLDER: PartyLinkRole.CO_HOLDER}


def _links(contract: Contract, invoices: list[Invoice]) -> link_rules.Links:
    parties = session.execute(select(ContractParty).where(
        ContractParty.contract_id == contract.id, ContractParty.role.in_(PARTY_ROLES))
        .order_by(ContractParty.role, ContractParty.party_id)).scalars().all()
    return link_rules.Links(
        parties=[link_rules.PartyLink(p.party_id, PARTY_ROLES[p.role], "default") for p in parties],
        objects=[link_rules.ObjectLink(objects.Ref("contract", contract.id), "default")]
        + [link_rules.ObjectLink(objects.Ref("invoice", i.id), "default") for i in invoices])


def open_relaunch(procedure: DunningProcedure, as_of: date, contract_id: int) -> Dossier | str:
    """Open the relaunch dossier of one contract and start its process, if the contract is still
    to be chased (else the reason it is not). The caller commits; AlreadyOpen when another
    transaction opened one at the same instant."""
    row = session.execute(_evaluation(procedure, as_of, [contract_id])).one_or_none()
    if row is None:
        return "no_longer_due"
    if row.reason is not None:
        return row.reason
    contract = session.get(Contract, contract_id)
    invoices = list(session.execute(chased_invoices(procedure, as_of, contract_id)).scalars())
    subject = _("Relance d'impayé — contrat %(number)s", number=contract.number)
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=procedure.dossier_type_id,
                                    links=_links(contract, invoices), subject=subject,
                                    origin=DossierOrigin.AUTOMATIC)
    dossier_type = dossier.dossier_type
    if not dossier_type.auto_start and dossier_type.process_key:
        from app.processes import service as processes

        processes.start(key=dossier_type.process_key, agent=None, dossier=dossier)
    return dossier


# --- Runs --------------------------------------------------------------------------------------

def start_run(*, as_of: date, trigger: str, chunk_size: int | None = None) -> tuple[DunningRun, list[list[int]]]:
    """Record a run, its selection and its chunks of contract ids (DUNNING_CHUNK_SIZE each); return
    the run and the chunks. The caller commits, then hands the chunks to workers (or works them)."""
    chunk_size = chunk_size or current_app.config.get("DUNNING_CHUNK_SIZE", CHUNK_SIZE)
    procedure = active_procedure()
    if procedure is None:
        raise BusinessError(_("Aucune procédure de relance active : rien à lancer."))
    if not procedure.levels:
        raise BusinessError(_("La procédure de relance « %(label)s » n'a aucun niveau.", label=procedure.label))
    if not procedure.dossier_type.one_per_contract:  # the database constraint is what makes a run exact
        raise BusinessError(_("La classification « %(type)s » des dossiers de relance doit n'admettre qu'un "
                              "dossier ouvert par contrat.", type=procedure.dossier_type.label))
    selection = select_contracts(procedure, as_of)
    chunks = [selection.to_open[i:i + chunk_size] for i in range(0, len(selection.to_open), chunk_size)]
    run = DunningRun(procedure_id=procedure.id, as_of=as_of, trigger=trigger[:60], status=RunStatus.RUNNING,
                     started_at=clock.now(), selected=len(selection.to_open), skipped=selection.skipped,
                     chunks=len(chunks))
    session.add(run)
    session.flush()
    session.add_all(DunningRunChunk(run_id=run.id, number=number, contract_ids=ids)
                    for number, ids in enumerate(chunks))
    audit.record("start", obj=run, data={"as_of": as_of.isoformat(),
                                                "selected": run.selected, "skipped": selection.skipped})
    if not chunks:
        run.status, run.finished_at = RunStatus.DONE, clock.now()
    return run, chunks


def _record(run_id: int, contract_id: int, chunk: int, outcome: str, dossier_id: int | None = None,
            detail: str | None = None) -> None:
    session.add(DunningRunItem(run_id=run_id, contract_id=contract_id, chunk=chunk, outcome=outcome,
                               dossier_id=dossier_id, detail=detail, done_at=clock.now()))
    session.flush()


def _done(run_id: int) -> set[int]:
    return set(session.execute(select(DunningRunItem.contract_id).where(DunningRunItem.run_id == run_id)).scalars())


def run_chunk(run_id: int, chunk: int, contract_ids: list[int], *,
              after_each: Callable[[], None] | None = None) -> dict[str, int]:
    """Open the dossiers of one chunk, one transaction per contract (committed here). A contract
    this run already did is skipped, so a chunk delivered twice does nothing twice. after_each: a
    fault-injection hook, run after a dossier is written and before its commit."""
    run = session.get(DunningRun, run_id)
    if run is None:
        return {}
    procedure = session.get(DunningProcedure, run.procedure_id)
    as_of = run.as_of
    counts = dict.fromkeys(ItemOutcome.ALL, 0)
    done = _done(run_id)
    session.commit()
    for contract_id in contract_ids:
        if contract_id in done:
            continue
        try:
            result = open_relaunch(procedure, as_of, contract_id)
            if isinstance(result, Dossier):
                outcome = ItemOutcome.OPENED
                _record(run_id, contract_id, chunk, outcome, result.id)
            else:
                outcome = ItemOutcome.ALREADY_OPEN if result == "already_open" else ItemOutcome.NO_LONGER_DUE
                _record(run_id, contract_id, chunk, outcome, detail=result)
            if after_each is not None:
                after_each()
            session.commit()
        except (dossiers.AlreadyOpen, IntegrityError):
            session.rollback()
            outcome = _settle_failure(run_id, contract_id, chunk, ItemOutcome.ALREADY_OPEN, None)
        except Exception as exc:  # noqa: BLE001 (one contract's failure must not stop the others)
            session.rollback()
            log.exception("dunning run %s: contract %s failed", run_id, contract_id)
            outcome = _settle_failure(run_id, contract_id, chunk, ItemOutcome.FAILED, str(exc)[:2000])
        if outcome:
            counts[outcome] += 1
    session.execute(update(DunningRunChunk).where(DunningRunChunk.run_id == run_id, DunningRunChunk.number == chunk)
                    .values(done_at=clock.now()))
    finish_if_done(run_id)
    session.commit()
    return counts


def _settle_failure(run_id: int, contract_id: int, chunk: int, outcome: str, detail: str | None) -> str | None:
    """Record a contract that could not be opened, in a transaction of its own; None when this run
    recorded it meanwhile (a chunk delivered twice, running at once)."""
    try:
        _record(run_id, contract_id, chunk, outcome, detail=detail)
        session.commit()
        return outcome
    except IntegrityError:
        session.rollback()
        return None


def finish_if_done(run_id: int) -> None:
    """Mark the run done once every selected contract has its item (the last chunk to end does it)."""
    run = session.get(DunningRun, run_id)
    if run is None or run.status != RunStatus.RUNNING:
        return
    count = session.execute(select(func.count()).where(DunningRunItem.run_id == run_id)).scalar_one()
    if count >= run.selected:
        run.status, run.finished_at = RunStatus.DONE, clock.now()
        session.flush()


def run_of_day(as_of: date) -> DunningRun | None:
    return session.execute(select(DunningRun).where(DunningRun.as_of == as_of).order_by(DunningRun.id)
                           .limit(1)).scalar_one_or_none()


def dispatch(*, as_of: date, trigger: str) -> dict:
    """Record a run and queue its chunks for the Celery workers (committed first, so a worker finds
    the run). The chunks carry their contract ids: a chunk delivered again redoes only what is left."""
    from workers.tasks import dunning_chunk

    run, chunks = start_run(as_of=as_of, trigger=trigger)
    session.execute(update(DunningRunChunk).where(DunningRunChunk.run_id == run.id).values(dispatched_at=clock.now()))
    session.commit()
    for number, contract_ids in enumerate(chunks):
        dunning_chunk.delay(run.id, number, contract_ids)
    return {"run": run.id, "selected": run.selected, "chunks": len(chunks)}


def resume_stalled(*, older_than: timedelta) -> int:
    """Hand out again the chunks of running runs handed out longer ago than older_than and not done,
    when the run has written no item for as long: their message went down with a worker on a broker
    that does not redeliver (Redis does, after its visibility timeout; a chunk run twice does nothing
    twice). Chunks merely queued behind busy workers are left alone. Returns how many were handed out."""
    from workers.tasks import dunning_chunk

    cutoff = clock.now() - older_than
    # A run still writing items is only queued behind its workers: its waiting chunks are not lost.
    progressing = select(DunningRunItem.run_id).where(DunningRunItem.run_id == DunningRun.id,
                                                      DunningRunItem.done_at > cutoff).exists()
    stalled = session.execute(select(DunningRunChunk).join(DunningRun, DunningRun.id == DunningRunChunk.run_id).where(
        DunningRun.status == RunStatus.RUNNING, DunningRunChunk.done_at.is_(None), ~progressing,
        DunningRunChunk.dispatched_at <= cutoff).order_by(DunningRunChunk.id)).scalars().all()
    for chunk in stalled:
        chunk.dispatched_at = clock.now()
    session.commit()
    for chunk in stalled:
        dunning_chunk.delay(chunk.run_id, chunk.number, list(chunk.contract_ids))
    return len(stalled)


def run_inline(*, as_of: date, trigger: str) -> DunningRun:
    """A whole run in this process (the command line on the embedded default, the tests)."""
    run, chunks = start_run(as_of=as_of, trigger=trigger)
    session.commit()
    for number, contract_ids in enumerate(chunks):
        run_chunk(run.id, number, contract_ids)
    session.refresh(run)
    return run


@dataclass(frozen=True)
class RunCounts:
    run: DunningRun
    opened: int
    already_open: int
    no_longer_due: int
    failed: int

    @property
    def done(self) -> int:
        return self.opened + self.already_open + self.no_longer_due + self.failed

    @property
    def percent(self) -> int:
        return 100 if not self.run.selected else min(100, round(100 * self.done / self.run.selected))


def counts_of(run: DunningRun) -> RunCounts:
    found = dict(session.execute(select(DunningRunItem.outcome, func.count())
                                 .where(DunningRunItem.run_id == run.id).group_by(DunningRunItem.outcome)).all())
    return RunCounts(run, *(found.get(o, 0) for o in ItemOutcome.ALL))


def recent_runs(limit: int = 20) -> list[RunCounts]:
    runs = session.execute(select(DunningRun).order_by(DunningRun.id.desc()).limit(limit)).scalars().all()
    return [counts_of(run) for run in runs]


def invoices_owed(dossier: Dossier) -> tuple[Decimal, list[Invoice]]:
    """What is still owed on the invoices a relaunch dossier chases (a partial payment lowers it):
    its invoices; a dossier opened by hand on a contract alone chases the contract's overdue ones."""
    linked = select(DossierObject.object_id).where(DossierObject.dossier_id == dossier.id,
                                                   DossierObject.object_type == "invoice")
    if session.execute(linked.limit(1)).first() is not None:
        chased = Invoice.id.in_(linked)
    else:
        from app.parties.overview import local_today

        contracts = select(DossierObject.object_id).where(DossierObject.dossier_id == dossier.id,
                                                          DossierObject.object_type == "contract")
        chased = and_(Invoice.contract_id.in_(contracts), Invoice.due_on < local_today())
    owed = list(session.execute(select(Invoice).where(chased, unpaid_condition())
                                .order_by(Invoice.due_on, Invoice.id)).scalars())
    return sum((i.amount - i.amount_paid for i in owed), Decimal("0.00")), owed


PAID_MESSAGE = "facture_payee"


def settle_paid(contract_ids: Iterable[int], *, source: str) -> int:
    """After payments are recorded (billing import, master-data API): each open relaunch dossier of
    these contracts whose invoices are now all paid gets the "facture payée" message, which ends its
    process and closes it (a partial payment only lowers what the next letter asks). Returns how
    many were told."""
    from app.processes import service as processes

    ids = sorted(set(contract_ids))
    told = 0
    for start in range(0, len(ids), 500):
        found = session.execute(select(Dossier).join(DossierType, DossierType.id == Dossier.dossier_type_id).where(
            Dossier.exclusive_contract_id.in_(ids[start:start + 500]), Dossier.status != DossierStatus.CLOSED,
            exists(select(DunningProcedure.id).where(DunningProcedure.dossier_type_id == DossierType.id)))
        ).scalars().all()
        for dossier in found:
            _owed, invoices = invoices_owed(dossier)
            instance = processes.running_on(dossier_id=dossier.id)
            if invoices or instance is None:
                continue
            processes.send_message(instance_id=instance.id, name=PAID_MESSAGE, payload={}, source=source)
            told += 1
    return told

"""Dunning (app.dunning): which contracts a run chases and why the others are left out, one dossier
per contract whatever happens, the levels of the procedure applied by the relaunch process (a
partial payment lowering the next letter), the legal guardrails enforced in its steps, and a
payment closing the dossier."""
from __future__ import annotations

import pickle
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit.models import AuditEntry
from app.contacts.links import Links, ObjectLink, PartyLink
from app.contacts.objects import Ref
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierElement, DossierOrigin, DossierStatus, ElementKind
from app.dunning import service as dunning
from app.dunning import steps
from app.dunning.models import DunningBlock, DunningRun, DunningRunChunk, DunningRunItem, ItemOutcome, PaymentPlan
from app.processes import service as processes
from app.processes.models import InstanceStatus, ProcessInstance, ProcessMessage, ProcessTimer
from app.seed.referentials import seed_referentials
from tests.conftest import csrf_token
from tests.integration.contacts_world import contract_in, invoice
from tests.integration.test_contacts_hardening import _fresh_csrf
from tests.integration.test_documents import docx_text
from tests.integration.test_process_instances import ready_tasks, the_task, world_fixture  # noqa: F401

AS_OF = date(2026, 3, 16)  # the world's today; with 7 days' grace, invoices due before 9 March are chased


@pytest.fixture(name="dun")
def dun_fixture(world):
    seed_referentials()
    session.commit()
    world.procedure = dunning.active_procedure()
    world.relaunch = world.procedure.dossier_type
    return world


def owing(world, number: str, amount: str, due: date, *, kind: str = "water", main_residence: bool = True,
          holder=None, invoices: int = 1):
    contract = contract_in(world.places["lyon"], number, [(holder or world.marc, "holder")], kind=kind,
                           main_residence=main_residence)
    for n in range(invoices):
        invoice(contract, f"{number}-F{n}", issued=due - timedelta(days=30), due=due, amount=amount)
    session.commit()
    return contract


def planned(world, as_of: date = AS_OF) -> dict[str, dunning.Planned]:
    return {line.contract_number: line for line in dunning.dry_run(world.procedure, as_of)}


def dispute_on(world, *invoice_ids: int) -> Dossier:
    kind = dossiers.type_by_code("CONTESTATION_RELEVE")
    found = dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(world.marc.id, "customer")],
        objects=[ObjectLink(Ref("invoice", i)) for i in invoice_ids]))
    session.commit()
    return found


def relaunch_of(contract) -> Dossier:
    return session.execute(select(Dossier).where(Dossier.exclusive_contract_id == contract.id)
                           .order_by(Dossier.id.desc())).scalars().first()


def letters_of(dossier) -> list[DossierElement]:
    return list(session.execute(select(DossierElement).where(
        DossierElement.dossier_id == dossier.id, DossierElement.kind == ElementKind.LETTER)
        .order_by(DossierElement.id)).scalars())


def fire_timers(frozen_clock, days: int) -> None:
    """Let days pass: the waiting timers fall due (the engine dates them on the real clock) and fire."""
    frozen_clock.advance(days=days)
    for timer in session.execute(select(ProcessTimer)).scalars():
        timer.due_at = frozen_clock.current - timedelta(seconds=1)
    session.commit()
    processes.fire_due_timers()


# --- Selection ---------------------------------------------------------------------------------

def test_each_exclusion_threshold_and_the_grace_decide_who_is_chased(dun):
    lines = planned(dun)
    helene = lines["CW-EAU-1"]  # F-1 (84.20, due 5 Jan) and F-2 (30.00 left, due 1 Mar) grouped; F-3 not due
    assert (helene.reason, helene.amount, helene.invoices, helene.since) == (None, Decimal("114.20"), 2,
                                                                             date(2026, 1, 5))

    blocked, lifted, expired = (owing(dun, n, "50.00", date(2026, 2, 1)) for n in ("BLK-1", "BLK-2", "BLK-3"))
    session.add_all([
        DunningBlock(contract_id=blocked.id, until=AS_OF, reason="Réclamation en cours"),  # the last day included
        DunningBlock(contract_id=lifted.id, until=date(2026, 6, 1), reason="Levé", lifted_at=datetime.now(UTC)),
        DunningBlock(contract_id=expired.id, until=AS_OF - timedelta(days=1), reason="Échu"),
    ])
    running, ended, cancelled = (owing(dun, n, "50.00", date(2026, 2, 1)) for n in ("PLN-1", "PLN-2", "PLN-3"))
    session.add_all([
        PaymentPlan(contract_id=running.id, starts_on=date(2026, 2, 1), ends_on=AS_OF, instalments=3),
        PaymentPlan(contract_id=ended.id, starts_on=date(2025, 11, 1), ends_on=date(2026, 3, 15), instalments=5),
        PaymentPlan(contract_id=cancelled.id, starts_on=date(2026, 2, 1), ends_on=date(2026, 8, 1), instalments=6,
                    cancelled_at=datetime.now(UTC)),
    ])
    all_disputed = owing(dun, "DSP-1", "70.00", date(2026, 2, 1))
    partly_disputed = owing(dun, "DSP-2", "70.00", date(2026, 2, 1), invoices=2)
    closed_dispute = owing(dun, "DSP-3", "70.00", date(2026, 2, 1))
    dispute_on(dun, *[i.id for i in _invoices(all_disputed)], _invoices(partly_disputed)[0].id)
    finished = dispute_on(dun, _invoices(closed_dispute)[0].id)
    finished.status = DossierStatus.CLOSED
    owing(dun, "MIN-1", "4.99", date(2026, 2, 1))
    owing(dun, "MIN-2", "5.00", date(2026, 2, 1))
    owing(dun, "GRC-1", "40.00", date(2026, 3, 9))  # due + 7 days of grace = 16 March: not yet over
    owing(dun, "GRC-2", "40.00", date(2026, 3, 8))
    session.commit()

    lines = planned(dun)
    reasons = {number: lines[number].reason if number in lines else "absent" for number in (
        "BLK-1", "BLK-2", "BLK-3", "PLN-1", "PLN-2", "PLN-3", "DSP-1", "DSP-2", "DSP-3", "MIN-1", "MIN-2",
        "GRC-1", "GRC-2", "CW-EAU-2")}
    assert reasons == {
        "BLK-1": "blocked", "BLK-2": None, "BLK-3": None,
        "PLN-1": "payment_plan", "PLN-2": None, "PLN-3": None,
        "DSP-1": "dispute", "DSP-2": None, "DSP-3": None,
        "MIN-1": "below_min", "MIN-2": None,
        "GRC-1": "absent", "GRC-2": None,
        "CW-EAU-2": "absent",  # Bernard owes nothing
    }
    assert (lines["DSP-2"].invoices, lines["DSP-2"].amount) == (1, Decimal("70.00"))  # the disputed one left out
    assert planned(dun, AS_OF + timedelta(days=1))["GRC-1"].reason is None  # a day later, the grace is over

    selection = dunning.select_contracts(dun.procedure, AS_OF)
    assert selection.skipped == {"already_open": 0, "blocked": 1, "payment_plan": 1, "dispute": 1, "below_min": 1}
    assert len(selection.to_open) == sum(1 for line in lines.values() if line.reason is None) == 9


def _invoices(contract):
    from app.contracts.models import Invoice

    return list(session.execute(select(Invoice).where(Invoice.contract_id == contract.id).order_by(Invoice.id))
                .scalars())


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_dry_run_lists_what_would_happen_and_writes_nothing(dun, app):
    owing(dun, "BLK-9", "50.00", date(2026, 2, 1))
    session.commit()
    before = {m: _count(m) for m in (Dossier, DunningRun, DunningRunItem, AuditEntry, ProcessInstance)}
    result = app.test_cli_runner().invoke(args=["dunning", "run", "--dry-run", "--date", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    assert "CW-EAU-1\t114.20\t2 facture(s)\tdepuis le 2026-01-05\touvrir" in result.output
    assert "2 dossier(s) à ouvrir" in result.output and "Rien n'a été écrit" in result.output
    assert {m: _count(m) for m in before} == before


# --- The run: one dossier per contract ---------------------------------------------------------

def test_a_run_opens_one_relaunch_per_contract_and_starts_its_process(dun):
    run = dunning.run_inline(as_of=AS_OF, trigger="test")
    counts = dunning.counts_of(run)
    assert (run.status, run.selected, counts.opened, counts.failed) == ("done", 1, 1, 0)
    assert run.finished_at is not None

    dossier = relaunch_of(dun.contract)
    assert (dossier.origin, dossier.created_by_id, dossier.dossier_type_id) == (DossierOrigin.AUTOMATIC, None,
                                                                                dun.relaunch.id)
    assert {(p.party_id, p.role) for p in dossier.parties} == {
        (dun.paul.id, "payer"), (dun.helene.id, "holder"), (dun.marc.id, "co_holder")}
    assert {(o.object_type, o.object_id) for o in dossier.objects} == {
        ("contract", dun.contract.id), ("invoice", dun.invoices["F-1"].id), ("invoice", dun.invoices["F-2"].id)}
    instance = processes.running_on(dossier_id=dossier.id)
    assert instance.status == InstanceStatus.WAITING and instance.started_by_id is None
    timer = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalar_one()
    assert timer.element_id == "wait"
    # level 2 comes 15 days after level 1 (the engine counts on the real clock; tests move the timers)
    assert abs(timer.due_at - (datetime.now(UTC) + timedelta(days=15))) < timedelta(minutes=5)
    [letter] = letters_of(dossier)
    text = docx_text(letter.file.content)
    assert "114,20" in text and "CW-F-1, CW-F-2" in text and "5 janvier 2026" in text

    again = dunning.run_inline(as_of=AS_OF, trigger="test")  # the same day again: nothing to open
    assert (again.selected, again.skipped["already_open"]) == (0, 1)
    assert session.execute(select(func.count()).where(Dossier.exclusive_contract_id == dun.contract.id)
                           ).scalar_one() == 1


def test_the_database_refuses_a_second_open_relaunch_of_a_contract(dun):
    dunning.run_inline(as_of=AS_OF, trigger="test")
    first = relaunch_of(dun.contract)
    links = Links(parties=[PartyLink(dun.paul.id, "payer")],
                  objects=[ObjectLink(Ref("invoice", dun.invoices["F-1"].id))])  # the contract, through its invoice
    with pytest.raises(dossiers.AlreadyOpen, match=first.reference):
        dossiers.open_dossier(agent=None, dossier_type_id=dun.relaunch.id, links=links)
    session.rollback()

    savepoint = session.begin_nested()
    session.add(Dossier(reference="DOS-2026-999999", dossier_type_id=dun.relaunch.id, subject="Doublon",
                        status=DossierStatus.OPEN, origin=DossierOrigin.AUTOMATIC,
                        exclusive_contract_id=dun.contract.id))
    with pytest.raises(IntegrityError):  # the constraint itself, not only the service's check
        session.flush()
    savepoint.rollback()

    dossiers.set_status(first, DossierStatus.CLOSED)
    session.commit()
    second = dossiers.open_dossier(agent=None, dossier_type_id=dun.relaunch.id, links=links)
    session.commit()
    assert second.exclusive_contract_id == dun.contract.id
    with pytest.raises(dossiers.AlreadyOpen):  # reopening the first while the second is open
        dossiers.set_status(first, DossierStatus.IN_PROGRESS)
    session.rollback()


def test_a_chunk_delivered_twice_opens_and_counts_nothing_twice(dun):
    owing(dun, "TWICE-1", "60.00", date(2026, 2, 1))
    run, chunks = dunning.start_run(as_of=AS_OF, trigger="test", chunk_size=1)
    session.commit()
    assert run.chunks == len(chunks) == 2
    first = dunning.run_chunk(run.id, 0, chunks[0])
    assert first["opened"] == 1
    session.refresh(run)
    assert run.status == "running" and dunning.counts_of(run).percent == 50
    assert dunning.run_chunk(run.id, 0, chunks[0]) == dict.fromkeys(ItemOutcome.ALL, 0)  # redelivered
    dunning.run_chunk(run.id, 1, chunks[1])
    session.refresh(run)
    assert run.status == "done" and dunning.counts_of(run).opened == 2
    assert _count(DunningRunItem) == 2 and _count(Dossier) == 2


def test_the_resume_job_hands_out_again_only_the_chunks_of_a_run_that_stopped(dun, frozen_clock, monkeypatch):
    from workers import tasks

    sent = []
    monkeypatch.setattr(tasks.dunning_chunk, "delay", lambda run_id, number, ids: sent.append(number))
    owing(dun, "RESUME-1", "60.00", date(2026, 2, 1))
    owing(dun, "RESUME-2", "60.00", date(2026, 2, 1))
    run, chunks = dunning.start_run(as_of=AS_OF, trigger="test", chunk_size=1)
    for chunk in session.execute(select(DunningRunChunk).where(DunningRunChunk.run_id == run.id)).scalars():
        chunk.dispatched_at = frozen_clock.now()
    session.commit()
    assert len(chunks) == 3
    dunning.run_chunk(run.id, 0, chunks[0])  # the workers are at it; chunks 1 and 2 wait in the queue
    frozen_clock.advance(minutes=14)
    assert dunning.resume_stalled(older_than=timedelta(minutes=15)) == 0 and sent == []
    frozen_clock.advance(minutes=5)  # queued 19 minutes, but the run wrote an item 5 minutes ago
    dunning.run_chunk(run.id, 1, chunks[1])
    assert dunning.resume_stalled(older_than=timedelta(minutes=15)) == 0 and sent == []
    frozen_clock.advance(minutes=16)  # nothing written for 16 minutes: chunk 2 went down with a worker
    assert dunning.resume_stalled(older_than=timedelta(minutes=15)) == 1 and sent == [2]


def test_a_contract_settled_between_selection_and_its_turn_is_not_opened(dun):
    run, chunks = dunning.start_run(as_of=AS_OF, trigger="test")
    session.commit()
    session.add(DunningBlock(contract_id=dun.contract.id, until=date(2026, 4, 1), reason="Appel du client"))
    session.commit()
    assert dunning.run_chunk(run.id, 0, chunks[0])["no_longer_due"] == 1
    assert relaunch_of(dun.contract) is None


# --- The levels, the guardrails, the payment ---------------------------------------------------

def test_levels_follow_the_procedure_and_a_partial_payment_lowers_the_next_letter(dun, frozen_clock):
    dunning.run_inline(as_of=AS_OF, trigger="test")
    dossier = relaunch_of(dun.contract)
    f1 = dun.invoices["F-1"]
    f1.amount_paid, f1.status = Decimal("50.00"), "partially_paid"
    session.commit()
    fire_timers(frozen_clock, 15)
    first, second = letters_of(dossier)
    assert second.title == "Second rappel d'impayé"
    assert "64,20" in docx_text(second.file.content)  # 114.20 − 50.00
    fire_timers(frozen_clock, 15)
    letters = letters_of(dossier)
    assert [x.title for x in letters][-1] == "Mise en demeure"
    instance = processes.running_on(dossier_id=dossier.id)
    assert the_task(instance).element_id == "collect"  # level 3 asks an agent to collect


def test_a_vulnerable_customer_gets_the_social_step_before_any_formal_notice(dun, frozen_clock):
    dun.paul.vulnerable = True
    session.commit()
    dunning.run_inline(as_of=AS_OF, trigger="test")
    dossier = relaunch_of(dun.contract)
    fire_timers(frozen_clock, 15)
    fire_timers(frozen_clock, 15)
    instance = processes.running_on(dossier_id=dossier.id)
    social = the_task(instance)
    assert social.element_id == "social"
    assert [x.title for x in letters_of(dossier)] == ["Premier rappel d'impayé", "Second rappel d'impayé"]
    with pytest.raises(processes.FormInvalid):  # the information must have been given
        processes.complete_task(agent=dun.colleague, task_id=social.id,
                                answers={"fsl_informed": False, "channel": "téléphone"})
    session.rollback()
    processes.complete_task(agent=dun.colleague, task_id=social.id,
                            answers={"fsl_informed": True, "channel": "téléphone"})
    session.commit()
    assert [x.title for x in letters_of(dossier)][-1] == "Mise en demeure"
    assert the_task(instance).element_id == "collect"


def test_the_collection_step_refuses_a_cut_off_the_law_forbids_and_says_why(dun, frozen_clock, client, auth):
    dunning.run_inline(as_of=AS_OF, trigger="test")
    dossier = relaunch_of(dun.contract)
    fire_timers(frozen_clock, 15)
    fire_timers(frozen_clock, 15)
    collect = the_task(processes.running_on(dossier_id=dossier.id))

    _fresh_csrf()
    auth.login(dun.colleague.login)
    _fresh_csrf()
    page = client.get(f"/taches/{collect.id}").get_data(as_text=True)
    assert 'id="task-rules"' in page and "Eau d&#39;une résidence principale" in page
    response = client.post(f"/taches/{collect.id}", data={
        "csrf_token": csrf_token(page), "action": "complete", "f-outcome": "contentieux", "f-measure": "coupure"})
    assert response.status_code == 422
    refusal = re.search(r'id="f-measure-error"[^>]*>([^<]+)<', response.get_data(as_text=True))
    assert refusal and "ni coupure ni réduction" in refusal.group(1)  # beside the field asked
    assert processes.running_on(dossier_id=dossier.id) is not None  # blocked: the step did not complete
    session.expire_all()
    response = client.post(f"/taches/{collect.id}", data={
        "csrf_token": csrf_token(page), "action": "complete", "f-outcome": "contentieux", "f-measure": "aucune"})
    assert response.status_code == 303
    assert processes.last_on(dossier_id=dossier.id).status == InstanceStatus.COMPLETED


@pytest.mark.parametrize(("kind", "main_residence", "day", "refused"), [
    ("water", True, date(2026, 7, 1), "résidence principale"),
    ("water", False, date(2026, 7, 1), None),  # a second home's water may be cut off
    ("electricity", True, date(2026, 3, 31), "Trêve hivernale"),
    ("electricity", True, date(2026, 4, 1), None),
    ("gas", False, date(2026, 11, 1), "Trêve hivernale"),
])
def test_the_cut_off_guard_by_service_and_date(dun, frozen_clock, kind, main_residence, day, refused):
    contract = owing(dun, f"CUT-{kind}-{main_residence}", "80.00", date(2026, 1, 1), kind=kind,
                     main_residence=main_residence)
    frozen_clock.current = datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)
    on_invoice = dossiers.open_dossier(agent=None, dossier_type_id=dun.relaunch.id, links=Links(  # no contract link
        parties=[PartyLink(dun.marc.id, "payer")], objects=[ObjectLink(Ref("invoice", _invoices(contract)[0].id))]))
    data = {"context": {"dossier_id": on_invoice.id}}  # the contract is found through the dossier's invoice
    found = steps.check(data, {"measure": "coupure"})
    if refused:
        assert refused in found["measure"] and refused in " ".join(steps.explain(data))
    else:
        assert found == {} and steps.explain(data) == []
    assert steps.check(data, {"measure": "aucune"}) == {}


def test_payment_closes_the_relaunch_through_the_message_and_a_partial_one_does_not(dun):
    dunning.run_inline(as_of=AS_OF, trigger="test")
    dossier = relaunch_of(dun.contract)
    f1, f2 = dun.invoices["F-1"], dun.invoices["F-2"]
    f1.amount_paid, f1.status = f1.amount, "paid"
    session.commit()
    assert dunning.settle_paid([dun.contract.id], source="test") == 0  # F-2 still owed
    assert dossier.status == DossierStatus.OPEN
    f2.amount_paid, f2.status = f2.amount, "paid"
    session.commit()
    assert dunning.settle_paid([dun.contract.id], source="test") == 1
    session.commit()
    session.refresh(dossier)
    assert dossier.status == DossierStatus.CLOSED and dossier.closed_at is not None
    note = session.execute(select(DossierElement).where(DossierElement.dossier_id == dossier.id,
                                                        DossierElement.kind == ElementKind.NOTE)).scalar_one()
    assert note.body.startswith("Factures réglées")
    instance = processes.last_on(dossier_id=dossier.id)
    assert instance.status == InstanceStatus.COMPLETED and "end_paid" in processes.progress(instance).done
    # the next run may chase the contract again, should it owe again: the constraint is on open dossiers
    assert dunning.select_contracts(dun.procedure, AS_OF).skipped["already_open"] == 0


def test_a_payment_sent_by_the_billing_system_through_the_api_closes_the_relaunch(dun, client):
    from app.api import tokens

    dunning.run_inline(as_of=AS_OF, trigger="test")
    dossier = relaunch_of(dun.contract)
    _row, token = tokens.create_token(system="Facturation", permissions=["masterdata.write"],
                                      territory_codes=["A-LYON"], created_by=None)
    session.commit()

    def paid(invoice, amount_paid: str, status: str) -> dict:
        return {"external_ref": invoice.external_ref, "number": invoice.number,
                "contract_ref": dun.contract.external_ref, "issued_on": invoice.issued_on.isoformat(),
                "due_on": invoice.due_on.isoformat(), "amount": str(invoice.amount), "amount_paid": amount_paid,
                "status": status}

    f1, f2 = dun.invoices["F-1"], dun.invoices["F-2"]
    partly = client.post("/api/v1/masterdata", headers={"Authorization": f"Bearer {token}"},
                         json={"invoices": [paid(f1, "84.20", "paid")]})
    assert partly.status_code == 200, partly.get_json()
    session.expire_all()
    assert dossier.status == DossierStatus.OPEN  # F-2 is still owed: the next letter asks for 30,00 €
    assert dunning.invoices_owed(dossier)[0] == Decimal("30.00")
    cleared = client.post("/api/v1/masterdata", headers={"Authorization": f"Bearer {token}"},
                          json={"invoices": [paid(f2, "50.00", "paid")]})
    assert cleared.status_code == 200, cleared.get_json()
    session.expire_all()
    assert dossier.status == DossierStatus.CLOSED
    instance = processes.last_on(dossier_id=dossier.id)
    assert instance.status == InstanceStatus.COMPLETED
    message = session.execute(select(ProcessMessage).where(ProcessMessage.instance_id == instance.id)).scalar_one()
    assert (message.name, message.source) == ("facture_payee", f"import:api:{token[:12]}")


def test_a_plan_agreed_in_a_payment_difficulty_dossier_suspends_dunning(dun):
    from tests.integration.test_process_instances import open_dossier
    from tests.unit.test_shipped_processes import ANSWERS

    instance = processes.start(key="payment_difficulty", agent=dun.agent,
                               dossier=open_dossier(dun, "payment_difficulty"))
    processes.complete_task(agent=dun.agent, task_id=the_task(instance).id,
                            answers={**ANSWERS["payment_difficulty"]["study"], "first_due_on": "2026-04-05",
                                     "instalments": 4})
    session.commit()
    assert planned(dun)["CW-EAU-1"].reason is None  # proposed, not agreed yet
    processes.complete_task(agent=dun.bo_lyon, task_id=the_task(instance).id, answers={"accepted": True})
    session.commit()
    plan = session.execute(select(PaymentPlan).where(PaymentPlan.contract_id == dun.contract.id)).scalar_one()
    assert (plan.starts_on, plan.ends_on, plan.instalments) == (AS_OF, date(2026, 7, 5), 4)
    assert planned(dun)["CW-EAU-1"].reason == "payment_plan"
    assert planned(dun, date(2026, 7, 6))["CW-EAU-1"].reason is None  # once its last instalment is past


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_letters_written_in_mass_get_their_pdf_in_a_batch_and_their_mail_waits_for_it(dun):
    from app.documents.service import convert_pending
    from app.mails import outbox
    from app.mails.models import OutgoingMail
    from app.parties.models import PartyEmail

    dun.paul.emails.append(PartyEmail(address="paul.martin@example.fr", position=0))  # the payer gets it
    owing(dun, "PDF-2", "60.00", date(2026, 2, 1), holder=dun.paul)
    session.commit()
    dunning.run_inline(as_of=AS_OF, trigger="test")
    letters = [letters_of(relaunch_of(c))[0] for c in (dun.contract, _contract("PDF-2"))]
    assert all(x.pdf_pending and x.pdf_file_id is None for x in letters)  # rendered in the step, not converted
    mails = session.execute(select(OutgoingMail).order_by(OutgoingMail.id)).scalars().all()
    assert [m.attachment_id for m in mails] == [x.id for x in letters]

    def due() -> int:
        return session.execute(select(func.count()).select_from(OutgoingMail).where(
            outbox._due_clause(datetime.now(UTC)))).scalar_one()

    assert due() == 0  # each mail waits for its letter's PDF
    assert convert_pending() == 2  # one LibreOffice start for both
    session.expire_all()
    for letter in letters:
        assert not letter.pdf_pending and letter.pdf_file.content.startswith(b"%PDF")
        assert letter.pdf_file.filename.endswith(".pdf")
    assert due() == 2 and convert_pending() == 0


def _contract(number: str):
    from app.contracts.models import Contract

    return session.execute(select(Contract).where(Contract.number == number)).scalar_one()


def test_the_relaunch_classification_keeps_one_open_dossier_per_contract_while_dunning_uses_it(dun):
    from app.errors import BusinessError
    from app.referentials import service as referentials

    values = {"label": dun.relaunch.label, "process_key": dun.relaunch.process_key, "target_days": 60,
              "active": True, "position": 0, "auto_start": True, "suspends_dunning": False}
    with pytest.raises(BusinessError, match="un seul dossier ouvert par contrat"):
        referentials.update_dossier_type(dossier_type=dun.relaunch, one_per_contract=False, **values)
    session.rollback()
    dun.procedure.active = False
    session.commit()
    referentials.update_dossier_type(dossier_type=dun.relaunch, one_per_contract=False, **values)
    session.commit()
    dun.procedure.active = True
    session.commit()
    with pytest.raises(BusinessError, match="qu'un dossier ouvert par contrat"):  # a run refuses it too
        dunning.start_run(as_of=AS_OF, trigger="test")


def test_the_daily_schedule_runs_once_a_day_at_the_configured_local_time(dun, app, monkeypatch):
    from zoneinfo import ZoneInfo

    import workers.tasks as tasks

    entry = app.extensions["celery"].conf.beat_schedule["dunning-run"]
    assert entry["task"] == "workers.tasks.dunning_run"
    schedule = entry["schedule"]
    assert (schedule.hour, schedule.minute) == ({6}, {30})
    assert schedule.nowfun().tzinfo == ZoneInfo("Europe/Paris")  # 06:30 in Lyon, summer or winter
    kept = pickle.loads(pickle.dumps(schedule))  # noqa: S301 (our own bytes: beat pickles its schedule to a file)
    assert (kept.hour, kept.minute, kept.nowfun().tzinfo) == ({6}, {30}, ZoneInfo("Europe/Paris"))

    queued = []
    monkeypatch.setattr(tasks.dunning_chunk, "delay", lambda *args: queued.append(args))
    first = tasks.dunning_run.run(as_of=AS_OF.isoformat())
    assert first["selected"] == 1 and len(queued) == 1
    assert queued[0][2] == [dun.contract.id]
    assert tasks.dunning_run.run(as_of=AS_OF.isoformat()) == {"skipped": AS_OF.isoformat()}  # the day has its run
    assert len(queued) == 1
    run = session.execute(select(DunningRun)).scalar_one()
    assert run.trigger == "beat" and run.status == "running"
    tasks.dunning_chunk.run(*queued[0])
    session.refresh(run)
    assert run.status == "done" and dunning.counts_of(run).opened == 1


def test_a_plan_agreed_in_a_dossier_on_invoices_alone_suspends_their_contract(dun):
    from tests.integration.contacts_world import dossier_type
    from tests.unit.test_shipped_processes import ANSWERS

    kind = dossier_type(label="Difficulté de paiement")  # the demo template links the overdue invoices only
    kind.process_key = "payment_difficulty"
    session.commit()
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(dun.paul.id, "payer")], objects=[ObjectLink(Ref("invoice", dun.invoices["F-1"].id))]))
    instance = processes.start(key="payment_difficulty", agent=dun.agent, dossier=dossier)
    study = ANSWERS["payment_difficulty"]["study"]
    processes.complete_task(agent=dun.agent, task_id=the_task(instance).id, answers=study)
    processes.complete_task(agent=dun.bo_lyon, task_id=the_task(instance).id, answers={"accepted": True})
    session.commit()
    assert instance.status == InstanceStatus.WAITING, instance.error_message
    assert planned(dun)["CW-EAU-1"].reason == "payment_plan"


def test_without_a_contract_to_check_no_measure_may_be_asked(dun):
    kind = dossiers.type_by_code("RECLAMATION")
    bare = dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(dun.paul.id, "customer")]))
    data = {"context": {"dossier_id": bare.id}}
    assert "ne peut pas être vérifiée" in steps.check(data, {"measure": "reduction"})["measure"]
    assert steps.check(data, {"measure": "aucune"}) == {}

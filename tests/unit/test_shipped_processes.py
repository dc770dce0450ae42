"""Each shipped process runs, in memory, through its forms: every user task's form accepts the
sample answers given here (validated against its JSON Schema), and a process with a timer waits on
it with the due time its expression gives. A timer that waits beside a ready task (a boundary
reminder) is fired first, so that the branch it opens is walked too; the paths a message takes
(an invoice paid while the relaunch waits) and a reminder cancelled by its task are walked apart."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app.processes import engine
from app.processes.definitions import read_folder
from app.processes.engine import Run, check
from app.seed.referentials import DUNNING_LEVELS

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
ANSWERS = {  # process → user task → what an agent fills in
    "information_request": {"answer": {"answer": "Horaires de l'agence donnés", "satisfied": True}},
    "payment_difficulty": {
        "study": {"situation": "Perte d'emploi", "fsl": True, "instalments": 6, "first_due_on": "2026-12-15"},
        "sign": {"accepted": True, "accepted_on": "2026-11-30"},
        "remind": {"reached": True, "channel": "phone", "note": "Le client signe cette semaine."},
        "check": {"paid": True},
    },
    "reading_dispute": {
        "record": {"claimed_index": 12450, "reason": "estimation"},
        "conclude": {"decision": "relève_corrigée", "corrected_index": 12450},
    },
    "move_in": {
        "identity": {"identity_checked": True, "move_in_on": "2026-12-01", "email": "zoe@example.fr"},
        "meter": {"index_value": 5230, "source": "client"},
        "contract": {"offer": "Eau standard", "payment_method": "prelevement", "iban": "FR7630006000011234567890189"},
    },
    "move_out": {
        "leave": {"move_out_on": "2026-12-20", "new_address": "3 rue Neuve, 42000 Saint-Étienne"},
        "meter": {"index_value": 9875, "source": "technicien"},
    },
    "unpaid_relaunch": {"collect": {"outcome": "échéancier", "measure": "aucune"},
                        "social": {"fsl_informed": True, "channel": "téléphone", "fsl_request": False}},
}
OPERATIONS = {  # process → the service operations its full run calls, in order
    # the levels of the procedure (letters and mails are the level's, tested in test_dunning.py); the
    # third, a formal notice, waits for the social-support step (see dunning_levels below)
    "unpaid_relaunch": [
        ("dunning_level", {"rank": 1, "social_done": False}), ("dunning_level", {"rank": 2, "social_done": False}),
        ("dunning_level", {"rank": 3, "social_done": False}), ("dunning_level", {"rank": 3, "social_done": True})],
    "payment_difficulty": [("generate_document", {"template": "payment_plan_agreement"}),
                           ("record_payment_plan", {})],
    "move_in": [("generate_document", {"template": "move_in_welcome"}),
                ("send_mail", {"template": "move_in_welcome_mail", "attach": "move_in_welcome", "to_field": "email",
                               "if_email": True})],
}
TIMERS = {  # process → timer → the wait it must announce, in days
    "payment_difficulty": {"sign_reminder": 7, "wait_first": 30}, "reading_dispute": {"wait_visit": 10},
    "unpaid_relaunch": {"wait": 15},  # between two levels: the gap of their delays, as dunning_level says
}


@pytest.fixture(autouse=True)
def calls(monkeypatch) -> list[tuple[str, dict]]:
    """The service operations the process calls, recorded instead of run: what they do is tested
    with them (tests/integration/test_documents.py, test_mails.py); here, that each is called."""
    recorded: list[tuple[str, dict]] = []
    handlers = {name: (lambda data, params, name=name: recorded.append((name, params)) or {"recorded": True})
                for name in engine.OPERATIONS}
    handlers["dunning_level"] = lambda data, params: recorded.append(("dunning_level", params)) or dunning_level(params)
    monkeypatch.setattr(engine, "_operations", handlers)
    return recorded


def dunning_level(params: dict) -> dict:
    """What the dunning_level operation answers for the standard procedure's three levels, 15 days
    apart, the third a formal notice to a vulnerable customer (app.dunning.steps, with a database)."""
    rank = params["rank"]
    outcome = "social" if rank == 3 and not params["social_done"] else "done"
    return {"rank": rank, "outcome": outcome, "task": rank == 3, "last": rank == 3, "wait": "P15D"}


def _start(key: str) -> tuple[dict[str, str], BpmnWorkflow, Run]:
    files = read_folder(BPMN / key)
    workflow = BpmnWorkflow(check(key, files).spec, script_engine=engine._script_engine)
    workflow.do_engine_steps()
    return files, workflow, Run(workflow)


def _complete(key: str, files: dict[str, str], task) -> None:
    form = task.task_spec.extensions["properties"]["formJsonSchemaFilename"]
    answer = ANSWERS[key][task.task_spec.bpmn_id]
    Draft202012Validator(json.loads(files[form]), format_checker=FormatChecker()).validate(answer)
    task.data.update(answer)
    task.run()


def _ready(workflow: BpmnWorkflow) -> dict[str, object]:
    return {t.task_spec.bpmn_id: t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}


def _timers(run: Run) -> dict[str, object]:
    """The waiting timers by element id (for an event-based gateway, its timer event's id)."""
    return {timer.element_id: timer for timer in run.snapshot().timers}


def _fire(key: str, run: Run, timer) -> None:
    """Check the due time the engine froze, then let time pass and fire the timer."""
    expected = datetime.now(UTC) + timedelta(days=TIMERS[key][timer.element_id])
    assert abs(timer.due_at - expected) < timedelta(minutes=5), (timer.element_id, timer.due_at)
    assert run.fire_timer(timer.uuid, datetime.now(UTC)), timer.element_id


@pytest.mark.parametrize("key", sorted(p.name for p in BPMN.iterdir() if p.is_dir()))
def test_each_shipped_process_runs_through_its_forms(key, calls):
    assert key in ANSWERS, f"add sample answers for {key}"
    files, workflow, run = _start(key)
    done = []
    for _step in range(20):
        timers = run.snapshot().timers
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if timers:  # a timer first, even beside a ready task: a boundary timer opens its branch
            _fire(key, run, timers[0])
            done.append(timers[0].element_id)
        elif ready:
            _complete(key, files, ready[0])
            done.append(ready[0].task_spec.bpmn_id)
            workflow.do_engine_steps()
        else:
            break
    assert workflow.completed, f"{key} stopped after {done}"
    assert set(ANSWERS[key]) | set(TIMERS.get(key, {})) == set(done)
    assert calls == OPERATIONS.get(key, [])


def test_every_template_a_shipped_process_names_is_shipped():
    import tomllib

    with (BPMN.parent / "templates_docs" / "catalogue.toml").open("rb") as handle:
        catalogue = tomllib.load(handle)
    shipped = {"generate_document": set(catalogue["letters"]), "send_mail": set(catalogue["mails"])}
    for steps in OPERATIONS.values():
        for operation, params in steps:
            if operation in shipped:
                assert params["template"] in shipped[operation], (operation, params)
                assert params.get("attach", "last") in {"last"} | shipped["generate_document"], params
    for _rank, _label, _delay, _minimum, letter, mail, *_flags in DUNNING_LEVELS:  # the relaunch's, as data
        assert letter in shipped["generate_document"] and mail in shipped["send_mail"]


def test_the_reminder_waits_beside_the_signature_and_both_branches_end():
    files, workflow, run = _start("payment_difficulty")
    _complete("payment_difficulty", files, _ready(workflow)["study"])
    workflow.do_engine_steps()
    assert set(_ready(workflow)) == {"sign"} and set(_timers(run)) == {"sign_reminder"}
    _fire("payment_difficulty", run, _timers(run)["sign_reminder"])
    # Non-interrupting: the signature still waits, the reminder is offered beside it.
    assert set(_ready(workflow)) == {"sign", "remind"} and not _timers(run)
    remind = _ready(workflow)["remind"]
    assert remind.task_spec.lane == "back_office"
    assert remind.task_spec.extensions["instructionsForEndUser"]
    _complete("payment_difficulty", files, remind)
    workflow.do_engine_steps()
    assert not workflow.completed and set(_ready(workflow)) == {"sign"}
    _complete("payment_difficulty", files, _ready(workflow)["sign"])
    workflow.do_engine_steps()
    _fire("payment_difficulty", run, _timers(run)["wait_first"])
    _complete("payment_difficulty", files, _ready(workflow)["check"])
    workflow.do_engine_steps()
    assert workflow.completed
    assert {"end_reminded", "end"} <= set(run.snapshot().done)


def test_signing_before_the_reminder_cancels_it():
    files, workflow, run = _start("payment_difficulty")
    _complete("payment_difficulty", files, _ready(workflow)["study"])
    workflow.do_engine_steps()
    _complete("payment_difficulty", files, _ready(workflow)["sign"])
    workflow.do_engine_steps()
    assert set(_timers(run)) == {"wait_first"} and not _ready(workflow)
    _fire("payment_difficulty", run, _timers(run)["wait_first"])
    _complete("payment_difficulty", files, _ready(workflow)["check"])
    workflow.do_engine_steps()
    assert workflow.completed
    done = set(run.snapshot().done)
    assert "end" in done and not {"remind", "end_reminded"} & done


@pytest.mark.parametrize("timers_first", [0, 1])
def test_the_relaunch_ends_when_the_invoice_is_paid_while_it_waits(timers_first, calls):
    _files, workflow, run = _start("unpaid_relaunch")
    for _timer in range(timers_first):
        _fire("unpaid_relaunch", run, next(iter(_timers(run).values())))
    snapshot = run.snapshot()
    assert [t.element_id for t in snapshot.timers] == ["wait"]
    assert snapshot.messages == ["facture_payee"]
    assert run.deliver("facture_payee", {"invoice": "F-2026-0042"})
    snapshot = run.snapshot()
    assert workflow.completed and not snapshot.timers and not snapshot.ready
    assert {"paid", "close_paid", "end_paid"} <= set(snapshot.done) and "collect" not in snapshot.done
    assert [name for name, _params in calls] == ["dunning_level"] * (timers_first + 1) + ["close_dossier"]

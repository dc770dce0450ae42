"""Each shipped process runs, in memory, through its forms: every user task's form accepts the
sample answers given here (validated against its JSON Schema), and a process with a timer waits on
it with the due time its expression gives."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app.processes.definitions import read_folder
from app.processes.engine import check

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
ANSWERS = {  # process → user task → what an agent fills in
    "information_request": {"answer": {"answer": "Horaires de l'agence donnés", "satisfied": True}},
    "payment_difficulty": {
        "study": {"situation": "Perte d'emploi", "fsl": True, "instalments": 6, "first_due_on": "2026-12-15"},
        "sign": {"accepted": True, "accepted_on": "2026-11-30"},
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
    "unpaid_relaunch": {"collect": {"outcome": "échéancier"}},
}
TIMERS = {  # process → timer → the wait it must announce, in days
    "payment_difficulty": {"wait_first": 30}, "reading_dispute": {"wait_visit": 10},
    "unpaid_relaunch": {"wait_first": 15, "wait_second": 15},
}


@pytest.mark.parametrize("key", sorted(p.name for p in BPMN.iterdir() if p.is_dir()))
def test_each_shipped_process_runs_through_its_forms(key):
    assert key in ANSWERS, f"add sample answers for {key}"
    files = read_folder(BPMN / key)
    workflow = BpmnWorkflow(check(key, files).spec)
    workflow.do_engine_steps()
    done = []
    for _step in range(20):
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if ready:
            task = ready[0]
            form = task.task_spec.extensions["properties"]["formJsonSchemaFilename"]
            answer = ANSWERS[key][task.task_spec.bpmn_id]
            Draft202012Validator(json.loads(files[form]), format_checker=FormatChecker()).validate(answer)
            task.data.update(answer)
            task.run()
        else:
            waiting = [t for t in workflow.get_tasks(state=TaskState.WAITING)
                       if t.task_spec.bpmn_id in TIMERS.get(key, {})]
            if not waiting:
                break
            task = waiting[0]
            due = datetime.fromisoformat(workflow.waiting_events()[0].value)
            expected = datetime.now(UTC) + timedelta(days=TIMERS[key][task.task_spec.bpmn_id])
            assert abs(due - expected) < timedelta(minutes=5), (task.task_spec.bpmn_id, due)
            # Time passes: the due time (frozen when the timer was reached) is now behind us.
            task.internal_data["event_value"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
            workflow.refresh_timers()
        done.append(task.task_spec.bpmn_id)
        workflow.do_engine_steps()
    assert workflow.completed, f"{key} stopped after {done}"
    assert set(ANSWERS[key]) | set(TIMERS.get(key, {})) == set(done)

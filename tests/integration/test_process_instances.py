"""Process instances (app.processes.service): starting on a contact or a dossier (by hand and
automatically), the inbox kept in step with the state, forms checked before a step completes,
drafts, claim and release, versions kept by running instances, values kept by the serializer, a
failing step put in error then retried, cancellation, timers fired once, early messages kept and
delivered, scope, and two agents racing for one task (PostgreSQL)."""
from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from app.audit.context import AuditContext, set_context
from app.audit.models import AuditEntry
from app.contacts.links import AgentLink, Links, ObjectLink, PartyLink
from app.contacts.objects import Ref
from app.db import db, session
from app.documents import templates
from app.dossiers import service as dossiers
from app.errors import BusinessError
from app.processes import definitions, engine
from app.processes import service as processes
from app.processes.models import (
    InstanceStatus,
    ProcessDefinition,
    ProcessInstance,
    ProcessMessage,
    ProcessTask,
    ProcessTimer,
    TaskStatus,
)
from app.security.scope import scope_condition
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import NOW, build_world, contact_type, dossier_type

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
IDENTITY = {"identity_checked": True, "move_in_on": "2026-04-01", "email": "helene@example.fr"}
METER = {"index_value": 5230, "source": "client"}


@pytest.fixture(name="world")
def world_fixture(app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    found = build_world(places, customer)
    found.contact_type = contact_type()
    found.supervisor = AgentFactory(full_name="Sophie Superviseur", roles=[role_with("superviseur")],
                                    territories=[places["lyon_agency"]])
    definitions.deploy_directory(BPMN)
    templates.deploy_directory(BPMN.parent / "templates_docs")  # the letters their steps generate
    session.commit()
    return found


def open_dossier(world, key: str, *, auto_start: bool = False, agent="default"):
    kind = dossier_type(label=f"Dossier {key}")
    kind.process_key, kind.auto_start = key, auto_start
    if key == "unpaid_relaunch":  # its levels come from the dunning procedure of its classification
        from app.seed.referentials import standard_procedure

        session.add(standard_procedure(kind, code=f"P-{kind.code}"))
    session.commit()
    agent = world.agent if agent == "default" else agent
    found = dossiers.open_dossier(agent=agent, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(world.helene.id, "customer")], agents=[AgentLink(world.agent.id, "emitter")],
        objects=[ObjectLink(Ref("contract", world.contract.id))]))
    session.commit()
    return found


def ready_tasks(instance) -> list[ProcessTask]:
    return list(session.execute(select(ProcessTask).where(
        ProcessTask.instance_id == instance.id, ProcessTask.status == TaskStatus.READY)).scalars())


def the_task(instance) -> ProcessTask:
    tasks = ready_tasks(instance)
    assert len(tasks) == 1, [t.element_id for t in tasks]
    return tasks[0]


def deploy(key: str, body: str, forms: dict | None = None) -> ProcessDefinition:
    files = {f"{key}.bpmn": diagram(key, body)}
    for name, schema in (forms or {}).items():
        files[name] = json.dumps(schema)
    deployed = definitions.deploy(key, files).definition
    session.commit()
    return deployed


def diagram(key: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:message id="paid_message" name="facture_payee" />
  <bpmn:process id="{key}" name="Essai {key}" isExecutable="true">{body}</bpmn:process>
</bpmn:definitions>"""


def user_task(task_id: str, incoming: str, outgoing: str, form: str = "form.json") -> str:
    return f"""<bpmn:userTask id="{task_id}" name="Étape {task_id}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="{form}" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:userTask>"""


def flow(flow_id: str, source: str, target: str) -> str:
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}" />'


FORM = {"type": "object", "required": ["amount"],
        "properties": {"amount": {"type": "number", "minimum": 0}, "on": {"type": "string", "format": "date"}}}

# start → a user task → a service task (notify_agent) → end
SERVICE_BODY = (
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + flow("f1", "start", "enter") + user_task("enter", "f1", "f2") + flow("f2", "enter", "notify")
    + """<bpmn:serviceTask id="notify" name="Prévenir l'agent">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="notify_agent" resultVariable="notified">
        <spiffworkflow:parameters><spiffworkflow:parameter id="amount" type="any" value="amount" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>"""
    + flow("f3", "notify", "end") + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')

# start → a user task → wait for "facture_payee" → end
MESSAGE_BODY = (
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + flow("f1", "start", "enter") + user_task("enter", "f1", "f2") + flow("f2", "enter", "paid")
    + """<bpmn:intermediateCatchEvent id="paid" name="Facture payée"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing><bpmn:messageEventDefinition messageRef="paid_message" />
      </bpmn:intermediateCatchEvent>"""
    + flow("f3", "paid", "end") + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')

# start → event-based gateway: "facture_payee" or 15 days → end
GATEWAY_BODY = (
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "start", "gw")
    + '<bpmn:eventBasedGateway id="gw"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
    + '<bpmn:outgoing>f3</bpmn:outgoing></bpmn:eventBasedGateway>' + flow("f2", "gw", "paid") + flow("f3", "gw", "late")
    + """<bpmn:intermediateCatchEvent id="paid" name="Facture payée"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f4</bpmn:outgoing><bpmn:messageEventDefinition messageRef="paid_message" />
      </bpmn:intermediateCatchEvent>
      <bpmn:intermediateCatchEvent id="late" name="15 jours"><bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f5</bpmn:outgoing><bpmn:timerEventDefinition><bpmn:timeDuration>"P15D"</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"""
    + flow("f4", "paid", "end_paid") + flow("f5", "late", "end_late")
    + '<bpmn:endEvent id="end_paid"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
    + '<bpmn:endEvent id="end_late"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>')


# --- Starting and the inbox -------------------------------------------------------------------

def test_a_dossier_process_starts_with_its_context_and_offers_steps_by_lane(world):
    dossier = open_dossier(world, "move_in")
    instance = processes.start(key="move_in", agent=world.agent, dossier=dossier)
    session.commit()
    assert instance.status == InstanceStatus.RUNNING
    assert instance.definition.key == "move_in"
    context = processes.progress(instance).context
    assert context["dossier_id"] == dossier.id and context["dossier_reference"] == dossier.reference
    assert context["party_id"] == world.helene.id and context["party_number"] == world.helene.number
    assert context["contract_number"] == world.contract.number and context["agent_id"] == world.agent.id
    # The first step is the front office's: it stays with the agent who started the process.
    first = the_task(instance)
    assert (first.element_id, first.role_code, first.assignee_id) == ("identity", "accueil", world.agent.id)
    assert first.form == "identity.schema.json" and first.instructions
    assert first.due_at == dossier.due_at

    processes.complete_task(agent=world.agent, task_id=first.id, answers=IDENTITY)
    second = the_task(instance)
    assert (second.element_id, second.assignee_id) == ("meter", world.agent.id)
    processes.complete_task(agent=world.agent, task_id=second.id, answers=METER)
    session.commit()
    # The last one goes to the back office: offered to the role, held by no one yet.
    third = the_task(instance)
    assert (third.element_id, third.role_code, third.assignee_id) == ("contract", "back_office", None)
    assert not processes.may_work(world.agent, third)
    assert processes.may_work(world.bo_lyon, third)
    done = session.execute(select(ProcessTask.element_id, ProcessTask.completed_by_id).where(
        ProcessTask.instance_id == instance.id, ProcessTask.status == TaskStatus.COMPLETED)
        .order_by(ProcessTask.id)).all()
    assert done == [("identity", world.agent.id), ("meter", world.agent.id)]
    assert processes.progress(instance).done[:3] == ["start", "identity", "meter"]

    processes.complete_task(agent=world.bo_lyon, task_id=third.id, answers={
        "offer": "Eau standard", "payment_method": "prelevement", "iban": "FR7630006000011234567890189"})
    session.commit()
    assert instance.status == InstanceStatus.COMPLETED and instance.ended_at is not None
    assert ready_tasks(instance) == []
    actions = session.execute(select(AuditEntry.action).where(
        AuditEntry.object_type == "process_instance", AuditEntry.object_id == str(instance.id))
        .order_by(AuditEntry.id)).scalars().all()
    assert actions.count("complete_task") == 3 and "start" in actions


def test_the_state_is_saved_without_the_spec_and_keeps_decimal_and_date(world):
    deploy("amounts", SERVICE_BODY.replace("notify_agent", "notify_agent"), {"form.json": FORM})
    seen = {}
    engine.register_operation("notify_agent", lambda data, params: seen.update(params) or {"ok": True})
    try:
        dossier = open_dossier(world, "amounts")
        instance = processes.start(key="amounts", agent=world.agent, dossier=dossier)
        processes.complete_task(agent=world.agent, task_id=the_task(instance).id,
                                answers={"amount": Decimal("84.20"), "on": "2026-03-16"})
        session.commit()
    finally:
        engine._operations.pop("notify_agent", None)
    assert instance.status == InstanceStatus.COMPLETED
    assert seen == {"amount": Decimal("84.20")}
    state = json.loads(instance.state)
    assert "spec" not in state and "subprocess_specs" not in state
    assert "Emménagement" not in instance.state and "notify_agent" not in instance.state
    data = engine.Run.load(instance.definition, instance.state).data
    assert data["amount"] == Decimal("84.20") and isinstance(data["amount"], Decimal)
    assert data["notified"] == {"ok": True}


def test_registered_types_survive_a_save(world):
    """Decimal, date and the project's value types (Ref) in process data come back as themselves."""
    from types import SimpleNamespace

    files = {"probe.bpmn": diagram("probe", (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "start", "end")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>'))}
    version = SimpleNamespace(key="probe", files=files, content_hash=definitions.content_hash(files))
    data = {"due": date(2026, 4, 10), "owed": Decimal("30.00"), "invoice": Ref("invoice", 12)}
    state = engine.Run.start(version, data).dump()
    assert json.loads(state)["data"]["invoice"] == {"kind": "invoice", "id": 12, "typename": "Ref"}
    assert engine.Run.load(version, state).data == data


def test_a_classification_may_start_its_process_when_a_dossier_opens(world):
    dossier = open_dossier(world, "move_in", auto_start=True)
    instance = processes.running_on(dossier_id=dossier.id)
    assert instance is not None and instance.status == InstanceStatus.RUNNING
    assert the_task(instance).element_id == "identity"
    # Automatic dossiers (a scheduled job) start theirs too, offered to the lane's role.
    job = open_dossier(world, "unpaid_relaunch", auto_start=True, agent=None)
    relaunch = processes.running_on(dossier_id=job.id)
    assert relaunch.status == InstanceStatus.WAITING and relaunch.started_by_id is None


def test_a_process_not_deployed_refuses_the_dossier_that_would_start_it(world):
    kind = dossier_type(label="Sans processus déployé")
    kind.process_key, kind.auto_start = "not_deployed", True
    session.commit()
    before = session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one()
    with pytest.raises(BusinessError, match="n'est pas déployé"):
        dossiers.open_dossier(agent=world.agent, dossier_type_id=kind.id,
                              links=Links(parties=[PartyLink(world.helene.id, "customer")]))
    session.rollback()
    assert session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one() == before


def test_one_process_on_a_dossier_started_again_only_after_a_cancellation(world):
    dossier = open_dossier(world, "move_in")
    first = processes.start(key="move_in", agent=world.agent, dossier=dossier)
    with pytest.raises(BusinessError, match="déjà en cours"):
        processes.start(key="move_in", agent=world.agent, dossier=dossier)
    processes.cancel(agent=world.supervisor, instance_id=first.id, reason="Mauvais dossier")
    second = processes.start(key="move_in", agent=world.agent, dossier=dossier)
    assert processes.last_on(dossier_id=dossier.id) == second


def test_a_completed_process_is_not_run_twice(world):
    from tests.integration.test_contacts_dossiers import new_contact

    contact = new_contact(world)
    done = processes.start(key="information_request", agent=world.agent, contact=contact)
    processes.complete_task(agent=world.agent, task_id=the_task(done).id, answers={"answer": "Horaires donnés"})
    assert done.status == InstanceStatus.COMPLETED
    with pytest.raises(BusinessError, match=f"déjà été mené ici \\(n° {done.id}\\)"):
        processes.start(key="information_request", agent=world.agent, contact=contact)


def test_a_contact_process_runs_on_the_contact_and_closes_at_once(world):
    from tests.integration.test_contacts_dossiers import new_contact

    contact = new_contact(world)
    instance = processes.start(key="information_request", agent=world.agent, contact=contact)
    task = the_task(instance)
    assert task.assignee_id == world.agent.id
    processes.complete_task(agent=world.agent, task_id=task.id, answers={"answer": "Horaires donnés",
                                                                          "satisfied": True})
    assert instance.status == InstanceStatus.COMPLETED
    assert processes.instances_of(agent=world.agent, contact_id=contact.id) == [instance]


# --- Forms, drafts, claim and release ---------------------------------------------------------

def test_answers_that_break_the_form_are_refused_with_nothing_changed(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    task, revision = the_task(instance), instance.revision
    with pytest.raises(processes.FormInvalid) as refused:
        processes.complete_task(agent=world.agent, task_id=task.id,
                                answers={"identity_checked": True, "move_in_on": "2026-13-45"})
    session.rollback()
    assert set(refused.value.errors) == {"move_in_on"}
    assert refused.value.errors["move_in_on"]  # a French message beside the field
    session.refresh(instance)
    assert instance.revision == revision and the_task(instance).id == task.id


def test_a_draft_keeps_the_answers_without_completing(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    task = the_task(instance)
    processes.save_draft(agent=world.agent, task_id=task.id, answers={"phone": "04 72 00 00 00"})
    session.commit()
    assert the_task(instance).draft == {"phone": "04 72 00 00 00"}
    assert the_task(instance).status == TaskStatus.READY


def test_claim_release_and_a_task_held_by_a_colleague(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=IDENTITY)
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=METER)
    task = the_task(instance)
    with pytest.raises(BusinessError, match="réservée au rôle"):
        processes.claim(agent=world.agent, task_id=task.id)  # accueil: not the back office's lane
    processes.claim(agent=world.bo_lyon, task_id=task.id)
    with pytest.raises(BusinessError, match="prise par Bastien Lyon"):
        processes.complete_task(agent=world.bo_region, task_id=task.id, answers={})
    processes.release(agent=world.bo_lyon, task_id=task.id)
    assert the_task(instance).assignee_id is None
    processes.claim(agent=world.bo_region, task_id=task.id)
    assert the_task(instance).assignee_id == world.bo_region.id


def test_a_completed_task_cannot_be_completed_again(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    task = the_task(instance)
    processes.complete_task(agent=world.agent, task_id=task.id, answers=IDENTITY)
    session.commit()
    with pytest.raises(processes.TaskGone):
        processes.complete_task(agent=world.agent, task_id=task.id, answers=IDENTITY)


# --- Scope ------------------------------------------------------------------------------------

def test_tasks_and_instances_are_read_within_the_agents_territories(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    task = the_task(instance)
    for agent in (world.agent, world.bo_lyon, world.bo_region, world.supervisor):
        assert processes.get_task(agent=agent, task_id=task.id) is not None
        assert processes.get_instance(agent=agent, instance_id=instance.id) is not None
    for agent in (world.loire_agent, world.bo_loire, world.bo_villeurbanne):
        assert processes.get_task(agent=agent, task_id=task.id) is None
        assert processes.get_instance(agent=agent, instance_id=instance.id) is None
        with pytest.raises(BusinessError, match="hors de votre périmètre"):
            processes.complete_task(agent=agent, task_id=task.id, answers=IDENTITY)
    visible = select(ProcessTask.id).where(scope_condition(ProcessTask, agent=world.bo_loire, permission="party.read"))
    assert task.id not in session.execute(visible).scalars().all()


# --- Versions ---------------------------------------------------------------------------------

def test_running_instances_keep_the_version_they_started_on(world):
    files = definitions.read_folder(BPMN / "move_in")
    old = definitions.latest("move_in")
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    files["move_in.bpmn"] = files["move_in.bpmn"].replace("Relever l'index d'entrée", "Relever l'index (v2)")
    new = definitions.deploy("move_in", files).definition
    session.commit()
    assert new.version == old.version + 1
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=IDENTITY)
    assert instance.definition_id == old.id
    assert the_task(instance).name == "Relever l'index d'entrée"
    later = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    processes.complete_task(agent=world.agent, task_id=the_task(later).id, answers=IDENTITY)
    assert later.definition_id == new.id and the_task(later).name == "Relever l'index (v2)"


# --- Errors, retry, cancel, reassign ----------------------------------------------------------

def test_a_failing_step_puts_the_instance_in_error_and_a_supervisor_retries_it(world):
    deploy("notify", SERVICE_BODY, {"form.json": FORM})
    calls = []

    def flaky(data, params):
        calls.append(params)
        if len(calls) == 1:
            raise ConnectionError("le service de messagerie ne répond pas")
        return {"sent": True}

    engine.register_operation("notify_agent", flaky)
    try:
        instance = processes.start(key="notify", agent=world.agent, dossier=open_dossier(world, "notify"))
        task = the_task(instance)
        processes.complete_task(agent=world.agent, task_id=task.id, answers={"amount": 12})
        session.commit()
        assert instance.status == InstanceStatus.ERROR
        assert instance.error_element == "Prévenir l'agent"
        assert "notify_agent" in instance.error_message and "ne répond pas" in instance.error_message
        # The completed step is kept: nothing else is lost.
        assert session.get(ProcessTask, task.id).status == TaskStatus.COMPLETED
        assert processes.progress(instance).failed == ["notify"]
        with pytest.raises(BusinessError, match="superviser"):
            processes.retry(agent=world.bo_lyon, instance_id=instance.id)
        with pytest.raises(BusinessError, match="hors de votre périmètre"):
            processes.retry(agent=AgentFactory(roles=[role_with("superviseur")],
                                               territories=[world.places["loire_agency"]]), instance_id=instance.id)
        processes.retry(agent=world.supervisor, instance_id=instance.id)
        session.commit()
    finally:
        engine._operations.pop("notify_agent", None)
    assert instance.status == InstanceStatus.COMPLETED and instance.error_message is None
    assert len(calls) == 2 and calls[1] == {"amount": 12}


def test_an_operation_without_implementation_is_an_error_not_a_crash(world):
    deploy("notify", SERVICE_BODY, {"form.json": FORM})
    instance = processes.start(key="notify", agent=world.agent, dossier=open_dossier(world, "notify"))
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers={"amount": 1})
    assert instance.status == InstanceStatus.ERROR
    assert "n'est pas disponible" in instance.error_message


def test_a_supervisor_cancels_with_a_reason_and_nothing_waits_any_more(world):
    instance = processes.start(key="payment_difficulty", agent=world.agent,
                               dossier=open_dossier(world, "payment_difficulty"))
    session.commit()
    with pytest.raises(BusinessError, match="motif"):
        processes.cancel(agent=world.supervisor, instance_id=instance.id, reason="  ")
    processes.cancel(agent=world.supervisor, instance_id=instance.id, reason="Doublon du dossier précédent")
    session.commit()
    assert instance.status == InstanceStatus.CANCELLED
    assert instance.cancel_reason == "Doublon du dossier précédent"
    assert ready_tasks(instance) == []
    assert session.execute(select(func.count()).select_from(ProcessTimer).where(
        ProcessTimer.instance_id == instance.id)).scalar_one() == 0
    with pytest.raises(BusinessError, match="déjà terminé"):
        processes.cancel(agent=world.supervisor, instance_id=instance.id, reason="encore")


def test_a_supervisor_reassigns_to_an_agent_of_the_role_within_the_territory(world):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=IDENTITY)
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=METER)
    task = the_task(instance)
    with pytest.raises(BusinessError, match="n'a pas le rôle « Back Office »"):  # the role's label, not its code
        processes.reassign(agent=world.supervisor, task_id=task.id, to_agent_id=world.agent.id)
    with pytest.raises(BusinessError, match="hors du périmètre"):
        processes.reassign(agent=world.supervisor, task_id=task.id, to_agent_id=world.bo_loire.id)
    with pytest.raises(BusinessError):
        processes.reassign(agent=world.bo_lyon, task_id=task.id, to_agent_id=world.bo_lyon.id)
    processes.reassign(agent=world.supervisor, task_id=task.id, to_agent_id=world.bo_region.id)
    assert the_task(instance).assignee_id == world.bo_region.id
    processes.reassign(agent=world.supervisor, task_id=task.id, to_agent_id=None)
    assert the_task(instance).assignee_id is None


# --- Timers and messages ----------------------------------------------------------------------

def test_waiting_timers_are_listed_with_their_due_time_and_fire_once(world, frozen_clock):
    instance = processes.start(key="unpaid_relaunch", agent=None, dossier=open_dossier(world, "unpaid_relaunch"))
    session.commit()
    assert instance.status == InstanceStatus.WAITING
    timer = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalar_one()
    assert timer.element_id == "wait"  # between two levels of the dunning procedure
    # The engine froze the due time on the system clock when the timer was reached: in fifteen days.
    assert abs(timer.due_at - (datetime.now(UTC) + timedelta(days=15))) < timedelta(minutes=5)
    assert processes.fire_due_timers() == 0  # not due yet (the business clock is in March)
    first_uuid = timer.task_uuid
    timer.due_at = frozen_clock.current - timedelta(seconds=1)  # fifteen days later, as far as we know
    session.commit()
    assert processes.fire_due_timers() == 1
    second = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalar_one()
    assert second.element_id == "wait" and second.task_uuid != first_uuid  # the same event, a second time
    assert second.due_at > frozen_clock.current
    assert processes.fire_due_timers() == 0  # the second one is not due: nothing fires twice
    second.due_at = frozen_clock.current - timedelta(seconds=1)
    session.commit()
    assert processes.fire_due_timers() == 1
    assert the_task(instance).element_id == "collect"
    fired = session.execute(select(AuditEntry.changes).where(
        AuditEntry.object_type == "process_instance", AuditEntry.object_id == str(instance.id),
        AuditEntry.action == "timer").order_by(AuditEntry.id)).scalars().all()
    assert [f["element"] for f in fired] == ["wait", "wait"]


def test_an_event_based_gateway_lists_its_timer_and_takes_the_message(world, frozen_clock):
    deploy("gateway", GATEWAY_BODY)
    instance = processes.start(key="gateway", agent=None, dossier=open_dossier(world, "gateway"))
    timer = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalar_one()
    assert timer.element_id == "late"  # the gateway's timer event, with its due time
    assert abs(timer.due_at - (datetime.now(UTC) + timedelta(days=15))) < timedelta(minutes=5)
    assert processes.send_message(instance_id=instance.id, name="facture_payee", payload={"paid": "84.20"}) is True
    assert instance.status == InstanceStatus.COMPLETED
    assert "end_paid" in processes.progress(instance).done
    assert session.execute(select(func.count()).select_from(ProcessTimer).where(
        ProcessTimer.instance_id == instance.id)).scalar_one() == 0


def test_a_message_that_arrives_early_is_kept_and_delivered_when_the_process_waits(world):
    deploy("early", MESSAGE_BODY, {"form.json": FORM})
    instance = processes.start(key="early", agent=world.agent, dossier=open_dossier(world, "early"))
    assert processes.send_message(instance_id=instance.id, name="facture_payee", payload={"amount": "84.20"},
                                  source="billing") is False
    kept = session.execute(select(ProcessMessage).where(ProcessMessage.instance_id == instance.id)).scalar_one()
    assert kept.delivered_at is None and instance.status == InstanceStatus.RUNNING
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers={"amount": 5})
    session.commit()
    assert kept.delivered_at is not None
    assert instance.status == InstanceStatus.COMPLETED
    assert engine.Run.load(instance.definition, instance.state).data.get("amount") == 5


# --- Two agents, one task (PostgreSQL) --------------------------------------------------------

ONE_STEP = ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + flow("f1", "start", "enter") + user_task("enter", "f1", "f2") + flow("f2", "enter", "end")
            + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>')


@pytest.mark.no_db_transaction
def test_two_agents_completing_one_task_one_wins_the_other_is_told(app):
    """Two back-office agents press "Valider" on the same step at the same moment: the row lock
    queues them; the first completes it, the second is told it is gone; the step runs once."""
    from app.parties.models import Party
    from tests.factories import TerritoryFactory

    engine_ = db.get_engine()
    if engine_.dialect.name != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL only")
    with app.app_context():
        marks = _marks()
        set_context(AuditContext(actor_label="test"))
        territory = TerritoryFactory(code="T-RACE", kind="agency")
        party = Party(number="RACE00001", last_name="Concurrent", status="customer", territory_id=territory.id)
        session.add(party)
        session.commit()
        agents = [AgentFactory(roles=[role_with("back_office")], territories=[territory]) for _ in range(2)]
        deploy("race", ONE_STEP, {"form.json": FORM})
        kind = dossier_type(label="Course")
        dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id,
                                        links=Links(parties=[PartyLink(party.id, "customer")]))
        instance = processes.start(key="race", agent=None, dossier=dossier)
        session.commit()
        task_id, instance_id, agent_ids = the_task(instance).id, instance.id, [a.id for a in agents]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def complete(agent_id: int) -> None:
        from app.security.models import Agent

        with app.app_context():
            set_context(AuditContext(actor_label="test"))
            agent = session.get(Agent, agent_id)
            barrier.wait(timeout=30)
            try:
                processes.complete_task(agent=agent, task_id=task_id, answers={"amount": 3})
                session.commit()
                outcomes.append("won")
            except BusinessError as exc:
                session.rollback()
                outcomes.append(exc.message)

    threads = [threading.Thread(target=complete, args=(a,)) for a in agent_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(outcomes) == 2 and outcomes.count("won") == 1, outcomes
        assert any("traitée par quelqu'un d'autre" in o for o in outcomes if o != "won"), outcomes
        with app.app_context():
            assert session.get(ProcessInstance, instance_id).status == InstanceStatus.COMPLETED
            completions = session.execute(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.object_type == "process_instance", AuditEntry.object_id == str(instance_id),
                AuditEntry.action == "complete_task")).scalar_one()
            assert completions == 1
    finally:
        with app.app_context():
            _wipe(marks)


def _marks() -> dict[str, int]:
    """The highest id of each table, before a test that commits."""
    from app.db import Base

    return {t.name: session.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()
            for t in Base.metadata.sorted_tables if "id" in t.c and t.c.id.type.python_type is int}


def _wipe(marks: dict[str, int]) -> None:
    """Remove the rows a committed test added: those past the marks, and the links that point to them."""
    from app.db import Base

    with db.get_engine().begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in marks:
                connection.execute(delete(table).where(table.c.id > marks[table.name]))
                continue
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target in marks and fk.column.name == "id":
                    connection.execute(delete(table).where(fk.parent > marks[target]))


# --- Every shipped process, through the service -----------------------------------------------

@pytest.mark.parametrize("key", sorted(p.name for p in BPMN.iterdir() if p.is_dir()))
def test_each_shipped_process_runs_to_its_end_through_the_service(world, frozen_clock, key):
    """Each step done by an agent of its lane (front desk or back office), with the sample answers
    checked against its form; each timer fired by the timer job once due, before the ready steps
    beside it (a reminder on a step opens its own branch), so that every sample answer is used."""
    from tests.unit.test_shipped_processes import ANSWERS, TIMERS

    by_role = {"accueil": world.agent, "back_office": world.bo_lyon}
    world.helene.vulnerable = key == "unpaid_relaunch"  # the relaunch's social-support step is walked too
    instance = processes.start(key=key, agent=world.agent, dossier=open_dossier(world, key))
    session.commit()
    completed, fired = [], []
    for _step in range(16):
        if instance.status == InstanceStatus.COMPLETED:
            break
        timers = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)
                                 .order_by(ProcessTimer.due_at, ProcessTimer.id)).scalars().all()
        tasks = ready_tasks(instance)
        assert timers or tasks, f"{key} waits for nothing after {completed + fired}"
        if timers:
            timer = timers[0]
            timer.due_at = frozen_clock.current - timedelta(seconds=1)
            session.commit()
            assert processes.fire_due_timers() == 1
            fired.append(timer.element_id)
        else:
            task = tasks[0]
            agent = by_role[task.role_code]
            processes.complete_task(agent=agent, task_id=task.id, answers=ANSWERS[key][task.element_id])
            completed.append(task.element_id)
        session.commit()
    assert instance.status == InstanceStatus.COMPLETED, completed + fired
    assert sorted(completed) == sorted(ANSWERS[key])
    assert set(fired) == set(TIMERS.get(key, {}))
    assert session.execute(select(func.count()).select_from(ProcessTimer).where(
        ProcessTimer.instance_id == instance.id)).scalar_one() == 0


def test_a_payment_message_ends_the_relaunch_while_it_waits(world):
    instance = processes.start(key="unpaid_relaunch", agent=None, dossier=open_dossier(world, "unpaid_relaunch"))
    session.commit()
    assert instance.status == InstanceStatus.WAITING
    timer = session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalar_one()
    assert timer.element_id == "wait"
    assert processes.send_message(instance_id=instance.id, name="facture_payee",
                                  payload={"invoice": "F-2026-0042"}) is True
    session.commit()
    assert instance.status == InstanceStatus.COMPLETED and instance.ended_at is not None
    done = processes.progress(instance).done
    assert "end_paid" in done and "collect" not in done
    assert ready_tasks(instance) == []
    assert session.execute(select(func.count()).select_from(ProcessTimer).where(
        ProcessTimer.instance_id == instance.id)).scalar_one() == 0


def test_the_reminder_fires_beside_the_signature_and_the_signature_cancels_it(world, frozen_clock):
    from tests.unit.test_shipped_processes import ANSWERS

    answers = ANSWERS["payment_difficulty"]

    def waiting_for_signature() -> ProcessInstance:
        instance = processes.start(key="payment_difficulty", agent=world.agent,
                                   dossier=open_dossier(world, "payment_difficulty"))
        processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=answers["study"])
        session.commit()
        return instance

    def timers(instance) -> list[ProcessTimer]:
        return list(session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == instance.id)).scalars())

    instance = waiting_for_signature()
    sign = the_task(instance)
    assert (sign.element_id, sign.role_code) == ("sign", "back_office")
    [reminder] = timers(instance)
    assert reminder.element_id == "sign_reminder"
    assert abs(reminder.due_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    reminder.due_at = frozen_clock.current - timedelta(seconds=1)  # a week without an answer
    session.commit()
    assert processes.fire_due_timers() == 1
    tasks = {t.element_id: t for t in ready_tasks(instance)}
    assert set(tasks) == {"sign", "remind"} and tasks["sign"].id == sign.id  # the signature still waits
    remind = tasks["remind"]
    assert (remind.role_code, remind.form) == ("back_office", "remind.schema.json") and remind.instructions
    assert instance.status == InstanceStatus.RUNNING and timers(instance) == []
    processes.complete_task(agent=world.bo_lyon, task_id=remind.id, answers=answers["remind"])
    session.commit()
    assert the_task(instance).id == sign.id
    assert "end_reminded" in processes.progress(instance).done

    # Signed before the week is out: the reminder is dropped, the first instalment awaited.
    other = waiting_for_signature()
    assert [t.element_id for t in timers(other)] == ["sign_reminder"]
    processes.complete_task(agent=world.bo_lyon, task_id=the_task(other).id, answers=answers["sign"])
    session.commit()
    assert [t.element_id for t in timers(other)] == ["wait_first"]
    assert ready_tasks(other) == [] and other.status == InstanceStatus.WAITING
    assert processes.fire_due_timers() == 0

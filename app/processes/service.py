"""Process instances: starting one on a contact or a dossier, completing its user tasks, firing its
timers, delivering its messages, and the supervisors' retry and cancel.

Every change to an instance happens under a lock on its row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite serialises writers) and a revision check, so two agents completing the same
task cannot both win: the second is told the task is gone. After each step the instance's state is
saved and its user tasks (the inbox) and timers (the beat job's list) are rewritten from it, in
the same transaction. A step that fails puts the instance in error with the element and the
message; nothing else is lost, and a supervisor retries it. Functions flush; the caller commits.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm.exc import StaleDataError

from app import clock
from app.audit import service as audit
from app.contacts.models import Contact, ContactParty, PartyLinkRole
from app.contacts.objects import Ref
from app.contracts.models import Contract
from app.db import lock_row, session, skip_locked
from app.dossiers.models import Dossier, DossierObject, DossierParty
from app.errors import BusinessError
from app.parties.models import Party
from app.processes import definitions, engine, forms
from app.processes.engine import Run, StepError, TaskNotReady, register_value_type
from app.processes.models import (
    InstanceStatus,
    ProcessDefinition,
    ProcessInstance,
    ProcessMessage,
    ProcessTask,
    ProcessTimer,
    TaskStatus,
)
from app.security.models import Agent, Role
from app.security.scope import scope_condition

log = logging.getLogger(__name__)

# The project's value types that process data may hold, kept as themselves across saves.
register_value_type(Ref, lambda ref: {"kind": ref.kind, "id": ref.id}, lambda d: Ref(d["kind"], int(d["id"])))

READ = "party.read"
SUPERVISE = "supervision"
REASON_MAX = 2000


class TaskGone(BusinessError):
    """The task was completed by someone else, or the process moved on without it."""

    def __init__(self) -> None:
        super().__init__(_("Cette tâche vient d'être traitée par quelqu'un d'autre, ou le processus est passé "
                           "à la suite : rechargez la page."))


class FormInvalid(BusinessError):
    """The answers do not satisfy the step's form: field name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(_("Le formulaire contient des erreurs : corrigez les champs signalés."))
        self.errors = errors


# --- Reads (scoped) ---------------------------------------------------------------------------

def get_instance(*, agent: Agent, instance_id: int, permission: str = READ) -> ProcessInstance | None:
    stmt = select(ProcessInstance).where(ProcessInstance.id == instance_id,
                                         scope_condition(ProcessInstance, agent=agent, permission=permission))
    return session.execute(stmt).scalar_one_or_none()


def get_task(*, agent: Agent, task_id: int, permission: str = READ) -> ProcessTask | None:
    stmt = select(ProcessTask).where(ProcessTask.id == task_id,
                                     scope_condition(ProcessTask, agent=agent, permission=permission))
    return session.execute(stmt).scalar_one_or_none()


def instances_of(*, agent: Agent, dossier_id: int | None = None,
                 contact_id: int | None = None) -> list[ProcessInstance]:
    stmt = select(ProcessInstance).where(scope_condition(ProcessInstance, agent=agent, permission=READ))
    if dossier_id is not None:
        stmt = stmt.where(ProcessInstance.dossier_id == dossier_id)
    if contact_id is not None:
        stmt = stmt.where(ProcessInstance.contact_id == contact_id)
    return list(session.execute(stmt.order_by(ProcessInstance.id.desc())).scalars())


def tasks_of(instance: ProcessInstance) -> list[ProcessTask]:
    stmt = select(ProcessTask).where(ProcessTask.instance_id == instance.id).order_by(ProcessTask.id)
    return list(session.execute(stmt).scalars())


def role_labels() -> dict[str, str]:
    """Role code → the label agents know it by ("Agent de back-office"): how lanes are shown."""
    return dict(session.execute(select(Role.code, Role.label)).all())


def role_label(code: str) -> str:
    """A lane's role as agents know it, or its code if no such role exists."""
    return role_labels().get(code, code)


def may_work(agent: Agent, task: ProcessTask) -> bool:
    """Whether the agent may claim and complete the task: it is ready, offered to one of the
    agent's roles (or to anyone, without a lane), not held by a colleague."""
    return (task.status == TaskStatus.READY and task.instance.status == InstanceStatus.RUNNING
            and (task.role_code is None or task.role_code in agent.role_codes)
            and task.assignee_id in (None, agent.id))


# --- Starting ---------------------------------------------------------------------------------

def _context(*, dossier: Dossier | None, contact: Contact | None, agent: Agent | None) -> dict:
    """The start data: plain values naming what the process is about, for forms and scripts."""
    party_id = contract_id = None
    if dossier is not None:
        links = session.execute(select(DossierParty).where(DossierParty.dossier_id == dossier.id)).scalars().all()
        objects = session.execute(select(DossierObject).where(DossierObject.dossier_id == dossier.id)).scalars().all()
    else:
        links = session.execute(select(ContactParty).where(ContactParty.contact_id == contact.id)).scalars().all()
        objects = contact.objects
    for link in sorted(links, key=lambda x: (x.role != PartyLinkRole.CUSTOMER, x.role != PartyLinkRole.HOLDER,
                                             x.party_id)):
        if link.role != PartyLinkRole.THIRD_PARTY:
            party_id = link.party_id
            break
    contract_id = next((o.object_id for o in sorted(objects, key=lambda o: o.object_id)
                        if o.object_type == "contract"), None)
    party = session.get(Party, party_id) if party_id else None
    contract = session.get(Contract, contract_id) if contract_id else None
    return {
        "dossier_id": dossier.id if dossier else None,
        "dossier_reference": dossier.reference if dossier else None,
        "contact_id": contact.id if contact else None,
        "party_id": party.id if party else None,
        "party_number": party.number if party else None,
        "party_name": party.display_name if party else None,
        "contract_id": contract.id if contract else None,
        "contract_number": contract.number if contract else None,
        "agent_id": agent.id if agent else None,
        "agent_name": agent.full_name if agent else None,
    }


def running_on(*, dossier_id: int | None = None, contact_id: int | None = None) -> ProcessInstance | None:
    """The active instance on this dossier (or on this contact, outside any dossier), if any."""
    found = last_on(dossier_id=dossier_id, contact_id=contact_id)
    return found if found is not None and found.is_active else None


def last_on(*, dossier_id: int | None = None, contact_id: int | None = None) -> ProcessInstance | None:
    """The latest instance on this dossier (or contact, outside any dossier) that was not cancelled."""
    stmt = select(ProcessInstance).where(ProcessInstance.status != InstanceStatus.CANCELLED)
    if dossier_id is not None:
        stmt = stmt.where(ProcessInstance.dossier_id == dossier_id)
    else:
        stmt = stmt.where(ProcessInstance.contact_id == contact_id, ProcessInstance.dossier_id.is_(None))
    return session.execute(stmt.order_by(ProcessInstance.id.desc()).limit(1)).scalar_one_or_none()


def start(*, key: str, agent: Agent | None, dossier: Dossier | None = None,
          contact: Contact | None = None) -> ProcessInstance:
    """Start the latest version of a process on a dossier or a contact (the caller checked that the
    agent may read it; agent None: started by the system). One active instance at a time on each;
    a first step that fails leaves the instance in error, for a supervisor."""
    if dossier is None and contact is None:
        raise ValueError("a process runs on a dossier or a contact")
    definition = definitions.latest(key)
    if definition is None:
        raise BusinessError(_("Le processus « %(key)s » n'est pas déployé.", key=key))
    lock_row(dossier or contact)  # two starts on one dossier queue here
    previous = last_on(dossier_id=dossier.id if dossier else None, contact_id=contact.id if contact else None)
    if previous is not None and previous.is_active:
        raise BusinessError(_("Un processus est déjà en cours ici (n° %(id)s).", id=previous.id))
    if previous is not None:  # completed: it is not run twice; a cancelled one may be started again
        raise BusinessError(_("Le processus a déjà été mené ici (n° %(id)s).", id=previous.id))
    now = clock.now()
    instance = ProcessInstance(definition=definition, dossier_id=dossier.id if dossier else None,
                               contact_id=contact.id if contact else None, status=InstanceStatus.RUNNING,
                               state="", started_by_id=agent.id if agent else None,
                               started_at=now, updated_at=now)
    data = {"context": _context(dossier=dossier, contact=contact, agent=agent)}
    session.add(instance)
    session.flush()
    run = Run.start(definition, data)
    _advance(instance, run, lambda r: r.advance(), actor=agent)
    audit.record("start", obj=instance, data={"definition": str(definition)})
    return instance


# --- Loading, saving ---------------------------------------------------------------------------

def _locked(instance_id: int) -> ProcessInstance:
    """The instance, its row locked until the transaction ends, read afresh."""
    stmt = select(ProcessInstance).where(ProcessInstance.id == instance_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=ProcessInstance)
    instance = session.execute(stmt).scalar_one_or_none()
    if instance is None:
        raise BusinessError(_("Processus introuvable."))
    return instance


def answers_on(*, dossier_id: int) -> dict:
    """What the steps of the dossier's latest process answered, later answers over earlier ones
    (for a letter generated by hand: the payment plan agreed, the move-in date…)."""
    instance = last_on(dossier_id=dossier_id)
    if instance is None:
        return {}
    run = _load(instance)
    merged: dict = {}
    for task in tasks_of(instance):
        if task.status == TaskStatus.COMPLETED:
            merged.update(run.data_of(task.task_uuid))
    merged.pop("context", None)
    return merged


def _load(instance: ProcessInstance) -> Run:
    return Run.load(instance.definition, instance.state)


def _fail(instance: ProcessInstance, error: StepError) -> None:
    instance.status = InstanceStatus.ERROR
    instance.error_element = error.element[:200]
    instance.error_message = error.message[:4000]


def _save(instance: ProcessInstance, run: Run, *, actor: Agent | None) -> None:
    """Store the state, then rewrite the inbox and the timers from it; deliver kept messages the
    instance now waits for. The revision check turns a lost race into TaskGone."""
    _deliver_kept(instance, run)
    snapshot = run.snapshot()
    now = clock.now()
    # A cancelled instance stays cancelled, a failed one failed; any other takes its new state.
    if instance.status != InstanceStatus.CANCELLED and (instance.status != InstanceStatus.ERROR
                                                         or not snapshot.failed):
        instance.error_element = instance.error_message = None
        if snapshot.failed:  # a failure raises StepError; kept in error all the same
            instance.status = InstanceStatus.ERROR
        elif snapshot.completed:
            instance.status = InstanceStatus.COMPLETED
            instance.ended_at = now
        else:
            instance.status = InstanceStatus.RUNNING if snapshot.ready else InstanceStatus.WAITING
    instance.state, instance.updated_at = run.dump(), now
    try:
        session.flush()
    except StaleDataError:
        raise TaskGone() from None
    _sync_tasks(instance, snapshot, actor=actor, now=now)
    _sync_timers(instance, snapshot)


def _sync_tasks(instance: ProcessInstance, snapshot, *, actor: Agent | None, now: datetime) -> None:
    open_tasks = {t.task_uuid: t for t in session.execute(select(ProcessTask).where(
        ProcessTask.instance_id == instance.id, ProcessTask.status == TaskStatus.READY)).scalars()}
    # In error, ready tasks stay listed (not workable until the retry); ended, they are cancelled.
    ended = instance.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED)
    ready = {} if ended else {t.uuid: t for t in snapshot.ready}
    for uuid, task in open_tasks.items():
        if uuid not in ready:
            task.status = TaskStatus.CANCELLED
            task.completed_at = now
    due_at = instance.dossier.due_at if instance.dossier_id else None
    for uuid, user_task in ready.items():
        if uuid in open_tasks:
            continue
        # The agent who moved the process on keeps going with the next step, when it is theirs.
        assignee = actor.id if actor is not None and (user_task.lane is None or user_task.lane in actor.role_codes) \
            else None
        session.add(ProcessTask(instance_id=instance.id, task_uuid=uuid, element_id=user_task.element_id,
                                name=user_task.name[:200], role_code=user_task.lane, form=user_task.form,
                                ui_form=user_task.ui_form, instructions=user_task.instructions,
                                assignee_id=assignee, status=TaskStatus.READY, created_at=now, due_at=due_at))
    session.flush()


def _sync_timers(instance: ProcessInstance, snapshot) -> None:
    session.execute(delete(ProcessTimer).where(ProcessTimer.instance_id == instance.id))
    if instance.status in (InstanceStatus.RUNNING, InstanceStatus.WAITING):
        for timer in snapshot.timers:
            session.add(ProcessTimer(instance_id=instance.id, task_uuid=timer.uuid, element_id=timer.element_id,
                                     due_at=timer.due_at))
    session.flush()


def _deliver_kept(instance: ProcessInstance, run: Run) -> None:
    """Messages that arrived before the instance waited for them, delivered once it does."""
    if instance.status in (InstanceStatus.ERROR, InstanceStatus.CANCELLED, InstanceStatus.COMPLETED):
        return
    pending = session.execute(select(ProcessMessage).where(
        ProcessMessage.instance_id == instance.id, ProcessMessage.delivered_at.is_(None))
        .order_by(ProcessMessage.id)).scalars().all()
    for message in pending:
        if message.name not in run.snapshot().messages:
            continue
        try:
            delivered = run.deliver(message.name, dict(message.payload or {}))
        except StepError as exc:
            _fail(instance, exc)
            delivered = True
        if delivered:
            message.delivered_at = clock.now()
        if instance.status == InstanceStatus.ERROR:
            break


def _step(instance: ProcessInstance, action, *, actor: Agent | None) -> Run:
    """Load the locked instance, apply action(run), save; a failing step puts it in error."""
    return _advance(instance, _load(instance), action, actor=actor)


def _advance(instance: ProcessInstance, run: Run, action, *, actor: Agent | None) -> Run:
    try:
        action(run)
    except StepError as exc:
        _fail(instance, exc)
    _save(instance, run, actor=actor)
    return run


def migration_blockers(instance: ProcessInstance, definition: ProcessDefinition) -> list[str]:
    """Why this instance cannot move to that version: the changed steps it already reached."""
    return _load(instance).migration_blockers(definition)


def migrate(*, agent: Agent, instance_id: int, definition: ProcessDefinition) -> ProcessInstance:
    """Move a running instance to another version of its process, when none of the steps that
    version changes has already run; audited."""
    instance = _locked(instance_id)
    if not instance.is_active:
        raise BusinessError(_("Ce processus est terminé : il reste sur sa version."))
    if instance.definition.key != definition.key or instance.definition_id == definition.id:
        raise BusinessError(_("Ce processus est déjà sur cette version."))
    run = _load(instance)
    blockers = run.migration_blockers(definition)
    if blockers:
        raise BusinessError(_("Ce processus ne peut pas changer de version : ces étapes modifiées ont déjà été "
                              "atteintes : %(steps)s.", steps=", ".join(blockers)))
    before = str(instance.definition)
    instance.definition = definition
    # actor None: a step the new version makes ready goes to its lane, not to the analyst.
    _advance(instance, run, lambda r: r.migrate(definition), actor=None)
    audit.record("migrate", obj=instance, data={"from": before, "to": str(definition)})
    return instance


# --- User tasks -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    schema: dict
    ui: dict


def guard_notes(task: ProcessTask, data: dict) -> list[str]:
    """What the task page says before the agent answers, from the form's guard (a measure the law
    forbids today…)."""
    guard = engine.form_guard(form_of(task).schema)
    return guard.explain(data) if guard is not None else []


def form_of(task: ProcessTask) -> Form:
    files = task.instance.definition.files
    schema = json.loads(files[task.form]) if task.form and task.form in files else {"type": "object"}
    ui = json.loads(files[task.ui_form]) if task.ui_form and task.ui_form in files else {}
    return Form(schema, ui)


def _workable(agent: Agent, task_id: int, checked: ProcessTask | None) -> tuple[ProcessTask, ProcessInstance]:
    """The task, its instance locked, if the agent may work it now. checked: the task as the caller
    already read it through the agent's scope in this transaction (spares a second scoped read)."""
    task = checked if checked is not None and checked.id == task_id else get_task(agent=agent, task_id=task_id)
    if task is None:
        raise BusinessError(_("Tâche introuvable ou hors de votre périmètre."))
    instance = _locked(task.instance_id)
    session.refresh(task)
    if task.status == TaskStatus.READY and instance.status == InstanceStatus.ERROR:
        raise BusinessError(_("Le processus est en erreur : un superviseur doit relancer l'étape en échec."))
    if task.status != TaskStatus.READY or instance.status != InstanceStatus.RUNNING:
        raise TaskGone()
    if task.role_code is not None and task.role_code not in agent.role_codes:
        raise BusinessError(_("Cette tâche est réservée au rôle « %(role)s ».", role=role_label(task.role_code)))
    if task.assignee_id not in (None, agent.id):
        raise BusinessError(_("Cette tâche est prise par %(name)s.", name=task.assignee.full_name))
    return task, instance


def refusals(schema: dict, ui: dict | None, answers: dict, task_data: Callable[[], dict]) -> dict[str, str]:
    """What refuses these answers, by field: the form's own rules, then its guard's (a rule of law or
    of the business holding an answer, with the reason), which reads the task's data."""
    errors = forms.validate(schema, ui, answers)
    guard = engine.form_guard(schema)
    if not errors and guard is not None:
        errors = guard.check(task_data(), answers)
    return errors


def complete_task(*, agent: Agent, task_id: int, answers: dict, checked: ProcessTask | None = None) -> ProcessTask:
    """Validate the answers against the step's form, complete the task and move the process on."""
    task, instance = _workable(agent, task_id, checked)
    form = form_of(task)
    run = _load(instance)
    errors = refusals(form.schema, form.ui, answers, lambda: run.data_of(task.task_uuid))
    if errors:
        raise FormInvalid(errors)

    def action(run: Run) -> None:
        try:
            run.complete(task.task_uuid, answers)
        except TaskNotReady:
            raise TaskGone() from None

    now = clock.now()
    task.status, task.completed_at, task.completed_by_id = TaskStatus.COMPLETED, now, agent.id
    task.assignee_id, task.draft = agent.id, None
    session.flush()
    _advance(instance, run, action, actor=agent)
    audit.record("complete_task", obj=instance, data={"task": task.element_id})
    return task


def save_draft(*, agent: Agent, task_id: int, answers: dict, checked: ProcessTask | None = None) -> ProcessTask:
    """Keep the answers typed so far (the posted text, unchecked) without completing; the agent
    takes the task."""
    task, _instance = _workable(agent, task_id, checked)
    task.draft = answers
    task.assignee_id = agent.id
    session.flush()
    return task


def claim(*, agent: Agent, task_id: int, checked: ProcessTask | None = None) -> ProcessTask:
    task, _instance = _workable(agent, task_id, checked)
    task.assignee_id = agent.id
    session.flush()
    audit.record("claim_task", obj=task.instance, data={"task": task.element_id})
    return task


def release(*, agent: Agent, task_id: int, checked: ProcessTask | None = None) -> ProcessTask:
    task, _instance = _workable(agent, task_id, checked)
    task.assignee_id = None
    session.flush()
    audit.record("release_task", obj=task.instance, data={"task": task.element_id})
    return task


# --- Supervision ------------------------------------------------------------------------------

def _supervised(agent: Agent, instance_id: int) -> ProcessInstance:
    if not agent.can(SUPERVISE):
        raise BusinessError(_("Vous n'avez pas l'habilitation de superviser les processus."))
    if get_instance(agent=agent, instance_id=instance_id, permission=SUPERVISE) is None:
        raise BusinessError(_("Processus introuvable ou hors de votre périmètre."))
    return _locked(instance_id)


def reassign(*, agent: Agent, task_id: int, to_agent_id: int | None) -> ProcessTask:
    """A supervisor gives a ready task to an agent holding its role (None: back to the team)."""
    task = get_task(agent=agent, task_id=task_id, permission=SUPERVISE)
    if task is None:
        raise BusinessError(_("Tâche introuvable ou hors de votre périmètre."))
    _supervised(agent, task.instance_id)
    session.refresh(task)
    if task.status != TaskStatus.READY:
        raise TaskGone()
    target = None
    if to_agent_id is not None:
        target = session.get(Agent, to_agent_id)
        if target is None or not target.is_active:
            raise BusinessError(_("Agent introuvable ou inactif."))
        if task.role_code is not None and task.role_code not in target.role_codes:
            raise BusinessError(_("%(name)s n'a pas le rôle « %(role)s » de cette tâche.", name=target.full_name,
                                  role=role_label(task.role_code)))
        if get_task(agent=target, task_id=task.id) is None:
            raise BusinessError(_("Ce dossier est hors du périmètre de %(name)s.", name=target.full_name))
    task.assignee_id = target.id if target else None
    session.flush()
    audit.record("reassign_task", obj=task.instance, data={"task": task.element_id, "to": to_agent_id})
    return task


def retry(*, agent: Agent, instance_id: int) -> ProcessInstance:
    """Run the failed step again (after its data or its process was corrected)."""
    instance = _supervised(agent, instance_id)
    if instance.status != InstanceStatus.ERROR:
        raise BusinessError(_("Ce processus n'est pas en erreur."))
    instance.status = InstanceStatus.RUNNING
    _step(instance, lambda run: run.retry(), actor=None)
    audit.record("retry", obj=instance, data={"status": instance.status})
    return instance


def cancel(*, agent: Agent, instance_id: int, reason: str | None) -> ProcessInstance:
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise BusinessError(_("Indiquez le motif de l'annulation."), field="reason")
    if len(reason) > REASON_MAX:
        raise BusinessError(_("Le motif tient en %(n)s caractères au plus.", n=REASON_MAX), field="reason")
    instance = _supervised(agent, instance_id)
    if not instance.is_active:
        raise BusinessError(_("Ce processus est déjà terminé."))
    instance.status, instance.cancel_reason, instance.ended_at = InstanceStatus.CANCELLED, reason, clock.now()
    _step(instance, lambda run: run.cancel(), actor=None)
    audit.record("cancel", obj=instance, data={"reason": reason})
    return instance


# --- Timers and messages ----------------------------------------------------------------------

def _pick_due(now: datetime, skip: set[int]) -> tuple[int, int] | None:
    """(timer id, instance id) of the earliest due timer, its instance locked for this transaction.
    On PostgreSQL an instance another worker (or an agent) holds is skipped: several workers share
    the work without firing a timer twice. The instance is locked before its timers, as everywhere."""
    stmt = (select(ProcessTimer.id, ProcessInstance.id)
            .join(ProcessInstance, ProcessInstance.id == ProcessTimer.instance_id)
            .where(ProcessTimer.due_at <= now).order_by(ProcessTimer.due_at).limit(1))
    if skip:
        stmt = stmt.where(ProcessTimer.id.not_in(skip))
    row = session.execute(skip_locked(stmt, ProcessInstance)).first()
    return (row[0], row[1]) if row else None


def fire_timer(timer_id: int, instance_id: int, now: datetime) -> bool:
    """Fire one due timer of this instance under the instance's lock and save; False when it is
    gone (fired by another worker, or the process moved on). The caller commits."""
    instance = _locked(instance_id)
    timer = session.execute(select(ProcessTimer).where(ProcessTimer.id == timer_id)
                            .execution_options(populate_existing=True)).scalar_one_or_none()
    if timer is None or instance.status not in (InstanceStatus.RUNNING, InstanceStatus.WAITING):
        return False
    element, fired = timer.element_id, []
    _step(instance, lambda run: fired.append(run.fire_timer(timer.task_uuid, now)), actor=None)
    if fired and fired[0]:
        audit.record("timer", obj=instance, data={"element": element})
    return bool(fired and fired[0])


def fire_due_timers(*, limit: int = 500, after_fire: Callable[[], None] | None = None) -> int:
    """Fire the timers due now, one transaction each (a worker that dies mid-way loses only the one
    it held, picked again by the next run). A timer that fails for another reason than its step is
    left for the next run and skipped in this one. after_fire: a fault-injection hook, run after a
    timer fired and before its commit."""
    fired, skip = 0, set()
    for _attempt in range(limit):
        now = clock.now()
        picked = _pick_due(now, skip)
        if picked is None:
            break
        timer_id, instance_id = picked
        try:
            done = fire_timer(timer_id, instance_id, now)
            if after_fire is not None:
                after_fire()
            session.commit()
        except Exception:
            session.rollback()
            log.exception("timer %s could not fire", timer_id)
            skip.add(timer_id)
            continue
        fired += done
        if not done:
            skip.add(timer_id)
    return fired


def send_message(*, instance_id: int, name: str, payload: dict | None = None, source: str | None = None) -> bool:
    """Give a message to an instance: delivered now when a catch event waits for it, else kept and
    delivered after a later step. True when delivered now."""
    instance = _locked(instance_id)
    message = ProcessMessage(instance_id=instance.id, name=name[:100], payload=payload or {},
                             received_at=clock.now(), source=(source or "")[:100] or None)
    session.add(message)
    session.flush()
    if instance.status not in (InstanceStatus.RUNNING, InstanceStatus.WAITING):
        return False
    _step(instance, lambda run: None, actor=None)
    return message.delivered_at is not None


@dataclass(frozen=True)
class Progress:
    """What the task and instance pages show, from one load of the state: the start context, the
    done, current and failed elements of the diagram (its BPMN is fetched apart), the data each
    ready task sees (to pre-fill its form) and the answers of the completed steps."""
    context: dict
    done: list[str]
    current: list[str]
    failed: list[str]
    task_data: dict[str, dict]
    tasks: list[ProcessTask]  # every user task the instance has had, in order
    answers: list[tuple[ProcessTask, list[tuple[str, str]]]]  # completed step → (field label, value shown)


def progress(instance: ProcessInstance) -> Progress:
    run = _load(instance)
    snapshot = run.snapshot()
    tasks = tasks_of(instance)
    return Progress(context=dict(run.data.get("context") or {}), done=snapshot.done,
                    current=[t.element_id for t in snapshot.ready] + snapshot.waiting, failed=snapshot.failed,
                    task_data={t.uuid: t.data for t in snapshot.ready}, tasks=tasks,
                    answers=[(t, _shown(t, run.data_of(t.task_uuid))) for t in tasks
                             if t.status == TaskStatus.COMPLETED])


def _shown(task: ProcessTask, data: dict) -> list[tuple[str, str]]:
    """A completed step's answers as its form labels them: choices by their label, booleans as yes/no."""
    form = form_of(task)
    shown = []
    for field in forms.build(form.schema, form.ui, forms.prefill(form.schema, data)):
        if field.name not in data:
            continue
        if field.widget == "checkbox":
            value = _("Oui") if field.value else _("Non")
        elif field.widget == "date" and field.value:
            try:
                value = format_date(date.fromisoformat(field.value), "long")
            except ValueError:
                value = field.value
        else:
            value = dict(field.options).get(field.value, field.value)
        shown.append((field.label, value))
    return shown


__all__ = ["FormInvalid", "TaskGone", "start", "complete_task", "save_draft", "claim", "release",
           "reassign", "retry", "cancel", "fire_due_timers", "fire_timer", "send_message", "progress"]

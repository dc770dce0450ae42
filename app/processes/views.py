"""The agents' side of the processes: "Plan d'action" on a contact, starting a dossier's process,
the task inbox ("Mes tâches", "Tâches de mon équipe"), the task page (instructions, context, the
step's form, the progress diagram), the instance page, and the supervisors' list with retry,
cancel and reassignment."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select

from app import clock
from app.contacts.service import get_contact
from app.db import session as db_session
from app.dossiers import reads as dossier_reads
from app.dossiers import service as dossier_service
from app.errors import BusinessError
from app.processes import forms, service
from app.processes.models import InstanceStatus, ProcessDefinition, ProcessInstance, ProcessTask, TaskStatus
from app.security.models import Agent, Role
from app.security.scope import scope_condition
from app.web import db_id, require_permission

bp = Blueprint("processes", __name__)

PAGE_SIZE = 100
READ = service.READ


def _fail(exc: BusinessError, to: str) -> Response:
    db_session.rollback()
    flash(exc.message, "error")
    return redirect(to, 303)


def _first_task_url(instance: ProcessInstance) -> str:
    """Where the agent goes after moving a process on: their next task on it, else the instance."""
    task = db_session.execute(select(ProcessTask).where(
        ProcessTask.instance_id == instance.id, ProcessTask.status == TaskStatus.READY,
        ProcessTask.assignee_id == current_user.id).order_by(ProcessTask.id).limit(1)).scalar_one_or_none()
    if task is not None:
        return url_for("processes.task", task_id=task.id)
    return url_for("processes.instance", instance_id=instance.id)


# --- Starting ---------------------------------------------------------------------------------

@bp.route("/contacts/<int:contact_id>/plan-action", methods=["POST"])
@require_permission("contact.create")
def action_plan(contact_id: int):
    """"Plan d'action": the contact type's process on the contact; or, for a type that proposes a
    classification, the dossier of that classification opened from the contact with its process."""
    contact = get_contact(agent=current_user, contact_id=contact_id)
    if contact is None:
        abort(404)
    back = url_for("contacts.show", contact_id=contact_id)
    contact_type = contact.contact_type
    try:
        if contact_type.process_key:
            instance = service.start(key=contact_type.process_key, agent=current_user, contact=contact)
        elif contact_type.dossier_type is not None and contact_type.dossier_type.process_key:
            try:
                dossier = dossier_service.create_from_contact(agent=current_user, contact_id=contact.id,
                                                              dossier_type_id=contact_type.dossier_type_id)
            except dossier_service.DossierExists as exc:
                dossier = exc.dossier
            instance = service.last_on(dossier_id=dossier.id) or service.start(
                key=dossier.dossier_type.process_key, agent=current_user, dossier=dossier)
        else:
            raise BusinessError(_("Ce type de contact n'a pas de plan d'action."))
    except BusinessError as exc:
        return _fail(exc, back)
    db_session.commit()
    flash(_("Processus « %(name)s » lancé.", name=instance.definition.name), "success")
    return redirect(_first_task_url(instance), 303)


@bp.route("/dossiers/<int:dossier_id>/processus", methods=["POST"])
@require_permission("dossier.create")
def start_for_dossier(dossier_id: int):
    dossier = dossier_reads.get_dossier(agent=current_user, dossier_id=dossier_id)
    if dossier is None:
        abort(404)
    back = url_for("dossiers.show", dossier_id=dossier_id, _anchor="steps")
    try:
        if dossier.is_closed:
            raise BusinessError(_("Le dossier est clos."))
        if not dossier.dossier_type.process_key:
            raise BusinessError(_("Cette classification n'a pas de processus."))
        instance = service.start(key=dossier.dossier_type.process_key, agent=current_user, dossier=dossier)
    except BusinessError as exc:
        return _fail(exc, back)
    db_session.commit()
    flash(_("Processus « %(name)s » lancé.", name=instance.definition.name), "success")
    return redirect(_first_task_url(instance), 303)


# --- Inbox ------------------------------------------------------------------------------------

@bp.route("/taches")
@require_permission(READ)
def inbox():
    """"Mes tâches" (held by me) or "Tâches de mon équipe" (offered to my roles, in my territories)."""
    view = "equipe" if request.args.get("vue") == "equipe" else "moi"
    key = (request.args.get("processus") or "").strip()[:100]
    late = request.args.get("retard") == "1"
    stmt = (select(ProcessTask).join(ProcessInstance, ProcessInstance.id == ProcessTask.instance_id)
            .where(ProcessTask.status == TaskStatus.READY,
                   scope_condition(ProcessTask, agent=current_user, permission=READ)))
    if view == "moi":
        stmt = stmt.where(ProcessTask.assignee_id == current_user.id)
    else:
        stmt = stmt.where(or_(ProcessTask.role_code.in_(sorted(current_user.role_codes)),
                              ProcessTask.role_code.is_(None)))
    if key:
        stmt = stmt.join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id).where(
            ProcessDefinition.key == key)
    now = clock.now()
    if late:
        stmt = stmt.where(ProcessTask.due_at < now)
    stmt = stmt.order_by(ProcessTask.due_at.is_(None), ProcessTask.due_at, ProcessTask.id).limit(PAGE_SIZE + 1)
    tasks = list(db_session.execute(stmt).scalars())
    keys = db_session.execute(select(ProcessDefinition.key, ProcessDefinition.name)
                              .distinct().order_by(ProcessDefinition.name)).all()
    return render_template("processes/inbox.html", tasks=tasks[:PAGE_SIZE], more=len(tasks) > PAGE_SIZE, view=view,
                           key=key, late=late, keys=dict(keys), now=now, role_labels=service.role_labels())


# --- The task page ----------------------------------------------------------------------------

def _task_or_404(task_id: int) -> ProcessTask:
    task = service.get_task(agent=current_user, task_id=task_id)
    if task is None:
        abort(404)
    return task


def _render_task(task: ProcessTask, *, values: dict | None = None, errors: dict | None = None, status: int = 200):
    form = service.form_of(task)
    instance = task.instance
    progress = service.progress(instance)
    if values is None:
        values = task.draft if task.draft is not None else progress.task_data.get(task.task_uuid, {})
    fields = forms.build(form.schema, form.ui, values, errors or {})
    ready = task.status == TaskStatus.READY
    rules = service.guard_notes(task, progress.task_data.get(task.task_uuid, {})) if ready else []
    return render_template("processes/task.html", task=task, instance=instance, fields=fields, now=clock.now(),
                           rules=rules,
                           title=form.schema.get("title"), errors=errors or {}, progress=progress,
                           may_work=service.may_work(current_user, task), role_labels=service.role_labels()), status


@bp.route("/taches/<int:task_id>")
@require_permission(READ)
def task(task_id: int):
    return _render_task(_task_or_404(task_id))


@bp.route("/taches/<int:task_id>", methods=["POST"])
@require_permission(READ)
def act(task_id: int):
    """Complete the step, save a draft, take the task or give it back to the team."""
    task = _task_or_404(task_id)
    action = request.form.get("action")
    here = url_for("processes.task", task_id=task_id)
    form = service.form_of(task)
    try:
        if action == "complete":
            answers = forms.parse(form.schema, form.ui, request.form)
            service.complete_task(agent=current_user, task_id=task_id, answers=answers, checked=task)
        elif action == "draft":
            service.save_draft(agent=current_user, task_id=task_id, answers=forms.posted(form.schema, request.form),
                               checked=task)
        elif action == "claim":
            service.claim(agent=current_user, task_id=task_id, checked=task)
        elif action == "release":
            service.release(agent=current_user, task_id=task_id, checked=task)
        else:
            abort(400)
    except service.FormInvalid as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return _render_task(_task_or_404(task_id), values=forms.posted(form.schema, request.form),
                            errors=exc.errors, status=422)
    except BusinessError as exc:
        return _fail(exc, here)
    db_session.commit()
    if action == "complete":
        flash(_("Étape « %(name)s » terminée.", name=task.name), "success")
        return redirect(_first_task_url(task.instance), 303)
    messages = {"draft": _("Brouillon enregistré ; la tâche vous est attribuée."),
                "claim": _("Vous avez pris la tâche."), "release": _("Tâche rendue à l'équipe.")}
    flash(messages[action], "success")
    return redirect(here if action != "release" else url_for("processes.inbox", vue="equipe"), 303)


# --- Instances and supervision ----------------------------------------------------------------

def _instance_or_404(instance_id: int) -> ProcessInstance:
    instance = service.get_instance(agent=current_user, instance_id=instance_id)
    if instance is None:
        abort(404)
    return instance


@bp.route("/processus/<int:instance_id>")
@require_permission(READ)
def instance(instance_id: int):
    instance = _instance_or_404(instance_id)
    progress = service.progress(instance)
    supervisor = current_user.can(service.SUPERVISE)
    return render_template("processes/instance.html", instance=instance, tasks=progress.tasks, progress=progress,
                           supervisor=supervisor, role_labels=service.role_labels(),
                           candidates=_candidates(progress.tasks) if supervisor else {})


def _candidates(tasks: list[ProcessTask]) -> dict[int, list[Agent]]:
    """For each ready task, the active agents who may take it: its role, its territory."""
    result = {}
    for task in tasks:
        if task.status != TaskStatus.READY:
            continue
        stmt = select(Agent).where(Agent.active.is_(True)).order_by(Agent.full_name).limit(200)
        if task.role_code:
            stmt = stmt.where(Agent.roles.any(Role.code == task.role_code))
        result[task.id] = [a for a in db_session.execute(stmt).scalars()
                           if service.get_task(agent=a, task_id=task.id) is not None]
    return result


@bp.route("/processus/<int:instance_id>/schema.bpmn")
@require_permission(READ)
def diagram_xml(instance_id: int):
    instance = _instance_or_404(instance_id)
    definition = instance.definition
    return Response(definition.files.get(f"{definition.key}.bpmn", ""), mimetype="application/xml")


@bp.route("/supervision/processus")
@require_permission(service.SUPERVISE)
def supervision():
    status = request.args.get("statut") or ""
    if status not in InstanceStatus.ALL:
        status = ""
    stmt = select(ProcessInstance).where(scope_condition(ProcessInstance, agent=current_user,
                                                         permission=service.SUPERVISE))
    stmt = stmt.where(ProcessInstance.status == status) if status else stmt.where(
        ProcessInstance.status.in_(InstanceStatus.ACTIVE))
    stmt = stmt.order_by(ProcessInstance.status != InstanceStatus.ERROR, ProcessInstance.updated_at.desc())
    instances = list(db_session.execute(stmt.limit(PAGE_SIZE + 1)).scalars())
    counts = dict(db_session.execute(
        select(ProcessInstance.status, func.count()).where(scope_condition(
            ProcessInstance, agent=current_user, permission=service.SUPERVISE)).group_by(ProcessInstance.status)).all())
    return render_template("processes/supervision.html", instances=instances[:PAGE_SIZE],
                           more=len(instances) > PAGE_SIZE, status=status, counts=counts)


@bp.route("/processus/<int:instance_id>/relancer", methods=["POST"])
@require_permission(service.SUPERVISE)
def retry(instance_id: int):
    _instance_or_404(instance_id)
    here = url_for("processes.instance", instance_id=instance_id)
    try:
        instance = service.retry(agent=current_user, instance_id=instance_id)
    except BusinessError as exc:
        return _fail(exc, here)
    db_session.commit()
    if instance.status == InstanceStatus.ERROR:
        flash(_("L'étape échoue encore : %(message)s", message=instance.error_message), "error")
    else:
        flash(_("Étape relancée : le processus a repris."), "success")
    return redirect(here, 303)


@bp.route("/processus/<int:instance_id>/annuler", methods=["POST"])
@require_permission(service.SUPERVISE)
def cancel(instance_id: int):
    _instance_or_404(instance_id)
    here = url_for("processes.instance", instance_id=instance_id)
    try:
        service.cancel(agent=current_user, instance_id=instance_id, reason=request.form.get("reason"))
    except BusinessError as exc:
        return _fail(exc, here)
    db_session.commit()
    flash(_("Processus annulé."), "success")
    return redirect(here, 303)


@bp.route("/taches/<int:task_id>/reaffecter", methods=["POST"])
@require_permission(service.SUPERVISE)
def reassign(task_id: int):
    task = _task_or_404(task_id)
    here = url_for("processes.instance", instance_id=task.instance_id)
    raw = request.form.get("agent") or ""
    to_agent = request.form.get("agent", type=db_id) if raw else None
    if raw and to_agent is None:
        return _fail(BusinessError(_("Agent introuvable ou inactif.")), here)
    try:
        service.reassign(agent=current_user, task_id=task_id, to_agent_id=to_agent)
    except BusinessError as exc:
        return _fail(exc, here)
    db_session.commit()
    flash(_("Tâche réaffectée.") if to_agent else _("Tâche rendue à l'équipe."), "success")
    return redirect(here, 303)



"""Administration of agents: create, edit roles and territories, reset password, deactivate."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from app.audit import service as audit
from app.db import session as db_session
from app.errors import BusinessError
from app.security import service
from app.security.forms import AgentForm, ConfirmForm, EditAgentForm, NewAgentForm, PasswordResetForm
from app.web import int_or_none, require_permission, show_error

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@require_permission("admin.agents")
def _guard():
    """Every page of this blueprint needs admin.agents."""


def _fill_choices(form: AgentForm, agent=None) -> None:
    """The roles and territories offered: the active ones, and those the agent already holds."""
    held_roles = {r.id for r in agent.roles} if agent is not None else set()
    held_territories = {t.id for t in agent.territories} if agent is not None else set()
    form.roles.choices = [SelectChoice(r.code, f"{r.code} — {r.label}" + ("" if r.active else _(" (désactivé)")))
                          for r in service.list_roles() if r.active or r.id in held_roles]
    territories = [t for t in service.list_territories() if t.active or t.id in held_territories]
    names = {t.code: t.name for t in territories}
    form.territories.choices = [
        SelectChoice(t.code, f"{'· ' * t.depth}{t.name} ({t.code})", optgroup=names.get(t.path.split("/")[1], ""))
        for t in territories
    ]


def _agent_or_404(agent_id: int):
    agent = service.get_agent(agent_id=agent_id)
    if agent is None:
        abort(404)
    return agent


@bp.route("/agents")
def agents():
    search = request.args.get("q", "").strip()
    return render_template("admin/agents.html", agents=service.list_agents(search=search or None), search=search)


@bp.route("/agents/new", methods=["GET", "POST"])
def new_agent():
    form = NewAgentForm()
    _fill_choices(form)
    status = 200
    if form.validate_on_submit():
        try:
            agent = service.create_agent(
                login=form.login.data,
                full_name=form.full_name.data,
                password=form.password.data,
                email=form.email.data,
                language=form.language.data,
                role_codes=form.roles.data,
                territory_codes=form.territories.data,
            )
        except BusinessError as exc:
            show_error(form, exc)
            status = 422
        else:
            flash(_("Agent %(login)s créé.", login=agent.login), "success")
            return redirect(url_for("admin.edit_agent", agent_id=agent.id))
    # 422 makes the request boundary roll back whatever the failed attempt touched.
    return render_template("admin/agent_new.html", form=form), 422 if form.errors else status


@bp.route("/agents/<int:agent_id>", methods=["GET", "POST"])
def edit_agent(agent_id: int):
    agent = _agent_or_404(agent_id)
    form = EditAgentForm(obj=None if request.method == "POST" else agent)
    _fill_choices(form, agent)
    status = 200
    if request.method == "GET":
        form.roles.data = [r.code for r in agent.roles]
        form.territories.data = [t.code for t in agent.territories]
    if form.validate_on_submit():
        try:
            service.update_agent(
                agent=agent,
                expected_version=int_or_none(form.version.data),
                full_name=form.full_name.data,
                email=form.email.data,
                language=form.language.data,
                role_codes=form.roles.data,
                territory_codes=form.territories.data,
            )
        except BusinessError as exc:
            show_error(form, exc)
            status = 422
        else:
            flash(_("Modifications enregistrées."), "success")
            return redirect(url_for("admin.edit_agent", agent_id=agent.id))
    history = audit.entries_for(object_type="agent", object_id=str(agent.id))
    return render_template(
        "admin/agent_edit.html",
        agent=agent,
        form=form,
        password_form=PasswordResetForm(),
        confirm_form=ConfirmForm(),
        history=history,
    ), 422 if form.errors else status


def _attempt(action, success: str) -> None:
    """Run a service call behind a button, and flash its outcome; a refusal writes nothing."""
    try:
        action()
    except BusinessError as exc:
        db_session.rollback()  # the redirect that follows is a success status: commit nothing
        flash(exc.message, "error")
    else:
        flash(success, "success")


@bp.route("/agents/<int:agent_id>/password", methods=["POST"])
def reset_password(agent_id: int):
    agent = _agent_or_404(agent_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        _attempt(lambda: service.reset_password(agent=agent, password=form.password.data),
                 _("Mot de passe réinitialisé ; les sessions ouvertes de l'agent sont fermées."))
    return redirect(url_for("admin.edit_agent", agent_id=agent_id))


@bp.route("/agents/<int:agent_id>/deactivate", methods=["POST"])
def deactivate(agent_id: int):
    agent = _agent_or_404(agent_id)
    if ConfirmForm().validate_on_submit():
        _attempt(lambda: service.deactivate_agent(agent=agent, actor=current_user),
                 _("Agent désactivé ; ses sessions sont fermées."))
    return redirect(url_for("admin.edit_agent", agent_id=agent_id))


@bp.route("/agents/<int:agent_id>/reactivate", methods=["POST"])
def reactivate(agent_id: int):
    agent = _agent_or_404(agent_id)
    if ConfirmForm().validate_on_submit():
        service.reactivate_agent(agent=agent)
        flash(_("Agent réactivé."), "success")
    return redirect(url_for("admin.edit_agent", agent_id=agent_id))

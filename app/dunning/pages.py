"""Dunning pages: the procedure and its levels (Référentiels › Relances, admin.referentials), the
runs with their progress, a dry run and a launch (Relances: supervision to look, dunning.manage to
launch), and manual blocks (dunning.manage)."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.db import session
from app.documents.models import TemplateKind
from app.dunning import editing, service
from app.dunning.models import DunningLevel, DunningRun, RunStatus
from app.dunning.page_forms import BlockForm, DryRunForm, LevelForm, ProcedureForm
from app.errors import BusinessError
from app.parties.overview import local_today
from app.security.forms import ConfirmForm
from app.web import require_permission, show_error

log = logging.getLogger(__name__)
bp = Blueprint("dunning", __name__)
DRY_RUN_LINES = 200


def _may_follow() -> None:
    if not (current_user.can("supervision") or current_user.can("dunning.manage")):
        abort(403)


# --- Référentiels › Relances ------------------------------------------------------------------

def _level_form(level: DunningLevel | None = None) -> LevelForm:
    form = LevelForm(obj=level if request.method == "GET" else None, prefix="level")
    none = [("", _("— aucun —"))]
    form.letter_template.choices = none + editing.template_codes(TemplateKind.LETTER)
    form.mail_template.choices = none + editing.template_codes(TemplateKind.MAIL)
    return form


def _level_values(form: LevelForm) -> editing.LevelValues:
    return editing.LevelValues(rank=form.rank.data, label=form.label.data, delay_days=form.delay_days.data,
                               min_amount=form.min_amount.data, letter_template=form.letter_template.data,
                               mail_template=form.mail_template.data, agent_task=form.agent_task.data,
                               formal_notice=form.formal_notice.data)


def _procedure_or_404(procedure_id: int):
    found = next((p for p in editing.procedures() if p.id == procedure_id), None)
    return found or abort(404)


@bp.route("/referentiels/relances")
@require_permission("admin.referentials")
def procedures():
    found = editing.procedures()
    if len(found) == 1:
        return redirect(url_for("dunning.procedure", procedure_id=found[0].id))
    return render_template("relances/procedures.html", procedures=found)


@bp.route("/referentiels/relances/<int:procedure_id>", methods=["GET", "POST"])
@require_permission("admin.referentials")
def procedure(procedure_id: int):
    current = _procedure_or_404(procedure_id)
    form = ProcedureForm(obj=current if request.method == "GET" else None, prefix="procedure")
    form.dossier_type_id.choices = [(t.id, t.label) for t in editing.one_per_contract_types()]
    new_level = _level_form()
    status = 200
    if request.method == "POST":
        target = form if request.form.get("what") == "procedure" else new_level
        if target.validate_on_submit():
            try:
                if target is form:
                    editing.update_procedure(current, label=form.label.data, grace_days=form.grace_days.data,
                                             dossier_type_id=form.dossier_type_id.data, active=form.active.data)
                    flash(_("Procédure enregistrée."), "success")
                else:
                    level = editing.save_level(current, None, _level_values(new_level))
                    flash(_("Niveau %(rank)s ajouté.", rank=level.rank), "success")
                session.commit()
                return redirect(url_for("dunning.procedure", procedure_id=current.id))
            except BusinessError as exc:
                session.rollback()
                show_error(target, exc)
        status = 422
        current = _procedure_or_404(procedure_id)
    return render_template("relances/procedure.html", procedure=current, form=form, new_level=new_level,
                           delete_form=ConfirmForm()), status


@bp.route("/referentiels/relances/<int:procedure_id>/niveaux/<int:level_id>", methods=["GET", "POST"])
@require_permission("admin.referentials")
def level(procedure_id: int, level_id: int):
    current = _procedure_or_404(procedure_id)
    found = next((x for x in current.levels if x.id == level_id), None) or abort(404)
    form = _level_form(found)
    status = 200
    if form.validate_on_submit():
        try:
            editing.save_level(current, found, _level_values(form))
            session.commit()
            flash(_("Niveau enregistré."), "success")
            return redirect(url_for("dunning.procedure", procedure_id=current.id))
        except BusinessError as exc:
            session.rollback()
            show_error(form, exc)
    if request.method == "POST":
        status = 422
    return render_template("relances/level.html", procedure=current, level=found, form=form), status


@bp.route("/referentiels/relances/<int:procedure_id>/niveaux/<int:level_id>/supprimer", methods=["POST"])
@require_permission("admin.referentials")
def delete_level(procedure_id: int, level_id: int):
    current = _procedure_or_404(procedure_id)
    found = next((x for x in current.levels if x.id == level_id), None) or abort(404)
    if ConfirmForm().validate_on_submit():
        try:
            editing.delete_level(current, found)
            session.commit()
            flash(_("Niveau supprimé."), "success")
        except BusinessError as exc:
            session.rollback()
            flash(exc.message, "error")
    return redirect(url_for("dunning.procedure", procedure_id=current.id))


# --- Relances: runs, dry run, launch ----------------------------------------------------------

@bp.route("/relances")
def runs():
    _may_follow()
    dry = DryRunForm(request.args, meta={"csrf": False})
    procedure = service.active_procedure()
    planned = selection = None
    if "day" in request.args and dry.validate() and procedure is not None and procedure.levels:
        # the totals of the whole run; the lines, of the contracts this agent may read
        selection = service.select_contracts(procedure, dry.day.data or local_today())
        planned = service.dry_run(procedure, dry.day.data or local_today(), limit=DRY_RUN_LINES,
                                  reader=current_user)
    elif not request.args:
        dry.day.data = local_today()
    return render_template("relances/runs.html", runs=service.recent_runs(), procedure=procedure, dry=dry,
                           planned=planned, selection=selection, lines_max=DRY_RUN_LINES,
                           launch=ConfirmForm(), RUNNING=RunStatus.RUNNING)


@bp.route("/relances/<int:run_id>/avancement")
def progress(run_id: int):
    """The run's row, refreshed every two seconds by the page while the run goes on."""
    _may_follow()
    run = session.get(DunningRun, run_id) or abort(404)
    return render_template("relances/_run_row.html", counts=service.counts_of(run), RUNNING=RunStatus.RUNNING)


@bp.route("/relances/lancer", methods=["POST"])
@require_permission("dunning.manage")
def launch():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        queued = service.dispatch(as_of=local_today(), trigger=f"agent:{current_user.login}"[:60])
    except BusinessError as exc:
        session.rollback()
        flash(exc.message, "error")
    except Exception:  # noqa: BLE001 (the broker is down: the run is recorded, its chunks wait for the resume job)
        log.exception("dunning run queued without its chunks")
        flash(_("La relance est enregistrée, mais les workers sont injoignables : elle partira dès leur retour."),
              "warning")
    else:
        flash(_("Relance n° %(run)s lancée : %(count)s contrat(s) à traiter.", run=queued["run"],
                count=queued["selected"]), "success")
    return redirect(url_for("dunning.runs"))


# --- Relances › Blocages ----------------------------------------------------------------------

@bp.route("/relances/blocages", methods=["GET", "POST"])
@require_permission("dunning.manage")
def blocks():
    form = BlockForm()
    status = 200
    if form.validate_on_submit():
        try:
            block = editing.add_block(agent=current_user, contract_number=form.contract_number.data,
                                      until=form.until.data, reason=form.reason.data)
            session.commit()
            flash(_("Relance bloquée jusqu'au %(day)s.", day=block.until.strftime("%d/%m/%Y")), "success")
            return redirect(url_for("dunning.blocks"))
        except BusinessError as exc:
            session.rollback()
            show_error(form, exc)
    if request.method == "POST":
        status = 422
    elif request.args.get("contrat"):
        form.contract_number.data = request.args["contrat"][:30]
    return render_template("relances/blocks.html", form=form, blocks=editing.active_blocks(agent=current_user),
                           lift=ConfirmForm()), status


@bp.route("/relances/blocages/<int:block_id>/lever", methods=["POST"])
@require_permission("dunning.manage")
def lift(block_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        editing.lift_block(agent=current_user, block_id=block_id)
        session.commit()
        flash(_("Blocage levé : le contrat sera relancé s'il doit encore."), "success")
    except BusinessError:
        session.rollback()
        abort(404)
    return redirect(url_for("dunning.blocks"))

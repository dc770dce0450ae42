"""Supervision pages: the dashboard (charts, their tables and CSV), the workload with bulk
reassignment, and the dossiers past their target time. Permission ``supervision``; every number is
read within the agent's territories (app.supervision.queries)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.db import session
from app.errors import BusinessError
from app.labels import label
from app.parties.overview import local_today
from app.processes import service as processes
from app.supervision import charts, queries
from app.supervision.queries import Filters
from app.web import csv_cell, db_id, require_permission

bp = Blueprint("supervision", __name__, url_prefix="/supervision")

DEFAULT_DAYS = 30
PRESETS = (7, 30, 90, 365)
PAGE_SIZE = 50
MAX_BULK = 200  # tasks reassigned in one go
CSV_CAP = 10_000  # dossiers in the late list's CSV; a last line says how many more


@dataclass
class FilterForm:
    filters: Filters
    territory_id: int | None
    errors: list[str]

    def args(self, **more) -> dict:
        """The query string that keeps these filters on links (CSV, other pages)."""
        values = {"debut": self.filters.start.isoformat(), "fin": self.filters.end.isoformat()}
        if self.territory_id:
            values["territoire"] = self.territory_id
        return {**values, **more}


def _date(name: str, errors: list[str], what: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(_("Date %(what)s invalide : « %(value)s » (attendu AAAA-MM-JJ).", what=what, value=raw[:20]))
        return None


def _filters() -> FilterForm:
    """The period and territory asked for; what cannot be used is said and replaced by the default
    (the last 30 days, every territory of the agent)."""
    errors: list[str] = []
    today = local_today()
    end = _date("fin", errors, _("de fin")) or today
    days = request.args.get("jours", type=int)
    start = _date("debut", errors, _("de début")) or end - timedelta(days=(days if days in PRESETS
                                                                           else DEFAULT_DAYS) - 1)
    if start > end:
        errors.append(_("La période commence après sa fin : les 30 derniers jours sont affichés."))
        start, end = today - timedelta(days=DEFAULT_DAYS - 1), today
    if (end - start).days + 1 > queries.MAX_DAYS:
        errors.append(_("Une période couvre %(n)d jours au plus : elle a été raccourcie.", n=queries.MAX_DAYS))
        start = end - timedelta(days=queries.MAX_DAYS - 1)
    territory_id = None
    raw = request.args.get("territoire") or ""
    if raw:
        wanted = db_id(raw)
        if wanted in {t.id for t in queries.territory_choices(current_user)}:
            territory_id = wanted
        else:
            errors.append(_("Territoire inconnu ou hors de votre périmètre : tous vos territoires sont affichés."))
    return FilterForm(Filters(start=start, end=end, territory_ids=(territory_id,) if territory_id else None),
                      territory_id, errors)


def _page(template: str, form: FilterForm, **context):
    return render_template(template, form=form, choices=queries.territory_choices(current_user), presets=PRESETS,
                           **context)


@bp.route("")
@require_permission(queries.PERMISSION)
def dashboard():
    form = _filters()
    shown = [(chart, charts.draw(chart)) for chart in (build(current_user, form.filters)
                                                      for build in queries.CHARTS.values())]
    return _page("supervision/dashboard.html", form, charts=shown)


def _csv(headers: list, rows: list[list], filename: str) -> Response:
    """UTF-8 with a BOM and ";" for French Excel; text a spreadsheet would run as a formula is quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    for row in [headers, *rows]:
        writer.writerow([csv_cell(v) for v in row])
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/<key>.csv")
@require_permission(queries.PERMISSION)
def chart_csv(key: str):
    build = queries.CHARTS.get(key)
    if build is None:
        abort(404)
    form = _filters()
    chart = build(current_user, form.filters)
    return _csv(chart.headers(), chart.rows(),
                f"{key}-{form.filters.start.isoformat()}-{form.filters.end.isoformat()}.csv")


# --- Workload ---------------------------------------------------------------------------------

@bp.route("/charge")
@require_permission(queries.PERMISSION)
def workload():
    form = _filters()
    per_agent, per_role = queries.workload(current_user, form.filters)
    line = request.args.get("ligne") or ""
    late_only = request.args.get("retard") == "1"
    lines = {load.key: load for load in per_agent + per_role}
    selected = lines.get(line)
    tasks = queries.tasks_of(current_user, form.filters, line, late_only=late_only) if selected else []
    roles = {task.role_code for task in tasks}
    targets = queries.reassignable_agents(current_user, next(iter(roles)) if len(roles) == 1 else None)
    return _page("supervision/workload.html", form, per_agent=per_agent, per_role=per_role, selected=selected,
                 line=line, late_only=late_only, tasks=tasks, targets=targets, now=clock.now(),
                 role_labels=processes.role_labels())


@bp.route("/charge/reaffecter", methods=["POST"])
@require_permission(queries.PERMISSION)
def bulk_reassign():
    """Give the ticked tasks to one agent (or back to their team): all of them or none."""
    back = request.form.get("retour") or ""
    here = back if back.startswith("/supervision/charge") else url_for("supervision.workload")
    task_ids = [db_id(raw) for raw in request.form.getlist("task")]
    if not task_ids or None in task_ids:
        flash(_("Cochez les tâches à réaffecter."), "error")
        return redirect(here, 303)
    if len(task_ids) > MAX_BULK:
        flash(_("%(n)d tâches au plus par réaffectation.", n=MAX_BULK), "error")
        return redirect(here, 303)
    raw = request.form.get("agent") or ""
    to_agent = db_id(raw) if raw else None
    if raw and to_agent is None:
        flash(_("Agent introuvable ou inactif."), "error")
        return redirect(here, 303)
    done = 0
    try:
        for task_id in dict.fromkeys(task_ids):
            processes.reassign(agent=current_user, task_id=task_id, to_agent_id=to_agent)
            done += 1
    except BusinessError as exc:  # TaskGone included
        session.rollback()
        flash(_("Aucune tâche réaffectée : la tâche n° %(n)d est refusée (%(why)s).", n=task_id,
                why=str(exc) or _("elle n'est plus à faire")), "error")
        return redirect(here, 303)
    session.commit()
    flash(_("%(n)d tâche(s) réaffectée(s).", n=done), "success")
    return redirect(here, 303)


# --- Dossiers past their target time ---------------------------------------------------------

def _late_days(dossier, today: date) -> int:
    return (today - dossier.due_at.astimezone(queries.zone()).date()).days


@bp.route("/retards")
@require_permission(queries.PERMISSION)
def past_target():
    form = _filters()
    page = max(1, request.args.get("page", type=int) or 1)
    dossiers, total = queries.past_target(current_user, form.filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    today = local_today()
    return _page("supervision/past_target.html", form, rows=[(d, _late_days(d, today)) for d in dossiers],
                 total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)))


@bp.route("/retards.csv")
@require_permission(queries.PERMISSION)
def past_target_csv():
    form = _filters()
    dossiers, total = queries.past_target(current_user, form.filters, limit=CSV_CAP)
    today = local_today()
    local = queries.zone()
    rows = [[d.reference, d.dossier_type.label, d.subject, label(d.status, "dossier_status"),
             d.created_at.astimezone(local).date().isoformat(), d.due_at.astimezone(local).date().isoformat(),
             _late_days(d, today)] for d in dossiers]
    if total > CSV_CAP:
        rows.append([_("… %(n)d dossiers de plus : affinez par territoire.", n=total - CSV_CAP)])
    return _csv([_("Référence"), _("Classification"), _("Objet"), _("Statut"), _("Ouvert le"), _("Échéance"),
                 _("Jours de retard")], rows, "dossiers-en-retard.csv")

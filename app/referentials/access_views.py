"""Pages of the territories (admin.referentials) and roles (admin.agents: editing a role grants
rights, see app.referentials.access) referentials."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.db import session as db_session
from app.errors import BusinessError
from app.referentials import access
from app.security.models import Role
from app.security.permissions import CATALOGUE
from app.web import int_or_none, require_permission

bp = Blueprint("access", __name__, url_prefix="/referentiels")


TERRITORIES = "admin.referentials"
ROLES = "admin.agents"  # roles grant rights: only those who assign them to agents edit them


def _refused(exc: BusinessError, page: str, **context):
    db_session.rollback()
    return render_template(page, errors={exc.field or "form": exc.message}, values=request.form, **context), 422


def _done(message: str, to: str):
    db_session.commit()
    flash(message, "success")
    return redirect(to, 303)


def _attempt(write, *, refused_to: str, message, to: str):
    """Run write(); a refusal goes back to refused_to with its message, nothing written."""
    try:
        write()
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(refused_to, 303)
    return _done(message, to)


# --- Territories --------------------------------------------------------------------------------

def _territory_page(errors=None, values=None, status=200):
    territories = access.service.list_territories()
    return render_template("referentials/territory_list.html", territories=territories, uses=access.territory_uses(),
                           errors=errors or {}, values=values or {}), status


@bp.route("/territoires")
@require_permission(TERRITORIES)
def territories():
    return _territory_page()


@bp.route("/territoires", methods=["POST"])
@require_permission(TERRITORIES)
def new_territory():
    try:
        created = access.create_territory(parent_id=int_or_none(request.form.get("parent")),
                                          code=request.form.get("code", ""), name=request.form.get("name", ""),
                                          insee_code=request.form.get("insee_code"))
    except BusinessError as exc:
        db_session.rollback()
        return _territory_page({exc.field or "form": exc.message}, request.form, 422)
    return _done(_("Territoire %(code)s créé.", code=created.code), url_for("access.territories"))


def _territory_or_404(territory_id: int):
    found = access.get_territory(territory_id)
    if found is None:
        abort(404)
    return found


@bp.route("/territoires/<int:territory_id>", methods=["GET", "POST"])
@require_permission(TERRITORIES)
def edit_territory(territory_id: int):
    territory = _territory_or_404(territory_id)
    uses = access.territory_uses([territory.id]).get(territory.id, {})
    if request.method == "GET":
        return render_template("referentials/territory_edit.html", territory=territory, uses=uses, errors={},
                               values={})
    try:
        access.update_territory(territory, name=request.form.get("name", ""),
                                insee_code=request.form.get("insee_code"))
    except BusinessError as exc:
        return _refused(exc, "referentials/territory_edit.html", territory=territory, uses=uses)
    return _done(_("Territoire %(code)s enregistré.", code=territory.code),
                 url_for("access.edit_territory", territory_id=territory.id))


@bp.route("/territoires/<int:territory_id>/supprimer", methods=["POST"])
@require_permission(TERRITORIES)
def delete_territory(territory_id: int):
    territory = _territory_or_404(territory_id)
    return _attempt(lambda: access.delete_territory(territory),
                    refused_to=url_for("access.edit_territory", territory_id=territory_id),
                    message=_("Territoire %(code)s supprimé.", code=territory.code), to=url_for("access.territories"))


@bp.route("/territoires/<int:territory_id>/etat", methods=["POST"])
@require_permission(TERRITORIES)
def territory_state(territory_id: int):
    territory = _territory_or_404(territory_id)
    active = request.form.get("active") == "1"
    message = _("Territoire %(code)s réactivé.", code=territory.code) if active else \
        _("Territoire %(code)s désactivé : il n'est plus proposé aux nouveaux agents.", code=territory.code)
    back = url_for("access.edit_territory", territory_id=territory_id)
    return _attempt(lambda: access.set_territory_active(territory, active), refused_to=back, message=message,
                    to=back)


# --- Roles ---------------------------------------------------------------------------------------------

def _role_or_404(role_id: int) -> Role:
    found = db_session.get(Role, role_id)
    if found is None:
        abort(404)
    return found


def _role_page(role: Role | None, errors=None, values=None, status=200):
    chosen = set(request.form.getlist("permissions")) if values else \
        (role.permission_codes if role is not None else set())
    return render_template("referentials/role_edit.html", role=role, catalogue=CATALOGUE, chosen=chosen,
                           agents=access.role_agents(role) if role is not None else 0,
                           errors=errors or {}, values=values or {}), status


@bp.route("/roles")
@require_permission(ROLES)
def roles():
    return render_template("referentials/role_list.html", rows=access.roles())


@bp.route("/roles/nouveau", methods=["GET", "POST"])
@require_permission(ROLES)
def new_role():
    if request.method == "GET":
        return _role_page(None)
    try:
        role = access.create_role(code=request.form.get("code", ""), label=request.form.get("label", ""),
                                  permission_codes=request.form.getlist("permissions"))
    except BusinessError as exc:
        db_session.rollback()
        return _role_page(None, {exc.field or "form": exc.message}, request.form, 422)
    return _done(_("Rôle %(code)s créé.", code=role.code), url_for("access.edit_role", role_id=role.id))


@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
@require_permission(ROLES)
def edit_role(role_id: int):
    role = _role_or_404(role_id)
    if request.method == "GET":
        return _role_page(role)
    try:
        access.update_role(role, label=request.form.get("label", ""),
                           permission_codes=request.form.getlist("permissions"))
    except BusinessError as exc:
        db_session.rollback()
        return _role_page(_role_or_404(role_id), {exc.field or "form": exc.message}, request.form, 422)
    return _done(_("Rôle %(code)s enregistré.", code=role.code), url_for("access.edit_role", role_id=role.id))


@bp.route("/roles/<int:role_id>/supprimer", methods=["POST"])
@require_permission(ROLES)
def delete_role(role_id: int):
    role = _role_or_404(role_id)
    return _attempt(lambda: access.delete_role(role), refused_to=url_for("access.edit_role", role_id=role_id),
                    message=_("Rôle %(code)s supprimé.", code=role.code), to=url_for("access.roles"))


@bp.route("/roles/<int:role_id>/etat", methods=["POST"])
@require_permission(ROLES)
def role_state(role_id: int):
    role = _role_or_404(role_id)
    active = request.form.get("active") == "1"
    message = _("Rôle %(code)s réactivé.", code=role.code) if active else \
        _("Rôle %(code)s désactivé : ses agents n'en ont plus les habilitations.", code=role.code)
    back = url_for("access.edit_role", role_id=role_id)
    return _attempt(lambda: access.set_role_active(role, active), refused_to=back, message=message, to=back)

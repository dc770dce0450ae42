"""Administration of API tokens: list, create (the token is shown once), change territories, revoke."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice

from app.api import tokens
from app.audit import service as audit
from app.db import session as db_session
from app.errors import BusinessError
from app.security import service as security
from app.security.forms import CheckboxListField, ConfirmForm
from app.web import require_permission

bp = Blueprint("api_admin", __name__, url_prefix="/admin/jetons")


class TokenTerritoriesForm(FlaskForm):
    # At least one: the service's rule (the command line goes through it too).
    territories = SelectMultipleField(
        _l("Territoires"), choices=[],
        description=_l("Le jeton ne répond que pour les agents de ces territoires, et ne montre que les clients "
                       "qui s'y trouvent."))


class ApiTokenForm(TokenTerritoriesForm):
    # Length and presence are the service's rules (the command line goes through them too).
    system = StringField(_l("Système appelant"), description=_l("Par exemple : Téléphonie Lyon (Xivo)"))
    permissions = CheckboxListField(_l("Permissions"), choices=[])


@bp.before_request
@require_permission("admin.api_tokens")
def _guard():
    """Every page of this blueprint needs admin.api_tokens."""


def _fill_territories(form: TokenTerritoriesForm) -> None:
    """The active territories, and those the form already holds (a deactivated one is kept, not offered)."""
    held = set(form.territories.data or [])
    territories = [t for t in security.list_territories() if t.active or t.code in held]
    names = {t.code: t.name for t in territories}
    form.territories.choices = [
        SelectChoice(t.code, f"{'· ' * t.depth}{t.name} ({t.code})", optgroup=names[t.path.split("/")[1]])
        for t in territories
    ]


def _form() -> ApiTokenForm:
    form = ApiTokenForm()
    form.permissions.choices = [SelectChoice(code, f"{code} — {label}")
                                for code, label in tokens.API_PERMISSIONS.items()]
    _fill_territories(form)
    return form


def _show_error(form: FlaskForm, exc: BusinessError) -> None:
    field = getattr(form, exc.field or "", None)
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")


def _list_page(form: ApiTokenForm, status: int = 200):
    return render_template("admin/api_tokens.html", api_tokens=tokens.list_tokens(), form=form,
                           permission_labels=tokens.permission_labels), status


@bp.route("")
def index():
    return _list_page(_form())


@bp.route("", methods=["POST"])
def create():
    form = _form()
    if form.validate_on_submit():
        try:
            token, plaintext = tokens.create_token(system=form.system.data, permissions=form.permissions.data,
                                                   territory_codes=form.territories.data, created_by=current_user)
        except BusinessError as exc:
            _show_error(form, exc)
        else:
            # Rendered, not redirected: the plaintext must not travel through the session cookie.
            # The page is not cached (Cache-Control: no-store on every page).
            return render_template("admin/api_token_created.html", token=token, plaintext=plaintext)
    # 422 makes the request boundary roll back whatever the failed attempt touched.
    return _list_page(form, 422)


@bp.route("/<int:token_id>/territoires", methods=["GET", "POST"])
def territories(token_id: int):
    token = tokens.get_token(token_id=token_id)
    if token is None:
        abort(404)
    form = TokenTerritoriesForm()
    if request.method == "GET":
        form.territories.data = [t.code for t in token.territories]
    _fill_territories(form)
    failed = False
    if form.validate_on_submit():
        try:
            tokens.set_territories(token_id=token.id, territory_codes=form.territories.data)
        except BusinessError as exc:
            _show_error(form, exc)
            failed = True
        else:
            flash(_("Territoires du jeton %(token)s enregistrés : %(codes)s.", token=str(token),
                    codes=", ".join(t.code for t in token.territories)), "success")
            return redirect(url_for("api_admin.index"))
    history = audit.entries_for(object_type="api_token", object_id=str(token.id))
    # 422 makes the request boundary roll back whatever the failed attempt touched.
    status = 422 if failed or form.errors else 200
    return render_template("admin/api_token_territories.html", token=token, form=form, history=history,
                           permission_labels=tokens.permission_labels), status


@bp.route("/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id: int):
    if ConfirmForm().validate_on_submit():
        try:
            token = tokens.revoke(token_id=token_id)
        except BusinessError as exc:
            db_session.rollback()  # the redirect that follows is a success status: commit nothing
            flash(exc.message, "error")
        else:
            flash(_("Jeton %(token)s révoqué : les appels qui le présentent sont refusés.", token=str(token)),
                  "success")
    return redirect(url_for("api_admin.index"))

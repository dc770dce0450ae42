"""The "modifier les coordonnées" page of a customer: a thin layer over app.parties.editing.

Statuses: 200 for the form, a redirect to the customer's page on success, 422 when a field is
refused, 409 when someone else saved the customer in between. A 4xx status makes the request
boundary roll back whatever the failed attempt touched.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, render_template_string, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TelField
from wtforms.validators import Length, Optional

from app.errors import BusinessError
from app.labels import choices
from app.parties import editing
from app.parties.addresses import communes_of
from app.parties.models import Party, PartyKind
from app.security.scope import get_scoped_or_404
from app.web import require_permission

bp = Blueprint("party_edit", __name__, url_prefix="/clients")

PHONE_ROWS, EMAIL_ROWS = 3, 2
COMMUNE_OPTIONS = "{% for name in names %}<option value=\"{{ name }}\"></option>{% endfor %}"


class PhoneRow(Form):
    number = TelField(_l("Numéro"), validators=[Optional(), Length(max=30)])
    label = SelectField(_l("Type"), choices=[], validate_choice=False)


class PartyEditForm(FlaskForm):
    version = HiddenField()
    seen = HiddenField()  # the latest audit entry the agent was shown: what changed since is news
    civility = SelectField(_l("Civilité"), choices=[], validate_choice=False)
    first_name = StringField(_l("Prénom"), validators=[Length(max=100)])
    last_name = StringField(_l("Nom"), validators=[Length(max=100)])
    company_name = StringField(_l("Raison sociale"), validators=[Length(max=200)])
    birth_date = DateField(_l("Date de naissance"), validators=[Optional()])
    phones = FieldList(FormField(PhoneRow), min_entries=PHONE_ROWS, max_entries=editing.MAX_PHONES)
    emails = FieldList(EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)]),
                       min_entries=EMAIL_ROWS, max_entries=editing.MAX_EMAILS)
    street = StringField(_l("Adresse (numéro et voie)"), validators=[Length(max=200)])
    address_extra = StringField(_l("Complément d'adresse"), validators=[Length(max=200)])
    postal_code = StringField(_l("Code postal"), validators=[Length(max=10)])
    city = StringField(_l("Commune"), validators=[Length(max=100)])


def _fill_choices(form: PartyEditForm) -> None:
    form.civility.choices = [("", "—")] + [(c, c) for c in editing.CIVILITIES]
    for row in form.phones:
        row["label"].choices = [("", "—")] + choices("phone_label")  # row.label is the row's own label


def _load_form(form: PartyEditForm, party: Party) -> None:
    """Fill the form with the party as stored, and mark what the agent has seen."""
    for key in ("civility", "first_name", "last_name", "company_name", "birth_date",
                "street", "address_extra", "postal_code", "city"):
        getattr(form, key).data = getattr(party, key)
    _fill_rows(form.phones, [{"number": p.display, "label": p.label or ""} for p in party.phones], PHONE_ROWS)
    _fill_rows(form.emails, [e.address for e in party.emails], EMAIL_ROWS)
    form.version.data = party.version
    form.seen.data = editing.latest_audit_id(party.id)


def _fill_rows(field_list: FieldList, values: list, minimum: int) -> None:
    while len(field_list):
        field_list.pop_entry()
    for value in values:
        field_list.append_entry(value)
    while len(field_list) < max(minimum, min(len(values) + 1, field_list.max_entries or minimum)):
        field_list.append_entry()


def _changes(form: PartyEditForm, party: Party) -> dict:
    changes = {
        "birth_date": form.birth_date.data,
        "phones": [{"number": row.number.data, "label": row["label"].data} for row in form.phones],
        "emails": [entry.data for entry in form.emails],
        **{key: getattr(form, key).data for key in editing.ADDRESS_FIELDS},
    }
    if party.kind == PartyKind.ORGANISATION:
        changes["company_name"] = form.company_name.data
    else:
        changes.update(civility=form.civility.data, first_name=form.first_name.data, last_name=form.last_name.data)
    return changes


def _field(form: PartyEditForm, name: str | None):
    """The form field a service error is about: 'postal_code', 'phones-1-number', 'emails-0'."""
    if not name:
        return None
    if name in form._fields and name not in ("phones", "emails"):
        return form[name]
    parts = name.split("-")
    try:
        entry = form[parts[0]][int(parts[1])]
        return entry[parts[2]] if len(parts) > 2 else entry
    except (KeyError, IndexError, ValueError, TypeError):
        return None


def _show_errors(form: PartyEditForm, errors: dict[str, str]) -> list[str]:
    """Put each message next to its field; those with no field are returned for the top."""
    unplaced = []
    for name, message in errors.items():
        target = _field(form, name)
        if target is None:
            unplaced.append(message)
        else:
            target.errors = [*target.errors, message] if isinstance(target.errors, list) else [message]
    return unplaced


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@bp.route("/<int:party_id>/modifier", methods=["GET", "POST"])
@require_permission("party.write")
def edit(party_id: int):
    agent = current_user
    party = get_scoped_or_404(Party, party_id, agent=agent, permission=editing.WRITE)
    form = PartyEditForm()
    if request.method == "GET":
        _load_form(form, party)
        return _page(form, party)
    if not form.validate_on_submit():
        return _page(form, party, errors=[_("Certains champs sont à corriger.")]), 422
    expected = _int_or_none(form.version.data)
    if expected is None:
        abort(400)
    try:
        editing.update_party(agent=agent, party_id=party.id, expected_version=expected,
                             changes=_changes(form, party), seen_audit_id=_int_or_none(form.seen.data))
    except editing.PartyNotFound:
        abort(404)
    except editing.EditConflict as conflict:
        # Keep what the agent typed, now based on the current version: after checking the
        # other changes, saving again is a deliberate choice.
        form.version.data = conflict.current_version
        form.seen.data = editing.latest_audit_id(party.id)
        return _page(form, party, conflict=conflict), 409
    except editing.InvalidChanges as exc:
        return _page(form, party, errors=_show_errors(form, exc.errors)), 422
    except BusinessError as exc:
        return _page(form, party, errors=_show_errors(form, {exc.field or "": exc.message})), 422
    flash(_("Coordonnées enregistrées."), "success")
    return redirect(url_for("parties.show", party_id=party.id))


def _page(form: PartyEditForm, party: Party, *, errors: list[str] | None = None,
          conflict: editing.EditConflict | None = None) -> str:
    _fill_choices(form)
    return render_template("parties/edit.html", form=form, party=party, errors=errors or [], conflict=conflict,
                           is_organisation=party.kind == PartyKind.ORGANISATION,
                           communes=_commune_names(form.postal_code.data))


def _commune_names(postal_code: str | None) -> list[str]:
    code = (postal_code or "").replace(" ", "")
    return [c.commune for c in communes_of(code)] if len(code) == 5 and code.isdigit() else []


@bp.route("/communes")
@require_permission("party.write")
def communes():
    """The communes of a postal code, as the options of the city field's datalist (htmx)."""
    return render_template_string(COMMUNE_OPTIONS, names=_commune_names(request.args.get("postal_code")))

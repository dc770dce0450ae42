"""The "modifier les coordonnées" page of a customer: a thin layer over app.parties.editing.

Statuses: 200 for the form, a redirect to the customer's page on success, 422 when a field is
refused, 409 when someone else saved the customer in between. A 4xx status makes the request
boundary roll back whatever the failed attempt touched.

The form carries, in a hidden field, the values it was filled with ("original"): a save applies
only the fields the agent changed relative to those, so that a form read before someone else's
save never writes back that save's stale values, and a stored value the form cannot show as it
is (a civility it does not offer, a date it would refuse) is left alone when not touched.
"""
from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, render_template_string, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TelField
from wtforms.validators import Length, Optional

from app.errors import BusinessError
from app.labels import choices
from app.parties import editing, sensitive
from app.parties.addresses import commune_choices
from app.parties.editing import clean_text
from app.parties.models import Party, PartyKind
from app.parties.phones import normalise_phone
from app.security.scope import get_scoped_or_404
from app.web import int_or_none, require_permission

bp = Blueprint("party_edit", __name__, url_prefix="/clients")

PHONE_ROWS, EMAIL_ROWS = 3, 2
# The most rows a posted list may hold (a bound on the request, not a business rule: the service
# checks the limits, which allow at least what the billing system stored).
ROWS_MAX = 50
PERSON_FIELDS = ("civility", "first_name", "last_name", "birth_date")
ORGANISATION_FIELDS = ("company_name",)
BANK_FIELDS = sensitive.BANK_FIELDS  # persons and organisations alike
NOT_REMEMBERED = {"autocomplete": "off", "spellcheck": "false"}  # a browser keeps no copy of bank details
COMMUNE_OPTIONS = "{% for name in names %}<option value=\"{{ name }}\"></option>{% endfor %}"


class PhoneRow(Form):
    number = TelField(_l("Numéro"), validators=[Optional(), Length(max=30)])
    label = SelectField(_l("Type"), choices=[], validate_choice=False)


class ContactForm(FlaskForm):
    """The identity and address fields the edit and new-prospect forms share (phones and emails
    differ only by how many rows each allows)."""
    civility = SelectField(_l("Civilité"), choices=[], validate_choice=False)
    first_name = StringField(_l("Prénom"), validators=[Length(max=100)])
    last_name = StringField(_l("Nom"), validators=[Length(max=100)])
    company_name = StringField(_l("Raison sociale"), validators=[Length(max=200)])
    street = StringField(_l("Adresse (numéro et voie)"), validators=[Length(max=200)])
    address_extra = StringField(_l("Complément d'adresse"), validators=[Length(max=200)])
    postal_code = StringField(_l("Code postal"), validators=[Length(max=10)])
    city = StringField(_l("Commune"), validators=[Length(max=100)])


def email_rows(shown: int, most: int) -> FieldList:
    return FieldList(EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)]),
                     min_entries=shown, max_entries=most)


class PartyEditForm(ContactForm):
    version = HiddenField()
    seen = HiddenField()  # the latest audit entry the agent was shown: what changed since is news
    original = HiddenField()  # the values the form was filled with, as JSON (see _changes)
    birth_date = DateField(_l("Date de naissance"), validators=[Optional()])
    iban = StringField(_l("IBAN"), validators=[Length(max=50)], render_kw=NOT_REMEMBERED)
    bic = StringField(_l("BIC"), validators=[Length(max=20)], render_kw=NOT_REMEMBERED)
    phones = FieldList(FormField(PhoneRow), min_entries=PHONE_ROWS, max_entries=ROWS_MAX)
    emails = email_rows(EMAIL_ROWS, ROWS_MAX)


def _fill_choices(form: PartyEditForm, party: Party) -> None:
    form.civility.choices = editing.civility_choices(party.civility)
    for row in form.phones:
        row["label"].choices = [("", "—")] + choices("phone_label")  # row.label is the row's own label


def _identity_fields(party: Party, agent) -> tuple[str, ...]:
    """The identity fields of the party's kind that the agent's form shows: the sensitive ones
    (birth date, bank details) only to an agent with party.sensitive (app.parties.sensitive)."""
    fields = (ORGANISATION_FIELDS if party.kind == PartyKind.ORGANISATION else PERSON_FIELDS) + BANK_FIELDS
    allowed = sensitive.may_see(agent)
    return tuple(key for key in fields if allowed or key not in sensitive.EDITABLE)


def _hide_sensitive(form: PartyEditForm, agent) -> None:
    """Without party.sensitive, the form has no sensitive field at all (neither rendered nor read)."""
    if not sensitive.may_see(agent):
        for key in sensitive.EDITABLE:
            if key in form:
                del form[key]


def _stored_values(party: Party, agent) -> dict:
    """The party as the form shows it: the form's "original", JSON-ready."""
    fields = _identity_fields(party, agent)
    values: dict = {key: clean_text(getattr(party, key)) for key in fields if key != "birth_date"}
    if "birth_date" in fields:
        values["birth_date"] = party.birth_date.isoformat() if party.birth_date else ""
    if "iban" in fields:
        values["iban"] = sensitive.format_iban(party.iban)
    values["phones"] = [{"number": p.display, "label": p.label or ""} for p in party.phones]
    values["emails"] = [e.address for e in party.emails]
    values.update({key: clean_text(getattr(party, key)) for key in editing.ADDRESS_FIELDS})
    return values


def _posted_values(form: PartyEditForm, party: Party, agent) -> dict:
    """What the form holds, in the shape of _stored_values (empty rows left out)."""
    fields = _identity_fields(party, agent)
    values: dict = {key: clean_text(getattr(form, key).data) for key in fields if key != "birth_date"}
    if "birth_date" in fields:
        values["birth_date"] = form.birth_date.data.isoformat() if form.birth_date.data else ""
    values["phones"] = [{"number": clean_text(row.number.data), "label": row["label"].data or ""}
                        for row in form.phones if clean_text(row.number.data)]
    values["emails"] = [clean_text(entry.data) for entry in form.emails if clean_text(entry.data)]
    values.update({key: clean_text(getattr(form, key).data) for key in editing.ADDRESS_FIELDS})
    return values


def _phone_key(number: str) -> str:
    try:
        return normalise_phone(number)
    except BusinessError:
        return clean_text(number)


def _same(key: str, a, b) -> bool:
    """Whether two values of a field (shaped as by _stored_values) mean the same."""
    if key == "phones":
        rows = [[(_phone_key(clean_text(row.get("number"))), clean_text(row.get("label"))) for row in value
                 if isinstance(row, dict)] for value in (a, b)]
        return rows[0] == rows[1]
    if key == "emails":
        return [clean_text(x).lower() for x in a] == [clean_text(x).lower() for x in b]
    if key in BANK_FIELDS:  # "fr76 3000 …" is the stored "FR763000…"
        return "".join(clean_text(a).split()).upper() == "".join(clean_text(b).split()).upper()
    return clean_text(a) == clean_text(b)


def _original(form: PartyEditForm) -> dict | None:
    """The values the form was filled with; None when it does not say (then every field is applied)."""
    try:
        original = json.loads(form.original.data or "")
    except ValueError:
        return None
    if not isinstance(original, dict):
        return None
    if not all(isinstance(original.get(key, []), list) for key in ("phones", "emails")):
        return None
    return original


def _fill_form(form: PartyEditForm, values: dict) -> None:
    """Fill the form with values shaped as by _stored_values."""
    for key in (*PERSON_FIELDS, *ORGANISATION_FIELDS, *BANK_FIELDS, *editing.ADDRESS_FIELDS):
        if key not in values or key not in form:
            continue
        if key == "birth_date":
            try:
                form.birth_date.data = date.fromisoformat(values[key]) if values[key] else None
            except ValueError:
                form.birth_date.data = None
        else:
            getattr(form, key).data = values[key]
    _fill_rows(form.phones, values["phones"], PHONE_ROWS, editing.MAX_PHONES)
    _fill_rows(form.emails, values["emails"], EMAIL_ROWS, editing.MAX_EMAILS)


def _load_form(form: PartyEditForm, party: Party, agent) -> None:
    """Fill the form with the party as stored, and mark what the agent has seen."""
    values = _stored_values(party, agent)
    _fill_form(form, values)
    form.original.data = json.dumps(values)
    form.version.data = party.version
    form.seen.data = editing.latest_audit_id(party.id)


def _fill_rows(field_list: FieldList, values: list, minimum: int, limit: int) -> None:
    """The stored rows, then empty ones: at least ``minimum`` rows, and one to add a value while
    fewer than ``limit`` (a party may hold more than the limit: those are all shown)."""
    while len(field_list):
        field_list.pop_entry()
    rows = max(minimum, min(len(values) + 1, max(limit, len(values))))
    field_list.max_entries = max(field_list.max_entries or 0, rows)
    for value in values:
        field_list.append_entry(value)
    while len(field_list) < rows:
        field_list.append_entry()


def _changes(form: PartyEditForm, party: Party, agent) -> dict:
    """The fields to apply: those the agent changed relative to the values the form was filled
    with (its "original"), or every field when the form does not carry them. A sensitive field
    posted by an agent whose form does not show it is passed on as it is, for the service to
    refuse (a crafted or stale request, not an edit to ignore silently)."""
    changes = {
        "phones": [{"number": row.number.data, "label": row["label"].data} for row in form.phones],
        "emails": [entry.data for entry in form.emails],
        **{key: getattr(form, key).data for key in editing.ADDRESS_FIELDS},
    }
    # Only the identity fields of the party's kind: an organisation's form has no birth date
    # (nor civility), and the absent field must not clear a stored value.
    changes.update({key: getattr(form, key).data for key in _identity_fields(party, agent)})
    original = _original(form)
    if original is not None:
        posted = _posted_values(form, party, agent)
        changes = {key: value for key, value in changes.items()
                   if key not in original or not _same(key, posted[key], original[key])}
    # A sensitive field the request does not carry (a form read before the field existed) changes
    # nothing, rather than clearing the stored value.
    changes = {key: value for key, value in changes.items() if key not in sensitive.EDITABLE or key in request.form}
    if not sensitive.may_see(agent):
        # (vulnerable is no field of this form, for anyone: ignored like the billing-owned ones.)
        changes.update({key: request.form[key] for key in sensitive.EDITABLE if key in request.form})
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


def show_errors(form: PartyEditForm, errors: dict[str, str]) -> list[str]:
    """Put each message next to its field; those with no field are returned for the top."""
    unplaced = []
    for name, message in errors.items():
        target = _field(form, name)
        if target is None:
            unplaced.append(message)
        else:
            target.errors = [*target.errors, message] if isinstance(target.errors, list) else [message]
    return unplaced


@bp.route("/<int:party_id>/modifier", methods=["GET", "POST"])
@require_permission("party.write")
def edit(party_id: int):
    agent = current_user
    party = get_scoped_or_404(Party, party_id, agent=agent, permission=editing.WRITE)
    form = PartyEditForm()
    _hide_sensitive(form, agent)
    if request.method == "GET":
        _load_form(form, party, agent)
        return _page(form, party)
    if not form.validate_on_submit():
        return _page(form, party, errors=[_("Certains champs sont à corriger.")]), 422
    expected = int_or_none(form.version.data)
    if expected is None:
        abort(400)
    changes = _changes(form, party, agent)
    try:
        editing.update_party(agent=agent, party_id=party.id, expected_version=expected,
                             changes=changes, seen_audit_id=int_or_none(form.seen.data))
    except editing.PartyNotFound:
        abort(404)
    except editing.EditConflict as conflict:
        _keep_own_changes(form, party, changes, conflict, agent)
        return _page(form, party, conflict=conflict), 409
    except editing.InvalidChanges as exc:
        return _page(form, party, errors=show_errors(form, exc.errors)), 422
    except BusinessError as exc:
        return _page(form, party, errors=show_errors(form, {exc.field or "": exc.message})), 422
    flash(_("Coordonnées enregistrées."), "success")
    return redirect(url_for("parties.show", party_id=party.id))


def _keep_own_changes(form: PartyEditForm, party: Party, changes: dict, conflict: editing.EditConflict,
                      agent) -> None:
    """The form after a conflict: the party as it is now, with what the agent changed on top,
    based on the current version. After checking the other changes, saving again is a
    deliberate choice, and it applies the agent's changes only (the new original is the party
    as it is now): the other agent's changes stay."""
    posted = _posted_values(form, party, agent)
    values = {**_stored_values(party, agent), **{key: posted[key] for key in changes if key in posted}}
    _fill_form(form, values)
    form.original.data = json.dumps(_stored_values(party, agent))
    form.version.data = conflict.current_version
    form.seen.data = editing.latest_audit_id(party.id)


def _page(form: PartyEditForm, party: Party, *, errors: list[str] | None = None,
          conflict: editing.EditConflict | None = None) -> str:
    _fill_choices(form, party)
    return render_template("parties/edit.html", form=form, party=party, errors=errors or [], conflict=conflict,
                           is_organisation=party.kind == PartyKind.ORGANISATION,
                           communes=commune_names(form.postal_code.data))


def commune_names(postal_code: str | None) -> list[str]:
    """The city field's suggestions: the communes' names, "Thièvres (62)" for namesakes."""
    code = (postal_code or "").replace(" ", "")
    return commune_choices(code) if len(code) == 5 and code.isdigit() else []


@bp.route("/communes")
@require_permission("party.write")
def communes():
    """The communes of a postal code, as the options of the city field's datalist (htmx)."""
    return render_template_string(COMMUNE_OPTIONS, names=commune_names(request.args.get("postal_code")))

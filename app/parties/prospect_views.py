"""The "nouveau prospect" page: a thin layer over app.parties.prospects.

Statuses: 200 for the form and for the duplicate warning (the candidates, to open one or create
anyway), a redirect to the new prospect's page on success, 422 when a field is refused (the
request boundary then rolls back, so nothing is written).

The page opens pre-filled from ``?q=``, the text of a quick search that found nobody:
  - a phone number (digits and separators, 6 digits or more) fills the first phone;
  - an email (one word with an "@") fills the first email;
  - otherwise the words are a name, as agents type it in the search box: the first word is the
    last name, the rest the first name ("Dupont Jean-Pierre").
Explicit parameters (``?last_name=``, ``first_name``, ``company_name``, ``civility``, ``kind``,
``phone``, ``email``, ``street``, ``address_extra``, ``postal_code``, ``city``) win over ``q``.
"""
from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import FieldList, FormField, HiddenField, SelectField

from app.errors import BusinessError
from app.labels import choices
from app.parties import editing, prospects
from app.parties.edit_views import ContactForm, PhoneRow, commune_names, email_rows, show_errors
from app.parties.models import PartyKind
from app.web import require_permission

bp = Blueprint("prospects", __name__, url_prefix="/clients")

PHONE_ROWS, EMAIL_ROWS = 2, 2
_PHONE_LIKE = re.compile(r"[\d\s.+()-]+")
_TEXT_PARAMS = ("civility", "first_name", "last_name", "company_name", "street", "address_extra", "postal_code",
                "city")


class ProspectForm(ContactForm):
    kind = SelectField(_l("Type d'interlocuteur"), choices=[], validate_choice=False)
    phones = FieldList(FormField(PhoneRow), min_entries=PHONE_ROWS, max_entries=PHONE_ROWS)
    emails = email_rows(EMAIL_ROWS, EMAIL_ROWS)
    # The ids of the duplicate candidates the agent was shown: "créer quand même" confirms those only.
    acknowledged = HiddenField()


def prefill_from_query(query: str | None) -> dict[str, str]:
    """What the quick-search text says about the prospect (see the module's docstring)."""
    text = " ".join((query or "").split())[:200]
    if not text:
        return {}
    if len(re.sub(r"\D", "", text)) >= 6 and _PHONE_LIKE.fullmatch(text):
        return {"phone": text}
    if "@" in text and " " not in text:
        return {"email": text}
    first, _sep, rest = text.partition(" ")
    return {"last_name": first, "first_name": rest} if rest else {"last_name": first}


def _prefill(form: ProspectForm, args) -> None:
    values = prefill_from_query(args.get("q"))
    for key in (*_TEXT_PARAMS, "phone", "email", "kind"):
        if args.get(key, "").strip():
            values[key] = args[key].strip()
    for key in _TEXT_PARAMS:
        if key in values:
            getattr(form, key).data = values[key][:200]
    form.kind.data = values.get("kind") if values.get("kind") in PartyKind.ALL else PartyKind.PERSON
    if values.get("phone"):
        form.phones[0].number.data = values["phone"][:30]
    if values.get("email"):
        form.emails[0].data = values["email"][:254]


def _data(form: ProspectForm) -> dict:
    return {
        "kind": form.kind.data,
        **{key: getattr(form, key).data for key in _TEXT_PARAMS},
        "phones": [{"number": row.number.data, "label": row["label"].data} for row in form.phones],
        "emails": [entry.data for entry in form.emails],
    }


def _acknowledged(value: str | None) -> list[int]:
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


@bp.route("/nouveau", methods=["GET", "POST"])
@require_permission("party.write")
@require_permission("party.read")  # the duplicate check reads
def new():
    form = ProspectForm()
    if request.method == "GET":
        _prefill(form, request.args)
        return _page(form)
    if not form.validate_on_submit():
        return _page(form, errors=[_("Certains champs sont à corriger.")]), 422
    confirmed = request.form.get("confirmed") == "1"
    try:
        party = prospects.create_prospect(agent=current_user, data=_data(form), confirmed=confirmed,
                                          acknowledged=_acknowledged(form.acknowledged.data) if confirmed else None)
    except prospects.DuplicatesFound as found:
        form.acknowledged.data = ",".join(str(c.party.id) for c in found.candidates)
        return _page(form, candidates=found.candidates)
    except editing.InvalidChanges as exc:
        return _page(form, errors=show_errors(form, exc.errors)), 422
    except BusinessError as exc:
        return _page(form, errors=show_errors(form, {exc.field or "": exc.message})), 422
    flash(_("Prospect créé."), "success")
    return redirect(url_for("parties.show", party_id=party.id))


def _page(form: ProspectForm, *, errors: list[str] | None = None, candidates=None) -> str:
    form.kind.choices = choices("party_kind")
    form.civility.choices = editing.civility_choices()
    for row in form.phones:
        row["label"].choices = [("", "—")] + choices("phone_label")
    return render_template("parties/new.html", form=form, errors=errors or [], candidates=candidates or [],
                           communes=commune_names(form.postal_code.data))

"""Referentials pages: contact types, dossier classifications and their templates (admin.referentials)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from app.audit import service as audit
from app.contacts import rules
from app.contacts.models import TemplateItem
from app.errors import BusinessError
from app.labels import LABELS
from app.referentials import service
from app.referentials.forms import (
    NONE_CHOICE,
    ContactTypeForm,
    DossierTypeForm,
    NewContactTypeForm,
    NewDossierTypeForm,
    TemplateItemForm,
)
from app.security import service as security
from app.security.forms import ConfirmForm
from app.web import int_or_none, require_permission, show_error

bp = Blueprint("referentials", __name__, url_prefix="/referentiels")

# The owners of templates, as their URLs name them.
CONTACT_TYPES = "types-de-contact"
DOSSIER_TYPES = "classifications"
OWNERS = f'any("{CONTACT_TYPES}", "{DOSSIER_TYPES}")'


@bp.before_request
@require_permission("admin.referentials")
def _guard():
    """Every page of this blueprint needs admin.referentials."""


@bp.context_processor
def _helpers():
    return {"describe_rule": service.describe_rule, "kind_labels": service.KIND_LABELS,
            "CONTACT_TYPES": CONTACT_TYPES, "DOSSIER_TYPES": DOSSIER_TYPES}


def _submitted(form, write):
    """Run write() once the form validates: (its result, 200), or (None, 422) when the form or the
    service refuses (422 makes the request boundary roll back whatever the attempt touched), or
    (None, 200) for a form not submitted yet."""
    if not form.validate_on_submit():
        return None, 422 if form.errors else 200
    try:
        return write(), 200
    except BusinessError as exc:
        show_error(form, exc)
        return None, 422


@bp.route("")
def index():
    return redirect(url_for("referentials.contact_types"))


# --- Contact types ----------------------------------------------------------------------------

def _fill_dossier_types(form: ContactTypeForm, current_id: int | None = None) -> None:
    choices = [NONE_CHOICE]
    for dossier_type in service.list_dossier_types():
        if dossier_type.active:
            choices.append(SelectChoice(str(dossier_type.id), f"{dossier_type.label} ({dossier_type.code})"))
        elif dossier_type.id == current_id:  # kept until changed, shown as what it is
            choices.append(SelectChoice(str(dossier_type.id), _("%(label)s (%(code)s, désactivée)",
                                                                label=dossier_type.label, code=dossier_type.code)))
    form.dossier_type.choices = choices


def _contact_type_values(form: ContactTypeForm) -> dict:
    return {
        "label": form.label.data, "default_channel": form.default_channel.data,
        "default_direction": form.default_direction.data, "process_key": form.process_key.data,
        "dossier_type_id": int_or_none(form.dossier_type.data), "active": form.active.data,
        "position": form.position.data,
    }


@bp.route(f"/{CONTACT_TYPES}")
def contact_types():
    return render_template("referentials/contact_types.html", contact_types=service.list_contact_types())


@bp.route(f"/{CONTACT_TYPES}/nouveau", methods=["GET", "POST"])
def new_contact_type():
    form = NewContactTypeForm()
    _fill_dossier_types(form)
    contact_type, status = _submitted(
        form, lambda: service.create_contact_type(code=form.code.data, **_contact_type_values(form)))
    if contact_type is not None:
        flash(_("Type de contact %(code)s créé.", code=contact_type.code), "success")
        return redirect(url_for("referentials.edit_contact_type", type_id=contact_type.id))
    return render_template("referentials/contact_type_form.html", form=form, contact_type=None), status


@bp.route(f"/{CONTACT_TYPES}/<int:type_id>", methods=["GET", "POST"])
def edit_contact_type(type_id: int):
    contact_type = service.get_contact_type(type_id=type_id) or abort(404)
    form = ContactTypeForm(obj=None if request.method == "POST" else contact_type)
    _fill_dossier_types(form, contact_type.dossier_type_id)
    if request.method == "GET":
        form.dossier_type.data = str(contact_type.dossier_type_id or "")
        form.default_channel.data = contact_type.default_channel or ""
    done, status = _submitted(
        form, lambda: service.update_contact_type(contact_type=contact_type, **_contact_type_values(form)) or True)
    if done:
        flash(_("Modifications enregistrées."), "success")
        return redirect(url_for("referentials.edit_contact_type", type_id=contact_type.id))
    return render_template(
        "referentials/contact_type_form.html", contact_type=contact_type, form=form, owner_key=CONTACT_TYPES,
        owner=contact_type,
        history=audit.entries_for(object_type="contact_type", object_id=str(contact_type.id)),
    ), status


# --- Dossier classifications ------------------------------------------------------------------

def _dossier_type_values(form: DossierTypeForm) -> dict:
    return {"label": form.label.data, "process_key": form.process_key.data, "target_days": form.target_days.data,
            "active": form.active.data, "position": form.position.data, "auto_start": form.auto_start.data,
            "one_per_contract": form.one_per_contract.data, "suspends_dunning": form.suspends_dunning.data}


@bp.route(f"/{DOSSIER_TYPES}")
def dossier_types():
    return render_template("referentials/dossier_types.html", dossier_types=service.list_dossier_types())


@bp.route(f"/{DOSSIER_TYPES}/nouvelle", methods=["GET", "POST"])
def new_dossier_type():
    form = NewDossierTypeForm()
    dossier_type, status = _submitted(
        form, lambda: service.create_dossier_type(code=form.code.data, **_dossier_type_values(form)))
    if dossier_type is not None:
        flash(_("Classification %(code)s créée.", code=dossier_type.code), "success")
        return redirect(url_for("referentials.edit_dossier_type", type_id=dossier_type.id))
    return render_template("referentials/dossier_type_form.html", form=form, dossier_type=None), status


@bp.route(f"/{DOSSIER_TYPES}/<int:type_id>", methods=["GET", "POST"])
def edit_dossier_type(type_id: int):
    dossier_type = service.get_dossier_type(type_id=type_id) or abort(404)
    form = DossierTypeForm(obj=None if request.method == "POST" else dossier_type)
    done, status = _submitted(
        form, lambda: service.update_dossier_type(dossier_type=dossier_type, **_dossier_type_values(form)) or True)
    if done:
        flash(_("Modifications enregistrées."), "success")
        return redirect(url_for("referentials.edit_dossier_type", type_id=dossier_type.id))
    return render_template(
        "referentials/dossier_type_form.html", dossier_type=dossier_type, form=form, owner_key=DOSSIER_TYPES,
        owner=dossier_type,
        history=audit.entries_for(object_type="dossier_type", object_id=str(dossier_type.id)),
    ), status


# --- Template items ---------------------------------------------------------------------------

def _owner_or_404(owner_key: str, owner_id: int) -> service.Owner:
    if owner_key == CONTACT_TYPES:
        owner = service.get_contact_type(type_id=owner_id)
    else:
        owner = service.get_dossier_type(type_id=owner_id)
    return owner or abort(404)


def _owner_url(owner_key: str, owner: service.Owner) -> str:
    endpoint = "referentials.edit_contact_type" if owner_key == CONTACT_TYPES else "referentials.edit_dossier_type"
    return url_for(endpoint, type_id=owner.id) + "#template"


def _item_or_404(owner: service.Owner, item_id: int) -> TemplateItem:
    return service.get_item(owner=owner, item_id=item_id) or abort(404)


def _item_data(item: TemplateItem) -> dict:
    """The form's initial values for an existing item, with one empty condition row to fill."""
    rows = [{"fact": r.fact, "op": r.op, "value": r.value} for r in service.rows_from_rule(item.rule)]
    return {
        "kind": item.kind, "source": item.source, "link_role": item.link_role or "",
        "fixed_party": item.fixed_party.number if item.fixed_party else "",
        "fixed_agent": item.fixed_agent.login if item.fixed_agent else "",
        "role": item.role.code if item.role else "", "territory": item.territory.code if item.territory else "",
        "conditions": [*rows, {"fact": "", "op": "", "value": ""}],
    }


def _item_form(item: TemplateItem | None) -> TemplateItemForm:
    form = TemplateItemForm() if request.method == "POST" or item is None else TemplateItemForm(data=_item_data(item))
    # Deactivated roles and territories are not offered, unless the item already names them.
    held_role = item.role.code if item is not None and item.role is not None else None
    held_territory = item.territory.code if item is not None and item.territory is not None else None
    form.role.choices = [NONE_CHOICE, *(SelectChoice(r.code, f"{r.label} ({r.code})") for r in security.list_roles()
                                        if r.active or r.code == held_role)]
    territories = [t for t in security.list_territories() if t.active or t.code == held_territory]
    form.territory.choices = [NONE_CHOICE, *(SelectChoice(t.code, f"{'· ' * t.depth}{t.name} ({t.code})")
                                             for t in territories)]
    return form


def _rule_rows(form: TemplateItemForm) -> list[service.ConditionRow]:
    return [service.ConditionRow(fact=row.fact.data or "", op=row.op.data or "", value=row.value.data or "")
            for row in form.conditions]


def _fact_help() -> list[tuple[object, str]]:
    """Each fact and what its value may be, for the help under the rule."""
    shown = []
    for fact in rules.FACTS.values():
        if fact.type == "choice":
            values = ", ".join(f"{code} ({text})" for code, text in LABELS[fact.choices].items())  # type: ignore[index]
        else:
            values = {
                "codes": _("codes séparés par des virgules (ex. : des codes de classification)"),
                "number": _("un nombre"), "money": _("un montant en euros (ex. : 150,00)"),
                "bool": _("oui ou non"), "territory": _("un code de territoire"),
            }[fact.type]
        shown.append((fact.label, values))
    return shown


def _item_page(owner_key: str, owner: service.Owner, item: TemplateItem | None):
    form = _item_form(item)
    rule_error = None
    status = 200
    if request.method == "POST" and "add_condition" in request.form:
        # Without a script: the same form again, with one more empty row; nothing is saved.
        if len(form.conditions) < form.conditions.max_entries:
            form.conditions.append_entry()
    elif form.validate_on_submit():
        try:
            service.save_item(
                owner=owner, item=item, kind=form.kind.data, source=form.source.data,
                link_role=form.link_role.data, fixed_party_number=form.fixed_party.data,
                fixed_agent_login=form.fixed_agent.data, role_code=form.role.data,
                territory_code=form.territory.data, rule_rows=_rule_rows(form),
            )
        except BusinessError as exc:
            if exc.field == "rule":
                rule_error = exc.message
            else:
                show_error(form, exc)
            status = 422
        else:
            flash(_("Élément du modèle enregistré."), "success")
            return redirect(_owner_url(owner_key, owner))
    elif form.errors:
        status = 422
    return render_template("referentials/item_form.html", form=form, owner=owner, owner_key=owner_key, item=item,
                           owner_url=_owner_url(owner_key, owner), rule_error=rule_error,
                           fact_help=_fact_help()), status


@bp.route(f"/<{OWNERS}:owner_key>/<int:owner_id>/modele/nouveau", methods=["GET", "POST"])
def new_item(owner_key: str, owner_id: int):
    return _item_page(owner_key, _owner_or_404(owner_key, owner_id), None)


@bp.route(f"/<{OWNERS}:owner_key>/<int:owner_id>/modele/<int:item_id>", methods=["GET", "POST"])
def edit_item(owner_key: str, owner_id: int, item_id: int):
    owner = _owner_or_404(owner_key, owner_id)
    return _item_page(owner_key, owner, _item_or_404(owner, item_id))


@bp.route(f"/<{OWNERS}:owner_key>/<int:owner_id>/modele/<int:item_id>/supprimer", methods=["POST"])
def delete_item(owner_key: str, owner_id: int, item_id: int):
    owner = _owner_or_404(owner_key, owner_id)
    item = _item_or_404(owner, item_id)
    if ConfirmForm().validate_on_submit():
        service.delete_item(owner=owner, item=item)
        flash(_("Élément du modèle supprimé."), "success")
    return redirect(_owner_url(owner_key, owner))


@bp.route(f"/<{OWNERS}:owner_key>/<int:owner_id>/modele/<int:item_id>/deplacer", methods=["POST"])
def move_item(owner_key: str, owner_id: int, item_id: int):
    owner = _owner_or_404(owner_key, owner_id)
    item = _item_or_404(owner, item_id)
    if ConfirmForm().validate_on_submit():
        service.move_item(owner=owner, item=item, step=-1 if request.form.get("direction") == "up" else 1)
    return redirect(_owner_url(owner_key, owner))

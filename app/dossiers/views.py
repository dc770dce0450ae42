"""The dossier page (elements grouped by kind, history, notes, status) and the contact actions that
feed dossiers: "Créer un dossier" and "Déplacer vers dossier" (with its preview)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from app.audit.display import field_label, value_label
from app.audit.service import entries_for
from app.contacts import objects
from app.contacts.panel import origin_label
from app.contacts.service import get_contact
from app.db import session as db_session
from app.documents import templates as document_templates
from app.documents.models import TemplateKind
from app.dossiers import reads, service
from app.dossiers.models import DossierStatus, DossierType
from app.errors import BusinessError
from app.integration import connector
from app.labels import label
from app.mails import outbox as mail_outbox
from app.parties.service import readable_party_ids
from app.security.models import Agent
from app.web import db_id, require_permission

bp = Blueprint("dossiers", __name__)

HISTORY_SHOWN = 100


@bp.route("/dossiers/<int:dossier_id>")
@require_permission("party.read")
def show(dossier_id: int):
    agent = current_user
    dossier = reads.get_dossier(agent=agent, dossier_id=dossier_id)
    if dossier is None:
        abort(404)
    elements = service.elements(agent=agent, dossier=dossier)
    history = entries_for(object_type="dossier", object_id=str(dossier.id), limit=HISTORY_SHOWN)
    return render_template(
        "dossiers/show.html", dossier=dossier, elements=elements, history=history, origin_label=origin_label,
        objects_shown=[(o.ref, o.display, o.origin) for o in elements.objects], holder=dossier,
        visible_parties=readable_party_ids(agent=agent, party_ids=[x.party_id for x in dossier.parties]),
        next_statuses=DossierStatus.TRANSITIONS.get(dossier.status, ()) if agent.can("dossier.process") else (),
        agent_names=_agent_names(history), describe_entry=describe_entry,
        new_contact_url=new_contact_url_for(dossier),
        letter_templates=document_templates.catalogue(TemplateKind.LETTER, active_only=True),
        affaire=connector.state_of(dossier),
        mail_outbox=mail_outbox.for_dossier(dossier.id))


def new_contact_url_for(holder) -> str | None:
    """"Nouveau contact" from a contact or dossier page starts with its first customer the agent may
    read (the customer role first), and its first contract."""
    if not current_user.can("contact.create"):
        return None
    visible = readable_party_ids(agent=current_user, party_ids=[x.party_id for x in holder.parties])
    parties = sorted((x for x in holder.parties if x.party_id in visible), key=lambda x: x.role != "customer")
    if not parties:
        return None
    contract = next((x.object_id for x in holder.objects if x.object_type == "contract"), None)
    return url_for("contacts.new", party=parties[0].party_id, contract=contract)


def describe_entry(entry) -> str:
    """The detail of a dossier history line: which fields changed, which contact, which note."""
    data = entry.changes or {}
    if entry.action == "update":
        parts = []
        for key, (before, after) in data.items():
            if key == "status":
                before, after = label(before, "dossier_status"), label(after, "dossier_status")
            parts.append(f"{field_label(key)} : {value_label(before)} → {value_label(after)}")
        return " ; ".join(parts)
    if entry.action in ("move_contact", "create_from_contact"):
        added = data.get("added") or {}
        count = sum(len(v) for v in added.values())
        text = _("contact n° %(id)s", id=data.get("contact"))
        return text + (" — " + _("%(num)d lien(s) ajouté(s)", num=count) if entry.action == "move_contact" else "")
    if entry.action == "add_note":
        return str(data.get("title", ""))
    if entry.action == "affaire_created":
        return str(data.get("affaire", ""))
    if entry.action == "generate_letter":
        return str(data.get("title") or data.get("template", ""))
    if entry.action == "link":
        return _("%(parties)d interlocuteur(s), %(agents)d agent(s), %(objects)d objet(s)",
                 parties=len(data.get("parties", [])), agents=len(data.get("agents", [])),
                 objects=len(data.get("objects", [])))
    return ""


def _agent_names(history) -> dict[int, str]:
    ids = {e.actor_id for e in history if e.actor_id}
    if not ids:
        return {}
    return dict(db_session.execute(select(Agent.id, Agent.full_name).where(Agent.id.in_(ids))).all())


def _contact_or_404(contact_id: int) -> None:
    """Actions on a contact the agent may not read answer like a missing page, not with a message."""
    if get_contact(agent=current_user, contact_id=contact_id) is None:
        abort(404)


def _dossier_or_404(dossier_id: int) -> None:
    if reads.get_dossier(agent=current_user, dossier_id=dossier_id) is None:
        abort(404)


@bp.route("/contacts/<int:contact_id>/dossier", methods=["POST"])
@require_permission("dossier.create")
def create_from_contact(contact_id: int):
    _contact_or_404(contact_id)
    try:
        dossier = service.create_from_contact(agent=current_user, contact_id=contact_id,
                                              dossier_type_id=request.form.get("dossier_type", type=db_id),
                                              subject=request.form.get("subject"))
    except service.DossierExists as exc:
        db_session.rollback()
        flash(exc.message, "info")
        return redirect(url_for("dossiers.show", dossier_id=exc.dossier.id), 303)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("contacts.show", contact_id=contact_id, action="dossier"), 303)
    db_session.commit()
    flash(_("Dossier %(ref)s créé à partir du contact.", ref=dossier.reference), "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier.id), 303)


@bp.route("/contacts/<int:contact_id>/dossier/modele")
@require_permission("dossier.create")
def template_preview(contact_id: int):
    """What the chosen classification's template adds to the contact's links (htmx, on the contact
    page, when the classification changes): each item with its origin, or why it is left out."""
    contact = get_contact(agent=current_user, contact_id=contact_id)
    if contact is None:
        abort(404)
    dossier_type = db_session.get(DossierType, request.args.get("dossier_type", type=db_id) or 0)
    proposals = service.proposals_from_contact(agent=current_user, contact=contact, dossier_type=dossier_type)
    return render_template("dossiers/_template_preview.html", proposals=proposals)


def _preview_or_back(contact_id: int):
    try:
        return service.preview_move(agent=current_user, contact_id=contact_id,
                                    dossier_id=request.values.get("dossier", type=db_id)), None
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return None, redirect(url_for("contacts.show", contact_id=contact_id), 303)


@bp.route("/contacts/<int:contact_id>/deplacer")
@require_permission("dossier.create")
def move_preview(contact_id: int):
    """What moving the contact into the dossier adds, and what the dossier already has."""
    _contact_or_404(contact_id)
    preview, back = _preview_or_back(contact_id)
    if back is not None:
        return back
    refs = [link.ref for link in preview.to_add.objects + preview.existing.objects]
    found = objects.load(current_user, refs)
    party_names = {x.party_id: x.party.display_name for x in preview.contact.parties}
    agent_names = {x.agent_id: x.agent.full_name for x in preview.contact.agents}
    return render_template("dossiers/move.html", preview=preview, party_names=party_names, agent_names=agent_names,
                           describe=lambda ref: objects.describe(ref, found.get(ref)))


@bp.route("/contacts/<int:contact_id>/deplacer", methods=["POST"])
@require_permission("dossier.create")
def move(contact_id: int):
    _contact_or_404(contact_id)
    try:
        result = service.move_contact(agent=current_user, contact_id=contact_id,
                                      dossier_id=request.form.get("dossier", type=db_id))
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("contacts.show", contact_id=contact_id), 303)
    db_session.commit()
    if result.adds_nothing:
        flash(_("Le contact était déjà rattaché au dossier %(ref)s : rien à ajouter.", ref=result.dossier.reference),
              "info")
    else:
        flash(_("Contact rattaché au dossier %(ref)s.", ref=result.dossier.reference), "success")
    return redirect(url_for("dossiers.show", dossier_id=result.dossier.id), 303)


@bp.route("/dossiers/<int:dossier_id>/notes", methods=["POST"])
@require_permission("dossier.create")
def add_note(dossier_id: int):
    _dossier_or_404(dossier_id)
    try:
        service.add_note(agent=current_user, dossier_id=dossier_id, title=request.form.get("title"),
                         body=request.form.get("body"))
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("dossiers.show", dossier_id=dossier_id, _anchor="notes"), 303)
    db_session.commit()
    flash(_("Note ajoutée au dossier."), "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id, _anchor="notes"), 303)


@bp.route("/dossiers/<int:dossier_id>/statut", methods=["POST"])
@require_permission("dossier.process")
def change_status(dossier_id: int):
    _dossier_or_404(dossier_id)
    try:
        dossier = service.change_status(agent=current_user, dossier_id=dossier_id,
                                        status=request.form.get("status", ""),
                                        version=request.form.get("version", type=db_id))
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("dossiers.show", dossier_id=dossier_id), 303)
    db_session.commit()
    flash(_("Dossier %(ref)s : %(status)s.", ref=dossier.reference,
            status=label(dossier.status, "dossier_status")), "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id), 303)




@bp.route("/dossiers/<int:dossier_id>/affaire/relancer", methods=["POST"])
@require_permission("supervision")
def retry_affaire(dossier_id: int):
    """A supervisor sends the dossier's refused calls to the billing system again."""
    _dossier_or_404(dossier_id)
    count = connector.retry(dossier_id=dossier_id)
    db_session.commit()
    flash(ngettext("%(num)d envoi au SI facturation relancé.", "%(num)d envois au SI facturation relancés.", count),
          "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id), 303)

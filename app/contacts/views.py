"""Capturing a contact ("Nouveau contact") and the contact's page, with its actions: create a dossier
from it, move it into a dossier (app/dossiers/views.py), launch its process (next issue)."""
from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.contacts import links as link_rules
from app.contacts import objects, panel, service
from app.contacts.models import Direction
from app.contracts import service as contracts
from app.contracts.models import Contract, ContractParty
from app.db import session as db_session
from app.dossiers import reads as dossier_reads
from app.dossiers import service as dossiers
from app.dossiers.views import new_contact_url_for
from app.errors import BusinessError
from app.labels import CHANNELS, choices
from app.parties.service import get_party, readable_party_ids
from app.processes import service as process_service
from app.web import db_id, require_permission

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _local_input(moment: datetime) -> str:
    """A moment as a datetime-local input shows it, in the agency's time zone."""
    return moment.astimezone(_zone()).strftime("%Y-%m-%dT%H:%M")


def _parse_moment(raw: str | None) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BusinessError(_("Date et heure illisibles : %(value)s.", value=raw), field="occurred_at") from None
    return moment.replace(tzinfo=_zone()) if moment.tzinfo is None else moment


def _parse_minutes(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise BusinessError(_("La durée est un nombre de minutes."), field="duration_minutes")
    return int(raw)


class FormContext:
    """What the form is about, from its parameters, every one read again through the scope."""

    def __init__(self) -> None:
        agent = current_user
        values = request.values
        party_id = values.get("party", type=db_id)
        self.party = get_party(agent=agent, party_id=party_id) if party_id else None
        contract_id = values.get("contract", type=db_id)
        contract = contracts.get_contract(agent=agent, contract_id=contract_id) if contract_id else None
        if contract is not None and self.party is not None and not db_session.execute(select(exists().where(
                ContractParty.contract_id == contract.id, ContractParty.party_id == self.party.id))).scalar():
            contract = None  # a contract of someone else is not this customer's current contract
        self.contract: Contract | None = contract
        channel = values.get("channel")
        self.channel = channel if channel in CHANNELS else None
        direction = values.get("direction")
        self.contact_type = service.get_type(values.get("contact_type", type=db_id))
        self.direction = direction if direction in Direction.ALL else (
            self.contact_type.default_direction if self.contact_type else Direction.INBOUND)
        # A channel given by the caller's identification, or a channel or direction the agent picked,
        # stays; otherwise choosing a type applies the type's defaults ("Réclamation": letter).
        if request.method == "GET":
            self.channel_chosen, self.direction_chosen = self.channel is not None, direction in Direction.ALL
        else:
            self.channel_chosen = "1" in values.getlist("channel_chosen")
            self.direction_chosen = "1" in values.getlist("direction_chosen")
        if self.contact_type is not None and (request.method == "GET" or values.get("retemplate")):
            if not self.channel_chosen and self.contact_type.default_channel:
                self.channel = self.contact_type.default_channel
            if not self.direction_chosen:
                self.direction = self.contact_type.default_direction

    def panel(self, *, fresh: bool, retemplate: bool = False) -> panel.Panel:
        values = request.values
        add = None
        kind = values.get("add_kind")
        if kind in panel.KINDS:
            add = (kind, values.get(f"add_{kind}", ""), values.get(f"add_{kind}_role"))
        ticked = set(values.getlist("parties") + values.getlist("agents") + values.getlist("objects"))
        return panel.build(agent=current_user, party=self.party, contract=self.contract, channel=self.channel,
                           direction=self.direction, contact_type=self.contact_type,
                           shown=None if fresh else values.getlist("shown"), ticked=ticked,
                           retemplate=retemplate, add=add)


def _render_form(ctx: FormContext, links_panel: panel.Panel, *, error: BusinessError | None = None, status=200,
                 notice: str | None = None):
    values = request.values
    return render_template(
        "contacts/new.html", ctx=ctx, panel=links_panel, types=service.active_types(),
        channels=choices("channel"), directions=choices("direction"), error=error, notice=notice,
        subject=values.get("subject", ""), notes=values.get("notes", ""),
        occurred_at=values.get("occurred_at") or _local_input(clock.now()),
        duration=values.get("duration_minutes", ""),
        submission_key=values.get("submission_key") or uuid.uuid4().hex,
    ), status


@bp.route("/nouveau", methods=["GET", "POST"])
@require_permission("contact.create")
def new():
    """The contact form. From the 360° view it starts with the customer and the current contract;
    without a customer, the agent identifies one first. A POST with add_kind or retemplate (the
    buttons, without JavaScript) re-renders the form; any other POST saves."""
    ctx = FormContext()
    if request.method == "GET":
        if ctx.party is None:
            flash(_("Identifiez d'abord le client du contact."), "info")
            return redirect(url_for("search.identify", channel=ctx.channel or "phone"))
        if ctx.channel is None:
            ctx.channel = "phone"
        return _render_form(ctx, ctx.panel(fresh=True))
    form = request.form
    if form.get("add_kind") or form.get("retemplate"):
        return _render_form(ctx, ctx.panel(fresh=False, retemplate=bool(form.get("retemplate"))))
    if "links_type" in form and form.get("links_type", "") != form.get("contact_type", ""):
        # Saved before the links panel caught up with a new type: show the new type's links first.
        return _render_form(ctx, ctx.panel(fresh=False, retemplate=True), status=409,
                            notice=_("Le type de contact a changé : vérifiez les liens proposés, puis enregistrez."))
    key = form.get("submission_key")
    try:
        links = link_rules.parse_form(parties=form.getlist("parties"), agents=form.getlist("agents"),
                                      object_refs=form.getlist("objects"))
        contact = service.create_contact(
            agent=current_user, contact_type_id=form.get("contact_type", type=db_id), channel=ctx.channel,
            direction=ctx.direction, subject=form.get("subject"), notes=form.get("notes"),
            occurred_at=_parse_moment(form.get("occurred_at")), duration_minutes=_parse_minutes(
                form.get("duration_minutes")), links=links, submission_key=key)
        db_session.commit()
    except service.AlreadySubmitted as exc:
        db_session.rollback()
        flash(exc.message, "info")
        return redirect(url_for("contacts.show", contact_id=exc.contact.id), 303)
    except IntegrityError:  # the same form posted twice at the same instant: the other post won
        db_session.rollback()
        contact = service.contact_of_submission(key)
        if contact is None:
            raise
        flash(_("Ce contact était déjà enregistré (n° %(id)s).", id=contact.id), "info")
        return redirect(url_for("contacts.show", contact_id=contact.id), 303)
    except BusinessError as exc:
        db_session.rollback()
        return _render_form(ctx, ctx.panel(fresh=False), error=exc, status=422)
    flash(_("Contact n° %(id)s tracé.", id=contact.id), "success")
    then = form.get("then")
    return redirect(url_for("contacts.show", contact_id=contact.id, _anchor="actions" if then == "dossier" else None,
                            action=then if then == "dossier" else None), 303)


@bp.route("/nouveau/liens", methods=["POST"])
@require_permission("contact.create")
def links_panel():
    """The links panel alone, re-rendered in place (htmx) after a change of type or an addition."""
    ctx = FormContext()
    retemplate = bool(request.form.get("retemplate"))
    html = render_template("contacts/_links.html", ctx=ctx, panel=ctx.panel(fresh=False, retemplate=retemplate))
    if retemplate:  # the type's default channel and direction may have changed them
        html += render_template("contacts/_channel_direction.html", ctx=ctx, oob=True, channels=choices("channel"),
                                directions=choices("direction"))
    return html


@bp.route("/<int:contact_id>")
@require_permission("party.read")
def show(contact_id: int):
    agent = current_user
    contact = service.get_contact(agent=agent, contact_id=contact_id)
    if contact is None:
        abort(404)
    refs = [objects.Ref(x.object_type, x.object_id) for x in contact.objects]
    found = objects.load(agent, refs)
    linked = dossier_reads.dossiers_of_contact(agent=agent, contact_id=contact.id)
    linked_ids = {d.id for d in linked}
    candidates = [d for d in dossiers.candidate_dossiers(agent=agent, contact=contact)
                  if d.id not in linked_ids] if agent.can("dossier.create") else []
    return render_template(
        "contacts/show.html", contact=contact, linked=linked, candidates=candidates,
        objects_shown=[(ref, objects.describe(ref, found.get(ref)), x.origin)
                       for ref, x in zip(refs, contact.objects, strict=True)],
        origin_label=panel.origin_label, dossier_types=dossiers.active_types() if agent.can("dossier.create") else [],
        proposed_type=contact.contact_type.dossier_type_id, open_dossier_form=request.args.get("action") == "dossier",
        template_proposals=_template_proposals(contact), new_contact_url=new_contact_url_for(contact),
        processes=process_service.instances_of(agent=agent, contact_id=contact.id),
        visible_parties=readable_party_ids(agent=agent, party_ids=[x.party_id for x in contact.parties]))


def _template_proposals(contact) -> list:
    """What the proposed classification's template would add, shown before the dossier is created."""
    if not current_user.can("dossier.create"):
        return []
    return dossiers.proposals_from_contact(agent=current_user, contact=contact,
                                           dossier_type=contact.contact_type.dossier_type)

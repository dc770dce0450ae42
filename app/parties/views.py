"""The 360° customer view: who the customer is, alerts, contracts, the current contract's details,
the "informer le client" panel and the history. The quick search, caller identification and the
advanced search open it (``?contract=`` selects a contract, ``?channel=`` names an incoming
contact's channel)."""
from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user

from app.labels import CHANNELS, choices
from app.parties import consultations, overview, sensitive, timeline
from app.parties.models import Party
from app.security.scope import get_scoped_or_404
from app.web import require_permission

bp = Blueprint("parties", __name__, url_prefix="/clients")


@bp.app_template_global("sensitive_value")
def sensitive_value(party: Party, field: str) -> str:
    """A party's sensitive value as the signed-in agent may read it, for any template (masked
    without party.sensitive; "" for no value). See app.parties.sensitive."""
    return sensitive.shown(party, field, current_user)


@bp.app_template_global("may_see_sensitive")
def may_see_sensitive() -> bool:
    return sensitive.may_see(current_user)


def _history_filters() -> dict:
    channel = request.args.get("history_channel") or None
    return {
        "page": request.args.get("history_page", 1, type=int),
        "kind": request.args.get("history_type") or None,
        "channel": channel if channel in CHANNELS else None,
    }


def _incoming_channel() -> str | None:
    channel = request.args.get("channel")
    return channel if channel in CHANNELS else None


@bp.route("/<int:party_id>")
@require_permission("party.read")
def show(party_id: int):
    agent = current_user
    party = get_scoped_or_404(Party, party_id, agent=agent, permission="party.read")
    # Traced in the request's transaction, for the customer's access requests: every answer of this
    # route, tabs and invoice pages swapped in by htmx included (a header the client chooses must
    # not decide whether a view of the customer's data is logged).
    consultations.record(party_id=party.id, agent=agent)
    history = _history_filters()
    view = overview.build(agent=agent, party=party, requested_contract=request.args.get("contract", type=int),
                          invoices_page=request.args.get("invoices_page", 1, type=int),
                          history_page=history["page"], history_kind=history["kind"],
                          history_channel=history["channel"])
    new_contact_url = (url_for("contacts.new", party=party.id, contract=view.current.id if view.current else None,
                               channel=_incoming_channel()) if agent.can("contact.create") else None)
    return render_template("parties/show.html", view=view, party=party, channel=_incoming_channel(),
                           new_contact_url=new_contact_url,
                           can_edit=agent.can("party.write"), history=view.history,
                           history_types=timeline.type_choices(),
                           # The channel filter appears once a source has channels (contacts).
                           history_channels=choices("channel") if timeline.has_channel_sources() else [])


@bp.route("/<int:party_id>/historique")
@require_permission("party.read")
def history(party_id: int):
    """The history list alone (htmx swaps it in place; it also opens on its own)."""
    agent = current_user
    party = get_scoped_or_404(Party, party_id, agent=agent, permission="party.read")
    consultations.record(party_id=party.id, agent=agent)  # the customer's contacts and dossiers: a view too
    filters = _history_filters()
    page = timeline.history(agent=agent, party_id=party.id, page=filters["page"], kind=filters["kind"],
                            channel=filters["channel"])
    return render_template("parties/_history.html", party=party, history=page, channel=_incoming_channel())

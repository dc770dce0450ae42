"""The party page: who the customer is, how to reach them, their contracts. A simple page until
the 360° view; the quick search and caller identification open it."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from app.contracts.service import list_contracts_of_party
from app.labels import CHANNELS
from app.parties.models import Party
from app.security.scope import get_scoped_or_404
from app.web import require_permission

bp = Blueprint("parties", __name__, url_prefix="/clients")


@bp.route("/<int:party_id>")
@require_permission("party.read")
def show(party_id: int):
    agent = current_user
    party = get_scoped_or_404(Party, party_id, agent=agent, permission="party.read")
    contracts = list_contracts_of_party(agent=agent, party_id=party.id)
    selected = request.args.get("contract", type=int)
    if selected not in {c.id for c in contracts}:
        selected = contracts[0].id if contracts else None
    channel = request.args.get("channel")
    return render_template("parties/show.html", party=party, contracts=contracts, selected=selected,
                           channel=channel if channel in CHANNELS else None)

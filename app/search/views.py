"""The quick search (the box in the top bar, on every page) and caller identification (the
"Nouveau contact" screen: which channel, which customer)."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from app.errors import BusinessError
from app.labels import CHANNELS, choices
from app.search import service
from app.web import require_permission

bp = Blueprint("search", __name__)

QUICK_LIMIT = 8  # what fits under the box
PAGE_LIMIT = 30


def result_url(result: service.Result) -> str:
    """Where a result leads: the party, with the matched contract selected."""
    return url_for("parties.show", party_id=result.party.id, contract=result.contract.id if result.contract else None)


@bp.app_context_processor
def _helpers():
    return {"result_url": result_url}


@bp.route("/recherche/rapide")
@require_permission("party.read")
def quick():
    """The list under the box, as the agent types (htmx)."""
    answer = service.search(agent=current_user, query=request.args.get("q"), limit=QUICK_LIMIT)
    return render_template("search/_quick_results.html", answer=answer)


@bp.route("/recherche")
@require_permission("party.read")
def results():
    """The same search on a page of its own (Enter without choosing, or a bookmarked search)."""
    answer = service.search(agent=current_user, query=request.args.get("q"), limit=PAGE_LIMIT)
    return render_template("search/results.html", answer=answer)


@bp.route("/identifier")
@require_permission("party.read")
def identify():
    """Start a contact: the channel, then the customer, by the caller's number or simple criteria.
    The telephony system links here with ?phone=… (and the API gives the same answer)."""
    channel = request.args.get("channel", "phone")
    channel = channel if channel in CHANNELS else "phone"
    party_id = request.args.get("party", type=int)
    if party_id:  # chosen: open the customer with the channel of the contact
        return redirect(url_for("parties.show", party_id=party_id, channel=channel))
    phone, query, error = request.args.get("phone", "").strip(), request.args.get("q", "").strip(), None
    answer = None
    if phone:
        try:
            answer = service.identify_caller(agent=current_user, phone=phone)
        except BusinessError as exc:
            error = exc.message
    elif query:
        answer = service.search(agent=current_user, query=query, limit=PAGE_LIMIT)
    return render_template("search/identify.html", answer=answer, channel=channel, channels=choices("channel"),
                           phone=phone, query=query, error=error)

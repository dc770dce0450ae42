"""Erasure on request (GDPR article 17): the data protection officer anonymises one party.

POST only, CSRF-protected like every form. The agent needs ``party.privacy``, and the party is read
through the agent's territories (app.parties.service.get_party): outside them it reads as missing
(404). A refusal (a customer, an open dossier, an active process, an unpaid invoice) is flashed,
with nothing written; the confirmation box must be ticked. The contacts and dossiers of someone else
where the party appears (a neighbour noted as third party on a customer's contact) keep their content:
the party's link and its own values only are taken out (retention.anonymise). The search index is
compacted by the nightly job, not here.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.db import session
from app.errors import BusinessError
from app.parties.service import get_party
from app.privacy import retention
from app.web import require_permission

PRIVACY = "party.privacy"

bp = Blueprint("privacy_erasure", __name__, url_prefix="/interlocuteurs/<int:party_id>/donnees-personnelles")


def _back(party_id: int):
    """The party's data-protection page when it exists, else the party's page."""
    endpoint = "privacy.summary" if "privacy.summary" in current_app.view_functions else "parties.show"
    return redirect(url_for(endpoint, party_id=party_id))


@bp.route("/effacement", methods=["POST"])
@require_permission(PRIVACY)
def erase(party_id: int):
    party = get_party(agent=current_user, party_id=party_id)
    if party is None:
        abort(404)
    if request.form.get("confirm") != "1":
        flash(_("Cochez la case de confirmation pour effacer les données de cet interlocuteur."), "error")
        return _back(party.id)
    try:
        counts = retention.anonymise(party, reason=retention.REASON_REQUEST, actor_agent=current_user)
    except BusinessError as exc:
        session.rollback()
        flash(exc.message, "error")
        return _back(party_id)
    # No compaction of the search index here (it rewrites it whole): anonymise rewrote the party's row,
    # which takes its old terms out of the index at once; the nightly job compacts (retention.run).
    session.commit()
    flash(_("Les données personnelles de l'interlocuteur ont été effacées (%(contacts)s contact(s), "
            "%(dossiers)s dossier(s) anonymisé(s)).", contacts=counts["contacts"], dossiers=counts["dossiers"]),
          "success")
    shared = counts.get("shared_contacts", 0) + counts.get("shared_dossiers", 0)
    if shared:
        flash(_("Il a été retiré de %(count)s contact(s) ou dossier(s) d'autres interlocuteurs, qui restent à "
                "ceux-ci sans ses données.", count=shared), "success")
    return _back(party_id)

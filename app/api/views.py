"""The HTTP API for other systems (/api/v1), authenticated by API tokens.

Every request carries ``Authorization: Bearer <token>``; never a session cookie, never a token in
the URL (URLs end up in proxy and server logs). Answers are JSON, errors included. Calls are not
audited one by one: they read, and the trail would drown in them; creating and revoking tokens is.
"""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from sqlalchemy import select

from app.api import tokens
from app.audit.context import AuditContext, set_context
from app.db import session as db_session
from app.errors import BusinessError
from app.extensions import limiter
from app.search.service import identify_caller
from app.security.scope import territory_ids_under
from app.security.service import get_agent_by_login
from app.web import token_authenticated

bp = token_authenticated(Blueprint("api", __name__, url_prefix="/api/v1"))

DEFAULT_RATE_LIMIT = "600 per minute"  # per token, when the configuration has no API_RATE_LIMIT
FAILED_RATE_LIMIT = "30 per minute"  # refused credentials, per client address


def _bearer() -> str | None:
    scheme, _sep, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def _rate_key() -> str:
    """Count per token (its digest: the store never sees a usable token), else per address."""
    credential = _bearer()
    return f"api-token:{tokens.digest(credential)}" if credential else f"api-addr:{get_remote_address()}"


# Checked by the limiter's own before_request, before the token is even looked up. The second
# limit counts only refusals, so that trying tokens at random cannot escape the first one by
# changing token at every call.
limiter.limit(lambda: current_app.config.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT), key_func=_rate_key)(bp)
limiter.limit(FAILED_RATE_LIMIT, key_func=get_remote_address, deduct_when=lambda r: r.status_code == 401)(bp)


def error(status: int, message: str, **headers):
    response = jsonify(error=message)
    response.headers.update(headers)
    return response, status


@bp.before_request
def _authenticate():
    credential = _bearer()
    token = tokens.authenticate(credential)
    if token is None:
        if credential:
            message = _("Jeton d'API invalide ou révoqué.")
        elif {"token", "access_token"} & request.args.keys():
            message = _("Le jeton se transmet dans l'en-tête « Authorization: Bearer <jeton> », jamais dans l'URL.")
        else:
            message = _("Jeton d'API manquant : envoyez l'en-tête « Authorization: Bearer <jeton> ».")
        return error(401, message, **{"WWW-Authenticate": 'Bearer realm="guichet"'})
    g.api_token = token
    set_context(AuditContext(actor_label=f"api:{token.prefix}", request_id=g.request_id,
                             client_addr=request.remote_addr))
    return None


def require_api_permission(code: str):
    """View decorator: 403 unless the calling token was granted code."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if code not in g.api_token.permission_codes:
                return error(403, _("Ce jeton n'a pas la permission « %(code)s ».", code=code))
            return view(*args, **kwargs)

        return wrapped

    return decorator


@bp.route("/identify")
@require_api_permission("identify")
def identify():
    """The telephony system's question when a phone rings: who is calling this agent?

    The answer is what that agent would see on their screen, narrowed to the token's territories:
    the owners of the number within both scopes, and how many others own it (a count, nothing
    else). A token acts only for an active agent whose territories meet its own; any other login,
    unknown, deactivated or out of the token's territories, gets one and the same 404, so that
    the answer never tells which logins exist elsewhere.
    """
    phone = request.args.get("phone", "").strip()
    login = request.args.get("agent", "").strip()
    if not phone:
        return error(400, _("Le paramètre « phone » (numéro de l'appelant) est obligatoire."))
    if not login:
        return error(400, _("Le paramètre « agent » (identifiant de l'agent dont le poste sonne) est obligatoire."))
    token = g.api_token
    agent = get_agent_by_login(login=login[:64])
    if agent is None or not agent.active or not tokens.agent_within_token(agent, token):
        return error(404, _("Agent inconnu ou hors du périmètre de ce jeton."))
    try:
        answer = identify_caller(agent=agent, phone=phone, within=territory_ids_under(token.territories))
    except BusinessError as exc:
        return error(400, exc.message)
    return jsonify(phone=answer.query, channel="phone", parties=[_party(r) for r in answer.results],
                   out_of_scope=answer.hidden)


def _party(result) -> dict:
    party, contract = result.party, result.main_contract
    return {
        "id": party.id,
        "number": party.number,
        "name": party.display_name,
        "kind": party.kind,
        "status": party.status,
        "address": party.address_lines,
        "main_contract": None if contract is None else {
            "number": contract.number,
            "status": contract.status,
            "offer": contract.offer,
            "kind": contract.service_point.kind,
        },
        # The agent's screen to start the contact from: the customer, with the phone channel chosen.
        "url": url_for("parties.show", party_id=party.id, channel="phone", _external=True),
    }


@bp.route("/dossiers", methods=["POST"])
@require_api_permission("dossier.create")
def create_dossier():
    """Open a dossier for an external action (the billing system, a scheduled job elsewhere).

    JSON body: ``classification`` (code), optional ``subject``, ``parties`` (a list of
    ``{"number": customer number, "role": "payer"…}``, at least one), optional ``contracts`` and
    ``invoices`` (numbers). Everything named must lie within the token's territories, else the
    answer is one and the same 404, as for a missing number. The dossier's origin is "automatic";
    its classification's process starts as the process engine says. 201 with its reference.
    """
    from app.api.dossiers import open_from_request

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, _("Le corps de la requête doit être un objet JSON."))
    try:
        dossier = open_from_request(body, territories=g.api_token.territories)
    except LookupError as exc:
        db_session.rollback()
        return error(404, str(exc))
    except BusinessError as exc:
        db_session.rollback()
        return error(400, exc.message)
    db_session.commit()
    return jsonify(id=dossier.id, reference=dossier.reference, status=dossier.status, origin=dossier.origin,
                   url=url_for("dossiers.show", dossier_id=dossier.id, _external=True)), 201


MESSAGE_NAME_MAX = 100
PAYLOAD_MAX_KEYS = 50


@bp.route("/dossiers/<reference>/messages", methods=["POST"])
@require_api_permission("process.message")
def send_process_message(reference: str):
    """Send a message to the process running on a dossier ("facture_payee" from the billing system).

    JSON body: ``name`` (the BPMN message name) and optional ``payload`` (an object of plain
    values, given to the catch event). A dossier out of the token's territories is a 404, as a
    missing one. 202 with ``delivered``: true when the process was waiting for it; false when it is
    kept and will be delivered as soon as the process waits for it.
    """
    from app.dossiers.models import Dossier
    from app.processes import service as processes
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, _("Le corps de la requête doit être un objet JSON."))
    name, payload = body.get("name"), body.get("payload") or {}
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MESSAGE_NAME_MAX:
        return error(400, _("« name » : le nom du message, %(max)d caractères au plus.", max=MESSAGE_NAME_MAX))
    if not isinstance(payload, dict) or len(payload) > PAYLOAD_MAX_KEYS or not all(
            isinstance(v, (str, int, float, bool, type(None))) for v in payload.values()):
        return error(400, _("« payload » : un objet de %(max)d valeurs simples au plus.", max=PAYLOAD_MAX_KEYS))
    dossier = db_session.execute(select(Dossier).where(
        Dossier.reference == reference[:20],
        Dossier.scope_clause(territory_ids_under(g.api_token.territories)))).scalar_one_or_none()
    if dossier is None:
        return error(404, _("Dossier inconnu ou hors du périmètre de ce jeton."))
    instance = processes.running_on(dossier_id=dossier.id)
    if instance is None:
        return error(409, _("Aucun processus en cours sur ce dossier."))
    delivered = processes.send_message(instance_id=instance.id, name=name.strip(), payload=payload,
                                       source=f"api:{g.api_token.prefix}")
    db_session.commit()
    return jsonify(dossier=dossier.reference, process=instance.id, delivered=delivered,
                   status=instance.status), 202

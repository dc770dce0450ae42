"""The HTTP API for other systems (/api/v1), authenticated by API tokens.

Every request carries ``Authorization: Bearer <token>``; never a session cookie, never a token in
the URL (URLs end up in proxy and server logs). Answers are JSON, errors included. Calls are not
audited one by one: they read, and the trail would drown in them; creating and revoking tokens is.
"""
from __future__ import annotations

import re
from functools import wraps
from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address

from app.api import dossiers as dossiers_api
from app.api import masterdata, tokens
from app.api.errors import ApiError, ValidationError, error_response
from app.api.idempotency import idempotent, respond
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


def error(status: int, message: str, fields: dict[str, str] | None = None, **headers):
    return error_response(status, message, fields, **headers)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db_session.rollback()
    return error_response(exc.status, exc.message, exc.fields, **exc.headers)


def _json_body() -> dict:
    """The request's JSON object, or a 400 (not JSON, or not an object)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, _("Le corps de la requête doit être un objet JSON (Content-Type: application/json)."),
                       fields={"body": _("Un objet JSON est attendu.")})
    return body


@bp.before_request
def _authenticate():
    if request.endpoint == "api.openapi":  # the description of the API holds no data
        return None
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
    fields = {}
    if not phone:
        fields["phone"] = _("Le paramètre « phone » (numéro de l'appelant) est obligatoire.")
    if not login:
        fields["agent"] = _("Le paramètre « agent » (identifiant de l'agent dont le poste sonne) est obligatoire.")
    if fields:
        raise ValidationError(fields, message=next(iter(fields.values())))
    token = g.api_token
    agent = get_agent_by_login(login=login[:64])
    if agent is None or not agent.active or not tokens.agent_within_token(agent, token):
        return error(404, _("Agent inconnu ou hors du périmètre de ce jeton."))
    try:
        answer = identify_caller(agent=agent, phone=phone, within=territory_ids_under(token.territories))
    except BusinessError as exc:
        raise ValidationError({"phone": exc.message}, message=exc.message) from None
    return jsonify(phone=answer.query, channel="phone", parties=[_party(r) for r in answer.results],
                   out_of_scope=answer.hidden)


def _party(result) -> dict:
    """A caller as the telephony system sees it. No sensitive value (birth date, bank details,
    vulnerability: app.parties.sensitive) is ever part of it: no API permission grants
    party.sensitive, so an API payload carries them masked, that is not at all."""
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
@idempotent
def create_dossier():
    """Open a dossier for an external action (the billing system, a scheduled job elsewhere).

    JSON body: ``classification`` (code), optional ``subject``, ``parties`` (a list of
    ``{"number": customer number, "role": "payer"…}``, at least one), optional ``contracts`` and
    ``invoices`` (numbers). A malformed field is a 422 naming it; everything named must lie within
    the token's territories, else the answer is one and the same 404, as for a missing number.
    The dossier's origin is "automatic"; its classification's process starts as the process
    engine says. 201 with its reference. Honours ``Idempotency-Key``.
    """
    dossier = dossiers_api.open_from_request(_json_body(), territories=g.api_token.territories)
    return respond({"id": dossier.id, "reference": dossier.reference, "status": dossier.status,
                    "origin": dossier.origin, "url": url_for("dossiers.show", dossier_id=dossier.id, _external=True)},
                   201)


@bp.route("/dossiers/<reference>")
@require_api_permission("dossier.read")
def read_dossier(reference: str):
    """Where a dossier stands: status, classification, dates, affaire reference, its process and
    the steps waiting now. Out of the token's territories: the same 404 as a missing one."""
    dossier = dossiers_api.find_in_scope(reference, g.api_token.territories)
    if dossier is None:
        return error(404, _("Dossier inconnu ou hors du périmètre de ce jeton."))
    return jsonify(dossiers_api.status_of(dossier))


MESSAGE_NAME_MAX = 100
MESSAGE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
PAYLOAD_MAX_KEYS = 50
PAYLOAD_VALUE_MAX = 1000


def _checked_message(body: dict) -> tuple[str, dict]:
    fields = {}
    name, payload = body.get("name"), body.get("payload")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MESSAGE_NAME_MAX \
            or not MESSAGE_NAME_RE.fullmatch(name.strip()):
        fields["name"] = _("Le nom du message BPMN est obligatoire : lettres, chiffres, « _ », « . » ou « - », "
                           "%(max)d caractères au plus.", max=MESSAGE_NAME_MAX)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict) or len(payload) > PAYLOAD_MAX_KEYS:
        fields["payload"] = _("Un objet de %(max)d valeurs simples au plus est attendu.", max=PAYLOAD_MAX_KEYS)
    else:
        for key, value in payload.items():
            if len(key) > MESSAGE_NAME_MAX:
                fields["payload"] = _("Nom de valeur trop long (%(max)d caractères au plus).", max=MESSAGE_NAME_MAX)
            elif not isinstance(value, (str, int, float, bool, type(None))):
                fields[f"payload.{key}"] = _("Une valeur simple est attendue (texte, nombre, booléen ou null).")
            elif isinstance(value, str) and len(value) > PAYLOAD_VALUE_MAX:
                fields[f"payload.{key}"] = _("%(max)d caractères au plus.", max=PAYLOAD_VALUE_MAX)
    if fields:
        raise ValidationError(fields)
    return name.strip(), payload


@bp.route("/dossiers/<reference>/messages", methods=["POST"])
@require_api_permission("process.message")
@idempotent
def send_process_message(reference: str):
    """Send a message to the process running on a dossier ("facture_payee" from the billing system).

    JSON body: ``name`` (the BPMN message name) and optional ``payload`` (an object of plain
    values, given to the catch event). A dossier out of the token's territories is a 404, as a
    missing one. 202 with ``delivered``: true when the process was waiting for it; false when it is
    kept and will be delivered as soon as the process waits for it. Honours ``Idempotency-Key``.
    """
    from app.processes import service as processes

    name, payload = _checked_message(_json_body())
    dossier = dossiers_api.find_in_scope(reference, g.api_token.territories)
    if dossier is None:
        return error(404, _("Dossier inconnu ou hors du périmètre de ce jeton."))
    instance = processes.running_on(dossier_id=dossier.id)
    if instance is None:
        return error(409, _("Aucun processus en cours sur ce dossier."))
    delivered = processes.send_message(instance_id=instance.id, name=name, payload=payload,
                                       source=f"api:{g.api_token.prefix}")
    return respond({"dossier": dossier.reference, "process": instance.id, "delivered": delivered,
                    "status": instance.status}, 202)


@bp.route("/masterdata", methods=["POST"])
@require_api_permission("masterdata.write")
@idempotent
def upsert_masterdata():
    """Create or update master data: the records of the billing import (docs/import-format.md) as
    JSON lists, all or nothing, within the token's territories. 200 with the counts per kind; 422
    naming every field at fault, nothing written. Honours ``Idempotency-Key``."""
    counts = masterdata.upsert(_json_body(), territories=g.api_token.territories,
                               audit_id=f"api:{g.api_token.prefix}")
    return respond({"counts": counts}, 200)


OPENAPI_FILE = Path(__file__).with_name("openapi.json")


@bp.route("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (no token needed: it holds no data)."""
    response = current_app.response_class(OPENAPI_FILE.read_bytes(), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

"""API tokens: creation, territories, authentication, revocation. Functions flush; the caller commits.

The plaintext of a token exists only in the answer to its creation. The database keeps its
SHA-256 digest, and authentication looks that digest up on its unique index: comparing digests
in the database reveals nothing about the token through timing, and a stolen copy of the table
gives no usable token.

A token is bound to territories, at least one at creation: a call it makes on behalf of an agent
is answered only for an agent whose territories meet the token's, and shows only what lies in
both scopes. A token left with no territory (one created before this rule) answers for nobody.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app import clock
from app.api.models import ApiToken
from app.db import session
from app.errors import BusinessError
from app.security.models import Agent, Territory
from app.security.scope import subtrees_overlap
from app.security.service import _territories_by_code

TOKEN_PREFIX = "gch_"  # noqa: S105  (not a secret) recognisable in a configuration file or a secret scanner's report
SHOWN_PREFIX = 12  # characters kept in clear to tell tokens apart in a list ("gch_" + 8 random)
MAX_TOKEN_LENGTH = 100  # anything longer is not one of ours: refused before hashing
MAX_SYSTEM = 100
LAST_USED_PRECISION = timedelta(minutes=1)  # at most one write a minute per token, not one per call

# What a token may be granted. Deliberately separate from the agents' catalogue: a system calls
# a few precise endpoints, and the agent it acts for lends the geographic scope.
API_PERMISSIONS: dict[str, object] = {
    "identify": _l("Identifier un appelant par son numéro"),
    "dossier.create": _l("Ouvrir des dossiers (actions externes : relances, demandes du SI)"),
    "process.message": _l("Envoyer des messages aux processus des dossiers (facture payée…)"),
    "dossier.read": _l("Lire l'état des dossiers (statut, processus en cours)"),
    "masterdata.write": _l("Mettre à jour les données de facturation (clients, contrats, factures, règlements…)"),
}


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _check_permissions(codes) -> list[str]:
    codes = sorted({c.strip() for c in codes if c and c.strip()})
    if not codes:
        raise BusinessError(_l("Choisissez au moins une permission pour ce jeton."), field="permissions")
    unknown = [c for c in codes if c not in API_PERMISSIONS]
    if unknown:
        raise BusinessError(_l("Permission d'API inconnue : %(codes)s (permises : %(known)s).",
                               codes=", ".join(unknown), known=", ".join(API_PERMISSIONS)), field="permissions")
    return codes


def _check_system(system: str | None) -> str:
    system = " ".join((system or "").split())  # trimmed, no tabs or line breaks inside
    if not system:
        raise BusinessError(_l("Le nom du système est obligatoire."), field="system")
    if len(system) > MAX_SYSTEM:
        raise BusinessError(_l("Le nom du système ne doit pas dépasser %(max)s caractères.", max=MAX_SYSTEM),
                            field="system")
    return system


def _check_territories(codes) -> list[Territory]:
    """The territories with these codes, in tree order: at least one, every one known."""
    codes = [c for c in (codes or ()) if c and c.strip()]
    if not codes:
        raise BusinessError(_l("Choisissez au moins un territoire pour ce jeton : il ne répond que pour "
                               "les agents et les clients de ses territoires."), field="territories")
    return sorted(_territories_by_code(codes), key=lambda t: t.path)


def create_token(*, system: str, permissions, territory_codes, created_by: Agent | None) -> tuple[ApiToken, str]:
    """A new token for system with these permissions over these territories (at least one), and
    its plaintext: the only time it exists."""
    system = _check_system(system)
    codes = _check_permissions(permissions)
    territories = _check_territories(territory_codes)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(system=system, prefix=plaintext[:SHOWN_PREFIX], digest=digest(plaintext),
                     permissions=" ".join(codes), territories=territories, created_by=created_by,
                     created_at=clock.now())
    session.add(token)
    session.flush()
    return token, plaintext


def authenticate(plaintext: str | None) -> ApiToken | None:
    """The active token with this plaintext, or None (unknown, malformed or revoked)."""
    if not plaintext or len(plaintext) > MAX_TOKEN_LENGTH or not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = session.execute(select(ApiToken).where(ApiToken.digest == digest(plaintext))).scalar_one_or_none()
    if token is None or not token.is_active:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        token.last_used_at = now
    return token


def get_token(*, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def _existing_token(token_id: int) -> ApiToken:
    token = get_token(token_id=token_id)
    if token is None:
        raise BusinessError(_l("Jeton inconnu : %(id)s.", id=token_id))
    return token


def set_territories(*, token_id: int, territory_codes) -> ApiToken:
    """Replace the territories of an active token (at least one). The audit trail records the
    territories before and after, and who changed them."""
    token = _existing_token(token_id)
    if not token.is_active:
        raise BusinessError(_l("Ce jeton est révoqué : ses territoires ne peuvent plus être modifiés."))
    token.territories = _check_territories(territory_codes)
    session.flush()
    return token


def revoke(*, token_id: int) -> ApiToken:
    """Revoke a token: every later call with it is refused. The audit trail records who did it."""
    token = _existing_token(token_id)
    if not token.is_active:
        raise BusinessError(_l("Ce jeton est déjà révoqué."))
    token.revoked_at = clock.now()
    session.flush()
    return token


def list_tokens() -> list[ApiToken]:
    """Every token, active ones first, newest first."""
    stmt = select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    return list(session.execute(stmt).scalars())


def permission_labels(token: ApiToken) -> list[str]:
    return [str(API_PERMISSIONS.get(code, code)) for code in token.permission_codes]


def agent_within_token(agent: Agent, token: ApiToken) -> bool:
    """Whether token may act for agent: the agent's territories and the token's overlap."""
    return subtrees_overlap(agent.territories, token.territories)

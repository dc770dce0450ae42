"""Business rules for agents, roles and territories. Functions flush; the caller commits."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import session
from app.errors import BusinessError
from app.security import passwords, permissions
from app.security.models import Agent, Role, RolePermission, Territory
from app.security.sessions import end_agent_sessions

LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
LANGUAGES = ("fr", "en")


def get_agent(*, agent_id: int) -> Agent | None:
    """The agent with this id, or None."""
    return session.get(Agent, agent_id)


def get_agent_by_login(*, login: str) -> Agent | None:
    """The agent with this login (case-insensitive), or None."""
    return session.execute(select(Agent).where(Agent.login == login.strip().lower())).scalar_one_or_none()


def list_agents(*, search: str | None = None) -> list[Agent]:
    """Agents ordered by login, optionally filtered by a fragment of login or name."""
    stmt = select(Agent).order_by(Agent.login)
    if search:
        pattern = f"%{search.strip().lower()}%"
        stmt = stmt.where(func.lower(Agent.login).like(pattern) | func.lower(Agent.full_name).like(pattern))
    return list(session.execute(stmt).scalars())


def list_roles() -> list[Role]:
    return list(session.execute(select(Role).order_by(Role.code)).scalars())


def get_territory_by_code(*, code: str) -> Territory | None:
    """The territory with this code, or None."""
    return session.execute(select(Territory).where(Territory.code == code)).scalar_one_or_none()


def list_territories() -> list[Territory]:
    """Every territory, in tree order."""
    return list(session.execute(select(Territory).order_by(Territory.path)).scalars())


def _insert_unique(obj, message, *, field: str) -> None:
    """Insert obj; a concurrent insert of the same key becomes a clear refusal, not a 500."""
    try:
        with session.begin_nested():
            session.add(obj)
    except IntegrityError as exc:
        raise BusinessError(message, field=field) from exc


def _by_codes(model, codes: list[str], *, message: str, field: str) -> list:
    """The rows of model with these codes; a BusinessError names the codes that do not exist."""
    codes = sorted({c.strip() for c in codes if c.strip()})
    found = list(session.execute(select(model).where(model.code.in_(codes))).scalars()) if codes else []
    missing = sorted(set(codes) - {row.code for row in found})
    if missing:
        raise BusinessError(_l("%(what)s : %(codes)s", what=message, codes=", ".join(missing)), field=field)
    return found


def _roles_by_code(codes: list[str]) -> list[Role]:
    return _by_codes(Role, codes, message=_l("Rôle inconnu"), field="roles")


def _territories_by_code(codes: list[str]) -> list[Territory]:
    return _by_codes(Territory, codes, message=_l("Territoire inconnu"), field="territories")


def _check_identity(*, full_name: str, email: str | None, language: str) -> None:
    if not full_name.strip():
        raise BusinessError(_l("Le nom complet est obligatoire."), field="full_name")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise BusinessError(_l("Adresse e-mail invalide."), field="email")
    if language not in LANGUAGES:
        raise BusinessError(_l("Langue inconnue."), field="language")


def create_agent(
    *,
    login: str,
    full_name: str,
    password: str,
    email: str | None = None,
    language: str = "fr",
    role_codes: list[str] = (),
    territory_codes: list[str] = (),
) -> Agent:
    """Create an active agent with the given roles and territories."""
    login = login.strip().lower()
    if not LOGIN_RE.match(login):
        raise BusinessError(
            _l("Identifiant invalide : 2 à 64 caractères, lettres minuscules, chiffres, « . », « _ » ou « - »."),
            field="login",
        )
    if get_agent_by_login(login=login) is not None:
        raise BusinessError(_l("Cet identifiant est déjà utilisé."), field="login")
    _check_identity(full_name=full_name, email=email, language=language)
    problem = passwords.check_strength(password, login=login)
    if problem:
        raise BusinessError(problem, field="password")
    agent = Agent(
        login=login,
        full_name=full_name.strip(),
        email=(email or "").strip() or None,
        language=language,
        password_hash=passwords.hash_password(password),
        active=True,
        failed_logins=0,
        roles=_roles_by_code(list(role_codes)),
        territories=_territories_by_code(list(territory_codes)),
    )
    _insert_unique(agent, _l("Cet identifiant est déjà utilisé."), field="login")
    return agent


def update_agent(
    *,
    agent: Agent,
    expected_version: int | None = None,
    full_name: str,
    email: str | None,
    language: str,
    role_codes: list[str],
    territory_codes: list[str],
) -> Agent:
    """Change an agent's identity, language, roles and territories.

    expected_version is the version the editor saw; a different one means someone else saved
    in between, and the change is refused rather than silently overwriting theirs.
    """
    if expected_version is not None and expected_version != agent.version:
        raise BusinessError(_l("Cet agent a été modifié entre-temps par quelqu'un d'autre. "
                               "Rechargez la page pour voir ses nouvelles valeurs."))
    _check_identity(full_name=full_name, email=email, language=language)
    roles = _roles_by_code(role_codes)
    territories = _territories_by_code(territory_codes)
    agent.full_name = full_name.strip()
    agent.email = (email or "").strip() or None
    agent.language = language
    agent.roles = roles
    agent.territories = territories
    session.flush()
    return agent


def set_language(*, agent: Agent, language: str) -> None:
    """An agent's own choice of interface language."""
    if language not in LANGUAGES:
        raise BusinessError(_l("Langue inconnue."), field="language")
    agent.language = language
    session.flush()


def reset_password(*, agent: Agent, password: str) -> None:
    """Set a new password, unlock the account and end its open sessions."""
    problem = passwords.check_strength(password, login=agent.login)
    if problem:
        raise BusinessError(problem, field="password")
    agent.password_hash = passwords.hash_password(password)
    agent.failed_logins = 0
    agent.locked_until = None
    end_agent_sessions(agent=agent, reason="password_reset")
    session.flush()


def deactivate_agent(*, agent: Agent, actor: Agent | None) -> None:
    """Deactivate an agent and end its sessions at once; an agent cannot deactivate itself."""
    if actor is not None and actor.id == agent.id:
        raise BusinessError(_l("Vous ne pouvez pas désactiver votre propre compte."))
    agent.active = False
    end_agent_sessions(agent=agent, reason="deactivated")
    session.flush()


def reactivate_agent(*, agent: Agent) -> None:
    agent.active = True
    agent.failed_logins = 0
    agent.locked_until = None
    session.flush()


def ensure_role(*, code: str, label: str, permission_codes: list[str]) -> Role:
    """Create the role or align its label and permissions with the given ones."""
    try:
        wanted = permissions.validate(permission_codes)
    except ValueError as exc:
        raise BusinessError(str(exc).capitalize() + ".", field="permissions") from exc
    role = session.execute(select(Role).where(Role.code == code)).scalar_one_or_none()
    if role is None:
        role = Role(code=code, label=label)
        session.add(role)
    role.label = label
    current = {p.permission: p for p in role.permissions}
    role.permissions = [current.get(c) or RolePermission(permission=c) for c in wanted]
    session.flush()
    return role


def create_territory(
    *, code: str, name: str, kind: str, parent: Territory | None = None, insee_code: str | None = None
) -> Territory:
    """Add a territory under parent (None for a region)."""
    if not CODE_RE.match(code):
        raise BusinessError(_l("Code de territoire invalide."), field="code")
    if kind not in Territory.KINDS:
        raise BusinessError(_l("Type de territoire inconnu."), field="kind")
    if insee_code is not None and not re.fullmatch(r"[0-9][0-9AB][0-9]{3}", insee_code):
        raise BusinessError(_l("Code INSEE invalide."), field="insee_code")
    if session.execute(select(Territory.id).where(Territory.code == code)).first():
        raise BusinessError(_l("Ce code de territoire existe déjà."), field="code")
    path = f"{parent.path if parent else '/'}{code}/"
    # parent_id, not parent: the new row must not reach the session through parent.children
    # before the savepoint of _insert_unique.
    territory = Territory(code=code, name=name, kind=kind, parent_id=parent.id if parent else None,
                          insee_code=insee_code, path=path)
    _insert_unique(territory, _l("Ce code de territoire existe déjà."), field="code")
    return territory

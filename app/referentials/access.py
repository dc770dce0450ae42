"""Territories and roles as referentials: the tree of territories (region → agency → commune) and
the roles with their permissions, created, renamed, deactivated when in use, deleted when not.

Territories are a referential (``admin.referentials``); editing roles grants rights, so the roles
pages need ``admin.agents`` (whoever assigns roles to agents), not ``admin.referentials``, which
process designers hold. The administrator role keeps the
permissions that administer agents and roles: nobody locks the installation out. Every write goes
through the audited models; functions flush, the caller commits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.db import Base, session
from app.errors import BusinessError
from app.security import permissions, service
from app.security.models import Role, RolePermission, Territory, agent_role

ROLE_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")
TERRITORY_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
INSEE = re.compile(r"[0-9][0-9AB][0-9]{3}")
CHILD_KIND = {None: "region", "region": "agency", "agency": "commune"}
ADMIN_ROLE = "admin"
ADMIN_KEEPS = ("admin.agents", "admin.referentials")


# --- Territories --------------------------------------------------------------------------------

def _references_to(table_name: str) -> list:
    """Every column of the schema that refers to this table's id (found from the metadata, so a
    table added later is counted too)."""
    return [fk.parent for table in Base.metadata.tables.values() for fk in table.foreign_keys
            if fk.column.table.name == table_name and fk.column.name == "id"]


def territory_uses(territory_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """For each territory: the rows referring to it, by table (children, agents, service points…)."""
    uses: dict[int, dict[str, int]] = {}
    for column in _references_to("territory"):
        stmt = select(column, func.count()).where(column.is_not(None)).group_by(column)
        if territory_ids is not None:
            stmt = stmt.where(column.in_(territory_ids))
        for territory_id, count in session.execute(stmt):
            uses.setdefault(territory_id, {})[column.table.name] = count
    return uses


def get_territory(territory_id: int) -> Territory | None:
    return session.get(Territory, territory_id)


def create_territory(*, parent_id: int | None, code: str, name: str, insee_code: str | None) -> Territory:
    parent = session.get(Territory, parent_id) if parent_id else None
    if parent_id and parent is None:
        raise BusinessError(_("Territoire parent inconnu."), field="parent")
    kind = CHILD_KIND.get(parent.kind if parent else None)
    if kind is None:
        raise BusinessError(_("Une commune n'a pas de territoire sous elle."), field="parent")
    code = (code or "").strip().upper()
    if not TERRITORY_CODE.fullmatch(code):
        raise BusinessError(_("Code : des majuscules, chiffres et tirets (32 caractères au plus)."), field="code")
    name = (name or "").strip()
    if not name:
        raise BusinessError(_("Donnez un nom au territoire."), field="name")
    insee_code = (insee_code or "").strip().upper() or None
    if kind == "commune" and (insee_code is None or not INSEE.fullmatch(insee_code)):
        raise BusinessError(_("Une commune a un code INSEE de 5 caractères (ex. 69123, 2A004)."), field="insee_code")
    if kind != "commune":
        insee_code = None
    if insee_code and session.execute(select(Territory.id).where(Territory.insee_code == insee_code)).first():
        raise BusinessError(_("Ce code INSEE est déjà celui d'une autre commune."), field="insee_code")
    return service.create_territory(code=code, name=name[:200], kind=kind, parent=parent, insee_code=insee_code)


def update_territory(territory: Territory, *, name: str, insee_code: str | None) -> None:
    name = (name or "").strip()
    if not name:
        raise BusinessError(_("Donnez un nom au territoire."), field="name")
    if territory.kind == "commune":
        insee_code = (insee_code or "").strip().upper()
        if not INSEE.fullmatch(insee_code):
            raise BusinessError(_("Une commune a un code INSEE de 5 caractères (ex. 69123, 2A004)."),
                                field="insee_code")
        taken = session.execute(select(Territory.id).where(Territory.insee_code == insee_code,
                                                           Territory.id != territory.id)).first()
        if taken:
            raise BusinessError(_("Ce code INSEE est déjà celui d'une autre commune."), field="insee_code")
        territory.insee_code = insee_code
    territory.name = name[:200]
    session.flush()


def delete_territory(territory: Territory) -> None:
    """Delete a territory nothing refers to; one in use is deactivated instead (set_active)."""
    if territory_uses([territory.id]).get(territory.id):
        raise BusinessError(_("Ce territoire est utilisé : désactivez-le plutôt."))
    session.delete(territory)
    session.flush()


def set_territory_active(territory: Territory, active: bool) -> None:
    territory.active = active
    session.flush()


# --- Roles -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleRow:
    role: Role
    agents: int


def roles() -> list[RoleRow]:
    counts = dict(session.execute(select(agent_role.c.role_id, func.count()).group_by(agent_role.c.role_id)).all())
    return [RoleRow(role, counts.get(role.id, 0)) for role in service.list_roles()]


def role_agents(role: Role) -> int:
    return session.execute(select(func.count()).select_from(agent_role).where(
        agent_role.c.role_id == role.id)).scalar_one()


def _permissions(codes: list[str]) -> list[str]:
    try:
        return permissions.validate(codes)
    except ValueError as exc:
        raise BusinessError(str(exc).capitalize() + ".", field="permissions") from None


def _set_permissions(role: Role, codes: list[str]) -> None:
    wanted = _permissions(codes)
    if role.code == ADMIN_ROLE and not set(ADMIN_KEEPS) <= set(wanted):
        raise BusinessError(_("Le rôle administrateur garde « %(codes)s » : sans elles, plus personne ne pourrait "
                              "administrer les agents et les rôles.", codes=", ".join(ADMIN_KEEPS)),
                            field="permissions")
    current = {p.permission: p for p in role.permissions}
    role.permissions = [current.get(c) or RolePermission(permission=c) for c in wanted]


def create_role(*, code: str, label: str, permission_codes: list[str]) -> Role:
    code = (code or "").strip()
    if not ROLE_CODE.fullmatch(code):
        raise BusinessError(_("Code : des minuscules, chiffres et « _ », commençant par une lettre."), field="code")
    label = (label or "").strip()
    if not label:
        raise BusinessError(_("Donnez un libellé au rôle."), field="label")
    if session.execute(select(Role.id).where(Role.code == code)).first():
        raise BusinessError(_("Ce code de rôle existe déjà."), field="code")
    role = Role(code=code, label=label[:200])
    _set_permissions(role, permission_codes)
    session.add(role)
    session.flush()
    return role


def update_role(role: Role, *, label: str, permission_codes: list[str]) -> None:
    label = (label or "").strip()
    if not label:
        raise BusinessError(_("Donnez un libellé au rôle."), field="label")
    role.label = label[:200]
    _set_permissions(role, permission_codes)
    session.flush()


def delete_role(role: Role) -> None:
    if role.code == ADMIN_ROLE:
        raise BusinessError(_("Le rôle administrateur ne se supprime ni ne se désactive."))
    if role_agents(role):
        raise BusinessError(_("Des agents ont ce rôle : désactivez-le plutôt."))
    session.delete(role)
    session.flush()


def set_role_active(role: Role, active: bool) -> None:
    if role.code == ADMIN_ROLE and not active:
        raise BusinessError(_("Le rôle administrateur ne se supprime ni ne se désactive."))
    role.active = active
    session.flush()

"""factory_boy factories; their rows live in the test's outer transaction, rolled back at its end."""
from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import select

from app.db import session
from app.security import passwords
from app.security.models import Agent, Role, RolePermission, Territory
from app.security.roles import STANDARD_ROLES
from tests.conftest import TEST_PASSWORD

# argon2 is deliberately slow: hash the shared test password once.
_TEST_PASSWORD_HASH = passwords.hash_password(TEST_PASSWORD)

ROLE_PERMISSIONS = {code: permissions for code, _label, permissions in STANDARD_ROLES}


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session = session
        sqlalchemy_session_persistence = "commit"  # releases a savepoint of the test transaction


class TerritoryFactory(Base):
    class Meta:
        model = Territory

    code = factory.Sequence(lambda n: f"T{n:04d}")
    name = factory.Faker("city", locale="fr_FR")
    kind = "agency"
    parent = None
    path = factory.LazyAttribute(lambda t: f"{t.parent.path if t.parent else '/'}{t.code}/")


def role_with(code: str, permissions: list[str] | None = None) -> Role:
    """The role with this code, created with the given (or the usual) permissions if missing."""
    role = session.execute(select(Role).where(Role.code == code)).scalar_one_or_none()
    if role is None:
        codes = permissions if permissions is not None else ROLE_PERMISSIONS.get(code, [])
        role = Role(code=code, label=code.replace("_", " ").title(),
                    permissions=[RolePermission(permission=p) for p in codes])
        session.add(role)
        session.commit()
    return role


class AgentFactory(Base):
    class Meta:
        model = Agent

    login = factory.Sequence(lambda n: f"agent{n:04d}")
    full_name = factory.Faker("name", locale="fr_FR")
    email = factory.LazyAttribute(lambda a: f"{a.login}@guichet.test")
    password_hash = _TEST_PASSWORD_HASH
    active = True
    language = "fr"
    failed_logins = 0

    roles = factory.LazyFunction(list)
    territories = factory.LazyFunction(list)

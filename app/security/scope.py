"""The one place where an agent's scope is applied to queries.

Functional scope: the agent's roles must grant the permission the read needs.
Geographic scope: the object must lie under one of the agent's territories.

A model joins the scheme by defining ``scope_clause(cls, territory_ids)`` returning a SQL
condition, given a subquery of the territory ids the agent may see; the ``TerritoryScoped``
mixin does it for models with a ``territory_id`` column. Every read of customer-related data
goes through ``scoped_select`` or ``get_scoped``; an object out of scope is indistinguishable
from a missing one.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from flask import abort
from sqlalchemy import ForeignKey, Select, exists, false, or_, select
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from app.db import session
from app.security.models import Agent, Territory

T = TypeVar("T")


class TerritoryScoped:
    """Mixin for models placed in one territory."""

    @declared_attr
    def territory_id(cls) -> Mapped[int]:
        # The column object (not the "territory.id" string) also resolves from other metadata.
        return mapped_column(ForeignKey(Territory.__table__.c.id), index=True)

    @classmethod
    def scope_clause(cls, territory_ids: Select) -> ColumnElement[bool]:
        return cls.territory_id.in_(territory_ids)


def territory_ids_under(territories: Iterable[Territory]) -> Select:
    """Subquery of the ids of these territories and everything under them (none: no id)."""
    paths = [t.path for t in territories]
    if not paths:
        return select(Territory.id).where(false())
    return select(Territory.id).where(or_(*(Territory.path.startswith(p, autoescape=True) for p in paths)))


def visible_territory_ids(agent: Agent) -> Select:
    """Subquery of the ids of the territories granted to agent and everything under them."""
    return territory_ids_under(agent.territories)


def territory_in_scope(agent: Agent, territory_id: int) -> ColumnElement[bool]:
    """Whether this territory lies under one of the agent's (an EXISTS, to select or combine)."""
    return exists(select(Territory.id).where(Territory.id == territory_id,
                                             Territory.id.in_(visible_territory_ids(agent))))


def subtrees_overlap(some: Iterable[Territory], others: Iterable[Territory]) -> bool:
    """Whether the territories under some and those under others have at least one in common.

    Two subtrees of one tree meet only when one's root lies under the other's (or is it), so
    comparing the materialised paths answers without a query; an empty side meets nothing.
    """
    other_paths = [t.path for t in others]
    return any(p.startswith(o) or o.startswith(p) for p in (t.path for t in some) for o in other_paths)


def scope_condition(model: type, *, agent: Agent, permission: str) -> ColumnElement[bool]:
    """The SQL condition restricting model's rows to what agent may read under permission."""
    if agent is None or not agent.is_active or not agent.can(permission):
        return false()
    return model.scope_clause(visible_territory_ids(agent))


def scoped_select(model: type[T], *, agent: Agent, permission: str) -> Select:
    """``select(model)`` limited to the agent's functional and geographic scope."""
    return select(model).where(scope_condition(model, agent=agent, permission=permission))


def get_scoped_or_404(model: type[T], object_id, *, agent: Agent, permission: str) -> T:
    """The object if agent may read it; otherwise 404, exactly as for a missing object."""
    obj = get_scoped(model, object_id, agent=agent, permission=permission)
    if obj is None:
        abort(404)
    return obj


def get_scoped(model: type[T], object_id, *, agent: Agent, permission: str) -> T | None:
    """The object with this id if agent may read it, else None (same as a missing one)."""
    pk = model.__mapper__.primary_key[0]
    stmt = scoped_select(model, agent=agent, permission=permission).where(pk == object_id)
    return session.execute(stmt).scalar_one_or_none()

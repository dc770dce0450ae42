"""Agents, roles and territories: who may do what (functional scope) and where (geographic scope)."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.db import Base, UTCDateTime

agent_role = Table(
    "agent_role",
    Base.metadata,
    Column("agent_id", ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="RESTRICT"), primary_key=True, index=True),
)

agent_territory = Table(
    "agent_territory",
    Base.metadata,
    Column("agent_id", ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territory.id", ondelete="RESTRICT"), primary_key=True, index=True),
)


class Territory(Base):
    """A node of the territory tree: region → agency → commune (INSEE code on communes)."""

    __tablename__ = "territory"
    __audited__ = True

    KINDS = ("region", "agency", "commune")

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    insee_code: Mapped[str | None] = mapped_column(String(5), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"), index=True)
    # Materialised path of codes ("/REG-84/AG-LYON/69123/"): "under" is a prefix match.
    path: Mapped[str] = mapped_column(String(400), unique=True)
    # A deactivated territory is no longer offered to new agents; its data and scopes are unchanged.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    # On PostgreSQL a LIKE 'prefix%' uses a B-tree index only with the pattern operator class.
    __table_args__ = (Index("ix_territory_path_pattern", "path", postgresql_ops={"path": "text_pattern_ops"}),)

    parent: Mapped[Territory | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Territory]] = relationship(back_populates="parent", order_by="Territory.name")

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.code  # names repeat (communes), codes do not

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2


class Role(Base):
    """A named set of permissions from the catalogue."""

    __tablename__ = "role"
    __audited__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    # A deactivated role grants nothing and is no longer offered; it stays on its agents' records.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    permissions: Mapped[list[RolePermission]] = relationship(
        cascade="all, delete-orphan", order_by="RolePermission.permission", lazy="selectin"
    )

    def __str__(self) -> str:
        return self.code

    @property
    def permission_codes(self) -> set[str]:
        return {p.permission for p in self.permissions}


class RolePermission(Base):
    __tablename__ = "role_permission"

    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)

    def __str__(self) -> str:
        return self.permission


class Agent(UserMixin, Base):
    """An application user. Never deleted: deactivated, so that history keeps its author."""

    __tablename__ = "agent"
    __audited__ = True
    __audit_masked__ = frozenset({"password_hash"})
    __audit_ignored__ = frozenset({"failed_logins", "last_login_at", "created_at", "updated_at", "version"})

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(5), default="fr")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    # Optimistic locking: two administrators editing one agent cannot overwrite each other.
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    roles: Mapped[list[Role]] = relationship(secondary=agent_role, order_by="Role.code", lazy="selectin")
    territories: Mapped[list[Territory]] = relationship(
        secondary=agent_territory, order_by="Territory.path", lazy="selectin"
    )

    def __str__(self) -> str:
        return self.login

    @property
    def is_active(self) -> bool:  # Flask-Login reads this
        return self.active

    @property
    def permissions(self) -> frozenset[str]:
        cached = self.__dict__.get("_permissions")
        if cached is None:
            cached = frozenset(code for role in self.roles if role.active for code in role.permission_codes)
            self.__dict__["_permissions"] = cached
        return cached

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def role_codes(self) -> frozenset[str]:
        """The codes of the agent's roles: a process task in a lane goes to the role it names."""
        return frozenset(role.code for role in self.roles if role.active)

    def is_locked(self, at: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > at


class AgentSession(Base):
    """A server-side login session: ends on logout, timeout or deactivation of its agent."""

    __tablename__ = "agent_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    agent: Mapped[Agent] = relationship()

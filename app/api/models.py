"""API tokens: how another system (telephony, the billing system…) calls Guichet.

A token belongs to one system, is shown once at creation and stored only as its SHA-256 digest
(a random 256-bit secret needs no slow hash: there is nothing to brute-force), and can be
revoked. It grants the listed permissions only, and only over its own territories: a call made
on behalf of an agent (the agent whose telephone rang) sees what lies both in that agent's scope
and under the token's territories. A token bound to no territory (those created before tokens
had territories) answers for nobody until an administrator gives it some.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.db import Base, UTCDateTime
from app.security.models import Agent, Territory

api_token_territory = Table(
    "api_token_territory",
    Base.metadata,
    Column("token_id", ForeignKey("api_token.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territory.id", ondelete="RESTRICT"), primary_key=True, index=True),
)


class ApiToken(Base):
    __tablename__ = "api_token"
    __audited__ = True
    __audit_ignored__ = frozenset({"last_used_at", "digest"})

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(100))  # "Téléphonie Lyon (Xivo)"
    prefix: Mapped[str] = mapped_column(String(12))  # the first characters, to recognise a token in a list
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole token
    permissions: Mapped[str] = mapped_column(String(200))  # codes of tokens.API_PERMISSIONS: "identify"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[Agent | None] = relationship()
    # The token answers only under these territories (and everything below them); none: nothing.
    territories: Mapped[list[Territory]] = relationship(
        secondary=api_token_territory, order_by="Territory.path", lazy="selectin"
    )

    def __str__(self) -> str:
        return f"{self.system} ({self.prefix}…)"

    @property
    def audit_label(self) -> str:
        return str(self)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def permission_codes(self) -> list[str]:
        return self.permissions.split()


class ApiIdempotencyKey(Base):
    """The answer given to a creation that carried an ``Idempotency-Key`` header, per token: the
    same key again returns the same answer instead of creating twice; the same key with another
    body is refused (422)."""

    __tablename__ = "api_idempotency_key"
    __table_args__ = (UniqueConstraint("token_id", "key", name="uq_api_idempotency_key_token_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_token.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

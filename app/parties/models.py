"""Parties (interlocuteurs): customers, prospects, former customers and third parties."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, and_, exists, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app import clock
from app.db import Base, UTCDateTime
from app.parties.phones import display_phone


class PartyKind:
    PERSON = "person"
    ORGANISATION = "organisation"
    ALL = (PERSON, ORGANISATION)


class PartyStatus:
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    FORMER_CUSTOMER = "former_customer"
    ALL = (PROSPECT, CUSTOMER, FORMER_CUSTOMER)


class Address:
    """Columns of a French postal address, shared by parties and service points."""

    street: Mapped[str | None] = mapped_column(String(200))
    address_extra: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    city: Mapped[str | None] = mapped_column(String(100))
    insee_code: Mapped[str | None] = mapped_column(String(5), index=True)

    @property
    def address_lines(self) -> list[str]:
        lines = [self.street, self.address_extra, " ".join(p for p in (self.postal_code, self.city) if p)]
        return [line for line in lines if line]


class Party(Address, Base):
    __tablename__ = "party"
    __audited__ = True
    __audit_ignored__ = frozenset({"created_at", "updated_at", "version"})

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # customer number shown to people
    external_ref: Mapped[str | None] = mapped_column(String(40), unique=True)  # billing system id
    kind: Mapped[str] = mapped_column(String(16), default=PartyKind.PERSON)
    civility: Mapped[str | None] = mapped_column(String(10))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=PartyStatus.PROSPECT, index=True)
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bank details for direct debit: sensitive, shown only with party.sensitive (app.parties.sensitive).
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # Set when the retention job (or a data-protection request) erased its identity; kept for statistics.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Derived from the address's commune; None when the commune is outside every territory.
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    phones: Mapped[list[PartyPhone]] = relationship(
        cascade="all, delete-orphan", order_by="PartyPhone.position", lazy="selectin"
    )
    emails: Mapped[list[PartyEmail]] = relationship(
        cascade="all, delete-orphan", order_by="PartyEmail.position", lazy="selectin"
    )

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.kind == PartyKind.ORGANISATION:
            return self.company_name or ""
        return " ".join(p for p in (self.civility, self.first_name, self.last_name) if p)

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        """In scope through its own territory or one of its contracts' service points."""
        from app.contracts.models import Contract, ContractParty, ServicePoint

        through_contract = exists(
            select(ContractParty.party_id)
            .join(Contract, Contract.id == ContractParty.contract_id)
            .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
            .where(and_(ContractParty.party_id == cls.id, ServicePoint.territory_id.in_(territory_ids)))
        )
        return or_(cls.territory_id.in_(territory_ids), through_contract)


class PartyPhone(Base):
    __tablename__ = "party_phone"

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("party.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    label: Mapped[str | None] = mapped_column(String(20))  # mobile, home, work
    position: Mapped[int] = mapped_column(Integer, default=0)

    def __str__(self) -> str:
        return self.number

    @property
    def audit_label(self) -> str:
        """How the party's audit entries list it: its label changing is a change too."""
        return f"{self.number} ({self.label})" if self.label else self.number

    @property
    def display(self) -> str:
        return display_phone(self.number)


class PartyEmail(Base):
    __tablename__ = "party_email"

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("party.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    def __str__(self) -> str:
        return self.address


class PartyConsultation(Base):
    """An agent opened the party's 360° view: a customer's access request lists who saw their data."""

    __tablename__ = "party_consultation"
    __table_args__ = (Index("ix_party_consultation_party_at", "party_id", "consulted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("party.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"), index=True)
    consulted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


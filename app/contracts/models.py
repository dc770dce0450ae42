"""Business objects copied from the billing system: service points, meters, readings,
contracts and the parties on them, invoices and payments. The CRM shows and reasons on them;
the billing system owns them (see app/integration/billing_import.py)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, exists, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app.db import Base, Money
from app.parties.models import Address, Party
from app.security.scope import TerritoryScoped


class ServicePointKind:
    ELECTRICITY = "electricity"
    GAS = "gas"
    WATER = "water"
    ALL = (ELECTRICITY, GAS, WATER)


class ServicePoint(TerritoryScoped, Address, Base):
    """Point de desserte: the supplied premises. national_id is the PDL (electricity, 14 digits),
    the PCE (gas, 14 digits) or the water connection number."""

    __tablename__ = "service_point"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    national_id: Mapped[str | None] = mapped_column(String(30), unique=True)
    main_residence: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return self.national_id or self.external_ref


def _service_point_in(service_point_id, territory_ids) -> ColumnElement[bool]:
    return exists(
        select(ServicePoint.id).where(ServicePoint.id == service_point_id, ServicePoint.territory_id.in_(territory_ids))
    )


class Meter(Base):
    __tablename__ = "meter"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))

    # No relationship to the installations: they must be read through the scope helper.

    def __str__(self) -> str:
        return self.serial

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        """In scope when installed, now or before, on a service point in scope."""
        return exists(
            select(MeterInstallation.id)
            .join(ServicePoint, ServicePoint.id == MeterInstallation.service_point_id)
            .where(MeterInstallation.meter_id == cls.id, ServicePoint.territory_id.in_(territory_ids))
        )


class MeterInstallation(Base):
    """A meter's stay on a service point; removed_on is None while it is still there."""

    __tablename__ = "meter_installation"
    __table_args__ = (Index("ix_meter_installation_sp_period", "service_point_id", "installed_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id"), index=True)
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_point.id"))
    installed_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)

    meter: Mapped[Meter] = relationship()
    service_point: Mapped[ServicePoint] = relationship()

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        return _service_point_in(cls.service_point_id, territory_ids)


class ReadingKind:
    ACTUAL = "actual"
    ESTIMATED = "estimated"
    CUSTOMER = "customer"
    ALL = (ACTUAL, ESTIMATED, CUSTOMER)


class MeterReading(Base):
    __tablename__ = "meter_reading"
    __table_args__ = (Index("ix_meter_reading_meter_date", "meter_id", "read_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(40), unique=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id"))
    # Where the reading was taken: meters move, readings stay with their premises.
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_point.id"), index=True)
    read_on: Mapped[date] = mapped_column(Date)
    index_value: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))

    meter: Mapped[Meter] = relationship()

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        return _service_point_in(cls.service_point_id, territory_ids)


class ContractStatus:
    ACTIVE = "active"
    TERMINATED = "terminated"
    PENDING = "pending"
    ALL = (ACTIVE, TERMINATED, PENDING)


class ContractRole:
    HOLDER = "holder"
    CO_HOLDER = "co_holder"
    PAYER = "payer"
    OCCUPANT = "occupant"
    OWNER = "owner"
    ALL = (HOLDER, CO_HOLDER, PAYER, OCCUPANT, OWNER)


class Contract(Base):
    __tablename__ = "contract"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    external_ref: Mapped[str] = mapped_column(String(40), unique=True)
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_point.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    offer: Mapped[str | None] = mapped_column(String(100))

    service_point: Mapped[ServicePoint] = relationship()
    parties: Mapped[list[ContractParty]] = relationship(back_populates="contract", cascade="all, delete-orphan")

    def __str__(self) -> str:
        return self.number

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        return _service_point_in(cls.service_point_id, territory_ids)


class ContractParty(Base):
    """A party's role on a contract (holder, co-holder, payer, occupant, owner)."""

    __tablename__ = "contract_party"

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("party.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)

    contract: Mapped[Contract] = relationship(back_populates="parties")
    party: Mapped[Party] = relationship()


class InvoiceStatus:
    OPEN = "open"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    CANCELLED = "cancelled"
    ALL = (OPEN, PAID, PARTIALLY_PAID, CANCELLED)


class Invoice(Base):
    __tablename__ = "invoice"
    __table_args__ = (
        Index("ix_invoice_contract_issued", "contract_id", "issued_on"),
        # The invoices still owed, by due date: overdue searches and the dunning selection read only these.
        Index("ix_invoice_unpaid_due", "due_on", "contract_id",
              postgresql_where=text("status IN ('open', 'partially_paid')"),
              sqlite_where=text("status IN ('open', 'partially_paid')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    external_ref: Mapped[str] = mapped_column(String(40), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)  # date d'exigibilité
    amount: Mapped[Decimal] = mapped_column(Money)
    amount_paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(16), index=True)

    contract: Mapped[Contract] = relationship()

    def __str__(self) -> str:
        return self.number

    @property
    def balance(self) -> Decimal:
        return self.amount - self.amount_paid

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        return exists(
            select(Contract.id)
            .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
            .where(Contract.id == cls.contract_id, ServicePoint.territory_id.in_(territory_ids))
        )


class Payment(Base):
    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(40), unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    paid_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[str | None] = mapped_column(String(20))

    invoice: Mapped[Invoice] = relationship()

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        return exists(
            select(Invoice.id)
            .join(Contract, Contract.id == Invoice.contract_id)
            .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
            .where(Invoice.id == cls.invoice_id, ServicePoint.territory_id.in_(territory_ids))
        )

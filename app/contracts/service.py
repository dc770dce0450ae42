"""Reading contracts and business objects; every read goes through the agent's scope."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Select, and_, func, or_, select, type_coerce
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.elements import ColumnElement

from app.contracts.models import (
    Contract,
    ContractParty,
    ContractRole,
    Invoice,
    InvoiceStatus,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import Money, session
from app.security.models import Agent
from app.security.scope import get_scoped, scope_condition, scoped_select

READ = "party.read"
LIABLE_ROLES = (ContractRole.HOLDER, ContractRole.CO_HOLDER, ContractRole.PAYER)


def get_contract(*, agent: Agent, contract_id: int) -> Contract | None:
    """The contract if the agent may read it, else None."""
    return get_scoped(Contract, contract_id, agent=agent, permission=READ)


def list_contracts_of_party(*, agent: Agent, party_id: int) -> list[Contract]:
    """The party's contracts the agent may read, active first, newest first."""
    stmt = (
        scoped_select(Contract, agent=agent, permission=READ)
        .where(Contract.id.in_(select(ContractParty.contract_id).where(ContractParty.party_id == party_id)))
        .order_by(Contract.status != "active", Contract.start_date.desc(), Contract.id)
        # Every caller shows the service point: one joined query, not one more per contract.
        .options(joinedload(Contract.service_point))
    )
    return list(session.execute(stmt).scalars())


def get_service_point(*, agent: Agent, service_point_id: int) -> ServicePoint | None:
    return get_scoped(ServicePoint, service_point_id, agent=agent, permission=READ)


def get_meter(*, agent: Agent, meter_id: int) -> Meter | None:
    return get_scoped(Meter, meter_id, agent=agent, permission=READ)


def current_meter(*, agent: Agent, service_point_id: int) -> Meter | None:
    """The meter installed now on the service point, if the agent may read the service point."""
    # Scoped through the installation (its service point), not the meter: a meter seen through
    # its history must not open the door to the premises it is on now.
    stmt = (
        scoped_select(MeterInstallation, agent=agent, permission=READ)
        .where(MeterInstallation.service_point_id == service_point_id, MeterInstallation.removed_on.is_(None))
        .order_by(MeterInstallation.installed_on.desc())
        .limit(1)
        .options(joinedload(MeterInstallation.meter))
    )
    installation = session.execute(stmt).scalar_one_or_none()
    return installation.meter if installation else None


def list_readings(*, agent: Agent, service_point_id: int, limit: int = 24) -> list[MeterReading]:
    """The latest readings taken at the service point, newest first."""
    stmt = (
        scoped_select(MeterReading, agent=agent, permission=READ)
        .where(MeterReading.service_point_id == service_point_id)
        .order_by(MeterReading.read_on.desc())
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def get_reading(*, agent: Agent, reading_id: int) -> MeterReading | None:
    return get_scoped(MeterReading, reading_id, agent=agent, permission=READ)


def list_invoices(*, agent: Agent, contract_id: int, limit: int = 48, offset: int = 0) -> list[Invoice]:
    """The contract's invoices, newest first."""
    stmt = (
        scoped_select(Invoice, agent=agent, permission=READ)
        .where(Invoice.contract_id == contract_id)
        .order_by(Invoice.issued_on.desc(), Invoice.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(stmt).scalars())


def get_invoice(*, agent: Agent, invoice_id: int) -> Invoice | None:
    return get_scoped(Invoice, invoice_id, agent=agent, permission=READ)


def list_payments(*, agent: Agent, invoice_id: int) -> list[Payment]:
    stmt = (
        scoped_select(Payment, agent=agent, permission=READ)
        .where(Payment.invoice_id == invoice_id)
        .order_by(Payment.paid_on)
    )
    return list(session.execute(stmt).scalars())


# --- Reads of the customer view (app/parties/overview.py): each one statement, whatever the volume.

UNPAID_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)


def unpaid_condition() -> ColumnElement[bool]:
    """An invoice still owed — the one definition the customer view, the search and dunning share:
    the billing system says it is open or partly paid, and a balance remains. Past its due date
    (``due_on < today``, in the agency's time zone) it is overdue. Indexed by ix_invoice_unpaid_due."""
    return and_(Invoice.status.in_(UNPAID_STATUSES), Invoice.amount > Invoice.amount_paid)


@dataclass(frozen=True)
class Overdue:
    """What is owed past its due date: the sum of the balances and the oldest due date."""

    amount: Decimal
    since: date | None
    invoices: int


def _overdue(agent: Agent, where: ColumnElement[bool], today: date) -> Overdue:
    stmt = select(
        type_coerce(func.sum(Invoice.amount - Invoice.amount_paid), Money()),
        func.min(Invoice.due_on),
        func.count(),
    ).where(scope_condition(Invoice, agent=agent, permission=READ), where, unpaid_condition(), Invoice.due_on < today)
    amount, since, count = session.execute(stmt).one()
    return Overdue(amount=amount if amount is not None else Decimal("0.00"), since=since, invoices=count)


def overdue_of_party(*, agent: Agent, party_id: int, today: date) -> Overdue:
    """Overdue over the party's contracts the agent may read on which the party owes the bills
    (holder, co-holder, payer): a landlord (owner) or an occupant is not told the payer's debt."""
    contract_ids = select(ContractParty.contract_id).where(ContractParty.party_id == party_id,
                                                           ContractParty.role.in_(LIABLE_ROLES))
    return _overdue(agent, Invoice.contract_id.in_(contract_ids), today)


def overdue_of_contract(*, agent: Agent, contract_id: int, today: date) -> Overdue:
    return _overdue(agent, Invoice.contract_id == contract_id, today)


def next_due_invoice(*, agent: Agent, contract_id: int, today: date) -> Invoice | None:
    """The unpaid invoice falling due next (today or later)."""
    stmt = (
        scoped_select(Invoice, agent=agent, permission=READ)
        .where(Invoice.contract_id == contract_id, unpaid_condition(), Invoice.due_on >= today)
        .order_by(Invoice.due_on, Invoice.id)
        .limit(1)
    )
    return session.execute(stmt).scalar_one_or_none()


def list_contract_payments(*, agent: Agent, contract_id: int, limit: int = 10) -> list[Payment]:
    """The latest payments on the contract's invoices, newest first, with their invoice."""
    stmt = (
        scoped_select(Payment, agent=agent, permission=READ)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.contract_id == contract_id)
        .order_by(Payment.paid_on.desc(), Payment.id.desc())
        .limit(limit)
        .options(joinedload(Payment.invoice))
    )
    return list(session.execute(stmt).scalars())


def during_contract(contract: Contract, read_on) -> ColumnElement[bool]:
    """A reading date within the contract's period: the premises' earlier readings belong to the
    previous occupant, not to this customer."""
    after_start = read_on >= contract.start_date
    return and_(after_start, read_on <= contract.end_date) if contract.end_date else after_start


def list_contract_readings(*, agent: Agent, contract: Contract, limit: int = 13) -> list[MeterReading]:
    """The latest readings at the contract's service point during the contract, newest first,
    with their meter."""
    stmt = (
        scoped_select(MeterReading, agent=agent, permission=READ)
        .where(MeterReading.service_point_id == contract.service_point_id,
               during_contract(contract, MeterReading.read_on))
        .order_by(MeterReading.read_on.desc(), MeterReading.id.desc())
        .limit(limit)
        .options(joinedload(MeterReading.meter))
    )
    return list(session.execute(stmt).scalars())


def readings_of_party(stmt: Select, party_id: int) -> Select:
    """stmt (a select of readings) narrowed to those taken at one of the party's contracts' service
    points while that contract ran. A join from the party's contracts, not an EXISTS per reading:
    with an EXISTS the planner walked the readings by date (20 million at a million customers)."""
    return stmt.join(Contract, and_(
        Contract.id.in_(select(ContractParty.contract_id).where(ContractParty.party_id == party_id)),
        Contract.service_point_id == MeterReading.service_point_id,
        MeterReading.read_on >= Contract.start_date,
        or_(Contract.end_date.is_(None), MeterReading.read_on <= Contract.end_date)))

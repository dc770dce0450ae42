"""Reading contracts and business objects; every read goes through the agent's scope."""
from __future__ import annotations

from sqlalchemy import select

from app.contracts.models import (
    Contract,
    ContractParty,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import session
from app.security.models import Agent
from app.security.scope import get_scoped, scoped_select

READ = "party.read"


def get_contract(*, agent: Agent, contract_id: int) -> Contract | None:
    """The contract if the agent may read it, else None."""
    return get_scoped(Contract, contract_id, agent=agent, permission=READ)


def list_contracts_of_party(*, agent: Agent, party_id: int) -> list[Contract]:
    """The party's contracts the agent may read, active first, newest first."""
    stmt = (
        scoped_select(Contract, agent=agent, permission=READ)
        .where(Contract.id.in_(select(ContractParty.contract_id).where(ContractParty.party_id == party_id)))
        .order_by(Contract.status != "active", Contract.start_date.desc())
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


def list_invoices(*, agent: Agent, contract_id: int, limit: int = 48) -> list[Invoice]:
    """The contract's invoices, newest first."""
    stmt = (
        scoped_select(Invoice, agent=agent, permission=READ)
        .where(Invoice.contract_id == contract_id)
        .order_by(Invoice.issued_on.desc())
        .limit(limit)
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

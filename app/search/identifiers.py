"""Exact identifier matches for the quick search: customer number, billing reference, contract,
PDL/PCE or water number, meter serial, invoice number, phone (any format) and email.

Each identifier is looked up on the unique index it already has. A match on a contract, its
premises, meter or invoice designates the contract's holders with that contract selected.
The agent's scope is applied to what was found, and what lies outside it is only counted, so
that an agent can be told a customer exists without being shown who it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Integer, Select, case, cast, literal, null, select, union_all

from app.contracts.models import Contract, ContractParty, ContractRole, Invoice, Meter, MeterInstallation, ServicePoint
from app.db import session
from app.errors import BusinessError
from app.parties.models import Party, PartyEmail, PartyPhone
from app.parties.phones import normalise_phone
from app.security.models import Agent
from app.security.scope import scoped_select

MAX_RAW_MATCHES = 200
HOLDING_ROLES = (ContractRole.HOLDER, ContractRole.CO_HOLDER)
NO_CONTRACT = cast(null(), Integer)  # typed, or PostgreSQL cannot unite it with contract ids


@dataclass(frozen=True)
class IdentifierMatch:
    party_id: int
    contract_id: int | None
    field: str  # which identifier matched: customer_number, contract_number, phone…


def _holders_of(contract_ids: Select, field: str) -> Select:
    return select(ContractParty.party_id, ContractParty.contract_id, literal(field),
                  case((ContractParty.role == ContractRole.HOLDER, 0), else_=1)).where(
        ContractParty.contract_id.in_(contract_ids), ContractParty.role.in_(HOLDING_ROLES))


def _direct(party_id, field: str) -> Select:
    return select(party_id, NO_CONTRACT, literal(field), literal(0))


def _candidates(query: str) -> list[Select]:
    text = query.strip()
    variants = sorted({text, text.upper()})
    digits = re.sub(r"\D", "", text)
    selects = []
    if "@" in text:
        selects.append(_direct(PartyEmail.party_id, "email")
                       .where(PartyEmail.address == text.lower()))
    if len(digits) >= 6 and re.fullmatch(r"[\d\s.+()-]+", text):
        try:
            phone = normalise_phone(text)
        except BusinessError:
            phone = None
        if phone:
            selects.append(_direct(PartyPhone.party_id, "phone").where(PartyPhone.number == phone))
    national_ids = sorted(set(variants) | ({digits} if len(digits) == 14 else set()))
    selects += [
        _direct(Party.id, "customer_number").where(Party.number.in_(variants)),
        _direct(Party.id, "external_ref").where(Party.external_ref.in_(variants)),
        _holders_of(select(Contract.id).where(Contract.number.in_(variants)), "contract_number"),
        _holders_of(select(Contract.id).join(ServicePoint, ServicePoint.id == Contract.service_point_id)
                    .where(ServicePoint.national_id.in_(national_ids)), "national_id"),
        _holders_of(select(Contract.id)
                    .join(MeterInstallation, MeterInstallation.service_point_id == Contract.service_point_id)
                    .join(Meter, Meter.id == MeterInstallation.meter_id)
                    .where(Meter.serial.in_(variants), MeterInstallation.removed_on.is_(None)), "meter_serial"),
        _holders_of(select(Invoice.contract_id).where(Invoice.number.in_(variants)), "invoice_number"),
    ]
    return selects


def find_by_identifier(*, agent: Agent, query: str) -> tuple[list[IdentifierMatch], int]:
    """The exact identifier matches the agent may see, and how many others exist out of scope."""
    if len((query or "").strip()) < 3:
        return [], 0
    rows = session.execute(union_all(*_candidates(query)).limit(MAX_RAW_MATCHES)).all()
    rows.sort(key=lambda r: (r[3], r[0]))  # holders before co-holders, then the oldest party first
    matches = list(dict.fromkeys(IdentifierMatch(*row[:3]) for row in rows))  # unique, in order
    party_ids = {m.party_id for m in matches if m.contract_id is None}
    contract_ids = {m.contract_id for m in matches if m.contract_id is not None}
    visible_parties = set(session.execute(
        scoped_select(Party, agent=agent, permission="party.read").with_only_columns(Party.id)
        .where(Party.id.in_(party_ids))).scalars()) if party_ids else set()
    visible_contracts = set(session.execute(
        scoped_select(Contract, agent=agent, permission="party.read").with_only_columns(Contract.id)
        .where(Contract.id.in_(contract_ids))).scalars()) if contract_ids else set()
    visible = [m for m in matches
               if (m.contract_id in visible_contracts if m.contract_id is not None else m.party_id in visible_parties)]
    hidden_parties = {m.party_id for m in matches} - {m.party_id for m in visible}
    return visible, len(hidden_parties)

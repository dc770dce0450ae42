"""The 360° customer view: what an agent needs on screen during a call about one party.

Everything is read through the agent's scope (app/contracts/service.py), in a fixed number of
statements whatever the number of contracts, invoices, payments or readings: lists are capped or
paginated, related rows are loaded with their parents (tests/integration/test_party_view.py
counts the statements).

The **current contract** is the contract the agent is looking at for a party. It is remembered in
the Flask session per party (``remember_current_contract`` / ``current_contract_id``) so that
later features — a new contact, a dossier opened from the view — take it as their default
business object. A remembered id is only a preference: whoever uses it must read the contract
through the scope again.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context, session
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEntry
from app.audit.service import entries_for
from app.contracts import service as contracts
from app.contracts.models import Contract, ContractParty, ContractStatus, Invoice, Meter, MeterReading, Payment
from app.db import session as db_session
from app.parties import sensitive, timeline
from app.parties.duplicates import suspected_duplicates
from app.parties.models import Party
from app.security.models import Agent

CURRENT_CONTRACT_KEY = "current_contract"
REMEMBERED_PARTIES = 30  # the session cookie stays small; beyond, another party's choice is forgotten
INVOICES_PER_PAGE = 12
READINGS_SHOWN = 12
PAYMENTS_SHOWN = 10
UNITS = {"electricity": "kWh", "gas": "m³", "water": "m³"}


# --- The current contract --------------------------------------------------------------------

def remember_current_contract(party_id: int, contract_id: int) -> None:
    """Remember contract_id as the agent's current contract for the party (Flask session)."""
    remembered = dict(session.get(CURRENT_CONTRACT_KEY) or {})
    remembered.pop(str(party_id), None)
    while len(remembered) >= REMEMBERED_PARTIES:
        remembered.pop(next(iter(remembered)))
    remembered[str(party_id)] = contract_id
    session[CURRENT_CONTRACT_KEY] = remembered


def current_contract_id(party_id: int) -> int | None:
    """The id of the contract last chosen for the party in this session, if any. Not a permission:
    read the contract through the scope before using it."""
    value = (session.get(CURRENT_CONTRACT_KEY) or {}).get(str(party_id))
    return value if isinstance(value, int) else None


def choose_current_contract(party_id: int, contracts_in_scope: Sequence[Contract],
                            requested: int | None) -> Contract | None:
    """The requested contract if it is one of the party's in scope, else the remembered one, else
    the first active one (else the first); remembered for the next pages."""
    by_id = {c.id: c for c in contracts_in_scope}
    remembered = current_contract_id(party_id)
    chosen = by_id.get(requested) or by_id.get(remembered)
    if chosen is None and contracts_in_scope:
        chosen = next((c for c in contracts_in_scope if c.status == ContractStatus.ACTIVE), contracts_in_scope[0])
    if chosen is not None and chosen.id != remembered:
        remember_current_contract(party_id, chosen.id)
    return chosen


def open_dossiers(*, agent: Agent, party_id: int) -> list:
    """The party's dossiers not closed, for the header alert and the "informer le client" panel."""
    from app.dossiers.reads import open_dossiers_of_party  # the dossiers package reads the view's helpers

    return open_dossiers_of_party(agent=agent, party_id=party_id)


# --- Consumption chart ------------------------------------------------------------------------

@dataclass(frozen=True)
class Consumption:
    """What was consumed between two successive readings of the same meter."""

    start: date
    end: date
    value: int
    meter_serial: str
    after_meter_change: bool  # the series starts again here (meter changed, index reset)


def consumptions(readings: Sequence[MeterReading]) -> list[Consumption]:
    """Consumption between successive readings, oldest first. A reading of another meter than the
    previous one (a meter change), or an index lower than the previous one (a reset or a
    correction), has no consumption: the series starts again from it."""
    ordered = sorted(readings, key=lambda r: (r.read_on, r.id))
    result: list[Consumption] = []
    restart = False
    for previous, reading in zip(ordered, ordered[1:], strict=False):
        if reading.meter_id != previous.meter_id or reading.index_value < previous.index_value:
            restart = True
            continue
        result.append(Consumption(start=previous.read_on, end=reading.read_on,
                                  value=reading.index_value - previous.index_value,
                                  meter_serial=reading.meter.serial, after_meter_change=restart))
        restart = False
    return result


@dataclass(frozen=True)
class Bar:
    consumption: Consumption
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return round(self.x + self.width / 2, 1)


@dataclass(frozen=True)
class Chart:
    """Geometry of the server-rendered SVG bar chart (viewBox units)."""

    bars: list[Bar]
    unit: str
    peak: int
    meter_changes: list[float]  # x of the separators drawn where a series starts again
    width: int = 600
    height: int = 170
    top: int = 18  # room for the values above the bars
    bottom: int = 22  # room for the dates under them

    @property
    def baseline(self) -> int:
        return self.height - self.bottom


def chart(series: Sequence[Consumption], unit: str) -> Chart | None:
    """Bars proportional to the consumptions, the highest filling the plot; None without data."""
    if not series:
        return None
    empty = Chart(bars=[], unit=unit, peak=0, meter_changes=[])
    side = 8
    slot = (empty.width - 2 * side) / len(series)
    plot = empty.baseline - empty.top
    peak = max(c.value for c in series)
    bars, changes = [], []
    width = min(slot * 0.7, 48)  # a few readings make a few narrow bars, not wide blocks
    for i, item in enumerate(series):
        height = round(item.value / peak * plot, 1) if peak else 0.0
        bars.append(Bar(consumption=item, x=round(side + i * slot + (slot - width) / 2, 1),
                        y=round(empty.baseline - height, 1), width=round(width, 1), height=height))
        if item.after_meter_change:
            changes.append(round(side + i * slot, 1))
    return Chart(bars=bars, unit=unit, peak=peak, meter_changes=changes)


# --- The view ---------------------------------------------------------------------------------

DEFAULT_TIMEZONE = "Europe/Paris"  # as app.config's GUICHET_TIMEZONE default


def local_today() -> date:
    """Today in the agency's time zone: a due date passes at local midnight, not UTC's (outside the
    application, in the default zone)."""
    zone = current_app.config["BABEL_DEFAULT_TIMEZONE"] if has_app_context() else DEFAULT_TIMEZONE
    return clock.now().astimezone(ZoneInfo(zone)).date()


@dataclass
class ContractDetails:
    contract: Contract
    roles: list[str]
    meter: Meter | None
    readings: list[MeterReading]  # newest first, at most READINGS_SHOWN
    chart: Chart | None
    invoices: list[Invoice]  # the page, newest first
    invoices_page: int
    invoices_has_next: bool
    last_invoice: Invoice | None
    next_due: Invoice | None
    overdue: contracts.Overdue
    payments: list[Payment]

    @property
    def last_reading(self) -> MeterReading | None:
        return self.readings[0] if self.readings else None


@dataclass
class Alerts:
    overdue: contracts.Overdue
    open_dossiers: list
    vulnerable: bool
    main_residence: bool | None  # of the current contract's service point
    duplicates: list[Party] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.overdue.invoices or self.open_dossiers or self.vulnerable or self.main_residence
                    or self.duplicates)


@dataclass
class Overview:
    party: Party
    today: date
    contracts: list[Contract]
    roles: dict[int, list[str]]  # contract id → the party's roles on it
    current: Contract | None
    details: ContractDetails | None
    alerts: Alerts
    last_change: AuditEntry | None
    history: timeline.Page


def party_roles(party_id: int, contract_ids: Sequence[int]) -> dict[int, list[str]]:
    """The party's roles on each of these contracts (already read through the scope)."""
    roles: dict[int, list[str]] = {cid: [] for cid in contract_ids}
    if contract_ids:
        stmt = (select(ContractParty.contract_id, ContractParty.role)
                .where(ContractParty.party_id == party_id, ContractParty.contract_id.in_(contract_ids))
                .order_by(ContractParty.role))
        for contract_id, role in db_session.execute(stmt):
            roles[contract_id].append(role)
    return roles


def contract_details(*, agent: Agent, contract: Contract, roles: list[str], today: date,
                     invoices_page: int = 1) -> ContractDetails:
    invoices_page = max(invoices_page, 1)
    readings = contracts.list_contract_readings(agent=agent, contract=contract, limit=READINGS_SHOWN + 1)
    invoices = contracts.list_invoices(agent=agent, contract_id=contract.id, limit=INVOICES_PER_PAGE + 1,
                                       offset=(invoices_page - 1) * INVOICES_PER_PAGE)
    if invoices_page == 1:
        last_invoice = invoices[0] if invoices else None
    else:
        last_invoice = next(iter(contracts.list_invoices(agent=agent, contract_id=contract.id, limit=1)), None)
    return ContractDetails(
        contract=contract,
        roles=roles,
        meter=contracts.current_meter(agent=agent, service_point_id=contract.service_point_id),
        readings=readings[:READINGS_SHOWN],
        # One reading more than the table shows, so that the oldest row shown has its bar too.
        chart=chart(consumptions(readings), UNITS.get(contract.service_point.kind, "")),
        invoices=invoices[:INVOICES_PER_PAGE],
        invoices_page=invoices_page,
        invoices_has_next=len(invoices) > INVOICES_PER_PAGE,
        last_invoice=last_invoice,
        next_due=contracts.next_due_invoice(agent=agent, contract_id=contract.id, today=today),
        overdue=contracts.overdue_of_contract(agent=agent, contract_id=contract.id, today=today),
        payments=contracts.list_contract_payments(agent=agent, contract_id=contract.id, limit=PAYMENTS_SHOWN),
    )


def build(*, agent: Agent, party: Party, requested_contract: int | None = None, invoices_page: int = 1,
          history_page: int = 1, history_kind: str | None = None, history_channel: str | None = None) -> Overview:
    """Everything the view shows about party, which the caller has read through the scope."""
    today = local_today()
    in_scope = contracts.list_contracts_of_party(agent=agent, party_id=party.id)
    roles = party_roles(party.id, [c.id for c in in_scope])
    current = choose_current_contract(party.id, in_scope, requested_contract)
    details = (contract_details(agent=agent, contract=current, roles=roles[current.id], today=today,
                                invoices_page=invoices_page) if current else None)
    alerts = Alerts(
        overdue=contracts.overdue_of_party(agent=agent, party_id=party.id, today=today),
        open_dossiers=open_dossiers(agent=agent, party_id=party.id),
        # Sensitive (app.parties.sensitive): an agent without party.sensitive is not told.
        vulnerable=bool(sensitive.value_for(party, "vulnerable", agent)),
        main_residence=current.service_point.main_residence if current else None,
        duplicates=suspected_duplicates(agent=agent, party=party),
    )
    # The record's own changes, not the notes about it ("créé malgré des doublons").
    changes = entries_for(object_type="party", object_id=str(party.id), limit=1, actions=("create", "update"))
    return Overview(
        party=party, today=today, contracts=in_scope, roles=roles, current=current, details=details,
        alerts=alerts, last_change=changes[0] if changes else None,
        history=timeline.history(agent=agent, party_id=party.id, page=history_page, kind=history_kind,
                                 channel=history_channel),
    )

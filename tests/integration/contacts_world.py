"""The data the contact and dossier tests share: a Lyon customer with a water contract (holder,
co-holder, payer, owner), its meter, readings and invoices; a Saint-Étienne customer; a social
services office named by templates; agents of Lyon, of Saint-Étienne and of the region.

"Today" is 16 March 2026 (frozen): invoices F-1 and F-2 are overdue (84,20 € and 30,00 € still
owed), F-0 was due long ago but is paid, F-C is overdue but cancelled, F-3 is the latest and
not due yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count

from app.contacts.models import ContactType, TemplateItem
from app.contracts.models import (
    Contract,
    ContractParty,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    ServicePoint,
)
from app.db import session
from app.dossiers.models import DossierType
from app.parties.models import Party
from app.security.models import Agent
from tests.factories import AgentFactory, role_with

NOW = datetime(2026, 3, 16, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 16)
_refs = count(1)


@dataclass
class World:
    places: dict
    helene: Party  # customer, contract holder (Lyon)
    marc: Party  # co-holder of Hélène's contract
    paul: Party  # payer of Hélène's contract
    sci: Party  # owner of the premises (organisation)
    ccas: Party  # social services office in Saint-Étienne: outside the Lyon agents' scope
    bernard: Party  # a Saint-Étienne customer
    contract: Contract  # Hélène's water contract in Lyon
    meter: Meter  # installed now on its service point
    old_reading: MeterReading
    last_reading: MeterReading
    invoices: dict[str, Invoice]
    bernard_contract: Contract
    agent: Agent  # accueil, Lyon agency: the logged-in agent of most tests
    colleague: Agent  # back office, Lyon agency
    loire_agent: Agent  # accueil, Loire agency
    bo_lyon: Agent  # back office, Lyon agency
    bo_region: Agent  # back office, the region (covers Lyon and Loire)
    bo_loire: Agent  # back office, Loire agency
    bo_villeurbanne: Agent  # back office, the commune of Villeurbanne only (does not cover Lyon)
    bo_inactive: Agent  # back office, Lyon agency, deactivated


def party(number: str, first: str, last: str, territory, *, kind: str = "person", **fields) -> Party:
    fields.setdefault("status", "customer")
    if kind == "organisation":
        p = Party(number=number, kind=kind, company_name=last, territory_id=territory.id if territory else None,
                  **fields)
    else:
        p = Party(number=number, kind=kind, civility="M.", first_name=first, last_name=last,
                  territory_id=territory.id if territory else None, **fields)
    session.add(p)
    return p


def contract_in(territory, number: str, roles: list[tuple[Party, str]], *, kind: str = "water",
                status: str = "active", main_residence: bool = True) -> Contract:
    ref = next(_refs)
    point = ServicePoint(external_ref=f"CW-SP-{ref}", kind=kind, national_id=f"CW-NAT-{ref:08d}",
                         street=f"{ref} rue du Compteur", postal_code="69002", city=territory.name,
                         insee_code=territory.insee_code, territory_id=territory.id, main_residence=main_residence)
    contract = Contract(number=number, external_ref=f"CW-CT-{ref}", service_point=point, status=status,
                        start_date=date(2020, 1, 1), offer="Eau",
                        parties=[ContractParty(party=p, role=role) for p, role in roles])
    session.add(contract)
    return contract


def invoice(contract: Contract, number: str, *, issued: date, due: date, amount: str, paid: str = "0",
            status: str | None = None) -> Invoice:
    amount_, paid_ = Decimal(amount), Decimal(paid)
    if status is None:
        status = "paid" if paid_ == amount_ else "partially_paid" if paid_ else "open"
    found = Invoice(number=number, external_ref=f"CW-IN-{next(_refs)}", contract=contract, issued_on=issued,
                    due_on=due, amount=amount_, amount_paid=paid_, status=status)
    session.add(found)
    return found


def build_world(places, helene: Party) -> World:
    lyon, saint_etienne = places["lyon"], places["saint_etienne"]
    marc = party("CW0000002", "Marc", "Lefèvre", lyon)
    paul = party("CW0000003", "Paul", "Martin", lyon)
    sci = party("CW0000004", "", "SCI Les Tilleuls", lyon, kind="organisation")
    ccas = party("CW0000005", "", "CCAS de Saint-Étienne", saint_etienne, kind="organisation", status="prospect")
    bernard = party("CW0000006", "Bernard", "Stéphanois", saint_etienne)
    contract = contract_in(lyon, "CW-EAU-1", [(helene, "holder"), (marc, "co_holder"), (paul, "payer"),
                                               (sci, "owner")])
    bernard_contract = contract_in(saint_etienne, "CW-EAU-2", [(bernard, "holder")])
    old_meter = Meter(serial="CW-M-OLD", kind="water")
    meter = Meter(serial="CW-M-NEW", kind="water")
    session.add_all([
        old_meter, meter,
        MeterInstallation(meter=old_meter, service_point=contract.service_point, installed_on=date(2015, 1, 1),
                          removed_on=date(2024, 6, 1)),
        MeterInstallation(meter=meter, service_point=contract.service_point, installed_on=date(2024, 6, 1)),
    ])
    session.flush()
    old_reading = MeterReading(external_ref="CW-RD-1", meter_id=old_meter.id,
                               service_point_id=contract.service_point.id, read_on=date(2024, 3, 1),
                               index_value=120, kind="actual")
    last_reading = MeterReading(external_ref="CW-RD-2", meter_id=meter.id, service_point_id=contract.service_point.id,
                                read_on=date(2026, 2, 20), index_value=340, kind="customer")
    session.add_all([old_reading, last_reading])
    invoices = {
        "F-0": invoice(contract, "CW-F-0", issued=date(2025, 6, 1), due=date(2025, 7, 1), amount="60.00",
                       paid="60.00"),
        "F-1": invoice(contract, "CW-F-1", issued=date(2025, 12, 1), due=date(2026, 1, 5), amount="84.20"),
        "F-C": invoice(contract, "CW-F-C", issued=date(2025, 12, 15), due=date(2026, 1, 10), amount="40.00",
                       status="cancelled"),
        "F-2": invoice(contract, "CW-F-2", issued=date(2026, 2, 1), due=date(2026, 3, 1), amount="50.00",
                       paid="20.00"),
        "F-3": invoice(contract, "CW-F-3", issued=date(2026, 3, 10), due=date(2026, 4, 10), amount="48.00"),
    }
    session.commit()

    accueil, back_office = role_with("accueil"), role_with("back_office")
    lyon_agency, loire_agency = places["lyon_agency"], places["loire_agency"]
    return World(
        places=places, helene=helene, marc=marc, paul=paul, sci=sci, ccas=ccas, bernard=bernard, contract=contract,
        meter=meter, old_reading=old_reading, last_reading=last_reading, invoices=invoices,
        bernard_contract=bernard_contract,
        agent=AgentFactory(full_name="Alice Accueil", roles=[accueil], territories=[lyon_agency]),
        colleague=AgentFactory(full_name="Claire Collègue", roles=[back_office], territories=[lyon_agency]),
        loire_agent=AgentFactory(full_name="Louis Loire", roles=[accueil], territories=[loire_agency]),
        bo_lyon=AgentFactory(full_name="Bastien Lyon", roles=[back_office], territories=[lyon_agency]),
        bo_region=AgentFactory(full_name="Béatrice Région", roles=[back_office], territories=[places["region"]]),
        bo_loire=AgentFactory(full_name="Bruno Loire", roles=[back_office], territories=[loire_agency]),
        bo_villeurbanne=AgentFactory(full_name="Benoît Villeurbanne", roles=[back_office],
                                     territories=[places["villeurbanne"]]),
        bo_inactive=AgentFactory(full_name="Bernadette Partie", roles=[back_office], territories=[lyon_agency],
                                 active=False),
    )


_codes = count(1)


def item(kind: str, source: str, *, link_role: str | None = None, rule: list | None = None, position: int = 0,
         **fields) -> TemplateItem:
    return TemplateItem(kind=kind, source=source, link_role=link_role, rule=rule, position=position, **fields)


def contact_type(*items: TemplateItem, channel: str | None = "phone", direction: str = "in", active: bool = True,
                 dossier_type: DossierType | None = None, label: str = "Question sur une facture") -> ContactType:
    for position, template_item in enumerate(items):
        template_item.position = position
    found = ContactType(code=f"CW-CT-{next(_codes)}", label=label, default_channel=channel,
                        default_direction=direction, active=active, dossier_type=dossier_type, items=list(items))
    session.add(found)
    session.commit()
    return found


def dossier_type(*items: TemplateItem, target_days: int | None = 30, active: bool = True,
                 label: str = "Difficulté de paiement", code: str | None = None) -> DossierType:
    for position, template_item in enumerate(items):
        template_item.position = position
    found = DossierType(code=code or f"CW-DT-{next(_codes)}", label=label, target_days=target_days, active=active,
                        items=list(items))
    session.add(found)
    session.commit()
    return found

"""The synthetic customer generator: realistic, consistent, scoped, and repeatable without collisions."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text

from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
from app.db import session
from app.parties.models import Party, PartyPhone
from app.parties.phones import normalise_phone
from app.security.scope import scoped_select
from app.seed import demo
from app.seed.customers import generate_customers
from tests.factories import AgentFactory, role_with

TODAY = date(2026, 11, 15)


@pytest.fixture
def territories(app):
    with app.app_context():
        demo.seed_demo()
        session.commit()


def _scalar(sql: str) -> int:
    return session.execute(text(sql)).scalar_one()


def test_generated_data_is_consistent(territories):
    counts = generate_customers(count=400, seed=3, today=TODAY)
    session.commit()
    assert 400 <= counts["party"] <= 520
    assert counts["contract"] >= 400 and counts["invoice"] > 400 * 10
    # status follows the contracts
    assert _scalar("""SELECT count(*) FROM party p WHERE p.status <> CASE
        WHEN EXISTS (SELECT 1 FROM contract_party cp JOIN contract c ON c.id = cp.contract_id
                     WHERE cp.party_id = p.id AND c.status IN ('active', 'pending')) THEN 'customer'
        WHEN EXISTS (SELECT 1 FROM contract_party cp WHERE cp.party_id = p.id) THEN 'former_customer'
        ELSE 'prospect' END""") == 0
    # every contract has a holder and a service point in a territory
    assert _scalar("SELECT count(*) FROM contract c WHERE NOT EXISTS (SELECT 1 FROM contract_party cp "
                   "WHERE cp.contract_id = c.id AND cp.role = 'holder')") == 0
    assert session.execute(select(func.count()).where(ServicePoint.territory_id.is_(None))).scalar_one() == 0
    # invoices are coherent and some are overdue
    invoices = session.execute(select(Invoice)).scalars().all()
    assert all(i.due_on >= i.issued_on and i.amount_paid <= i.amount for i in invoices)
    overdue = [i for i in invoices if i.due_on < TODAY and i.status in ("open", "partially_paid")]
    assert 0 < len(overdue) < len(invoices) * 0.05
    # one current meter per service point
    assert _scalar("SELECT count(*) FROM service_point sp WHERE (SELECT count(*) FROM meter_installation mi "
                   "WHERE mi.service_point_id = sp.id AND mi.removed_on IS NULL) <> 1") == 0
    # phones are valid E.164 numbers
    numbers = session.execute(select(PartyPhone.number).limit(200)).scalars().all()
    assert numbers and all(normalise_phone(n) == n for n in numbers)


def test_a_second_run_adds_without_collisions_and_the_orm_can_insert_after(territories):
    generate_customers(count=150, seed=1, today=TODAY)
    session.commit()
    first = session.execute(select(func.count(Party.id))).scalar_one()
    generate_customers(count=150, seed=1, today=TODAY)
    session.commit()
    assert session.execute(select(func.count(Party.id))).scalar_one() > first
    for column in (Party.number, Contract.number, Invoice.number, ServicePoint.national_id):
        duplicates = session.execute(
            select(column).where(column.is_not(None)).group_by(column).having(func.count() > 1)).all()
        assert duplicates == []
    party = Party(number="CL-ORM-1", last_name="Après", kind="person", status="prospect")
    session.add(party)
    session.commit()  # the id sequence was moved past the generated ids
    assert party.id > first


def test_generated_customers_are_split_by_territory_scope(territories):
    """The scope query gives exactly the parties living in, or holding a contract in, the agency."""
    from app.security.models import Territory

    generate_customers(count=300, seed=5, today=TODAY)
    session.commit()
    communes = dict(session.execute(select(Territory.id, Territory.path)).all())
    places: dict[int, set[str]] = {}
    for party_id, territory_id in session.execute(select(Party.id, Party.territory_id)):
        places.setdefault(party_id, set()).add(communes.get(territory_id, ""))
    for party_id, territory_id in session.execute(
            select(ContractParty.party_id, ServicePoint.territory_id)
            .join(Contract, Contract.id == ContractParty.contract_id)
            .join(ServicePoint, ServicePoint.id == Contract.service_point_id)):
        places[party_id].add(communes[territory_id])
    for code in ("AG-LYON", "AG-NICE"):
        agency = session.execute(select(Territory).where(Territory.code == code)).scalar_one()
        agent = AgentFactory(roles=[role_with("accueil")], territories=[agency])
        seen = set(session.execute(scoped_select(Party, agent=agent, permission="party.read")
                                   .with_only_columns(Party.id)).scalars())
        expected = {pid for pid, paths in places.items() if any(p.startswith(agency.path) for p in paths)}
        assert seen == expected and 0 < len(seen) < len(places)


def test_seed_command_adds_customers_and_audits_one_summary(app):
    result = app.test_cli_runner().invoke(args=["seed", "--customers", "120"])
    assert result.exit_code == 0, result.output
    assert "Clients fictifs" in result.output
    assert session.execute(select(func.count(Party.id))).scalar_one() >= 120
    from app.audit.models import AuditEntry

    entry = session.execute(select(AuditEntry).where(AuditEntry.action == "seed_customers")).scalar_one()
    assert entry.changes["customers"] == 120

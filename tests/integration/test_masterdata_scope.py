"""An agent of agency A never receives a party, contract, service point, meter, reading, invoice or
payment of agency B, from any service function."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.contracts import service as contracts
from app.contracts.models import Contract, Invoice, Meter, MeterReading, Payment, ServicePoint
from app.db import session
from app.integration.billing_import import import_directory
from app.parties import service as parties
from app.parties.models import Party
from tests.factories import AgentFactory, role_with
from tests.integration.test_billing_import import EXAMPLE, communes  # noqa: F401  (fixture)


def _id(model, **where):
    return session.execute(select(model.id).filter_by(**where)).scalar_one()


@pytest.fixture
def data(communes):  # noqa: F811
    assert import_directory(EXAMPLE).ok
    session.commit()
    lyon = {
        "party": _id(Party, external_ref="BP-1001"), "contract": _id(Contract, external_ref="CT-3001"),
        "service_point": _id(ServicePoint, external_ref="SP-2001"), "meter": _id(Meter, serial="LKY-009876"),
        "reading": _id(MeterReading, external_ref="RD-2"), "invoice": _id(Invoice, external_ref="IN-4002"),
    }
    nice = {
        "party": _id(Party, external_ref="BP-1003"), "contract": _id(Contract, external_ref="CT-3003"),
        "service_point": _id(ServicePoint, external_ref="SP-2003"), "meter": _id(Meter, serial="GAZ-77001"),
        "reading": _id(MeterReading, external_ref="RD-5"), "invoice": _id(Invoice, external_ref="IN-4004"),
    }
    lyon_agent = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"]])
    return lyon_agent, lyon, nice


def _everything(agent, ids) -> dict:
    """What each service function gives the agent for these ids."""
    return {
        "get_party": parties.get_party(agent=agent, party_id=ids["party"]),
        "list_parties": [p.id for p in parties.list_parties(agent=agent) if p.id == ids["party"]],
        "get_contract": contracts.get_contract(agent=agent, contract_id=ids["contract"]),
        "list_contracts_of_party": contracts.list_contracts_of_party(agent=agent, party_id=ids["party"]),
        "get_service_point": contracts.get_service_point(agent=agent, service_point_id=ids["service_point"]),
        "get_meter": contracts.get_meter(agent=agent, meter_id=ids["meter"]),
        "current_meter": contracts.current_meter(agent=agent, service_point_id=ids["service_point"]),
        "list_readings": contracts.list_readings(agent=agent, service_point_id=ids["service_point"]),
        "get_reading": contracts.get_reading(agent=agent, reading_id=ids["reading"]),
        "list_invoices": contracts.list_invoices(agent=agent, contract_id=ids["contract"]),
        "get_invoice": contracts.get_invoice(agent=agent, invoice_id=ids["invoice"]),
        "list_payments": contracts.list_payments(agent=agent, invoice_id=ids["invoice"]),
    }


def test_agent_receives_everything_of_its_agency(data):
    agent, lyon, _nice = data
    results = _everything(agent, lyon)
    empty = [name for name, value in results.items() if not value]
    assert empty == []
    assert results["current_meter"].serial == "LKY-009876"
    assert [r.index_value for r in results["list_readings"]] == [4810, 2350, 45120]


def test_agent_receives_nothing_of_another_agency(data):
    agent, _lyon, nice = data
    results = _everything(agent, nice)
    leaked = {name: value for name, value in results.items() if value}
    assert leaked == {}
    assert session.execute(select(Payment)).scalars().all()  # the data exists, it is just out of scope


def test_a_party_living_elsewhere_is_seen_through_a_contract_in_scope(data, communes):  # noqa: F811
    agent, lyon, _nice = data
    helene = session.get(Party, lyon["party"])
    helene.territory_id = communes["nice"].id  # she moved to Nice but keeps her Lyon contract
    session.commit()
    assert parties.get_party(agent=agent, party_id=helene.id) is not None
    nice_agent = AgentFactory(roles=[role_with("accueil")], territories=[communes["nice_agency"]])
    assert parties.get_party(agent=nice_agent, party_id=helene.id) is not None
    assert contracts.get_contract(agent=nice_agent, contract_id=lyon["contract"]) is None


def test_without_party_read_nothing_is_received_even_in_the_agency(data, communes):  # noqa: F811
    _agent, lyon, _nice = data
    designer = AgentFactory(roles=[role_with("concepteur")], territories=[communes["lyon_agency"]])
    assert {name: v for name, v in _everything(designer, lyon).items() if v} == {}


def test_a_meter_seen_through_its_history_does_not_open_its_new_premises(data, communes):  # noqa: F811
    """The Lyon meter LKY-000123 moves to Nice: Lyon still sees the meter, not the Nice premises."""
    from datetime import date

    from app.contracts.models import MeterInstallation

    agent, lyon, nice = data
    old_meter = session.execute(select(Meter).where(Meter.serial == "LKY-000123")).scalar_one()
    nice_installation = session.execute(select(MeterInstallation).where(
        MeterInstallation.service_point_id == nice["service_point"])).scalar_one()
    nice_installation.removed_on = date(2024, 9, 1)
    session.add(MeterInstallation(meter_id=old_meter.id, service_point_id=nice["service_point"],
                                  installed_on=date(2024, 9, 1)))
    session.commit()
    assert contracts.get_meter(agent=agent, meter_id=old_meter.id) is not None
    assert contracts.current_meter(agent=agent, service_point_id=nice["service_point"]) is None
    nice_agent = AgentFactory(roles=[role_with("accueil")], territories=[communes["nice_agency"]])
    assert contracts.current_meter(agent=nice_agent, service_point_id=nice["service_point"]).serial == "LKY-000123"

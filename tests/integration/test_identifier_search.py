"""Exact identifier search: every kind of identifier finds its customer, within the scope."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.contracts.models import Contract
from app.db import session
from app.integration.billing_import import import_directory
from app.parties.models import Party
from app.search.identifiers import find_by_identifier
from tests.factories import AgentFactory, role_with
from tests.integration.test_billing_import import EXAMPLE, communes  # noqa: F401  (fixture)


@pytest.fixture
def agents(communes):  # noqa: F811
    assert import_directory(EXAMPLE).ok
    session.commit()
    lyon = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"]])
    nice = AgentFactory(roles=[role_with("accueil")], territories=[communes["nice_agency"]])
    return lyon, nice


def _found(agent, query):
    matches, hidden = find_by_identifier(agent=agent, query=query)
    refs = {m.party_id: ref for m in matches
            for ref in session.execute(select(Party.external_ref).where(Party.id == m.party_id)).scalars()}
    contracts = {m.contract_id and session.get(Contract, m.contract_id).number for m in matches}
    return [(refs[m.party_id], m.field) for m in matches], contracts - {None}, hidden


@pytest.mark.parametrize("query,expected,contract", [
    ("CL0001001", [("BP-1001", "customer_number")], None),
    ("cl0001001", [("BP-1001", "customer_number")], None),
    ("BP-1002", [("BP-1002", "external_ref")], None),
    ("EL-2019-000311", [("BP-1001", "contract_number"), ("BP-1004", "contract_number")], "EL-2019-000311"),
    ("09876543210123", [("BP-1001", "national_id"), ("BP-1004", "national_id")], "EL-2019-000311"),
    ("0987 6543 2101 23", [("BP-1001", "national_id"), ("BP-1004", "national_id")], "EL-2019-000311"),
    ("LKY-009876", [("BP-1001", "meter_serial"), ("BP-1004", "meter_serial")], "EL-2019-000311"),
    ("F2024-000221", [("BP-1002", "invoice_number")], "EA-2010-004512"),
    ("06 12 34 56 78", [("BP-1001", "phone")], None),
    ("+33 6 98 76 54 32", [("BP-1002", "phone")], None),
    ("0033698765432", [("BP-1002", "phone")], None),
    ("Helene.Lefevre@example.fr", [("BP-1001", "email")], None),
])
def test_each_identifier_finds_its_customer(agents, query, expected, contract):
    lyon, _nice = agents
    found, contracts, hidden = _found(lyon, query)
    assert sorted(found) == expected and hidden == 0
    assert contracts == ({contract} if contract else set())


def test_an_old_meter_no_longer_designates_the_premises(agents):
    lyon, _nice = agents
    assert _found(lyon, "LKY-000123")[0] == []


def test_out_of_scope_matches_are_counted_not_shown(agents):
    lyon, nice = agents
    assert _found(lyon, "CL0001003") == ([], set(), 1)  # a Nice customer
    assert _found(nice, "CL0001003")[0] == [("BP-1003", "customer_number")]
    assert _found(nice, "F2024-000102") == ([], set(), 2)  # a Lyon invoice: its holder and co-holder


@pytest.mark.parametrize("query", ["", " ", "a", "%", "_", "%%%", "' OR 1=1 --", "x" * 500, "06", "@"])
def test_odd_input_gives_an_empty_answer(agents, query):
    lyon, _nice = agents
    assert find_by_identifier(agent=lyon, query=query) == ([], 0)

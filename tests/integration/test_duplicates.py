"""Duplicate detection: same phone, same email, close name at the same address; never out of scope."""
from __future__ import annotations

import pytest

from app.db import session
from app.parties.duplicates import find_duplicates, suspected_duplicates
from app.parties.models import Party, PartyEmail, PartyPhone
from tests.factories import AgentFactory, TerritoryFactory, role_with


@pytest.fixture
def places():
    region = TerritoryFactory(kind="region", code="R-DUP")
    lyon_agency = TerritoryFactory(parent=region, code="A-DUP-LYON")
    nice_agency = TerritoryFactory(parent=region, code="A-DUP-NICE")
    return {
        "lyon": TerritoryFactory(parent=lyon_agency, kind="commune", code="D-69123", insee_code="69123", name="Lyon"),
        "nice": TerritoryFactory(parent=nice_agency, kind="commune", code="D-06088", insee_code="06088", name="Nice"),
        "lyon_agency": lyon_agency, "nice_agency": nice_agency,
    }


def _party(places, number, first, last, street, postal, city, territory, phones=(), emails=()):
    party = Party(number=number, kind="person", first_name=first, last_name=last, status="customer", street=street,
                  postal_code=postal, city=city, territory_id=places[territory].id,
                  phones=[PartyPhone(number=n, position=i) for i, n in enumerate(phones)],
                  emails=[PartyEmail(address=a, position=i) for i, a in enumerate(emails)])
    session.add(party)
    return party


@pytest.fixture
def people(places):
    parties = {
        "lefevre": _party(places, "CL7000001", "Hélène", "Lefèvre", "12 rue Victor-Hugo", "69003", "Lyon", "lyon",
                          phones=["+33612345678"], emails=["helene.lefevre@example.org"]),
        "dupont": _party(places, "CL7000002", "Jean-Pierre", "Dupont", "4 place Bellecour", "69002", "Lyon", "lyon"),
        "neighbour": _party(places, "CL7000003", "Marc", "Girard", "4 place Bellecour", "69002", "Lyon", "lyon"),
        "nice": _party(places, "CL7000004", "Paul", "Roux", "5 avenue Foch", "06000", "Nice", "nice",
                       phones=["+33699999999"], emails=["paul.roux@example.org"]),
    }
    session.commit()
    return parties


@pytest.fixture
def lyon_agent(places):
    return AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]])


def _found(candidates):
    return {c.party.number: c.reasons for c in candidates}


def test_the_same_phone_in_another_format_is_a_duplicate(people, lyon_agent):
    found = _found(find_duplicates(agent=lyon_agent, last_name="Martin", phones=["06 12 34 56 78"]))
    assert found == {"CL7000001": ["phone"]}


def test_the_same_email_in_other_case_is_a_duplicate(people, lyon_agent):
    found = _found(find_duplicates(agent=lyon_agent, last_name="X", emails=["  Helene.LEFEVRE@Example.org "]))
    assert found == {"CL7000001": ["email"]}


@pytest.mark.parametrize("first,last,street", [
    ("Helene", "Lefevre", "12 rue Victor Hugo"),  # accents and hyphen left out
    ("Hélène", "Lefebvre", "12, rue Victor-Hugo"),  # one letter more, a comma
])
def test_a_close_name_at_the_same_address_is_a_duplicate(people, lyon_agent, first, last, street):
    found = _found(find_duplicates(agent=lyon_agent, last_name=last, first_name=first, street=street,
                                   postal_code="69003"))
    assert found == {"CL7000001": ["name_address"]}


def test_reasons_add_up_and_the_strongest_candidate_comes_first(people, lyon_agent):
    candidates = find_duplicates(agent=lyon_agent, last_name="Dupond", first_name="Jean Pierre",
                                 street="4 place Bellecour", postal_code="69002", phones=["0612345678"])
    assert [c.party.number for c in candidates] == ["CL7000001", "CL7000002"]  # one reason each: by name
    found = _found(find_duplicates(agent=lyon_agent, last_name="Lefevre", first_name="Helene",
                                   street="12 rue Victor Hugo", postal_code="69003", phones=["0612345678"]))
    assert found == {"CL7000001": ["phone", "name_address"]}


def test_a_namesake_elsewhere_or_another_person_at_the_same_address_is_not(people, lyon_agent):
    # Jean-Pierre Dupont lives at 4 place Bellecour; his neighbour Marc Girard too.
    assert find_duplicates(agent=lyon_agent, last_name="Dupont", first_name="Jean-Pierre",
                           street="9 rue de la Charité", postal_code="69002") == []
    found = _found(find_duplicates(agent=lyon_agent, last_name="Dupond", first_name="Jean Pierre",
                                   street="4 place Bellecour", postal_code="69002"))
    assert found == {"CL7000002": ["name_address"]}  # not Marc Girard


def test_parties_out_of_scope_are_never_returned(people, lyon_agent, places):
    assert find_duplicates(agent=lyon_agent, last_name="Roux", phones=["+33699999999"],
                           emails=["paul.roux@example.org"], street="5 avenue Foch", postal_code="06000") == []
    nice_agent = AgentFactory(roles=[role_with("accueil")], territories=[places["nice_agency"]])
    assert _found(find_duplicates(agent=nice_agent, last_name="Roux", phones=["+33699999999"])) == {
        "CL7000004": ["phone"]}


def test_suspected_duplicates_of_a_party_exclude_itself(people, lyon_agent, places):
    assert suspected_duplicates(agent=lyon_agent, party=people["lefevre"]) == []
    twin = _party(places, "CL7000009", "Helene", "Lefevre", "12 rue Victor Hugo", "69003", "Lyon", "lyon")
    session.commit()
    assert [p.number for p in suspected_duplicates(agent=lyon_agent, party=people["lefevre"])] == ["CL7000009"]
    assert [p.number for p in suspected_duplicates(agent=lyon_agent, party=twin)] == ["CL7000001"]


def test_invalid_phones_and_emails_are_ignored_not_an_error(people, lyon_agent):
    assert find_duplicates(agent=lyon_agent, last_name="X", phones=["not a number", ""], emails=["nope"]) == []

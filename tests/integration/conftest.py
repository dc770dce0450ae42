"""Fixtures shared by the customer editing and prospect tests."""
from __future__ import annotations

import pytest

from app.db import session
from app.parties.models import Party, PartyEmail, PartyPhone
from tests.factories import TerritoryFactory


@pytest.fixture
def places(postal_codes):
    """A region with the Lyon agency (Lyon, Villeurbanne) and the Loire agency (Saint-Étienne)."""
    region = TerritoryFactory(kind="region", code="R-ARA")
    lyon_agency = TerritoryFactory(parent=region, code="A-LYON")
    loire_agency = TerritoryFactory(parent=region, code="A-LOIRE")
    communes = {
        "lyon": TerritoryFactory(parent=lyon_agency, kind="commune", code="C-69123", insee_code="69123", name="Lyon"),
        "villeurbanne": TerritoryFactory(parent=lyon_agency, kind="commune", code="C-69266", insee_code="69266",
                                         name="Villeurbanne"),
        "saint_etienne": TerritoryFactory(parent=loire_agency, kind="commune", code="C-42218", insee_code="42218",
                                          name="Saint-Étienne"),
    }
    return {"region": region, "lyon_agency": lyon_agency, "loire_agency": loire_agency, **communes}


@pytest.fixture
def customer(places):
    """Hélène Lefèvre, of Lyon, with a phone and an email (tests add contracts where they need them)."""
    party = Party(number="CL0700001", external_ref="BP-7001", first_name="Hélène", last_name="Lefèvre",
                  civility="Mme", status="customer", street="12 rue Victor-Hugo", postal_code="69002", city="Lyon",
                  insee_code="69123", territory_id=places["lyon"].id,
                  phones=[PartyPhone(number="+33612345678", label="mobile", position=0)],
                  emails=[PartyEmail(address="helene@example.fr", position=0)])
    session.add(party)
    session.commit()
    return party

"""The quick search, the results page, the party page and the "Nouveau contact" screen over HTTP:
what the agent sees, and never what lies outside their scope."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.contracts.models import Contract
from app.db import session
from app.integration.billing_import import import_directory
from app.parties.models import Party
from tests.integration.test_billing_import import EXAMPLE, communes  # noqa: F401  (fixture)


@pytest.fixture
def data(communes):  # noqa: F811
    assert import_directory(EXAMPLE).ok
    session.commit()
    ids = dict(session.execute(select(Party.number, Party.id)).all())
    contracts = dict(session.execute(select(Contract.number, Contract.id)).all())
    return {"parties": ids, "contracts": contracts, **communes}


@pytest.fixture
def lyon_agent(login_as, data):
    return login_as("accueil", territories=[data["lyon_agency"]])


def _links(html: str) -> list[str]:
    return re.findall(r'href="(/clients/[^"]+)"', html)


def test_quick_search_lists_results_that_open_the_party(client, lyon_agent, data):
    response = client.get("/recherche/rapide", query_string={"q": "lefevre helene"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'role="listbox"' in html and "Hélène Lefèvre" in html and "CL0001001" in html
    assert _links(html)[0] == f"/clients/{data['parties']['CL0001001']}"
    assert "Nom" in html and "12 rue Victor-Hugo" in html  # why it matched, and the address


def test_a_contract_match_opens_the_party_with_the_contract_selected(client, lyon_agent, data):
    html = client.get("/recherche/rapide", query_string={"q": "EL-2019-000311"}).get_data(as_text=True)
    contract_id = data["contracts"]["EL-2019-000311"]
    assert f"/clients/{data['parties']['CL0001001']}?contract={contract_id}" in _links(html)
    page = client.get(f"/clients/{data['parties']['CL0001001']}?contract={contract_id}").get_data(as_text=True)
    assert re.search(r'<li class="selected" aria-current="true">\s*<strong>EL-2019-000311', page)


def test_out_of_scope_results_are_counted_not_shown(client, lyon_agent, data):
    html = client.get("/recherche/rapide", query_string={"q": "boulangerie saint etienne"}).get_data(as_text=True)
    assert "1 résultat hors de votre périmètre" in html
    assert "Boulangerie" not in html.replace("boulangerie saint etienne", "") and "CL0001003" not in html
    assert _links(html) == []
    page = client.get("/recherche", query_string={"q": "CL0001003"}).get_data(as_text=True)
    assert "1 résultat hors de votre périmètre" in page and "Boulangerie" not in page


def test_the_party_page_of_an_out_of_scope_party_is_a_404(client, lyon_agent, data):
    assert client.get(f"/clients/{data['parties']['CL0001003']}").status_code == 404
    assert client.get("/clients/999999").status_code == 404
    page = client.get(f"/clients/{data['parties']['CL0001001']}")
    assert page.status_code == 200 and "Hélène Lefèvre" in page.get_data(as_text=True)


def test_the_results_page_keeps_the_query_in_the_url(client, lyon_agent):
    html = client.get("/recherche", query_string={"q": "dupont"}).get_data(as_text=True)
    assert 'value="dupont"' in html and "Jean-Baptiste Dupont-Moreau" in html


@pytest.mark.parametrize("query", ["", "a", "%", "_", "' OR 1=1 --", "x" * 500, "<script>alert(1)</script>",
                                   "\" OR \"", "{name}: x", "NEAR(a b)"])
def test_odd_input_never_breaks_the_search(client, lyon_agent, query):
    for path in ("/recherche/rapide", "/recherche", "/identifier"):
        response = client.get(path, query_string={"q": query})
        assert response.status_code == 200, (path, query)
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    html = client.get("/recherche/rapide", query_string={"q": "a"}).get_data(as_text=True)
    assert "Saisissez au moins 2 caractères." in html


def test_caller_identification_by_phone_in_any_format(client, lyon_agent, data):
    for phone in ("06 12 34 56 78", "+33612345678", "0033 6 12 34 56 78"):
        html = client.get("/identifier", query_string={"phone": phone, "channel": "phone"}).get_data(as_text=True)
        assert "Hélène Lefèvre" in html and f'value="{data["parties"]["CL0001001"]}"' in html, phone
    html = client.get("/identifier", query_string={"phone": "04 93 11 22 33"}).get_data(as_text=True)
    assert "Aucun client trouvé dans votre périmètre." in html
    assert "1 résultat hors de votre périmètre" in html and "Boulangerie" not in html  # a Nice customer


def test_caller_identification_refuses_what_is_not_a_number(client, lyon_agent):
    for phone in ("abc", "%", "12", "9" * 40):
        response = client.get("/identifier", query_string={"phone": phone})
        assert response.status_code == 200
        assert re.search("Numéro de téléphone (illisible|invalide)", response.get_data(as_text=True)), phone


def test_choosing_a_customer_opens_them_with_the_channel(client, lyon_agent, data):
    party_id = data["parties"]["CL0001001"]
    response = client.get("/identifier", query_string={"party": party_id, "channel": "front_desk"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/clients/{party_id}?channel=front_desk"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contact entrant : Accueil physique." in html
    unknown = client.get("/identifier", query_string={"party": party_id, "channel": "pigeon"})
    assert unknown.headers["Location"] == f"/clients/{party_id}?channel=phone"


def test_the_identify_screen_searches_by_name_too(client, lyon_agent):
    html = client.get("/identifier", query_string={"q": "garnier", "channel": "letter"}).get_data(as_text=True)
    assert "Noé Garnier" in html and 'value="letter" checked' in html


def test_search_needs_party_read(client, login_as, data):
    login_as("concepteur", territories=[data["lyon_agency"]])
    for path in ("/recherche/rapide?q=dupont", "/recherche?q=dupont", "/identifier?phone=0612345678",
                 f"/clients/{data['parties']['CL0001001']}"):
        assert client.get(path).status_code == 403, path


def test_the_top_bar_carries_the_quick_search_box(client, lyon_agent):
    html = client.get("/").get_data(as_text=True)
    assert 'id="quick-search"' in html and 'hx-get="/recherche/rapide"' in html
    assert "js/quick-search.js" in html and 'href="/identifier"' in html

"""Creating a prospect: validation, scope, duplicate warning, numbering, audit, links."""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.db import session
from app.parties import prospects
from app.parties.models import Party
from tests.conftest import csrf_token
from tests.factories import AgentFactory, role_with

URL = "/clients/nouveau"


def _form(client, **fields) -> dict:
    """A filled-in prospect form: Jean Dupont of Villeurbanne unless told otherwise."""
    token = csrf_token(client.get(URL).get_data(as_text=True))
    data = {"csrf_token": token, "kind": "person", "civility": "M.", "first_name": "Jean", "last_name": "Dupont",
            "company_name": "", "phones-0-number": "07 81 22 33 44", "phones-0-label": "mobile",
            "phones-1-number": "", "phones-1-label": "", "emails-0": "jean.dupont@example.org", "emails-1": "",
            "street": "3 avenue Roger-Salengro", "address_extra": "", "postal_code": "69100", "city": "Villeurbanne"}
    data.update(fields)
    return data


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _entries(party_id: int) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).where(AuditEntry.object_type == "party",
                                                         AuditEntry.object_id == str(party_id))
                                .order_by(AuditEntry.id)).scalars())


def _created(response) -> Party:
    assert response.status_code == 302, response.get_data(as_text=True)
    party_id = int(re.search(r"/clients/(\d+)$", response.headers["Location"]).group(1))
    session.expire_all()
    return session.get(Party, party_id)


def _flashes(client) -> list[str]:
    with client.session_transaction() as flask_session:
        return [message for _category, message in flask_session.get("_flashes", [])]


def _value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', page)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return unescape(value.group(1)) if value else ""


def test_a_prospect_gets_the_territory_of_its_address_a_pr_number_and_an_audit_entry(client, login_as, places):
    agent = login_as("accueil", territories=[places["lyon_agency"]])

    response = client.post(URL, data=_form(client, city="villeurbanne", **{"phones-0-number": "07.81.22.33.44"}))

    party = _created(response)
    assert _flashes(client) == ["Prospect créé."]
    assert party.status == "prospect" and party.kind == "person"
    assert re.fullmatch(r"PR\d{8}", party.number)
    assert (party.civility, party.first_name, party.last_name) == ("M.", "Jean", "Dupont")
    assert (party.street, party.postal_code, party.city, party.insee_code) == (
        "3 avenue Roger-Salengro", "69100", "Villeurbanne", "69266")
    assert party.territory_id == places["villeurbanne"].id
    assert [(p.number, p.label) for p in party.phones] == [("+33781223344", "mobile")]
    assert [e.address for e in party.emails] == ["jean.dupont@example.org"]
    [entry] = _entries(party.id)
    assert entry.action == "create" and entry.actor_id == agent.id
    assert entry.changes["status"] == [None, "prospect"] and entry.changes["number"] == [None, party.number]


def test_an_organisation_needs_only_its_company_name(client, login_as, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    party = _created(client.post(URL, data=_form(client, kind="organisation", company_name="Boulangerie Martin",
                                                 last_name="", first_name="Ignoré")))
    assert (party.kind, party.company_name, party.first_name, party.civility) == (
        "organisation", "Boulangerie Martin", None, None)


def test_a_duplicate_is_shown_then_created_anyway_and_audited(client, login_as, places, customer):
    login_as("accueil", territories=[places["lyon_agency"]])
    parties_before = _count(Party)

    warning = client.post(URL, data=_form(client, **{"phones-0-number": "06 12 34 56 78"}))

    assert warning.status_code == 200
    page = warning.get_data(as_text=True)
    assert 'id="duplicate-candidates"' in page
    assert "CL0700001" in page and "Mme Hélène Lefèvre" in page and "même téléphone" in page
    assert "12 rue Victor-Hugo, 69002 Lyon" in page
    assert f'href="/clients/{customer.id}"' in page and "Créer quand même" in page
    assert _count(Party) == parties_before  # nothing created yet
    assert _value(page, "acknowledged") == str(customer.id)

    confirm = _form(client, **{"phones-0-number": "06 12 34 56 78", "confirmed": "1",
                               "acknowledged": _value(page, "acknowledged")})
    party = _created(client.post(URL, data=confirm))

    assert party.status == "prospect" and party.phones[0].number == "+33612345678"
    assert _count(Party) == parties_before + 1
    actions = {e.action: e for e in _entries(party.id)}
    assert set(actions) == {"create", "create_despite_duplicates"}
    assert actions["create_despite_duplicates"].changes["candidates"] == ["CL0700001"]
    assert actions["create_despite_duplicates"].changes["reasons"] == {"CL0700001": ["phone"]}
    # The view says who created the record, and the history tells it in words, without the candidates.
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert re.search(r'id="last-change"><small>\s*Créé par', html)
    assert "Créé malgré des doublons possibles par" in html and "create_despite_duplicates" not in html


def test_confirming_without_having_seen_a_candidate_warns_again(client, login_as, places, customer):
    login_as("accueil", territories=[places["lyon_agency"]])
    parties_before = _count(Party)
    # Confirmed, but the candidates shown were for other data (none): this one was never seen.
    response = client.post(URL, data=_form(client, confirmed="1", acknowledged="",
                                           **{"emails-0": "HELENE@example.fr"}))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "CL0700001" in page and "même courriel" in page
    assert _count(Party) == parties_before


def test_a_close_name_at_the_same_address_is_a_duplicate(client, login_as, places, customer):
    login_as("accueil", territories=[places["lyon_agency"]])
    response = client.post(URL, data=_form(client, first_name="Helene", last_name="Lefevre", civility="Mme",
                                           street="12 rue Victor Hugo", postal_code="69002", city="Lyon",
                                           **{"phones-0-number": "", "emails-0": ""}))
    assert response.status_code == 200
    assert "nom proche à la même adresse" in response.get_data(as_text=True)


@pytest.mark.parametrize(("fields", "message"), [
    ({"postal_code": "42000", "city": "Saint-Étienne"}, "hors de vos territoires"),
    ({"postal_code": "38000", "city": "Grenoble"}, "aucun territoire"),
    ({"postal_code": "69999", "city": "Lyon"}, "Code postal inconnu : 69999"),
    ({"postal_code": "69100", "city": "Lyon"}, "Le code postal 69100 correspond à : Villeurbanne"),
    ({"postal_code": "", "city": "", "street": ""}, "Le code postal est obligatoire."),
    ({"street": ""}, "L&#39;adresse (numéro et voie) est obligatoire."),
    ({"last_name": "  "}, "Le nom est obligatoire."),
    ({"kind": "organisation", "company_name": ""}, "La raison sociale est obligatoire."),
    ({"phones-1-number": "12"}, "Numéro de téléphone"),
    ({"emails-0": "pas-une-adresse"}, "Adresse e-mail invalide"),
], ids=["out-of-scope", "no-territory", "unknown-postcode", "commune-mismatch", "no-address", "no-street",
        "no-last-name", "no-company-name", "bad-phone", "bad-email"])
def test_a_refused_prospect_gets_a_422_with_the_message_and_nothing_is_written(client, login_as, places, fields,
                                                                                message):
    login_as("accueil", territories=[places["lyon_agency"]])
    data = _form(client, **fields)
    parties, audit = _count(Party), _count(AuditEntry)

    response = client.post(URL, data=data)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'class="field-error"' in page  # next to its field
    assert _value(page, "last_name") == data["last_name"]  # what was typed is kept
    assert (_count(Party), _count(AuditEntry)) == (parties, audit)


def test_the_form_is_prefilled_from_the_quick_search_text(client, login_as, places):
    login_as("accueil", territories=[places["lyon_agency"]])

    by_name = client.get(URL, query_string={"q": "Dupont  Jean Pierre"}).get_data(as_text=True)
    assert (_value(by_name, "last_name"), _value(by_name, "first_name")) == ("Dupont", "Jean Pierre")
    assert _value(by_name, "phones-0-number") == ""

    by_phone = client.get(URL, query_string={"q": "06 12 34 56 78"}).get_data(as_text=True)
    assert _value(by_phone, "phones-0-number") == "06 12 34 56 78" and _value(by_phone, "last_name") == ""

    by_email = client.get(URL, query_string={"q": "jean@example.org"}).get_data(as_text=True)
    assert _value(by_email, "emails-0") == "jean@example.org" and _value(by_email, "last_name") == ""

    explicit = client.get(URL, query_string={"q": "Dupont", "last_name": "Durand", "postal_code": "69100"})
    page = explicit.get_data(as_text=True)
    assert (_value(page, "last_name"), _value(page, "postal_code")) == ("Durand", "69100")


def test_two_prospects_in_a_row_get_distinct_consecutive_numbers(client, login_as, places):
    session.add(Party(number="PR00000041", last_name="Ancien", status="prospect"))
    session.add(Party(number="CL99999999", last_name="Client", status="customer"))  # another range: ignored
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])

    first = _created(client.post(URL, data=_form(client)))
    second = _created(client.post(URL, data=_form(client, last_name="Durand", **{"phones-0-number": "",
                                                                                  "emails-0": ""})))

    assert (first.number, second.number) == ("PR00000042", "PR00000043")


def test_a_number_taken_in_between_is_retried_with_the_next_one(app_ctx, places, monkeypatch):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]])
    session.add(Party(number="PR00000007", last_name="Concurrent", status="prospect"))
    session.commit()
    real = prospects._max_prospect_number
    reads = []

    def stale_then_real() -> int:
        # The first read misses PR00000007, as if another agent had just created it.
        reads.append(1)
        return 6 if len(reads) == 1 else real()

    monkeypatch.setattr(prospects, "_max_prospect_number", stale_then_real)
    data = {"kind": "person", "last_name": "Martin", "phones": [{"number": "0781223344", "label": "mobile"}],
            "emails": [], "street": "1 rue de la Paix", "postal_code": "69100", "city": "Villeurbanne"}

    party = prospects.create_prospect(agent=agent, data=data)
    session.commit()

    assert len(reads) == 2 and party.number == "PR00000008"
    assert session.execute(select(func.count()).select_from(Party).where(Party.last_name == "Martin")).scalar() == 1
    assert [p.number for p in session.get(Party, party.id).phones] == ["+33781223344"]
    assert [e.action for e in _entries(party.id)] == ["create"]


def test_an_agent_without_party_write_cannot_create(app_ctx, places):
    agent = AgentFactory(roles=[role_with("superviseur")], territories=[places["lyon_agency"]])
    with pytest.raises(PermissionError):
        prospects.create_prospect(agent=agent, data={"last_name": "X", "street": "1 rue A", "postal_code": "69100",
                                                     "city": "Villeurbanne"})


def test_writing_without_reading_cannot_create_unchecked_for_duplicates(client, login_as, places):
    agent = login_as("saisie_seule", territories=[places["lyon_agency"]], permissions=["party.write"])
    assert client.get(URL).status_code == 403
    assert 'id="new-prospect"' not in client.get("/").get_data(as_text=True)
    with pytest.raises(PermissionError, match="party.read"):
        prospects.create_prospect(agent=agent, data={"last_name": "X", "street": "3 avenue Roger-Salengro",
                                                     "postal_code": "69100", "city": "Villeurbanne"})
    assert session.execute(select(Party).where(Party.last_name == "X")).first() is None


def test_the_links_are_shown_with_party_write(client, login_as, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    home = client.get("/").get_data(as_text=True)
    assert 'id="new-prospect"' in home and f'href="{URL}"' in home

    quick = client.get("/recherche/rapide", query_string={"q": "Zyxwvu Qrst"}).get_data(as_text=True)
    assert "Aucun client trouvé." in quick
    assert f'href="{URL}?q={quote("Zyxwvu Qrst").replace("%20", "+")}"' in quick
    assert "Créer un prospect « Zyxwvu Qrst »" in quick

    results = client.get("/recherche", query_string={"q": "Zyxwvu"}).get_data(as_text=True)
    assert f'href="{URL}?q=Zyxwvu"' in results and "Créer un prospect « Zyxwvu »" in results


def test_without_party_write_there_is_no_link_and_the_page_is_forbidden(client, login_as, places):
    login_as("superviseur", territories=[places["lyon_agency"]])
    home = client.get("/").get_data(as_text=True)
    assert 'id="new-prospect"' not in home and URL not in home
    quick = client.get("/recherche/rapide", query_string={"q": "Zyxwvu"}).get_data(as_text=True)
    assert "Aucun client trouvé." in quick and URL not in quick
    results = client.get("/recherche", query_string={"q": "Zyxwvu"}).get_data(as_text=True)
    assert "Aucun client trouvé." in results and URL not in results

    assert client.get(URL).status_code == 403
    token = csrf_token(home)
    parties = _count(Party)
    assert client.post(URL, data={"csrf_token": token, "last_name": "Dupont", "postal_code": "69100",
                                  "city": "Villeurbanne", "street": "1 rue A"}).status_code == 403
    assert _count(Party) == parties


def test_no_create_link_when_the_searched_customer_exists_out_of_scope(client, login_as, places):
    session.add(Party(number="CL0700009", last_name="Zyxwvu", status="customer", street="1 rue Neuve",
                      postal_code="42000", city="Saint-Étienne", insee_code="42218",
                      territory_id=places["saint_etienne"].id))
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])
    for path in ("/recherche/rapide", "/recherche"):
        html = client.get(path, query_string={"q": "Zyxwvu"}).get_data(as_text=True)
        assert "hors de votre périmètre" in html
        assert f"{URL}?q=" not in html and "Créer un prospect" not in html


def test_duplicates_are_scoped_before_being_capped(app_ctx, places):
    """Many look-alikes out of scope (a switchboard number, a common street elsewhere) hide nothing."""
    from app.parties.duplicates import find_duplicates
    from app.parties.models import PartyPhone

    agent = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]])
    session.add_all(Party(number=f"CLS{i:06d}", last_name=f"Loire{i}", status="customer",
                          territory_id=places["saint_etienne"].id, phones=[PartyPhone(number="+33477000000")])
                    for i in range(60))
    session.add_all(Party(number=f"CLV{i:06d}", first_name="Jean", last_name="Dupont", status="customer",
                          street="1 rue de la Gare", postal_code="69100", city="Villeurbanne",
                          territory_id=places["villeurbanne"].id) for i in range(520))
    session.add_all([
        Party(number="CL8888888", last_name="Lyonnais", status="customer", territory_id=places["lyon"].id,
              phones=[PartyPhone(number="+33477000000")]),
        Party(number="CL9999999", first_name="Jean", last_name="Dupont", status="customer", street="1 rue de la Gare",
              postal_code="69002", city="Lyon", territory_id=places["lyon"].id)])
    session.commit()
    assert [c.party.number for c in find_duplicates(agent=agent, phones=["04 77 00 00 00"])
            if c.party.territory_id == places["lyon"].id] == ["CL8888888"]
    found = find_duplicates(agent=agent, last_name="Dupont", first_name="Jean", street="1 rue de la Gare",
                            postal_code="69002")
    assert [c.party.number for c in found] == ["CL9999999"]  # not the 520 of Villeurbanne's rue de la Gare

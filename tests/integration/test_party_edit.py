"""Editing a customer's contact details and address: validation, scope, optimistic locking, audit."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEntry
from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
from app.db import session
from app.parties import editing
from app.parties.models import Party, PartyEmail, PartyPhone
from tests.conftest import Auth, csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with

PAGE_VERSION_RE = re.compile(r'id="version" name="version" type="hidden" value="(\d+)"')


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
    """Hélène Lefèvre, of Lyon, with a phone, an email and a contract with an invoice."""
    party = Party(number="CL0700001", external_ref="BP-7001", first_name="Hélène", last_name="Lefèvre",
                  civility="Mme", status="customer", street="12 rue Victor-Hugo", postal_code="69002", city="Lyon",
                  insee_code="69123", territory_id=places["lyon"].id,
                  phones=[PartyPhone(number="+33612345678", label="mobile", position=0)],
                  emails=[PartyEmail(address="helene@example.fr", position=0)])
    session.add(party)
    session.commit()
    return party


def _contract_in(party: Party, territory, ref: str = "7001") -> Contract:
    service_point = ServicePoint(external_ref=f"SP-{ref}", kind="water", territory_id=territory.id,
                                 street="1 rue du Compteur", postal_code="69002", city="Lyon", insee_code="69123")
    contract = Contract(number=f"EAU-{ref}", external_ref=f"C-{ref}", service_point=service_point, status="active",
                        start_date=date(2020, 1, 1), offer="Eau", parties=[ContractParty(party=party, role="holder")])
    session.add_all([contract, Invoice(number=f"F-{ref}", external_ref=f"I-{ref}", contract=contract,
                                       issued_on=date(2026, 1, 1), due_on=date(2026, 1, 31),
                                       amount=Decimal("84.20"), status="open")])
    session.commit()
    return contract


def _url(party: Party) -> str:
    return f"/clients/{party.id}/modifier"


def _form(page_html: str, **changes) -> dict:
    """The form as the page shows it (every field, hidden ones included), with changes."""
    data = {}
    for tag in re.findall(r"<(?:input|select)\b[^>]*>", page_html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = unescape(value.group(1)) if value and "<select" not in tag else ""
    for select_name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page_html, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', options)
        data[select_name] = unescape(next(g for g in chosen.groups() if g is not None)) if chosen else ""
    data.update(changes)
    return data


def _audit_entries(party: Party) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).where(AuditEntry.object_type == "party",
                                                         AuditEntry.object_id == str(party.id))
                                .order_by(AuditEntry.id)).scalars())


def _snapshot(party: Party) -> tuple:
    session.expire_all()
    p = session.get(Party, party.id)
    return (p.version, p.street, p.postal_code, p.city, p.insee_code, p.territory_id,
            [(x.number, x.label) for x in p.phones], [e.address for e in p.emails])


def test_the_form_shows_the_stored_values(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer))
    assert page.status_code == 200
    form = _form(page.get_data(as_text=True))
    assert form["last_name"] == "Lefèvre" and form["civility"] == "Mme"
    assert form["phones-0-number"] == "06 12 34 56 78" and form["phones-0-label"] == "mobile"
    assert form["emails-0"] == "helene@example.fr"
    assert (form["postal_code"], form["city"]) == ("69002", "Lyon")
    assert form["version"] == "1"


def test_an_agent_changes_phone_email_and_address_within_their_territory(client, login_as, customer, places):
    agent = login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    before = len(_audit_entries(customer))

    response = client.post(_url(customer), data=_form(
        page, **{"phones-0-number": "07.98.76.54.32", "phones-1-number": "04 78 12 34 56", "phones-1-label": "home",
                 "emails-0": "h.lefevre@example.org", "street": " 3  avenue Roger-Salengro ",
                 "postal_code": "69100", "city": "villeurbanne"}))

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/clients/{customer.id}")
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Coordonnées enregistrées." in shown
    version, street, postal, city, insee, territory, phones, emails = _snapshot(customer)
    assert (street, postal, city, insee) == ("3 avenue Roger-Salengro", "69100", "Villeurbanne", "69266")
    assert territory == places["villeurbanne"].id  # recomputed from the commune
    assert phones == [("+33798765432", "mobile"), ("+33478123456", "home")]
    assert emails == ["h.lefevre@example.org"]
    assert version == 2

    [entry] = _audit_entries(customer)[before:]  # one coherent entry for the whole save
    assert entry.action == "update" and entry.actor_id == agent.id
    assert entry.changes["phones"] == [["+33612345678 (mobile)"],
                                       ["+33478123456 (home)", "+33798765432 (mobile)"]]
    assert entry.changes["emails"] == [["helene@example.fr"], ["h.lefevre@example.org"]]
    assert entry.changes["city"] == ["Lyon", "Villeurbanne"]
    assert entry.changes["postal_code"] == ["69002", "69100"]
    assert entry.changes["territory_id"] == [places["lyon"].id, places["villeurbanne"].id]


def test_a_change_of_phone_label_alone_moves_the_version_and_is_audited(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    assert client.post(_url(customer), data=_form(page, **{"phones-0-label": "work"})).status_code == 302
    version, *_rest, phones, _emails = _snapshot(customer)
    assert version == 2 and phones == [("+33612345678", "work")]
    assert _audit_entries(customer)[-1].changes == {"phones": [["+33612345678 (mobile)"], ["+33612345678 (work)"]]}


def test_saving_an_unchanged_form_writes_nothing(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    before = len(_audit_entries(customer))
    assert client.post(_url(customer), data=_form(page)).status_code == 302
    assert _snapshot(customer)[0] == 1
    assert len(_audit_entries(customer)) == before


def test_a_postal_code_and_city_mismatch_is_refused_and_nothing_is_written(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    before, audit_count = _snapshot(customer), len(_audit_entries(customer))

    response = client.post(_url(customer), data=_form(
        page, **{"phones-0-number": "07 98 76 54 32", "postal_code": "69003", "city": "Villeurbanne"}))

    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert "Le code postal 69003 correspond à : Lyon. Corrigez la commune ou le code postal." in html
    # the message sits next to the city field, and what was typed is kept
    assert re.search(r'name="city"[^>]*>\s*<datalist[^>]*>.*?</datalist>\s*'
                     r'<small class="field-error">Le code postal 69003', html)
    assert 'value="07 98 76 54 32"' in html
    assert _snapshot(customer) == before  # the valid phone change is not written either
    assert len(_audit_entries(customer)) == audit_count


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"phones-1-number": "06 12"}, "phones-1-number", "Numéro de téléphone invalide : « 06 12 »."),
    ({"phones-1-number": "06 12 34 56 78"}, "phones-1-number", "Ce numéro est déjà saisi."),
    ({"emails-1": "pas-une-adresse"}, "emails-1", "Adresse e-mail invalide : « pas-une-adresse »."),
    ({"last_name": "  "}, "last_name", "Le nom est obligatoire."),
    ({"postal_code": "6900", "city": "Lyon"}, "postal_code", "Code postal invalide : « 6900 » (5 chiffres attendus)."),
])
def test_each_refused_field_gets_its_message_and_nothing_is_written(client, login_as, customer, places, changes,
                                                                    field, message):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    before = _snapshot(customer)
    response = client.post(_url(customer), data=_form(page, **changes))
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert re.search(rf'name="{field}"[^>]*>\s*(?:<datalist[^>]*>.*?</datalist>\s*)?<small class="field-error">'
                     rf"{re.escape(message)}</small>", html), html
    assert _snapshot(customer) == before


def test_a_move_out_of_the_agents_territories_is_refused(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    before = _snapshot(customer)
    response = client.post(_url(customer), data=_form(page, postal_code="42000", city="Saint-Etienne"))
    assert response.status_code == 422
    assert "Cette adresse est hors de vos territoires" in unescape(response.get_data(as_text=True))
    assert _snapshot(customer) == before


def test_a_move_out_is_accepted_when_a_contract_keeps_the_customer_in_scope(client, login_as, customer, places):
    _contract_in(customer, places["lyon"])
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    response = client.post(_url(customer), data=_form(page, postal_code="42000", city="Saint-Etienne"))
    assert response.status_code == 302
    assert _snapshot(customer)[3:6] == ("Saint-Étienne", "42218", places["saint_etienne"].id)


def test_a_regional_agent_may_move_the_customer_to_another_agency(client, login_as, customer, places):
    login_as("back_office", territories=[places["region"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    assert client.post(_url(customer), data=_form(page, postal_code="42000", city="")).status_code == 302
    assert _snapshot(customer)[5] == places["saint_etienne"].id


def _second_agent_client(app, places, full_name: str):
    other = app.test_client()
    agent = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]], full_name=full_name)
    assert Auth(other).login(agent.login).status_code == 302
    return other


def test_the_second_of_two_concurrent_saves_is_refused_with_what_changed(app, client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]], full_name="Camille Lefort")
    other = _second_agent_client(app, places, "Karim Benali")
    first_page = client.get(_url(customer)).get_data(as_text=True)
    second_page = other.get(_url(customer)).get_data(as_text=True)

    saved = client.post(_url(customer), data=_form(first_page, **{"phones-0-number": "07 98 76 54 32"}))
    assert saved.status_code == 302
    refused = other.post(_url(customer), data=_form(second_page, **{"emails-0": "autre@example.fr",
                                                                     "street": "1 place Bellecour"}))

    assert refused.status_code == 409
    raw = refused.get_data(as_text=True)
    html = unescape(raw)
    conflict = html[html.index('id="edit-conflict"'):html.index("</article>")]
    assert "Camille Lefort" in conflict
    assert "téléphones : 06 12 34 56 78 (mobile) → 07 98 76 54 32 (mobile)" in conflict
    assert "Vos modifications n'ont pas été enregistrées" in conflict
    version, street, *_address, phones, emails = _snapshot(customer)
    assert (version, street, phones, emails) == (2, "12 rue Victor-Hugo", [("+33798765432", "mobile")],
                                                 ["helene@example.fr"])
    # The agent's typing is kept, on the current version: saving again is a deliberate choice.
    again = _form(raw)
    assert again["emails-0"] == "autre@example.fr" and again["version"] == "2"
    assert other.post(_url(customer), data=again).status_code == 302
    assert _snapshot(customer)[7] == ["autre@example.fr"]


def test_a_save_racing_another_between_check_and_write_is_refused(app_ctx, customer, places):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]], full_name="Lou Arnaud")
    party = session.get(Party, customer.id)  # read at version 1
    # Another process saves in between: the row moves to version 2 behind this session's back.
    session.execute(text("UPDATE party SET version = 2, street = '5 rue Neuve' WHERE id = :id"), {"id": party.id})

    with pytest.raises(editing.EditConflict) as conflict:
        editing.update_party(agent=agent, party_id=party.id, expected_version=1,
                             changes={"emails": ["neuve@example.fr"]})
    assert conflict.value.current_version == 2
    session.expire_all()
    stored = session.get(Party, party.id)
    assert stored.street == "5 rue Neuve" and [e.address for e in stored.emails] == ["helene@example.fr"]


def test_an_agent_without_party_write_gets_no_form(client, login_as, customer, places):
    login_as("superviseur", territories=[places["lyon_agency"]])
    before = _snapshot(customer)
    page = client.get(_url(customer))
    assert page.status_code == 403 and "party-edit-form" not in page.get_data(as_text=True)
    token = csrf_token(client.get("/").get_data(as_text=True))
    posted = client.post(_url(customer), data={"csrf_token": token, "version": "1", "postal_code": "69100",
                                                "city": "Villeurbanne", "last_name": "Pirate"})
    assert posted.status_code == 403
    assert _snapshot(customer) == before


def test_an_agent_of_another_territory_gets_a_404(client, login_as, customer, places):
    login_as("accueil", territories=[places["loire_agency"]])
    before = _snapshot(customer)
    assert client.get(_url(customer)).status_code == 404
    token = csrf_token(client.get("/").get_data(as_text=True))
    posted = client.post(_url(customer), data={"csrf_token": token, "version": "1", "last_name": "Pirate",
                                                "postal_code": "42000", "city": "Saint-Étienne"})
    assert posted.status_code == 404
    assert _snapshot(customer) == before


def test_billing_owned_data_is_not_editable_here(client, login_as, customer, places):
    contract = _contract_in(customer, places["lyon"])
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    assert 'name="status"' not in page and 'name="number"' not in page
    response = client.post(_url(customer), data=_form(
        page, status="former_customer", number="CL9999999", external_ref="HACK", vulnerable="y",
        contract_id=str(contract.id), first_name="Hélène-Marie"))
    assert response.status_code == 302
    session.expire_all()
    party = session.get(Party, customer.id)
    assert party.first_name == "Hélène-Marie"
    assert (party.status, party.number, party.external_ref, party.vulnerable) == (
        "customer", "CL0700001", "BP-7001", False)
    assert session.execute(select(func.count()).select_from(ContractParty)
                           .where(ContractParty.party_id == customer.id)).scalar_one() == 1
    invoice = session.execute(select(Invoice).where(Invoice.contract_id == contract.id)).scalar_one()
    assert (invoice.amount, invoice.status) == (Decimal("84.20"), "open")


def test_a_form_without_its_version_is_refused(client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    data = _form(page, last_name="Autre")
    del data["version"]
    assert client.post(_url(customer), data=data).status_code == 400
    assert session.get(Party, customer.id).last_name == "Lefèvre"


def test_the_city_suggestions_follow_the_postal_code(client, login_as, places):
    login_as("accueil", territories=[places["lyon_agency"]])
    options = client.get("/clients/communes?postal_code=42800").get_data(as_text=True)
    assert '<option value="Rive-de-Gier"></option>' in options and "Lyon" not in options
    assert client.get("/clients/communes?postal_code=abc").get_data(as_text=True) == ""

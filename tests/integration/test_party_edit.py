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
from tests.factories import AgentFactory, role_with

PAGE_VERSION_RE = re.compile(r'id="version" name="version" type="hidden" value="(\d+)"')


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
    assert again["emails-0"] == "autre@example.fr" and again["street"] == "1 place Bellecour"
    assert again["version"] == "2"
    # What the agent did not touch is shown as it is now: the first agent's phone, not the stale one.
    assert again["phones-0-number"] == "07 98 76 54 32"
    assert other.post(_url(customer), data=again).status_code == 302
    version, street, *_address, phones, emails = _snapshot(customer)
    assert phones == [("+33798765432", "mobile")]  # the first agent's change survives the re-save
    assert (version, street, emails) == (3, "1 place Bellecour", ["autre@example.fr"])


def test_a_stale_value_the_agent_did_not_touch_is_not_written_back(app, client, login_as, customer, places):
    """Only what the agent changed relative to what their form showed is applied, even when the
    untouched fields of the re-saved form still hold the values of before the other save."""
    login_as("accueil", territories=[places["lyon_agency"]])
    other = _second_agent_client(app, places, "Karim Benali")
    stale_page = other.get(_url(customer)).get_data(as_text=True)
    page = client.get(_url(customer)).get_data(as_text=True)
    assert client.post(_url(customer), data=_form(page, **{"phones-0-number": "07 98 76 54 32",
                                                           "first_name": "Hélène-Marie"})).status_code == 302

    refused = other.post(_url(customer), data=_form(stale_page, **{"emails-0": "autre@example.fr"}))
    assert refused.status_code == 409
    # The stale form re-posted as it was, on the current version (a second tab, say).
    stale = _form(stale_page, **{"emails-0": "autre@example.fr", "version": "2"})
    assert stale["phones-0-number"] == "06 12 34 56 78" and stale["first_name"] == "Hélène"
    assert other.post(_url(customer), data=stale).status_code == 302
    session.expire_all()
    party = session.get(Party, customer.id)
    assert party.first_name == "Hélène-Marie"
    assert [(p.number, p.label) for p in party.phones] == [("+33798765432", "mobile")]
    assert [e.address for e in party.emails] == ["autre@example.fr"]


def test_a_civility_the_form_does_not_offer_is_kept(client, login_as, customer, places):
    session.get(Party, customer.id).civility = "Mlle"  # as the billing import may send it
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    assert _form(page)["civility"] == "Mlle"
    assert client.post(_url(customer), data=_form(page, first_name="Hélène-Marie")).status_code == 302
    session.expire_all()
    party = session.get(Party, customer.id)
    assert (party.civility, party.first_name) == ("Mlle", "Hélène-Marie")
    # Without the form's snapshot (another client), the stored civility is still accepted.
    editing.update_party(agent=AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]]),
                         party_id=party.id, expected_version=party.version,
                         changes={"civility": "Mlle", "last_name": "Lefèvre-Martin"})
    assert (party.civility, party.last_name) == ("Mlle", "Lefèvre-Martin")


def test_a_customer_with_more_phones_and_emails_than_the_form_offers_can_be_edited(client, login_as, customer,
                                                                                  places):
    party = session.get(Party, customer.id)
    party.phones = [PartyPhone(number=f"+3361234567{i}", label="mobile", position=i) for i in range(6)]
    party.emails = [PartyEmail(address=f"helene{i}@example.fr", position=i) for i in range(6)]
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer))
    assert page.status_code == 200
    form = _form(page.get_data(as_text=True))
    assert form["phones-5-number"] == "06 12 34 56 75" and form["emails-5"] == "helene5@example.fr"

    assert client.post(_url(customer), data=_form(page.get_data(as_text=True), last_name="Martin")).status_code == 302
    *_rest, phones, emails = _snapshot(customer)
    assert len(phones) == 6 and len(emails) == 6
    assert session.get(Party, customer.id).last_name == "Martin"

    page = client.get(_url(customer)).get_data(as_text=True)
    changed = client.post(_url(customer), data=_form(page, **{"phones-5-number": "07 98 76 54 32",
                                                              "emails-5": "autre@example.fr"}))
    assert changed.status_code == 302
    *_rest, phones, emails = _snapshot(customer)
    assert phones[5] == ("+33798765432", "mobile") and len(phones) == 6
    assert emails[5] == "autre@example.fr" and len(emails) == 6


def test_an_implausible_stored_birth_date_does_not_block_other_changes(client, login_as, customer, places):
    session.get(Party, customer.id).birth_date = date(1895, 3, 1)  # as the billing system sent it
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(customer)).get_data(as_text=True)
    assert client.post(_url(customer), data=_form(page, first_name="Hélène-Marie")).status_code == 302
    session.expire_all()
    party = session.get(Party, customer.id)
    assert (party.first_name, party.birth_date) == ("Hélène-Marie", date(1895, 3, 1))
    # The stored date, sent again, is not checked again; a new implausible one is refused.
    assert editing.plan_changes(party, {"birth_date": date(1895, 3, 1)}).columns == {"birth_date": date(1895, 3, 1)}
    with pytest.raises(editing.InvalidChanges) as refused:
        editing.plan_changes(party, {"birth_date": "1890-01-01"})
    assert refused.value.errors == {"birth_date": "Date de naissance invraisemblable."}


def test_saving_an_organisation_keeps_its_stored_birth_date(client, login_as, places):
    organisation = Party(number="CL0700002", kind="organisation", company_name="Boulangerie Martin",
                         birth_date=date(1990, 5, 4), status="customer", street="12 rue Victor-Hugo",
                         postal_code="69002", city="Lyon", insee_code="69123", territory_id=places["lyon"].id)
    session.add(organisation)
    session.commit()
    login_as("accueil", territories=[places["lyon_agency"]])
    page = client.get(_url(organisation)).get_data(as_text=True)
    assert 'name="birth_date"' not in page
    assert client.post(_url(organisation), data=_form(page, company_name="Boulangerie Martin & fils")
                       ).status_code == 302
    session.expire_all()
    stored = session.get(Party, organisation.id)
    assert (stored.company_name, stored.birth_date) == ("Boulangerie Martin & fils", date(1990, 5, 4))
    # Without the form's snapshot either: an organisation's birth date is not the form's business.
    editing.plan_changes(stored, {"birth_date": None, "company_name": "Boulangerie Martin"})
    assert "birth_date" not in editing.plan_changes(stored, {"birth_date": None}).columns


def test_a_commune_sharing_its_name_under_the_postal_code_is_chosen_by_its_department(client, login_as, customer,
                                                                                    places):
    _contract_in(customer, places["lyon"])  # keeps the customer in the agent's scope after the move
    login_as("accueil", territories=[places["lyon_agency"]])
    options = client.get("/clients/communes?postal_code=62760").get_data(as_text=True)
    assert '<option value="Thièvres (62)"></option>' in unescape(options)
    assert '<option value="Thièvres (80)"></option>' in unescape(options)
    assert '<option value="Amplier"></option>' in options

    page = client.get(_url(customer)).get_data(as_text=True)
    refused = client.post(_url(customer), data=_form(page, street="1 rue Principale", postal_code="62760",
                                                     city="Thievres"))
    assert refused.status_code == 422
    html = unescape(refused.get_data(as_text=True))
    assert "Thièvres (62, code INSEE 62814)" in html and "Thièvres (80, code INSEE 80756)" in html

    saved = client.post(_url(customer), data=_form(page, street="1 rue Principale", postal_code="62760",
                                                   city="Thièvres (80)"))
    assert saved.status_code == 302
    assert _snapshot(customer)[2:5] == ("62760", "Thièvres", "80756")
    # The page shows the commune so that it can be saved again as it is, the street changed.
    page = client.get(_url(customer)).get_data(as_text=True)
    assert _form(page)["city"] == "Thièvres"
    assert client.post(_url(customer), data=_form(page, street="2 rue Principale")).status_code == 302
    assert _snapshot(customer)[1:5] == ("2 rue Principale", "62760", "Thièvres", "80756")


def test_the_edit_page_speaks_the_agents_language(app, client, login_as, customer, places):
    login_as("accueil", territories=[places["lyon_agency"]], language="en")
    other = _second_agent_client(app, places, "Karim Benali")
    page = client.get(_url(customer)).get_data(as_text=True)
    other_page = other.get(_url(customer)).get_data(as_text=True)
    assert other.post(_url(customer), data=_form(other_page, **{"emails-0": "autre@example.fr"})).status_code == 302
    conflict = client.post(_url(customer), data=_form(page, last_name="Martin"))
    assert conflict.status_code == 409
    assert "emails: helene@example.fr → autre@example.fr" in unescape(conflict.get_data(as_text=True))
    page = client.get(_url(customer)).get_data(as_text=True)
    assert re.search(r'<option selected value="Mme">Ms</option>|<option value="Mme" selected>Ms</option>', page)
    assert '<option value="M.">Mr</option>' in page
    response = client.post(_url(customer), data=_form(page, **{"phones-1-number": "06 12"}))
    assert response.status_code == 422
    assert 'Invalid phone number: "06 12".' in unescape(response.get_data(as_text=True))


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

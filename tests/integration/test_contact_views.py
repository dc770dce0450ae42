"""Contacts and dossiers over HTTP: the contact form (defaults, template rows, additions in place,
errors that write nothing, tampered values), the contact and dossier pages and their actions, and
scope: every contact and dossier URL answers an agent of another territory like a missing page."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.contacts.models import Contact, ContactType, TemplateItem
from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
from app.db import session
from app.dossiers.models import Dossier, DossierContact, DossierElement, DossierType
from app.parties.models import Party
from tests.conftest import csrf_token, statements_sent

LYON_AGENT = ["party.read", "party.write", "contact.create", "dossier.create", "dossier.process"]


@pytest.fixture
def setup(places, customer):
    """Hélène's water contract with an overdue invoice, a "billing question" contact type whose
    template proposes the overdue invoices when something is owed, and a classification."""
    sp = ServicePoint(external_ref="SP-V1", kind="water", national_id="EAU-69123-000001", street="12 rue Victor-Hugo",
                      postal_code="69002", city="Lyon", insee_code="69123", territory_id=places["lyon"].id)
    contract = Contract(number="EA-2020-000001", external_ref="CT-V1", service_point=sp, status="active",
                        start_date=date(2020, 1, 1))
    contract.parties = [ContractParty(party_id=customer.id, role="holder")]
    session.add(contract)
    session.flush()
    today = date.today()
    overdue = Invoice(number="F-V1", external_ref="INV-V1", contract_id=contract.id, issued_on=today - timedelta(60),
                      due_on=today - timedelta(30), amount=Decimal("42.50"), status="open")
    session.add(overdue)
    dossier_type = DossierType(code="RECLA", label="Réclamation", target_days=30)
    contact_type = ContactType(code="FACT", label="Question sur une facture", default_channel="phone",
                               dossier_type=dossier_type, items=[
                                   TemplateItem(kind="object", source="overdue_invoices", position=0,
                                                rule=[{"fact": "overdue_amount", "op": "gt", "value": "0"}]),
                                   TemplateItem(kind="object", source="last_reading", position=1,
                                                rule=[{"fact": "channel", "op": "in", "value": ["letter"]}]),
                               ])
    info = ContactType(code="INFO", label="Demande de renseignement", default_channel="phone")
    session.add_all([dossier_type, contact_type, info])
    session.commit()
    return {"contract": contract, "invoice": overdue, "type": contact_type, "info": info, "dossier_type": dossier_type}


def _form_page(client, setup, customer, **params):
    query = {"party": customer.id, "contract": setup["contract"].id, "channel": "phone", **params}
    return client.get("/contacts/nouveau", query_string=query)


def _save(client, setup, customer, agent, **overrides):
    page = _form_page(client, setup, customer)
    data = {
        "csrf_token": csrf_token(page.get_data(as_text=True)), "party": customer.id,
        "contract": setup["contract"].id, "contact_type": setup["type"].id, "channel": "phone", "direction": "in",
        "subject": "", "notes": "Appel au sujet de la facture", "duration_minutes": "3",
        "parties": [f"{customer.id}|customer|default"], "agents": [f"{agent.id}|emitter|default"],
        "objects": [f"contract:{setup['contract'].id}||default"],
    }
    data.update(overrides)
    return client.post("/contacts/nouveau", data=data)


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_form_starts_with_the_customer_the_agent_and_the_current_contract(client, login_as, places, customer,
                                                                               setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    html = _form_page(client, setup, customer).get_data(as_text=True)
    assert f'value="{customer.id}|customer|default"' in html
    assert f'value="{agent.id}|emitter|default"' in html
    assert f'value="contract:{setup["contract"].id}||default"' in html
    assert html.count("Par défaut") >= 3


def test_without_a_customer_the_agent_identifies_one_first(client, login_as, places, setup):
    login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    response = client.get("/contacts/nouveau?channel=letter")
    assert response.status_code == 302
    assert "/identifier" in response.headers["Location"] and "channel=letter" in response.headers["Location"]


def test_choosing_the_type_renders_the_template_rows_and_says_why_an_item_is_left_out(client, login_as, places,
                                                                                       customer, setup):
    login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    page = _form_page(client, setup, customer).get_data(as_text=True)
    shown = re.findall(r'name="shown" value="([^"]+)"', page)
    response = client.post("/contacts/nouveau/liens", data={
        "csrf_token": csrf_token(page), "party": customer.id, "contract": setup["contract"].id, "channel": "phone",
        "contact_type": setup["type"].id, "retemplate": "1", "shown": shown,
        "parties": [s.split("=", 1)[1] for s in shown if s.startswith("party=")],
    })
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    item = setup["type"].items[0]
    assert f'value="invoice:{setup["invoice"].id}||template:{item.id}"' in html
    assert "Modèle : Les factures impayées échues" in html
    # The reading item needs the letter channel: left out, with the condition and the actual channel.
    assert "Non proposés par le modèle" in html
    assert "Canal du contact est parmi Courrier (ici : Téléphone)" in html
    # An unticked row stays shown, unticked.
    agent_row = next(s for s in shown if s.startswith("agent="))
    assert f'value="{agent_row.split("=", 1)[1]}" ' in html
    assert not re.search(r'name="agents" value="[^"]+" checked', html)


def test_adding_an_object_or_a_party_in_place(client, login_as, places, customer, setup):
    login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    page = _form_page(client, setup, customer).get_data(as_text=True)
    base = {"csrf_token": csrf_token(page), "party": customer.id, "contract": setup["contract"].id,
            "channel": "phone", "shown": re.findall(r'name="shown" value="([^"]+)"', page)}
    html = client.post("/contacts/nouveau/liens", data={
        **base, "add_kind": "object", "add_object": f"invoice:{setup['invoice'].id}"}).get_data(as_text=True)
    assert f'value="invoice:{setup["invoice"].id}||added"' in html and "Ajouté" in html
    html = client.post("/contacts/nouveau/liens", data={
        **base, "add_kind": "party", "add_party": "CL0700001", "add_party_role": "payer"}).get_data(as_text=True)
    assert f'value="{customer.id}|payer|added"' in html
    html = client.post("/contacts/nouveau/liens", data={
        **base, "add_kind": "party", "add_party": "CL9999999"}).get_data(as_text=True)
    assert "Aucun interlocuteur n° « CL9999999 » dans votre périmètre" in html


def test_a_tampered_row_of_a_party_out_of_scope_is_not_described(client, login_as, places, customer, setup):
    stranger = Party(number="CL0700099", first_name="Secret", last_name="Inconnu", status="customer",
                     territory_id=places["saint_etienne"].id)
    session.add(stranger)
    session.commit()
    login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    page = _form_page(client, setup, customer).get_data(as_text=True)
    html = client.post("/contacts/nouveau/liens", data={
        "csrf_token": csrf_token(page), "party": customer.id, "channel": "phone",
        "shown": [f"party={stranger.id}|customer|added"], "parties": [f"{stranger.id}|customer|added"],
        "add_kind": "party", "add_party": str(stranger.id)}).get_data(as_text=True)
    assert "Secret" not in html and "Inconnu" not in html


def test_saving_a_contact_traces_it_with_its_links_and_opens_its_page(client, login_as, places, customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    response = _save(client, setup, customer, agent)
    assert response.status_code == 303
    contact = session.execute(select(Contact).order_by(Contact.id.desc())).scalars().first()
    assert response.headers["Location"].endswith(f"/contacts/{contact.id}")
    assert contact.subject == "Question sur une facture"  # the type's label when left empty
    assert contact.duration_minutes == 3 and contact.channel == "phone"
    assert [(p.party_id, p.role) for p in contact.parties] == [(customer.id, "customer")]
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Appel au sujet de la facture" in page and "EA-2020-000001" in page
    actions = set(session.execute(select(AuditEntry.action).where(
        AuditEntry.object_type == "contact", AuditEntry.object_id == str(contact.id))).scalars())
    assert {"create", "link"} <= actions


@pytest.mark.parametrize(("overrides", "message"), [
    ({"contact_type": ""}, "Choisissez un type de contact."),
    ({"occurred_at": "2999-01-01T10:00"}, "Un contact ne peut pas être daté dans le futur."),
    ({"occurred_at": "hier"}, "Date et heure illisibles"),
    ({"duration_minutes": "-4"}, "La durée est un nombre de minutes."),
    ({"duration_minutes": "2000"}, "La durée est comprise entre 0 et 1440 minutes."),
    ({"parties": []}, "Liez au moins un interlocuteur."),
    ({"objects": ["invoice:999999||added"]}, "Objet métier introuvable ou hors de votre périmètre"),
    ({"parties": ["abc"]}, "Lien illisible"),
])
def test_a_refused_contact_says_why_and_writes_nothing(client, login_as, places, customer, setup, overrides,
                                                         message):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    before = (_count(Contact), _count(AuditEntry))
    response = _save(client, setup, customer, agent, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert (_count(Contact), _count(AuditEntry)) == before


def test_a_party_out_of_scope_cannot_be_linked(client, login_as, places, customer, setup):
    stranger = Party(number="CL0700098", first_name="Autre", last_name="Client", status="customer",
                     territory_id=places["saint_etienne"].id)
    session.add(stranger)
    session.commit()
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    response = _save(client, setup, customer, agent,
                     parties=[f"{customer.id}|customer|default", f"{stranger.id}|third_party|added"])
    assert response.status_code == 422
    assert "hors de votre périmètre" in response.get_data(as_text=True)
    assert _count(Contact) == 0


def test_create_a_dossier_from_the_contact_then_move_a_second_contact_into_it(client, login_as, places, customer,
                                                                               setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    item = setup["type"].items[0]
    _save(client, setup, customer, agent, objects=[f"contract:{setup['contract'].id}||default",
                                                    f"invoice:{setup['invoice'].id}||template:{item.id}"])
    first = session.execute(select(Contact).order_by(Contact.id.desc())).scalars().first()
    page = client.get(f"/contacts/{first.id}?action=dossier").get_data(as_text=True)
    assert f'<option value="{setup["dossier_type"].id}" selected>' in page  # the type's proposed classification
    response = client.post(f"/contacts/{first.id}/dossier", data={
        "csrf_token": csrf_token(page), "dossier_type": setup["dossier_type"].id, "subject": "Facture contestée"})
    assert response.status_code == 303
    dossier = session.execute(select(Dossier)).scalar_one()
    assert response.headers["Location"].endswith(f"/dossiers/{dossier.id}")
    assert re.fullmatch(r"DOS-\d{4}-\d{6}", dossier.reference)
    html = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    for section in ("contacts", "letters", "mails", "notes", "parties", "steps", "history"):
        assert f'id="{section}"' in html
    assert "F-V1" in html and "Facture contestée" in html

    # A second contact, with the reading of nothing new but an extra object: the preview, then the move.
    _save(client, setup, customer, agent, contact_type=setup["info"].id,
          objects=[f"contract:{setup['contract'].id}||default", f"service_point:{setup['contract'].service_point_id}"
                   "||added"])
    second = session.execute(select(Contact).order_by(Contact.id.desc())).scalars().first()
    preview = client.get(f"/contacts/{second.id}/deplacer", query_string={"dossier": dossier.id})
    text = preview.get_data(as_text=True)
    added, existing = text.split('id="move-to-add"')[1], text.split('id="move-existing"')[1]
    assert "EAU-69123-000001" in added.split("</ul>")[0]
    assert "EA-2020-000001" in existing.split("</ul>")[0]
    response = client.post(f"/contacts/{second.id}/deplacer",
                           data={"csrf_token": csrf_token(text), "dossier": dossier.id})
    assert response.status_code == 303
    links = session.execute(select(DossierContact).where(DossierContact.dossier_id == dossier.id)).scalars().all()
    assert sorted((x.contact_id, x.origin) for x in links) == [(first.id, "created_from"), (second.id, "moved")]
    objects_before = sorted((o.object_type, o.object_id) for o in dossier.objects)
    # Again: nothing more, and the page says so.
    again = client.post(f"/contacts/{second.id}/deplacer", data={"csrf_token": csrf_token(text), "dossier": dossier.id},
                        follow_redirects=True)
    assert "déjà rattaché" in again.get_data(as_text=True)
    session.expire_all()
    assert sorted((o.object_type, o.object_id) for o in session.get(Dossier, dossier.id).objects) == objects_before
    assert _count(DossierContact) == 2


def test_notes_and_status_on_the_dossier_page(client, login_as, places, customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, agent)
    contact = session.execute(select(Contact)).scalar_one()
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/dossier", data={"csrf_token": csrf_token(page),
                                                          "dossier_type": setup["dossier_type"].id})
    dossier = session.execute(select(Dossier)).scalar_one()
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    client.post(f"/dossiers/{dossier.id}/notes", data={"csrf_token": csrf_token(page), "title": "Rappel",
                                                        "body": "<script>alert(1)</script> rappeler lundi"})
    html = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; rappeler lundi" in html and "<script>alert(1)" not in html
    # "Nouveau contact" from the dossier starts with its customer and contract.
    assert f'href="/contacts/nouveau?party={customer.id}&amp;contract={setup["contract"].id}"' in html
    response = client.post(f"/dossiers/{dossier.id}/statut", data={"csrf_token": csrf_token(page), "status": "closed",
                                                                    "version": dossier.version})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Dossier, dossier.id).status == "closed"
    # Stale version: refused, status unchanged.
    client.post(f"/dossiers/{dossier.id}/statut", data={"csrf_token": csrf_token(page), "status": "in_progress",
                                                         "version": 1})
    session.expire_all()
    assert session.get(Dossier, dossier.id).status == "closed"
    history = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert "Note ajoutée" in history and "Statut : Ouvert → Clos" in history


def test_contact_and_dossier_urls_are_missing_pages_out_of_scope(client, auth, login_as, places, customer, setup):
    owner = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, owner)
    contact = session.execute(select(Contact)).scalar_one()
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/dossier", data={"csrf_token": csrf_token(page),
                                                          "dossier_type": setup["dossier_type"].id})
    dossier = session.execute(select(Dossier)).scalar_one()
    auth.logout()

    login_as("accueil_loire", territories=[places["loire_agency"]], permissions=LYON_AGENT)
    token = csrf_token(client.get("/").get_data(as_text=True))
    before = (_count(Dossier), _count(DossierContact), _count(DossierElement), _count(AuditEntry))
    for url in (f"/contacts/{contact.id}", f"/dossiers/{dossier.id}",
                f"/contacts/{contact.id}/deplacer?dossier={dossier.id}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Hélène" not in response.get_data(as_text=True)
    for url, data in ((f"/contacts/{contact.id}/dossier", {"dossier_type": setup["dossier_type"].id}),
                      (f"/contacts/{contact.id}/deplacer", {"dossier": dossier.id}),
                      (f"/dossiers/{dossier.id}/notes", {"body": "intrusion"}),
                      (f"/dossiers/{dossier.id}/statut", {"status": "closed"})):
        assert client.post(url, data={"csrf_token": token, **data}).status_code == 404, url
    # The form refuses the customer too: an identified party out of scope is no customer here.
    assert client.get("/contacts/nouveau", query_string={"party": customer.id}).status_code == 302
    after = (_count(Dossier), _count(DossierContact), _count(DossierElement), _count(AuditEntry))
    assert after[:3] == before[:3]
    assert session.get(Dossier, dossier.id).status == "open"


@pytest.mark.parametrize(("permissions", "url", "method"), [
    (["party.read"], "/contacts/nouveau", "get"),
    (["party.read", "contact.create"], "/contacts/1/dossier", "post"),
    (["party.read", "contact.create"], "/contacts/1/deplacer", "post"),
    (["party.read", "contact.create", "dossier.create"], "/dossiers/1/statut", "post"),
])
def test_each_action_needs_its_permission(client, login_as, places, permissions, url, method):
    login_as("limited", territories=[places["lyon_agency"]], permissions=permissions)
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.get(url) if method == "get" else client.post(url, data={"csrf_token": token})
    assert response.status_code == 403


def test_the_customer_view_shows_the_contacts_and_open_dossiers(client, login_as, places, customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, agent, subject="Échéancier demandé")
    contact = session.execute(select(Contact)).scalar_one()
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/dossier", data={"csrf_token": csrf_token(page),
                                                          "dossier_type": setup["dossier_type"].id})
    dossier = session.execute(select(Dossier)).scalar_one()
    view = client.get(f"/clients/{customer.id}").get_data(as_text=True)
    assert 'id="alert-dossiers"' in view and dossier.reference in view
    assert "Échéancier demandé" in view  # the contact in the history
    assert f'href="/contacts/nouveau?party={customer.id}&amp;contract={setup["contract"].id}' in view
    only_contacts = client.get(f"/clients/{customer.id}/historique?history_type=contact&history_channel=email")
    assert "Échéancier demandé" not in only_contacts.get_data(as_text=True)


# --- Automatic creation by another system: POST /api/v1/dossiers ---------------------------------

def _api_token(*territories: str, permissions=("dossier.create",)) -> str:
    from app.api import tokens

    _token, plaintext = tokens.create_token(system="Facturation", permissions=list(permissions),
                                            territory_codes=list(territories), created_by=None)
    session.commit()
    return plaintext


def test_another_system_opens_a_dossier_through_the_api(client, places, customer, setup):
    token = _api_token("A-LYON")
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {token}"}, json={
        "classification": "RECLA", "subject": "Relance automatique", "parties": [{"number": "CL0700001",
                                                                                   "role": "payer"}],
        "contracts": ["EA-2020-000001"], "invoices": ["F-V1"]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    dossier = session.get(Dossier, body["id"])
    assert body["reference"] == dossier.reference and dossier.origin == "automatic"
    assert dossier.created_by_id is None and dossier.subject == "Relance automatique"
    assert [(p.party_id, p.role) for p in dossier.parties] == [(customer.id, "payer")]
    assert sorted(o.object_type for o in dossier.objects) == ["contract", "invoice"]
    actor = session.execute(select(AuditEntry.actor_label).where(
        AuditEntry.object_type == "dossier", AuditEntry.object_id == str(dossier.id))).scalars().first()
    assert actor.startswith("api:gch_")


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"classification": "NOPE", "parties": [{"number": "CL0700001"}]}, 422, "Classification de dossier inconnue"),
    ({"classification": "RECLA", "parties": []}, 422, "Au moins un interlocuteur"),
    ({"classification": "RECLA", "parties": [{"number": "CL0700001", "role": "boss"}]}, 422, "Rôle"),
    ({"classification": "RECLA", "parties": [{"number": "CL0000000"}]}, 404, "CL0000000"),
    ({"classification": "RECLA", "parties": [{"number": "CL0700001"}], "invoices": "F-V1"}, 422, "liste"),
    ({"classification": "RECLA", "parties": [{"number": "CL0700001"}], "invoices": ["F-XX"]}, 404, "F-XX"),
])
def test_the_api_refuses_bad_input_and_writes_nothing(client, places, customer, setup, body, status, fragment):
    token = _api_token("A-LYON")
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert response.status_code == status
    answer = response.get_json()
    assert any(fragment in message for message in [answer["error"], *answer["fields"].values()]), answer
    assert _count(Dossier) == 0


def test_the_api_sees_only_the_tokens_territories(client, places, customer, setup):
    loire = _api_token("A-LOIRE")
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {loire}"}, json={
        "classification": "RECLA", "parties": [{"number": "CL0700001"}]})
    assert response.status_code == 404  # the same answer as for an unknown number
    identify_only = _api_token("A-LYON", permissions=("identify",))
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {identify_only}"}, json={
        "classification": "RECLA", "parties": [{"number": "CL0700001"}]})
    assert response.status_code == 403
    assert _count(Dossier) == 0


def test_the_contact_page_previews_what_the_classification_template_adds(client, login_as, places, customer, setup):
    plan = DossierType(code="PLAN", label="Échéancier", items=[
        TemplateItem(kind="object", source="overdue_invoices", position=0,
                     rule=[{"fact": "overdue_amount", "op": "gte", "value": "40"}]),
        TemplateItem(kind="party", source="contract_payer", position=1, link_role="payer"),
    ])
    session.add(plan)
    session.commit()
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, agent)
    contact = session.execute(select(Contact)).scalar_one()
    html = client.get(f"/contacts/{contact.id}/dossier/modele", query_string={"dossier_type": plan.id}
                      ).get_data(as_text=True)
    added, left_out = html.split('id="dossier-template-added"')[1], html.split('id="dossier-template-left-out"')[1]
    assert "F-V1" in added.split("</ul>")[0]
    assert "aucun payeur sur le contrat courant" in left_out
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/dossier", data={"csrf_token": csrf_token(page), "dossier_type": plan.id})
    dossier = session.execute(select(Dossier)).scalar_one()
    assert ("invoice", setup["invoice"].id) in {(o.object_type, o.object_id) for o in dossier.objects}
    item = plan.items[0]
    assert {o.origin for o in dossier.objects if o.object_type == "invoice"} == {f"template:{item.id}"}


def test_the_template_preview_and_the_links_panel_reveal_nothing_out_of_scope(client, auth, login_as, places,
                                                                             customer, setup):
    owner = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, owner)
    contact = session.execute(select(Contact)).scalar_one()
    auth.logout()
    login_as("accueil_loire", territories=[places["loire_agency"]], permissions=LYON_AGENT)
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.get(f"/contacts/{contact.id}/dossier/modele",
                      query_string={"dossier_type": setup["dossier_type"].id}).status_code == 404
    html = client.post("/contacts/nouveau/liens", data={
        "csrf_token": token, "party": customer.id, "contract": setup["contract"].id, "channel": "phone",
        "contact_type": setup["type"].id, "retemplate": "1"}).get_data(as_text=True)
    assert "Hélène" not in html and "EA-2020-000001" not in html and "F-V1" not in html


def test_a_save_posted_before_the_panel_caught_up_with_a_new_type_is_not_saved(client, login_as, places, customer,
                                                                                setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    # The panel was built without a type; the type was chosen and Ctrl+Enter pressed at once.
    response = _save(client, setup, customer, agent, links_type="")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Le type de contact a changé" in html
    assert f'value="invoice:{setup["invoice"].id}||template:{setup["type"].items[0].id}"' in html
    assert _count(Contact) == 0
    # Posted again with the panel of that type: saved.
    assert _save(client, setup, customer, agent, links_type=str(setup["type"].id)).status_code == 303


def test_the_dossier_history_shows_no_raw_link_keys(client, login_as, places, customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, agent)
    first = session.execute(select(Contact)).scalar_one()
    page = client.get(f"/contacts/{first.id}").get_data(as_text=True)
    client.post(f"/contacts/{first.id}/dossier", data={"csrf_token": csrf_token(page),
                                                        "dossier_type": setup["dossier_type"].id})
    dossier = session.execute(select(Dossier)).scalar_one()
    _save(client, setup, customer, agent, objects=[f"invoice:{setup['invoice'].id}||added"])
    second = session.execute(select(Contact).order_by(Contact.id.desc())).scalars().first()
    client.post(f"/contacts/{second.id}/deplacer", data={"csrf_token": csrf_token(page), "dossier": dossier.id})
    history = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True).split('id="dossier-history"')[1]
    assert "Contact rattaché" in history and "1 lien(s) ajouté(s)" in history
    assert "invoice:" not in history and "contract:" not in history and "Modification" not in history


def test_the_customer_view_sends_as_many_statements_with_contacts_and_dossiers_as_without(client, login_as, places,
                                                                                         customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)

    def statements() -> int:
        response, sent = statements_sent(client, f"/clients/{customer.id}")
        assert response.status_code == 200
        return len(sent)

    without = statements()
    for _number in range(3):
        _save(client, setup, customer, agent)
    contact = session.execute(select(Contact).order_by(Contact.id)).scalars().first()
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/dossier", data={"csrf_token": csrf_token(page),
                                                          "dossier_type": setup["dossier_type"].id})
    with_them = statements()
    # The history and the dossier alert list them without loading their links, phones or roles.
    assert with_them == without


def test_creating_the_dossier_twice_from_one_contact_opens_one(client, login_as, places, customer, setup):
    agent = login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    _save(client, setup, customer, agent)
    contact = session.execute(select(Contact)).scalar_one()
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "dossier_type": setup["dossier_type"].id}
    first = client.post(f"/contacts/{contact.id}/dossier", data=data)
    second = client.post(f"/contacts/{contact.id}/dossier", data=data)  # a double click
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(Dossier) == 1
    assert "a déjà ouvert le dossier" in client.get(second.headers["Location"]).get_data(as_text=True)
    # Once that dossier is closed, the contact may open another of the same classification.
    dossier = session.execute(select(Dossier)).scalar_one()
    client.post(f"/dossiers/{dossier.id}/statut", data={"csrf_token": data["csrf_token"], "status": "closed",
                                                         "version": dossier.version})
    client.post(f"/contacts/{contact.id}/dossier", data=data)
    assert _count(Dossier) == 2


def test_choosing_a_type_applies_its_default_channel_and_direction_unless_chosen(client, login_as, places,
                                                                                  customer, setup):
    outgoing = ContactType(code="SORTANT", label="Appel sortant", default_channel="letter", default_direction="out")
    session.add(outgoing)
    session.commit()
    login_as("accueil_c", territories=[places["lyon_agency"]], permissions=LYON_AGENT)
    page = client.get("/contacts/nouveau", query_string={"party": customer.id}).get_data(as_text=True)
    assert 'name="channel_chosen" value="0"' in page  # opened from the 360° view without a channel
    base = {"csrf_token": csrf_token(page), "party": customer.id, "contact_type": outgoing.id, "retemplate": "1",
            "channel": "phone", "direction": "in", "channel_chosen": "0", "direction_chosen": "0"}
    html = client.post("/contacts/nouveau/liens", data=base).get_data(as_text=True)
    assert 'id="contact-channel-direction" class="channel-direction" hx-swap-oob="true"' in html
    assert 'value="letter" checked' in html and 'value="out" checked' in html
    # The agent picked the phone by hand (or the caller was identified on the phone): it stays.
    html = client.post("/contacts/nouveau/liens", data={**base, "channel_chosen": "1"}).get_data(as_text=True)
    assert 'value="phone" checked' in html and 'value="out" checked' in html
    identified = client.get("/contacts/nouveau", query_string={"party": customer.id, "channel": "phone",
                                                                "contact_type": outgoing.id}).get_data(as_text=True)
    assert 'value="phone" checked' in identified and 'name="channel_chosen" value="1"' in identified

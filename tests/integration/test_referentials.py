"""Referentials pages: contact types, dossier classifications and their templates (admin.referentials)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.contacts import service as contacts
from app.contacts.models import ContactType, TemplateItem
from app.db import session
from app.dossiers.models import DossierType
from app.parties.models import Party
from app.processes import definitions
from tests.conftest import csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with


def _token(client, url: str = "/referentiels/types-de-contact") -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _audit(object_type: str, object_id: int) -> list[AuditEntry]:
    return list(session.execute(
        select(AuditEntry).where(AuditEntry.object_type == object_type, AuditEntry.object_id == str(object_id))
        .order_by(AuditEntry.id)).scalars())


def _contact_type(code: str = "RENSEIGNEMENT", **fields) -> ContactType:
    contact_type = ContactType(code=code, label=fields.pop("label", "Demande de renseignement"),
                               default_channel="phone", default_direction="in", **fields)
    session.add(contact_type)
    session.commit()
    return contact_type


def _dossier_type(code: str = "RECLAMATION", **fields) -> DossierType:
    dossier_type = DossierType(code=code, label=fields.pop("label", "Réclamation"), **fields)
    session.add(dossier_type)
    session.commit()
    return dossier_type


def _item_data(token: str, **fields) -> dict:
    """An item form's fields, with one empty condition row unless conditions are given."""
    data = {"csrf_token": token, "kind": "party", "source": "current_customer", "link_role": "", "fixed_party": "",
            "fixed_agent": "", "role": "", "territory": "",
            "conditions-0-fact": "", "conditions-0-op": "", "conditions-0-value": ""}
    for number, (fact, op, value) in enumerate(fields.pop("conditions", [])):
        data.update({f"conditions-{number}-fact": fact, f"conditions-{number}-op": op,
                     f"conditions-{number}-value": value})
    data.update(fields)
    return data


# --- Access -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("get", "/referentiels/types-de-contact"),
    ("get", "/referentiels/types-de-contact/nouveau"),
    ("post", "/referentiels/types-de-contact/nouveau"),
    ("get", "/referentiels/types-de-contact/{type_id}"),
    ("post", "/referentiels/types-de-contact/{type_id}"),
    ("get", "/referentiels/classifications"),
    ("post", "/referentiels/classifications/nouvelle"),
    ("post", "/referentiels/classifications/{dossier_type_id}"),
    ("get", "/referentiels/types-de-contact/{type_id}/modele/nouveau"),
    ("post", "/referentiels/types-de-contact/{type_id}/modele/nouveau"),
    ("post", "/referentiels/types-de-contact/{type_id}/modele/{item_id}"),
    ("post", "/referentiels/types-de-contact/{type_id}/modele/{item_id}/supprimer"),
    ("post", "/referentiels/classifications/{dossier_type_id}/modele/nouveau"),
])
def test_referentials_need_admin_referentials(client, login_as, method, path):
    contact_type = _contact_type(items=[TemplateItem(kind="object", source="last_invoice", position=0)])
    dossier_type = _dossier_type()
    login_as("accueil")  # traces contacts, but does not configure them
    token = _token(client, "/")
    url = path.format(type_id=contact_type.id, dossier_type_id=dossier_type.id, item_id=contact_type.items[0].id)
    data = {"csrf_token": token, "code": "PIRATE", "label": "Piraté", "default_direction": "in", "kind": "object",
            "source": "last_reading"}
    response = client.get(url) if method == "get" else client.post(url, data=data)
    assert response.status_code == 403
    assert "habilitation" in response.get_data(as_text=True)
    assert _count(TemplateItem) == 1 and session.get(TemplateItem, contact_type.items[0].id).source == "last_invoice"
    assert session.execute(select(ContactType.code)).scalars().all() == ["RENSEIGNEMENT"]
    assert session.get(ContactType, contact_type.id).label == "Demande de renseignement"


def test_navigation_link_only_for_referential_administrators(client, login_as, auth):
    login_as("accueil")
    assert "/referentiels/" not in client.get("/").get_data(as_text=True)
    auth.logout()
    login_as("concepteur")
    page = client.get("/").get_data(as_text=True)
    assert 'id="referentials-link"' in page and "/referentiels/types-de-contact" in page
    assert client.get("/referentiels").headers["Location"].endswith("/referentiels/types-de-contact")


# --- Contact types ----------------------------------------------------------------------------

def _deploy(*keys: str) -> None:
    definitions.deploy_directory(Path(__file__).resolve().parents[2] / "bpmn", list(keys))
    session.commit()


def test_create_and_edit_a_contact_type_is_audited(client, login_as):
    _deploy("payment_difficulty")
    proposed = _dossier_type("PLAN_PAIEMENT", label="Difficulté de paiement")
    designer = login_as("concepteur")
    response = client.post("/referentiels/types-de-contact/nouveau", data={
        "csrf_token": _token(client), "code": " difficulte_paiement ", "label": "Difficulté de paiement",
        "default_channel": "phone", "default_direction": "in", "process_key": "payment_difficulty",
        "dossier_type": str(proposed.id), "active": "y", "position": "",
    })
    assert response.status_code == 302
    contact_type = session.execute(select(ContactType).where(ContactType.code == "DIFFICULTE_PAIEMENT")).scalar_one()
    assert response.headers["Location"].endswith(f"/referentiels/types-de-contact/{contact_type.id}")
    assert (contact_type.label, contact_type.default_channel, contact_type.default_direction) == \
        ("Difficulté de paiement", "phone", "in")
    assert contact_type.process_key == "payment_difficulty" and contact_type.dossier_type_id == proposed.id
    assert contact_type.active and contact_type.position == 0

    listing = client.get("/referentiels/types-de-contact").get_data(as_text=True)
    assert "DIFFICULTE_PAIEMENT" in listing and "payment_difficulty" in listing and "Téléphone" in listing

    url = f"/referentiels/types-de-contact/{contact_type.id}"
    response = client.post(url, data={
        "csrf_token": _token(client, url), "code": "AUTRE_CODE", "label": "Difficulté de paiement (courrier)",
        "default_channel": "letter", "default_direction": "in", "process_key": "", "dossier_type": "",
        "active": "y", "position": "3",
    })
    assert response.status_code == 302
    session.refresh(contact_type)
    assert contact_type.code == "DIFFICULTE_PAIEMENT"  # immutable: the posted code is ignored
    assert (contact_type.label, contact_type.default_channel, contact_type.position) == \
        ("Difficulté de paiement (courrier)", "letter", 3)
    assert contact_type.process_key is None and contact_type.dossier_type_id is None

    created, updated = _audit("contact_type", contact_type.id)
    assert (created.action, created.actor_id) == ("create", designer.id)
    assert created.changes["code"] == [None, "DIFFICULTE_PAIEMENT"]
    assert updated.action == "update" and updated.actor_label == designer.login
    assert updated.changes["default_channel"] == ["phone", "letter"]
    assert updated.changes["dossier_type_id"] == [proposed.id, None]
    assert "code" not in updated.changes
    page = client.get(url).get_data(as_text=True)
    assert "Historique" in page and 'name="code"' not in page


@pytest.mark.parametrize("code,message", [
    ("RENSEIGNEMENT", "Ce code est déjà utilisé."),
    ("renseignement", "Ce code est déjà utilisé."),
    ("AVEC ESPACE", "Code invalide"),
    ("É", "Code invalide"),
])
def test_duplicate_or_malformed_contact_type_code_is_refused(client, login_as, code, message):
    _contact_type("RENSEIGNEMENT")
    login_as("concepteur")
    audit_before = _count(AuditEntry)
    response = client.post("/referentiels/types-de-contact/nouveau", data={
        "csrf_token": _token(client), "code": code, "label": "Doublon", "default_channel": "",
        "default_direction": "in", "dossier_type": "", "active": "y",
    })
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _count(ContactType) == 1 and _count(AuditEntry) == audit_before


def test_a_deactivated_classification_cannot_be_newly_proposed(client, login_as):
    retired = _dossier_type("ANCIEN", active=False)
    login_as("concepteur")
    page = client.get("/referentiels/types-de-contact/nouveau").get_data(as_text=True)
    assert f'value="{retired.id}"' not in page
    response = client.post("/referentiels/types-de-contact/nouveau", data={
        "csrf_token": _token(client), "code": "NOUVEAU", "label": "Nouveau", "default_direction": "in",
        "dossier_type": str(retired.id), "active": "y",
    })
    assert response.status_code == 422
    assert "Choisissez une classification active." in response.get_data(as_text=True)
    assert _count(ContactType) == 0


def test_deactivation_hides_the_type_from_the_contact_capture(client, app, login_as):
    contact_type = _contact_type()
    with app.app_context():  # only around the service call: requests must not share its g
        assert contact_type.id in [t.id for t in contacts.active_types()]
    login_as("concepteur")
    url = f"/referentiels/types-de-contact/{contact_type.id}"
    response = client.post(url, data={  # "active" unchecked: not posted
        "csrf_token": _token(client, url), "label": contact_type.label, "default_channel": "phone",
        "default_direction": "in", "dossier_type": "", "position": "0",
    })
    assert response.status_code == 302
    session.refresh(contact_type)
    assert not contact_type.active
    with app.app_context():
        assert contact_type.id not in [t.id for t in contacts.active_types()]
    assert session.get(ContactType, contact_type.id) is not None  # deactivated, never deleted
    (entry,) = [e for e in _audit("contact_type", contact_type.id) if e.action == "update"]
    assert entry.changes == {"active": [True, False]}
    assert "désactivé" in client.get("/referentiels/types-de-contact").get_data(as_text=True)


# --- Dossier classifications ------------------------------------------------------------------

def test_create_and_edit_a_classification(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    url = "/referentiels/classifications/nouvelle"
    response = client.post(url, data={"csrf_token": _token(client, url), "code": "EMMENAGEMENT",
                                      "label": "Emménagement", "process_key": "move_in", "target_days": "10",
                                      "active": "y", "position": ""})
    assert response.status_code == 302
    dossier_type = session.execute(select(DossierType).where(DossierType.code == "EMMENAGEMENT")).scalar_one()
    assert (dossier_type.label, dossier_type.process_key, dossier_type.target_days, dossier_type.active) == \
        ("Emménagement", "move_in", 10, True)
    assert "10 jours" in client.get("/referentiels/classifications").get_data(as_text=True)

    edit = f"/referentiels/classifications/{dossier_type.id}"
    response = client.post(edit, data={"csrf_token": _token(client, edit), "label": "Emménagement",
                                       "process_key": "move_in", "target_days": "", "position": "2"})
    assert response.status_code == 302
    session.refresh(dossier_type)
    assert dossier_type.target_days is None and not dossier_type.active and dossier_type.position == 2
    assert [e.action for e in _audit("dossier_type", dossier_type.id)] == ["create", "update"]

    duplicate = client.post(url, data={"csrf_token": _token(client, url), "code": "EMMENAGEMENT",
                                       "label": "Autre", "active": "y"})
    assert duplicate.status_code == 422 and "Ce code est déjà utilisé." in duplicate.get_data(as_text=True)
    assert _count(DossierType) == 1


def test_a_classification_names_a_deployed_process_and_may_start_it_at_opening(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    url = "/referentiels/classifications/nouvelle"
    unknown = client.post(url, data={"csrf_token": _token(client, url), "code": "DEMENAGEMENT",
                                     "label": "Déménagement", "process_key": "move_ot", "active": "y"})
    assert unknown.status_code == 422
    assert "Aucun processus déployé ne porte la clé « move_ot »" in unknown.get_data(as_text=True)
    nothing = client.post(url, data={"csrf_token": _token(client, url), "code": "DEMENAGEMENT",
                                     "label": "Déménagement", "process_key": "", "auto_start": "y", "active": "y"})
    assert nothing.status_code == 422 and "Indiquez le processus à lancer" in nothing.get_data(as_text=True)
    assert _count(DossierType) == 0
    created = client.post(url, data={"csrf_token": _token(client, url), "code": "EMMENAGEMENT",
                                     "label": "Emménagement", "process_key": "move_in", "auto_start": "y",
                                     "active": "y"})
    assert created.status_code == 302
    dossier_type = session.execute(select(DossierType).where(DossierType.code == "EMMENAGEMENT")).scalar_one()
    assert dossier_type.auto_start and dossier_type.process_key == "move_in"
    edit = f"/referentiels/classifications/{dossier_type.id}"
    assert re.search(r'<input[^>]*\bchecked\b[^>]*name="auto_start"|<input[^>]*name="auto_start"[^>]*\bchecked\b',
                     client.get(edit).get_data(as_text=True))


@pytest.mark.parametrize("days", ["0", "-3", "abc"])
def test_target_time_must_be_a_positive_number_of_days(client, login_as, days):
    login_as("concepteur")
    url = "/referentiels/classifications/nouvelle"
    response = client.post(url, data={"csrf_token": _token(client, url), "code": "RECLAMATION",
                                      "label": "Réclamation", "target_days": days, "active": "y"})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert _count(DossierType) == 0


# --- Template items ---------------------------------------------------------------------------

def test_an_item_of_each_kind_is_saved_and_shown(client, login_as):
    contact_type = _contact_type()
    region = TerritoryFactory(kind="region", code="R-ARA", name="Auvergne-Rhône-Alpes")
    lyon = TerritoryFactory(parent=region, code="A-LYON", name="Agence de Lyon")
    back_office = role_with("back_office")
    party = Party(number="CL0700099", kind="organisation", company_name="CCAS de Lyon", status="customer")
    person = Party(number="CL0700098", first_name="Hélène", last_name="Lefèvre", civility="Mme", status="customer")
    session.add_all([party, person])
    session.commit()
    referent = AgentFactory(login="referent.lyon", full_name="Paul Référent")
    login_as("concepteur")
    new = f"/referentiels/types-de-contact/{contact_type.id}/modele/nouveau"
    token = _token(client, new)
    posts = [
        _item_data(token, kind="party", source="fixed_party", link_role="third_party", fixed_party="cl0700099",
                   conditions=[("channel", "in", "phone, front_desk")]),
        _item_data(token, kind="agent", source="fixed_agent", link_role="copy", fixed_agent="Referent.Lyon",
                   fixed_party="CL0700099"),  # the fixed party of another source is not kept
        _item_data(token, kind="agent", source="role_in_territory", link_role="responsible", role="back_office",
                   territory="A-LYON", conditions=[("", "", ""), ("territory", "under", "R-ARA")]),
        _item_data(token, kind="object", source="overdue_invoices",
                   conditions=[("overdue_amount", "gt", "0"), ("vulnerable", "is", "non")]),
    ]
    for data in posts:
        response = client.post(new, data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Location"].endswith(f"/referentiels/types-de-contact/{contact_type.id}#template")

    session.refresh(contact_type)
    fixed_party, fixed_agent, by_role, invoices = contact_type.items
    assert [i.position for i in contact_type.items] == [0, 1, 2, 3]
    assert (fixed_party.kind, fixed_party.link_role, fixed_party.fixed_party_id) == ("party", "third_party", party.id)
    assert fixed_party.rule == [{"fact": "channel", "op": "in", "value": ["front_desk", "phone"]}]
    assert (fixed_agent.fixed_agent_id, fixed_agent.fixed_party_id, fixed_agent.rule) == (referent.id, None, None)
    assert (by_role.role_id, by_role.territory_id) == (back_office.id, lyon.id)
    assert by_role.rule == [{"fact": "territory", "op": "under", "value": "R-ARA"}]
    assert (invoices.kind, invoices.link_role) == ("object", None)
    assert invoices.rule == [{"fact": "overdue_amount", "op": "gt", "value": "0.00"},
                             {"fact": "vulnerable", "op": "is", "value": False}]

    page = client.get(f"/referentiels/types-de-contact/{contact_type.id}").get_data(as_text=True)
    for shown in ("Un interlocuteur désigné", "CL0700099 — CCAS de Lyon", "Tiers",
                  "Canal du contact est parmi Accueil physique, Téléphone",
                  "Un agent désigné", "referent.lyon — Paul Référent", "En copie",
                  "Les agents d&#39;un rôle sur le territoire", "Agence de Lyon", "Territoire est dans R-ARA",
                  "Les factures impayées échues", "Objet métier", "Montant impayé échu &gt; 0,00", "Toujours"):
        assert shown in page, shown

    # A private customer cannot be designated: a designer must not look people up by number.
    refused = client.post(new, data=_item_data(token, kind="party", source="fixed_party", link_role="third_party",
                                               fixed_party="CL0700098"))
    assert refused.status_code == 422
    assert "un interlocuteur désigné est un organisme" in refused.get_data(as_text=True)
    assert "Hélène" not in refused.get_data(as_text=True)

    # Each creation is audited, with its owner.
    entries = session.execute(select(AuditEntry).where(AuditEntry.object_type == "template_item")).scalars().all()
    assert len(entries) == 4 and all(e.action == "create" for e in entries)
    assert {e.changes["contact_type_id"][1] for e in entries} == {contact_type.id}


def test_a_classification_has_its_template_too(client, login_as):
    dossier_type = _dossier_type()
    login_as("concepteur")
    new = f"/referentiels/classifications/{dossier_type.id}/modele/nouveau"
    response = client.post(new, data=_item_data(_token(client, new), kind="object", source="last_invoice"))
    assert response.status_code == 302
    (item,) = session.get(DossierType, dossier_type.id).items
    assert (item.dossier_type_id, item.contact_type_id, item.source) == (dossier_type.id, None, "last_invoice")
    assert "La dernière facture" in client.get(f"/referentiels/classifications/{dossier_type.id}").get_data(
        as_text=True)


@pytest.mark.parametrize("conditions,message", [
    ([("overdue_amount", "gt", "beaucoup")], "Condition 1 : « beaucoup » n&#39;est pas un nombre."),
    ([("channel", "in", "phone"), ("channel", "in", "pigeon")], "Condition 2 : Valeur inconnue"),
    ([("channel", "gt", "phone")], "Condition 1 : Opérateur « gt » impossible"),
    ([("territory", "under", "NULLE-PART")], "Condition 1 : Territoire inconnu : NULLE-PART."),
    ([("vulnerable", "is", "peut-être")], "attend oui ou non"),
    ([("", "", "phone")], "Condition 1 : choisissez un critère."),
    ([("open_dossier_types", "includes", " , ")], "Condition 1 : Donnez au moins une valeur."),
])
def test_a_bad_rule_is_refused_with_its_message_and_nothing_written(client, login_as, conditions, message):
    contact_type = _contact_type()
    login_as("concepteur")
    new = f"/referentiels/types-de-contact/{contact_type.id}/modele/nouveau"
    audit_before = _count(AuditEntry)
    response = client.post(new, data=_item_data(_token(client, new), kind="object", source="last_invoice",
                                                 conditions=conditions))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="rule-error"' in page and message in page
    assert _count(TemplateItem) == 0 and _count(AuditEntry) == audit_before


def test_a_bad_rule_leaves_an_existing_item_as_it_was(client, login_as):
    contact_type = _contact_type(items=[TemplateItem(kind="object", source="last_invoice", position=0,
                                                     rule=[{"fact": "overdue_amount", "op": "gt", "value": "0"}])])
    item = contact_type.items[0]
    login_as("concepteur")
    url = f"/referentiels/types-de-contact/{contact_type.id}/modele/{item.id}"
    form = client.get(url).get_data(as_text=True)
    assert 'value="0.00"' in form  # the stored rule, as rows to edit
    audit_before = _count(AuditEntry)
    response = client.post(url, data=_item_data(_token(client, url), kind="object", source="current_meter",
                                                 conditions=[("overdue_amount", "gte", "x")]))
    assert response.status_code == 422
    session.refresh(item)
    assert item.source == "last_invoice" and item.rule == [{"fact": "overdue_amount", "op": "gt", "value": "0"}]
    assert _count(AuditEntry) == audit_before


@pytest.mark.parametrize("fields,message", [
    ({"kind": "party", "source": "last_invoice"},
     "La source « La dernière facture » ne convient pas à un élément de nature « Interlocuteur »."),
    ({"kind": "object", "source": "current_agent"}, "ne convient pas à un élément de nature « Objet métier »"),
    ({"kind": "agent", "source": ""}, "ne convient pas"),
    ({"kind": "object", "source": "last_invoice", "link_role": "payer"}, "Un objet métier n&#39;a pas de rôle"),
    ({"kind": "party", "source": "current_customer", "link_role": "copy"}, "Ce rôle ne convient pas"),
    ({"kind": "party", "source": "fixed_party"}, "Donnez le n° client de l&#39;interlocuteur désigné."),
    ({"kind": "party", "source": "fixed_party", "fixed_party": "CL9999999"}, "Aucun organisme n&#39;a le n° CL9999999"),
    ({"kind": "agent", "source": "fixed_agent", "fixed_agent": "personne"}, "Aucun agent n&#39;a l&#39;identifiant"),
    ({"kind": "agent", "source": "role_in_territory"}, "Choisissez le rôle des agents à proposer."),
])
def test_an_inconsistent_item_is_refused_next_to_its_field(client, login_as, fields, message):
    contact_type = _contact_type()
    login_as("concepteur")
    new = f"/referentiels/types-de-contact/{contact_type.id}/modele/nouveau"
    response = client.post(new, data=_item_data(_token(client, new), **fields))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'class="field-error"' in page
    assert _count(TemplateItem) == 0


def test_add_condition_shows_one_more_row_and_saves_nothing(client, login_as):
    contact_type = _contact_type()
    login_as("concepteur")
    new = f"/referentiels/types-de-contact/{contact_type.id}/modele/nouveau"
    response = client.post(new, data=_item_data(_token(client, new), kind="object", source="last_invoice",
                                                add_condition="1", conditions=[("overdue_amount", "gt", "10")]))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="conditions-1-fact"' in page and 'name="conditions-2-fact"' not in page
    assert 'value="10"' in page  # what was typed is kept
    assert _count(TemplateItem) == 0


def test_items_move_and_are_deleted_with_an_audit_entry(client, login_as):
    contact_type = _contact_type(items=[
        TemplateItem(kind="object", source="last_invoice", position=0),
        TemplateItem(kind="object", source="last_reading", position=1),
        TemplateItem(kind="party", source="contract_payer", position=2),
    ])
    first, second, third = (item.id for item in contact_type.items)
    login_as("concepteur")
    base = f"/referentiels/types-de-contact/{contact_type.id}/modele"
    token = _token(client, f"/referentiels/types-de-contact/{contact_type.id}")
    assert client.post(f"{base}/{third}/deplacer", data={"csrf_token": token, "direction": "up"}).status_code == 302
    session.refresh(contact_type)
    assert [i.source for i in contact_type.items] == ["last_invoice", "contract_payer", "last_reading"]
    assert _audit("template_item", third)[-1].changes == {"position": [2, 1]}

    response = client.post(f"{base}/{first}/supprimer", data={"csrf_token": token})
    assert response.status_code == 302
    session.refresh(contact_type)
    assert [(i.source, i.position) for i in contact_type.items] == [("contract_payer", 0), ("last_reading", 1)]
    assert session.get(TemplateItem, first) is None
    *_, deleted = _audit("template_item", first)
    assert deleted.action == "delete" and deleted.changes["source"] == ["last_invoice", None]

    other = _contact_type("AUTRE", label="Autre")
    response = client.post(f"/referentiels/types-de-contact/{other.id}/modele/{second}/supprimer",
                           data={"csrf_token": token})
    assert response.status_code == 404  # an item is reached through its own type only
    assert session.get(TemplateItem, second) is not None

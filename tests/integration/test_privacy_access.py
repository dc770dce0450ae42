"""The GDPR right of access (app.privacy): the export of everything held about a party — identity
with bank details, contracts and everything hanging from them, contacts, dossiers with their
elements and process answers, mails, audit entries, who consulted the 360° view — as JSON and as
a printable page; another person's records where the party is only third party or landlord
reduced to one line (none of that person's data), its own records in full with the other parties
by role; every table with a foreign key to party.id covered; refused without
``party.privacy`` (403) or outside the agent's territories (404); each export traced."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import Base, session
from app.documents import templates as registry
from app.dossiers import service as dossiers
from app.dossiers.models import DossierElement, ElementKind
from app.dunning.models import DunningBlock, PaymentPlan
from app.mails import outbox
from app.parties.models import PartyConsultation
from app.privacy import access
from app.processes import service as processes
from app.processes.models import ProcessMessage
from tests.conftest import Auth
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import NOW, contact_type, item
from tests.integration.test_contacts_dossiers import new_contact
from tests.integration.test_process_instances import (  # noqa: F401 (fixture)
    IDENTITY,
    open_dossier,
    the_task,
    world_fixture,
)

IBAN = "FR7630006000011234567890189"

# Tables with a foreign key to party.id that the export deliberately leaves out, and why.
LEFT_OUT = {
    # The search index: a copy of the identity (normalised names, phones, territory paths) rebuilt
    # from the party row; the identity section already holds every value it is made of.
    "party_search",
}


@pytest.fixture
def dpo(world):
    """The data protection officer: party.privacy over the whole region."""
    return AgentFactory(full_name="Diane Délégation", roles=[role_with("dpo")], territories=[world.places["region"]])


@pytest.fixture
def filled(world):
    """Hélène with data everywhere: bank details, a payment, a payment plan, a dunning block, a contact
    with notes, a dossier with a note, a letter, a mail and a process step answered, a message for
    the process, a template naming her, a consultation of her page."""
    from app.contracts.models import Payment

    helene = world.helene
    helene.birth_date, helene.iban, helene.bic = date(1979, 5, 17), IBAN, "AGRIFRPP882"
    session.add_all([
        Payment(external_ref="CW-PAY-1", invoice=world.invoices["F-0"], paid_on=date(2025, 6, 20),
                amount=Decimal("60.00"), method="carte"),
        PaymentPlan(contract_id=world.contract.id, starts_on=date(2026, 3, 1), ends_on=date(2026, 8, 31),
                    instalments=6),
        DunningBlock(contract_id=world.contract.id, until=date(2026, 4, 30), reason="Réclamation en cours d'examen",
                     created_by_id=world.agent.id),
    ])
    session.commit()
    contact = new_contact(world, subject="Question sur la facture CW-F-1",
                          notes="La cliente conteste l'index relevé en février.")
    session.commit()
    dossier = open_dossier(world, "move_in")
    instance = processes.start(key="move_in", agent=world.agent, dossier=dossier)
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=IDENTITY)
    session.commit()
    dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="Appel de la cliente",
                      body="Rappeler après le 20 mars pour la date d'emménagement.")
    letter = DossierElement(dossier_id=dossier.id, kind=ElementKind.LETTER, title="Lettre de bienvenue",
                            file=registry.stored_file(f"{dossier.reference}-bienvenue.docx", registry.DOCX_MEDIA_TYPE,
                                                      b"PK-docx"), created_at=NOW)
    session.add(letter)
    session.flush()
    outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Votre emménagement",
                      body="Bonjour,\nvotre dossier d'emménagement est ouvert.", attachment=letter, agent=world.agent)
    session.add(ProcessMessage(instance_id=instance.id, name="releve_recu", payload={"index": 5230},
                               source="Téléphonie"))
    session.add(PartyConsultation(party_id=helene.id, agent_id=world.colleague.id, consulted_at=NOW))
    contact_type(item("party", "fixed_party", link_role="third_party", fixed_party_id=helene.id),
                 label="Signalement au service social")
    session.commit()
    world.filled_contact, world.filled_dossier, world.filled_instance = contact, dossier, instance
    return world


class AgentClient:
    """A test client of its own, logged in as one agent. app_ctx keeps one app context (and g)
    across requests: each request forgets the user and the CSRF token cached there by another."""

    def __init__(self, app, agent) -> None:
        self.client = app.test_client()
        self._forget()
        assert Auth(self.client).login(agent.login).status_code == 302

    @staticmethod
    def _forget() -> None:
        from flask import g

        g.pop("_login_user", None)
        g.pop("csrf_token", None)

    def get(self, url: str):
        self._forget()
        return self.client.get(url)


def logged_in(app, agent) -> AgentClient:
    return AgentClient(app, agent)


def _all_strings(data) -> str:
    return json.dumps(data, ensure_ascii=False)


# --- What the export holds --------------------------------------------------------------------

def test_the_export_holds_everything_about_the_party(filled):
    world = filled
    export = access.collect(world.helene.id)
    sections = export["sections"]
    assert list(sections) == ["identity", "phones", "emails", "contracts", "contacts", "dossiers", "mails",
                              "templates", "audit", "consultations"]
    assert all(section["title"] for section in sections.values())
    assert sections["identity"]["title"] == "Identité"

    identity = sections["identity"]["data"]
    assert identity["first_name"] == "Hélène" and identity["last_name"] == "Lefèvre"
    assert identity["iban"] == IBAN and identity["bic"] == "AGRIFRPP882"
    assert identity["birth_date"] == "1979-05-17" and identity["territory"] == "Lyon"
    assert identity["status"] == "Client" and "anonymised_at" in identity
    assert sections["phones"]["data"][0]["number"] == "+33612345678"
    assert sections["emails"]["data"] == [{"address": "helene@example.fr", "position": 0}]

    [contract] = sections["contracts"]["data"]
    assert contract["number"] == "CW-EAU-1" and contract["roles"] == ["Titulaire"]
    assert contract["service_point"]["national_id"] == world.contract.service_point.national_id
    assert {m["serial"] for m in contract["meters"]} == {"CW-M-OLD", "CW-M-NEW"}
    assert [(r["read_on"], r["index_value"]) for r in contract["readings"]] == [("2024-03-01", 120),
                                                                                ("2026-02-20", 340)]
    invoices = {i["number"]: i for i in contract["invoices"]}
    assert set(invoices) == {"CW-F-0", "CW-F-1", "CW-F-C", "CW-F-2", "CW-F-3"}
    assert invoices["CW-F-1"]["amount"] == "84.20" and invoices["CW-F-1"]["due_on"] == "2026-01-05"
    assert invoices["CW-F-0"]["payments"] == [{"paid_on": "2025-06-20", "amount": "60.00", "method": "Carte bancaire",
                                               "external_ref": "CW-PAY-1"}]
    assert contract["payment_plans"][0]["instalments"] == 6
    assert contract["dunning_blocks"][0]["reason"] == "Réclamation en cours d'examen"
    assert contract["dunning_blocks"][0]["created_by"] == "Alice Accueil"

    contacts = {c["id"]: c for c in sections["contacts"]["data"]}
    contact = contacts[world.filled_contact.id]
    assert contact["subject"] == "Question sur la facture CW-F-1"
    assert contact["notes"] == "La cliente conteste l'index relevé en février."
    assert contact["channel"] == "Téléphone" and contact["direction"] == "Entrant"
    assert contact["contact_type"] == "Question sur une facture" and contact["roles"] == ["Client"]
    assert contact["agents"] == ["Émetteur : Alice Accueil"]
    assert any("CW-EAU-1" in label for label in contact["objects"])

    [dossier] = [d for d in sections["dossiers"]["data"] if d["id"] == world.filled_dossier.id]
    assert dossier["reference"] == world.filled_dossier.reference and dossier["status"]
    assert dossier["classification"] == "Dossier move_in"
    elements = {e["title"]: e for e in dossier["elements"]}
    assert elements["Appel de la cliente"]["body"] == "Rappeler après le 20 mars pour la date d'emménagement."
    assert elements["Lettre de bienvenue"]["kind"] == "Courrier"
    assert elements["Lettre de bienvenue"]["files"] == [f"{world.filled_dossier.reference}-bienvenue.docx"]
    [process] = dossier["processes"]
    assert process["id"] == world.filled_instance.id
    done = [t for t in process["tasks"] if t["answers"]]
    assert len(done) == 1 and done[0]["completed_by"] == "Alice Accueil"
    assert {"helene@example.fr", "Oui"} <= {a["answer"] for a in done[0]["answers"]}
    assert all(a["question"] for a in done[0]["answers"])
    assert process["messages"][0]["name"] == "releve_recu" and process["messages"][0]["payload"] == {"index": 5230}

    [mail] = sections["mails"]["data"]
    assert mail["recipient"] == "helene@example.fr" and mail["subject"] == "Votre emménagement"
    assert mail["body"].startswith("Bonjour,") and mail["sent_to_your_address"] == "Oui"
    assert "Lettre de bienvenue" in mail["attachment"] and mail["dossier"] == world.filled_dossier.reference

    assert sections["templates"]["data"] == [{"owner": "Type de contact : Signalement au service social",
                                              "source": "Un interlocuteur désigné", "link_role": "Tiers"}]

    audited = {(e["object"], e["action"]) for e in sections["audit"]["data"]}
    assert (f"Fiche n° {world.helene.id}", "Modification") in audited  # the bank details set above
    assert (f"Contact n° {world.filled_contact.id}", "Création") in audited
    assert (f"Dossier n° {world.filled_dossier.id}", "Création") in audited
    assert any(obj.startswith("Plan d'action") for obj, _action in audited)
    assert any(obj.startswith("Courriel") for obj, _action in audited)
    iban_change = [e for e in sections["audit"]["data"] if e["changes"] and "iban" in e["changes"]]
    assert iban_change and iban_change[-1]["changes"]["iban"][1] == IBAN

    assert sections["consultations"]["data"] == [{"consulted_at": NOW.isoformat(), "agent": "Claire Collègue"}]
    assert access.counts(export)["contracts"] == 1 and access.counts(export)["identity"] == 1
    json.dumps(export)  # plain JSON-able data


def test_the_other_parties_data_stays_out(filled):
    """Marc (co-holder of the same contract) gets his own export, without Hélène's contact or dossier."""
    export = access.collect(filled.marc.id)
    assert export["sections"]["identity"]["data"]["first_name"] == "Marc"
    assert export["sections"]["contacts"]["data"] == [] and export["sections"]["dossiers"]["data"] == []
    assert export["sections"]["consultations"]["data"] == []
    assert IBAN not in _all_strings(export)
    assert "Réclamation en cours d'examen" in _all_strings(export)  # the contract is his too


def test_readings_outside_the_contract_period_are_not_the_partys(filled):
    filled.contract.start_date = date(2025, 1, 1)
    session.commit()
    [contract] = access.collect(filled.helene.id)["sections"]["contracts"]["data"]
    assert [r["read_on"] for r in contract["readings"]] == ["2026-02-20"]
    assert [m["serial"] for m in contract["meters"]] == ["CW-M-NEW"]


def test_every_table_referencing_a_party_is_exported(filled):
    """Walk the metadata: each table with a foreign key to party.id is exported by a section, or left
    out on purpose (LEFT_OUT above, with the reason). And with data everywhere, no such section is
    empty: the export does read the table."""
    referencing = {table.name for table in Base.metadata.tables.values()
                   for fk in table.foreign_keys if fk.column.table.name == "party"}
    referencing.add("party")
    missing = referencing - set(access.SOURCES) - LEFT_OUT
    assert not missing, f"tables holding a party's data that the privacy export ignores: {sorted(missing)}"
    assert not (set(access.SOURCES) & LEFT_OUT)
    assert not set(access.SOURCES) - referencing, "SOURCES names a table that no longer references party.id"
    counts = access.counts(access.collect(filled.helene.id))
    assert all(counts[access.SOURCES[table]] for table in referencing - LEFT_OUT), counts


# --- The pages --------------------------------------------------------------------------------

def test_the_page_counts_and_the_downloads_hold_the_data(filled, dpo, client, auth):
    auth.login(dpo.login)
    base = f"/interlocuteurs/{filled.helene.id}/donnees-personnelles"
    page = client.get(f"{base}/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Données personnelles (RGPD)" in html and 'id="count-contracts"' in html
    assert f"{base}/export.html" in html and f"{base}/export.json" in html

    response = client.get(f"{base}/export.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    assert f"donnees-personnelles-{filled.helene.number}.json" in response.headers["Content-Disposition"]
    raw = response.get_data(as_text=True)
    assert "Hélène" in raw and "\\u00e9" not in raw  # UTF-8, not escaped
    data = json.loads(raw)
    assert data["sections"]["identity"]["data"]["iban"] == IBAN
    assert data["sections"]["contacts"]["data"][0]["notes"] == "La cliente conteste l'index relevé en février."

    response = client.get(f"{base}/export.html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "attachment" in response.headers["Content-Disposition"]
    html = response.get_data(as_text=True)
    assert "<style>" in html and "@media print" in html and 'lang="fr"' in html
    assert "style-src 'self' 'sha256-" in response.headers["Content-Security-Policy"]
    for shown in ("Identité", "Contrats", "Dossiers", "Consultations de votre fiche", IBAN, "AGRIFRPP882",
                  "CW-EAU-1", "CW-F-1", "84,20", "La cliente conteste l&#39;index relevé en février.",
                  "Rappeler après le 20 mars", f"{filled.filled_dossier.reference}-bienvenue.docx",
                  "Votre emménagement", "helene@example.fr", "releve_recu", "Claire Collègue",
                  "Signalement au service social", "17/05/1979"):
        assert shown in html, shown


def test_each_export_is_traced(filled, dpo, client, auth):
    auth.login(dpo.login)
    base = f"/interlocuteurs/{filled.helene.id}/donnees-personnelles"
    client.get(f"{base}/")  # the summary exports nothing
    client.get(f"{base}/export.json")
    client.get(f"{base}/export.html")
    entries = session.execute(select(AuditEntry).where(AuditEntry.action == "privacy_export")
                              .order_by(AuditEntry.id)).scalars().all()
    assert [(e.object_type, e.object_id, e.actor_id, e.changes) for e in entries] == [
        ("party", str(filled.helene.id), dpo.id, {"format": "json"}),
        ("party", str(filled.helene.id), dpo.id, {"format": "html"}),
    ]
    # The next export lists the previous ones.
    audit = access.collect(filled.helene.id)["sections"]["audit"]["data"]
    assert [e["actor"] for e in audit if e["action"] == "Export des données personnelles"] == [dpo.full_name] * 2


def test_the_party_page_links_to_it_only_for_privacy_agents(app, filled, dpo):
    page = f"/clients/{filled.helene.id}"
    assert 'id="action-privacy"' in logged_in(app, dpo).get(page).get_data(as_text=True)
    assert 'id="action-privacy"' not in logged_in(app, filled.agent).get(page).get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/export.json", "/export.html"])
def test_refused_without_the_permission_or_outside_the_territories(app, filled, path):
    url = f"/interlocuteurs/{filled.helene.id}/donnees-personnelles{path}"
    # Without party.privacy, even with party.read and party.sensitive over the region: 403.
    assert logged_in(app, filled.bo_region).get(url).status_code == 403
    # A DPO of the Loire agency: Hélène (Lyon) reads as missing, Bernard (Saint-Étienne) is there.
    loire = logged_in(app, AgentFactory(roles=[role_with("dpo")], territories=[filled.places["loire_agency"]]))
    assert loire.get(url).status_code == 404
    assert loire.get(f"/interlocuteurs/{filled.bernard.id}/donnees-personnelles{path}").status_code == 200
    assert loire.get(f"/interlocuteurs/999999/donnees-personnelles{path}").status_code == 404
    exports = session.execute(select(AuditEntry.object_id).where(AuditEntry.action == "privacy_export")).scalars()
    assert set(exports) <= {str(filled.bernard.id)}


# --- Another person's records: by role --------------------------------------------------------

# What belongs to Zéphyrine Quintavalle, a customer on whose records the SCI is named as third party
# (contact, dossier) or as landlord (contract): none of it may reach the SCI's export.
MARKERS = ("Zéphyrine", "Quintavalle", "CW0000099", "MARQUEUR-OBJET-ZQ", "MARQUEUR-NOTE-ZQ", "MARQUEUR-DOSSIER-ZQ",
           "MARQUEUR-ELEMENT-ZQ", "MARQUEUR-COURRIEL-ZQ", "MARQUEUR-TIERS-ZQ", "marqueur-processus-zq@example.fr",
           "CW-F-ZQ-SECRETE", "zephyrine@example.fr",
           # Hélène's contract, of which the SCI is the landlord: her bills, payments and dunning.
           "CW-F-1", "CW-PAY-1", "Réclamation en cours d'examen", "CW-M-NEW", "Hélène", "Lefèvre")


@pytest.fixture
def named(filled):
    """The SCI (owner of Hélène's contract) named as third party on Zéphyrine's contact and dossier
    (notes, a note, a process step answered, mails to her and to the SCI) and owner of her contract
    (an invoice); and a contact of the SCI's own, on which Zéphyrine is named as third party."""
    from app.contacts.links import AgentLink, Links, PartyLink
    from app.parties.models import PartyEmail
    from tests.integration.contacts_world import contract_in, dossier_type, invoice, party

    world = filled
    sci, agent = world.sci, world.agent
    session.add(PartyEmail(party_id=sci.id, address="gestion@sci-tilleuls.fr", position=0))
    zephyrine = party("CW0000099", "Zéphyrine", "Quintavalle", world.places["lyon"])
    zq_contract = contract_in(world.places["lyon"], "CW-EAU-ZQ", [(zephyrine, "holder"), (sci, "owner")])
    invoice(zq_contract, "CW-F-ZQ-SECRETE", issued=date(2026, 2, 1), due=date(2026, 3, 1), amount="77.70")
    session.commit()

    def links(customer, third) -> Links:
        return Links(parties=[PartyLink(customer.id, "customer"), PartyLink(third.id, "third_party")],
                     agents=[AgentLink(agent.id, "emitter")])

    contact = new_contact(world, subject="MARQUEUR-OBJET-ZQ", notes="MARQUEUR-NOTE-ZQ", links=links(zephyrine, sci))
    own_contact = new_contact(world, subject="Visite des locaux", notes="Le gérant demande un rendez-vous.",
                              links=links(sci, zephyrine))
    kind = dossier_type(label="Dossier move_in")
    kind.process_key = "move_in"
    session.commit()
    dossier = dossiers.open_dossier(agent=agent, dossier_type_id=kind.id, subject="MARQUEUR-DOSSIER-ZQ",
                                    links=links(zephyrine, sci))
    session.commit()
    instance = processes.start(key="move_in", agent=agent, dossier=dossier)
    processes.complete_task(agent=agent, task_id=the_task(instance).id,
                            answers={**IDENTITY, "email": "marqueur-processus-zq@example.fr"})
    session.commit()
    dossiers.add_note(agent=agent, dossier_id=dossier.id, title="MARQUEUR-ELEMENT-ZQ", body="MARQUEUR-ELEMENT-ZQ")
    outbox.queue_mail(dossier=dossier, recipient="zephyrine@example.fr", subject="MARQUEUR-COURRIEL-ZQ",
                      body="MARQUEUR-COURRIEL-ZQ", agent=agent)
    # Sent to the SCI's own address, but in Zéphyrine's dossier: about her, not the SCI's.
    outbox.queue_mail(dossier=dossier, recipient="gestion@sci-tilleuls.fr", subject="MARQUEUR-TIERS-ZQ",
                      body="MARQUEUR-TIERS-ZQ", agent=agent)
    session.commit()
    world.zephyrine, world.zq_contract = zephyrine, zq_contract
    world.zq_contact, world.zq_dossier, world.zq_instance = contact, dossier, instance
    world.sci_contact = own_contact
    return world


def test_another_persons_records_give_a_third_party_or_a_landlord_one_line(named, dpo, client, auth):
    world = named
    export = access.collect(world.sci.id)
    sections = export["sections"]
    text = _all_strings(export)
    for marker in MARKERS:
        assert marker not in text, marker

    contacts = {c["id"]: c for c in sections["contacts"]["data"]}
    assert contacts[world.zq_contact.id] == {
        "id": world.zq_contact.id, "occurred_at": world.zq_contact.occurred_at.isoformat(),
        "contact_type": "Question sur une facture", "roles": ["Tiers"], "scope": access.THIRD_PARTY_CONTACT}
    [dossier] = sections["dossiers"]["data"]
    assert dossier == {"id": world.zq_dossier.id, "reference": world.zq_dossier.reference,
                       "created_at": world.zq_dossier.created_at.isoformat(), "classification": "Dossier move_in",
                       "roles": ["Tiers"], "scope": access.THIRD_PARTY_DOSSIER}
    assert sections["mails"]["data"] == []

    contracts = {c["number"]: c for c in sections["contracts"]["data"]}
    assert set(contracts) == {"CW-EAU-1", "CW-EAU-ZQ"}
    for number, contract in contracts.items():
        assert set(contract) == {"id", "number", "roles", "service_point", "scope"}, number
        assert contract["roles"] == ["Propriétaire"] and contract["scope"] == access.OWNER_SCOPE
    assert contracts["CW-EAU-ZQ"]["service_point"] == {
        "street": world.zq_contract.service_point.street, "address_extra": None, "postal_code": "69002",
        "city": world.zq_contract.service_point.city}

    # Its own contact in full, the other party by role only.
    own = contacts[world.sci_contact.id]
    assert own["subject"] == "Visite des locaux" and own["notes"] == "Le gérant demande un rendez-vous."
    assert own["roles"] == ["Client"] and own["parties"] == ["Autre interlocuteur (tiers)"]

    # The audit: the SCI and its own contact, nothing of Zéphyrine's records.
    objects = {e["object"] for e in sections["audit"]["data"]}
    assert f"Contact n° {world.sci_contact.id}" in objects
    assert not {f"Contact n° {world.zq_contact.id}", f"Dossier n° {world.zq_dossier.id}",
                f"Plan d'action n° {world.zq_instance.id}"} & objects
    assert not any(obj.startswith(("Courriel", "Élément de dossier", "Échéancier", "Blocage")) for obj in objects)

    auth.login(dpo.login)
    base = f"/interlocuteurs/{world.sci.id}/donnees-personnelles"
    raw = client.get(f"{base}/export.json").get_data(as_text=True)
    html = client.get(f"{base}/export.html").get_data(as_text=True)
    for marker in MARKERS:
        assert marker not in raw, marker
        assert marker not in html, marker
    for shown in (world.zq_dossier.reference, "CW-EAU-ZQ", world.zq_contract.service_point.street, "Tiers",
                  "Propriétaire", "Visite des locaux", "Autre interlocuteur (tiers)", "Étendue",
                  "cité comme tiers", "dont vous êtes propriétaire"):
        assert shown in html, shown


def test_the_customer_keeps_its_own_records_in_full(named):
    """Zéphyrine's export holds everything the SCI's leaves out; the SCI appears there by role only."""
    world = named
    export = access.collect(world.zephyrine.id)
    sections = export["sections"]
    text = _all_strings(export)
    assert "SCI Les Tilleuls" not in text and "CW0000004" not in text
    assert "MARQUEUR-TIERS-ZQ" not in text  # the mail to the SCI is the SCI's

    [contract] = sections["contracts"]["data"]
    assert contract["roles"] == ["Titulaire"] and [i["number"] for i in contract["invoices"]] == ["CW-F-ZQ-SECRETE"]
    contacts = {c["id"]: c for c in sections["contacts"]["data"]}
    assert contacts[world.zq_contact.id]["notes"] == "MARQUEUR-NOTE-ZQ"
    assert contacts[world.zq_contact.id]["parties"] == ["Autre interlocuteur (tiers)"]
    assert contacts[world.sci_contact.id]["scope"] == access.THIRD_PARTY_CONTACT
    assert "notes" not in contacts[world.sci_contact.id]
    [dossier] = sections["dossiers"]["data"]
    assert dossier["subject"] == "MARQUEUR-DOSSIER-ZQ" and dossier["parties"] == ["Autre interlocuteur (tiers)"]
    assert [e["title"] for e in dossier["elements"]] == ["MARQUEUR-ELEMENT-ZQ"]
    [process] = dossier["processes"]
    assert "marqueur-processus-zq@example.fr" in {a["answer"] for t in process["tasks"] for a in t["answers"]}
    assert sections["mails"]["data"] == []  # no address of hers on file: no mail is shown as hers
    objects = {e["object"] for e in sections["audit"]["data"]}
    assert {f"Contact n° {world.zq_contact.id}", f"Dossier n° {world.zq_dossier.id}",
            f"Plan d'action n° {world.zq_instance.id}"} <= objects
    assert f"Contact n° {world.sci_contact.id}" not in objects


def test_an_occupant_gets_the_premises_readings_not_the_bills(filled):
    """An occupant is supplied at the premises (meters, readings) but not told the payer's debt; in
    a dossier of one's own, a mail to another person of the dossier stays out."""
    from app.contracts.models import ContractParty
    from tests.integration.contacts_world import party

    occupant = party("CW0000098", "Odile", "Occupante", filled.places["lyon"])
    session.add(ContractParty(contract=filled.contract, party=occupant, role="occupant"))
    outbox.queue_mail(dossier=filled.filled_dossier, recipient="paul.martin@example.fr", subject="Pour le payeur",
                      body="Votre échéancier.", agent=filled.agent)
    session.commit()

    [contract] = access.collect(occupant.id)["sections"]["contracts"]["data"]
    assert contract["roles"] == ["Occupant"] and contract["scope"] == access.OCCUPANT_SCOPE
    assert [r["index_value"] for r in contract["readings"]] == [120, 340]
    assert not {"invoices", "payment_plans", "dunning_blocks", "dunning"} & set(contract)
    text = _all_strings(access.collect(occupant.id))
    assert "CW-F-1" not in text and "Réclamation en cours d'examen" not in text

    sections = access.collect(filled.helene.id)["sections"]
    assert [m["subject"] for m in sections["mails"]["data"]] == ["Votre emménagement"]
    traced = [e["changes"]["subject"] for e in sections["audit"]["data"]
              if e["object"] == f"Dossier n° {filled.filled_dossier.id}" and e["action"] == "queue_mail"]
    assert traced == ["Votre emménagement"]  # the entry about the payer's mail stays out too

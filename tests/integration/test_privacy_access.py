"""The GDPR right of access (app.privacy): the export of everything held about a party — identity
with bank details, contracts and everything hanging from them, contacts, dossiers with their
elements and process answers, mails, audit entries, who consulted the 360° view — as JSON and as
a printable page; every table with a foreign key to party.id covered; refused without
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

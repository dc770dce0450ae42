"""GDPR retention and erasure (app.privacy.retention, erasure_views, cli): a prospect and a former
customer carrying unique marker values everywhere a person's data lands (party, phones, e-mails,
audit of their edits, contacts, dossier, note, generated letter, outbox mail, process answers and
draft) are anonymised once past retention, and a raw scan of every table of the metadata finds
none of the markers left (the same scan finds them all before). Customers, recent prospects and
parties with an open dossier are left alone; statistics rows stay; erasure on request checks the
permission and the territory and leaves the search index's compaction to the nightly job; the command
line's dry run lists without writing. A prospect noted as third party on an active customer's contact
and dossier only leaves them: its link and its own values go, the customer's content stays."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEntry
from app.contacts.links import AgentLink, Links, ObjectLink, PartyLink
from app.contacts.models import Contact
from app.contacts.objects import Ref
from app.db import Base, session
from app.documents import service as documents
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierElement
from app.errors import BusinessError
from app.mails import service as mails
from app.mails.models import OutgoingMail
from app.parties import editing
from app.parties.models import Party, PartyEmail, PartyPhone
from app.privacy import retention
from app.processes import service as processes
from app.processes.models import InstanceStatus, ProcessInstance
from app.search.models import PartySearch
from tests.conftest import csrf_token
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import contract_in, invoice
from tests.integration.test_process_instances import the_task
from tests.integration.test_process_instances import world_fixture as _world_fixture  # noqa: F401

# ASCII markers (JSON and XML keep them as they are), each found nowhere else.
PROSPECT = {
    "old_last": "Quorvathexold", "last": "Quorvathex", "first": "Zymbeline", "email": "zymbeline.q@priv-test.example",
    "phone": "+33698765401", "street": "17 impasse Trombolisque", "extra": "Batiment Ourlivane",
    "iban": "FR7630006000011234567890111", "subject": "Sujet Brandelouk", "notes": "Notes Fiddlestrom",
}
FORMER = {
    "old_last": "Vantrequildold", "last": "Vantrequild", "first": "Ambrosiel", "email": "ambrosiel.v@priv-test.example",
    "phone": "+33698765402", "street": "23 allee Pervenchiosse", "extra": "Escalier Mordelune",
    "iban": "FR7630006000019876543210222", "bic": "PRIVFRPPXXX", "subject": "Sujet Grumblethorne",
    "notes": "Notes Kestrivald", "dossier": "Dossier Ploughwether", "note_title": "Titre Snarkovin",
    "note_body": "Corps Wibblequarz", "mail_subject": "Objet Tindlemoor", "mail_body": "Texte Quibberlash",
    "answer": "Reponse Fizzlebram", "draft": "Brouillon Jonquillard", "cancel": "Motif Crespinolade",
}
BIRTH_DATES = {"prospect": date(1931, 7, 13), "former": date(1942, 11, 27)}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        if value[:2] == b"PK":  # a .docx: its XML members, uncompressed
            with zipfile.ZipFile(io.BytesIO(value)) as archive:
                return "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
        return value.decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def scan(markers) -> dict[str, set[str]]:
    """Marker → the table.column holding it, over every table of the metadata, read raw."""
    markers = [str(m) for m in markers]
    found: dict[str, set[str]] = {}
    connection = session.connection()
    for table in Base.metadata.sorted_tables:
        for row in connection.execute(select(table)):
            for column, value in zip(table.columns, row, strict=True):
                text = _text(value)
                for marker in markers:
                    if marker in text:
                        found.setdefault(marker, set()).add(f"{table.name}.{column.name}")
    return found


def all_markers() -> list[str]:
    return [*PROSPECT.values(), *FORMER.values(), *(d.isoformat() for d in BIRTH_DATES.values())]


def _person(world, values: dict, status: str, birth: date) -> Party:
    lyon = world.places["lyon"]
    party = Party(number=f"PRIV{values['last'][:6].upper()}", kind="person", civility="Mme", first_name=values["first"],
                  last_name=values["old_last"], birth_date=birth, status=status, street=values["street"],
                  address_extra=values["extra"], postal_code="69002", city="Lyon", insee_code="69123",
                  territory_id=lyon.id, iban=values["iban"], bic=values.get("bic"), vulnerable=True,
                  phones=[PartyPhone(number=values["phone"], label="mobile", position=0)])
    session.add(party)
    session.commit()
    # Edited through the screens' service: the audit trail keeps the old name and the e-mail added.
    editing.update_party(agent=world.officer, party_id=party.id, expected_version=party.version,
                         changes={"last_name": values["last"], "emails": [values["email"]]})
    session.commit()
    return party


def _contact(world, party: Party, values: dict) -> Contact:
    return dossiers_contact(world, party, subject=values["subject"], notes=values["notes"])


def dossiers_contact(world, party: Party, **fields) -> Contact:
    from app.contacts import service as contacts

    found = contacts.create_contact(
        agent=world.officer, contact_type_id=world.contact_type.id, channel="phone", direction="in",
        subject=fields.get("subject"), notes=fields.get("notes"), occurred_at=None, duration_minutes=None,
        links=Links(parties=[PartyLink(party.id, "customer")], agents=[AgentLink(world.officer.id, "emitter")]))
    session.commit()
    return found


@pytest.fixture
def people(world, monkeypatch, app):
    """A prospect and a former customer of Lyon with markers everywhere, a customer with markers
    nowhere (Hélène), as of 16 March 2026."""
    from tests.integration.contacts_world import dossier_type

    monkeypatch.setitem(app.config, "DOCUMENT_PDF", "off")  # the .docx is what the scan reads
    world.officer = AgentFactory(full_name="Odile Officier", roles=[role_with("admin"), role_with("accueil")],
                                 territories=[world.places["region"]])
    session.commit()
    prospect = _person(world, PROSPECT, "prospect", BIRTH_DATES["prospect"])
    _contact(world, prospect, PROSPECT)

    former = _person(world, FORMER, "former_customer", BIRTH_DATES["former"])
    contract = contract_in(world.places["lyon"], "PRIV-EAU-1", [(former, "holder")], status="terminated")
    contract.end_date = date(2026, 3, 1)
    invoice(contract, "PRIV-F-1", issued=date(2026, 2, 1), due=date(2026, 3, 1), amount="42.00", paid="42.00")
    session.commit()
    contact = _contact(world, former, FORMER)
    # A contact process whose answers hold the name.
    instance = processes.start(key="information_request", agent=world.officer, contact=contact)
    processes.complete_task(agent=world.officer, task_id=the_task(instance).id,
                            answers={"answer": f"{FORMER['answer']} pour {FORMER['last']}", "satisfied": True})
    assert instance.status == InstanceStatus.COMPLETED
    # A dossier: subject, a note, a letter naming the person, a mail to them; then closed.
    kind = dossier_type(label="Réclamation")
    dossier = dossiers.open_dossier(
        agent=world.officer, dossier_type_id=kind.id, subject=FORMER["dossier"], links=Links(
            parties=[PartyLink(former.id, "customer")], agents=[AgentLink(world.officer.id, "emitter")],
            objects=[ObjectLink(Ref("contract", contract.id))]))
    session.commit()
    dossiers.add_note(agent=world.officer, dossier_id=dossier.id, title=FORMER["note_title"], body=FORMER["note_body"])
    # A dossier process left with a draft, then cancelled with a reason naming the person.
    moving = processes.start(key="move_in", agent=world.officer, dossier=dossier)
    processes.save_draft(agent=world.officer, task_id=the_task(moving).id, answers={"phone": FORMER["draft"]})
    processes.cancel(agent=world.officer, instance_id=moving.id, reason=f"{FORMER['cancel']} {FORMER['last']}")
    session.commit()
    letter = documents.generate(dossier=dossier, template_code="request_acknowledgement", agent=world.officer)
    session.commit()
    mails.send_for_agent(agent=world.officer, dossier_id=dossier.id, recipient=FORMER["email"],
                         subject=FORMER["mail_subject"], body=f"Bonjour {FORMER['first']} {FORMER['last']}, "
                         f"{FORMER['mail_body']}", attachment_id=letter.id)
    session.commit()
    dossiers.change_status(agent=world.officer, dossier_id=dossier.id, status="closed")
    session.commit()
    world.prospect, world.former, world.dossier, world.contact, world.instance = (
        prospect, former, dossier, contact, instance)
    world.letter = letter
    return world


def past_retention(frozen_clock, days: int = 1825 + 40) -> None:
    """Move "now" days ahead of the latest write (columns defaulting to clock.now took the real time)."""
    frozen_clock.current = max(frozen_clock.current, datetime.now(UTC)) + timedelta(days=days)


# --- Finding them -------------------------------------------------------------------------------

def test_every_marker_is_stored_somewhere_before_the_job(people):
    found = scan(all_markers())
    assert set(found) == set(all_markers()), sorted(set(all_markers()) - set(found))
    assert "stored_file.content" in found[FORMER["last"]]  # the letter names the person
    assert "process_instance.state" in found[FORMER["answer"]]
    assert "audit_entry.changes" in found[PROSPECT["old_last"]]
    if session.get_bind().dialect.name == "sqlite":
        assert session.execute(text("SELECT rowid FROM party_search_fts WHERE party_search_fts MATCH :q"),
                               {"q": '"quorvathex"'}).all()


def test_candidates_wait_for_the_retention_period(people, frozen_clock):
    now = frozen_clock.now()
    assert people.prospect.id not in retention.candidates(now)
    past_retention(frozen_clock, 1095 + 1)  # the prospect's 3 years, not yet the former customer's 5
    candidates = retention.candidates(frozen_clock.now())
    assert people.prospect.id in candidates and people.former.id not in candidates
    past_retention(frozen_clock)
    candidates = retention.candidates(frozen_clock.now())
    assert {people.prospect.id, people.former.id} <= set(candidates)
    assert people.helene.id not in candidates  # a customer
    assert retention.candidates(frozen_clock.now(), 1) == candidates[:1]


def test_the_job_erases_every_marker_and_keeps_the_statistics(people, frozen_clock):
    contact_territory = session.get(Contact, people.contact.id).territory_id
    dossier_territory = session.get(Dossier, people.dossier.id).territory_id
    contacts_before = session.scalar(select(func.count()).select_from(Contact))
    dossiers_before = session.scalar(select(func.count()).select_from(Dossier))
    past_retention(frozen_clock)

    counts = retention.run(frozen_clock.now())
    session.expire_all()

    assert counts["anonymised"] >= 2 and counts["refused"] == 0
    left = scan(all_markers())
    assert left == {}, left
    if session.get_bind().dialect.name == "sqlite":  # the FTS5 index of party_search finds them no more
        for name in ("quorvathex", "vantrequild", "trombolisque"):
            assert not session.execute(text("SELECT rowid FROM party_search_fts WHERE party_search_fts MATCH :q"),
                                       {"q": f'"{name}"'}).all()
    for party in (people.prospect, people.former):
        stored = session.get(Party, party.id)
        assert stored.anonymised_at == frozen_clock.now()
        assert stored.last_name == retention.MARKER and stored.first_name is None and stored.civility is None
        assert (stored.birth_date, stored.iban, stored.bic, stored.street, stored.address_extra) == (
            None, None, None, None, None)
        assert stored.vulnerable is False
        assert (stored.postal_code, stored.city, stored.insee_code) == ("69002", "Lyon", "69123")
        assert stored.territory_id == people.places["lyon"].id
        assert not session.scalars(select(PartyPhone).where(PartyPhone.party_id == party.id)).all()
        assert not session.scalars(select(PartyEmail).where(PartyEmail.party_id == party.id)).all()
        search_row = session.get(PartySearch, party.id)
        assert search_row is None or "vantrequild" not in search_row.name
    # Statistics: the rows stay, with their type and territory.
    assert session.scalar(select(func.count()).select_from(Contact)) == contacts_before
    assert session.scalar(select(func.count()).select_from(Dossier)) == dossiers_before
    contact = session.get(Contact, people.contact.id)
    assert contact.subject == people.contact_type.label and contact.notes is None
    assert contact.territory_id == contact_territory
    dossier = session.get(Dossier, people.dossier.id)
    assert dossier.subject == "Réclamation" and dossier.territory_id == dossier_territory
    assert dossier.status == "closed"
    letter = session.get(DossierElement, people.letter.id)
    assert letter.file_id is None and letter.pdf_file_id is None
    mail = session.scalars(select(OutgoingMail).where(OutgoingMail.dossier_id == dossier.id)).one()
    assert mail.recipient == retention.MARKER and mail.body == ""
    assert session.get(ProcessInstance, people.instance.id).status == InstanceStatus.COMPLETED
    # The entry says why and how much, never what.
    entry = session.scalars(select(AuditEntry).where(
        AuditEntry.action == "anonymise", AuditEntry.object_type == "party",
        AuditEntry.object_id == str(people.former.id))).one()
    assert entry.changes["reason"] == retention.REASON_RETENTION
    assert entry.changes["counts"]["contacts"] == 1 and entry.changes["counts"]["dossiers"] == 1
    assert entry.changes["counts"]["files"] == 1 and entry.changes["counts"]["phones"] == 1
    # Keys of the older entries are kept: who changed which field stays known.
    edits = session.scalars(select(AuditEntry).where(
        AuditEntry.action == "update", AuditEntry.object_type == "party",
        AuditEntry.object_id == str(people.former.id))).all()
    assert any("last_name" in (e.changes or {}) for e in edits)
    # Idempotent: nobody is left for a second run.
    assert people.former.id not in retention.candidates(frozen_clock.now())
    assert retention.run(frozen_clock.now()) == {"anonymised": 0, "refused": 0}


def test_the_job_compacts_the_search_index_once_per_run_after_erasures(people, frozen_clock, monkeypatch):
    calls = []
    compact = retention.compact_search_index
    monkeypatch.setattr(retention, "compact_search_index", lambda: calls.append(1) or compact())
    assert retention.run(frozen_clock.now()) == {"anonymised": 0, "refused": 0}
    assert calls == []  # nobody erased: nothing to compact
    retention.anonymise(session.get(Party, people.prospect.id), reason=retention.REASON_REQUEST)
    session.commit()
    assert retention.run(frozen_clock.now()) == {"anonymised": 0, "refused": 0}
    assert calls == [1]  # the erasure made on request, compacted by the next night's run
    past_retention(frozen_clock)
    assert retention.run(frozen_clock.now(), batch=1)["anonymised"] >= 1
    assert calls == [1, 1]  # once per run, not per batch or per party


def test_customers_recent_prospects_and_open_dossiers_are_left_alone(people, frozen_clock):
    from tests.integration.contacts_world import contact_type, dossier_type, item

    kind = dossier_type(label="Demande")
    contact_type(item("party", "fixed_party", link_role="third_party", fixed_party_id=people.ccas.id))
    waiting = Party(number="PRIV-OPEN", kind="person", last_name="Attendlopen", status="prospect",
                    territory_id=people.places["lyon"].id)
    session.add(waiting)
    session.commit()
    dossiers.open_dossier(agent=people.officer, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(waiting.id, "customer")], agents=[AgentLink(people.officer.id, "emitter")]))
    session.commit()
    past_retention(frozen_clock)
    recent = Party(number="PRIV-NEW", kind="person", last_name="Recentlyborn", status="prospect",
                   territory_id=people.places["lyon"].id, created_at=frozen_clock.now(),
                   updated_at=frozen_clock.now())
    session.add(recent)
    session.commit()

    retention.run(frozen_clock.now())
    session.expire_all()

    assert session.get(Party, people.helene.id).last_name == "Lefèvre"
    assert session.get(Party, people.helene.id).anonymised_at is None
    assert session.get(Party, recent.id).last_name == "Recentlyborn"
    assert session.get(Party, waiting.id).last_name == "Attendlopen"
    assert session.get(Party, people.ccas.id).company_name == "CCAS de Saint-Étienne"  # named by a template
    with pytest.raises(BusinessError, match="désigné par un modèle"):
        retention.anonymise(session.get(Party, people.ccas.id), reason=retention.REASON_REQUEST)
    assert session.get(Party, people.former.id).anonymised_at is not None


@pytest.mark.parametrize("blocker", ["customer", "open_dossier", "active_process", "unpaid_invoice"])
def test_a_blocked_party_is_refused_with_nothing_written(people, frozen_clock, blocker):
    from app.audit.context import AuditContext, set_context

    set_context(AuditContext(actor_label="test"))
    party = session.get(Party, people.former.id)
    if blocker == "customer":
        party = session.get(Party, people.helene.id)
        message = "est client"
    elif blocker == "open_dossier":
        dossiers.change_status(agent=people.officer, dossier_id=people.dossier.id, status="in_progress")
        message = f"Le dossier {people.dossier.reference}"
    elif blocker == "active_process":
        contact = dossiers_contact(people, party, subject="Autre")
        processes.start(key="information_request", agent=people.officer, contact=contact)
        message = "processus"
    else:
        from app.contracts.models import Contract

        former_contract = session.scalars(select(Contract).where(Contract.number == "PRIV-EAU-1")).one()
        invoice(former_contract, "PRIV-F-2", issued=date(2026, 3, 1), due=date(2026, 4, 1), amount="10.00")
        message = "PRIV-F-2"
    session.commit()
    past_retention(frozen_clock)
    assert party.id not in retention.candidates(frozen_clock.now())
    before = scan([party.last_name])
    audit_count = session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(BusinessError, match=message):
        retention.anonymise(party, reason=retention.REASON_REQUEST)
    session.rollback()
    assert scan([party.last_name]) == before
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audit_count
    assert session.get(Party, party.id).anonymised_at is None


# --- Someone else's contacts and dossiers ------------------------------------------------------

NEIGHBOUR = {
    "old_last": "Pruneauxvilkold", "last": "Pruneauxvilk", "first": "Gondebaldine",
    "email": "gondebaldine.p@priv-test.example", "phone": "+33698765403", "street": "5 chemin Ortolbrise",
    "extra": "Residence Calembouine", "iban": "FR7630006000015555666677733",
}
HELENE_NOTES = "Fuite compteur signalée par la voisine {name} : passage du technicien lundi, Mme Lefèvre présente."


@pytest.fixture
def neighbour(people):
    """A prospect noted as third party on the active customer Hélène's contact and dossier (her notes,
    a letter to her, a mail to her; and one copy mailed to the neighbour), past retention once closed."""
    from tests.integration.contacts_world import dossier_type

    person = _person(people, NEIGHBOUR, "prospect", date(1950, 2, 3))
    full = f"{NEIGHBOUR['first']} {NEIGHBOUR['last']}"
    links = [PartyLink(people.helene.id, "customer"), PartyLink(person.id, "third_party")]
    from app.contacts import service as contacts

    contact = contacts.create_contact(
        agent=people.officer, contact_type_id=people.contact_type.id, channel="phone", direction="in",
        subject="Fuite compteur rue Victor-Hugo", notes=HELENE_NOTES.format(name=full), occurred_at=None,
        duration_minutes=None, links=Links(parties=links, agents=[AgentLink(people.officer.id, "emitter")]))
    session.commit()
    # Her contact's process: the answer names the neighbour too.
    instance = processes.start(key="information_request", agent=people.officer, contact=contact)
    processes.complete_task(agent=people.officer, task_id=the_task(instance).id,
                            answers={"answer": f"Rappel fait, voisine {NEIGHBOUR['last']} prévenue", "satisfied": True})
    dossier = dossiers.open_dossier(
        agent=people.officer, dossier_type_id=dossier_type(label="Intervention").id, subject="Fuite après compteur",
        links=Links(parties=links, agents=[AgentLink(people.officer.id, "emitter")]))
    session.commit()
    dossiers.add_note(agent=people.officer, dossier_id=dossier.id, title="Visite technicien",
                      body="Joint remplacé chez Mme Lefèvre.")
    letter = documents.generate(dossier=dossier, template_code="request_acknowledgement", agent=people.officer)
    session.commit()
    mails.send_for_agent(agent=people.officer, dossier_id=dossier.id, recipient="helene@example.fr",
                         subject="Votre fuite", body="Bonjour Madame Lefèvre, le joint est remplacé.",
                         attachment_id=letter.id)
    mails.send_for_agent(agent=people.officer, dossier_id=dossier.id, recipient=NEIGHBOUR["email"],
                         subject="Fuite chez votre voisine", body=f"Bonjour {full}, merci de votre appel.")
    session.commit()
    dossiers.change_status(agent=people.officer, dossier_id=dossier.id, status="closed")
    session.commit()
    people.neighbour, people.shared_contact, people.shared_dossier = person, contact, dossier
    people.shared_letter, people.shared_instance = letter, instance
    return people


def test_erasing_a_third_party_leaves_the_customers_contact_and_dossier(neighbour, frozen_clock):
    from app.contacts.models import ContactParty
    from app.dossiers.models import DossierParty

    world = neighbour
    markers = list(NEIGHBOUR.values())
    assert set(scan(markers)) == set(markers)
    past_retention(frozen_clock)
    assert world.neighbour.id in retention.candidates(frozen_clock.now())  # the job picks the neighbour itself

    assert retention.run(frozen_clock.now())["refused"] == 0
    session.expire_all()

    assert scan(markers) == {}  # none of the neighbour's own values is left, anywhere
    assert session.get(Party, world.neighbour.id).anonymised_at is not None
    assert session.get(Party, world.helene.id).anonymised_at is None
    # Hélène's contact: its subject and her notes stay, the neighbour's name cut out of them.
    contact = session.get(Contact, world.shared_contact.id)
    assert contact.subject == "Fuite compteur rue Victor-Hugo"
    assert contact.notes == HELENE_NOTES.format(name=retention.ERASED)
    assert [(x.party_id, x.role) for x in session.scalars(
        select(ContactParty).where(ContactParty.contact_id == contact.id))] == [(world.helene.id, "customer")]
    state = json.loads(session.get(ProcessInstance, world.shared_instance.id).state)
    assert f"Rappel fait, voisine {retention.ERASED} prévenue" in json.dumps(state, ensure_ascii=False)
    assert "Lefèvre" in json.dumps(state, ensure_ascii=False)  # the process's data on her stay
    # Her dossier: subject, note, letter and mail to her stay; the mail to the neighbour keeps no address.
    dossier = session.get(Dossier, world.shared_dossier.id)
    assert dossier.subject == "Fuite après compteur" and dossier.status == "closed"
    assert [(x.party_id, x.role) for x in session.scalars(
        select(DossierParty).where(DossierParty.dossier_id == dossier.id))] == [(world.helene.id, "customer")]
    note = session.scalars(select(DossierElement).where(DossierElement.dossier_id == dossier.id,
                                                        DossierElement.kind == "note")).one()
    assert (note.title, note.body) == ("Visite technicien", "Joint remplacé chez Mme Lefèvre.")
    letter = session.get(DossierElement, world.shared_letter.id)
    assert letter.file_id is not None  # addressed to Hélène: it does not name the neighbour
    sent = {m.subject: m for m in session.scalars(select(OutgoingMail).where(OutgoingMail.dossier_id == dossier.id))}
    assert (sent["Votre fuite"].recipient, sent["Votre fuite"].body.strip()) == (
        "helene@example.fr", "Bonjour Madame Lefèvre, le joint est remplacé.")
    assert sent["Votre fuite"].attachment_id == letter.id
    assert sent["Fuite chez votre voisine"].recipient == retention.ERASED
    assert sent["Fuite chez votre voisine"].body.strip() == f"Bonjour {retention.ERASED}, merci de votre appel."
    # The link lists of her records' audit entries no longer name the neighbour, even by id.
    label = f"{world.neighbour.id}:third_party"
    for object_type, object_id in (("contact", contact.id), ("dossier", dossier.id)):
        for entry in session.scalars(select(AuditEntry).where(AuditEntry.object_type == object_type,
                                                              AuditEntry.object_id == str(object_id))):
            assert label not in json.dumps(entry.changes or {})
    counts = session.scalars(select(AuditEntry).where(
        AuditEntry.action == "anonymise", AuditEntry.object_id == str(world.neighbour.id))).one().changes["counts"]
    assert (counts["contacts"], counts["dossiers"], counts["shared_contacts"], counts["shared_dossiers"]) == (
        0, 0, 1, 1)
    # Hélène keeps her own name, in her notes and on her record.
    assert "Lefèvre" in contact.notes and session.get(Party, world.helene.id).last_name == "Lefèvre"


def test_a_record_of_the_party_with_third_parties_only_is_erased_whole(neighbour, frozen_clock):
    from app.contacts.models import ContactParty

    world = neighbour
    own = dossiers_contact(world, world.neighbour, subject="Demande de devis", notes="Notes Quillabrandt")
    session.add(ContactParty(contact_id=own.id, party_id=world.helene.id, role="third_party", origin="added"))
    session.commit()
    past_retention(frozen_clock)

    retention.anonymise(session.get(Party, world.neighbour.id), reason=retention.REASON_REQUEST)
    session.commit()
    session.expire_all()

    contact = session.get(Contact, own.id)
    assert contact.subject == world.contact_type.label and contact.notes is None
    assert {x.party_id for x in session.scalars(select(ContactParty).where(ContactParty.contact_id == own.id))} == {
        world.neighbour.id, world.helene.id}
    assert session.get(Contact, world.shared_contact.id).notes == HELENE_NOTES.format(name=retention.ERASED)


def test_own_values_are_matched_as_whole_words_whatever_the_case(people):
    redact = retention._Redactor(people.prospect.id, retention.own_values(session.get(Party, people.prospect.id)))
    assert redact("vu QUORVATHEX et zymbeline, pas Quorvathexia") == (
        f"vu {retention.ERASED} et {retention.ERASED}, pas Quorvathexia")
    assert redact("ancien nom Quorvathexold, tél. 06 98 76 54 01") == (
        f"ancien nom {retention.ERASED}, tél. {retention.ERASED}")
    assert redact({"parties": [f"{people.prospect.id}:third_party", "1:customer"]}) == {
        "parties": [retention.ERASED, "1:customer"]}


# --- On request ---------------------------------------------------------------------------------
# (No application context held by the test here: each request of the client gets its own.)

@pytest.fixture
def asker(places):
    """A Lyon prospect asking for erasure, with markers on the party itself."""
    party = Party(number="PRIV-ASK", kind="person", civility="M.", first_name=PROSPECT["first"],
                  last_name=PROSPECT["last"], status="prospect", street=PROSPECT["street"], postal_code="69002",
                  city="Lyon", insee_code="69123", territory_id=places["lyon"].id, iban=PROSPECT["iban"],
                  phones=[PartyPhone(number=PROSPECT["phone"], label="mobile", position=0)],
                  emails=[PartyEmail(address=PROSPECT["email"], position=0)])
    session.add(party)
    session.commit()
    return party


ASKER_MARKERS = [PROSPECT[k] for k in ("first", "last", "street", "iban", "phone", "email")]


def _post_erasure(client, party_id: int, *, confirm: bool = True):
    page = client.get("/")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True))}
    if confirm:
        data["confirm"] = "1"
    return client.post(f"/interlocuteurs/{party_id}/donnees-personnelles/effacement", data=data)


def test_on_request_needs_the_permission_the_territory_and_a_token(asker, places, client, login_as, auth):
    login_as("accueil", territories=[places["lyon_agency"]])
    assert _post_erasure(client, asker.id).status_code == 403
    auth.logout()
    login_as("dpo", territories=[places["loire_agency"]])
    assert _post_erasure(client, asker.id).status_code == 404
    auth.logout()
    login_as("dpo", territories=[places["lyon_agency"]])
    refused = client.post(f"/interlocuteurs/{asker.id}/donnees-personnelles/effacement", data={"confirm": "1"})
    assert refused.status_code == 400  # no CSRF token
    session.expire_all()
    assert session.get(Party, asker.id).anonymised_at is None
    assert set(scan(ASKER_MARKERS)) == set(ASKER_MARKERS)


def test_on_request_refusals_are_flashed_and_an_erasure_is_traced(asker, customer, places, client, login_as,
                                                                  monkeypatch):
    monkeypatch.setattr(retention, "compact_search_index", lambda: pytest.fail("index compacted in a request"))
    dpo = login_as("dpo", territories=[places["lyon_agency"]])
    refused = _post_erasure(client, customer.id)
    assert refused.status_code == 302
    page = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "est client" in page
    session.expire_all()
    assert session.get(Party, customer.id).anonymised_at is None
    assert _post_erasure(client, asker.id, confirm=False).status_code == 302
    session.expire_all()
    assert session.get(Party, asker.id).anonymised_at is None

    page = client.get(f"/interlocuteurs/{asker.id}/donnees-personnelles/").get_data(as_text=True)
    assert "Effacer les données personnelles" in page  # the form of privacy/_erasure.html
    found = client.get("/recherche", query_string={"q": PROSPECT["last"]}).get_data(as_text=True)
    assert "PRIV-ASK" in found  # the search finds the person before the erasure
    done = _post_erasure(client, asker.id)
    assert done.status_code == 302
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "effacées" in page and "Effacer les données personnelles" not in page
    session.expire_all()
    assert session.get(Party, asker.id).anonymised_at is not None
    assert scan(ASKER_MARKERS) == {}
    # Found no more right after the request, though the search index is compacted only at night.
    if session.get_bind().dialect.name == "sqlite":
        for name in ("quorvathex", "zymbeline", "trombolisque"):
            assert not session.execute(text("SELECT rowid FROM party_search_fts WHERE party_search_fts MATCH :q"),
                                       {"q": f'"{name}"'}).all()
    for query in (PROSPECT["last"], f"{PROSPECT['first']} {PROSPECT['last']}"):
        assert "PRIV-ASK" not in client.get("/recherche", query_string={"q": query}).get_data(
            as_text=True)
    from app.search import service as search

    assert search.search(agent=dpo, query=PROSPECT["last"]).results == []
    assert search.search(agent=dpo, query=f"{PROSPECT['first']} {PROSPECT['last']}").results == []
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "anonymise",
                                                     AuditEntry.object_id == str(asker.id))).one()
    assert entry.changes["reason"] == "demande de la personne" and entry.actor_id == dpo.id
    again = _post_erasure(client, asker.id)
    assert "déjà été anonymisées" in client.get(again.headers["Location"]).get_data(as_text=True)


# --- Command line -------------------------------------------------------------------------------

def test_the_command_line_dry_run_lists_without_writing(people, app, frozen_clock):
    past_retention(frozen_clock)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["privacy", "retention", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert people.former.number in result.output and people.prospect.number in result.output
    assert people.helene.number not in result.output
    assert "Rien n'a été écrit" in result.output
    session.expire_all()
    assert session.get(Party, people.former.id).anonymised_at is None

    result = runner.invoke(args=["privacy", "retention", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "1 interlocuteur(s) anonymisé(s)" in result.output


def test_the_schedule_runs_the_job_nightly(app, people, frozen_clock):
    from workers.tasks import privacy_retention

    beat = app.extensions["celery"].conf.beat_schedule["privacy-retention"]
    assert beat["task"] == "workers.tasks.privacy_retention"
    assert (beat["schedule"].hour, beat["schedule"].minute) == ({3}, {15})
    past_retention(frozen_clock)
    assert privacy_retention.run()["anonymised"] >= 2
    assert privacy_retention.run() == {"anonymised": 0, "refused": 0}  # nothing left: idempotent


def test_retention_settings_are_checked_at_start(monkeypatch):
    from app import config

    monkeypatch.setenv("PRIVACY_PROSPECT_RETENTION_DAYS", "trois ans")
    with pytest.raises(RuntimeError, match="PRIVACY_PROSPECT_RETENTION_DAYS must be a whole number of days"):
        config.from_env()
    monkeypatch.setenv("PRIVACY_PROSPECT_RETENTION_DAYS", "730")
    assert config.from_env()["PRIVACY_PROSPECT_RETENTION_DAYS"] == 730
    assert config.from_env()["PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS"] == 1825


def test_process_state_keeps_its_structure(people):
    state = json.loads(session.get(ProcessInstance, people.instance.id).state)
    scrubbed = json.loads(retention.scrub_state_text(json.dumps(state)))
    assert scrubbed.keys() == state.keys()
    assert FORMER["answer"] not in json.dumps(scrubbed)

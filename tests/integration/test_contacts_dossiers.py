"""Contact capture and dossiers (app.contacts.service, app.dossiers.service): what is written, what
is refused with nothing written, the copy of a contact into a new dossier, moving a contact into a
dossier (preview, idempotence), automatic opening, notes, status, elements, scope, and distinct
consecutive references under concurrent creation (PostgreSQL)."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from app.audit.context import AuditContext, set_context
from app.audit.models import AuditEntry
from app.contacts import service as contacts
from app.contacts.links import AgentLink, Links, ObjectLink, PartyLink
from app.contacts.models import Contact, ContactAgent, ContactObject, ContactParty
from app.contacts.objects import Ref
from app.db import db, session
from app.dossiers import reads
from app.dossiers import service as dossiers
from app.dossiers.models import (
    Dossier,
    DossierAgent,
    DossierContact,
    DossierElement,
    DossierObject,
    DossierParty,
    DossierType,
    ReferenceCounter,
)
from app.errors import BusinessError
from app.parties.models import Party
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import NOW, build_world, contact_type, dossier_type, item

TABLES = (Contact, ContactParty, ContactAgent, ContactObject, Dossier, DossierParty, DossierAgent, DossierObject,
          DossierContact, DossierElement, ReferenceCounter, AuditEntry)


@pytest.fixture
def world(app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    found = build_world(places, customer)
    found.contact_type = contact_type()  # the type of the contacts the tests trace unless they say otherwise
    return found


def counts() -> dict[str, int]:
    return {model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in TABLES}


def audit(obj_type: str, obj_id: int) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).where(AuditEntry.object_type == obj_type,
                                                         AuditEntry.object_id == str(obj_id))
                                .order_by(AuditEntry.id)).scalars())


def party_links(owner) -> set[tuple]:
    return {(x.party_id, x.role, x.origin) for x in owner.parties}


def agent_links(owner) -> set[tuple]:
    return {(x.agent_id, x.role, x.origin) for x in owner.agents}


def object_links(owner) -> set[tuple]:
    return {(x.object_type, x.object_id, x.origin) for x in owner.objects}


def usual_links(world, *extra_objects: Ref) -> Links:
    """What the form posts for a contact about Hélène's contract: the defaults, plus objects."""
    return Links(parties=[PartyLink(world.helene.id, "customer", "default")],
                 agents=[AgentLink(world.agent.id, "emitter", "default")],
                 objects=[ObjectLink(Ref("contract", world.contract.id), "default")]
                 + [ObjectLink(ref, "added") for ref in extra_objects])


def new_contact(world, *, agent=None, contact_type_id=None, links=None, **fields) -> Contact:
    arguments = {"channel": None, "direction": None, "subject": None, "notes": None, "occurred_at": None,
                 "duration_minutes": None}
    arguments.update(fields)
    if contact_type_id is None:
        contact_type_id = world.contact_type.id
    return contacts.create_contact(agent=agent or world.agent, contact_type_id=contact_type_id,
                                   links=links if links is not None else usual_links(world), **arguments)


def refuse(call, message: str, field: str | None = None) -> None:
    """call raises a BusinessError with this message, and nothing is written."""
    session.commit()
    before = counts()
    with pytest.raises(BusinessError) as error:
        call()
    assert error.value.message == message
    if field is not None:
        assert error.value.field == field
    session.rollback()
    assert counts() == before


# --- Contacts -----------------------------------------------------------------------------------

def test_a_contact_is_saved_with_its_links_and_audited(world):
    invoice = world.invoices["F-1"]
    template = contact_type(item("party", "fixed_party", fixed_party_id=world.ccas.id))
    links = usual_links(world, Ref("invoice", invoice.id))
    links.parties += [PartyLink(world.ccas.id, "third_party", f"template:{template.items[0].id}"),
                      PartyLink(world.helene.id, "customer", "added")]  # posted twice: one link
    links.agents.append(AgentLink(world.bo_loire.id, "copy"))  # any active agent, whatever the territory
    contact = new_contact(world, contact_type_id=template.id, subject="  Conteste   la facture ", notes=" Rappeler. ",
                          occurred_at=NOW - timedelta(minutes=20), duration_minutes=12, links=links)
    session.commit()
    session.expire_all()

    saved = session.get(Contact, contact.id)
    assert (saved.contact_type_id, saved.channel, saved.direction) == (template.id, "phone", "in")  # the type's
    assert (saved.subject, saved.notes, saved.duration_minutes) == ("Conteste la facture", "Rappeler.", 12)
    assert saved.occurred_at == NOW - timedelta(minutes=20) and saved.created_at == NOW
    assert saved.created_by_id == world.agent.id
    assert party_links(saved) == {(world.helene.id, "customer", "default"),
                                  (world.ccas.id, "third_party", f"template:{template.items[0].id}")}
    assert agent_links(saved) == {(world.agent.id, "emitter", "default"), (world.bo_loire.id, "copy", "added")}
    assert object_links(saved) == {("contract", world.contract.id, "default"), ("invoice", invoice.id, "added")}

    entries = audit("contact", contact.id)
    assert [e.action for e in entries] == ["create", "link"]
    assert entries[0].changes["subject"] == [None, "Conteste la facture"]
    assert entries[1].changes == {
        "parties": [f"{world.helene.id}:customer", f"{world.ccas.id}:third_party"],
        "agents": [f"{world.agent.id}:emitter", f"{world.bo_loire.id}:copy"],
        "objects": [f"contract:{world.contract.id}", f"invoice:{invoice.id}"],
    }


def test_the_form_values_read_as_links(world):
    from app.contacts.links import parse_form

    links = parse_form(parties=[f"{world.helene.id}|customer|default", f"{world.ccas.id}|third_party|template:7"],
                       agents=[f"{world.agent.id}|emitter|forged origin"],
                       object_refs=[f"invoice:{world.invoices['F-1'].id}||contact:3"])
    assert links == Links(parties=[PartyLink(world.helene.id, "customer", "default"),
                                   PartyLink(world.ccas.id, "third_party", "template:7")],
                          agents=[AgentLink(world.agent.id, "emitter", "added")],  # an unknown origin reads "added"
                          objects=[ObjectLink(Ref("invoice", world.invoices["F-1"].id), "contact:3")])
    for bad in ({"parties": ["x|customer|default"]}, {"agents": ["1|emitter"]}, {"object_refs": ["bill:1||added"]}):
        arguments = {"parties": [], "agents": [], "object_refs": [], **bad}
        with pytest.raises(BusinessError):
            parse_form(**arguments)


def test_the_subject_defaults_to_the_type_and_a_contact_may_last_from_zero_to_a_day(world):
    for minutes in (0, 24 * 60):
        contact = new_contact(world, duration_minutes=minutes, occurred_at=NOW + timedelta(minutes=4))
        assert contact.subject == "Question sur une facture" and contact.duration_minutes == minutes


def test_the_audit_trail_names_the_links_it_records(world):
    contact = new_contact(world)
    session.commit()
    [create] = [e for e in audit("contact", contact.id) if e.action == "create"]
    # Whatever the create entry keeps of the links, it must not be Python object addresses.
    assert " object at 0x" not in repr(create.changes)


REFUSALS = [
    # (what changes, message, field)
    ({"contact_type_id": 0}, "Choisissez un type de contact.", "contact_type"),
    ({"channel": "pigeon"}, "Choisissez le canal du contact.", "channel"),
    ({"direction": "sideways"}, "Choisissez le sens du contact.", "direction"),
    ({"occurred_at": NOW + timedelta(hours=1)}, "Un contact ne peut pas être daté dans le futur.", "occurred_at"),
    ({"duration_minutes": -1}, "La durée est comprise entre 0 et 1440 minutes.", "duration_minutes"),
    ({"duration_minutes": 24 * 60 + 1}, "La durée est comprise entre 0 et 1440 minutes.", "duration_minutes"),
    ({"subject": "x" * 201}, "L'objet tient en 200 caractères.", "subject"),
]


@pytest.mark.parametrize(("changes", "message", "field"), REFUSALS)
def test_a_contact_is_refused_with_nothing_written(world, changes, message, field):
    refuse(lambda: new_contact(world, **changes), message, field)


def test_a_contact_without_type_or_of_an_inactive_type_is_refused(world):
    inactive = contact_type(active=False)
    refuse(lambda: contacts.create_contact(agent=world.agent, contact_type_id=None, channel="phone", direction="in",
                                           subject=None, notes=None, occurred_at=None, duration_minutes=None,
                                           links=usual_links(world)),
           "Choisissez un type de contact.", "contact_type")
    refuse(lambda: new_contact(world, contact_type_id=inactive.id), "Choisissez un type de contact.", "contact_type")
    # A type without default channel needs one chosen.
    no_channel = contact_type(channel=None)
    refuse(lambda: new_contact(world, contact_type_id=no_channel.id), "Choisissez le canal du contact.", "channel")


def test_a_contact_without_party_is_refused(world):
    links = usual_links(world)
    links.parties = []
    refuse(lambda: new_contact(world, links=links), "Liez au moins un interlocuteur.", "parties")
    links = usual_links(world)
    links.parties = [PartyLink(world.helene.id, "neighbour")]
    refuse(lambda: new_contact(world, links=links), "Rôle d'interlocuteur inconnu : neighbour.", "parties")


def test_a_party_outside_the_agents_scope_is_refused(world):
    # The Loire agent cannot trace a contact about the Lyon customer…
    refuse(lambda: new_contact(world, agent=world.loire_agent, links=Links(
        parties=[PartyLink(world.helene.id, "customer")], agents=[AgentLink(world.loire_agent.id, "emitter")])),
        f"Interlocuteur introuvable ou hors de votre périmètre (n° {world.helene.id}).", "parties")
    # …nor the Lyon agent add the Saint-Étienne customer to one, nor a party that does not exist.
    links = usual_links(world)
    links.parties.append(PartyLink(world.bernard.id, "third_party"))
    refuse(lambda: new_contact(world, links=links),
           f"Interlocuteur introuvable ou hors de votre périmètre (n° {world.bernard.id}).", "parties")
    links = usual_links(world)
    links.parties.append(PartyLink(10**8, "third_party"))
    refuse(lambda: new_contact(world, links=links),
           f"Interlocuteur introuvable ou hors de votre périmètre (n° {10**8}).", "parties")


def test_a_fixed_third_party_named_by_the_template_may_be_linked_outside_the_scope(world):
    named = contact_type(item("party", "fixed_party", fixed_party_id=world.ccas.id))
    links = usual_links(world)
    links.parties.append(PartyLink(world.ccas.id, "third_party", f"template:{named.items[0].id}"))
    contact = new_contact(world, contact_type_id=named.id, links=links)
    assert (world.ccas.id, "third_party", f"template:{named.items[0].id}") in party_links(contact)
    # The same party under another type, which does not name it, stays out of reach.
    refuse(lambda: new_contact(world, links=links),
           f"Interlocuteur introuvable ou hors de votre périmètre (n° {world.ccas.id}).", "parties")


def test_an_object_outside_the_scope_is_refused(world):
    refuse(lambda: new_contact(world, links=usual_links(world, Ref("contract", world.bernard_contract.id))),
           f"Objet métier introuvable ou hors de votre périmètre : Contrat n° {world.bernard_contract.id}.", "objects")
    refuse(lambda: new_contact(world, links=usual_links(world, Ref("invoice", 10**8))),
           f"Objet métier introuvable ou hors de votre périmètre : Facture n° {10**8}.", "objects")


def test_an_inactive_or_unknown_agent_link_is_refused(world):
    links = usual_links(world)
    links.agents.append(AgentLink(world.bo_inactive.id, "copy"))
    refuse(lambda: new_contact(world, links=links), f"Agent introuvable ou inactif (n° {world.bo_inactive.id}).",
           "agents")
    links = usual_links(world)
    links.agents.append(AgentLink(world.bo_lyon.id, "boss"))
    refuse(lambda: new_contact(world, links=links), "Rôle d'agent inconnu : boss.", "agents")


def test_an_agent_without_contact_create_cannot_trace_a_contact(world):
    reader = AgentFactory(roles=[role_with("lecture_seule", ["party.read"])],
                          territories=[world.places["lyon_agency"]])
    refuse(lambda: new_contact(world, agent=reader), "Vous n'avez pas l'habilitation de tracer un contact.")


def test_a_contact_is_read_only_through_the_scope(world):
    contact = new_contact(world)
    session.commit()
    assert contacts.get_contact(agent=world.agent, contact_id=contact.id).id == contact.id
    assert contacts.get_contact(agent=world.bo_region, contact_id=contact.id).id == contact.id
    assert contacts.get_contact(agent=world.loire_agent, contact_id=contact.id) is None
    assert contacts.contacts_of_party(agent=world.loire_agent, party_id=world.helene.id, limit=10) == []
    assert [c.id for c in contacts.contacts_of_party(agent=world.agent, party_id=world.helene.id, limit=10)] == [
        contact.id]


# --- Creating a dossier from a contact ----------------------------------------------------------

@pytest.fixture
def plan(world):
    """A payment difficulty classification: the payer, the overdue invoices when something is
    owed, the back office when the contact came by letter (not the case here: it comes by phone)."""
    return dossier_type(
        item("party", "contract_payer"),
        item("object", "overdue_invoices", rule=[{"fact": "overdue_amount", "op": "gt", "value": "0"}]),
        item("agent", "role_in_territory", link_role="responsible", role=role_with("back_office"),
             rule=[{"fact": "channel", "op": "in", "value": ["letter"]}]),
        target_days=30)


def test_create_from_contact_copies_the_contact_and_adds_the_template(world, plan):
    last = world.invoices["F-3"]
    named = contact_type(item("party", "fixed_party", fixed_party_id=world.ccas.id))
    links = usual_links(world, Ref("invoice", last.id))
    links.parties.append(PartyLink(world.ccas.id, "third_party", f"template:{named.items[0].id}"))
    links.agents.append(AgentLink(world.bo_lyon.id, "copy"))
    contact = new_contact(world, contact_type_id=named.id, subject="Ne peut pas payer", links=links)
    session.commit()
    session.expire_all()

    dossier = dossiers.create_from_contact(agent=world.colleague, contact_id=contact.id, dossier_type_id=plan.id)
    session.commit()
    session.expire_all()
    dossier = session.get(Dossier, dossier.id)

    origin = f"contact:{contact.id}"
    payer_item, overdue_item, _back_office_item = plan.items
    assert party_links(dossier) == {
        (world.helene.id, "customer", origin), (world.ccas.id, "third_party", origin),
        (world.paul.id, "payer", f"template:{payer_item.id}")}
    assert agent_links(dossier) == {
        (world.colleague.id, "emitter", "default"),  # who creates the dossier
        (world.agent.id, "emitter", origin), (world.bo_lyon.id, "copy", origin)}  # not the back office: by phone
    assert object_links(dossier) == {
        ("contract", world.contract.id, origin), ("invoice", last.id, origin),
        ("invoice", world.invoices["F-1"].id, f"template:{overdue_item.id}"),
        ("invoice", world.invoices["F-2"].id, f"template:{overdue_item.id}")}
    assert re.fullmatch(r"DOS-2026-\d{6}", dossier.reference)
    assert (dossier.origin, dossier.status, dossier.subject) == ("contact", "open", "Ne peut pas payer")
    assert dossier.created_by_id == world.colleague.id
    assert dossier.due_at == NOW + timedelta(days=30)
    [attached] = session.execute(select(DossierContact).where(DossierContact.dossier_id == dossier.id)).scalars()
    assert (attached.contact_id, attached.origin, attached.added_by_id) == (contact.id, "created_from",
                                                                            world.colleague.id)
    assert [e.action for e in audit("dossier", dossier.id)] == ["create", "link", "create_from_contact"]
    assert audit("dossier", dossier.id)[-1].changes == {"contact": contact.id}
    assert [d.id for d in reads.dossiers_of_contact(agent=world.agent, contact_id=contact.id)] == [dossier.id]


def test_references_follow_each_other_within_the_year_and_a_refused_creation_takes_none(world, plan):
    contact = new_contact(world)
    first = dossiers.create_from_contact(agent=world.agent, contact_id=contact.id, dossier_type_id=plan.id)
    with pytest.raises(BusinessError):
        dossiers.create_from_contact(agent=world.agent, contact_id=contact.id, dossier_type_id=0)
    second = dossiers.create_from_contact(agent=world.agent, contact_id=new_contact(world).id,
                                          dossier_type_id=plan.id, subject="Second")
    number = int(first.reference.rsplit("-", 1)[1])
    assert second.reference == f"DOS-2026-{number + 1:06d}"
    no_deadline = dossier_type(target_days=None)
    assert dossiers.create_from_contact(agent=world.agent, contact_id=contact.id,
                                        dossier_type_id=no_deadline.id).due_at is None


def test_the_dossier_template_reads_the_contacts_customer_whatever_the_other_parties_roles(world):
    # The contact is about Hélène (customer) and her co-holder Marc; read back in a later request,
    # its parties come ordered by role name, "co_holder" before "customer".
    contact = new_contact(world, links=Links(parties=[PartyLink(world.helene.id, "customer", "default"),
                                                      PartyLink(world.marc.id, "co_holder", "added")],
                                             agents=[AgentLink(world.agent.id, "emitter", "default")]))
    session.commit()
    session.expire_all()
    about_customer = dossier_type(item("party", "current_customer"))
    dossier = dossiers.create_from_contact(agent=world.agent, contact_id=contact.id,
                                           dossier_type_id=about_customer.id)
    customers = {x.party_id for x in dossier.parties if x.role == "customer"}
    assert customers == {world.helene.id}


def test_create_from_contact_is_refused_out_of_scope_or_without_permission(world, plan):
    contact = new_contact(world)
    refuse(lambda: dossiers.create_from_contact(agent=world.loire_agent, contact_id=contact.id,
                                                dossier_type_id=plan.id),
           "Contact introuvable ou hors de votre périmètre.")
    reader = AgentFactory(roles=[role_with("lecture_seule", ["party.read"])],
                          territories=[world.places["lyon_agency"]])
    refuse(lambda: dossiers.create_from_contact(agent=reader, contact_id=contact.id, dossier_type_id=plan.id),
           "Vous n'avez pas l'habilitation d'ouvrir un dossier.")
    inactive = dossier_type(active=False)
    refuse(lambda: dossiers.create_from_contact(agent=world.agent, contact_id=contact.id,
                                                dossier_type_id=inactive.id),
           "Choisissez une classification de dossier.", "dossier_type")


# --- Moving a contact into a dossier ------------------------------------------------------------

@pytest.fixture
def moving(world, plan):
    """A dossier created from a first contact, and a second contact about the same customer with
    some links the dossier has and some it lacks."""
    first = new_contact(world)
    dossier = dossiers.create_from_contact(agent=world.agent, contact_id=first.id, dossier_type_id=plan.id)
    second = new_contact(world, links=Links(
        parties=[PartyLink(world.helene.id, "customer", "default"), PartyLink(world.sci.id, "owner", "added")],
        agents=[AgentLink(world.agent.id, "emitter", "default"), AgentLink(world.bo_lyon.id, "copy", "added")],
        objects=[ObjectLink(Ref("contract", world.contract.id), "default"),
                 ObjectLink(Ref("meter_reading", world.last_reading.id), "added")]))
    session.commit()
    return dossier, first, second


def test_the_preview_says_what_will_be_added_and_what_exists(world, moving):
    dossier, _first, second = moving
    before = counts()
    preview = dossiers.preview_move(agent=world.agent, contact_id=second.id, dossier_id=dossier.id)
    origin = f"contact:{second.id}"
    assert preview.to_add.parties == [PartyLink(world.sci.id, "owner", origin)]
    assert preview.to_add.agents == [AgentLink(world.bo_lyon.id, "copy", origin)]
    assert preview.to_add.objects == [ObjectLink(Ref("meter_reading", world.last_reading.id), origin)]
    assert preview.existing.parties == [PartyLink(world.helene.id, "customer", origin)]
    assert preview.existing.agents == [AgentLink(world.agent.id, "emitter", origin)]
    assert preview.existing.objects == [ObjectLink(Ref("contract", world.contract.id), origin)]
    assert not preview.already_attached and not preview.adds_nothing
    session.flush()
    assert counts() == before  # a preview writes nothing


def test_moving_adds_only_the_missing_links_and_attaches_the_contact_once(world, moving):
    dossier, first, second = moving
    before_parties, before_agents, before_objects = party_links(dossier), agent_links(dossier), object_links(dossier)
    preview = dossiers.move_contact(agent=world.bo_lyon, contact_id=second.id, dossier_id=dossier.id)
    session.commit()
    session.expire_all()
    dossier = session.get(Dossier, dossier.id)
    origin = f"contact:{second.id}"
    assert party_links(dossier) == before_parties | {(world.sci.id, "owner", origin)}
    assert agent_links(dossier) == before_agents | {(world.bo_lyon.id, "copy", origin)}
    assert object_links(dossier) == before_objects | {("meter_reading", world.last_reading.id, origin)}
    attached = session.execute(select(DossierContact.contact_id, DossierContact.origin, DossierContact.added_by_id)
                               .where(DossierContact.dossier_id == dossier.id)
                               .order_by(DossierContact.contact_id)).all()
    assert [tuple(row) for row in attached] == [(first.id, "created_from", world.agent.id),
                                                (second.id, "moved", world.bo_lyon.id)]
    assert not preview.already_attached
    assert [e.action for e in audit("dossier", dossier.id)][-1] == "move_contact"
    assert audit("contact", second.id)[-1].changes == {"dossier": dossier.reference}

    # Again: nothing to add, nothing written.
    before, version = counts(), dossier.version
    again = dossiers.move_contact(agent=world.bo_lyon, contact_id=second.id, dossier_id=dossier.id)
    session.commit()
    assert again.adds_nothing and again.already_attached
    assert again.to_add == Links()
    assert counts() == before
    session.expire_all()
    assert session.get(Dossier, dossier.id).version == version


def test_moving_the_contact_the_dossier_was_created_from_adds_nothing(world, moving):
    dossier, first, _second = moving
    before = counts()
    preview = dossiers.move_contact(agent=world.agent, contact_id=first.id, dossier_id=dossier.id)
    session.commit()
    assert preview.adds_nothing and counts() == before


def test_moving_is_refused_into_a_closed_dossier(world, moving):
    dossier, _first, second = moving
    dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status="closed")
    refuse(lambda: dossiers.move_contact(agent=world.agent, contact_id=second.id, dossier_id=dossier.id),
           f"Le dossier {dossier.reference} est clos : rouvrez-le avant d'y rattacher un contact.", "dossier")
    refuse(lambda: dossiers.preview_move(agent=world.agent, contact_id=second.id, dossier_id=dossier.id),
           f"Le dossier {dossier.reference} est clos : rouvrez-le avant d'y rattacher un contact.", "dossier")


def test_moving_is_refused_into_a_dossier_of_another_customer(world, moving):
    _dossier, _first, second = moving
    pauls = dossiers.open_dossier(agent=world.agent, dossier_type_id=dossier_type().id,
                                  links=Links(parties=[PartyLink(world.paul.id, "customer")]))
    refuse(lambda: dossiers.move_contact(agent=world.agent, contact_id=second.id, dossier_id=pauls.id),
           f"Le dossier {pauls.reference} ne concerne pas le même client que ce contact.", "dossier")


def test_moving_is_refused_into_a_dossier_out_of_scope_or_without_permission(world, moving):
    dossier, _first, second = moving
    bernards = dossiers.open_dossier(agent=world.loire_agent, dossier_type_id=dossier_type().id,
                                     links=Links(parties=[PartyLink(world.bernard.id, "customer")]))
    refuse(lambda: dossiers.move_contact(agent=world.agent, contact_id=second.id, dossier_id=bernards.id),
           "Dossier introuvable ou hors de votre périmètre.", "dossier")
    refuse(lambda: dossiers.move_contact(agent=world.loire_agent, contact_id=second.id, dossier_id=bernards.id),
           "Contact introuvable ou hors de votre périmètre.")
    reader = AgentFactory(roles=[role_with("lecture_seule", ["party.read"])],
                          territories=[world.places["lyon_agency"]])
    refuse(lambda: dossiers.move_contact(agent=reader, contact_id=second.id, dossier_id=dossier.id),
           "Vous n'avez pas l'habilitation d'alimenter un dossier.")


def test_candidate_dossiers_are_the_open_ones_of_the_contacts_parties(world, moving):
    dossier, _first, second = moving
    closed = dossiers.open_dossier(agent=world.agent, dossier_type_id=dossier_type().id,
                                   links=Links(parties=[PartyLink(world.helene.id, "customer")]))
    dossiers.change_status(agent=world.colleague, dossier_id=closed.id, status="closed")
    sci = dossiers.open_dossier(agent=world.agent, dossier_type_id=dossier_type().id,
                                links=Links(parties=[PartyLink(world.sci.id, "customer")]))
    assert {d.id for d in dossiers.candidate_dossiers(agent=world.agent, contact=second)} == {dossier.id, sci.id}


# --- Opening by a service call, and by hand -----------------------------------------------------

def test_an_automatic_dossier_needs_no_scope(world):
    kind = dossier_type(item("party", "contract_payer"), target_days=None)
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id, subject="Relance automatique", links=Links(
        parties=[PartyLink(world.bernard.id, "customer"), PartyLink(world.ccas.id, "third_party")],
        agents=[AgentLink(world.bo_loire.id, "responsible")],
        objects=[ObjectLink(Ref("contract", world.bernard_contract.id))]))
    session.commit()
    assert (dossier.origin, dossier.created_by_id, dossier.subject, dossier.due_at) == (
        "automatic", None, "Relance automatique", None)
    assert party_links(dossier) == {(world.bernard.id, "customer", "added"), (world.ccas.id, "third_party", "added")}
    assert object_links(dossier) == {("contract", world.bernard_contract.id, "added")}
    # The caller passes every link: the classification's template adds nothing.
    assert not any(x.role == "payer" for x in dossier.parties)
    assert [e.action for e in audit("dossier", dossier.id)] == ["create", "link"]


def test_an_automatic_dossier_refuses_a_missing_party_or_object(world):
    kind = dossier_type()
    refuse(lambda: dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links()),
           "Liez au moins un interlocuteur.", "parties")
    refuse(lambda: dossiers.open_dossier(agent=None, dossier_type_id=kind.id,
                                         links=Links(parties=[PartyLink(10**8, "customer")])),
           f"Interlocuteur introuvable ou hors de votre périmètre (n° {10**8}).", "parties")
    refuse(lambda: dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(world.bernard.id, "customer")], objects=[ObjectLink(Ref("invoice", 10**8))])),
        f"Objet métier introuvable ou hors de votre périmètre : Facture n° {10**8}.", "objects")
    refuse(lambda: dossiers.open_dossier(agent=None, dossier_type_id=kind.id, origin="telepathy",
                                         links=Links(parties=[PartyLink(world.bernard.id, "customer")])),
           "Origine de dossier inconnue : telepathy.")


def test_a_manual_dossier_is_limited_to_the_agents_scope(world):
    kind = dossier_type()
    dossier = dossiers.open_dossier(agent=world.agent, dossier_type_id=kind.id,
                                    links=Links(parties=[PartyLink(world.helene.id, "customer")]))
    assert (dossier.origin, dossier.created_by_id, dossier.subject) == ("manual", world.agent.id,
                                                                        "Difficulté de paiement")
    refuse(lambda: dossiers.open_dossier(agent=world.agent, dossier_type_id=kind.id,
                                         links=Links(parties=[PartyLink(world.bernard.id, "customer")])),
           f"Interlocuteur introuvable ou hors de votre périmètre (n° {world.bernard.id}).", "parties")
    reader = AgentFactory(roles=[role_with("lecture_seule", ["party.read"])],
                          territories=[world.places["lyon_agency"]])
    refuse(lambda: dossiers.open_dossier(agent=reader, dossier_type_id=kind.id,
                                         links=Links(parties=[PartyLink(world.helene.id, "customer")])),
           "Vous n'avez pas l'habilitation d'ouvrir un dossier.")


# --- Notes, status, elements, scope -------------------------------------------------------------

@pytest.fixture
def dossier(world):
    found = dossiers.open_dossier(agent=world.agent, dossier_type_id=dossier_type().id, links=Links(
        parties=[PartyLink(world.helene.id, "customer")], agents=[AgentLink(world.agent.id, "emitter")],
        objects=[ObjectLink(Ref("contract", world.contract.id))]))
    session.commit()
    return found


def test_a_note_is_added_and_audited(world, dossier):
    note = dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="  ", body="  Appel du CCAS.  ")
    session.commit()
    assert (note.kind, note.title, note.body, note.created_by_id) == ("note", "Note", "Appel du CCAS.", world.agent.id)
    assert audit("dossier", dossier.id)[-1].action == "add_note"
    assert audit("dossier", dossier.id)[-1].changes == {"note": note.id, "title": "Note"}
    refuse(lambda: dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="Vide", body=" \n "),
           "Écrivez la note.", "body")
    refuse(lambda: dossiers.add_note(agent=world.loire_agent, dossier_id=dossier.id, title=None, body="x"),
           "Dossier introuvable ou hors de votre périmètre.")
    dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status="closed")
    refuse(lambda: dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title=None, body="Trop tard"),
           "Le dossier est clos.")


@pytest.mark.parametrize(("path", "refused"), [
    (["in_progress", "suspended", "in_progress", "closed", "in_progress"], "open"),
    (["suspended", "closed"], "suspended"),
    (["closed"], "open"),
    (["in_progress"], "in_progress"),
])
def test_status_follows_the_allowed_transitions(world, dossier, path, refused):
    for status in path:
        changed = dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status=status)
        assert changed.status == status
        assert (changed.closed_at is not None) == (status == "closed")
    session.commit()
    current = path[-1]
    labels = {"open": "Ouvert", "in_progress": "En cours", "suspended": "Suspendu", "closed": "Clos"}
    refuse(lambda: dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status=refused),
           f"Un dossier « {labels[current]} » ne peut pas passer « {labels[refused]} ».", "status")


def test_a_status_change_on_a_stale_version_is_refused(world, dossier):
    seen = dossier.version
    dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status="in_progress", version=seen)
    session.commit()
    assert dossier.version == seen + 1
    refuse(lambda: dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status="closed", version=seen),
           "Le dossier vient d'être modifié par quelqu'un d'autre : rechargez la page.")
    assert dossiers.change_status(agent=world.colleague, dossier_id=dossier.id, status="closed",
                                  version=seen + 1).status == "closed"


def test_a_status_change_needs_dossier_process(world, dossier):
    refuse(lambda: dossiers.change_status(agent=world.agent, dossier_id=dossier.id, status="in_progress"),
           "Vous n'avez pas l'habilitation nécessaire sur ce dossier.")


def test_elements_are_grouped_by_kind(world, plan, frozen_clock):
    contact = new_contact(world, links=usual_links(world, Ref("invoice", world.invoices["F-3"].id)))
    dossier = dossiers.create_from_contact(agent=world.agent, contact_id=contact.id, dossier_type_id=plan.id)
    first = dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="Premier", body="a")
    frozen_clock.advance(minutes=5)
    second = dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="Second", body="b")
    session.commit()

    found = dossiers.elements(agent=world.agent, dossier=dossier)
    assert [(c.contact_id, c.origin) for c in found.contacts] == [(contact.id, "created_from")]
    assert [n.id for n in found.notes] == [second.id, first.id]  # newest first
    assert found.letters == [] and found.mails == [] and found.process_steps == []
    assert {(x.party_id, x.role) for x in found.parties} == {(world.helene.id, "customer"), (world.paul.id, "payer")}
    assert {(x.agent_id, x.role) for x in found.agents} == {(world.agent.id, "emitter")}
    objects = {(o.ref, o.origin) for o in found.objects}
    origin = f"contact:{contact.id}"
    assert objects == {(Ref("contract", world.contract.id), origin), (Ref("invoice", world.invoices["F-3"].id), origin),
                       (Ref("invoice", world.invoices["F-1"].id), f"template:{plan.items[1].id}"),
                       (Ref("invoice", world.invoices["F-2"].id), f"template:{plan.items[1].id}")}
    assert all("non consultable" not in o.display for o in found.objects)


def test_elements_out_of_the_agents_scope_are_named_without_their_content(world):
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=dossier_type().id, links=Links(
        parties=[PartyLink(world.helene.id, "customer")],
        objects=[ObjectLink(Ref("contract", world.contract.id)),
                 ObjectLink(Ref("contract", world.bernard_contract.id))]))
    session.commit()
    shown = {o.ref.id: o.display for o in dossiers.elements(agent=world.agent, dossier=dossier).objects}
    assert shown[world.contract.id] == "CW-EAU-1 — Eau — Actif"
    assert shown[world.bernard_contract.id] == f"Contrat n° {world.bernard_contract.id} (non consultable)"


def test_a_dossier_is_read_only_through_the_scope(world, dossier):
    assert reads.get_dossier(agent=world.agent, dossier_id=dossier.id).id == dossier.id
    assert reads.get_dossier(agent=world.bo_region, dossier_id=dossier.id).id == dossier.id
    assert reads.get_dossier(agent=world.loire_agent, dossier_id=dossier.id) is None
    assert reads.dossiers_of_party(agent=world.loire_agent, party_id=world.helene.id) == []
    assert [d.id for d in reads.dossiers_of_party(agent=world.agent, party_id=world.helene.id)] == [dossier.id]


# --- Concurrent references (PostgreSQL) ---------------------------------------------------------

THREADS, ROUNDS = 8, 3


@pytest.mark.no_db_transaction
def test_concurrent_creations_get_distinct_consecutive_references(app):
    """Eight sessions create dossiers at the same moment, three rounds each: every reference is
    drawn once, and together they follow each other without a hole."""
    engine = db.get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL only")
    with app.app_context():
        set_context(AuditContext(actor_label="test"))
        year = dossiers.local_today().year
        audit_mark = session.execute(select(func.coalesce(func.max(AuditEntry.id), 0))).scalar_one()
        counter_before = session.execute(select(ReferenceCounter.last_value).where(
            ReferenceCounter.series == "DOS", ReferenceCounter.year == year)).scalar_one_or_none()
        customer = Party(number="CW-PAR-0001", last_name="Concurrent", status="customer")
        kind = DossierType(code="CW-CONCURRENT", label="Concurrence", target_days=None)
        session.add_all([customer, kind])
        session.commit()
        party_id, type_id = customer.id, kind.id
    barrier = threading.Barrier(THREADS)
    references: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with app.app_context():
                set_context(AuditContext(actor_label="test"))
                for _round in range(ROUNDS):
                    barrier.wait(timeout=60)
                    dossier = dossiers.open_dossier(agent=None, dossier_type_id=type_id,
                                                    links=Links(parties=[PartyLink(party_id, "customer")]))
                    reference = dossier.reference
                    session.commit()
                    references.append(reference)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=create) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert len(references) == THREADS * ROUNDS
        assert len(set(references)) == len(references)
        assert all(re.fullmatch(rf"DOS-{year}-\d{{6}}", r) for r in references)
        numbers = sorted(int(r.rsplit("-", 1)[1]) for r in references)
        assert numbers == list(range(numbers[0], numbers[0] + THREADS * ROUNDS))
        assert numbers[0] == (counter_before or 0) + 1
        with engine.connect() as connection:
            stored = connection.execute(select(Dossier.__table__.c.reference)
                                        .where(Dossier.__table__.c.dossier_type_id == type_id)).scalars().all()
        assert sorted(stored) == sorted(references)
    finally:
        with engine.begin() as connection:
            dossier_ids = select(Dossier.__table__.c.id).where(Dossier.__table__.c.dossier_type_id == type_id)
            connection.execute(delete(DossierParty.__table__).where(DossierParty.__table__.c.dossier_id.in_(dossier_ids)))
            connection.execute(delete(Dossier.__table__).where(Dossier.__table__.c.dossier_type_id == type_id))
            connection.execute(delete(DossierType.__table__).where(DossierType.__table__.c.id == type_id))
            connection.execute(delete(Party.__table__).where(Party.__table__.c.id == party_id))
            connection.execute(delete(AuditEntry.__table__).where(AuditEntry.__table__.c.id > audit_mark))
            counter = ReferenceCounter.__table__
            where = (counter.c.series == "DOS") & (counter.c.year == year)
            if counter_before is None:
                connection.execute(delete(counter).where(where))
            else:
                connection.execute(counter.update().where(where).values(last_value=counter_before))


def test_the_dossier_audit_trail_names_the_links_it_records(world, moving):
    dossier, _first, second = moving
    dossiers.move_contact(agent=world.agent, contact_id=second.id, dossier_id=dossier.id)
    session.commit()
    for entry in audit("dossier", dossier.id):
        assert " object at 0x" not in repr(entry.changes), entry.action

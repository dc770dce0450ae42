"""Contacts and dossiers under hostile or unlucky input: scope (a dossier's contacts, third parties),
ids out of range or in other scripts, bounds of rules and dates, NUL characters, races on a
dossier, a form posted twice, origins claimed by the browser, bad input on every route."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

import app.models  # noqa: F401  (every mapper, before the first query)
from app.contacts import service as contacts
from app.contacts.links import AgentLink, Links, ObjectLink, PartyLink
from app.contacts.models import Contact
from app.contacts.objects import Ref
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier
from app.errors import BusinessError
from tests.conftest import csrf_token
from tests.integration.contacts_world import NOW, build_world, contact_type, dossier_type, item


@pytest.fixture
def world(app, app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    found = build_world(places, customer)
    found.contact_type = contact_type()
    found.dossier_type = dossier_type()
    found.app = app
    return found


def _contact(world, agent, parties, *, objects=(), subject="Sujet", contact_type_id=None) -> Contact:
    links = Links(parties=[PartyLink(p.id, "customer", "default") for p in parties],
                  agents=[AgentLink(agent.id, "emitter", "default")],
                  objects=[ObjectLink(r, "default") for r in objects])
    with world.app.test_request_context():
        found = contacts.create_contact(agent=agent, contact_type_id=contact_type_id or world.contact_type.id,
                                        channel="phone", direction="in", subject=subject, notes="Notes secrètes",
                                        occurred_at=NOW - timedelta(minutes=5), duration_minutes=1, links=links)
    session.commit()
    return found


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _fresh_csrf() -> None:
    """app_ctx keeps one app context (and g) across the test client's requests: forget the CSRF
    token cached in g before the session that holds it changed (a test-harness artefact)."""
    from flask import g

    g.pop("csrf_token", None)


def _form(client, world):
    _fresh_csrf()
    page = client.get("/contacts/nouveau", query_string={"party": world.helene.id, "contract": world.contract.id})
    assert page.status_code == 200
    key = re.search(r'name="submission_key" value="([0-9a-f]{32})"', page.get_data(as_text=True)).group(1)
    return {"csrf_token": csrf_token(page.get_data(as_text=True)), "submission_key": key, "party": world.helene.id,
            "contract": world.contract.id, "contact_type": world.contact_type.id, "channel": "phone",
            "direction": "in", "parties": [f"{world.helene.id}|customer|default"],
            "agents": [f"{world.agent.id}|emitter|default"], "objects": [f"contract:{world.contract.id}||default"]}


# --- 1. Scope -------------------------------------------------------------------------------

def test_dossier_page_does_not_show_a_contact_out_of_scope(world, client, auth):
    """A dossier shared by Lyon and Loire (opened by the region) receives a Loire-only contact:
    the Lyon agent must not read that contact's subject on the dossier page (the contact's own
    page is a 404 for them)."""
    both = _contact(world, world.bo_region, [world.helene, world.bernard], subject="Commun")
    with world.app.test_request_context():
        dossier = dossiers.create_from_contact(agent=world.bo_region, contact_id=both.id,
                                               dossier_type_id=world.dossier_type.id)
    session.commit()
    loire_only = _contact(world, world.bo_loire, [world.bernard], subject="SECRET-BERNARD surendettement",
                          objects=[Ref("contract", world.bernard_contract.id)])
    with world.app.test_request_context():
        dossiers.move_contact(agent=world.bo_loire, contact_id=loire_only.id, dossier_id=dossier.id)
    session.commit()

    auth.login(world.agent.login)
    assert client.get(f"/contacts/{loire_only.id}").status_code == 404
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert "SECRET-BERNARD" not in page


def test_a_template_third_party_opens_every_contact_naming_it_to_its_territory(world, client, auth):
    """Design consequence: the CCAS (Saint-Étienne) designated by a template makes a Lyon contact
    about Hélène (notes included) readable by any Loire agent."""
    template = contact_type(item("party", "fixed_party", fixed_party_id=world.ccas.id))
    links = Links(parties=[PartyLink(world.helene.id, "customer", "default"),
                           PartyLink(world.ccas.id, "third_party", f"template:{template.items[0].id}")],
                  agents=[AgentLink(world.agent.id, "emitter", "default")])
    with world.app.test_request_context():
        found = contacts.create_contact(agent=world.agent, contact_type_id=template.id, channel="phone",
                                        direction="in", subject="Hélène ne peut pas payer", notes="Notes sur Hélène",
                                        occurred_at=NOW, duration_minutes=1, links=links)
    session.commit()
    auth.login(world.loire_agent.login)
    assert client.get(f"/clients/{world.helene.id}").status_code == 404
    response = client.get(f"/contacts/{found.id}")
    assert response.status_code == 404, "Loire agent reads a Lyon customer's contact through the CCAS"


# --- 3. Crashes -------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {"duration_minutes": "²"},
    {"parties": ["²|customer|default"]},
    {"agents": ["²|emitter|default"]},
    {"objects": ["invoice:²||added"]},
])
def test_unicode_digits_on_save_are_a_clear_refusal(world, client, auth, overrides):
    auth.login(world.agent.login)
    data = {**_form(client, world), **overrides}
    before = _count(Contact)
    response = client.post("/contacts/nouveau", data=data)
    assert response.status_code == 422, response.status_code
    assert _count(Contact) == before


@pytest.mark.parametrize("extra", [
    {"add_kind": "party", "add_party": "²"},
    {"add_kind": "agent", "add_agent": "²"},
    {"shown": ["party=²|customer|added"]},
    {"shown": ["agent=²|copy|added"]},
    {"shown": ["party={helene}|customer|template:²"]},
])
def test_unicode_digits_in_the_links_panel_do_not_crash(world, client, auth, extra):
    auth.login(world.agent.login)
    extra = {k: [v.format(helene=world.helene.id) for v in vs] if isinstance(vs, list) else vs
             for k, vs in extra.items()}
    data = {**_form(client, world), **extra}
    response = client.post("/contacts/nouveau/liens", data=data)
    assert response.status_code == 200, response.status_code


@pytest.mark.parametrize("url", [
    "/contacts/nouveau?party=99999999999999999999",
    "/contacts/nouveau?party={helene}&contract=99999999999999999999",
    "/contacts/nouveau?party={helene}&contact_type=99999999999999999999",
    "/contacts/99999999999999999999",
    "/contacts/3000000000",
    "/contacts/9223372036854775808",
    "/dossiers/99999999999999999999",
    "/contacts/{contact}/dossier/modele?dossier_type=99999999999999999999",
    "/contacts/{contact}/deplacer?dossier=99999999999999999999",
])
def test_huge_ids_are_missing_not_500(world, client, auth, url):
    found = _contact(world, world.agent, [world.helene])
    auth.login(world.agent.login)
    response = client.get(url.format(helene=world.helene.id, contact=found.id))
    assert response.status_code in (200, 302, 303, 404), response.status_code


def test_huge_ids_posted_in_links_are_refused(world, client, auth):
    auth.login(world.agent.login)
    data = {**_form(client, world), "parties": [f"{world.helene.id}|customer|default",
                                                "99999999999999999999|customer|added"]}
    assert client.post("/contacts/nouveau", data=data).status_code == 422


def test_huge_add_party_is_a_notice(world, client, auth):
    auth.login(world.agent.login)
    data = {**_form(client, world), "add_kind": "party", "add_party": "99999999999999999999"}
    assert client.post("/contacts/nouveau/liens", data=data).status_code == 200


def test_a_money_rule_with_a_huge_amount_is_refused_not_500(world, client, login_as):
    login_as("admin_ref", permissions=["admin.referentials"])
    url = f"/referentiels/types-de-contact/{world.contact_type.id}/modele/nouveau"
    _fresh_csrf()
    token = csrf_token(client.get(url).get_data(as_text=True))
    response = client.post(url, data={"csrf_token": token, "kind": "object", "source": "current_contract",
                                      "conditions-0-fact": "overdue_amount", "conditions-0-op": "gt",
                                      "conditions-0-value": "1e30"})
    assert response.status_code == 422, response.status_code


def test_api_subject_with_a_nul_character(world, client):
    from app.api import tokens

    _token, plaintext = tokens.create_token(system="Facturation", permissions=["dossier.create"],
                                            territory_codes=["A-LYON"], created_by=None)
    session.commit()
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {plaintext}"}, json={
        "classification": world.dossier_type.code, "subject": "a\x00b", "parties": [{"number": world.helene.number}]})
    assert response.status_code in (201, 422), response.status_code


def test_contact_notes_with_a_nul_character(world, client, auth):
    auth.login(world.agent.login)
    data = {**_form(client, world), "notes": "a\x00b"}
    assert client.post("/contacts/nouveau", data=data).status_code in (303, 422)


# --- 2. Concurrency (PostgreSQL only) -----------------------------------------------------------

def test_status_change_racing_a_note_is_a_message_not_500(world):
    """change_status reads version v; a note (or move, or another status click) committed meanwhile
    bumps it; the UPDATE … WHERE version=v finds no row: StaleDataError (500) instead of the
    service's own "modifié par quelqu'un d'autre" message. Simulated in one session by bumping the
    version behind the loaded object's back (on PostgreSQL the real race is a double click on a
    status button, or two agents)."""
    from app.dossiers import reads

    both = _contact(world, world.agent, [world.helene])
    with world.app.test_request_context():
        dossier = dossiers.create_from_contact(agent=world.agent, contact_id=both.id,
                                               dossier_type_id=world.dossier_type.id)
        session.commit()
        seen = reads.get_dossier(agent=world.bo_lyon, dossier_id=dossier.id)
        session.execute(Dossier.__table__.update().where(Dossier.__table__.c.id == dossier.id)
                        .values(version=Dossier.__table__.c.version + 1))
        try:
            with pytest.raises(BusinessError):  # fails with StaleDataError: the view answers 500
                dossiers.change_status(agent=world.bo_lyon, dossier_id=seen.id, status="in_progress",
                                       version=seen.version)
        finally:
            session.rollback()


def test_huge_party_id_on_the_existing_customer_view(world, client, auth):
    """Baseline: is the huge-id 500 new, or shared with the pre-existing /parties/<id>?"""
    auth.login(world.agent.login)
    assert client.get("/clients/99999999999999999999").status_code == 404



def test_a_note_racing_another_write_is_a_message_not_500(world):
    """Same as the status race, for add_note: it bumps the dossier's version (updated_at) without
    locking the row; a concurrent note/move/status commits first: StaleDataError (500)."""

    both = _contact(world, world.agent, [world.helene])
    with world.app.test_request_context():
        dossier = dossiers.create_from_contact(agent=world.agent, contact_id=both.id,
                                               dossier_type_id=world.dossier_type.id)
        session.commit()
        session.execute(Dossier.__table__.update().where(Dossier.__table__.c.id == dossier.id)
                        .values(version=Dossier.__table__.c.version + 1))
        try:
            # PostgreSQL locks and re-reads the row, so the note goes in on the latest version;
            # otherwise a clear refusal. Never StaleDataError (an error page).
            try:
                note = dossiers.add_note(agent=world.agent, dossier_id=dossier.id, title="t", body="b")
                assert note.id is not None and session.get_bind().dialect.name == "postgresql"
            except BusinessError as exc:
                assert "modifié par quelqu'un d'autre" in exc.message
        finally:
            session.rollback()


def test_a_double_submitted_contact_is_traced_once(world, client, auth):
    """A double click on "Enregistrer": the same form, with its one-time key, posted twice."""
    auth.login(world.agent.login)
    data = _form(client, world)
    first = client.post("/contacts/nouveau", data=data)
    second = client.post("/contacts/nouveau", data=data)
    assert (first.status_code, second.status_code) == (303, 303)
    assert _count(Contact) == 1, "two identical contacts traced"


def test_the_panel_does_not_name_a_third_party_designated_by_another_type(world, client, auth):
    """_rows_from_form describes the fixed party of ANY template, whatever the type chosen, and
    outside the agent's scope; saving that row is then refused (the type does not name it)."""
    contact_type(item("party", "fixed_party", fixed_party_id=world.ccas.id), label="Autre type")
    auth.login(world.agent.login)
    data = {**_form(client, world), "shown": [f"party={world.ccas.id}|third_party|added"]}
    html = client.post("/contacts/nouveau/liens", data=data).get_data(as_text=True)
    assert "CCAS" not in html


@pytest.mark.parametrize(("path", "data"), [
    ("/dossiers/{dossier}/statut", {"status": "zzz"}),
    ("/dossiers/{dossier}/statut", {"status": "in_progress", "version": "abc"}),
    ("/dossiers/{dossier}/statut", {"status": "in_progress", "version": "99999999999999999999"}),
    ("/dossiers/{dossier}/statut", {}),
    ("/dossiers/{dossier}/notes", {"body": ""}),
    ("/dossiers/{dossier}/notes", {"body": "x" * 20001}),
    ("/dossiers/{dossier}/notes", {"body": "ok", "title": "t" * 300}),
    ("/contacts/{contact}/dossier", {"dossier_type": "abc"}),
    ("/contacts/{contact}/dossier", {"dossier_type": "{inactive}"}),
    ("/contacts/{contact}/dossier", {"dossier_type": "{dtype}", "subject": "s" * 300}),
    ("/contacts/{contact}/deplacer", {}),
    ("/contacts/{contact}/deplacer", {"dossier": "abc"}),
])
def test_bad_input_on_dossier_actions_is_a_message(world, client, auth, path, data):
    found = _contact(world, world.agent, [world.helene])
    with world.app.test_request_context():
        dossier = dossiers.create_from_contact(agent=world.agent, contact_id=found.id,
                                               dossier_type_id=world.dossier_type.id)
    session.commit()
    inactive = dossier_type(active=False)
    auth.login(world.bo_lyon.login)
    _fresh_csrf()
    token = csrf_token(client.get(f"/dossiers/{dossier.id}").get_data(as_text=True))
    values = {k: v.format(inactive=inactive.id, dtype=world.dossier_type.id) for k, v in data.items()}
    response = client.post(path.format(dossier=dossier.id, contact=found.id), data={"csrf_token": token, **values})
    assert response.status_code in (303, 404, 422), response.status_code


ITEM = "/referentiels/types-de-contact/{ct}/modele/nouveau"


@pytest.mark.parametrize(("url", "data"), [
    (ITEM, {"kind": "zzz", "source": "current_contract"}),
    (ITEM, {"kind": "party", "source": "current_contract"}),
    (ITEM, {"kind": "object", "source": "current_contract", "link_role": "customer"}),
    (ITEM, {"kind": "party", "source": "fixed_party", "fixed_party": "NOPE"}),
    (ITEM, {"kind": "party", "source": "fixed_party", "fixed_party": "CL0700001"}),
    (ITEM, {"kind": "agent", "source": "fixed_agent", "fixed_agent": "nobody"}),
    (ITEM, {"kind": "agent", "source": "role_in_territory", "role": "nope"}),
    (ITEM, {"kind": "agent", "source": "role_in_territory", "role": "accueil", "territory": "NOPE"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "nope", "conditions-0-op": "in",
            "conditions-0-value": "x"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "channel", "conditions-0-op": "gt",
            "conditions-0-value": "phone"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "vulnerable",
            "conditions-0-op": "is", "conditions-0-value": "peut-être"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "territory",
            "conditions-0-op": "under", "conditions-0-value": "NOPE"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "open_dossiers",
            "conditions-0-op": "gt", "conditions-0-value": "1e999999999"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "overdue_amount",
            "conditions-0-op": "gt", "conditions-0-value": "1e30"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "overdue_amount",
            "conditions-0-op": "gt", "conditions-0-value": "1\u00a0234,56"}),
    (ITEM, {"kind": "object", "source": "current_contract", "conditions-0-fact": "open_dossier_types",
            "conditions-0-op": "includes", "conditions-0-value": " , "}),
    ("/referentiels/types-de-contact/nouveau", {"code": "X", "label": "l", "default_direction": "in"}),
    ("/referentiels/types-de-contact/nouveau", {"code": "NEWT", "label": "l", "default_direction": "zz"}),
    ("/referentiels/types-de-contact/nouveau", {"code": "NEWT", "label": "l", "default_direction": "in",
                                                "dossier_type": "abc"}),
    ("/referentiels/types-de-contact/nouveau", {"code": "NEWT", "label": "l", "default_direction": "in",
                                                "dossier_type": "{inactive}"}),
    ("/referentiels/types-de-contact/nouveau", {"code": "NEWT", "label": "l", "default_direction": "in",
                                                "position": "99999999999999999999"}),
    ("/referentiels/types-de-contact/{ct}", {"label": "", "default_direction": "in"}),
    ("/referentiels/classifications/nouvelle", {"code": "NEWD", "label": "l", "target_days": "0"}),
    ("/referentiels/classifications/nouvelle", {"code": "NEWD", "label": "l", "target_days": "99999999999999999999"}),
])
def test_referentials_bad_input_is_a_message(world, client, login_as, url, data):
    inactive = dossier_type(active=False)
    login_as("admin_ref", permissions=["admin.referentials"])
    url = url.format(ct=world.contact_type.id)
    _fresh_csrf()
    token = csrf_token(client.get(url).get_data(as_text=True))
    values = {k: v.format(inactive=inactive.id) for k, v in data.items()}
    response = client.post(url, data={"csrf_token": token, **values})
    assert response.status_code in (302, 303, 422), response.status_code


@pytest.mark.parametrize("body", [
    [1, 2],
    {"classification": 5, "parties": [{"number": "CL0700001"}]},
    {"classification": ["x"], "parties": [{"number": "CL0700001"}]},
    {"classification": "{code}", "parties": "CL0700001"},
    {"classification": "{code}", "parties": [{"number": 5}]},
    {"classification": "{code}", "parties": [{"number": "CL0700001", "role": ["payer"]}]},
    {"classification": "{code}", "parties": [{"number": "CL0700001", "role": {"a": 1}}]},
    {"classification": "{code}", "parties": [{"number": "CL0700001"}], "subject": 5},
    {"classification": "{code}", "parties": [{"number": "CL0700001"}], "subject": "s" * 500},
    {"classification": "{code}", "parties": [{"number": "CL0700001"}], "contracts": [5]},
    {"classification": "{code}", "parties": [{"number": "CL0700001"}], "contracts": {"a": 1}},
    {"classification": "{code}", "parties": [{"number": "x" * 5000}]},
    {"classification": "{code}", "parties": [{"number": "CL0700001"}] * 51},
    {"classification": "{code}", "parties": [{"number": "CL0700001", "role": "payer"},
                                             {"number": "CL0700001", "role": "payer"}]},
    {"classification": "{code}", "parties": [{"number": "CW0000006"}]},
])
def test_api_bad_input_is_4xx(world, client, body):
    from app.api import tokens

    _token, plaintext = tokens.create_token(system="Facturation", permissions=["dossier.create"],
                                            territory_codes=["A-LYON"], created_by=None)
    session.commit()
    import json
    raw = json.dumps(body).replace("{code}", world.dossier_type.code)
    response = client.post("/api/v1/dossiers", headers={"Authorization": f"Bearer {plaintext}",
                                                        "Content-Type": "application/json"}, data=raw)
    assert response.status_code in (201, 400, 404, 422), (response.status_code, response.get_json())


@pytest.mark.parametrize("moment", ["0001-01-01T00:00", "1000-01-01T00:00"])
def test_a_contact_dated_in_year_one_does_not_break_the_pages(world, client, auth, moment):
    """occurred_at has no lower bound: a typo in the year is saved, then every page listing the
    contact has to render it."""
    auth.login(world.agent.login)
    data = {**_form(client, world), "occurred_at": moment}
    saved = client.post("/contacts/nouveau", data=data)
    if saved.status_code == 422:
        return  # refused: fine
    assert saved.status_code == 303
    assert client.get(saved.headers["Location"]).status_code == 200
    assert client.get(f"/clients/{world.helene.id}").status_code == 200


def test_a_posted_origin_is_not_taken_at_face_value(world, client, auth):
    """The form posts "target|role|origin"; any origin matching the pattern is stored, so a link
    the agent added by hand can claim to come from a template or from contact n° 999999."""
    other = contact_type(item("party", "current_customer"), label="Autre")
    auth.login(world.agent.login)
    data = {**_form(client, world), "parties": [f"{world.helene.id}|customer|contact:999999",
                                                f"{world.marc.id}|co_holder|template:{other.items[0].id}"]}
    assert client.post("/contacts/nouveau", data=data).status_code == 303
    saved = session.execute(select(Contact).order_by(Contact.id.desc())).scalars().first()
    origins = {x.origin for x in saved.parties}
    assert origins <= {"default", "added"}, origins

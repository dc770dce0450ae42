"""Territories (admin.referentials) and roles (admin.agents) as referentials: created, edited, deleted when unused,
deactivated when in use, every write audited; the administrator role cannot be locked out; a
deactivated role grants nothing and neither it nor a deactivated territory is offered to agents."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import session
from app.security.models import Role, Territory
from tests.conftest import csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with


def _token(client, url: str = "/referentiels/roles") -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def _audit(object_type: str, object_id: int) -> list[str]:
    return [e.action for e in session.execute(
        select(AuditEntry).where(AuditEntry.object_type == object_type, AuditEntry.object_id == str(object_id))
        .order_by(AuditEntry.id)).scalars()]


@pytest.mark.parametrize("path", ["/referentiels/roles", "/referentiels/roles/nouveau"])
def test_roles_need_admin_agents(client, login_as, path):
    login_as("concepteur")  # holds admin.referentials, not admin.agents: editing roles would grant it anything
    assert client.get(path).status_code == 403
    page = client.get("/referentiels/territoires")
    assert page.status_code == 200 and 'id="roles-link"' not in page.get_data(as_text=True)
    token = csrf_token(client.get("/referentiels/types-de-contact").get_data(as_text=True))
    refused = client.post("/referentiels/roles/nouveau", data={"csrf_token": token, "code": "xx", "label": "X",
                                                               "permissions": ["admin.agents"]})
    assert refused.status_code == 403
    assert session.execute(select(Role).where(Role.code == "xx")).scalar_one_or_none() is None


def test_a_territory_tree_is_built_edited_and_audited(client, login_as):
    login_as("admin")
    token = _token(client, "/referentiels/territoires")
    client.post("/referentiels/territoires", data={"csrf_token": token, "code": "reg-99", "name": "Région Test"})
    region = session.execute(select(Territory).where(Territory.code == "REG-99")).scalar_one()
    assert region.kind == "region" and region.path == "/REG-99/"
    client.post("/referentiels/territoires", data={"csrf_token": token, "parent": str(region.id), "code": "AG-T",
                                                   "name": "Agence Test"})
    agency = session.execute(select(Territory).where(Territory.code == "AG-T")).scalar_one()
    refused = client.post("/referentiels/territoires", data={"csrf_token": token, "parent": str(agency.id),
                                                             "code": "99001", "name": "Ville", "insee_code": "9"})
    assert refused.status_code == 422 and "code INSEE de 5 caractères" in refused.get_data(as_text=True)
    created = client.post("/referentiels/territoires", data={"csrf_token": token, "parent": str(agency.id),
                                                             "code": "99001", "name": "Ville", "insee_code": "99001"})
    assert created.status_code == 303
    town = session.execute(select(Territory).where(Territory.code == "99001")).scalar_one()
    assert (town.kind, town.path) == ("commune", "/REG-99/AG-T/99001/")
    under_town = client.post("/referentiels/territoires", data={"csrf_token": token, "parent": str(town.id),
                                                                "code": "X", "name": "X"})
    assert under_town.status_code == 422 and "pas de territoire sous elle" in under_town.get_data(as_text=True)
    duplicate = client.post("/referentiels/territoires", data={"csrf_token": token, "code": "REG-99", "name": "Bis"})
    assert duplicate.status_code == 422 and "existe déjà" in duplicate.get_data(as_text=True)

    renamed = client.post(f"/referentiels/territoires/{town.id}", data={"csrf_token": token, "name": "Ville-Neuve",
                                                                         "insee_code": "99002"})
    assert renamed.status_code == 303
    session.expire_all()
    assert (town.name, town.insee_code, town.code) == ("Ville-Neuve", "99002", "99001")
    assert _audit("territory", town.id) == ["create", "update"]

    # In use (a child, an agent): deactivated, not deleted.
    in_use = client.post(f"/referentiels/territoires/{agency.id}/supprimer", data={"csrf_token": token},
                         follow_redirects=True)
    assert "désactivez-le plutôt" in in_use.get_data(as_text=True)
    assert session.get(Territory, agency.id) is not None
    town_id = town.id
    client.post(f"/referentiels/territoires/{town_id}/supprimer", data={"csrf_token": token})
    session.expire_all()
    assert session.get(Territory, town_id) is None and _audit("territory", town_id)[-1] == "delete"


def test_a_deactivated_territory_is_no_longer_offered_to_agents(client, login_as):
    kept = TerritoryFactory(code="AG-KEPT")
    closed = TerritoryFactory(code="AG-CLOSED")
    holder = AgentFactory(territories=[closed])
    login_as("admin")
    token = _token(client, f"/referentiels/territoires/{closed.id}")
    page = client.get(f"/referentiels/territoires/{closed.id}").get_data(as_text=True)
    assert "1 agents" in page and 'id="delete-territory"' not in page
    client.post(f"/referentiels/territoires/{closed.id}/etat", data={"csrf_token": token, "active": "0"})
    session.expire_all()
    assert closed.active is False and _audit("territory", closed.id)[-1] == "update"
    new_agent_form = client.get("/admin/agents/new").get_data(as_text=True)
    assert 'value="AG-KEPT"' in new_agent_form and 'value="AG-CLOSED"' not in new_agent_form
    holder_form = client.get(f"/admin/agents/{holder.id}").get_data(as_text=True)
    assert 'value="AG-CLOSED"' in holder_form  # still on the agent who holds it
    del kept


def test_a_role_is_created_with_its_permissions_and_audited(client, login_as):
    login_as("admin")
    token = _token(client)
    bad = client.post("/referentiels/roles/nouveau", data={"csrf_token": token, "code": "Chef Equipe", "label": "X"})
    assert bad.status_code == 422 and "Code : des minuscules" in bad.get_data(as_text=True)
    created = client.post("/referentiels/roles/nouveau", data={
        "csrf_token": token, "code": "chef_equipe", "label": "Chef d'équipe",
        "permissions": ["party.read", "supervision"]})
    assert created.status_code == 303
    role = session.execute(select(Role).where(Role.code == "chef_equipe")).scalar_one()
    assert role.permission_codes == {"party.read", "supervision"}
    client.post(f"/referentiels/roles/{role.id}", data={"csrf_token": token, "label": "Chef d'équipe",
                                                        "permissions": ["party.read"]})
    session.expire_all()
    assert role.permission_codes == {"party.read"}
    assert _audit("role", role.id)[0] == "create"
    unknown = client.post(f"/referentiels/roles/{role.id}", data={"csrf_token": token, "label": "X",
                                                                  "permissions": ["everything"]})
    assert unknown.status_code == 422 and "permission inconnue" in unknown.get_data(as_text=True).lower()
    role_id = role.id
    client.post(f"/referentiels/roles/{role_id}/supprimer", data={"csrf_token": token})
    session.expire_all()
    assert session.get(Role, role_id) is None and _audit("role", role_id)[-1] == "delete"


def test_the_administrator_role_cannot_be_locked_out(client, login_as):
    admin = login_as("admin")
    role = session.execute(select(Role).where(Role.code == "admin")).scalar_one()
    token = _token(client)
    before = set(role.permission_codes)
    stripped = client.post(f"/referentiels/roles/{role.id}", data={"csrf_token": token, "label": "Admin",
                                                                   "permissions": ["party.read"]})
    assert stripped.status_code == 422 and "plus personne ne pourrait" in stripped.get_data(as_text=True)
    off = client.post(f"/referentiels/roles/{role.id}/etat", data={"csrf_token": token, "active": "0"},
                      follow_redirects=True)
    assert "ne se supprime ni ne se désactive" in off.get_data(as_text=True)
    session.expire_all()
    assert role.active and role.permission_codes == before and admin.can("admin.agents")


def test_a_deactivated_role_grants_nothing_and_is_not_offered(client, login_as, auth):
    supervisors = role_with("superviseur")
    sophie = AgentFactory(roles=[supervisors])
    login_as("admin")
    token = _token(client)
    page = client.get(f"/referentiels/roles/{supervisors.id}").get_data(as_text=True)
    assert "1 agent(s)" in page and 'id="delete-role"' not in page
    client.post(f"/referentiels/roles/{supervisors.id}/etat", data={"csrf_token": token, "active": "0"})
    session.expire_all()
    assert supervisors.active is False
    new_agent_form = client.get("/admin/agents/new").get_data(as_text=True)
    assert not re.search(r'value="superviseur"', new_agent_form)
    auth.logout()
    auth.login(sophie.login)
    assert client.get("/supervision/processus").status_code == 403  # the role's permission is gone


def test_a_contact_template_no_longer_offers_a_deactivated_role(client, login_as):
    from app.contacts.models import ContactType

    kind = ContactType(code="CT-ROLE", label="Essai", default_channel="phone", default_direction="in")
    retired = Role(code="ancien_role", label="Ancien rôle", active=False)
    session.add_all([kind, retired])
    session.commit()
    login_as("admin")
    page = client.get(f"/referentiels/types-de-contact/{kind.id}/modele/nouveau").get_data(as_text=True)
    assert 'value="accueil"' in page or 'value="admin"' in page
    assert 'value="ancien_role"' not in page


def test_territories_need_admin_referentials(client, login_as):
    login_as("accueil")
    assert client.get("/referentiels/territoires").status_code == 403
    token = csrf_token(client.get("/").get_data(as_text=True))
    refused = client.post("/referentiels/territoires", data={"csrf_token": token, "code": "REG-98", "name": "X"})
    assert refused.status_code == 403
    assert session.execute(select(Territory).where(Territory.code == "REG-98")).scalar_one_or_none() is None


def test_an_api_token_keeps_its_deactivated_territory_but_a_new_one_is_not_offered_it(client, login_as):
    from app.api import tokens

    closed = TerritoryFactory(code="AG-OLD", active=False)
    TerritoryFactory(code="AG-OPEN")
    token, _secret = tokens.create_token(system="Facturation", permissions=["dossier.create"],
                                         territory_codes=["AG-OLD"], created_by=None)
    session.commit()
    login_as("admin")
    new_page = client.get("/admin/jetons").get_data(as_text=True)
    assert 'value="AG-OPEN"' in new_page and 'value="AG-OLD"' not in new_page
    held = client.get(f"/admin/jetons/{token.id}/territoires").get_data(as_text=True)
    options = re.findall(r"<option[^>]*>", held)
    assert any('value="AG-OLD"' in o and "selected" in o for o in options), options
    del closed

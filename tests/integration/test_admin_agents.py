"""Administration of agents through the pages: permission, creation, changes and their audit."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.db import session
from app.security.models import Agent, AgentSession
from tests.conftest import csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with


def _form_token(client, url: str) -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def _audit(agent_id: int) -> list[AuditEntry]:
    return list(session.execute(
        select(AuditEntry)
        .where(AuditEntry.object_type == "agent", AuditEntry.object_id == str(agent_id))
        .order_by(AuditEntry.id)
    ).scalars())


@pytest.mark.parametrize("method,path", [
    ("get", "/admin/agents"),
    ("get", "/admin/agents/new"),
    ("post", "/admin/agents/new"),
    ("get", "/admin/agents/{id}"),
    ("post", "/admin/agents/{id}"),
    ("post", "/admin/agents/{id}/password"),
    ("post", "/admin/agents/{id}/deactivate"),
    ("post", "/admin/agents/{id}/reactivate"),
])
def test_agent_administration_needs_admin_agents(client, login_as, method, path):
    target = AgentFactory()
    login_as("back_office")  # many permissions, but not admin.agents
    token = _form_token(client, "/")
    url = path.format(id=target.id)
    response = client.get(url) if method == "get" else client.post(url, data={"csrf_token": token})
    assert response.status_code == 403
    assert "habilitation" in response.get_data(as_text=True)
    assert session.get(Agent, target.id).active  # nothing happened


def test_admin_navigation_link_only_for_administrators(client, login_as):
    login_as("accueil")
    assert "/admin/agents" not in client.get("/").get_data(as_text=True)


def test_create_agent_with_roles_and_territories_is_audited(client, login_as):
    region = TerritoryFactory(kind="region")
    agency = TerritoryFactory(parent=region)
    role_with("accueil")
    admin = login_as("admin")
    response = client.post("/admin/agents/new", data={
        "csrf_token": _form_token(client, "/admin/agents/new"),
        "login": "Nouvel.Agent",
        "full_name": "Zoé Lefèvre-Durand",
        "email": "zoe@example.fr",
        "language": "fr",
        "password": "un-mot-de-passe-solide",
        "roles": ["accueil"],
        "territories": [agency.code],
    })
    assert response.status_code == 302
    agent = session.execute(select(Agent).where(Agent.login == "nouvel.agent")).scalar_one()
    assert [r.code for r in agent.roles] == ["accueil"]
    assert [t.code for t in agent.territories] == [agency.code]

    (created,) = _audit(agent.id)
    assert created.action == "create"
    assert created.actor_id == admin.id and created.actor_label == admin.login
    assert created.request_id and created.client_addr == "127.0.0.1"
    assert created.changes["full_name"] == [None, "Zoé Lefèvre-Durand"]
    assert created.changes["password_hash"] == [None, "***"]
    assert created.changes["roles"] == [[], ["accueil"]]
    assert created.changes["territories"] == [[], [agency.code]]


@pytest.mark.parametrize("field,value,message", [
    ("login", "x", "Identifiant invalide"),
    ("password", "court", "au moins 12 caractères"),
    ("roles", ["no-such-role"], "pas un choix valide"),
])
def test_invalid_agent_is_refused_with_a_message_and_nothing_written(client, login_as, field, value, message):
    login_as("admin")
    before = session.execute(select(func.count(Agent.id))).scalar_one()
    audit_before = session.execute(select(func.count(AuditEntry.id))).scalar_one()
    data = {
        "csrf_token": _form_token(client, "/admin/agents/new"),
        "login": "valid.login",
        "full_name": "Jean Valide",
        "language": "fr",
        "password": "un-mot-de-passe-solide",
    }
    data[field] = value
    response = client.post("/admin/agents/new", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert session.execute(select(func.count(Agent.id))).scalar_one() == before
    assert session.execute(select(func.count(AuditEntry.id))).scalar_one() == audit_before


def test_duplicate_login_is_refused(client, login_as):
    existing = AgentFactory()
    login_as("admin")
    response = client.post("/admin/agents/new", data={
        "csrf_token": _form_token(client, "/admin/agents/new"),
        "login": existing.login.upper(), "full_name": "Doublon", "language": "fr",
        "password": "un-mot-de-passe-solide",
    })
    assert response.status_code == 422
    assert "déjà utilisé" in response.get_data(as_text=True)


def test_every_change_to_an_agent_writes_before_and_after(client, login_as):
    north, south = TerritoryFactory(), TerritoryFactory()
    accueil, back_office = role_with("accueil"), role_with("back_office")
    agent = AgentFactory(roles=[accueil], territories=[north], language="fr", full_name="Nom Initial")
    admin = login_as("admin")
    url = f"/admin/agents/{agent.id}"

    response = client.post(url, data={
        "csrf_token": _form_token(client, url),
        "full_name": "Nom Changé", "email": agent.email, "language": "en",
        "roles": ["back_office"], "territories": [north.code, south.code],
    })
    assert response.status_code == 302
    client.post(f"{url}/password", data={"csrf_token": _form_token(client, url),
                                         "password": "nouveau-mot-de-passe-1"})
    client.post(f"{url}/deactivate", data={"csrf_token": _form_token(client, url)})
    client.post(f"{url}/reactivate", data={"csrf_token": _form_token(client, url)})

    update, password, deactivate, reactivate = [
        e for e in _audit(agent.id) if e.action == "update" and e.actor_id == admin.id
    ]
    assert update.actor_id == admin.id
    assert update.changes["full_name"] == ["Nom Initial", "Nom Changé"]
    assert update.changes["language"] == ["fr", "en"]
    assert update.changes["roles"] == [[accueil.code], [back_office.code]]
    assert update.changes["territories"] == [[north.code], sorted([north.code, south.code])]
    assert password.changes == {"password_hash": ["***", "***"]}
    assert deactivate.changes == {"active": [True, False]}
    assert reactivate.changes == {"active": [False, True]}
    # the history is shown on the agent's page
    page = client.get(url).get_data(as_text=True)
    assert "Modification" in page and "Nom complet : Nom Initial → Nom Changé" in page
    assert "Mot de passe : (modifié) → (modifié)" in page and "Actif : oui → non" in page


def test_an_administrator_cannot_deactivate_itself(client, login_as):
    admin = login_as("admin")
    url = f"/admin/agents/{admin.id}"
    response = client.post(f"{url}/deactivate", data={"csrf_token": _form_token(client, url)}, follow_redirects=True)
    assert "propre compte" in response.get_data(as_text=True)
    assert session.get(Agent, admin.id).active


def test_password_reset_ends_the_agents_sessions(app, client, login_as):
    from tests.conftest import Auth

    agent = AgentFactory()
    agent_client = app.test_client()
    Auth(agent_client).login(agent.login)
    login_as("admin")
    url = f"/admin/agents/{agent.id}"
    client.post(f"{url}/password", data={"csrf_token": _form_token(client, url), "password": "tout-nouveau-secret"})
    assert agent_client.get("/").status_code == 302
    open_sessions = session.execute(
        select(func.count()).where(AgentSession.agent_id == agent.id, AgentSession.ended_at.is_(None))
    ).scalar_one()
    assert open_sessions == 0


def test_unknown_agent_is_404(client, login_as):
    login_as("admin")
    assert client.get("/admin/agents/999999").status_code == 404


def test_agent_list_filters_by_login_or_name(client, login_as):
    AgentFactory(login="marie.curie", full_name="Marie Curie")
    AgentFactory(login="louis.pasteur", full_name="Louis Pasteur")
    login_as("admin")
    page = client.get("/admin/agents?q=curie").get_data(as_text=True)
    assert "marie.curie" in page and "louis.pasteur" not in page


def test_concurrent_edits_of_one_agent_do_not_overwrite_each_other(app, client, login_as):
    from tests.conftest import Auth

    agent = AgentFactory(full_name="Original")
    login_as("admin")
    other_admin = app.test_client()
    Auth(other_admin).login(AgentFactory(roles=[role_with("admin")]).login)
    url = f"/admin/agents/{agent.id}"
    first_page = client.get(url).get_data(as_text=True)
    second_page = other_admin.get(url).get_data(as_text=True)

    def submit(who, page, name):
        version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
        return who.post(url, data={"csrf_token": csrf_token(page), "version": version, "full_name": name,
                                   "language": "fr"})

    assert submit(client, first_page, "Premier").status_code == 302
    refused = submit(other_admin, second_page, "Second")
    assert refused.status_code == 422
    assert "modifié entre-temps" in refused.get_data(as_text=True)
    assert session.get(Agent, agent.id).full_name == "Premier"

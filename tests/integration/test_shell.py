"""The UI shell: navigation bar, languages, error pages, health check."""
from __future__ import annotations

from app.db import session
from app.security.models import Agent
from tests.conftest import csrf_token
from tests.factories import TerritoryFactory


def test_navigation_bar_shows_agent_territories_search_and_new_contact(client, login_as):
    lyon = TerritoryFactory(name="Agence Lyon Métropole")
    agent = login_as("accueil", territories=[lyon])
    page = client.get("/").get_data(as_text=True)
    assert agent.full_name in page
    assert "Agence Lyon Métropole" in page
    assert 'id="quick-search"' in page and 'id="new-contact"' in page
    assert "Se déconnecter" in page
    assert '<html lang="fr"' in page


def test_interface_in_english_for_an_agent_who_chose_it(client, login_as):
    login_as("accueil", language="en")
    page = client.get("/").get_data(as_text=True)
    assert "Log out" in page and "Se déconnecter" not in page
    assert '<html lang="en"' in page


def test_agent_switches_language_from_preferences(client, login_as):
    agent = login_as("accueil")
    token = csrf_token(client.get("/me").get_data(as_text=True))
    assert client.post("/me", data={"csrf_token": token, "language": "en"}).status_code == 302
    assert session.get(Agent, agent.id).language == "en"
    assert "My preferences" in client.get("/me").get_data(as_text=True)


def test_login_page_follows_the_browser_language(client):
    assert "Se connecter" in client.get("/login").get_data(as_text=True)
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert "Log in" in page


def test_404_page_is_friendly(client, login_as):
    login_as("accueil")
    response = client.get("/no/such/page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Erreur 404" in body and "hors de votre périmètre" in body


def test_500_page_shows_no_stack_trace_and_rolls_back(app, client, login_as, monkeypatch):
    import app.core.views as core_views

    agent_id = login_as("accueil").id

    def broken(*args, **kwargs):
        session.get(Agent, agent_id).full_name = "should not be saved"
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(core_views, "render_template", broken)
    response = client.get("/")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Erreur 500" in body and "Référence de la requête" in body
    assert "Traceback" not in body and "secret internal detail" not in body
    assert response.headers["X-Request-ID"] in body
    assert session.get(Agent, agent_id).full_name != "should not be saved"


def test_health_check_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_static_assets_are_served_by_the_app(client):
    for path in ("/static/vendor/htmx.min.js", "/static/vendor/pico.min.css", "/static/css/guichet.css"):
        assert client.get(path).status_code == 200, path


def test_client_request_id_is_trusted_only_behind_our_proxy(app, client, monkeypatch):
    forged = {"X-Request-ID": "forged-request-id-123"}
    assert client.get("/health", headers=forged).headers["X-Request-ID"] != "forged-request-id-123"
    monkeypatch.setitem(app.config, "TRUSTED_PROXY_COUNT", 1)
    assert client.get("/health", headers=forged).headers["X-Request-ID"] == "forged-request-id-123"


def test_refusals_speak_the_agents_language(client, login_as):
    login_as("admin", language="en")
    token = csrf_token(client.get("/admin/agents/new").get_data(as_text=True))
    response = client.post("/admin/agents/new", data={"csrf_token": token, "login": "x", "full_name": "X",
                                                      "language": "en", "password": "long-enough-password"})
    assert response.status_code == 422
    assert "Invalid login: 2 to 64 characters" in response.get_data(as_text=True)

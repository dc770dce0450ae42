"""First journey: log in, see your name and territories, log out."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.seed.demo import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(os.environ.get("GUICHET_SCREENSHOTS", "test-results"))
SCREENSHOTS.mkdir(exist_ok=True)


def _log_in(page, login: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_front_desk_agent_logs_in_sees_name_and_territories_and_logs_out(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_have_text("Camille Lefèvre")
    expect(page.locator("#agent-territories")).to_have_text("Agence Lyon Métropole")
    expect(page.locator("#my-territories")).to_contain_text("Agence Lyon Métropole")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    assert page.console_errors == [], page.console_errors  # no CSP violation, no script error
    page.screenshot(path=str(SCREENSHOTS / "home-front-desk.png"), full_page=True)

    page.locator("#logout").click()
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("button", name="Se connecter")).to_be_visible()


def test_wrong_password_is_refused_with_the_generic_message(page):
    _log_in(page, "accueil.lyon", "pas-le-bon-mot-de-passe")
    expect(page.get_by_role("alert")).to_have_text(
        "Identification impossible : identifiant ou mot de passe incorrect.")


def test_administrator_creates_an_agent_who_can_then_log_in(page, browser, live_server):
    _log_in(page, "admin")
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("button", name="Nouvel agent").click()
    page.get_by_label("Identifiant").fill("nina.roux")
    page.get_by_label("Nom complet").fill("Nina Roux")
    page.get_by_label("Mot de passe initial").fill("premier-mot-de-passe")
    page.get_by_label("accueil — Agent d'accueil").check()
    page.get_by_label("Territoires").select_option(["AG-NICE"])
    page.get_by_role("button", name="Créer l'agent").click()
    expect(page.get_by_text("Agent nina.roux créé.")).to_be_visible()
    expect(page.locator("table.audit")).to_contain_text("Création")
    page.screenshot(path=str(SCREENSHOTS / "admin-agent-created.png"), full_page=True)

    other = browser.new_context(base_url=live_server, locale="fr-FR").new_page()
    _log_in(other, "nina.roux", "premier-mot-de-passe")
    expect(other.locator("#agent-territories")).to_have_text("Agence Côte d'Azur")
    other.context.close()

"""Journeys of the search: find a customer with the keyboard only, identify a caller."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e


def test_keyboard_only_quick_search_opens_the_customer(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_be_visible()
    page.wait_for_load_state()  # the deferred script has set up its keys
    page.keyboard.press("/")  # from anywhere on the page
    expect(page.locator("#quick-search")).to_be_focused()
    page.keyboard.type("lefevre hel")  # word order, no accent, a partial first name
    options = page.locator("#quick-search-results [role=option]")
    expect(options.first).to_contain_text("Hélène Lefèvre")
    expect(page.locator("#quick-search")).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=str(SCREENSHOTS / "quick-search.png"))
    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/clients/\d+$"))
    expect(page.locator("#party-name")).to_have_text("Mme Hélène Lefèvre")
    expect(page.locator("#contracts")).to_contain_text("EL-2019-000311")

    page.locator("#quick-search").fill("")
    page.keyboard.press("/")  # typed in the box: a character, not the shortcut
    expect(page.locator("#quick-search")).to_have_value("/")
    page.locator("#quick-search").fill("Lefebre")  # a typo
    expect(options.first).to_contain_text("Lefèvre")
    page.locator("#quick-search").press("Enter")  # nothing chosen: the results page
    expect(page).to_have_url(re.compile(r"/recherche\?q=Lefebre$"))
    expect(page.locator("#results")).to_contain_text("Hélène Lefèvre")
    assert page.console_errors == [], page.console_errors


def test_a_customer_outside_the_territory_is_only_counted(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_be_visible()
    page.wait_for_load_state()  # the quick search's script is loaded (a CI run once typed before it was)
    page.locator("#quick-search").fill("boulangerie")
    expect(page.locator("#quick-search-results")).to_contain_text("1 résultat hors de votre périmètre")
    expect(page.locator("#quick-search-results [role=option]")).to_have_count(0)


def test_identify_a_caller_and_start_the_contact(page, live_server):
    _log_in(page, "accueil.lyon")
    page.locator("#new-contact").click()
    expect(page).to_have_url(re.compile(r"/identifier$"))
    page.get_by_label("Téléphone").check()
    page.get_by_label("Numéro de l'appelant").fill("+33 6 12 34 56 78")
    page.get_by_role("button", name="Identifier").click()
    expect(page.locator("#identify-results")).to_contain_text("Hélène Lefèvre")
    page.screenshot(path=str(SCREENSHOTS / "identify-caller.png"), full_page=True)
    page.get_by_role("button", name="Démarrer le contact").first.click()
    expect(page.locator("#contact-channel")).to_contain_text("Téléphone")
    expect(page.locator("#party-name")).to_have_text("Mme Hélène Lefèvre")
    assert page.console_errors == [], page.console_errors


def test_advanced_search_combines_sorts_and_exports_for_a_supervisor(page, live_server):
    _log_in(page, "superviseur.ara")
    page.locator("#advanced-search-link").click()
    expect(page.locator("#advanced-prompt")).to_be_visible()
    page.get_by_label("Commune (nom ou code INSEE)").fill("lyon")
    page.get_by_label("Statut du client").select_option("customer")
    page.locator("#advanced-submit").click()
    expect(page).to_have_url(re.compile(r"commune=lyon.*status=customer|status=customer.*commune=lyon"))
    rows = page.locator("#advanced-results tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("#advanced-results")).to_contain_text("Hélène Lefèvre")
    expect(page.locator("#advanced-results")).not_to_contain_text("Boulangerie")  # Nice: another region
    page.locator("#advanced-results th a.sort-link").first.click()
    expect(page.locator("#advanced-results th[aria-sort]")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "advanced-search.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    body = download.value.path().read_bytes().decode("utf-8-sig")
    assert "Lefèvre" in body and "Boulangerie" not in body
    assert page.console_errors == [], page.console_errors

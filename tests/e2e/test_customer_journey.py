"""The front-desk agent's journey through the 360° view: find a customer despite a typo, switch
contracts, inform them of what they owe, update their phone, then create a prospect who turns out
to look like them."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e


def test_find_inform_update_and_create_a_prospect(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_be_visible()
    page.wait_for_load_state()

    # Quick search with a typo: Quintart for Quintard (tests/data/journey, imported by the live server).
    page.locator("#quick-search").fill("quintart zoe")
    options = page.locator("#quick-search-results [role=option]")
    expect(options.first).to_contain_text("Zoé Quintard")
    page.locator("#quick-search").press("ArrowDown")
    page.locator("#quick-search").press("Enter")
    expect(page).to_have_url(re.compile(r"/clients/\d+"))
    expect(page.locator("#party-name")).to_have_text("Mme Zoé Quintard")
    party_url = page.url.split("?")[0]

    # Two contracts: the electricity one first (its invoice is paid), then the water one (overdue).
    tabs = page.locator("#contracts li")
    expect(tabs).to_have_count(2)
    expect(page.locator("#alert-overdue")).to_contain_text("57,30")  # the header sums every contract
    page.locator("#contracts a", has_text="EA-2021-009002").click()
    expect(page.locator("#contracts li[aria-current=true]")).to_contain_text("EA-2021-009002")
    expect(page.locator("#service-point")).to_contain_text("EAU-69123-009002")
    expect(page.locator("#inform-overdue")).to_contain_text("57,30")
    expect(page.locator("#inform-overdue")).to_contain_text("depuis le 20 août 2024")
    page.screenshot(path=str(SCREENSHOTS / "customer-view.png"), full_page=True)
    page.locator("#contracts a", has_text="EL-2021-009001").click()
    expect(page.locator("#contracts li[aria-current=true]")).to_contain_text("EL-2021-009001")
    expect(page.locator("#inform-last-reading")).to_contain_text("12980")
    page.reload()  # the current contract is remembered
    expect(page.locator("#contracts li[aria-current=true]")).to_contain_text("EL-2021-009001")

    # Update the phone number; the view and its history show it.
    page.locator("#action-edit").click()
    expect(page).to_have_url(re.compile(r"/clients/\d+/modifier$"))
    page.locator("#phones-0-number").fill("07 82 45 67 89")
    page.locator("#save-party").click()
    expect(page).to_have_url(re.compile(re.escape(party_url)))
    expect(page.locator("#party-contact")).to_contain_text("07 82 45 67 89")
    expect(page.locator("#last-change")).to_contain_text("Modifié par accueil.lyon")
    newest = page.locator("#history-list li").first
    expect(newest).to_contain_text("Coordonnées modifiées par accueil.lyon")
    expect(newest).to_contain_text("Téléphones")

    # A prospect who calls from the customer's new number: warned of the duplicate, created anyway.
    page.locator("#quick-search").fill("Quintard-Lopez")
    expect(page.locator("#quick-create-prospect")).to_be_visible()
    page.locator("#quick-create-prospect").click()
    expect(page).to_have_url(re.compile(r"/clients/nouveau\?q="))
    expect(page.locator("#last_name")).to_have_value("Quintard-Lopez")  # pre-filled with what was typed
    page.locator("#first_name").fill("Inès")
    page.locator("#phones-0-number").fill("07 82 45 67 89")
    page.locator("#street").fill("27 rue Paul-Bert")
    page.locator("#postal_code").fill("69003")
    page.locator("#city").fill("Lyon")
    page.locator("#create-prospect").click()
    warning = page.locator("#duplicate-candidates")
    expect(warning).to_contain_text("Zoé Quintard")
    expect(warning).to_contain_text("même téléphone")
    page.screenshot(path=str(SCREENSHOTS / "prospect-duplicate.png"), full_page=True)
    page.locator("#create-anyway").click()
    expect(page.locator("#party-name")).to_have_text("Inès Quintard-Lopez")
    expect(page.locator("#party-status")).to_contain_text("Prospect")
    expect(page.locator("#party-number")).to_have_text(re.compile(r"^PR\d{8}$"))
    expect(page.locator("#alert-duplicates")).to_contain_text("Zoé Quintard")  # and the view still says so
    assert page.console_errors == [], page.console_errors

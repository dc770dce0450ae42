"""The front-desk agent's journey through contacts and dossiers (issue 6): search, 360° view, a phone
contact proposed by its type's template, a dossier created from it with its elements grouped, then
a second contact moved into that dossier (with the preview of what it adds), twice."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e

WATER = "EA-2021-009002"  # tests/data/journey: Zoé Quintard's water contract, 57,30 € overdue
OVERDUE_INVOICE = "F2024-009002"
WATER_METER = "EAU-90002"


def _row(page, kind: str, text: str):
    """One row of the contact form's links panel (kind: party, agent, object)."""
    return page.locator(f"#links-{kind} li", has_text=text)


def open_customer(page, query: str, name: str) -> None:
    """Quick search, the first suggestion chosen with the keyboard: the customer's 360° view."""
    page.locator("#quick-search").fill(query)
    expect(page.locator("#quick-search-results [role=option]").first).to_contain_text(name.split(" ", 1)[1])
    page.locator("#quick-search").press("ArrowDown")
    page.locator("#quick-search").press("Enter")
    expect(page).to_have_url(re.compile(r"/clients/\d+"))
    expect(page.locator("#party-name")).to_have_text(name)


def _swapped_in_place(page, action) -> None:
    """Do what re-renders the links panel (htmx) and wait for the new panel: the old one is marked,
    the new one is not."""
    page.locator("#contact-links").evaluate("panel => panel.dataset.replaced = '1'")
    action()
    expect(page.locator("#contact-links:not([data-replaced])")).to_have_count(1)


def test_contact_with_template_dossier_and_move(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_have_text("Camille Lefèvre")
    page.wait_for_load_state()

    # 1. Search → 360° view, on the water contract (the overdue one).
    open_customer(page, "quintard", "Mme Zoé Quintard")
    page.locator("#contracts a", has_text=WATER).click()
    expect(page.locator("#contracts li[aria-current=true]")).to_contain_text(WATER)
    expect(page.locator("#inform-overdue")).to_contain_text("57,30")

    # 2. Alt+N: "Nouveau contact" with the customer and the current (water) contract.
    page.keyboard.press("Alt+n")
    expect(page).to_have_url(re.compile(r"/contacts/nouveau\?"))
    expect(page.locator("h1")).to_have_text("Nouveau contact")
    expect(page.locator("#contact-party")).to_have_text("Mme Zoé Quintard")
    expect(page.locator("hgroup")).to_contain_text(f"contrat {WATER}")
    for kind, text, parts in (("party", "Mme Zoé Quintard", ("Client", "Par défaut")),
                              ("agent", "Camille Lefèvre", ("Émetteur", "Par défaut")),
                              ("object", WATER, ("Par défaut",))):
        row = _row(page, kind, text)
        expect(row).to_have_count(1)
        for part in parts:
            expect(row).to_contain_text(part)
    expect(page.locator("#links-left-out")).to_have_count(0)  # no type yet, no template

    # The type with the keyboard (the list has the focus): the template's rows appear in place.
    expect(page.locator("#contact-type")).to_be_focused()
    page.evaluate("window.__noReload = 1")
    _swapped_in_place(page, lambda: page.keyboard.type("Diff"))
    expect(page.locator("#contact-type option:checked")).to_have_text("Difficulté de paiement")
    invoice = _row(page, "object", OVERDUE_INVOICE)
    expect(invoice).to_contain_text("57,30")
    expect(invoice).to_contain_text("Modèle : Les factures impayées échues")
    back_office = _row(page, "agent", "Karim Benali")  # the back office of the territory (REG-84)
    expect(back_office).to_contain_text("Responsable")
    expect(back_office).to_contain_text("Modèle : Les agents d'un rôle sur le territoire")
    expect(_row(page, "party", "Mme Zoé Quintard")).to_contain_text("Par défaut")  # the defaults stay
    expect(_row(page, "object", WATER)).to_contain_text("Par défaut")
    left_out = page.locator("#links-left-out")  # the contract has a holder but no payer
    expect(left_out).to_contain_text("Le payeur du contrat courant")
    expect(left_out).to_contain_text("aucun payeur sur le contrat courant")
    assert page.evaluate("window.__noReload") == 1  # htmx, not a reload
    page.locator("#contact-notes").fill("Demande un échéancier pour la facture d'eau de juillet.")
    page.screenshot(path=str(SCREENSHOTS / "contact-form.png"), full_page=True)
    page.locator("#contact-notes").press("Control+Enter")

    expect(page).to_have_url(re.compile(r"/contacts/\d+"))
    first_contact_url = page.url.split("#")[0].split("?")[0]
    expect(page.get_by_text(re.compile(r"Contact n° \d+ tracé\."))).to_be_visible()
    expect(page.locator("#contact-title")).to_have_text("Difficulté de paiement")
    expect(page.locator("#contact-notes")).to_have_text("Demande un échéancier pour la facture d'eau de juillet.")
    expect(page.locator("#linked-parties")).to_contain_text("Mme Zoé Quintard")
    expect(page.locator("#linked-agents li", has_text="Camille Lefèvre")).to_contain_text("Émetteur")
    expect(page.locator("#linked-agents li", has_text="Karim Benali")).to_contain_text("Modèle :")
    expect(page.locator("#linked-objects li", has_text=WATER)).to_contain_text("Par défaut")
    expect(page.locator("#linked-objects li", has_text=OVERDUE_INVOICE)).to_contain_text(
        "Modèle : Les factures impayées échues")
    expect(page.locator("#linked-dossiers")).to_contain_text("Ce contact n'est rattaché à aucun dossier.")

    # 3. "Créer un dossier": the contact type's classification is proposed.
    expect(page.locator("#create-dossier")).to_have_attribute("open", "")
    expect(page.locator("#dossier-type option:checked")).to_have_text("Difficulté de paiement (échéancier)")
    expect(page.locator("#dossier-template-left-out")).to_contain_text("aucun payeur sur le contrat courant")
    page.locator("#create-dossier-button").click()

    expect(page).to_have_url(re.compile(r"/dossiers/\d+$"))
    dossier_url = page.url
    year = datetime.now(ZoneInfo("Europe/Paris")).year
    expect(page.locator("#dossier-reference")).to_have_text(re.compile(rf"^DOS-{year}-\d{{6}} — "))
    reference = page.locator("#dossier-reference").inner_text().split(" — ")[0]
    expect(page.get_by_text(f"Dossier {reference} créé à partir du contact.")).to_be_visible()
    expect(page.locator("hgroup")).to_contain_text("Difficulté de paiement (échéancier)")
    expect(page.locator("#dossier-status")).to_have_text("Ouvert")
    for group in ("contacts", "letters", "mails", "notes", "parties", "steps", "history"):
        expect(page.locator(f"section#{group}")).to_be_visible()
        expect(page.locator(f".element-tabs a[href='#{group}']")).to_be_visible()
    contacts = page.locator("#contacts tbody tr")
    expect(contacts).to_have_count(1)
    expect(contacts.first).to_contain_text("Difficulté de paiement")
    expect(contacts.first).to_contain_text("origine du dossier")
    expect(page.locator("#linked-parties")).to_contain_text("Mme Zoé Quintard")
    expect(page.locator("#linked-agents li", has_text="Camille Lefèvre")).to_contain_text("Émetteur")
    expect(page.locator("#linked-agents li", has_text="Karim Benali")).to_contain_text("Responsable")
    expect(page.locator("#linked-objects li", has_text=WATER)).to_have_count(1)
    expect(page.locator("#linked-objects li", has_text=OVERDUE_INVOICE)).to_have_count(1)
    history = page.locator("#dossier-history tbody")
    expect(history).to_contain_text("Créé à partir d'un contact")
    expect(history).to_contain_text("Liens enregistrés")
    expect(history).to_contain_text("Création")

    # 4. Back to the customer from the dossier's parties: the dossier is in the alerts, the
    # informer panel and the history, next to the contact.
    page.locator("#linked-parties a", has_text="Zoé Quintard").click()
    expect(page).to_have_url(re.compile(r"/clients/\d+"))
    expect(page.locator("#party-name")).to_have_text("Mme Zoé Quintard")
    expect(page.locator("#alert-dossiers")).to_have_text("1 dossier en cours")
    expect(page.locator("#inform-dossiers")).to_contain_text(reference)
    expect(page.locator("#inform-dossiers")).to_contain_text("Difficulté de paiement (échéancier)")
    timeline = page.locator("#history-list")
    expect(timeline).to_contain_text(f"Dossier {reference} ouvert : Difficulté de paiement (échéancier)")
    expect(timeline).to_contain_text("Téléphone — Difficulté de paiement")
    expect(page.locator("#contracts li[aria-current=true]")).to_contain_text(WATER)  # still the water contract

    # 5. A second contact: by e-mail, with an object added by hand (in place, no reload).
    page.keyboard.press("Alt+n")
    expect(page).to_have_url(re.compile(r"/contacts/nouveau\?"))
    expect(page.locator("hgroup")).to_contain_text(f"contrat {WATER}")
    page.evaluate("window.__noReload = 2")
    page.locator("#contact-notes").fill("Demande à quel compteur correspond la facture.")
    page.keyboard.press("Alt+t")
    expect(page.locator("#contact-type")).to_be_focused()
    _swapped_in_place(page, lambda: page.locator("#contact-type").select_option(label="Demande de renseignement"))
    _swapped_in_place(page, lambda: page.get_by_label("Courriel", exact=True).check())
    expect(page.locator("#links-left-out")).to_have_count(0)
    expect(_row(page, "object", OVERDUE_INVOICE)).to_have_count(0)  # this type's template has none
    page.locator("#add-object-choice").select_option(label=f"Compteur {WATER_METER}")
    _swapped_in_place(page, lambda: page.locator("#add-object").click())
    meter = _row(page, "object", WATER_METER)
    expect(meter).to_have_count(1)
    expect(meter).to_contain_text("Ajouté")
    expect(meter.get_by_role("checkbox")).to_be_checked()
    assert page.evaluate("window.__noReload") == 2
    page.locator("#save-contact").click()

    expect(page).to_have_url(re.compile(r"/contacts/\d+"))
    expect(page.locator("#contact-title")).to_have_text("Demande de renseignement")
    expect(page.locator("hgroup")).to_contain_text("Courriel")
    expect(page.locator("#linked-objects li", has_text=WATER_METER)).to_contain_text("Ajouté")
    second_contact_id = re.search(r"/contacts/(\d+)", page.url).group(1)
    assert page.url.split("?")[0] != first_contact_url

    # "Déplacer vers dossier": choose the dossier, see what it adds and what it already has.
    expect(page.locator("#move-to-dossier")).to_have_attribute("open", "")
    option = page.locator("#move-dossier option", has_text=reference)
    expect(option).to_have_count(1)
    page.locator("#move-dossier").select_option(option.get_attribute("value"))
    page.locator("#move-preview-button").click()
    expect(page).to_have_url(re.compile(r"/contacts/\d+/deplacer\?dossier=\d+$"))
    preview_url = page.url
    expect(page.locator("h1")).to_have_text(f"Déplacer vers le dossier {reference}")
    expect(page.locator("#move-attach")).to_be_visible()
    to_add, existing = page.locator("#move-to-add"), page.locator("#move-existing")
    expect(to_add).to_contain_text(f"Compteur : {WATER_METER}")
    expect(to_add).not_to_contain_text("Zoé Quintard")
    expect(existing).to_contain_text("Interlocuteur : Mme Zoé Quintard")
    expect(existing).to_contain_text(f"Contrat : {WATER}")
    expect(existing).not_to_contain_text(WATER_METER)
    expect(page.locator("#move-confirm")).to_be_enabled()
    page.locator("#move-confirm").click()

    expect(page).to_have_url(dossier_url)
    expect(page.get_by_text(f"Contact rattaché au dossier {reference}.")).to_be_visible()
    expect(contacts).to_have_count(2)
    moved = page.locator("#contacts tbody tr", has_text="Demande de renseignement")
    expect(moved).to_contain_text("Courriel")
    expect(moved).to_contain_text("déplacé le")
    expect(page.locator("#linked-objects li", has_text=WATER_METER)).to_have_count(1)
    expect(page.locator("#linked-objects li", has_text=WATER_METER)).to_contain_text(f"Contact n° {second_contact_id}")
    expect(page.locator("#linked-objects li", has_text=WATER)).to_have_count(1)  # not duplicated
    expect(page.locator("#linked-parties li")).to_have_count(1)
    attached = page.locator("#dossier-history tbody tr", has_text="Contact rattaché")
    expect(attached).to_have_count(1)
    expect(attached).to_contain_text(f"contact n° {second_contact_id} — 1 lien(s) ajouté(s)")
    page.screenshot(path=str(SCREENSHOTS / "dossier.png"), full_page=True)

    # Moving it again (the preview's address): nothing to add, the button is disabled.
    page.goto(preview_url)
    expect(page.locator("#move-already")).to_have_text("Le contact est déjà rattaché à ce dossier.")
    expect(page.locator("#move-attach")).to_have_count(0)
    expect(page.locator("#move-to-add")).to_have_text("Rien.")
    expect(page.locator("#move-existing")).to_contain_text(f"Compteur : {WATER_METER}")
    expect(page.locator("#move-confirm")).to_be_disabled()
    # A submission all the same (a tab opened before the move): the server adds nothing either.
    page.locator("#move-confirm").evaluate("button => { button.disabled = false; }")
    page.locator("#move-confirm").click()
    expect(page).to_have_url(dossier_url)
    expect(page.get_by_text(f"Le contact était déjà rattaché au dossier {reference} : rien à ajouter.")).to_be_visible()
    expect(contacts).to_have_count(2)
    expect(page.locator("#linked-objects li", has_text=WATER_METER)).to_have_count(1)
    expect(page.locator("#dossier-history tbody tr", has_text="Contact rattaché")).to_have_count(1)
    assert page.console_errors == [], page.console_errors

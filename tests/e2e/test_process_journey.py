"""The process journey (issue 7): a front-desk agent traces a move-in request, presses "Plan
d'action", fills the first two steps' forms (one refused first, with the message beside the field),
watches the diagram mark the steps done, and the back-office step appears in a colleague's team
inbox. The colleague completes it: the process writes the welcome letter into the dossier, which
downloads; the colleague generates another letter and mails the customer with the letter attached
(issue 8)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_contact_journey import open_customer
from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e


def _diagram_marks(page, element_id: str, marker: str):
    """The shape of a BPMN element drawn by bpmn-js, carrying the given marker class."""
    return page.locator(f".process-diagram .djs-element[data-element-id='{element_id}'].{marker}")


def test_contact_action_plan_forms_diagram_and_team_inbox(page, live_server):
    _log_in(page, "accueil.lyon")
    expect(page.locator("#agent-name")).to_have_text("Camille Lefèvre")
    page.wait_for_load_state()  # the quick search's script is loaded

    # 1. A move-in request traced from the customer's 360° view.
    open_customer(page, "quintard", "Mme Zoé Quintard")
    page.wait_for_load_state()  # the shortcuts' script is loaded
    page.keyboard.press("Alt+n")
    expect(page).to_have_url(re.compile(r"/contacts/nouveau\?"))
    page.wait_for_load_state()  # htmx is ready to re-render the links panel
    page.locator("#contact-type").select_option(label="Demande d'emménagement")
    expect(page.locator("#links-agent li", has_text="Karim Benali")).to_have_count(1)
    page.locator("#contact-notes").fill("Emménage le 1er décembre au 3 rue Neuve.")
    page.locator("#contact-notes").press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/contacts/\d+"))

    # 2. "Plan d'action": the move-in dossier opens with its process; the first step is ours.
    page.locator("#action-plan").click()
    expect(page).to_have_url(re.compile(r"/taches/\d+$"))
    expect(page.locator("#task-name")).to_have_text("Vérifier l'identité du nouvel occupant")
    expect(page.locator("#task-instructions")).to_contain_text("Vérifiez l'identité")
    expect(page.locator("#context-party")).to_contain_text("Zoé Quintard")
    expect(page.locator("#context-dossier")).to_have_text(re.compile(r"^DOS-\d{4}-\d{6}$"))
    expect(_diagram_marks(page, "identity", "step-current")).to_have_count(1)
    expect(_diagram_marks(page, "start", "step-done")).to_have_count(1)

    # A date left empty: refused, the message beside the field, what was typed kept.
    page.locator("#f-identity_checked").check()
    page.locator("#f-email").fill("zoe.quintard@example.fr")
    page.locator("#complete-task").click()
    expect(page.locator("#f-move_in_on")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-move_in_on-error")).to_have_text("Ce champ est obligatoire.")
    expect(page.locator("#f-email")).to_have_value("zoe.quintard@example.fr")
    page.locator("#f-move_in_on").fill("2026-12-01")
    page.locator("#complete-task").click()

    # 3. The second step follows, the first one is marked done on the diagram.
    expect(page.locator("#task-name")).to_have_text("Relever l'index d'entrée")
    expect(_diagram_marks(page, "identity", "step-done")).to_have_count(1)
    expect(_diagram_marks(page, "meter", "step-current")).to_have_count(1)
    page.locator("#f-index_value").fill("5230")
    page.locator("#f-source").select_option("client")
    page.screenshot(path=str(SCREENSHOTS / "process-task.png"), full_page=True)
    page.locator("#complete-task").click()

    # 4. The next step is the back office's: the instance page shows where the process stands.
    expect(page).to_have_url(re.compile(r"/processus/\d+$"))
    expect(page.locator("#instance-status")).to_have_text("En cours")
    expect(_diagram_marks(page, "meter", "step-done")).to_have_count(1)
    expect(_diagram_marks(page, "contract", "step-current")).to_have_count(1)
    expect(page.locator("#instance-tasks")).to_contain_text("Choisir l'offre et le paiement")
    # No script or CSP error; the refused form answered 422, which Chromium reports too.
    assert [e for e in page.console_errors if "422" not in e] == []

    # 5. A back-office colleague of the region finds it in the team inbox.
    page.locator("#logout").click()
    _log_in(page, "backoffice.ara")
    page.locator("#tasks-link").click()
    page.locator("#tab-team").click()
    row = page.locator("#task-list tbody tr", has_text="Choisir l'offre et le paiement")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Emménagement")
    expect(row).to_contain_text("à prendre")
    row.locator("a").first.click()
    expect(page.locator("#task-name")).to_have_text("Choisir l'offre et le paiement")
    expect(page.locator("#claim-task")).to_be_visible()

    # 6. The colleague takes the step and completes it: the process writes the welcome letter
    # into the dossier, where it downloads as a Word document (and as a PDF when LibreOffice is
    # there); the colleague also generates an acknowledgement by hand.
    page.locator("#claim-task").click()
    page.locator("#f-offer").fill("Eau standard")
    page.locator("#f-payment_method").select_option("cheque")
    page.locator("#complete-task").click()
    expect(page).to_have_url(re.compile(r"/processus/\d+$"))
    expect(page.locator("#instance-status")).to_have_text("Terminé")
    page.locator("#context-dossier").click()
    letters = page.locator("#letter-list li")
    expect(letters.filter(has_text="Lettre de bienvenue (emménagement)")).to_have_count(1)
    with page.expect_download() as download_info:
        letters.filter(has_text="Lettre de bienvenue").locator("a.letter-docx").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-lettre-de-bienvenue-emmenagement.docx")
    with open(download.path(), "rb") as handle:
        assert handle.read(2) == b"PK"  # a .docx is a zip archive
    page.locator("#letter-form select").select_option(label="Accusé de réception d'une demande")
    page.locator("#generate-letter").click()
    expect(page.locator(".flash-success")).to_contain_text("Accusé de réception")
    expect(page.locator("#letter-list li")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOTS / "dossier-letters.png"), full_page=True)

    # 7. A mail to the customer from the dossier, filled from a template, the letter attached: it
    # waits in the dossier's outbox (no mail server in this run).
    page.locator("#write-mail").click()
    page.locator("#template-choice").select_option(label="Envoi d'un courrier en pièce jointe")
    page.locator("#fill-from-template").click()
    expect(page.locator("#subject")).to_have_value(re.compile(r"Emménagement : votre dossier DOS-\d{4}-\d{6}"))
    expect(page.locator("#body")).to_contain_text("Madame,")
    welcome = page.locator("#attachment option", has_text="Lettre de bienvenue").get_attribute("value")
    page.locator("#attachment").select_option(welcome)
    page.locator("#send-mail").click()
    expect(page.locator(".flash").first).to_contain_text("enregistré")
    row = page.locator("#mail-outbox tbody tr").first
    expect(row).to_contain_text("zoe.quintard@example.fr")
    expect(row).to_contain_text("en attente d'envoi")
    expect(row).to_contain_text("Lettre de bienvenue")

"""The designer journey (issue 10): a front-desk agent starts a move-in; a business analyst then opens
the move-in process in the modeler, drops a new step on the diagram, makes it a user task with a
new two-field form, adds a timer whose expression is wrong, sees the error on the timer, fixes it
with the duration helper, validates and deploys. A new move-in shows the new step; the one started
before still follows the old version. Served from a database of its own: the other journeys expect
the shipped move-in."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serving
from tests.e2e.test_contact_journey import open_customer
from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def designer_server(tmp_path_factory):
    with serving(tmp_path_factory, "_e2e_design") as url:
        yield url


def _page(browser, url):
    context = browser.new_context(base_url=url, locale="fr-FR", viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    return page


def _start_move_in(page, query: str, name: str) -> None:
    """A move-in request traced on the customer, then "Plan d'action": the agent lands on the first step."""
    open_customer(page, query, name)
    page.wait_for_load_state()
    page.keyboard.press("Alt+n")
    expect(page).to_have_url(re.compile(r"/contacts/nouveau\?"))
    page.wait_for_load_state()
    page.locator("#contact-type").select_option(label="Demande d'emménagement")
    expect(page.locator("#links-agent li", has_text="Karim Benali")).to_have_count(1)  # the template applied
    page.locator("#contact-notes").fill("Emménagement demandé au guichet.")
    page.locator("#contact-notes").press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/contacts/\d+"))
    page.locator("#action-plan").click()
    expect(page).to_have_url(re.compile(r"/taches/\d+$"))


def _center(page, element_id: str) -> tuple[float, float]:
    box = page.locator(f"#designer-canvas .djs-element[data-element-id='{element_id}']").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drop_on_flow(page, palette_action: str, flow_id: str) -> None:
    """Take an element from the palette and drop it on a flow: bpmn-js splices it into the flow."""
    page.locator(f".djs-palette .entry[data-action='{palette_action}']").click()
    x, y = _center(page, flow_id)
    page.mouse.move(x - 5, y)
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def _replace_selected(page, option: str) -> None:
    """The context pad's wrench, then the new type in its menu. Headless Chromium loses the pad
    entry between pointerdown and pointerup (the pointer-up lands on the shape under it), so the
    wrench gets its click event directly."""
    page.locator(".djs-context-pad .entry[data-action='replace']").dispatch_event("click")
    page.locator(f".djs-popup .entry[data-id='{option}']").click()


def test_analyst_adds_a_step_with_a_form_and_a_timer_deploys_and_agents_follow_their_version(
        browser, designer_server):
    # 1. Before any change, a front-desk agent starts a move-in: it is on version 1.
    agent = _page(browser, designer_server)
    _log_in(agent, "accueil.lyon")
    _start_move_in(agent, "quintard", "Mme Zoé Quintard")
    expect(agent.locator("#task-name")).to_have_text("Vérifier l'identité du nouvel occupant")
    started_before = agent.url

    # 2. The analyst opens the move-in process in the modeler.
    analyst = _page(browser, designer_server)
    _log_in(analyst, "concepteur")
    analyst.locator("#designer-link").click()
    expect(analyst.locator("#process-catalogue")).to_contain_text("Emménagement")
    analyst.locator("#process-move_in a").first.click()
    analyst.locator("#edit-process").click()
    expect(analyst).to_have_url(re.compile(r"/conception/processus/move_in/modeleur$"))
    expect(analyst.locator("#designer[data-ready=true]")).to_have_count(1)

    # 3. A new step dropped on the first flow, turned into a user task, named.
    _drop_on_flow(analyst, "create.task", "flow_0")
    _replace_selected(analyst, "replace-with-user-task")
    expect(analyst.locator("#designer-panel h3")).to_have_text("Tâche utilisateur")
    analyst.locator("#prop-name").fill("Prendre rendez-vous")
    analyst.locator("#prop-name").press("Tab")
    new_step = analyst.locator("#prop-id").inner_text()

    # 4. Its form, created from the panel, gets two fields in the form editor.
    analyst.locator("#prop-new-form-name").fill("rendez_vous")
    analyst.locator("#prop-new-form").click()
    expect(analyst).to_have_url(re.compile(r"/formulaires/rendez_vous\.schema\.json$"))
    analyst.locator("#add-field").click()
    analyst.locator("#fields-0-label").fill("Date du rendez-vous")
    analyst.locator("#fields-0-name").fill("slot")
    analyst.locator("#fields-0-type").select_option("date")
    analyst.locator("#fields-0-required").check()
    analyst.locator("#add-field").click()
    analyst.locator("#fields-1-label").fill("Remarque")
    analyst.locator("#fields-1-name").fill("note")
    analyst.locator("#fields-1-type").select_option("textarea")
    analyst.locator("#save-form").click()
    expect(analyst.locator("#form-preview #f-slot")).to_have_attribute("type", "date")
    expect(analyst.locator("#form-preview textarea#f-note")).to_have_count(1)
    analyst.locator("#back-to-modeler").click()
    expect(analyst.locator("#designer[data-ready=true]")).to_have_count(1)
    analyst.locator(f"#designer-canvas .djs-element[data-element-id='{new_step}']").click()
    expect(analyst.locator("#prop-form")).to_have_value("rendez_vous.schema.json")

    # 5. A timer before the end, with an expression that is not ISO 8601: the error is on the timer.
    _drop_on_flow(analyst, "create.intermediate-event", "flow_5")
    _replace_selected(analyst, "replace-with-timer-intermediate-catch")
    timer = analyst.locator("#prop-id").inner_text()
    analyst.locator("#prop-name").fill("Délai de rétractation")
    analyst.locator("#prop-name").press("Tab")
    analyst.locator("#prop-timer").fill("15 jours")
    analyst.locator("#prop-timer").press("Tab")
    analyst.locator("#designer-validate").click()
    problem = analyst.locator(f"#designer-problems li[data-element='{timer}']")
    expect(problem).to_contain_text("minuteur « 15 jours »")
    expect(analyst.locator(f".djs-element[data-element-id='{timer}'].designer-invalid")).to_have_count(1)
    expect(analyst.locator(".djs-overlay .designer-problem")).to_have_count(1)
    analyst.screenshot(path=str(SCREENSHOTS / "designer-timer-error.png"))

    # Fixed with the duration helper: 14 days (the timer is still the selected element).
    expect(analyst.locator("#prop-id")).to_have_text(timer)
    analyst.locator("#iso-days").fill("14")
    analyst.locator("#iso-apply").click()
    expect(analyst.locator("#prop-timer")).to_have_value('"P14D"')
    analyst.locator("#designer-validate").click()
    expect(analyst.locator("#designer-valid")).to_be_visible()
    expect(analyst.locator("#designer-problems li")).to_have_count(0)

    # 6. Deployed as version 2, with what changed.
    analyst.locator("#designer-deploy").click()
    expect(analyst.locator("#draft-valid")).to_be_visible()
    analyst.locator("#deploy").click()
    expect(analyst.locator(".flash-success, [role=status]").first).to_contain_text("Version 2 déployée")
    changes = analyst.locator("#version-2 .change-summary")
    expect(changes).to_contain_text("Ajouté : tâche utilisateur « Prendre rendez-vous »")
    expect(changes).to_contain_text("Formulaire ajouté : rendez_vous.schema.json")
    expect(changes).to_contain_text("« Délai de rétractation »")
    assert analyst.console_errors == []

    # 7. A new move-in shows the new step with its two fields.
    _start_move_in(agent, "quintard", "Mme Zoé Quintard")
    expect(agent.locator("#task-name")).to_have_text("Prendre rendez-vous")
    expect(agent.locator("#f-slot")).to_have_attribute("type", "date")
    expect(agent.locator("#f-note")).to_be_visible()
    agent.locator("#f-slot").fill("2026-12-03")
    agent.locator("#complete-task").click()
    expect(agent.locator("#task-name")).to_have_text("Vérifier l'identité du nouvel occupant")

    # 8. The move-in started before still follows version 1: no appointment step after identity.
    agent.goto(started_before)
    expect(agent.locator("#task-name")).to_have_text("Vérifier l'identité du nouvel occupant")
    agent.locator("#f-identity_checked").check()
    agent.locator("#f-move_in_on").fill("2026-12-01")
    agent.locator("#complete-task").click()
    expect(agent.locator("#task-name")).to_have_text("Relever l'index d'entrée")
    assert agent.console_errors == []

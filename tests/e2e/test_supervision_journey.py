"""Supervision and data protection in the browser (issue 11). A front-desk agent opens a customer
(her birth date masked), traces a move-in and starts its action plan; the region's supervisor sees
the contact on the dashboard, narrows it to the agency and to another one, downloads a chart's CSV,
sends the agent's task back to the team's queue (only agents of its role are offered) and gives it
to her again; the data protection officer opens the customer (birth date shown) and
downloads the access export, which lists the contact and who consulted the customer. Served from a
database of its own, so that the numbers do not depend on the other journeys."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serving
from tests.e2e.test_contact_journey import open_customer
from tests.e2e.test_designer_journey import _page, _start_move_in
from tests.e2e.test_login_journey import SCREENSHOTS, _log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def supervision_server(tmp_path_factory):
    with serving(tmp_path_factory, "_e2e_supervision") as url:
        yield url


def _choose(page, select: str, text: str) -> None:
    """Select the option whose text contains text (the territory list indents agencies)."""
    page.locator(select).select_option(page.locator(f"{select} option", has_text=text).get_attribute("value"))


def _sign_in(page, login: str, name: str) -> None:
    """Log in and wait for the page's scripts: the quick search answers only once they are loaded."""
    _log_in(page, login)
    expect(page.locator("#agent-name")).to_have_text(name)
    page.wait_for_load_state()


def _log_out(page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/login"))


def test_supervisor_dashboard_reassignment_and_access_export(browser, supervision_server):
    page = _page(browser, supervision_server)
    today = datetime.now(ZoneInfo("Europe/Paris")).date()

    # 1. The front desk: birth date masked, a move-in traced and its action plan started.
    _sign_in(page, "accueil.lyon", "Camille Lefèvre")
    open_customer(page, "quintard", "Mme Zoé Quintard")
    expect(page.locator("#party-birth-date")).to_contain_text("•• / •• / ••••")
    expect(page.locator("#action-privacy")).to_have_count(0)
    _start_move_in(page, "quintard", "Mme Zoé Quintard")
    _log_out(page)

    # 2. The supervisor's dashboard: today's contact, within the region and within the agency.
    _sign_in(page, "superviseur.ara", "Sophie Martin-Duval")
    page.locator("#supervision-link").click()
    expect(page.locator("h1")).to_have_text("Tableau de bord de supervision")
    contacts = page.locator("#chart-contacts")
    expect(contacts.locator("svg.chart")).to_be_visible()
    contacts.locator("summary").click()
    last_row = contacts.locator("table.chart-table tbody tr").last
    expect(last_row.locator("td").last).to_have_text("1")  # today, the period's last day
    for key in ("dossiers", "backlog", "tasks", "dunning", "closing"):
        expect(page.locator(f"#chart-{key}")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "supervision-dashboard.png"), full_page=True)

    _choose(page, "#filter-territory", "Agence Lyon Métropole")
    page.locator("#filter-apply").click()
    expect(page).to_have_url(re.compile(r"territoire=\d+"))
    expect(page.locator("#chart-contacts svg.chart")).to_be_visible()
    _choose(page, "#filter-territory", "Agence Loire")
    page.locator("#filter-apply").click()
    expect(page.locator("#chart-contacts .empty-chart")).to_be_visible()
    page.locator("#filter-territory").select_option(label="Tous mes territoires")
    page.locator("#filter-apply").click()

    page.locator("#chart-contacts summary").click()
    with page.expect_download() as download:
        page.locator("#csv-contacts").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read()), delimiter=";"))
    assert rows[0][0] == "Jour" and rows[0][-1] == "Total"
    assert rows[-1][-1] == "1" and len(rows) == 31  # 30 days, today last

    # 3. Workload: the move-in's first step is the front-desk agent's; a back-office agent may not take it.
    page.locator("#tab-workload").click()
    expect(page.locator("#load-agents")).to_contain_text("Camille Lefèvre")
    page.locator("#load-agents a", has_text="Camille Lefèvre").click()
    tasks = page.locator("#task-list tbody tr")
    expect(tasks).to_have_count(1)
    page.locator("#check-all").check()
    expect(tasks.first.locator("input[type=checkbox]")).to_be_checked()
    # Only agents holding the task's role are offered: not the back office's Karim Benali.
    expect(page.locator("#reassign-to option", has_text="Camille Lefèvre")).to_have_count(1)
    expect(page.locator("#reassign-to option", has_text="Karim Benali")).to_have_count(0)
    page.locator("#reassign-to").select_option(index=0)  # back to the team's queue
    page.locator("#reassign-submit").click()
    expect(page.get_by_text("1 tâche(s) réaffectée(s).")).to_be_visible()
    expect(page.locator("#load-agents")).not_to_contain_text("Camille Lefèvre")
    expect(page.locator("#load-roles")).to_contain_text("Agent d'accueil")
    page.locator("#load-roles a", has_text="Agent d'accueil").click()
    page.locator("#check-all").check()
    _choose(page, "#reassign-to", "Camille Lefèvre")
    page.locator("#reassign-submit").click()
    expect(page.get_by_text("1 tâche(s) réaffectée(s).")).to_be_visible()
    expect(page.locator("#load-agents")).to_contain_text("Camille Lefèvre")
    page.locator("#tab-past-target").click()
    expect(page.locator("#past-target")).to_be_visible()
    assert page.console_errors == [], page.console_errors
    _log_out(page)

    # 4. The data protection officer: the birth date shown, the access export downloaded.
    _sign_in(page, "dpo", "Inès Moreau")
    open_customer(page, "quintard", "Mme Zoé Quintard")
    expect(page.locator("#party-birth-date")).to_contain_text("3 sept. 1979")
    page.locator("#action-privacy").click()
    expect(page.locator("#privacy-title")).to_have_text("Données personnelles (RGPD)")
    with page.expect_download() as download:
        page.locator("#export-json").click()
    export = json.loads(open(download.value.path(), encoding="utf-8").read())
    text = json.dumps(export, ensure_ascii=False)
    assert "Emménagement demandé au guichet." in text  # the contact traced in step 1
    assert "1979-09-03" in text
    seen_by = {row["agent"] for row in export["sections"]["consultations"]["data"]}
    assert seen_by == {"Camille Lefèvre", "Inès Moreau"}  # who consulted the customer, the officer included
    assert today.isoformat() in text
    with page.expect_download() as download:
        page.locator("#export-html").click()
    html = open(download.value.path(), encoding="utf-8").read()
    assert "Zoé" in html and "Quintard" in html and "Emménagement demandé au guichet." in html
    assert page.console_errors == [], page.console_errors
    page.context.close()

"""The dunning pages (app.dunning.pages): the procedure and its levels edited by an administrator
(audited, refusals writing nothing), the runs with their progress and the dry run shown to a
supervisor, a launch queued for the workers, and manual blocks within the agent's scope."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.db import session
from app.dunning import service as dunning
from app.dunning.models import DunningBlock, DunningLevel, DunningRun
from tests.conftest import csrf_token
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import contract_in, invoice
from tests.integration.test_contacts_hardening import _fresh_csrf
from tests.integration.test_dunning import AS_OF, dun_fixture, owing  # noqa: F401 (fixture)
from tests.integration.test_process_instances import world_fixture  # noqa: F401 (fixture)


def _as(auth, agent) -> None:
    _fresh_csrf()
    auth.login(agent.login)
    _fresh_csrf()


def _page(client, url: str) -> tuple[str, str]:
    _fresh_csrf()
    html = client.get(url).get_data(as_text=True)
    return html, csrf_token(html)


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture(name="admin")
def admin_fixture(dun):
    return AgentFactory(full_name="Ada Admin", roles=[role_with("admin")], territories=[dun.places["region"]])


@pytest.fixture(name="supervisor")
def supervisor_fixture(dun):
    return AgentFactory(full_name="Sophie Superviseur", roles=[role_with("superviseur")],
                        territories=[dun.places["lyon_agency"]])


def test_an_administrator_changes_the_grace_and_the_levels_with_an_audit_trail(dun, admin, client, auth):
    _as(auth, admin)
    url = f"/referentiels/relances/{dun.procedure.id}"
    assert client.get("/referentiels/relances").headers["Location"].endswith(url)  # the one procedure
    html, token = _page(client, url)
    assert "Relance standard" in html and 'id="level-3"' in html and "formal_notice" in html
    response = client.post(url, data={"csrf_token": token, "what": "procedure", "procedure-label": "Relance eau",
                                      "procedure-grace_days": "10", "procedure-dossier_type_id": dun.relaunch.id,
                                      "procedure-active": "y"})
    assert response.status_code == 302
    session.refresh(dun.procedure)
    assert (dun.procedure.label, dun.procedure.grace_days) == ("Relance eau", 10)
    response = client.post(url, data={"csrf_token": token, "what": "level", "level-rank": "4",
                                      "level-label": "Dernier avis", "level-delay_days": "45",
                                      "level-min_amount": "20,50", "level-letter_template": "formal_notice",
                                      "level-mail_template": "", "level-agent_task": "y"})
    assert response.status_code == 302
    fourth = session.execute(select(DunningLevel).where(DunningLevel.rank == 4)).scalar_one()
    assert (str(fourth.min_amount), fourth.letter_template, fourth.mail_template, fourth.agent_task) == (
        "20.50", "formal_notice", None, True)
    audited = session.execute(select(AuditEntry.object_type, AuditEntry.action).where(
        AuditEntry.object_type.in_(("dunning_procedure", "dunning_level")))).all()
    assert ("dunning_procedure", "update") in audited and ("dunning_level", "create") in audited

    edit = f"{url}/niveaux/{fourth.id}"
    html, token = _page(client, edit)
    assert 'value="Dernier avis"' in html
    assert client.post(edit, data={"csrf_token": token, "level-rank": "4", "level-label": "Dernier avis",
                                   "level-delay_days": "60", "level-min_amount": "20.50"}).status_code == 302
    session.refresh(fourth)
    assert fourth.delay_days == 60 and fourth.letter_template is None


@pytest.mark.parametrize(("fields", "where", "message"), [
    ({"level-rank": "4", "level-delay_days": "20"}, "level-delay_days", "Les délais croissent avec le rang"),
    ({"level-rank": "2", "level-delay_days": "50"}, "level-rank", "déjà un niveau 2"),
    ({"level-rank": "4", "level-delay_days": "50", "level-letter_template": "nope"}, "level-letter_template",
     "Modèle inconnu ou désactivé"),
    ({"level-rank": "4", "level-delay_days": "50", "level-min_amount": "3,456"}, "level-min_amount",
     "deux décimales"),
    ({"level-rank": "4", "level-delay_days": "50", "level-label": ""}, "level-label", "Un libellé"),
])
def test_a_bad_level_is_refused_beside_its_field_and_nothing_is_written(dun, admin, client, auth, fields, where,
                                                                         message):
    _as(auth, admin)
    url = f"/referentiels/relances/{dun.procedure.id}"
    _html, token = _page(client, url)
    before = (_count(DunningLevel), _count(AuditEntry))
    response = client.post(url, data={"csrf_token": token, "what": "level", "level-label": "Niveau",
                                      "level-min_amount": "5", **fields})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'id="{where}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{where}"', html), where
    assert message in html.replace("&#39;", "'")
    assert (_count(DunningLevel), _count(AuditEntry)) == before


def test_the_procedure_must_open_its_dossiers_in_a_one_per_contract_classification(dun, admin, client, auth):
    from app.dossiers import service as dossiers

    _as(auth, admin)
    url = f"/referentiels/relances/{dun.procedure.id}"
    _html, token = _page(client, url)
    claim = dossiers.type_by_code("RECLAMATION")
    response = client.post(url, data={"csrf_token": token, "what": "procedure", "procedure-label": "X",
                                      "procedure-grace_days": "7", "procedure-dossier_type_id": claim.id,
                                      "procedure-active": "y"})
    assert response.status_code == 422 and "un dossier ouvert par contrat" in response.get_data(as_text=True)
    session.refresh(dun.procedure)
    assert dun.procedure.dossier_type_id == dun.relaunch.id


def test_a_supervisor_follows_the_runs_and_tries_a_dry_run_that_writes_nothing(dun, supervisor, client, auth):
    run, chunks = dunning.start_run(as_of=AS_OF, trigger="beat")
    session.commit()
    _as(auth, supervisor)
    html = client.get("/relances").get_data(as_text=True)
    row = re.search(rf'<tr id="run-{run.id}"[^>]*>', html).group(0)
    assert 'hx-trigger="every 2s"' in row and f"/relances/{run.id}/avancement" in row  # refreshes itself
    assert "<progress" in html
    dunning.run_chunk(run.id, 0, chunks[0])
    fragment = client.get(f"/relances/{run.id}/avancement").get_data(as_text=True)
    assert "hx-trigger" not in fragment and "Terminée" in fragment  # done: it stops refreshing

    blocked = owing(dun, "BLK-P", "50.00", date(2026, 2, 1))
    session.add(DunningBlock(contract_id=blocked.id, until=AS_OF, reason="Réclamation"))
    loire = contract_in(dun.places["saint_etienne"], "STE-1", [(dun.bernard, "holder")])
    invoice(loire, "STE-1-F", issued=date(2026, 1, 1), due=date(2026, 2, 1), amount="75.00")
    session.commit()
    before = (_count(DunningRun), _count(AuditEntry))
    html = client.get("/relances", query_string={"day": AS_OF.isoformat()}).get_data(as_text=True)
    result = html[html.index('id="dry-run-result"'):]
    assert "BLK-P" in result and "relance bloquée" in result
    assert "CW-EAU-1" in result and "dossier de relance déjà ouvert" in result  # opened by the run above
    assert "1 dossier serait ouvert" in result  # the whole run: Saint-Étienne's contract too…
    assert "STE-1" not in result  # …but a Lyon supervisor's list shows only what they may read
    assert (_count(DunningRun), _count(AuditEntry)) == before


def test_a_launch_records_the_run_and_queues_its_chunks_for_the_workers(dun, supervisor, client, auth, monkeypatch):
    import workers.tasks as tasks

    queued = []
    monkeypatch.setattr(tasks.dunning_chunk, "delay", lambda *args: queued.append(args))
    _as(auth, supervisor)
    _html, token = _page(client, "/relances")
    response = client.post("/relances/lancer", data={"csrf_token": token})
    assert response.status_code == 302
    run = session.execute(select(DunningRun)).scalar_one()
    assert run.trigger == f"agent:{supervisor.login}" and run.selected == 1
    assert queued == [(run.id, 0, [dun.contract.id])]


def test_a_back_office_agent_blocks_a_contract_in_scope_only(dun, client, auth):
    _as(auth, dun.colleague)  # back office, Lyon agency
    html, token = _page(client, "/relances/blocages")
    until = (AS_OF + timedelta(days=30)).isoformat()
    response = client.post("/relances/blocages", data={"csrf_token": token, "contract_number": "CW-EAU-1",
                                                       "until": until, "reason": "Réclamation à l'étude"})
    assert response.status_code == 302
    assert dunning.select_contracts(dun.procedure, AS_OF).skipped["blocked"] == 1
    block = session.execute(select(DunningBlock)).scalar_one()
    assert block.created_by_id == dun.colleague.id
    html, token = _page(client, "/relances/blocages")
    assert f'id="block-{block.id}"' in html
    assert client.post(f"/relances/blocages/{block.id}/lever", data={"csrf_token": token}).status_code == 302
    assert dunning.select_contracts(dun.procedure, AS_OF).skipped["blocked"] == 0

    _fresh_csrf()
    auth.logout()
    _as(auth, dun.bo_loire)  # the Loire agency does not see Lyon's contracts: the same answer as unknown
    html, token = _page(client, "/relances/blocages")
    for number in ("CW-EAU-1", "NOPE-1"):
        response = client.post("/relances/blocages", data={"csrf_token": token, "contract_number": number,
                                                           "until": until, "reason": "x"})
        assert response.status_code == 422
        assert f"Aucun contrat n° {number} dans votre périmètre." in response.get_data(as_text=True)
    assert f'id="block-{block.id}"' not in html
    assert client.post(f"/relances/blocages/{block.id}/lever", data={"csrf_token": token}).status_code == 404


def test_each_page_needs_its_permission(dun, client, auth):
    _as(auth, dun.agent)  # front desk: neither referentials, supervision nor dunning.manage
    for url in ("/referentiels/relances", f"/referentiels/relances/{dun.procedure.id}", "/relances",
                "/relances/blocages", "/relances/1/avancement"):
        assert client.get(url).status_code == 403, url
    _html, token = _page(client, "/")
    for url in ("/relances/lancer", "/relances/blocages/1/lever"):
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url

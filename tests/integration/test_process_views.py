"""The processes over HTTP: "Plan d'action" on a contact, the task page (instructions, context,
form, progress diagram), completing a step with French messages beside the fields, drafts, the
inboxes, the dossier's steps, supervision (retry, cancel, reassign), and scope: an agent of
another territory gets the same 404 as for a missing page."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.db import session
from app.dossiers.models import Dossier
from app.processes import engine
from app.processes import service as processes
from app.processes.models import InstanceStatus, ProcessInstance, ProcessTask, TaskStatus
from tests.conftest import csrf_token
from tests.integration.contacts_world import contact_type, dossier_type
from tests.integration.test_contacts_dossiers import new_contact
from tests.integration.test_contacts_hardening import _fresh_csrf
from tests.integration.test_process_instances import (  # noqa: F401 (fixture)
    FORM,
    GATEWAY_BODY,
    SERVICE_BODY,
    deploy,
    open_dossier,
    the_task,
    world_fixture,
)


def _login(auth, agent) -> None:
    _fresh_csrf()
    auth.login(agent.login)


def _post(client, url: str, data: dict, page_url: str | None = None):
    _fresh_csrf()
    page = client.get(page_url or url)
    return client.post(url, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


@pytest.fixture
def move_in_contact(world):
    """A "demande d'emménagement" contact: its type proposes the move-in classification."""
    kind = dossier_type(label="Emménagement")
    kind.process_key, kind.auto_start = "move_in", True
    world.contact_type = contact_type(dossier_type=kind, label="Demande d'emménagement")
    return new_contact(world)


def test_action_plan_opens_the_dossier_starts_its_process_and_shows_the_first_step(world, move_in_contact, client,
                                                                                  auth):
    _login(auth, world.agent)
    contact_page = client.get(f"/contacts/{move_in_contact.id}").get_data(as_text=True)
    assert 'id="action-plan"' in contact_page
    response = _post(client, f"/contacts/{move_in_contact.id}/plan-action", {}, f"/contacts/{move_in_contact.id}")
    assert response.status_code == 303
    dossier = session.execute(select(Dossier).order_by(Dossier.id.desc())).scalars().first()
    instance = processes.running_on(dossier_id=dossier.id)
    task = the_task(instance)
    assert response.headers["Location"].endswith(f"/taches/{task.id}")
    page = client.get(f"/taches/{task.id}").get_data(as_text=True)
    assert "Vérifier l&#39;identité" in page and 'id="task-instructions"' in page
    assert 'name="f-move_in_on"' in page and 'name="f-identity_checked"' in page
    assert dossier.reference in page and world.helene.number in page
    diagram = re.search(r'data-done="([^"]*)" data-current="([^"]*)"', page)
    assert "start" in diagram.group(1) and "identity" in diagram.group(2)
    assert client.get(f"/processus/{instance.id}/schema.bpmn").get_data(as_text=True).startswith("<?xml")
    # Twice: the same dossier and process, not a second one.
    again = _post(client, f"/contacts/{move_in_contact.id}/plan-action", {}, f"/contacts/{move_in_contact.id}")
    assert again.status_code == 303
    assert session.execute(select(ProcessInstance).where(ProcessInstance.dossier_id == dossier.id)).scalars().all() \
        == [instance]


def test_a_step_with_errors_is_shown_again_with_french_messages_and_nothing_saved(world, client, auth):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    task = the_task(instance)
    _login(auth, world.agent)
    response = _post(client, f"/taches/{task.id}", {"action": "complete", "f-move_in_on": "31/02/2026",
                                                    "f-phone": "0472000000"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in page and "obligatoire" in page
    assert 'value="0472000000"' in page  # what was typed is kept
    session.refresh(task)
    assert task.status == TaskStatus.READY and the_task(instance).id == task.id


def test_completing_steps_goes_on_to_the_next_one_and_a_draft_is_kept(world, client, auth):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    task = the_task(instance)
    _login(auth, world.agent)
    draft = _post(client, f"/taches/{task.id}", {"action": "draft", "f-phone": "04 72 00 00 00"})
    assert draft.status_code == 303
    assert 'value="04 72 00 00 00"' in client.get(f"/taches/{task.id}").get_data(as_text=True)
    done = _post(client, f"/taches/{task.id}", {"action": "complete", "f-identity_checked": "on",
                                                "f-move_in_on": "2026-04-01", "f-email": "helene@example.fr"})
    assert done.status_code == 303
    following = the_task(instance)
    assert following.element_id == "meter" and done.headers["Location"].endswith(f"/taches/{following.id}")
    page = client.get(f"/taches/{following.id}").get_data(as_text=True)
    assert re.search(r'data-done="[^"]*identity', page)
    # What the first step answered, as its form labels it, for whoever does the next ones.
    answers = page[page.index('id="process-answers"'):]
    assert "Pièce d&#39;identité vérifiée</dt><dd>Oui" in answers and "helene@example.fr" in answers
    assert "1 avril 2026" in answers


def test_inboxes_list_mine_and_my_teams_within_my_territories(world, client, auth):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    for answers in ({"identity_checked": True, "move_in_on": "2026-04-01"}, {"index_value": 12, "source": "client"}):
        processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=answers)
    session.commit()
    task = the_task(instance)
    _login(auth, world.bo_lyon)
    assert "Choisir l&#39;offre" not in client.get("/taches").get_data(as_text=True)  # not mine yet
    team = client.get("/taches?vue=equipe").get_data(as_text=True)
    assert f"/taches/{task.id}" in team
    assert _post(client, f"/taches/{task.id}", {"action": "claim"}).status_code == 303
    assert f"/taches/{task.id}" in client.get("/taches").get_data(as_text=True)
    auth.logout()
    _login(auth, world.bo_loire)
    assert f"/taches/{task.id}" not in client.get("/taches?vue=equipe").get_data(as_text=True)
    for url in (f"/taches/{task.id}", f"/processus/{instance.id}", f"/processus/{instance.id}/schema.bpmn"):
        assert client.get(url).status_code == 404


def test_the_dossier_page_lists_its_steps_and_starts_its_process(world, client, auth):
    dossier = open_dossier(world, "reading_dispute")
    _login(auth, world.agent)
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert 'id="start-process"' in page
    response = _post(client, f"/dossiers/{dossier.id}/processus", {}, f"/dossiers/{dossier.id}")
    assert response.status_code == 303
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert 'id="dossier-steps"' in page and 'id="start-process"' not in page


def test_supervisors_see_failed_instances_retry_and_cancel_them(world, client, auth):
    deploy("notify", SERVICE_BODY, {"form.json": FORM})
    instance = processes.start(key="notify", agent=world.agent, dossier=open_dossier(world, "notify"))
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers={"amount": 3})
    session.commit()
    assert instance.status == InstanceStatus.ERROR
    _login(auth, world.agent)
    assert client.get("/supervision/processus").status_code == 403
    assert _post(client, f"/processus/{instance.id}/relancer", {}, f"/processus/{instance.id}").status_code == 403
    auth.logout()
    _login(auth, world.supervisor)
    listing = client.get("/supervision/processus").get_data(as_text=True)
    assert f"/processus/{instance.id}" in listing and "n&#39;est pas disponible" in listing
    page = client.get(f"/processus/{instance.id}").get_data(as_text=True)
    assert 'id="instance-error"' in page and 'id="retry-instance"' in page
    engine.register_operation("notify_agent", lambda data, params: {"ok": True})
    try:
        assert _post(client, f"/processus/{instance.id}/relancer", {}, f"/processus/{instance.id}").status_code == 303
    finally:
        engine._operations.pop("notify_agent", None)
    session.refresh(instance)
    assert instance.status == InstanceStatus.COMPLETED

    other = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    refused = _post(client, f"/processus/{other.id}/annuler", {"reason": ""}, f"/processus/{other.id}")
    assert refused.status_code == 303
    session.refresh(other)
    assert other.status == InstanceStatus.RUNNING
    _post(client, f"/processus/{other.id}/annuler", {"reason": "Demande retirée par le client"},
          f"/processus/{other.id}")
    session.refresh(other)
    assert other.status == InstanceStatus.CANCELLED
    assert "Demande retirée" in client.get(f"/processus/{other.id}").get_data(as_text=True)


def test_a_supervisor_reassigns_a_step_from_the_instance_page(world, client, auth):
    instance = processes.start(key="move_in", agent=world.agent, dossier=open_dossier(world, "move_in"))
    session.commit()
    task = the_task(instance)
    _login(auth, world.supervisor)
    page = client.get(f"/processus/{instance.id}").get_data(as_text=True)
    assert f'id="reassign-{task.id}"' in page
    response = _post(client, f"/taches/{task.id}/reaffecter", {"agent": str(world.loire_agent.id)},
                     f"/processus/{instance.id}")
    assert response.status_code == 303
    assert session.get(ProcessTask, task.id).assignee_id == world.agent.id  # refused: out of that agent's scope
    _post(client, f"/taches/{task.id}/reaffecter", {"agent": ""}, f"/processus/{instance.id}")
    session.expire_all()
    assert session.get(ProcessTask, task.id).assignee_id is None


def test_the_billing_system_sends_a_message_to_a_dossiers_process_within_its_territories(world, client):
    from tests.integration.test_contact_views import _api_token

    deploy("paid", GATEWAY_BODY)
    dossier = open_dossier(world, "paid")
    instance = processes.start(key="paid", agent=None, dossier=dossier)
    session.commit()
    lyon, loire = _api_token("A-LYON", permissions=("process.message",)), _api_token("A-LOIRE", permissions=(
        "process.message",))
    url = f"/api/v1/dossiers/{dossier.reference}/messages"
    body = {"name": "facture_payee", "payload": {"invoice": "CW-F-1", "amount": "84.20"}}
    assert client.post(url, headers={"Authorization": f"Bearer {loire}"}, json=body).status_code == 404
    assert client.post(url, headers={"Authorization": f"Bearer {_api_token('A-LYON')}"}, json=body).status_code == 403
    bad = client.post(url, headers={"Authorization": f"Bearer {lyon}"}, json={"name": "", "payload": []})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"name", "payload"}
    response = client.post(url, headers={"Authorization": f"Bearer {lyon}"}, json=body)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["delivered"] is True
    session.refresh(instance)
    assert instance.status == InstanceStatus.COMPLETED
    again = client.post(url, headers={"Authorization": f"Bearer {lyon}"}, json=body)
    assert again.status_code == 409

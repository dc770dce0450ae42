"""The affaire mirror (app.integration.connector) against the stand-in billing system, run as its
own process on loopback: a dossier's affaire created once with its number stored, its status
changes pushed after it and in order, the billing system down then back (the dossier works
meanwhile, the calls wait with a backoff and go through afterwards, once each), a worker that
died after the call, a refusal shown to supervisors and sent again, and the connector off."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit.context import set_actor
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import DossierStatus
from app.integration import connector
from app.integration.models import AffaireSync, SyncAction, SyncStatus
from tests.conftest import csrf_token
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import NOW, build_world
from tests.integration.test_contacts_hardening import _fresh_csrf
from tests.integration.test_mails import free_port
from tests.integration.test_process_instances import open_dossier

ROOT = Path(__file__).resolve().parents[2]


class BillingStandIn:
    """tools/billing_service.py as a real process; stop() and start() again keep its SQLite state."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.database = folder / "billing.sqlite"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.billing_service", "--port", str(self.port), "--db", str(self.database)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).close()  # noqa: S310
                return
            except OSError:
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def affaires(self) -> list[dict]:
        return self.get("/affaires")["affaires"]


@pytest.fixture
def billing(app, monkeypatch, tmp_path):
    stand_in = BillingStandIn(tmp_path)
    stand_in.start()
    monkeypatch.setitem(app.config, "BILLING_API_URL", stand_in.url)
    monkeypatch.setitem(app.config, "BILLING_TIMEOUT_SECONDS", 5)
    yield stand_in
    stand_in.stop()


@pytest.fixture(name="world")
def world_fixture(app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    found = build_world(places, customer)
    found.frozen_clock = frozen_clock
    return found


def rows(dossier_id: int) -> list[AffaireSync]:
    session.expire_all()
    return list(session.execute(select(AffaireSync).where(AffaireSync.dossier_id == dossier_id)
                                .order_by(AffaireSync.id)).scalars())


def move(world, dossier, status: str):
    return dossiers.change_status(agent=world.bo_lyon, dossier_id=dossier.id, status=status)


def test_a_new_dossier_gets_its_affaire_and_its_status_changes_follow_in_order(world, billing):
    dossier = open_dossier(world, "information_request")
    [create] = rows(dossier.id)
    assert (create.action, create.status, create.idempotency_key) == (
        SyncAction.CREATE, SyncStatus.PENDING, f"guichet-affaire-create-{dossier.reference}")
    assert create.payload["customers"] == [world.helene.number]
    assert create.payload["contracts"] == [world.contract.number]
    move(world, dossier, DossierStatus.IN_PROGRESS)
    move(world, dossier, DossierStatus.CLOSED)
    session.commit()

    assert connector.deliver_due() == {"done": 3}
    session.refresh(dossier)
    assert dossier.external_ref == "AFF-000001"
    assert [r.status for r in rows(dossier.id)] == [SyncStatus.DONE] * 3
    mirrored = billing.get("/affaires/AFF-000001")
    assert mirrored["dossier_reference"] == dossier.reference and mirrored["classification"]
    assert mirrored["history"] == ["in_progress", "closed"] and mirrored["status"] == "closed"
    assert connector.deliver_due() == {}  # nothing more to send
    assert connector.state_of(dossier).state == "done"


def test_the_number_arriving_does_not_stale_the_page_an_agent_has_open(world, billing, client, auth):
    dossier = open_dossier(world, "information_request")
    _fresh_csrf()
    auth.login(world.bo_lyon.login)
    _fresh_csrf()
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert connector.deliver_due() == {"done": 1}  # the worker stores AFF-000001 meanwhile
    response = client.post(f"/dossiers/{dossier.id}/statut", data={
        "csrf_token": csrf_token(page), "status": DossierStatus.IN_PROGRESS, "version": str(dossier.version)},
        follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "modifié par quelqu" not in html and "AFF-000001" in html
    session.refresh(dossier)
    assert (dossier.status, dossier.external_ref) == (DossierStatus.IN_PROGRESS, "AFF-000001")
    assert "Affaire créée dans le SI facturation" in html


def test_the_billing_system_down_then_back_the_calls_wait_then_go_through_once_in_order(world, billing):
    billing.stop()
    dossier = open_dossier(world, "information_request")
    move(world, dossier, DossierStatus.IN_PROGRESS)  # the dossier works while the billing system is down
    session.commit()

    assert connector.deliver_due() == {"retry": 1}  # the create fails; the status waits behind it
    create, status = rows(dossier.id)
    assert (create.status, create.attempts, status.attempts) == (SyncStatus.PENDING, 1, 0)
    assert create.next_attempt_at == NOW + timedelta(seconds=15) and create.last_error
    state = connector.state_of(dossier)
    assert (state.state, state.waiting, state.attempts) == ("pending", 2, 1)
    assert connector.deliver_due() == {}  # not before its next attempt
    world.frozen_clock.advance(seconds=16)
    assert connector.deliver_due() == {"retry": 1}
    assert rows(dossier.id)[0].next_attempt_at == NOW + timedelta(seconds=16 + 30)  # doubled

    billing.start()
    world.frozen_clock.advance(minutes=5)
    assert connector.deliver_due() == {"done": 2}
    assert [a["dossier_reference"] for a in billing.affaires()] == [dossier.reference]
    assert billing.get("/affaires/AFF-000001")["history"] == ["in_progress"]


def test_a_worker_that_died_after_the_call_creates_no_second_affaire(world, billing):
    dossier = open_dossier(world, "information_request")
    assert connector.deliver_one() == "done"
    session.rollback()  # the billing system created it; our commit never happened
    assert rows(dossier.id)[0].status == SyncStatus.PENDING
    assert connector.deliver_due() == {"done": 1}  # the same key again: the same answer
    session.refresh(dossier)
    assert dossier.external_ref == "AFF-000001"
    assert len(billing.affaires()) == 1


def test_a_refusal_is_shown_and_a_supervisor_sends_it_again(world, billing, client, auth):
    dossier = open_dossier(world, "information_request")
    create = rows(dossier.id)[0]
    create.payload = {**create.payload, "status": "archived"}  # a value the billing system refuses
    session.commit()
    assert connector.deliver_due() == {"failed": 1}
    failed = rows(dossier.id)[0]
    assert failed.status == SyncStatus.FAILED and "422" in failed.last_error and "status" in failed.last_error

    supervisor = AgentFactory(roles=[role_with("superviseur")], territories=[world.places["lyon_agency"]])
    _fresh_csrf()
    auth.login(supervisor.login)
    _fresh_csrf()
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert "refusé par le SI facturation" in page and 'id="retry-affaire"' in page
    failed.payload = {**failed.payload, "status": "open"}  # corrected
    session.commit()
    response = client.post(f"/dossiers/{dossier.id}/affaire/relancer", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert connector.deliver_due() == {"done": 1}
    assert "AFF-000001" in client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)


def test_an_agent_cannot_send_again_and_an_agent_elsewhere_gets_404(world, billing, client, auth):
    dossier = open_dossier(world, "information_request")
    _fresh_csrf()
    auth.login(world.agent.login)
    _fresh_csrf()
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert 'id="retry-affaire"' not in page
    assert client.post(f"/dossiers/{dossier.id}/affaire/relancer",
                       data={"csrf_token": csrf_token(page)}).status_code == 403
    other = AgentFactory(roles=[role_with("superviseur")], territories=[world.places["loire_agency"]])
    _fresh_csrf()
    auth.logout()
    _fresh_csrf()
    auth.login(other.login)
    _fresh_csrf()
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post(f"/dossiers/{dossier.id}/affaire/relancer", data={"csrf_token": token}).status_code == 404


def test_with_the_connector_off_nothing_is_written_and_the_page_says_so(world, app, monkeypatch, client, auth):
    monkeypatch.setitem(app.config, "BILLING_API_URL", None)
    dossier = open_dossier(world, "information_request")
    move(world, dossier, DossierStatus.IN_PROGRESS)
    session.commit()
    assert rows(dossier.id) == []
    _fresh_csrf()
    auth.login(world.agent.login)
    assert "pas de liaison avec le SI facturation" in client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)


def test_a_dossier_opened_through_the_api_is_mirrored_too(world, billing):
    from app.api.dossiers import open_from_request

    set_actor(actor_id=None, actor_label="api:test")
    dossier = open_from_request({"classification": open_dossier(world, "information_request").dossier_type.code,
                                 "parties": [{"number": world.helene.number}]},
                                territories=[world.places["region"]])
    session.commit()
    assert [r.action for r in rows(dossier.id)] == [SyncAction.CREATE]

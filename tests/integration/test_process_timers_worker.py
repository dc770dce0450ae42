"""Process timers fired by a real Celery worker, on the broker of the run (the embedded one with
SQLite, Redis with PostgreSQL): a worker killed after stepping the instance and before saving it
loses nothing — neither the step nor the reminder letter it generated is half-saved — and the next
worker fires the timer, and generates the letter, exactly once."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery import Celery

from tests.integration.test_worker import _broker_url, worker_database  # noqa: F401, F811 (fixture)

ROOT = Path(__file__).resolve().parents[2]

# Run in the worker's database by a separate process (the tests' own session is bound elsewhere):
# a dossier whose relaunch process waits on its first timer, made due now.
SETUP = """
from datetime import timedelta
from app import create_app, clock
from app.audit.context import set_actor
from app.contacts.links import Links, PartyLink
from app.db import session
from app.documents import templates
from app.dossiers import service as dossiers
from app.dossiers.models import DossierType
from app.parties.models import Party
from app.processes import definitions, service as processes
from app.processes.models import ProcessTimer
from app.security.models import Territory

app = create_app()
with app.app_context():
    set_actor(actor_id=None, actor_label="setup")
    from pathlib import Path
    definitions.deploy_directory(Path("bpmn"), ["unpaid_relaunch"])
    templates.deploy_directory(Path("templates_docs"))  # the reminders its steps generate
    territory = Territory(code="T-TIMER", name="Timers", kind="agency", path="/T-TIMER/")
    session.add(territory)
    session.flush()
    party = Party(number="TIMER0001", last_name="Minuteur", status="customer", territory_id=territory.id)
    from datetime import date
    from decimal import Decimal
    from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
    from app.contacts.links import ObjectLink
    from app.contacts.objects import Ref
    point = ServicePoint(external_ref="TIMER-SP", kind="water", territory_id=territory.id)
    contract = Contract(number="TIMER-C", external_ref="TIMER-C", service_point=point, status="active",
                        start_date=date(2020, 1, 1), parties=[ContractParty(party=party, role="holder")])
    session.add(Invoice(number="TIMER-F", external_ref="TIMER-F", contract=contract, issued_on=date(2026, 1, 1),
                        due_on=date(2026, 2, 1), amount=Decimal("80.00"), amount_paid=Decimal("0.00"),
                        status="open"))  # what the relaunch chases
    kind = DossierType(code="RELANCE-T", label="Relance", process_key="unpaid_relaunch", target_days=60)
    session.add_all([party, kind])
    from app.seed.referentials import standard_procedure
    session.add(standard_procedure(kind, code="P-TIMER"))  # the levels the relaunch applies
    session.flush()
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id,
                                    links=Links(parties=[PartyLink(party.id, "customer")],
                                                objects=[ObjectLink(Ref("contract", contract.id))]))
    instance = processes.start(key="unpaid_relaunch", agent=None, dossier=dossier)
    timer = session.query(ProcessTimer).filter_by(instance_id=instance.id).one()
    timer.due_at = clock.now() - timedelta(seconds=5)
    session.commit()
    print(instance.id)
"""


def _run_setup(url: str, tmp_path: Path) -> int:
    env = {**os.environ, "DATABASE_URL": url, "GUICHET_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "worker-test",
           "TZ": "UTC"}
    done = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.strip().splitlines()[-1])


def _start_worker(url: str, broker: str, tmp_path: Path, **extra_env) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker, "GUICHET_INSTANCE_DIR": str(tmp_path),
           "SECRET_KEY": "worker-test", "TZ": "UTC", **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"timers-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _state(engine, instance_id: int) -> dict:
    with engine.connect() as connection:
        revision, status = connection.execute(sa.text(
            "SELECT revision, status FROM process_instance WHERE id = :id"), {"id": instance_id}).one()
        timers = connection.execute(sa.text(
            "SELECT element_id FROM process_timer WHERE instance_id = :id"), {"id": instance_id}).scalars().all()
        fired = connection.execute(sa.text(
            "SELECT count(*) FROM audit_entry WHERE object_type = 'process_instance' AND object_id = :id "
            "AND action = 'timer'"), {"id": str(instance_id)}).scalar_one()
        letters = connection.execute(sa.text(  # the reminders its steps generated
            "SELECT e.title FROM dossier_element e JOIN process_instance i ON i.dossier_id = e.dossier_id "
            "WHERE i.id = :id AND e.kind = 'letter' ORDER BY e.id"), {"id": instance_id}).scalars().all()
    return {"revision": revision, "status": status, "timers": timers, "fired": fired, "letters": letters}


@pytest.mark.worker
@pytest.mark.no_db_transaction
def test_a_worker_killed_between_firing_and_saving_loses_nothing_and_the_timer_fires_once(worker_database, tmp_path):  # noqa: F811
    url, engine = worker_database
    broker = _broker_url(tmp_path)
    client = Celery(broker=broker)
    if broker.startswith("redis"):
        client.connection_for_write().default_channel.client.flushdb()
    instance_id = _run_setup(url, tmp_path)
    before = _state(engine, instance_id)
    assert before["timers"] == ["wait"] and before["status"] == "waiting" and before["fired"] == 0
    assert before["letters"] == ["Premier rappel d'impayé"]

    # A worker that dies right after stepping the instance, before its commit.
    doomed = _start_worker(url, broker, tmp_path, GUICHET_FAULT_INJECTION="timer_after_fire")
    try:
        client.send_task("workers.tasks.fire_due_timers")
        assert doomed.wait(timeout=90) == 9, "the worker should have died in the middle of the timer"
    finally:
        if doomed.poll() is None:
            doomed.kill()
        print(doomed.communicate()[0][-3000:])
    assert _state(engine, instance_id) == before  # nothing half-saved

    # The next worker (and the redelivered task) fire it, once.
    worker = _start_worker(url, broker, tmp_path)
    try:
        client.send_task("workers.tasks.fire_due_timers")
        deadline = time.monotonic() + 90
        while len(_state(engine, instance_id)["letters"]) < 2:
            assert worker.poll() is None, "the worker stopped"
            assert time.monotonic() < deadline, "the timer did not fire"
            time.sleep(0.5)
        client.send_task("workers.tasks.fire_due_timers")  # a later run finds nothing more to fire
        time.sleep(3)
        after = _state(engine, instance_id)
    finally:
        worker.terminate()
        print(worker.communicate(timeout=30)[0][-3000:])
    assert after == {"revision": before["revision"] + 1, "status": "waiting", "timers": ["wait"], "fired": 1,
                     "letters": ["Premier rappel d'impayé", "Second rappel d'impayé"]}  # the second, once

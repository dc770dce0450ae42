"""A dunning run worked by real Celery workers on the broker of the run (Redis with PostgreSQL, the
embedded one with SQLite): a worker killed in the middle of a chunk, between a dossier written and
its commit, loses nothing and duplicates nothing — once the chunk is handed out again (redelivered
by Redis after its visibility timeout, or by the resume job), every eligible contract has exactly
one relaunch dossier, one process and one first letter, and the run is recorded as done."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery import Celery

from tests.integration.test_process_timers_worker import _start_worker
from tests.integration.test_worker import _broker_url, worker_database  # noqa: F401, F811 (fixture)

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = 25

# Run by a separate process in the workers' database: 25 contracts with an overdue invoice each,
# the demo referentials (the relaunch classification and its procedure), the process and letters.
SETUP = f"""
from datetime import date
from decimal import Decimal
from pathlib import Path
from app import create_app
from app.audit.context import set_actor
from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
from app.db import session
from app.documents import templates
from app.parties.models import Party
from app.processes import definitions
from app.security.models import Territory
from app.seed.referentials import seed_referentials

app = create_app()
with app.app_context():
    set_actor(actor_id=None, actor_label="setup")
    definitions.deploy_directory(Path("bpmn"), ["unpaid_relaunch"])
    templates.deploy_directory(Path("templates_docs"))
    seed_referentials()
    territory = Territory(code="T-DUN", name="Relances", kind="agency", path="/T-DUN/")
    session.add(territory)
    session.flush()
    for n in range({CONTRACTS}):
        party = Party(number=f"DUN{{n:06d}}", last_name=f"Débiteur {{n}}", status="customer",
                      territory_id=territory.id)
        point = ServicePoint(external_ref=f"DUN-SP-{{n}}", kind="water", street="1 rue de l'Eau", postal_code="69002",
                             city="Lyon", territory_id=territory.id)
        contract = Contract(number=f"DUN-C-{{n}}", external_ref=f"DUN-C-{{n}}", service_point=point, status="active",
                            start_date=date(2020, 1, 1), parties=[ContractParty(party=party, role="holder")])
        session.add(Invoice(number=f"DUN-F-{{n}}", external_ref=f"DUN-F-{{n}}", contract=contract,
                            issued_on=date(2026, 1, 1), due_on=date(2026, 2, 1), amount=Decimal("80.00"),
                            amount_paid=Decimal("0.00"), status="open"))
    session.commit()
"""


# Chunks of ten; Redis hands a lost worker's task out again after five seconds; no PDF copies.
RUN_SETTINGS = {"DUNNING_CHUNK_SIZE": "10", "CELERY_VISIBILITY_TIMEOUT": "5", "DOCUMENT_PDF": "off"}


def _env(url: str, broker: str, tmp_path: Path) -> dict:
    return {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker, "GUICHET_INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "worker-test", "TZ": "UTC", **RUN_SETTINGS}


def _state(engine) -> dict:
    with engine.connect() as connection:
        one = connection.execute(sa.text
                                 ("SELECT count(*), count(DISTINCT exclusive_contract_id) FROM dossier")).one()
        return {
            "dossiers": one[0], "contracts": one[1],
            "items": dict(connection.execute(sa.text(
                "SELECT outcome, count(*) FROM dunning_run_item GROUP BY outcome")).all()),
            "instances": connection.execute(sa.text("SELECT count(*) FROM process_instance")).scalar_one(),
            "letters": connection.execute(sa.text(
                "SELECT count(*) FROM dossier_element WHERE kind = 'letter'")).scalar_one(),
            "runs": [tuple(r) for r in connection.execute(sa.text(
                "SELECT status, selected FROM dunning_run ORDER BY id")).all()],
        }


@pytest.mark.worker
@pytest.mark.no_db_transaction
def test_a_worker_killed_mid_chunk_loses_nothing_and_the_retry_duplicates_nothing(worker_database, tmp_path):  # noqa: F811
    url, engine = worker_database
    broker = _broker_url(tmp_path)
    client = Celery(broker=broker)
    if broker.startswith("redis"):
        client.connection_for_write().default_channel.client.flushdb()
    setup = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=_env(url, broker, tmp_path),
                           capture_output=True, text=True, timeout=180)
    assert setup.returncode == 0, setup.stderr[-3000:]
    queued = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "dunning", "run", "--workers"],
                            cwd=ROOT, env=_env(url, broker, tmp_path), capture_output=True, text=True, timeout=180)
    assert queued.returncode == 0, queued.stderr[-3000:]
    assert f"{CONTRACTS} contrat(s) en 3 lot(s)" in queued.stdout

    # A worker that dies at its fifth dossier, after writing it and before its commit.
    doomed = _start_worker(url, broker, tmp_path, GUICHET_FAULT_INJECTION="dunning_after_open:5", **RUN_SETTINGS)
    try:
        assert doomed.wait(timeout=120) == 9, "the worker should have died in the middle of the chunk"
    finally:
        if doomed.poll() is None:
            doomed.kill()
        print(doomed.communicate()[0][-3000:])
    killed = _state(engine)
    assert (killed["dossiers"], killed["contracts"], killed["items"]) == (4, 4, {"opened": 4})  # nothing half-written
    assert killed["instances"] == killed["letters"] == 4

    # A new worker; the lost chunk comes back (Redis redelivers it; the resume job hands it out too).
    worker = _start_worker(url, broker, tmp_path, **RUN_SETTINGS)
    try:
        client.send_task("workers.tasks.dunning_resume", kwargs={"older_than_seconds": 0})
        deadline = time.monotonic() + 180
        while _state(engine)["runs"] != [("done", CONTRACTS)]:
            assert worker.poll() is None, "the worker stopped"
            assert time.monotonic() < deadline, f"the run did not finish: {_state(engine)}"
            time.sleep(1)
        time.sleep(8)  # chunks handed out twice (resumed, redelivered) find nothing left to do
        after = _state(engine)
    finally:
        worker.terminate()
        print(worker.communicate(timeout=60)[0][-3000:])
    assert after == {"dossiers": CONTRACTS, "contracts": CONTRACTS, "items": {"opened": CONTRACTS},
                     "instances": CONTRACTS, "letters": CONTRACTS, "runs": [("done", CONTRACTS)]}

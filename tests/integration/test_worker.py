"""A real Celery worker, on the broker of the configuration under test, runs the housekeeping job."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery import Celery

from tests.conftest import database_url, recreate_database
from tests.integration.test_migrations import _run

ROOT = Path(__file__).resolve().parents[2]


def _broker_url(tmp_path: Path) -> str:
    # PostgreSQL runs use the production broker (Redis); SQLite runs the embedded one.
    if os.environ.get("GUICHET_TEST_DATABASE_URL"):
        return os.environ.get("GUICHET_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    return f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"


@pytest.fixture
def worker_database(app, tmp_path_factory):
    url = recreate_database(database_url(tmp_path_factory, suffix="_worker"))
    engine = sa.create_engine(url)
    with app.app_context():
        _run(app, engine, "upgrade", "head")
    yield url, engine
    engine.dispose()


@pytest.fixture
def worker(worker_database, tmp_path):
    url, _engine = worker_database
    broker = _broker_url(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "GUICHET_INSTANCE_DIR": str(tmp_path),
        "SECRET_KEY": "worker-test",
        "TZ": "UTC",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = Celery(broker=broker)
    if broker.startswith("redis"):
        client.connection_for_write().default_channel.client.flushdb()
    yield client, process
    process.terminate()
    output = process.communicate(timeout=30)[0]
    print(output[-4000:])


def _ended(engine, session_id: str):
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT ended_at, end_reason FROM agent_session WHERE id = :id"), {"id": session_id}
        ).one()


@pytest.mark.worker
@pytest.mark.no_db_transaction
def test_worker_ends_idle_login_sessions(worker_database, worker):
    _url, engine = worker_database
    client, process = worker
    now = datetime.now(UTC)
    with engine.begin() as connection:
        agent_id = connection.execute(
            sa.text("INSERT INTO agent (login, full_name, password_hash, active, language, failed_logins, "
                    "created_at, updated_at, version) VALUES ('idle', 'Idle Agent', 'x', :t, 'fr', 0, :now, :now, 1) "
                    "RETURNING id"), {"t": True, "now": now}
        ).scalar_one()
        for sid, seen in (("stale", now - timedelta(hours=2)), ("fresh", now - timedelta(minutes=1))):
            connection.execute(
                sa.text("INSERT INTO agent_session (id, agent_id, created_at, last_seen_at) "
                        "VALUES (:id, :agent, :seen, :seen)"), {"id": sid, "agent": agent_id, "seen": seen}
            )

    client.send_task("workers.tasks.purge_login_sessions")
    deadline = time.monotonic() + 90
    while _ended(engine, "stale").ended_at is None:
        assert process.poll() is None, "the worker stopped"
        assert time.monotonic() < deadline, "the worker did not run the task"
        time.sleep(0.5)
    assert _ended(engine, "stale").end_reason == "expired"
    assert _ended(engine, "fresh").ended_at is None

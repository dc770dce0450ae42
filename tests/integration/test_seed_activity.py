"""The demo activity (app.seed.activity): traced through the services, spread over the period,
placed in a territory, and not doubled by a second run."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import clock
from app.contacts.models import Contact
from app.db import session
from app.documents import templates
from app.dossiers.models import Dossier, DossierStatus
from app.processes import definitions
from app.processes.models import ProcessTask, TaskStatus
from app.seed import demo
from app.seed.activity import seed_activity, travel
from app.seed.customers import generate_customers

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(app):
    with app.app_context():
        demo.seed_demo()
        definitions.deploy_directory(ROOT / "bpmn")
        templates.deploy_directory(ROOT / "templates_docs")
        generate_customers(count=150, seed=5, today=NOW.date())
        session.commit()
        yield


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_activity_is_spread_placed_and_not_doubled(world):
    counts = seed_activity(contacts_count=120, dossiers_count=40, days=60, seed=3, now=NOW)
    session.commit()
    assert clock.now() > NOW + timedelta(days=1)  # the clock is back to the real one

    assert counts["contacts"] == _count(Contact) == 120
    dossiers = session.execute(select(Dossier)).scalars().all()
    assert len(dossiers) == counts["dossiers"] + counts["relaunches"] >= 30
    # every contact and dossier counted under a territory, dated within the period, spread over it
    assert session.execute(select(func.count()).where(Contact.territory_id.is_(None))).scalar_one() == 0
    assert all(d.territory_id is not None for d in dossiers)
    occurred = session.execute(select(Contact.occurred_at)).scalars().all()
    assert NOW - timedelta(days=61) <= min(occurred) < NOW - timedelta(days=45)
    assert NOW - timedelta(days=15) < max(occurred) <= NOW
    assert len({o.isocalendar()[1] for o in occurred}) >= 7
    assert all(NOW - timedelta(days=61) <= d.created_at <= NOW for d in dossiers)
    # some closed (after their opening), some still open, dossiers from contacts and by hand
    closed = [d for d in dossiers if d.status == DossierStatus.CLOSED]
    assert closed and all(d.closed_at > d.created_at for d in closed)
    assert any(d.status != DossierStatus.CLOSED for d in dossiers)
    assert {"contact", "manual"} <= {d.origin for d in dossiers}
    # started processes leave tasks waiting, with the dossier's target date
    ready = session.execute(select(ProcessTask).where(ProcessTask.status == TaskStatus.READY)).scalars().all()
    assert ready and all(t.due_at is not None for t in ready)

    again = seed_activity(contacts_count=120, dossiers_count=40, days=60, seed=3, now=NOW)
    session.commit()
    assert again["contacts"] == again["dossiers"] == 0
    assert _count(Contact) == 120 and _count(Dossier) == len(dossiers)


def test_travel_moves_the_clock_and_the_column_defaults_then_restores_them(app):
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with travel() as moment:
        moment["at"] = at
        assert clock.now() == at
        assert clock.datetime.now(UTC) == at  # what the original clock.now (column defaults) reads
    assert clock.now() > at + timedelta(days=200)

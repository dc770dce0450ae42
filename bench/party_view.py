"""Benchmark of the 360° customer view on an existing database (for instance one bench/seed.py built).

Run: ``.venv/bin/python bench/party_view.py --database-url URL [--rounds 200] [--agent accueil.lyon]``.

Two customers in the agent's scope: an ordinary one with a single contract (drawn from the base),
and a heavy one with 10 contracts, 500 invoices, their payments and 24 readings per meter, which
the benchmark adds once (numbers BENCH-…; run again, it reuses them); when the base has contacts
(bench/contacts_fill.py), a third: the customer of the scope with the most contacts. For each, it
measures ``GET /clients/<id>`` through gunicorn (one worker, logged in, keep-alive, after a warm-up)
and counts the SQL statements the page sends (in process, on the same database), then prints p50 / p95.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.common import Client, logged_in_test_client, percentile, recorded_statements, start_server  # noqa: E402

HEAVY_NUMBER = "BENCH0000010"
CONTRACTS, INVOICES_PER_CONTRACT, READINGS_PER_METER = 10, 50, 24


def ordinary_party(session, agent) -> int:
    """A customer of the agent's scope holding exactly one contract."""
    from sqlalchemy import func, select

    from app.contracts.models import ContractParty
    from app.parties.models import Party
    from app.security.scope import scoped_select

    one_contract = (select(ContractParty.party_id).group_by(ContractParty.party_id)
                    .having(func.count() == 1).limit(5000).subquery())
    stmt = (scoped_select(Party, agent=agent, permission="party.read")
            .where(Party.id.in_(select(one_contract.c.party_id)), Party.status == "customer").limit(1))
    return session.execute(stmt).scalar_one().id


def heavy_party(session, agent) -> int:
    """The customer with 10 contracts and 500 invoices, created on the first run."""
    from sqlalchemy import select

    from app.contracts.models import (
        Contract,
        ContractParty,
        Invoice,
        Meter,
        MeterInstallation,
        MeterReading,
        Payment,
        ServicePoint,
    )
    from app.parties.models import Party
    from app.security.models import Territory

    existing = session.execute(select(Party.id).where(Party.number == HEAVY_NUMBER)).scalar_one_or_none()
    if existing:
        return existing
    commune = session.execute(
        select(Territory).where(Territory.kind == "commune",
                                Territory.path.startswith(agent.territories[0].path)).limit(1)).scalar_one()
    party = Party(number=HEAVY_NUMBER, kind="person", first_name="Multi", last_name="Contrats",
                  status="customer", street="1 place Bellecour", postal_code="69002", city=commune.name,
                  insee_code=commune.insee_code, territory_id=commune.id)
    session.add(party)
    start = date(2022, 1, 15)
    for c in range(CONTRACTS):
        point = ServicePoint(external_ref=f"BENCH-SP-{c}", kind="water", national_id=f"BENCH-EAU-{c:04d}",
                             street=f"{c + 1} rue de la Bourse", postal_code="69002", city=commune.name,
                             insee_code=commune.insee_code, territory_id=commune.id)
        contract = Contract(number=f"BENCH-CT-{c:03d}", external_ref=f"BENCH-CT-{c}", service_point=point,
                            status="active", start_date=start, offer="Eau domestique")
        session.add_all([point, contract, ContractParty(contract=contract, party=party, role="holder")])
        meter = Meter(serial=f"BENCH-M-{c}", kind="water")
        session.add_all([meter, MeterInstallation(meter=meter, service_point=point, installed_on=start)])
        session.flush()
        for r in range(READINGS_PER_METER):
            session.add(MeterReading(external_ref=f"BENCH-R-{c}-{r}", meter_id=meter.id, service_point_id=point.id,
                                     read_on=start + timedelta(days=30 * r), index_value=100 + 9 * r,
                                     kind="estimated" if r % 3 else "actual"))
        for i in range(INVOICES_PER_CONTRACT):
            issued = start + timedelta(days=20 * i)
            amount = Decimal("42.50") + i
            paid = amount if i < INVOICES_PER_CONTRACT - 3 else Decimal("0.00")
            invoice = Invoice(number=f"BENCH-F-{c}-{i}", external_ref=f"BENCH-F-{c}-{i}", contract=contract,
                              issued_on=issued, due_on=issued + timedelta(days=15), amount=amount,
                              amount_paid=paid, status="paid" if paid else "open")
            session.add(invoice)
            if paid:
                session.add(Payment(external_ref=f"BENCH-P-{c}-{i}", invoice=invoice,
                                    paid_on=issued + timedelta(days=10), amount=paid, method="sepa"))
    session.commit()
    return party.id


def busiest_party(session, agent) -> tuple[int, int] | None:
    """The customer of the agent's scope with the most contacts, and how many (None without contacts)."""
    from sqlalchemy import func, select

    from app.contacts.models import ContactParty
    from app.parties.models import Party
    from app.security.scope import scoped_select

    in_scope = scoped_select(Party, agent=agent, permission="party.read").with_only_columns(Party.id)
    row = session.execute(select(ContactParty.party_id, func.count()).where(ContactParty.party_id.in_(in_scope))
                          .group_by(ContactParty.party_id).order_by(func.count().desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def count_statements(app, login: str, path: str) -> int:
    """The SQL statements one request for path sends, in process on the same database."""
    client = logged_in_test_client(app, login)
    client.get(path)  # warm: the first request loads the agent's roles into caches
    with recorded_statements(app) as statements:
        response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code}")
    return len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--agent", default="accueil.lyon")
    parser.add_argument("--port", type=int, default=5097)
    args = parser.parse_args()
    os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-view-")

    from sqlalchemy import select

    from app import create_app
    from app.db import session
    from app.security.models import Agent

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        agent = session.execute(select(Agent).where(Agent.login == args.agent)).scalar_one()
        parties = {"1 contrat": ordinary_party(session, agent),
                   "10 contrats, 500 factures": heavy_party(session, agent)}
        busiest = busiest_party(session, agent)
        if busiest:
            parties[f"le plus de contacts ({busiest[1]})"] = busiest[0]
    counts = {label: count_statements(app, args.agent, f"/clients/{pid}") for label, pid in parties.items()}

    server = start_server(args.database_url, args.port)
    try:
        client = Client(args.port, args.agent)
        print(f"{'client':28} {'SQL':>4} {'p50 ms':>8} {'p95 ms':>8}")
        for label, party_id in parties.items():
            path = f"/clients/{party_id}"
            client.get(path)
            timings = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                client.get(path)
                timings.append(time.perf_counter() - start)
            print(f"{label:28} {counts[label]:>4} {percentile(timings, 50):8.1f} {percentile(timings, 95):8.1f}")
    finally:
        server.kill()


if __name__ == "__main__":
    main()

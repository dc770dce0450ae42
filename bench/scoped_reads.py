"""Benchmark of scoped reads on an existing database (for instance the one bench/seed.py built).

Run: ``.venv/bin/python bench/scoped_reads.py --database-url URL [--agency AG-LYON] [--rounds 300]``.
As an agent of one agency (front-desk role), it reads random parties of the whole base through
the service functions (so half of them are out of scope and must come back empty) and prints
the median and p95 of each function.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--agency", default="AG-LYON")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-")

    from sqlalchemy import func, select

    from app import create_app
    from app.contracts import service as contracts
    from app.db import session
    from app.parties import service as parties
    from app.parties.models import Party
    from app.security.models import Agent, Role, Territory

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        agency = session.execute(select(Territory).where(Territory.code == args.agency)).scalar_one()
        role = session.execute(select(Role).where(Role.code == "accueil")).scalar_one()
        agent = Agent(login="bench", full_name="Bench", password_hash="-", active=True,  # noqa: S106 (never stored)
                      roles=[role], territories=[agency])  # not added to the session: nothing is written
        max_id = session.execute(select(func.max(Party.id))).scalar_one()
        rng = random.Random(11)
        timings: dict[str, list[float]] = {}
        found = 0

        def timed(name, function, **kwargs):
            start = time.perf_counter()
            result = function(agent=agent, **kwargs)
            timings.setdefault(name, []).append(time.perf_counter() - start)
            return result

        for _ in range(args.rounds):
            party_id = rng.randint(1, max_id)
            if timed("get_party", parties.get_party, party_id=party_id) is not None:
                found += 1
            items = timed("list_contracts_of_party", contracts.list_contracts_of_party, party_id=party_id)
            for contract in items[:1]:
                timed("list_invoices (48)", contracts.list_invoices, contract_id=contract.id)
                timed("list_readings (24)", contracts.list_readings, service_point_id=contract.service_point_id)
            session.rollback()
        print(f"database: {args.database_url.split(':')[0]}, parties: {max_id:,}, agency {args.agency}, "
              f"in scope: {found}/{args.rounds}")
        for name, samples in timings.items():
            samples.sort()
            print(f"{name:26} median {statistics.median(samples) * 1000:7.2f} ms   "
                  f"p95 {samples[int(len(samples) * 0.95) - 1] * 1000:7.2f} ms   (n={len(samples)})")


if __name__ == "__main__":
    main()

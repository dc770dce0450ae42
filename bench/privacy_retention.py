"""Benchmark of the GDPR retention selection and erasure (app/privacy/retention.py) on an existing
base (bench/seed.py, then bench/contacts_fill.py).

Run: ``.venv/bin/python bench/privacy_retention.py --database-url URL [--years 6] [--rounds 20]``.
"Now" is moved ``--years`` ahead so that the seeded former customers (contracts ended in the last
three years) and prospects fall past their retention periods. It times the selection (limit 200,
and every candidate: what the job runs once), the check of a batch of 200 ids again (what the job
runs before each batch), prints PostgreSQL's plan of the selection, and times the erasure of
``--rounds`` parties, each rolled back (nothing is kept).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("GUICHET_INSTANCE_DIR", tempfile.mkdtemp(prefix="bench-privacy-"))

    from sqlalchemy import func, select

    from app import create_app
    from app.db import session
    from app.parties.models import Party
    from app.privacy import retention

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    now = datetime.now(UTC) + timedelta(days=365 * args.years)
    with app.app_context():
        parties = session.scalar(select(func.count()).select_from(Party))
        print(f"parties {parties:,}; now moved to {now.date()}")
        for label, limit in (("first batch (200)", 200), ("every candidate", None)):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                found = retention.candidates(now, limit)
                times.append(time.perf_counter() - started)
                session.rollback()
            print(f"{label:<22} {len(found):>8,} candidates  median {statistics.median(times) * 1000:8.1f} ms")
        recheck = []
        for _ in range(3):
            started = time.perf_counter()
            retention.candidates(now, among=found[:200])
            recheck.append(time.perf_counter() - started)
            session.rollback()
        print(f"{'check 200 ids again':<22} {'':>8}             median {statistics.median(recheck) * 1000:8.1f} ms")
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            with app.test_request_context():
                stmt = retention._candidates_statement(now, 200, after_id=0)
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = session.connection().exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").scalars().all()
            print("\n".join(plan))
            session.rollback()
        ids = retention.candidates(now, args.rounds)
        times = []
        for party_id in ids:
            started = time.perf_counter()
            retention.anonymise(session.get(Party, party_id), reason="bench")
            session.flush()
            times.append(time.perf_counter() - started)
            session.rollback()
        if times:
            print(f"anonymise one party (rolled back), {len(times)} rounds: median "
                  f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()

"""Benchmark of the synthetic customer generator (app/seed/customers.py).

Run: ``.venv/bin/python bench/seed.py [--customers N] [--database-url URL] [--seed S]``. It builds a
fresh database (a temporary SQLite file by default; a PostgreSQL URL is dropped and recreated),
migrates it, seeds the demo territories, generates N customers in one transaction and prints the
wall time, the rows per table, rows per second and the database size.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")

from bench.fresh import demo_app  # noqa: E402


def _database_size(engine, url: str) -> int:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    path = Path(url.split("///", 1)[1])
    raw = engine.raw_connection()  # outside a transaction: fold the WAL into the file, whose size is then the data's
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    app, url, _workdir = demo_app(args.database_url, prefix="guichet-bench-seed-")

    from app.db import db, session
    from app.seed.customers import generate_customers

    with app.app_context():
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            done += n
            print(f"  {done:>10,} customers  {time.perf_counter() - started:8.1f} s", file=sys.stderr)

        started = time.perf_counter()
        counts = generate_customers(count=args.customers, seed=args.seed, progress=progress)
        session.commit()
        seconds = time.perf_counter() - started
        session.remove()
        size = _database_size(db.get_engine(), url)

    total = sum(counts.values())
    print(f"database: {url.split(':')[0]}   customers: {args.customers:,}")
    for table, rows in counts.items():
        print(f"  {table:20} {rows:>12,}")
    print(f"  {'total':20} {total:>12,}")
    print(f"wall time {seconds:8.1f} s   {total / seconds:10,.0f} rows/s   "
          f"{args.customers / seconds:8,.0f} customers/s")
    print(f"database size {size / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()

"""Benchmark of the supervision dashboard's queries (app.supervision.queries) on an existing database.

Run: ``.venv/bin/python bench/supervision.py --database-url URL [--rounds 20] [--explain]``.

As a supervisor of one region (REG-84) and one of one agency (AG-LYON), both in memory (never
stored), it calls each chart function over the 30 and the 90 days ending today, ``--rounds`` times
after one warm-up call, and prints the median and p95 per function, with the number of SQL
statements of a call (a function that raises is reported as FAILED, the others still run).
With ``--explain``, it prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the slowest
statement (most time over the rounds) of the slowest function at the median. Build the base with bench/seed.py,
bench/contacts_fill.py and bench/dossiers_fill.py (docs/performance.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")

FUNCTIONS = ("contacts_by_day", "dossiers_by_week", "backlog", "overdue_tasks", "dunning_funnel", "time_to_close",
             "workload", "past_target")
SCOPES = ("REG-84", "AG-LYON")
PERIODS = (30, 90)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(len(ordered) * 0.95)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) the slowest statement")
    args = parser.parse_args()
    os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-")

    from sqlalchemy import event, func, select

    from app import create_app
    from app.contacts.models import Contact
    from app.db import db, session
    from app.dossiers.models import Dossier
    from app.parties.overview import local_today
    from app.processes.models import ProcessTask
    from app.security.models import Agent, Role, Territory
    from app.supervision import queries

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    statements: list[tuple[float, str, object]] = []

    with app.test_request_context():
        engine = db.get_engine()

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):
            started = conn.info["bench_started"].pop()
            statements.append((time.perf_counter() - started, statement, parameters))

        role = session.execute(select(Role).where(Role.code == "superviseur")).scalar_one()
        counts = {name: session.execute(select(func.count()).select_from(model)).scalar_one()
                  for name, model in (("contacts", Contact), ("dossiers", Dossier), ("tasks", ProcessTask))}
        today = local_today()
        print(f"database: {args.database_url.split('@')[-1]}   " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
              + f"   today {today}   rounds {args.rounds}")
        print(f"{'scope':8} {'days':>4}  {'function':17} {'median ms':>10} {'p95 ms':>9} {'stmts':>5}")
        slowest: tuple[float, str, str, object] | None = None  # (median, label, statement, parameters)
        for code in SCOPES:
            territory = session.execute(select(Territory).where(Territory.code == code)).scalar_one()
            agent = Agent(login=f"bench.sup.{code.lower()}", full_name="Bench", password_hash="-",  # noqa: S106
                          active=True, roles=[role], territories=[territory])  # never added to the session
            for days in PERIODS:
                filters = queries.Filters(start=today - timedelta(days=days - 1), end=today, territory_ids=None)
                for name in FUNCTIONS:
                    function = getattr(queries, name)
                    try:
                        function(agent, filters)  # warm-up
                    except Exception as exc:  # noqa: BLE001 (a failing chart is reported, the others still run)
                        session.rollback()
                        print(f"{code:8} {days:>4}  {name:17} FAILED: {str(exc).splitlines()[0][:150]}", flush=True)
                        continue
                    session.rollback()
                    samples, per_call = [], 0
                    spent: dict[str, list] = {}  # statement → [total seconds over the rounds, its parameters]
                    for _ in range(args.rounds):
                        statements.clear()
                        started = time.perf_counter()
                        function(agent, filters)
                        samples.append(time.perf_counter() - started)
                        per_call = len(statements)
                        for seconds, statement, parameters in statements:
                            spent.setdefault(statement, [0.0, parameters])[0] += seconds
                        session.rollback()
                    worst = max(((total, statement, parameters) for statement, (total, parameters) in spent.items()),
                                default=None)
                    median = statistics.median(samples)
                    print(f"{code:8} {days:>4}  {name:17} {median * 1000:10.1f} {p95(samples) * 1000:9.1f} "
                          f"{per_call:>5}", flush=True)
                    if worst is not None and (slowest is None or median > slowest[0]):
                        slowest = (median, f"{name}, {code}, {days} days", worst[1], worst[2])
        if args.explain and slowest is not None:
            median, label, statement, parameters = slowest
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the slowest statement of {label} "
                  f"(function median {median * 1000:.1f} ms):\n{statement}\n{parameters}\n")
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                for (line,) in cursor.fetchall():
                    print(line)
                raw.rollback()
            finally:
                raw.close()


if __name__ == "__main__":
    main()

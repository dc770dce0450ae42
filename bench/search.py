"""Benchmark of the quick search on an existing database (for instance one bench/seed.py built).

Run: ``.venv/bin/python bench/search.py --database-url URL [--queries 200] [--agent accueil.lyon]``.

It draws a fixed mix of queries from customers in the agent's scope (names as stored, names in
another order without accents, names with a typo, partial names, customer / contract / meter /
PDL-PCE / invoice numbers, phones in national format, emails) and measures each one three ways:

  http   GET /recherche/rapide through gunicorn (one worker), logged in as the agent, keep-alive;
  raw    the SQL statements the search service issued for that query, replayed on the driver's
         cursor: the database's share of the work;
  naive  the ``ILIKE '%word%'`` over name, first name, company, street, city and customer number
         that many CRMs run (LIKE on SQLite), in the same scope, LIMIT 20.

It prints p50 / p95 per way and per kind of query, the ratios, and how often the expected customer
came back (recall), then, on PostgreSQL, the plans of a few statements (EXPLAIN ANALYZE).
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.common import Client, percentile, start_server  # noqa: E402

KINDS = ("name", "name_plain", "typo", "partial", "customer_number", "contract_number", "meter_serial",
         "national_id", "invoice_number", "phone", "email")


def _typo(word: str, rng: random.Random) -> str:
    """One letter of the word replaced, away from its first two (where agents rarely err)."""
    if len(word) < 5:
        return word
    i = rng.randrange(2, len(word) - 1)
    letters = "aeioubcdfglmnprst".replace(word[i].lower(), "")
    return word[:i] + rng.choice(letters) + word[i + 1:]


def build_mix(session, agent, count: int, seed: int = 7) -> list[tuple[str, str, int]]:
    """(kind, query, expected party id), count of them, from customers the agent may see."""
    from sqlalchemy import func, select

    from app.contracts.models import Contract, ContractParty, Invoice, Meter, MeterInstallation, ServicePoint
    from app.parties.models import Party, PartyEmail, PartyPhone
    from app.parties.phones import display_phone
    from app.search.normalise import normalise
    from app.security.scope import scope_condition, scoped_select

    rng = random.Random(seed)
    max_id = session.execute(select(func.max(Party.id))).scalar_one()
    mix: list[tuple[str, str, int]] = []
    while len(mix) < count:
        ids = [rng.randint(1, max_id) for _ in range(200)]
        parties = session.execute(scoped_select(Party, agent=agent, permission="party.read")
                                  .where(Party.id.in_(ids), Party.kind == "person", Party.status == "customer")
                                  .order_by(Party.id)).scalars().all()
        for p in parties:
            kind = KINDS[len(mix) % len(KINDS)]
            contract = session.execute(
                select(Contract, ServicePoint).join(ContractParty, ContractParty.contract_id == Contract.id)
                .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
                .where(ContractParty.party_id == p.id, ContractParty.role == "holder",  # the agent's own: a
                       scope_condition(ServicePoint, agent=agent, permission="party.read"))).first()  # second home
                # elsewhere is someone else's
            query = None
            if kind == "name":
                query = f"{p.last_name} {p.first_name}"
            elif kind == "name_plain":
                query = f"{normalise(p.first_name)} {normalise(p.last_name)}"
            elif kind == "typo":
                query = f"{_typo(p.last_name, rng)} {p.first_name}"
            elif kind == "partial":
                query = f"{p.last_name[:4]} {p.first_name[:3]}"
            elif kind == "customer_number":
                query = p.number
            elif kind == "phone":
                phone = session.execute(select(PartyPhone.number).where(PartyPhone.party_id == p.id)).scalar()
                query = phone and display_phone(phone)
            elif kind == "email":
                query = session.execute(select(PartyEmail.address).where(PartyEmail.party_id == p.id)).scalar()
            elif contract:
                c, sp = contract
                if kind == "contract_number":
                    query = c.number
                elif kind == "national_id":
                    query = sp.national_id
                elif kind == "meter_serial":
                    query = session.execute(select(Meter.serial).join(
                        MeterInstallation, MeterInstallation.meter_id == Meter.id).where(
                        MeterInstallation.service_point_id == sp.id, MeterInstallation.removed_on.is_(None))).scalar()
                elif kind == "invoice_number":
                    query = session.execute(select(Invoice.number).where(Invoice.contract_id == c.id)
                                            .order_by(Invoice.issued_on.desc())).scalar()
            if query:
                mix.append((kind, query, p.id))
            if len(mix) == count:
                break
    return mix


def naive_statement(session, words: list[str], agent):
    """What many CRMs do: every word somewhere in a few columns, case-insensitive substring."""
    from sqlalchemy import and_, or_, select

    from app.parties.models import Party
    from app.security.scope import scope_condition

    columns = (Party.last_name, Party.first_name, Party.company_name, Party.street, Party.city, Party.number)
    postgresql = session.get_bind().dialect.name == "postgresql"
    match = (lambda col, w: col.ilike(f"%{w}%")) if postgresql else (lambda col, w: col.like(f"%{w}%"))
    return (select(Party.id).where(scope_condition(Party, agent=agent, permission="party.read"),
                                   and_(*(or_(*(match(c, w) for c in columns)) for w in words))).limit(20))


class Recorder:
    """Collects the statements the search service sends to the driver."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, object]] = []
        self.on = False

    def __call__(self, _conn, _cursor, statement, parameters, _context, _executemany):
        if self.on:
            self.statements.append((statement, parameters))


def replay(raw, statements) -> float:
    start = time.perf_counter()
    cursor = raw.cursor()
    for statement, parameters in statements:
        cursor.execute(statement, parameters)
        cursor.fetchall()
    cursor.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queries", type=int, default=220)
    parser.add_argument("--agent", default="accueil.lyon")
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args()
    os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-")

    from sqlalchemy import event, func, select

    from app import create_app
    from app.db import session
    from app.parties.models import Party
    from app.search import service
    from app.security.models import Agent

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    server = start_server(args.database_url, args.port)
    try:
        with app.app_context():
            agent = session.execute(select(Agent).where(Agent.login == args.agent)).scalar_one()
            parties = session.execute(select(func.count()).select_from(Party)).scalar_one()
            mix = build_mix(session, agent, args.queries)
            engine = session.get_bind()
            recorder = Recorder()
            event.listen(engine, "before_cursor_execute", recorder)
            statements = []
            for _kind, query, _expected in mix:  # what the service sends, and a warm cache
                recorder.statements, recorder.on = [], True
                service.search(agent=agent, query=query, limit=8)
                recorder.on = False
                statements.append(recorder.statements)
            session.rollback()
            client = Client(args.port, args.agent)
            timings: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            raw = engine.raw_connection()
            for (kind, query, expected), recorded in zip(mix, statements, strict=True):
                path = "/recherche/rapide?" + urllib.parse.urlencode({"q": query})
                client.get(path)  # warm
                start = time.perf_counter()
                html = client.get(path)
                timings["http"][kind].append(time.perf_counter() - start)
                found["http"][kind] += f"/clients/{expected}" in html
                timings["raw"][kind].append(replay(raw.driver_connection, recorded))
                naive = naive_statement(session, service.query_words(query) or [query], agent)
                session.execute(naive).all()  # warm
                start = time.perf_counter()
                ids = session.execute(naive).scalars().all()
                timings["naive"][kind].append(time.perf_counter() - start)
                found["naive"][kind] += expected in ids
                session.rollback()  # SQLite: our transactions take the write lock, the server's wait for it
            raw.close()
            report(parties, mix, timings, found, engine.dialect.name)
            if engine.dialect.name == "postgresql":
                explain(session, statements, mix)
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(parties, mix, timings, found, dialect) -> None:
    counts = defaultdict(int)
    for kind, _q, _e in mix:
        counts[kind] += 1
    print(f"\n{dialect}, {parties:,} parties, {len(mix)} queries (agent accueil.lyon)\n")
    print(f"{'kind':16} {'n':>3} | {'http p50':>8} {'p95':>7} | {'raw p50':>8} {'p95':>7} | "
          f"{'naive p50':>9} {'p95':>8} | {'found http':>10} {'naive':>6}")
    for kind in KINDS:
        if not counts[kind]:
            continue
        cells = []
        for way in ("http", "raw", "naive"):
            values = timings[way][kind]
            cells.append(f"{percentile(values, 50):8.1f} {percentile(values, 95):7.1f}")
        print(f"{kind:16} {counts[kind]:>3} | {cells[0]} | {cells[1]} | {cells[2]:>18} | "
              f"{found['http'][kind]:>6}/{counts[kind]:<3} {found['naive'][kind]:>3}/{counts[kind]}")
    total = {way: [v for values in timings[way].values() for v in values] for way in ("http", "raw", "naive")}
    p = {way: (percentile(v, 50), percentile(v, 95)) for way, v in total.items()}
    recall = {way: sum(found[way].values()) for way in ("http", "naive")}
    print(f"{'all':16} {len(mix):>3} | {p['http'][0]:8.1f} {p['http'][1]:7.1f} | {p['raw'][0]:8.1f} "
          f"{p['raw'][1]:7.1f} | {p['naive'][0]:9.1f} {p['naive'][1]:8.1f} | "
          f"{recall['http']:>6}/{len(mix):<3} {recall['naive']:>3}/{len(mix)}")
    print(f"\nhttp p95 / raw p95 = {p['http'][1] / p['raw'][1]:.2f}; naive p95 / raw p95 = "
          f"{p['naive'][1] / p['raw'][1]:.2f}; mean http {statistics.mean(total['http']) * 1000:.1f} ms")


def explain(session, statements, mix) -> None:
    """The plans of the text statements of one query of each name kind."""
    raw = session.connection().connection.driver_connection
    shown = set()
    for (kind, query, _e), recorded in zip(mix, statements, strict=True):
        if kind in shown or kind not in ("name", "typo", "partial"):
            continue
        shown.add(kind)
        for statement, parameters in recorded:
            if "party_search" not in statement:
                continue
            if "set_config" in statement:
                raw.execute(statement, parameters)
                continue
            plan = [r[0] for r in raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)]
            print(f"\n-- {kind}: {query!r}")
            print("\n".join(line for line in plan if re.search(r"Scan|Execution|Limit|Sort", line)))
    raw.rollback()


if __name__ == "__main__":
    main()

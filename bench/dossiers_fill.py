"""Fill the dossier tables of an existing PostgreSQL base (for instance one bench/seed.py built) with N dossiers.

Run: ``.venv/bin/python bench/dossiers_fill.py --database-url URL [--count 600000] [--chunk 200000] [--seed 0.24]``.

What supervision reads, at scale: dossiers of the last five years for the parties there, with
their classification (from ``dossier_type``, weighted), a yearly reference ``DOS-<year>-<n>`` (the
``reference_counter`` rows are set past them, so the application numbers on after them),
``created_at`` growing with the id, ``due_at`` from the classification's ``target_days``, a
handling time of 15 % to 135 % of the target (a fifth past it), ``closed_at`` when that time has
passed, 4 % of the dossiers never closed (the backlog past target), the recent ones ``open`` or
``in_progress`` (a few ``suspended``); ``territory_id`` as app.contacts.links.territory_of_record
gives it (the party's, else the service point's of its first contract); ``origin`` and
``created_by_id`` (an agent allowed to open dossiers whose territories cover the party's; none for
the relaunches, opened by the dunning job); one ``dossier_party`` link (role customer).

Relaunches (the classification of the active dunning procedure) are one-per-contract
(``exclusive_contract_id``, at most one open per contract), carry ``dunning_rank`` 1, 2 or 3 (60 %
stop at the first reminder, 25 % at the second, 15 % reach the formal notice; an open one has not
gone further than its age allows) and, closed, ``close_reason = 'paid'`` nine times in ten.

Each dossier still open has a running ``process_instance`` (the latest definition of its
classification's process, else any; ``state`` '{}') and one ready ``process_task`` (role back_office
or accueil, assigned half the time to an agent holding that role over the territory, due when the
dossier is). When the base has no process definition, the shipped diagrams are deployed; when it
has fewer than a dozen agents able to handle tasks, some 34 agents are created over the agencies
(roles accueil, back_office, superviseur; logins ``bench.*``).

The dossier tables and the process instances are emptied first (TRUNCATE … CASCADE): a rerun ends
with exactly N dossiers. Then everything written is vacuumed and analysed. PostgreSQL only.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.contacts_fill import slots  # noqa: E402

YEARS = 5
# Share of the dossiers per classification code, in percent; codes not named share what is left.
TYPE_WEIGHTS = {"RELANCE_IMPAYE": 30, "RECLAMATION": 20, "EMMENAGEMENT": 14, "DEMENAGEMENT": 14,
                "CONTESTATION_RELEVE": 12, "PLAN_PAIEMENT": 10}
STUCK_SHARE = 0.04        # dossiers never closed, whatever their age
SUSPENDED_SHARE = 0.05    # of the open ones
IN_PROGRESS_SHARE = 0.6   # of the open ones older than two days
PAID_SHARE = 0.9          # closed relaunches closed on payment
RANK2, RANK3 = 0.40, 0.15  # relaunches reaching the second reminder, the formal notice
RANK_DAYS = {2: 15, 3: 30}  # the level's delay after the first reminder (app/seed/referentials.py)
ORIGINS = {"contact": 55, "manual": 45}  # of the dossiers opened by an agent
BACK_OFFICE_SHARE = 0.7   # tasks of the back office (else the front desk)
ASSIGNED_SHARE = 0.5      # tasks assigned to an agent (else to the team)
# Agents created when the base has too few: (role, per agency).
AGENTS_PER_AGENCY = [("accueil", 4), ("back_office", 3), ("superviseur", 1)]


def ensure_agents_and_definitions(url: str) -> tuple[int, int]:
    """Agents over the agencies and the shipped process definitions, through the application's
    services, when the base lacks them; (agents created, definitions deployed)."""
    os.environ.setdefault("GUICHET_INSTANCE_DIR", tempfile.mkdtemp(prefix="guichet-bench-dfill-"))
    from sqlalchemy import func, select

    from app import create_app
    from app.audit.context import set_actor
    from app.db import session
    from app.processes.definitions import deploy_directory
    from app.processes.models import ProcessDefinition
    from app.security import service
    from app.security.models import Agent, Role, Territory
    from app.seed.demo import DEMO_PASSWORD

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    created = deployed = 0
    with app.app_context():
        set_actor(actor_id=None, actor_label="bench:dossiers_fill")
        if not session.execute(select(func.count()).select_from(ProcessDefinition)).scalar_one():
            deployed = len(deploy_directory(ROOT / "bpmn"))
        handlers = session.execute(select(func.count(func.distinct(Agent.id))).join(Agent.roles)
                                   .where(Agent.active, Role.code.in_(["accueil", "back_office"]))).scalar_one()
        if handlers < 12:
            agencies = session.execute(select(Territory).where(Territory.kind == "agency")
                                       .order_by(Territory.code)).scalars().all()
            for agency in agencies:
                for role, count in AGENTS_PER_AGENCY:
                    for i in range(1, count + 1):
                        login = f"bench.{role.replace('_', '')}.{agency.code.lower()}.{i}"
                        if service.get_agent_by_login(login=login) is None:
                            service.create_agent(login=login, full_name=f"{role} {agency.name} {i}",
                                                 password=DEMO_PASSWORD, role_codes=[role],
                                                 territory_codes=[agency.code])
                            created += 1
            regions = session.execute(select(Territory).where(Territory.kind == "region")
                                      .order_by(Territory.code)).scalars().all()
            for region in regions:
                login = f"bench.backoffice.{region.code.lower()}"
                if service.get_agent_by_login(login=login) is None:
                    service.create_agent(login=login, full_name=f"back_office {region.name}", password=DEMO_PASSWORD,
                                         role_codes=["back_office"], territory_codes=[region.code])
                    created += 1
        session.commit()
        session.remove()
    return created, deployed


def year_cases(first: datetime, each: float, count: int) -> tuple[str, dict[int, int]]:
    """The SQL CASE giving a row's reference year from its position g, and each year's first g.
    The year is that of the position's start (first + (g - 1) * each), so references stay unique."""
    starts: dict[int, int] = {}
    for year in range(first.year, datetime.now(UTC).year + 2):
        boundary = datetime(year, 1, 1, tzinfo=UTC)
        g = 1 if boundary <= first else int((boundary - first).total_seconds() // each) + 1
        while g > 1 and first + timedelta(seconds=(g - 2) * each) >= boundary:
            g -= 1
        while first + timedelta(seconds=(g - 1) * each) < boundary:
            g += 1
        if g <= count:
            starts[year] = g
    cases = " ".join(f"WHEN r.g >= {g} THEN {year}" for year, g in sorted(starts.items(), reverse=True))
    return f"(CASE {cases} END)", starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=600_000)
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--seed", type=float, default=0.24, help="setseed() of the first chunk, in [-1, 1]")
    args = parser.parse_args()

    from sqlalchemy import text

    from bench.common import PARTY_TERRITORY_SQL, bulk_fill_engine

    engine = bulk_fill_engine(args.database_url, "dossiers_fill.py", args.count, args.chunk)

    started = time.perf_counter()
    agents_created, deployed = ensure_agents_and_definitions(args.database_url)
    print(f"agents created: {agents_created}, process definitions deployed: {deployed} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)

    with engine.connect() as db:
        def run(sql: str, **params):
            return db.execute(text(sql), params)

        types = run("SELECT code, id FROM dossier_type WHERE active ORDER BY position, id").all()
        if not types:
            raise SystemExit("no dossier classification: seed the referentials first (app.seed.referentials)")
        type_ids = dict(types)
        type_slots = [type_ids[code] for code in slots(TYPE_WEIGHTS, list(type_ids))]
        relaunch_id = run("SELECT dossier_type_id FROM dunning_procedure WHERE active ORDER BY id LIMIT 1").scalar()
        run("""CREATE TEMP TABLE fill_type AS
               SELECT t.id, t.label, coalesce(t.target_days, 30) AS target_days,
                      coalesce((SELECT d.id FROM process_definition d WHERE d.key = t.process_key
                                ORDER BY d.version DESC LIMIT 1),
                               (SELECT min(d.id) FROM process_definition d)) AS definition_id
               FROM dossier_type t""")

        # Who may open dossiers, who may handle tasks, per territory (their territories cover it).
        run("""CREATE TEMP TABLE fill_agent AS
               SELECT DISTINCT a.id, t.path, r.code AS role_code,
                      EXISTS (SELECT 1 FROM role_permission rp WHERE rp.role_id = r.id
                              AND rp.permission = 'dossier.create') AS opens
               FROM agent a JOIN agent_territory at ON at.agent_id = a.id JOIN territory t ON t.id = at.territory_id
               JOIN agent_role ar ON ar.agent_id = a.id JOIN role r ON r.id = ar.role_id
               WHERE a.active""")
        all_openers = run("SELECT array_agg(DISTINCT id ORDER BY id) FROM fill_agent WHERE opens").scalar()
        if not all_openers:
            raise SystemExit("no active agent may open dossiers: seed the demo agents first")
        run("""CREATE TEMP TABLE fill_territory AS
               SELECT t.id AS territory_id,
                      array_agg(DISTINCT fa.id ORDER BY fa.id) FILTER (WHERE fa.opens) AS openers,
                      array_agg(DISTINCT fa.id ORDER BY fa.id) FILTER (WHERE fa.role_code = 'back_office') AS back,
                      array_agg(DISTINCT fa.id ORDER BY fa.id) FILTER (WHERE fa.role_code = 'accueil') AS front
               FROM territory t JOIN fill_agent fa ON t.path LIKE fa.path || '%' GROUP BY t.id""")
        step = time.perf_counter()
        run(f"""CREATE TEMP TABLE fill_party AS
               SELECT (row_number() OVER (ORDER BY hashint4(p.id # 7919), p.id))::int AS n, p.id AS party_id,
                      (SELECT cp.contract_id FROM contract_party cp WHERE cp.party_id = p.id
                       ORDER BY cp.role <> 'holder', cp.contract_id DESC LIMIT 1) AS contract_id,
                      {PARTY_TERRITORY_SQL} AS territory_id
               FROM party p""")
        run("""ALTER TABLE fill_party ADD COLUMN openers int[], ADD COLUMN back int[], ADD COLUMN front int[]""")
        run("""UPDATE fill_party p SET openers = ft.openers, back = ft.back, front = ft.front
               FROM fill_territory ft WHERE ft.territory_id = p.territory_id""")
        run("UPDATE fill_party SET openers = CAST(:all AS int[]) WHERE openers IS NULL", all=all_openers)
        run("ALTER TABLE fill_party ADD PRIMARY KEY (n)")
        run("ANALYZE fill_party")
        parties, placed = run("SELECT count(*), count(territory_id) FROM fill_party").one()
        if not parties:
            raise SystemExit("no party: build the base with bench/seed.py first")
        db.commit()
        print(f"{parties:,} parties ({placed:,} in a territory), {len(all_openers)} agents opening dossiers, "
              f"{len(type_ids)} classifications; prepared in {time.perf_counter() - step:.1f} s", file=sys.stderr)

        step = time.perf_counter()
        before = run("SELECT count(*) FROM dossier").scalar()
        run("""TRUNCATE dossier, dossier_party, dossier_agent, dossier_object, dossier_contact, dossier_element,
                        process_instance, process_task, process_timer RESTART IDENTITY CASCADE""")
        run("DELETE FROM reference_counter WHERE series = 'DOS'")
        run("SELECT setval(pg_get_serial_sequence('dossier', 'id'), :last)", last=args.count)
        db.commit()
        print(f"emptied the dossier tables ({before:,} dossiers) in {time.perf_counter() - step:.1f} s",
              file=sys.stderr)
        run("""CREATE TEMP TABLE fill_open (id int PRIMARY KEY, territory_id int, contract_id int,
                                            dossier_type_id int, created_by_id int, created_at timestamptz,
                                            due_at timestamptz, relaunch boolean, back int[], front int[],
                                            r1 float8, r2 float8)""")

        end = datetime.now(UTC).replace(microsecond=0)
        first = end - timedelta(days=365 * YEARS + YEARS // 4)
        each = (end - first).total_seconds() / args.count
        year_sql, year_starts = year_cases(first, each, args.count)
        first_g_sql = "(CASE " + " ".join(f"WHEN r.g >= {g} THEN {g}" for _y, g in
                                          sorted(year_starts.items(), reverse=True)) + " END)"
        timings = {"draw": 0.0, "dossier": 0.0, "dossier_party": 0.0, "open": 0.0, "commit": 0.0}
        for number, lo in enumerate(range(1, args.count + 1, args.chunk)):
            hi = min(args.count, lo + args.chunk - 1)
            chunk_started = time.perf_counter()
            run("SELECT setseed(:seed)", seed=((args.seed + number * 0.0137) + 1) % 2 - 1)

            def timed(key: str, sql: str, **params) -> None:
                t = time.perf_counter()
                run(sql, **params)
                timings[key] += time.perf_counter() - t

            # One row per dossier: its draws, then what follows from them.
            timed("draw", f"""
                CREATE TEMP TABLE fill_chunk ON COMMIT DROP AS
                WITH r AS MATERIALIZED (
                    SELECT g, random() AS u, random() AS v, random() AS w, random() AS x, random() AS y,
                           random() AS z, random() AS s, random() AS o, random() AS k, random() AS r1,
                           random() AS r2
                    FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g),
                d AS (
                    SELECT r.*, p.party_id, p.contract_id, p.territory_id, p.openers, p.back, p.front,
                           (CAST(:types AS int[]))[1 + floor(r.x * 100)::int] AS dossier_type_id,
                           {year_sql} AS year, r.g - {first_g_sql} + 1 AS number,
                           to_timestamp(:first + (r.g - 1 + r.z) * :each) AS created_at
                    FROM r JOIN fill_party p ON p.n = 1 + floor(r.u * :parties)::int)
                SELECT d.g, d.g AS id, d.party_id, d.contract_id, d.territory_id, d.back, d.front,
                       d.dossier_type_id, t.label, d.year, d.number, d.created_at, d.r1, d.r2, d.o, d.k,
                       d.dossier_type_id = :relaunch AS relaunch,
                       d.created_at + make_interval(days => t.target_days) AS due_at,
                       CASE WHEN d.s < :stuck THEN NULL
                            ELSE d.created_at + make_interval(secs => t.target_days * 86400
                                                          * (0.15 + 1.2 * power(d.v, 1.5)))
                       END AS closes_at,
                       d.openers[1 + floor(d.w * cardinality(d.openers))::int] AS opener
                FROM d JOIN fill_type t ON t.id = d.dossier_type_id""",
                  lo=lo, hi=hi, types=type_slots, first=first.timestamp(), each=each, parties=parties,
                  relaunch=relaunch_id, stuck=STUCK_SHARE)
            timed("dossier", """
                INSERT INTO dossier (id, reference, dossier_type_id, subject, status, origin, created_by_id,
                                     created_at, updated_at, due_at, closed_at, version, exclusive_contract_id,
                                     territory_id, dunning_rank, close_reason)
                SELECT c.id, 'DOS-' || c.year || '-' || lpad(c.number::text, 6, '0'), c.dossier_type_id, c.label,
                       CASE WHEN c.closes_at < :now THEN 'closed'
                            WHEN c.o < :suspended THEN 'suspended'
                            WHEN c.created_at < CAST(:now AS timestamptz) - interval '2 days'
                                 AND c.o < :suspended + :in_progress THEN 'in_progress'
                            ELSE 'open' END,
                       CASE WHEN c.relaunch THEN 'automatic'
                            WHEN c.k < :contact THEN 'contact' ELSE 'manual' END,
                       CASE WHEN NOT c.relaunch THEN c.opener END,
                       c.created_at,
                       CASE WHEN c.closes_at < :now THEN c.closes_at
                            ELSE least(CAST(:now AS timestamptz), c.created_at + interval '1 hour') END,
                       c.due_at,
                       CASE WHEN c.closes_at < :now THEN c.closes_at END,
                       1,
                       CASE WHEN c.relaunch AND c.closes_at < :now THEN c.contract_id END,
                       c.territory_id,
                       CASE WHEN c.relaunch THEN
                            CASE WHEN c.r1 < :rank3 AND (c.closes_at < :now OR c.created_at
                                      < CAST(:now AS timestamptz) - make_interval(days => :days3)) THEN 3
                                 WHEN c.r1 < :rank2 AND (c.closes_at < :now OR c.created_at
                                      < CAST(:now AS timestamptz) - make_interval(days => :days2)) THEN 2
                                 ELSE 1 END END,
                       CASE WHEN c.relaunch AND c.closes_at < :now AND c.r2 < :paid THEN 'paid' END
                FROM fill_chunk c ORDER BY c.id""",
                  now=end, suspended=SUSPENDED_SHARE, in_progress=IN_PROGRESS_SHARE,
                  contact=ORIGINS["contact"] / sum(ORIGINS.values()), rank2=RANK2, rank3=RANK3,
                  days2=RANK_DAYS[2], days3=RANK_DAYS[3], paid=PAID_SHARE)
            timed("dossier_party", """
                INSERT INTO dossier_party (dossier_id, party_id, role, origin)
                SELECT id, party_id, 'customer', 'default' FROM fill_chunk ORDER BY id""")
            timed("open", """
                INSERT INTO fill_open
                SELECT c.id, c.territory_id, c.contract_id, c.dossier_type_id,
                       CASE WHEN NOT c.relaunch THEN c.opener END,
                       c.created_at, c.due_at, c.relaunch, c.back, c.front, c.r1, c.r2
                FROM fill_chunk c WHERE NOT coalesce(c.closes_at < :now, false)""", now=end)
            t = time.perf_counter()
            db.commit()
            timings["commit"] += time.perf_counter() - t
            print(f"  {hi:>10,} dossiers  chunk {time.perf_counter() - chunk_started:6.1f} s   "
                  f"total {time.perf_counter() - started:7.1f} s", file=sys.stderr)

        # The yearly counters past the references written; an open relaunch holds its contract
        # (one per contract: the oldest open one when two fell on the same contract).
        step = time.perf_counter()
        for year, g in year_starts.items():
            following = [g2 for y2, g2 in year_starts.items() if y2 > year]
            last = (min(following) - 1 if following else args.count) - g + 1
            run("INSERT INTO reference_counter (series, year, last_value) VALUES ('DOS', :year, :last)",
                year=year, last=last)
        run("""UPDATE dossier d SET exclusive_contract_id = o.contract_id
               FROM (SELECT DISTINCT ON (contract_id) id, contract_id FROM fill_open
                     WHERE relaunch AND contract_id IS NOT NULL ORDER BY contract_id, id) o
               WHERE d.id = o.id""")
        # A running process and a ready task for each dossier still open.
        run("""INSERT INTO process_instance (id, definition_id, dossier_id, status, state, revision, started_by_id,
                                             started_at, updated_at)
               SELECT row_number() OVER (ORDER BY o.id), t.definition_id, o.id, 'running', '{}', 1, o.created_by_id,
                      o.created_at, o.created_at
               FROM fill_open o JOIN fill_type t ON t.id = o.dossier_type_id ORDER BY o.id""")
        run("""INSERT INTO process_task (instance_id, task_uuid, element_id, name, role_code, assignee_id, status,
                                         created_at, due_at)
               SELECT i.id, gen_random_uuid()::text, 'traiter', 'Traiter le dossier', x.role_code,
                      CASE WHEN o.r2 < :assigned AND cardinality(x.agents) > 0
                           THEN x.agents[1 + floor(o.r1 * cardinality(x.agents))::int] END,
                      'ready', i.started_at + interval '1 minute', o.due_at
               FROM fill_open o JOIN process_instance i ON i.dossier_id = o.id
               CROSS JOIN LATERAL (SELECT CASE WHEN o.r1 < :back THEN 'back_office' ELSE 'accueil' END AS role_code,
                                          CASE WHEN o.r1 < :back THEN o.back ELSE o.front END AS agents) x
               ORDER BY i.id""", assigned=ASSIGNED_SHARE, back=BACK_OFFICE_SHARE)
        run("SELECT setval(pg_get_serial_sequence('process_instance', 'id'), "
            "greatest(1, (SELECT max(id) FROM process_instance)))")
        db.commit()
        finish = time.perf_counter() - step

        step = time.perf_counter()
        autocommit = db.execution_options(isolation_level="AUTOCOMMIT")
        tables = ("dossier", "dossier_party", "process_instance", "process_task", "reference_counter")
        for table in tables:
            autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))
        vacuum = time.perf_counter() - step
        seconds = time.perf_counter() - started
        counts = {table: run(f"SELECT count(*) FROM {table}").scalar() for table in tables}  # noqa: S608
        by_status = run("SELECT status, count(*) FROM dossier GROUP BY status ORDER BY status").all()
        past_target = run("""SELECT count(*) FILTER (WHERE closed_at > due_at),
                                    count(*) FILTER (WHERE closed_at IS NULL AND due_at < now())
                             FROM dossier""").one()
        ranks = run("""SELECT dunning_rank, count(*), count(*) FILTER (WHERE close_reason = 'paid')
                       FROM dossier WHERE dunning_rank IS NOT NULL GROUP BY 1 ORDER BY 1""").all()
        size = run("""SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['dossier', 'dossier_party',
                      'process_instance', 'process_task']::regclass[]) AS c""").scalar()
    engine.dispose()

    print(f"database: {engine.url.database}   dossiers: {args.count:,}   chunk: {args.chunk:,}")
    for table, rows in counts.items():
        print(f"  {table:18} {rows:>12,}")
    print("by status: " + ", ".join(f"{s} {n:,}" for s, n in by_status))
    print(f"closed past target {past_target[0]:,}, open past target {past_target[1]:,}")
    print("relaunches by rank (of which paid): " + ", ".join(f"{r}: {n:,} ({p:,})" for r, n, p in ranks))
    steps = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    print(f"time by step (s): {steps}, counters/processes/tasks {finish:.1f}, vacuum analyze {vacuum:.1f}")
    print(f"wall time {seconds:8.1f} s   {args.count / seconds:10,.0f} dossiers/s   "
          f"size of the four tables {float(size) / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()

"""Fill the contact tables of an existing PostgreSQL base (for instance one bench/seed.py built) with N contacts.

Run: ``.venv/bin/python bench/contacts_fill.py --database-url URL [--count 5000000] [--chunk 500000] [--append]``.

Each contact has one party link (role "customer", origin "default"), one agent link (role "emitter",
origin "default": an active agent allowed to create contacts whose territories cover the party's),
and, nine times in ten when the party holds a contract, one object link to that contract (origin
"default"). ``territory_id`` is the territory supervision counts the contact under, as
app.contacts.links.territory_of_record gives it: the party's, else the service point's of its first
contract (by id) that has one. Contact types come from the ``contact_type`` table, channels from app/labels.py, with
weights (telephone first). ``occurred_at`` grows with the id over the last five years, as contacts
are captured when they happen; ``created_at`` follows it by a few minutes.

The skew: 85 % of the contacts go to any party (about 4 each), 14 % to 1 % of the parties (about 60
more each) and 1 % to 0.01 % of them (about 450 more each). Which parties are "busy" is a fixed
shuffle of their ids, so a run gives the same shape every time.

The rows are written set-based (INSERT … SELECT from generate_series), a chunk per transaction, with
the foreign keys and indexes in place; then the four tables are vacuumed and analysed. By default the contact
tables are emptied first (TRUNCATE … CASCADE, which also empties ``dossier_contact``) so that a rerun
ends with exactly N contacts; ``--append`` adds N to what is there. PostgreSQL only: the bulk SQL
(temporary tables, arrays, ``setseed``) is PostgreSQL's, and the point is to measure on it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from app.labels import CHANNELS  # noqa: E402

YEARS = 5
# Share of the contacts per channel, in percent (a utility's front office: mostly the telephone).
CHANNEL_WEIGHTS = {"phone": 45, "front_desk": 15, "email": 15, "web": 10, "letter": 8, "sms": 4, "field_visit": 3}
# Share per contact type code, in percent; types not named share what is left.
TYPE_WEIGHTS = {"RENSEIGNEMENT": 30, "FACTURE": 25, "EMMENAGEMENT": 8, "DEMENAGEMENT": 8, "RELEVE": 10,
                "DIFFICULTE_PAIEMENT": 6, "RECLAMATION": 5, "APPEL_SORTANT": 8}
NOTES = [
    "Client rappelé, explications données sur le montant de la dernière facture.",
    "Demande de duplicata de facture, envoyé par courriel.",
    "Relève transmise par le client, index cohérent avec l'historique.",
    "Le client signale un changement de coordonnées bancaires.",
    "Question sur l'échéancier de mensualisation, simulation faite avec le client.",
    "Client mécontent du délai d'intervention, réclamation à suivre.",
    "Demande de rendez-vous pour la pose d'un compteur.",
    "Informations sur les offres et tarifs communiquées.",
]
NOTES_SHARE = 0.7    # contacts with notes
OBJECT_SHARE = 0.9   # contacts of a party holding a contract that link that contract
OUT_SHARE = 0.08     # contacts of an inbound type that are outbound anyway (the agent calls back)
# (share of contacts, share of parties they go to), from the busiest to everyone
SKEW = [(0.01, 0.0001), (0.14, 0.01), (0.85, 1.0)]


def slots(weights: dict, known: list) -> list:
    """100 values, each as often as its weight in percent (what a random index into them draws)."""
    weights = {k: w for k, w in weights.items() if k in known}
    rest = [k for k in known if k not in weights]
    left = 100 - sum(weights.values())
    for i, k in enumerate(rest):
        weights[k] = left // len(rest) + (1 if i < left % len(rest) else 0)
    values = [k for k, w in weights.items() for _ in range(w)]
    if len(values) != 100:
        scale = 100 / len(values)
        values = [values[min(len(values) - 1, int(i / scale))] for i in range(100)]
    return values


def party_pick_sql(parties: int) -> str:
    """The SQL expression of a party's rank (1..parties) from the uniform draws u (which band) and v (where in it)."""
    cases, threshold = [], 0.0
    for share, party_share in SKEW[:-1]:
        threshold += share
        cases.append(f"WHEN r.u < {threshold!r} THEN 1 + floor(r.v * {max(1, int(parties * party_share))})")
    return f"(CASE {' '.join(cases)} ELSE 1 + floor(r.v * {parties}) END)::int"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=5_000_000)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--append", action="store_true", help="add to the contacts there instead of replacing them")
    parser.add_argument("--seed", type=float, default=0.42, help="setseed() of the first chunk, in [-1, 1]")
    args = parser.parse_args()

    from sqlalchemy import text

    from bench.common import PARTY_TERRITORY_SQL, bulk_fill_engine

    engine = bulk_fill_engine(args.database_url, "contacts_fill.py", args.count, args.chunk)

    started = time.perf_counter()
    with engine.connect() as db:
        def run(sql: str, **params):
            return db.execute(text(sql), params)

        types = run("SELECT code, id FROM contact_type WHERE active ORDER BY position, id").all()
        if not types:
            raise SystemExit("no contact type: seed the referentials first (app.seed.referentials.seed_referentials)")
        type_ids = dict(types)
        type_slots = [type_ids[code] for code in slots(TYPE_WEIGHTS, list(type_ids))]
        channel_slots = slots(CHANNEL_WEIGHTS, list(CHANNELS))

        # The agents who may create contacts, and per territory those whose territories cover it.
        run("""CREATE TEMP TABLE fill_agent AS
               SELECT a.id, t.path FROM agent a
               JOIN agent_territory at ON at.agent_id = a.id JOIN territory t ON t.id = at.territory_id
               WHERE a.active AND EXISTS (SELECT 1 FROM agent_role ar JOIN role_permission rp ON rp.role_id = ar.role_id
                                          WHERE ar.agent_id = a.id AND rp.permission = 'contact.create')""")
        all_agents = run("SELECT array_agg(DISTINCT id ORDER BY id) FROM fill_agent").scalar()
        if not all_agents:
            raise SystemExit("no active agent may create contacts: seed the demo agents first")
        run("""CREATE TEMP TABLE fill_territory AS
               SELECT t.id AS territory_id, array_agg(DISTINCT fa.id ORDER BY fa.id) AS agents
               FROM territory t JOIN fill_agent fa ON t.path LIKE fa.path || '%' GROUP BY t.id""")
        # Every party, in a fixed shuffle (rank n), with its contract (the newest it holds, else
        # the newest it has any role on) and the agents who could have taken its calls.
        step = time.perf_counter()
        run(f"""CREATE TEMP TABLE fill_party AS
               SELECT (row_number() OVER (ORDER BY hashint4(p.id), p.id))::int AS n, p.id AS party_id,
                      (SELECT cp.contract_id FROM contract_party cp WHERE cp.party_id = p.id
                       ORDER BY cp.role <> 'holder', cp.contract_id DESC LIMIT 1) AS contract_id,
                      coalesce(ft.agents, CAST(:all_agents AS int[])) AS agents,
                      {PARTY_TERRITORY_SQL} AS territory_id
               FROM party p LEFT JOIN fill_territory ft ON ft.territory_id = p.territory_id""",
            all_agents=all_agents)
        run("ALTER TABLE fill_party ADD PRIMARY KEY (n)")
        run("ANALYZE fill_party")
        parties, with_contract, placed = run(
            "SELECT count(*), count(contract_id), count(territory_id) FROM fill_party").one()
        if not parties:
            raise SystemExit("no party: build the base with bench/seed.py first")
        db.commit()
        print(f"{parties:,} parties ({with_contract:,} with a contract, {placed:,} in a territory), "
              f"{len(all_agents)} agents, "
              f"{len(type_ids)} contact types; prepared in {time.perf_counter() - step:.1f} s", file=sys.stderr)

        if not args.append:
            before = run("SELECT count(*) FROM contact").scalar()
            run("TRUNCATE contact, contact_party, contact_agent, contact_object RESTART IDENTITY CASCADE")
            db.commit()
            print(f"emptied the contact tables ({before:,} contacts)", file=sys.stderr)
        # Reserve the ids: the chunk computes them (base + position), so links need no RETURNING.
        sequence = run("SELECT pg_get_serial_sequence('contact', 'id')").scalar()
        base = run("SELECT coalesce(max(id), 0) FROM contact").scalar()
        run("SELECT setval(CAST(:seq AS regclass), :last)", seq=sequence, last=base + args.count)
        db.commit()

        end = datetime.now(UTC).replace(microsecond=0)
        first = end - timedelta(days=365 * YEARS + YEARS // 4)
        seconds_each = (end - first).total_seconds() / args.count
        pick = party_pick_sql(parties)
        timings = {"draw": 0.0, "contact": 0.0, "contact_party": 0.0, "contact_agent": 0.0, "contact_object": 0.0,
                   "commit": 0.0}
        for number, lo in enumerate(range(1, args.count + 1, args.chunk)):
            hi = min(args.count, lo + args.chunk - 1)
            chunk_started = time.perf_counter()
            seed = ((args.seed + number * 0.0137) + 1) % 2 - 1
            run("SELECT setseed(:seed)", seed=seed)

            def timed(key: str, sql: str, **params) -> None:
                t = time.perf_counter()
                run(sql, **params)
                timings[key] += time.perf_counter() - t

            timed("draw", f"""
                CREATE TEMP TABLE fill_chunk ON COMMIT DROP AS
                WITH r AS MATERIALIZED (
                    SELECT g, random() AS u, random() AS v, random() AS w, random() AS x, random() AS y,
                           random() AS z, random() AS q, random() AS o, random() AS k
                    FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g)
                SELECT :base + r.g AS id, p.party_id, p.contract_id, p.territory_id,
                       p.agents[1 + floor(r.w * cardinality(p.agents))::int] AS agent_id,
                       (CAST(:types AS int[]))[1 + floor(r.x * 100)::int] AS contact_type_id,
                       (CAST(:channels AS text[]))[1 + floor(r.y * 100)::int] AS channel,
                       to_timestamp(:first + (r.g - 1 + r.z) * :each) AS occurred_at,
                       r.q, r.o, r.k
                FROM r JOIN fill_party p ON p.n = {pick}""",
                  lo=lo, hi=hi, base=base, types=type_slots, channels=channel_slots,
                  first=first.timestamp(), each=seconds_each)
            timed("contact", """
                INSERT INTO contact (id, contact_type_id, channel, direction, subject, notes, occurred_at,
                                     duration_minutes, created_by_id, created_at, territory_id)
                SELECT c.id, c.contact_type_id, c.channel,
                       CASE WHEN c.o < :out THEN 'out' ELSE coalesce(t.default_direction, 'in') END,
                       t.label,
                       CASE WHEN c.q < :notes_share
                            THEN (CAST(:notes AS text[]))[1 + floor(c.q / :notes_share * :n_notes)::int] END,
                       c.occurred_at,
                       CASE WHEN c.channel IN ('phone', 'front_desk', 'field_visit')
                            THEN 1 + floor(c.q * c.o * 30)::int END,
                       c.agent_id,
                       c.occurred_at + make_interval(secs => 30 + floor(c.o * 600)),
                       c.territory_id
                FROM fill_chunk c JOIN contact_type t ON t.id = c.contact_type_id
                ORDER BY c.id""",
                  out=OUT_SHARE, notes_share=NOTES_SHARE, notes=NOTES, n_notes=len(NOTES))
            timed("contact_party", """
                INSERT INTO contact_party (contact_id, party_id, role, origin)
                SELECT id, party_id, 'customer', 'default' FROM fill_chunk ORDER BY id""")
            timed("contact_agent", """
                INSERT INTO contact_agent (contact_id, agent_id, role, origin)
                SELECT id, agent_id, 'emitter', 'default' FROM fill_chunk ORDER BY id""")
            timed("contact_object", """
                INSERT INTO contact_object (contact_id, object_type, object_id, origin)
                SELECT id, 'contract', contract_id, 'default' FROM fill_chunk
                WHERE contract_id IS NOT NULL AND k < :share ORDER BY id""",
                  share=OBJECT_SHARE)
            t = time.perf_counter()
            db.commit()
            timings["commit"] += time.perf_counter() - t
            done = hi
            print(f"  {done:>10,} contacts  chunk {time.perf_counter() - chunk_started:6.1f} s   "
                  f"total {time.perf_counter() - started:7.1f} s", file=sys.stderr)

        # VACUUM as autovacuum would have done on tables filled over years: the visibility map (for
        # index-only scans) and the hint bits, so that the first reads do not rewrite every page.
        step = time.perf_counter()
        db.commit()
        autocommit = db.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("contact", "contact_party", "contact_agent", "contact_object"):
            autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))
        vacuum = time.perf_counter() - step
        seconds = time.perf_counter() - started
        counts = {table: run(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608 (constant names)
                  for table in ("contact", "contact_party", "contact_agent", "contact_object")}
        spread = run("""SELECT percentile_disc(ARRAY[0.5, 0.9, 0.99, 0.999, 1.0]) WITHIN GROUP (ORDER BY n),
                               count(*)
                        FROM (SELECT count(*) AS n FROM contact_party GROUP BY party_id) per_party""").one()
        size = run("""SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['contact', 'contact_party',
                      'contact_agent', 'contact_object']::regclass[]) AS c""").scalar()
    engine.dispose()

    print(f"database: {engine.url.database}   contacts added: {args.count:,}   chunk: {args.chunk:,}")
    for table, rows in counts.items():
        print(f"  {table:16} {rows:>12,}")
    steps = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    print(f"time by step (s): {steps}, vacuum analyze {vacuum:.1f}")
    quantiles, touched = spread
    print(f"contacts per party (of {touched:,} parties with one): p50 {quantiles[0]}, p90 {quantiles[1]}, "
          f"p99 {quantiles[2]}, p99.9 {quantiles[3]}, max {quantiles[4]}")
    print(f"wall time {seconds:8.1f} s   {args.count / seconds:10,.0f} contacts/s   "
          f"size of the four tables {float(size) / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()

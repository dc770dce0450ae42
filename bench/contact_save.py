"""Benchmark of saving a contact with its links (``POST /contacts/nouveau``) on an existing database.

Run: ``.venv/bin/python bench/contact_save.py --database-url URL [--rounds 300] [--warmup 20] [--parties 100]``
(for instance on the base bench/seed.py built and bench/contacts_fill.py filled).

As the front-desk agent ``accueil.lyon`` (``--agent``), on customers of its scope holding a contract
(drawn at random, fixed seed), each round does what the agent's browser does: opens the form
``GET /contacts/nouveau?party=…&contract=…&channel=phone`` (timed apart), then posts it, type
"Question sur une facture" (FACTURE), telephone, inbound, 4 minutes, subject and notes, with four
links: the customer (customer, default), the agent (emitter, default), the contract (default) and
the contract's last invoice (the type's "last invoice" template item; ``--no-invoice`` leaves it
out). A save answers 303 to the new contact's page; the benchmark stops at anything else.

Through gunicorn (one worker, keep-alive, logged in), after ``--warmup`` rounds, it prints the p50,
p95 and p99 of the POST (and of the GET that opens the form). In process, on the same database, it
counts the SQL statements of ``--sample`` saves, twice on the same customers (a first save, whose
rows may not be in PostgreSQL's buffers yet, then a second), with the median time of each statement
on the driver (``--profile`` adds cProfile's view of the Python side). The contacts it created are
deleted at the end (their audit entries stay), unless ``--keep``.
"""
from __future__ import annotations

import argparse
import html
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.common import (  # noqa: E402
    Client,
    csrf_token,
    logged_in_test_client,
    percentile,
    recorded_statements,
    start_server,
)

TYPE_CODE = "FACTURE"
NOTES = ("Le client demande pourquoi sa dernière facture est plus élevée que la précédente. "
         "Explications données sur l'estimation de consommation ; il transmettra un index réel.")


@dataclass(frozen=True)
class Case:
    party_id: int
    contract_id: int
    invoice_id: int | None


@dataclass(frozen=True)
class Setup:
    agent_id: int
    type_id: int
    invoice_item_id: int | None  # the type's "last_invoice" template item
    cases: list[Case]


def pick_cases(session, agent, count: int, seed: int) -> list[Case]:
    """count customers of the agent's scope holding a contract the agent may read, drawn at random
    among all parties, with that contract and its last invoice (as the template finds it)."""
    from sqlalchemy import func, select

    from app.contacts import objects
    from app.contracts import service as contracts
    from app.contracts.models import ContractParty
    from app.parties.models import Party
    from app.security.scope import scoped_select

    rng = random.Random(seed)
    low, high = session.execute(select(func.min(Party.id), func.max(Party.id))).one()
    cases: list[Case] = []
    seen: set[int] = set()
    for _ in range(200):
        drawn = {rng.randint(low, high) for _ in range(2000)} - seen
        seen |= drawn
        readable = session.execute(scoped_select(Party, agent=agent, permission="party.read")
                                   .where(Party.id.in_(drawn)).with_only_columns(Party.id)).scalars().all()
        holders = session.execute(select(ContractParty.party_id, func.max(ContractParty.contract_id))
                                  .where(ContractParty.party_id.in_(readable), ContractParty.role == "holder")
                                  .group_by(ContractParty.party_id)).all()
        refs = {objects.Ref("contract", contract_id) for _party, contract_id in holders}
        visible = objects.load(agent, refs)
        for party_id, contract_id in sorted(holders):
            if objects.Ref("contract", contract_id) not in visible:
                continue
            last = contracts.list_invoices(agent=agent, contract_id=contract_id, limit=1)
            cases.append(Case(party_id, contract_id, last[0].id if last else None))
            if len(cases) == count:
                rng.shuffle(cases)
                return cases
    raise SystemExit(f"found {len(cases)} customers with a contract in the scope of {agent.login}, wanted {count}")


def prepare(app, login: str, count: int, seed: int) -> Setup:
    from sqlalchemy import select

    from app.contacts.models import ContactType, TemplateItem
    from app.db import session
    from app.security.models import Agent

    with app.app_context():
        agent = session.execute(select(Agent).where(Agent.login == login)).scalar_one()
        contact_type = session.execute(select(ContactType).where(ContactType.code == TYPE_CODE)).scalar_one_or_none()
        if contact_type is None:
            raise SystemExit(f"no contact type {TYPE_CODE}: seed the referentials (app.seed.referentials)")
        item_id = session.execute(select(TemplateItem.id).where(TemplateItem.contact_type_id == contact_type.id,
                                                               TemplateItem.source == "last_invoice")).scalar()
        setup = Setup(agent.id, contact_type.id, item_id, pick_cases(session, agent, count, seed))
        session.remove()
    return setup


def form_path(case: Case) -> str:
    return f"/contacts/nouveau?party={case.party_id}&contract={case.contract_id}&channel=phone"


def form_fields(page: str, setup: Setup, case: Case, number: int, invoice: bool) -> list[tuple[str, str]]:
    """What the browser posts: the form's hidden fields (token, customer, contract, rows shown) and
    date as the page gave them, the agent's entries, and the ticked links."""
    shown = [html.unescape(v) for v in re.findall(r'name="shown" value="([^"]*)"', page)]
    occurred = re.search(r'name="occurred_at"[^>]*value="([^"]*)"', page)
    links = [("parties", f"{case.party_id}|customer|default"), ("agents", f"{setup.agent_id}|emitter|default"),
             ("objects", f"contract:{case.contract_id}||default")]
    expected = [f"{kind}={value}" for kind, (_name, value) in zip(("party", "agent", "object"), links, strict=True)]
    missing = [row for row in expected if row not in shown]
    if missing:
        raise SystemExit(f"{form_path(case)}: the form does not propose {missing} (it shows {shown})")
    if invoice and case.invoice_id is not None and setup.invoice_item_id is not None:
        value = f"invoice:{case.invoice_id}||template:{setup.invoice_item_id}"
        links.append(("objects", value))
        shown.append(f"object={value}")  # the row the type's template adds when the agent picks it
    key = re.search(r'name="submission_key" value="([0-9a-f]{32})"', page)
    return [("csrf_token", csrf_token(page)), ("submission_key", key.group(1) if key else ""),
            ("party", str(case.party_id)), ("contract", str(case.contract_id)),
            ("contact_type", str(setup.type_id)), ("subject", f"Question sur la facture (bench {number})"),
            ("channel", "phone"), ("direction", "in"), ("occurred_at", occurred.group(1) if occurred else ""),
            ("duration_minutes", "4"), ("notes", NOTES), *[("shown", s) for s in shown], *links]


def created_id(location: str | None) -> int:
    found = re.search(r"/contacts/(\d+)", location or "")
    if not found:
        raise SystemExit(f"the save did not redirect to a contact: Location {location!r}")
    return int(found.group(1))


def label_of(statement: str) -> str:
    """A short name for a statement: its verb and main table."""
    text = " ".join(statement.split())
    verb = text.split(" ", 1)[0].upper()
    table = re.search(r"\b(?:INTO|UPDATE|FROM)\s+(\w+)", text, re.IGNORECASE)
    return f"{verb} {table.group(1) if table else ''}".strip()


def in_process_saves(app, login: str, setup: Setup, sample: int, invoice: bool, created: list[int],
                     profile: bool = False) -> list[list[tuple[list[tuple[str, float]], float]]]:
    """Two passes of sample saves in process, on the same customers: the first save of each (its rows
    may not be in PostgreSQL's buffers yet) and a second one. Each save as (its statements with their
    time on the driver, its wall time). With profile, a third pass runs under cProfile and prints
    where the Python time goes."""
    client = logged_in_test_client(app, login)
    cases = setup.cases[:sample]
    warm = setup.cases[-1]  # a first save warms the application's caches; not counted
    passes = []
    profiles = None
    for number, case in enumerate([warm] + cases * (3 if profile else 2)):
        page = client.get(form_path(case)).get_data(as_text=True)
        fields = form_fields(page, setup, case, number, invoice)
        profiler = None
        if profile and number > 2 * len(cases):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        with recorded_statements(app) as statements:
            response = client.post("/contacts/nouveau", data=_multi(fields))
        wall = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            if profiles is None:
                import pstats

                profiles = pstats.Stats(profiler)
            else:
                profiles.add(profiler)
        if response.status_code != 303:
            raise SystemExit(f"in process: the save answered {response.status_code}: "
                             f"{_error_of(response.get_data(as_text=True))}")
        created.append(created_id(response.headers.get("Location")))
        if number and number <= 2 * len(cases):
            if (number - 1) % len(cases) == 0:
                passes.append([])
            passes[-1].append((list(statements), wall))
    if profiles is not None:
        print(f"Python profile of {len(cases)} saves in process (cumulative, top 30):")
        profiles.sort_stats("cumulative").print_stats(30)
    return passes


def print_statements(passes) -> None:
    """Statements per save, and the median time of each statement over each pass."""
    counts = [len(s) for runs in passes for s, _wall in runs]
    print(f"SQL statements per save (in process, {len(counts)} saves): median {statistics.median(counts):g}, "
          f"min {min(counts)}, max {max(counts)}")
    usual = statistics.mode(counts)
    names = ("first save of the customer", "second save")
    for name, runs in zip(names, passes, strict=False):
        walls = [wall for _s, wall in runs]
        sql = [sum(t for _s, t in statements) for statements, _wall in runs]
        print(f"  {name:28} median {statistics.median(walls) * 1000:6.1f} ms, "
              f"of which SQL on the driver {statistics.median(sql) * 1000:5.1f} ms")
    print(f"  median time of each statement (saves of {usual} statements), ms:")
    print(f"  {'':>3} {'statement':24} " + " ".join(f"{n.split()[0]:>7}" for n in names[:len(passes)]))
    same = [[statements for statements, _wall in runs if len(statements) == usual] for runs in passes]
    for position in range(usual):
        label = label_of(same[0][0][position][0]) if same[0] else ""
        times = [statistics.median(s[position][1] for s in runs) * 1000 if runs else float("nan") for runs in same]
        print(f"  {position + 1:>3} {label:24} " + " ".join(f"{t:7.2f}" for t in times))


def _multi(fields: list[tuple[str, str]]):
    from werkzeug.datastructures import MultiDict

    return MultiDict(fields)


def _error_of(page: str) -> str:
    found = re.findall(r'(?:role="alert"[^>]*>|class="field-error">)([^<]+)<', page)
    return "; ".join(html.unescape(f).strip() for f in found) or page[:300]


def delete_contacts(app, ids: list[int]) -> None:
    """The benchmark's contacts and their links, on the engine (not through the session: they are
    synthetic rows, like contacts_fill.py's, and leave no audit entry of their own going)."""
    from app.contacts.models import Contact, ContactAgent, ContactObject, ContactParty
    from app.db import db
    from app.dossiers.models import DossierContact

    with app.app_context():
        engine = db.get_engine()
    with engine.begin() as connection:  # the links first: SQLite may not cascade
        for model in (DossierContact, ContactParty, ContactAgent, ContactObject):
            table = model.__table__
            connection.execute(table.delete().where(table.c.contact_id.in_(ids)))
        connection.execute(Contact.__table__.delete().where(Contact.__table__.c.id.in_(ids)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--parties", type=int, default=100, help="customers the rounds cycle through")
    parser.add_argument("--sample", type=int, default=20, help="saves whose statements are counted in process")
    parser.add_argument("--agent", default="accueil.lyon")
    parser.add_argument("--port", type=int, default=5098)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--no-invoice", dest="invoice", action="store_false",
                        help="post three links (customer, agent, contract) instead of four")
    parser.add_argument("--keep", action="store_true", help="keep the contacts the benchmark created")
    parser.add_argument("--profile", action="store_true", help="also profile the saves in process (cProfile)")
    args = parser.parse_args()
    os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-contact-")

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "bench"})
    started = time.perf_counter()
    setup = prepare(app, args.agent, args.parties, args.seed)
    with_invoice = sum(1 for c in setup.cases if c.invoice_id is not None)
    print(f"{len(setup.cases)} customers of {args.agent} with a contract ({with_invoice} with an invoice), "
          f"drawn in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    created: list[int] = []
    try:
        print_statements(in_process_saves(app, args.agent, setup, args.sample, args.invoice, created,
                                          profile=args.profile))

        server = start_server(args.database_url, args.port)
        try:
            client = Client(args.port, args.agent)
            get_times, post_times = [], []
            for number in range(args.warmup + args.rounds):
                case = setup.cases[number % len(setup.cases)]
                t = time.perf_counter()
                page = client.get(form_path(case))
                get_seconds = time.perf_counter() - t
                if client.status != 200:
                    raise SystemExit(f"GET {form_path(case)}: {client.status}")
                fields = form_fields(page, setup, case, number, args.invoice)
                t = time.perf_counter()
                body = client.post_form("/contacts/nouveau", fields)
                post_seconds = time.perf_counter() - t
                if client.status != 303:
                    raise SystemExit(f"POST /contacts/nouveau answered {client.status}: {_error_of(body)}")
                created.append(created_id(client.headers.get("Location")))
                if number >= args.warmup:
                    get_times.append(get_seconds)
                    post_times.append(post_seconds)
        finally:
            server.kill()
            server.wait()
        links = 4 if args.invoice else 3
        print(f"HTTP, {args.rounds} rounds after {args.warmup} of warm-up, {links} links per contact:")
        print(f"  {'':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for name, times in (("POST /contacts/nouveau (save)", post_times),
                            ("GET /contacts/nouveau (open form)", get_times)):
            print(f"  {name:34} {percentile(times, 50):8.1f} {percentile(times, 95):8.1f} "
                  f"{percentile(times, 99):8.1f}")
    finally:
        if created and not args.keep:
            delete_contacts(app, created)
            print(f"deleted the {len(created)} contacts the benchmark created", file=sys.stderr)


if __name__ == "__main__":
    main()

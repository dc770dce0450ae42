"""Benchmark of the dunning run (issue 9): a full run with Celery workers on a seeded PostgreSQL base.

Run: ``.venv/bin/python bench/dunning.py [--database-url URL] [--customers 1000000] [--reuse]
[--workers 2] [--raw 2000] [--stop-at HH:MM]``

1. Unless ``--reuse`` finds customers in the database: a fresh database (``bench.fresh.demo_app``:
   dropped, created, migrated, demo territories, roles, agents and referentials with the standard
   dunning procedure), ``--customers`` synthetic customers (``app.seed.customers.generate_customers``,
   as ``bench/seed.py``), the processes (``bpmn/``) and the letter and mail templates deployed.
2. **raw**: SpiffWorkflow alone, in memory, in the same session: ``bpmn/unpaid_relaunch`` parsed once
   (``app.processes.engine.check``, i.e. ``SpiffBpmnParser``), then ``--raw`` times
   ``BpmnWorkflow(spec)`` → ``do_engine_steps`` (up to the wait before level 2) → ``serialize_json``.
   The service operation ``dunning_level`` does nothing: the script engine's ``call_service`` returns
   a fixed result. The serializer is ``BpmnWorkflowSerializer`` configured with SpiffWorkflow's own
   ``SPIFF_CONFIG`` (spec included): the bare default config cannot serialize the spiff task specs
   the diagram's ``serviceTaskOperator`` needs.
3. Database size and row counts of the tables a dossier writes, before.
4. The run: the selection (``select_contracts``) timed alone, then ``dispatch`` with ``--workers``
   Celery workers (``--pool=solo``, one process each, Redis DB 11, ``DOCUMENT_PDF=off``) started
   beforehand; the wall time from dispatch to the run's status ``done``, dossiers opened, dossiers/s.
   Then a second run the same day (nothing to open: the selection's cost only).
5. Database size after; growth per dossier, overall and by table (``pg_total_relation_size``).
6. A Markdown section for docs/performance.md, printed and written to ``--report``.

``--stop-at HH:MM`` (UTC): stop the workers at that time even if the run is not done; the numbers are
then those of the part done, labelled partial.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/guichet_bench_dunning"
BROKER = "redis://127.0.0.1:6379/11"
# The settings the benchmark process and its workers share (read by app.config.from_env).
BENCH_ENV = {"TZ": "UTC", "SECRET_KEY": "bench", "DOCUMENT_PDF": "off", "CELERY_BROKER_URL": BROKER}
for _name, _value in BENCH_ENV.items():
    os.environ[_name] = _value
os.environ.pop("SMTP_URL", None)
os.environ.pop("BILLING_API_URL", None)

# The tables a relaunch dossier writes to (rows counted before and after).
COUNTED = ("dossier", "process_instance", "dossier_element", "stored_file", "audit_entry", "outgoing_mail",
           "affaire_sync")
STUB_RESULT = {"rank": 1, "label": "Premier rappel", "amount": "42.00", "invoices": 1, "task": False, "last": False,
               "wait": "P15D", "letter": None, "mail": None, "reason": "", "outcome": "done"}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- 1. The database ---------------------------------------------------------------------------

def bench_app(url: str, workdir: Path):
    os.environ["GUICHET_INSTANCE_DIR"] = str(workdir)
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "DOCUMENT_PDF": "off"})


def customers_in(url: str) -> int:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"))
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": parsed.database}).first()
    admin.dispose()
    if not exists:
        return 0
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM contract")).scalar() or 0
    except Exception:  # noqa: BLE001 (no table: not migrated)
        return 0
    finally:
        engine.dispose()


def deploy(app) -> None:
    """Processes, templates and referentials (the dunning procedure): idempotent."""
    from app.audit.context import set_actor
    from app.db import session
    from app.documents.templates import deploy_directory as deploy_templates
    from app.processes.definitions import deploy_directory as deploy_processes
    from app.seed.referentials import seed_referentials

    with app.app_context():
        set_actor(actor_id=None, actor_label="bench")
        deploy_processes(ROOT / "bpmn")
        deploy_templates(ROOT / "templates_docs")
        seed_referentials()
        session.commit()
        session.remove()


def seed(url: str, customers: int, random_seed: int):
    from bench.fresh import demo_app

    app, url, workdir = demo_app(url, prefix="guichet-bench-dunning-", DOCUMENT_PDF="off")
    from app.audit.context import set_actor
    from app.db import session
    from app.seed.customers import generate_customers

    with app.app_context():
        set_actor(actor_id=None, actor_label="bench")
        done = 0
        started = time.perf_counter()

        def progress(n: int) -> None:
            nonlocal done
            done += n
            if done % 50_000 < n or done == customers:
                log(f"  {done:>10,} customers  {time.perf_counter() - started:8.1f} s")

        counts = generate_customers(count=customers, seed=random_seed, progress=progress)
        session.commit()
        seconds = time.perf_counter() - started
        session.remove()
    deploy(app)
    return app, workdir, seconds, counts


# --- 2. Raw SpiffWorkflow ----------------------------------------------------------------------

def bench_raw(count: int, warmup: int = 50) -> dict:
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
    from SpiffWorkflow.util.task import TaskState

    from app.processes.definitions import read_folder
    from app.processes.engine import check

    class StubEngine(PythonScriptEngine):
        def call_service(self, task, **kwargs):  # the operation does nothing: a fixed result
            return json.dumps(STUB_RESULT)

    started = time.perf_counter()
    parsed = check("unpaid_relaunch", read_folder(ROOT / "bpmn" / "unpaid_relaunch"))
    parse_seconds = time.perf_counter() - started
    engine = StubEngine()
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    context = {"context": {"dossier_id": 123456, "dossier_reference": "DOS-2026-0123456", "contact_id": None,
                           "party_id": 4567, "party_number": "C0004567", "party_name": "Hélène Lefèvre",
                           "contract_id": 7654, "contract_number": "CT0007654", "agent_id": None,
                           "agent_name": None}}
    times, size = [], 0
    for number in range(warmup + count):
        t0 = time.perf_counter()
        workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=engine)
        workflow.data.update(context)
        workflow.task_tree.data.update(context)
        workflow.do_engine_steps()
        state = serializer.serialize_json(workflow)
        if number >= warmup:
            times.append(time.perf_counter() - t0)
    waiting = sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.WAITING))
    size = len(state.encode())
    return {"count": count, "rate": count / sum(times), "p50_ms": statistics.median(times) * 1000,
            "parse_ms": parse_seconds * 1000, "waiting": waiting, "state_bytes": size}


# --- 3, 5. Sizes -------------------------------------------------------------------------------

def measure(engine) -> dict:
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        tables = dict(conn.exec_driver_sql(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'").all())
        rows = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in COUNTED}  # noqa: S608
    return {"size": size, "tables": tables, "rows": rows}


# --- 4. The run --------------------------------------------------------------------------------

class Workers:
    """The Celery worker processes this benchmark starts (and only those are stopped)."""

    def __init__(self, count: int, url: str, workdir: Path):
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        env = {**os.environ, **BENCH_ENV, "DATABASE_URL": url, "GUICHET_INSTANCE_DIR": str(workdir)}
        self.command = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "workers.main", "worker", "--pool=solo",
                        "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
        for number in range(1, count + 1):
            path = workdir / f"worker{number}.log"
            self.logs.append(path)
            out = path.open("w")
            command = [*self.command, "-n", f"bench{number}@%h"]
            self.procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,  # noqa: S603 (ours)
                                               stderr=subprocess.STDOUT, start_new_session=True))
        pids = " ".join(str(p.pid) for p in self.procs)
        Path("/tmp/dunning_bench_pids").write_text(pids + "\n")  # noqa: S108
        log(f"workers started, pids {[p.pid for p in self.procs]}, logs in {workdir}")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, path in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    raise SystemExit(f"worker {proc.pid} ended ({proc.returncode}): see {path}")
            if all(" ready." in path.read_text(errors="replace") for path in self.logs):
                return
            time.sleep(0.5)
        raise SystemExit("workers not ready in time")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log("workers stopped")

    def errors(self) -> list[str]:
        lines = []
        for path in self.logs:
            text = path.read_text(errors="replace")
            lines += [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]
        return lines


def outcome_counts(conn, run_id: int) -> dict[str, int]:
    return dict(conn.exec_driver_sql(
        "SELECT outcome, count(*) FROM dunning_run_item WHERE run_id = %(r)s GROUP BY outcome", {"r": run_id}).all())


def explain_selection(app, as_of) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of select_contracts' first statement (the contracts to open)."""
    from sqlalchemy import event

    from app.db import db, session
    from app.dunning import service

    captured = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    with app.app_context():
        engine = db.get_engine()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            procedure = service.active_procedure()
            captured.clear()
            service.select_contracts(procedure, as_of)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        statement, parameters = next((s, p) for s, p in captured if "dunning_block" in s)
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        session.rollback()
        session.remove()
    return f"{statement}\n-- parameters: {parameters}\n\n{plan}"


def timed_selection(app, as_of) -> tuple[float, object]:
    from app.db import session
    from app.dunning import service

    with app.app_context():
        procedure = service.active_procedure()
        started = time.perf_counter()
        selection = service.select_contracts(procedure, as_of)
        seconds = time.perf_counter() - started
        session.rollback()
        session.remove()
    return seconds, selection


def dispatch(app, as_of) -> tuple[float, dict]:
    from app.audit.context import set_actor
    from app.db import session
    from app.dunning import service

    with app.app_context():
        set_actor(actor_id=None, actor_label="bench")
        started = time.perf_counter()
        queued = service.dispatch(as_of=as_of, trigger="bench")
        seconds = time.perf_counter() - started
        session.remove()
    return seconds, queued


def follow(engine, run_id: int, selected: int, started: float, stop_at: datetime | None) -> dict:
    """Poll the run until done (or stop_at); what was done and when."""
    last_print = 0.0
    samples = {"polls": 0, "n": 0, "states": {}, "lock": 0, "lock_by_wait": {}}
    while True:
        with engine.connect() as conn:
            status = conn.exec_driver_sql("SELECT status FROM dunning_run WHERE id = %(r)s", {"r": run_id}).scalar()
            counts = outcome_counts(conn, run_id)
            samples["polls"] += 1
            # What the workers' backends are doing: a backend waiting on a lock is a worker held by the other.
            for state, wait_type, wait, query in conn.exec_driver_sql(
                    "SELECT state, wait_event_type, wait_event, left(query, 40) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'").all():
                samples["n"] += 1
                samples["states"][state] = samples["states"].get(state, 0) + 1
                if wait_type == "Lock":
                    samples["lock"] += 1
                    what = f"{wait}: {query}"  # the statement that waits
                    samples["lock_by_wait"][what] = samples["lock_by_wait"].get(what, 0) + 1
        elapsed = time.perf_counter() - started
        done = sum(counts.values())
        if status == "done":
            return {"status": status, "counts": counts, "seconds": elapsed, "partial": False, "samples": samples}
        if stop_at is not None and datetime.now(UTC) >= stop_at:
            return {"status": status, "counts": counts, "seconds": elapsed, "partial": True, "samples": samples}
        if elapsed - last_print >= 30:
            last_print = elapsed
            rate = counts.get("opened", 0) / elapsed if elapsed else 0
            eta = (selected - done) / (done / elapsed) if done else float("nan")
            log(f"  run {run_id}: {done:,}/{selected:,} items ({counts}) in {elapsed:,.0f} s, "
                f"{rate:.1f} opened/s, ETA {eta:,.0f} s; backend samples {samples}")
        time.sleep(0.5)


# --- 6. Report ---------------------------------------------------------------------------------

def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def report(args, facts: dict) -> str:
    raw, run, second = facts["raw"], facts["run"], facts["second"]
    before, after = facts["before"], facts["after"]
    rate = run["counts"].get("opened", 0) / run["seconds"] if run["seconds"] else 0
    opened = run.get("final_counts", run["counts"]).get("opened", 0)  # what the growth is divided by
    per_worker = rate / args.workers if args.workers else 0
    partial = " (PARTIAL: stopped before the end of the run)" if run["partial"] else ""
    samples = run.get("samples", {"polls": 0, "n": 0, "states": {}, "lock": 0, "lock_by_wait": {}})
    lock_share = 100 * samples["lock"] / (samples["polls"] * args.workers) if samples["polls"] else 0
    lines = [
        "## Dunning run at a million customers — `bench/dunning.py`",
        "",
        "```sh",
        *facts["commands"],
        "```",
        "",
        f"Measured on {facts['date']} on PostgreSQL {facts['pg_version']}, machine of 2 cores (shared), "
        f"{args.workers} Celery workers (`--pool=solo`, one process each) on Redis, `DUNNING_CHUNK_SIZE` "
        f"{facts['chunk_size']}, `DOCUMENT_PDF=off` (the letters' PDFs are converted apart, in batches), "
        "no SMTP server (the mails wait in the outbox).",
        "",
        f"Base: {args.customers:,} synthetic customers ({facts['parties']:,} parties), {facts['contracts']:,} contracts"
        + (f", seeded in {facts['seed_seconds']:,.0f} s ({facts['seed_seconds'] / 60:.1f} min)"
           if facts.get("seed_seconds") else " (seeded beforehand, `--reuse`)")
        + f"; {facts['overdue_contracts']:,} contracts with an unpaid invoice past its due date, of which "
          f"{facts['selection'].get('considered', 0):,} past the procedure's grace and first delay on "
          f"{facts['as_of']}.",
        "",
        "| what | value |",
        "|---|---|",
        f"| selection (`select_contracts`, alone) | {facts['selection_seconds']:.2f} s: "
        f"{facts['selection']['to_open']:,} to open; skipped "
        + ", ".join(f"{k} {v:,}" for k, v in facts['selection']['skipped'].items()) + " |",
        f"| dispatch (selection again, run and chunks recorded, {run['chunks']} tasks queued) "
        f"| {run['dispatch_seconds']:.2f} s |",
        f"| full run, dispatch → status `done`{partial} | **{run['seconds']:,.1f} s "
        f"({run['seconds'] / 60:.1f} min)** |",
        "| items: " + ", ".join(f"{k} {v:,}" for k, v in sorted(run["counts"].items()))
        + f" | of {run['selected']:,}"
        + (f"; {opened:,} opened once the workers had stopped" if run["partial"] else "") + " |",
        f"| dossiers opened per second, {args.workers} workers{partial} | **{rate:,.1f}** "
        f"({per_worker:,.1f} per worker, {1000 / per_worker if per_worker else 0:,.1f} ms per dossier and worker) |",
        f"| raw SpiffWorkflow: BpmnWorkflow → do_engine_steps → serialize, one process | "
        f"**{raw['rate']:,.0f} instances/s** (p50 {raw['p50_ms']:.3f} ms, {raw['state_bytes']:,} bytes of JSON) |",
        ("| second run the same day (nothing to open): dispatch, selection included | "
         f"{second['dispatch_seconds']:.2f} s, {second['selected']} selected, skipped "
         + ", ".join(f"{k} {v:,}" for k, v in second['skipped'].items() if v) + " |") if not run["partial"] else
        (f"| selection again after the stopped run (no second run: the first did not end) | "
         f"{second['selection_seconds']:.2f} s: {second['to_open']:,} still to open, skipped "
         + ", ".join(f"{k} {v:,}" for k, v in second['skipped'].items() if v) + " |"),
        "",
        f"**Service vs raw SpiffWorkflow:** {rate:,.1f} dossiers/s with {args.workers} workers against "
        f"{raw['rate']:,.0f} instances/s for SpiffWorkflow alone on one core: the service is "
        f"{raw['rate'] / per_worker if per_worker else float('nan'):,.0f}× slower per worker process "
        f"({1000 / raw['rate']:.2f} ms against {1000 / per_worker if per_worker else float('nan'):,.1f} ms per "
        "instance). The raw figure starts the process with `dunning_level` doing nothing (no letter, no mail, "
        "no database).",
        "",
        f"Database sessions of the workers, sampled from `pg_stat_activity` every ~0.5 s during the run "
        f"({samples['polls']:,} polls; session states seen: {samples['states']}): a worker's session was waiting "
        f"on a lock in {samples['lock']:,} samples, i.e. {lock_share:.0f} % "
        f"of each worker's time (wait events: {samples['lock_by_wait']}).",
        "",
        "Database growth:",
        "",
        "| | before | after | growth | per dossier |",
        "|---|---|---|---|---|",
        f"| `pg_database_size` | {mb(before['size'])} | {mb(after['size'])} | {mb(after['size'] - before['size'])} "
        f"| {(after['size'] - before['size']) / opened if opened else 0:,.0f} bytes |",
    ]
    grown = sorted(((t, after["tables"].get(t, 0) - before["tables"].get(t, 0)) for t in after["tables"]),
                   key=lambda item: -item[1])
    for table, growth in grown:
        if growth <= 0:
            continue
        lines.append(f"| `{table}` (table + indexes + TOAST) | {mb(before['tables'].get(table, 0))} | "
                     f"{mb(after['tables'][table])} | {mb(growth)} | {growth / opened if opened else 0:,.0f} bytes |")
    lines += ["", "Rows written:", "", "| table | before | after | per dossier |", "|---|---|---|---|"]
    for table in COUNTED:
        b, a = before["rows"][table], after["rows"][table]
        lines.append(f"| `{table}` | {b:,} | {a:,} | {(a - b) / opened if opened else 0:.2f} |")
    if facts.get("errors"):
        lines += ["", "Worker log errors (first 20):", "", "```", *facts["errors"][:20], "```"]
    if facts.get("failed_details"):
        lines += ["", "Failed items (sample):", "", "```", *facts["failed_details"], "```"]
    if facts.get("explain"):
        lines += ["", "EXPLAIN (ANALYZE, BUFFERS) of the selection:", "", "```", facts["explain"], "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="skip seeding when the database has customers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--raw", type=int, default=2000, help="instances of the raw SpiffWorkflow baseline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seed-only", action="store_true", help="stop after seeding")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the selection whatever its time")
    parser.add_argument("--stop-at", default=None, help="HH:MM UTC: stop the run there (partial numbers)")
    parser.add_argument("--report", default="/tmp/dunning_bench_report.md")  # noqa: S108
    args = parser.parse_args()
    stop_at = None
    if args.stop_at:
        hour, minute = map(int, args.stop_at.split(":"))
        stop_at = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)

    url = args.database_url
    command = " ".join(shlex.quote(a) for a in sys.argv[1:])
    facts: dict = {"date": f"{datetime.now(UTC):%Y-%m-%d}",
                   "commands": [f".venv/bin/python bench/dunning.py {command}".strip()]}
    found = customers_in(url) if args.reuse else 0
    if found:
        workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-dunning-"))
        app = bench_app(url, workdir)
        deploy(app)
        log(f"reusing {url}: {found:,} contracts")
    else:
        log(f"seeding {args.customers:,} customers into {url}")
        app, workdir, seconds, counts = seed(url, args.customers, args.seed)
        facts["seed_seconds"] = seconds
        log(f"seeded in {seconds:,.1f} s: {counts}")
    if args.seed_only:
        return

    from sqlalchemy import create_engine

    from app.parties.overview import local_today

    engine = create_engine(url)
    with engine.connect() as conn:
        facts["pg_version"] = conn.exec_driver_sql("SHOW server_version").scalar().split()[0]
        facts["parties"] = conn.exec_driver_sql("SELECT count(*) FROM party").scalar()
        facts["contracts"] = conn.exec_driver_sql("SELECT count(*) FROM contract").scalar()
        facts["overdue_contracts"] = conn.exec_driver_sql(
            "SELECT count(DISTINCT contract_id) FROM invoice WHERE status IN ('open', 'partially_paid') "
            "AND amount_paid < amount AND due_on < current_date"
        ).scalar()
    facts["chunk_size"] = app.config.get("DUNNING_CHUNK_SIZE")

    # 2. raw baseline
    log(f"raw SpiffWorkflow baseline, {args.raw} instances")
    facts["raw"] = bench_raw(args.raw)
    log(f"  raw: {facts['raw']}")

    # 3. before
    facts["before"] = measure(engine)
    log(f"before: {mb(facts['before']['size'])}, rows {facts['before']['rows']}")

    # 4. selection, then the run
    with app.app_context():
        as_of = local_today()
    facts["as_of"] = as_of.isoformat()
    seconds, selection = timed_selection(app, as_of)
    facts["selection_seconds"] = seconds
    facts["selection"] = {"to_open": len(selection.to_open), "skipped": selection.skipped,
                          "considered": len(selection.to_open) + sum(selection.skipped.values())}
    log(f"selection: {seconds:.2f} s, {len(selection.to_open):,} to open, skipped {selection.skipped}")
    if args.explain or seconds > 3:
        facts["explain"] = explain_selection(app, as_of)
        log("selection plan:\n" + facts["explain"])

    subprocess.run(["redis-cli", "-n", "11", "flushdb"], check=True, capture_output=True)  # noqa: S607
    workers = Workers(args.workers, url, workdir)
    try:
        workers.wait_ready()
        log("workers ready; dispatching")
        started = time.perf_counter()
        dispatch_seconds, queued = dispatch(app, as_of)
        log(f"dispatched in {dispatch_seconds:.2f} s: {queued}")
        run = follow(engine, queued["run"], queued["selected"], started, stop_at)
        run.update(dispatch_seconds=dispatch_seconds, chunks=queued["chunks"], selected=queued["selected"],
                   run_id=queued["run"])
        facts["run"] = run
        log(f"run: {run}")
    finally:
        workers.stop()
    facts["errors"] = workers.errors()
    subprocess.run(["redis-cli", "-n", "11", "flushdb"], check=True, capture_output=True)  # noqa: S607
    with engine.connect() as conn:
        facts["run"]["final_counts"] = outcome_counts(conn, facts["run"]["run_id"])
        log(f"after the workers stopped: {facts['run']['final_counts']}")
        facts["failed_details"] = [f"contract {c}: {d}" for c, d in conn.exec_driver_sql(
            "SELECT contract_id, detail FROM dunning_run_item WHERE run_id = %(r)s AND outcome = 'failed' "
            "ORDER BY id LIMIT 5", {"r": facts["run"]["run_id"]}).all()]

    # the second run of the day: only if the first is done (else it would chase what is left)
    if not facts["run"]["partial"]:
        seconds, queued = dispatch(app, as_of)
        with engine.connect() as conn:
            skipped = conn.exec_driver_sql("SELECT skipped FROM dunning_run WHERE id = %(r)s",
                                           {"r": queued["run"]}).scalar()
        facts["second"] = {"dispatch_seconds": seconds, "selected": queued["selected"],
                           "skipped": skipped if isinstance(skipped, dict) else json.loads(skipped)}
        log(f"second run: {facts['second']}")
    else:  # the selection alone, with the dossiers opened so far (read only: no run recorded)
        seconds, selection = timed_selection(app, as_of)
        facts["second"] = {"selection_seconds": seconds, "to_open": len(selection.to_open),
                           "skipped": selection.skipped}
        log(f"selection after the partial run: {facts['second']}")

    # 5. after
    facts["after"] = measure(engine)
    engine.dispose()
    text = report(args, facts)
    print(text)
    Path(args.report).write_text(text)
    log(f"report written to {args.report}")


if __name__ == "__main__":
    main()

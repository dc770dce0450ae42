"""Benchmark of process timers: the lag between a timer's due time and its firing by a real Celery worker.

Run: ``.venv/bin/python bench/process_timers.py [--database-url URL] [--waiting 10000] [--due 500]
[--interval 5] [--broker redis://127.0.0.1:6379/12]`` (the default database is PostgreSQL at
127.0.0.1, ``guichet_bench_proc_timers``, dropped and created afresh; the broker's Redis database
is emptied first).

1. **Setup** (timed, not the measure): ``--waiting`` instances of ``unpaid_relaunch`` started
   through ``app.processes.service.start`` (one contact each, inserted in bulk beforehand), a
   commit every ``--batch``: each waits on its first timer ("P15D"), so ``process_timer`` holds
   real rows. Then ``VACUUM ANALYZE`` (PostgreSQL).
2. **Nothing due**: the beat job's pick (``service._pick_due``) with every timer weeks away:
   ``EXPLAIN ANALYZE`` on PostgreSQL (``EXPLAIN QUERY PLAN`` on SQLite) and its median time through
   the session, and the median of a whole ``fire_due_timers()`` run that finds nothing.
3. **Firing**: a real worker with embedded beat (``celery -A workers.main worker -B --pool=solo``,
   ``PROCESS_TIMER_SECONDS=--interval``) is started and, ``--phase`` seconds after a run of the job
   (half the interval by default), ``--due`` timers drawn at random are made due by setting
   ``process_timer.due_at`` (to now; with ``--spread S``, spread evenly over the next S seconds).
   The benchmark waits for their ``timer`` audit entries (written when the timer fires, just
   before its commit): lag = the entry's ``created_at`` − the due time, p50 / p95 / max;
   throughput = timers / (last − first firing). The worker's log gives each run of the job
   (timers fired, seconds). Each instance must have fired once and now wait on its second timer.
   The worker is then stopped (its process group, by its id).
4. **In process**: ``--sample`` more timers made due and fired by ``fire_due_timers()`` in this
   process, with their SQL statements counted.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.common import percentile, recorded_statements  # noqa: E402
from bench.process_steps import Contacts, build_world  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/guichet_bench_proc_timers"
DEFAULT_BROKER = "redis://127.0.0.1:6379/12"
KEY = "unpaid_relaunch"


# --- 1. Setup ----------------------------------------------------------------------------------

def start_instances(app, contacts: Contacts, count: int, batch: int) -> float:
    """count instances waiting on their first timer, through the service; seconds taken."""
    from sqlalchemy import select
    from sqlalchemy.orm import lazyload

    from app.audit.context import set_actor
    from app.contacts.models import Contact
    from app.db import session
    from app.processes import service

    started = time.perf_counter()
    with app.app_context():
        set_actor(actor_id=None, actor_label="bench:timers")
        for number in range(count):
            # The contact alone: its eager relationships (parties, agents with their roles…) would
            # double the setup's time, and start reads what it needs of them.
            contact = session.execute(select(Contact).options(lazyload("*"))
                                      .where(Contact.id == contacts.next())).scalar_one()
            service.start(key=KEY, agent=None, contact=contact)
            if (number + 1) % batch == 0 or number + 1 == count:
                session.commit()
                session.expunge_all()
                if (number + 1) % (batch * 10) == 0:
                    print(f"  {number + 1:,} instances started, {time.perf_counter() - started:.0f} s",
                          file=sys.stderr)
        session.remove()
    return time.perf_counter() - started


def analyze(app) -> None:
    from app.db import db

    with app.app_context():
        engine = db.get_engine()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE process_timer, process_instance, process_task, audit_entry")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


# --- 2. The "nothing due" pick -----------------------------------------------------------------

def captured_pick(app, session) -> tuple[str, object]:
    """The statement and parameters _pick_due sends, caught on the driver (to show its plan)."""
    from sqlalchemy import event

    from app.db import db
    from app.processes import service

    caught = []

    def before(_conn, _cursor, statement, parameters, *_args):
        caught.append((statement, parameters))

    with app.app_context():
        engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        service._pick_due(datetime.now(UTC), set())
    finally:
        event.remove(engine, "before_cursor_execute", before)
    session.rollback()
    return next((s, p) for s, p in caught if "process_timer" in s)


def nothing_due(app, rounds: int) -> dict:
    from app.db import session
    from app.processes import service

    result = {}
    with app.app_context():
        postgresql = session.get_bind().dialect.name == "postgresql"
        statement, parameters = captured_pick(app, session)
        raw = session.connection().connection.driver_connection
        explain = "EXPLAIN (ANALYZE, BUFFERS) " if postgresql else "EXPLAIN QUERY PLAN "
        rows = raw.execute(explain + statement, parameters).fetchall()
        result["plan"] = [row[0] if postgresql else " | ".join(str(c) for c in row) for row in rows]
        raw.rollback()
        session.rollback()
        result["sql"] = " ".join(statement.split())
        picks, runs = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            if service._pick_due(datetime.now(UTC), set()) is not None:
                raise SystemExit("a timer is due already: the measure of 'nothing due' is void")
            picks.append(time.perf_counter() - started)
            session.rollback()
        for _ in range(rounds):
            started = time.perf_counter()
            fired = service.fire_due_timers()
            session.commit()
            runs.append(time.perf_counter() - started)
            if fired:
                raise SystemExit("fire_due_timers fired something: the measure of 'nothing due' is void")
        with recorded_statements(app) as statements:
            service.fire_due_timers()
            session.commit()
        result["statements"] = len(statements)
        result["pick"] = picks
        result["run"] = runs
        session.remove()
    return result


# --- 3. The worker -----------------------------------------------------------------------------

def start_worker(url: str, broker: str, workdir: Path, interval: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker, "GUICHET_INSTANCE_DIR": str(workdir),
           "SECRET_KEY": "bench", "TZ": "UTC", "PROCESS_TIMER_SECONDS": str(interval)}
    log = log_path.open("w")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "-B", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench-timers-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen) -> None:
    """Stop the worker and its embedded beat: its own process group, by its id."""
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


RUN_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)[^\]]*\].*Task workers\.tasks\.fire_due_timers\[[^\]]+\] "
                      r"succeeded in ([0-9.]+)s: (\d+)")


def job_runs(log_path: Path) -> list[tuple[str, float, int]]:
    """(when it ended, seconds, timers fired) of each run of the job, from the worker's log."""
    return [(m.group(1), float(m.group(2)), int(m.group(3))) for m in RUN_LINE.finditer(log_path.read_text())]


def wait_for(condition, timeout: float, what: str, worker: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            raise SystemExit(f"the worker stopped (exit {worker.returncode}):\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def make_due(engine, timer_ids: list[int], now: datetime, spread: float) -> dict[int, datetime]:
    """Set the due time of these timers (now, or spread over the next seconds): instance id → due time."""
    from sqlalchemy import bindparam, text

    rows = [{"tid": tid, "due": now + timedelta(seconds=spread * n / max(1, len(timer_ids)))}
            for n, tid in enumerate(timer_ids)]
    with engine.begin() as connection:
        connection.execute(text("UPDATE process_timer SET due_at = :due WHERE id = :tid")
                           .bindparams(bindparam("due", type_=_utc_type())), rows)
        found = connection.execute(text("SELECT instance_id, due_at FROM process_timer WHERE id IN :ids")
                                   .bindparams(bindparam("ids", expanding=True)), {"ids": timer_ids}).all()
    return {instance_id: _aware(due) for instance_id, due in found}


def _utc_type():
    from app.db import UTCDateTime

    return UTCDateTime()


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def fired_since(engine, since_id: int) -> dict[int, list[datetime]]:
    """instance id → created_at of its 'timer' audit entries with an id above since_id."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT object_id, created_at FROM audit_entry WHERE object_type = 'process_instance' "
            "AND action = 'timer' AND id > :since"), {"since": since_id}).all()
    fired: dict[int, list[datetime]] = {}
    for object_id, created_at in rows:
        fired.setdefault(int(object_id), []).append(_aware(created_at))
    return fired


def count_fired(engine, since_id: int) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM audit_entry WHERE object_type = 'process_instance' AND action = 'timer' "
            "AND id > :since"), {"since": since_id}).scalar_one()


def last_audit_id(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        return connection.execute(text("SELECT coalesce(max(id), 0) FROM audit_entry")).scalar_one()


def waiting_timer_ids(engine) -> list[int]:
    from sqlalchemy import text

    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT id FROM process_timer WHERE element_id = 'wait_first' ORDER BY id")).scalars().all()


def check_after(engine, instance_ids: list[int]) -> tuple[int, int]:
    """(instances now waiting on their second timer, timer rows in all) among instance_ids."""
    from sqlalchemy import bindparam, text

    with engine.connect() as connection:
        second = connection.execute(text(
            "SELECT count(*) FROM process_timer WHERE element_id = 'wait_second' AND instance_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)), {"ids": instance_ids}).scalar_one()
        total = connection.execute(text("SELECT count(*) FROM process_timer")).scalar_one()
    return second, total


def flush_broker(broker: str) -> None:
    if broker.startswith("redis"):
        import redis

        redis.Redis.from_url(broker).flushdb()


# --- 4. In process -----------------------------------------------------------------------------

def fire_in_process(app, engine, timer_ids: list[int]) -> tuple[int, float, list[str]]:
    """Make these timers due and fire them with fire_due_timers() here: (fired, seconds, statements)."""
    from app.db import session
    from app.processes import service

    make_due(engine, timer_ids, datetime.now(UTC) - timedelta(seconds=1), 0)
    with app.app_context():
        started = time.perf_counter()
        with recorded_statements(app) as statements:
            fired = service.fire_due_timers()
        seconds = time.perf_counter() - started
        session.remove()
    return fired, seconds, [statement for statement, _seconds in statements]


# --- Report ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help=f"recreated by the benchmark (default {DEFAULT_URL}; 'sqlite': a temporary file)")
    parser.add_argument("--waiting", type=int, default=10000, help="instances waiting on a timer")
    parser.add_argument("--due", type=int, default=500, help="timers made due for the worker")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which their due times spread")
    parser.add_argument("--interval", type=int, default=5, help="PROCESS_TIMER_SECONDS of the worker's beat")
    parser.add_argument("--phase", type=float, default=None,
                        help="seconds after a run of the job at which the timers are made due (default: interval / 2)")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="the worker's broker (emptied first)")
    parser.add_argument("--batch", type=int, default=250, help="instances started per commit (setup)")
    parser.add_argument("--rounds", type=int, default=200, help="measures of the 'nothing due' pick")
    parser.add_argument("--sample", type=int, default=50, help="timers fired in process, statements counted")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the firings")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    from app.db import db
    from bench.fresh import demo_app

    url = None if args.database_url == "sqlite" else args.database_url
    started = time.perf_counter()
    app, url, workdir = demo_app(url, prefix="guichet-bench-timers-", LOGIN_RATE_LIMIT="100000 per minute")
    world = build_world(app, args.waiting)
    contacts = Contacts(world.contact_ids)
    print(f"fresh database and {args.waiting:,} contacts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    setup_seconds = start_instances(app, contacts, args.waiting, args.batch)
    analyze(app)
    with app.app_context():
        engine = db.get_engine()
    backend = engine.dialect.name
    timers = waiting_timer_ids(engine)
    print(f"\nProcess timers on {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"setup: {args.waiting:,} instances of {KEY} through service.start in {setup_seconds:.1f} s "
          f"({args.waiting / setup_seconds:.0f}/s, a commit every {args.batch}); {len(timers):,} waiting timers")

    idle = nothing_due(app, args.rounds)
    print(f"\nnothing due, {len(timers):,} waiting timers ({args.rounds} rounds):")
    print(f"  _pick_due through the session: p50 {percentile(idle['pick'], 50):.2f} ms, "
          f"p95 {percentile(idle['pick'], 95):.2f} ms")
    print(f"  fire_due_timers() finding nothing, with its commit: p50 {percentile(idle['run'], 50):.2f} ms, "
          f"p95 {percentile(idle['run'], 95):.2f} ms, {idle['statements']} SQL statements")
    print(f"  {idle['sql']}")
    for line in idle["plan"]:
        print(f"    {line}")

    rng = random.Random(args.seed)
    drawn = rng.sample(timers, args.due + args.sample)
    chosen, extra = drawn[:args.due], drawn[args.due:]
    flush_broker(args.broker)
    log_path = Path(workdir) / "worker.log"
    worker = start_worker(url, args.broker, Path(workdir), args.interval, log_path)
    try:
        wait_for(lambda: job_runs(log_path), 120, "the worker's first run of the job", worker, log_path)
        since = last_audit_id(engine)
        phase = args.interval / 2 if args.phase is None else args.phase
        time.sleep(phase)  # "now" is this long after a run of the job (half the interval by default)
        due = make_due(engine, chosen, datetime.now(UTC), args.spread)
        made_due_at = time.perf_counter()
        wait_for(lambda: count_fired(engine, since) >= args.due, args.timeout, f"{args.due} firings", worker,
                 log_path)
        waited = time.perf_counter() - made_due_at
        time.sleep(args.interval + 1)  # one more run: nothing must fire twice
    finally:
        stop_worker(worker)
    fired = fired_since(engine, since)
    twice = sum(1 for v in fired.values() if len(v) > 1)
    unexpected = set(fired) - set(due)
    lags = [fired[i][0] - due[i] for i in due if i in fired]
    seconds = [lag.total_seconds() for lag in lags]
    moments = sorted(t for v in fired.values() for t in v)
    span = (moments[-1] - moments[0]).total_seconds() if len(moments) > 1 else float("nan")
    second, total = check_after(engine, list(due))
    runs = [r for r in job_runs(log_path) if r[2]]
    print(f"\nworker with embedded beat, --pool=solo, PROCESS_TIMER_SECONDS={args.interval}: {args.due} of "
          f"{len(timers):,} timers made due{' now' if not args.spread else f' over {args.spread:g} s'}; "
          f"{phase:.1f} s after a run of the job ended; all fired {waited:.1f} s later")
    print(f"  lag (audit entry − due time): p50 {percentile(seconds, 50) / 1000:.2f} s, "
          f"p95 {percentile(seconds, 95) / 1000:.2f} s, max {max(seconds):.2f} s, min {min(seconds):.2f} s")
    print(f"  throughput: {len(moments)} timers in {span:.2f} s from first to last firing = "
          f"{len(moments) / span:.0f} timers/s ({span / len(moments) * 1000:.1f} ms per timer)")
    print("  runs of the job that fired something: " + "; ".join(f"{n} in {s:.2f} s" for _w, s, n in runs)
          + (f" — {sum(n for *_r, n in runs) / sum(s for _w, s, _n in runs):.0f} timers/s while running"
             if runs else ""))
    print(f"  checks: fired {len(fired)} of {len(due)}, twice {twice}, not made due {len(unexpected)}; "
          f"{second} now wait on their second timer; {total:,} timer rows in all")
    if twice or unexpected or len(fired) != len(due) or second != len(due):
        raise SystemExit("the firings are not what they should be (see the checks above)")

    count, spent, statements = fire_in_process(app, engine, extra)
    print(f"\nin process: fire_due_timers() fired {count} due timers in {spent:.2f} s "
          f"({count / spent:.0f}/s, {spent / count * 1000:.1f} ms each), {len(statements)} SQL statements "
          f"({(len(statements) - 1) / count:.1f} per timer, the last pick aside):")
    from collections import Counter

    from bench.contact_save import label_of

    labels = Counter(label_of(statement) for statement in statements)
    print("  per timer: " + ", ".join(f"{label} ×{n / count:.2g}" for label, n in labels.items()))
    print(f"worker log: {log_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

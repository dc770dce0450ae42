"""Benchmark of a process step, from bare SpiffWorkflow to the task page's POST, on the same diagrams.

Run: ``.venv/bin/python bench/process_steps.py [--database-url URL] [--instances 2000] [--db-instances 300]
[--tasks 300] [--profile N]``
(``--database-url sqlite`` for a temporary SQLite file; the default is PostgreSQL at 127.0.0.1,
database ``guichet_bench_proc_steps``, dropped and created afresh, migrated, with the demo agents and
the shipped processes deployed).

On ``information_request`` (start → user task "answer" → end) and ``move_in`` (three user tasks in
a row), in one run, after a warm-up each:

1. **raw**: SpiffWorkflow alone, in memory. The diagram is parsed once (``BpmnParser``, which the
   default serializer config knows), then per instance: ``BpmnWorkflow`` → ``do_engine_steps`` →
   serialize (``BpmnWorkflowSerializer()``, default config, the spec included) and, per user task,
   deserialize → complete the ready user task → ``do_engine_steps`` → serialize. The floor.
2. **engine**: ``app.processes.engine.Run`` without a database, doing what the service does around
   the library: ``Run.start`` + ``advance`` + ``snapshot`` + ``dump``, then per user task ``Run.load``
   + ``complete`` + ``snapshot`` + ``dump`` (the state without the spec, the spec cached).
3. **service**: ``app.processes.service.start`` then ``complete_task`` for each user task, one
   commit each, on the database: instances/s and SQL statements per instance (a
   ``before_cursor_execute`` listener; the agent and the task id are read outside the count).
4. **http** (information_request): ``POST /taches/<id>`` (``action=complete``, ``f-answer``,
   ``f-satisfied``) through Flask's test client, logged in as the agent holding the task, over
   ``--tasks`` tasks: p50 / p95 of the POST (the 303 included), against the raw step of (1)
   (deserialize + complete + engine steps + serialize). Then ``--sample`` more posts whose
   statements are listed with their time on the driver, and ``--sample`` more timed function by
   function (the view's service calls, the engine's, the commit: wrapped in memory for the run,
   the application's code is not changed). ``--profile N`` adds cProfile's view of N more posts.
5. **size**: ``process_instance.state`` (bytes, gzip bytes, and on PostgreSQL ``pg_column_size``,
   what TOAST stores) against the full serialization (spec included, SpiffWorkflow's own Spiff
   config) of the same workflow, waiting on its first task and completed.

The agent is ``bench.process`` (roles accueil and back office, agency AG-LYON), created by the
benchmark; each instance runs on its own contact (type RENSEIGNEMENT) of a Lyon customer, inserted
in bulk beforehand (setup, not measured).
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from bench.common import csrf_token, logged_in_test_client, percentile, recorded_statements  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/guichet_bench_proc_steps"
AGENT_LOGIN = "bench.process"
BPMN = ROOT / "bpmn"

# The answers of each user task, in order (what the forms accept, already typed).
ANSWERS = {
    "information_request": [{"answer": "Le relevé de mars était une estimation ; index réel transmis.",
                             "satisfied": True}],
    "move_in": [{"identity_checked": True, "move_in_on": "2026-04-01", "email": "helene@example.fr"},
                {"index_value": 5230, "source": "client"},
                {"offer": "Eau domestique", "payment_method": "prelevement", "iban": "FR7630006000011234567890189"}],
}
# The start data a contact gives (app.processes.service._context), with plausible values.
CONTEXT = {"context": {"dossier_id": None, "dossier_reference": None, "contact_id": 123456, "party_id": 4567,
                       "party_number": "BENCH0004567", "party_name": "Hélène Lefèvre", "contract_id": None,
                       "contract_number": None, "agent_id": 6, "agent_name": "Banc d'essai Processus"}}
# What the task page posts for information_request's "answer".
POSTED = {"action": "complete", "f-answer": ANSWERS["information_request"][0]["answer"], "f-satisfied": "true"}


@dataclass
class Timings:
    """Seconds per instance, and per phase (phase name → list of seconds)."""
    instances: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.phases.setdefault(phase, []).append(seconds)

    def rate(self) -> float:
        return len(self.instances) / sum(self.instances)

    def ms(self, phase: str) -> float:
        return statistics.median(self.phases[phase]) * 1000


class Clock:
    """Adds the time of each ``with clock("phase"):`` block to timings (when recording)."""

    def __init__(self, timings: Timings) -> None:
        self.timings, self.recording, self.phase = timings, False, ""

    def __call__(self, phase: str) -> Clock:
        self.phase = phase
        return self

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self.recording:
            self.timings.add(self.phase, time.perf_counter() - self.started)


def files_of(key: str) -> dict[str, str]:
    from app.processes.definitions import read_folder

    return read_folder(BPMN / key)


# --- 1. Raw SpiffWorkflow ----------------------------------------------------------------------

def raw_parse(key: str):
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser

    parser = BpmnParser()
    parser.add_bpmn_str(files_of(key)[f"{key}.bpmn"].encode("utf-8"), filename=f"{key}.bpmn")
    return parser.get_spec(key), parser.get_subprocess_specs(key)


def raw_instance(spec, subprocess_specs, serializer, answers: list[dict], clock: Clock) -> list[str]:
    """One instance through every user task, serialized at each wait; the serializations."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    with clock("start: create + engine steps"):
        workflow = BpmnWorkflow(spec, subprocess_specs)
        workflow.data.update(CONTEXT)
        workflow.task_tree.data.update(CONTEXT)
        workflow.do_engine_steps()
    with clock("start: serialize"):
        state = serializer.serialize_json(workflow)
    states = [state]
    for answer in answers:
        with clock("step: deserialize"):
            workflow = serializer.deserialize_json(state)
        with clock("step: complete + engine steps"):
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            task.data.update(answer)
            task.run()
            workflow.do_engine_steps()
        with clock("step: serialize"):
            state = serializer.serialize_json(workflow)
        states.append(state)
    if not workflow.completed:
        raise SystemExit("raw: the workflow did not complete")
    return states


def bench_raw(key: str, instances: int, warmup: int) -> tuple[Timings, list[str]]:
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

    spec, subprocess_specs = raw_parse(key)
    serializer = BpmnWorkflowSerializer()
    timings = Timings()
    clock = Clock(timings)
    states: list[str] = []
    for number in range(warmup + instances):
        clock.recording = number >= warmup
        started = time.perf_counter()
        states = raw_instance(spec, subprocess_specs, serializer, ANSWERS[key], clock)
        if clock.recording:
            timings.instances.append(time.perf_counter() - started)
    return timings, states


def step_seconds(timings: Timings, prefix: str = "step: ") -> list[float]:
    """Per user-task step, the sum of its phases (they were recorded in the same order)."""
    phases = [p for name, p in timings.phases.items() if name.startswith(prefix)]
    return [sum(parts) for parts in zip(*phases, strict=True)]


# --- 2. Our engine without the database --------------------------------------------------------

def definition_of(key: str):
    """What Run needs of a deployed version: key, files, content hash."""
    from app.processes.definitions import content_hash

    files = files_of(key)
    return SimpleNamespace(key=key, files=files, content_hash=content_hash(files))


def bench_engine(key: str, instances: int, warmup: int) -> tuple[Timings, list[str]]:
    from app.processes.engine import Run

    definition = definition_of(key)
    timings = Timings()
    clock = Clock(timings)
    states: list[str] = []
    for number in range(warmup + instances):
        clock.recording = number >= warmup
        started = time.perf_counter()
        with clock("start: Run.start + advance"):
            run = Run.start(definition, CONTEXT)
            run.advance()
        with clock("start: snapshot"):
            snapshot = run.snapshot()
        with clock("start: dump"):
            state = run.dump()
        states = [state]
        for answer in ANSWERS[key]:
            with clock("step: load"):
                run = Run.load(definition, state)
            with clock("step: complete"):
                run.complete(snapshot.ready[0].uuid, answer)
            with clock("step: snapshot"):
                snapshot = run.snapshot()
            with clock("step: dump"):
                state = run.dump()
            states.append(state)
        if not snapshot.completed:
            raise SystemExit("engine: the workflow did not complete")
        if clock.recording:
            timings.instances.append(time.perf_counter() - started)
    return timings, states


# --- The database ------------------------------------------------------------------------------

@dataclass(frozen=True)
class World:
    agent_id: int
    contact_ids: list[int]


def build_world(app, contacts: int) -> World:
    """The bench agent, customers of Lyon and contacts for them (one process each), in bulk."""
    from sqlalchemy import insert, select

    from app.audit.context import set_actor
    from app.contacts.models import Contact, ContactAgent, ContactParty, ContactType
    from app.db import session
    from app.parties.models import Party
    from app.processes import definitions
    from app.security import service as security
    from app.security.models import Agent, Territory
    from app.seed.demo import DEMO_PASSWORD

    with app.app_context():
        set_actor(actor_id=None, actor_label="bench")
        definitions.deploy_directory(BPMN)
        agent = session.execute(select(Agent).where(Agent.login == AGENT_LOGIN)).scalar_one_or_none()
        if agent is None:
            agent = security.create_agent(login=AGENT_LOGIN, full_name="Banc d'essai Processus",
                                          password=DEMO_PASSWORD, role_codes=["accueil", "back_office"],
                                          territory_codes=["AG-LYON"])
        lyon = session.execute(select(Territory).where(Territory.code == "69123")).scalar_one()
        parties = [Party(number=f"BPROC{n:07d}", kind="person", first_name="Hélène", last_name=f"Processus {n}",
                         status="customer", territory_id=lyon.id, city="Lyon", postal_code="69002",
                         street=f"{n + 1} rue de la République", insee_code="69123")
                   for n in range(max(1, contacts // 50))]
        session.add_all(parties)
        session.flush()
        type_id = session.execute(select(ContactType.id).where(ContactType.code == "RENSEIGNEMENT")).scalar_one()
        now = datetime.now(UTC)
        rows = [{"contact_type_id": type_id, "channel": "phone", "direction": "in",
                 "subject": f"Question (bench {n})", "occurred_at": now, "created_by_id": agent.id,
                 "created_at": now} for n in range(contacts)]
        ids: list[int] = []
        for chunk in range(0, contacts, 2000):
            ids += session.execute(insert(Contact).returning(Contact.id), rows[chunk:chunk + 2000]).scalars().all()
        session.execute(insert(ContactParty), [{"contact_id": cid, "party_id": parties[n % len(parties)].id,
                                                "role": "customer", "origin": "default"}
                                               for n, cid in enumerate(ids)])
        session.execute(insert(ContactAgent), [{"contact_id": cid, "agent_id": agent.id, "role": "emitter",
                                                "origin": "default"} for cid in ids])
        session.commit()
        world = World(agent.id, ids)
        session.remove()
    return world


class Contacts:
    """Hands out the pre-made contacts, one per process instance."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = list(reversed(ids))

    def next(self) -> int:
        if not self.ids:
            raise SystemExit("out of contacts: raise the count built at the start")
        return self.ids.pop()


def ready_task_id(instance_id: int) -> int:
    from sqlalchemy import select

    from app.db import session
    from app.processes.models import ProcessTask, TaskStatus

    return session.execute(select(ProcessTask.id).where(ProcessTask.instance_id == instance_id,
                                                        ProcessTask.status == TaskStatus.READY)
                           .order_by(ProcessTask.id).limit(1)).scalar_one()


# --- 3. The service on the database ------------------------------------------------------------

@dataclass
class ServiceResult:
    timings: Timings
    start_statements: list[int]
    step_statements: list[int]


def bench_service(app, world: World, contacts: Contacts, key: str, instances: int, warmup: int) -> ServiceResult:
    from app.audit.context import set_actor
    from app.contacts.models import Contact
    from app.db import session
    from app.processes import service
    from app.processes.models import ProcessInstance
    from app.security.models import Agent

    timings = Timings()
    start_counts, step_counts = [], []

    def timed(phase: str, fn, counts: list[int], recording: bool):
        """fn() then the commit, timed apart; the statements of both counted."""
        with recorded_statements(app) as statements:
            started = time.perf_counter()
            result = fn()
            middle = time.perf_counter()
            session.commit()
            ended = time.perf_counter()
        if recording:
            timings.add(phase, middle - started)
            timings.add("commit", ended - middle)
            counts.append(len(statements))
        return result, ended - started

    with app.app_context():
        agent = session.get(Agent, world.agent_id)
        set_actor(actor_id=agent.id, actor_label=agent.login)
        for number in range(warmup + instances):
            recording = number >= warmup
            contact = session.get(Contact, contacts.next())  # read outside the count, as a request has it
            instance, total = timed("start", lambda c=contact, g=agent: service.start(key=key, agent=g, contact=c),
                                    start_counts, recording)
            instance_id = instance.id
            for answers in ANSWERS[key]:
                task_id = ready_task_id(instance_id)
                _task, seconds = timed("complete_task", lambda t=task_id, a=answers, g=agent: service.complete_task(
                    agent=g, task_id=t, answers=dict(a)), step_counts, recording)
                total += seconds
            if session.get(ProcessInstance, instance_id).status != "completed":
                raise SystemExit(f"service: instance {instance_id} did not complete")
            if recording:
                timings.instances.append(total)
            session.expunge_all()  # a request starts with an empty session
            agent = session.get(Agent, world.agent_id)
        session.remove()
    return ServiceResult(timings, start_counts, step_counts)


# --- 4. The task page's POST -------------------------------------------------------------------

@dataclass
class HttpResult:
    times: list[float]
    statements: list[list[tuple[str, float]]]  # of each counted post: (statement, seconds on the driver)
    breakdown: list[dict[str, float]]  # of each timed-apart post: part → seconds


def started_tasks(app, world: World, contacts: Contacts, count: int) -> list[int]:
    """count information_request instances started by the bench agent: their first task's id."""
    from app.audit.context import set_actor
    from app.contacts.models import Contact
    from app.db import session
    from app.processes import service
    from app.security.models import Agent

    task_ids = []
    with app.app_context():
        agent = session.get(Agent, world.agent_id)
        set_actor(actor_id=agent.id, actor_label=agent.login)
        for _ in range(count):
            instance = service.start(key="information_request", agent=agent,
                                     contact=session.get(Contact, contacts.next()))
            session.commit()
            task_ids.append(ready_task_id(instance.id))
        session.remove()
    return task_ids


def breakdown_targets() -> list[tuple[str, object, str]]:
    """(label, owner, attribute) of the functions a POST is split into; indented labels run inside
    the one above. The application's code is left as it is: these wrap it in memory, for the run."""
    from sqlalchemy.orm import Session

    from app.audit import service as audit
    from app.processes import engine, forms, service, views
    from app.security import sessions

    return [
        ("session check (resume_session)", sessions, "resume_session"),
        ("service.get_task (the view; the service reuses it)", service, "get_task"),
        ("forms.parse", forms, "parse"),
        ("service.complete_task", service, "complete_task"),
        ("  _workable (get_task, lock, refresh)", service, "_workable"),
        ("  forms.validate", forms, "validate"),
        ("  _step", service, "_step"),
        ("    Run.load", engine.Run, "load"),
        ("    Run.complete", engine.Run, "complete"),
        ("    Run.snapshot", engine.Run, "snapshot"),
        ("    Run.dump", engine.Run, "dump"),
        ("    _sync_tasks (the inbox)", service, "_sync_tasks"),
        ("    _sync_timers", service, "_sync_timers"),
        ("  audit.record", audit, "record"),
        ("Session.commit", Session, "commit"),
        ("_first_task_url", views, "_first_task_url"),
    ]


class Breakdown:
    """Wraps the targets while installed; parts holds the seconds of each during one POST."""

    def __init__(self) -> None:
        self.targets = breakdown_targets()
        self.parts: dict[str, float] = {}
        self.saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Breakdown:
        for label, owner, name in self.targets:
            original = owner.__dict__[name]
            self.saved.append((owner, name, original))
            setattr(owner, name, self._wrap(label, original))
        return self

    def _wrap(self, label: str, original):
        parts = self.parts
        is_classmethod = isinstance(original, classmethod)
        function = original.__func__ if is_classmethod else original

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + time.perf_counter() - started

        return classmethod(wrapper) if is_classmethod else wrapper

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


def bench_http(app, world: World, contacts: Contacts, args) -> HttpResult:
    """POST /taches/<id> for warmup + tasks tasks (times of the last tasks); then sample more posts
    whose statements are counted, more timed apart function by function, more under cProfile."""
    tasks, warmup, sample, profile = args.tasks, args.warmup, args.sample, args.profile
    task_ids = started_tasks(app, world, contacts, warmup + tasks + 2 * sample + profile)
    client = logged_in_test_client(app, AGENT_LOGIN)
    page = client.get(f"/taches/{task_ids[0]}")
    if page.status_code != 200:
        raise SystemExit(f"GET /taches/{task_ids[0]}: {page.status_code}")
    token = csrf_token(page.get_data(as_text=True))

    def post(task_id: int) -> float:
        started = time.perf_counter()
        response = client.post(f"/taches/{task_id}", data={**POSTED, "csrf_token": token})
        seconds = time.perf_counter() - started
        if response.status_code != 303:
            raise SystemExit(f"POST /taches/{task_id}: {response.status_code} "
                             f"{response.get_data(as_text=True)[:300]}")
        # The browser follows the redirect, whose page shows (and so drops) the flashed message; the
        # test client does not: drop it here, or the session cookie grows with every POST.
        with client.session_transaction() as cookie:
            cookie.pop("_flashes", None)
        return seconds

    queue = iter(task_ids)
    times = [post(next(queue)) for _ in range(warmup + tasks)][warmup:]
    counts = []
    for _ in range(sample):
        with recorded_statements(app) as statements:
            post(next(queue))
        counts.append(list(statements))
    parts = []
    with Breakdown() as breakdown:
        for _ in range(sample):
            breakdown.parts.clear()
            total = post(next(queue))
            parts.append({"POST (whole)": total, **breakdown.parts})
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for task_id in queue:
            post(task_id)
        profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"\ncProfile of {profile} POST /taches/<id> in process (cumulative, top 45):")
        stats.sort_stats("cumulative").print_stats(45)
        print("cProfile of the same posts (own time, top 25):")
        stats.sort_stats("tottime").print_stats(25)
    return HttpResult(times, counts, parts)


def print_breakdown(parts: list[dict[str, float]]) -> None:
    labels = ["POST (whole)"] + [label for label, _o, _n in breakdown_targets()]
    print(f"  where a POST's time goes ({len(parts)} posts, functions wrapped in memory), median ms:")
    for label in labels:
        values = [p.get(label, 0.0) for p in parts]
        print(f"    {label:46} {statistics.median(values) * 1000:7.2f}")


def print_post_statements(posts: list[list[tuple[str, float]]]) -> None:
    """How many statements a POST sends, and each with its median time on the driver."""
    from bench.contact_save import label_of

    counts = [len(p) for p in posts]
    usual = statistics.mode(counts)
    same = [p for p in posts if len(p) == usual]
    driver = statistics.median(sum(t for _s, t in p) for p in posts) * 1000
    print(f"  SQL statements per POST (in process, {len(posts)} posts): median {statistics.median(counts):g}, "
          f"min {min(counts)}, max {max(counts)}; on the driver {driver:.2f} ms (median). Each, median ms:")
    cells = [f"{label_of(same[0][i][0])} {statistics.median(p[i][1] for p in same) * 1000:.2f}"
             for i in range(usual)]
    for row in range(0, len(cells), 4):
        print("   " + " | ".join(f"{n + 1 + row}. {c}" for n, c in enumerate(cells[row:row + 4])))


# --- 5. Sizes ----------------------------------------------------------------------------------

def full_serializer():
    """SpiffWorkflow's own serializer for Spiff-parsed workflows: the spec included."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


def sizes(app, world: World, contacts: Contacts, key: str, raw_states: list[str]) -> list[tuple]:
    """One more instance through the service: its stored state waiting on its first task and completed,
    each as (moment, stored bytes, gzip, pg_column_size, full bytes, gzip, raw default-config bytes, gzip)."""
    from sqlalchemy import text

    from app.audit.context import set_actor
    from app.contacts.models import Contact
    from app.db import session
    from app.processes import service
    from app.processes.engine import Run
    from app.processes.models import ProcessInstance
    from app.security.models import Agent

    definition = definition_of(key)
    serializer = full_serializer()
    measured = []
    with app.app_context():
        agent = session.get(Agent, world.agent_id)
        set_actor(actor_id=agent.id, actor_label=agent.login)
        postgresql = session.get_bind().dialect.name == "postgresql"

        def stored(instance_id: int) -> tuple[str, int | None]:
            state = session.get(ProcessInstance, instance_id).state
            toast = session.execute(text("SELECT pg_column_size(state) FROM process_instance WHERE id = :id"),
                                    {"id": instance_id}).scalar_one() if postgresql else None
            return state, toast

        instance = service.start(key=key, agent=agent, contact=session.get(Contact, contacts.next()))
        session.commit()
        measured.append(("waiting", *stored(instance.id), raw_states[0]))
        for answers in ANSWERS[key]:
            service.complete_task(agent=agent, task_id=ready_task_id(instance.id), answers=dict(answers))
            session.commit()
        measured.append(("completed", *stored(instance.id), raw_states[-1]))
        session.remove()
    rows = []
    for moment, state, toast, raw in measured:
        full = serializer.serialize_json(Run.load(definition, state).workflow)
        rows.append((moment, len(state.encode()), len(gzip.compress(state.encode())), toast, len(full.encode()),
                     len(gzip.compress(full.encode())), len(raw.encode()), len(gzip.compress(raw.encode()))))
    return rows


# --- Report ------------------------------------------------------------------------------------

def print_phases(name: str, timings: Timings) -> None:
    parts = ", ".join(f"{phase} {timings.ms(phase):.3f}" for phase in timings.phases)
    print(f"    {name:8} median ms: {parts}")


def start_ms(timings: Timings) -> float:
    return sum(timings.ms(p) for p in timings.phases if p.startswith("start"))


def statements_cell(served: ServiceResult, steps: int) -> str:
    start, step = statistics.median(served.start_statements), statistics.median(served.step_statements)
    return f"{start + steps * step:g} ({start:g} + {steps}×{step:g})"


def run_all(args, app, world: World, contacts: Contacts, backend: str) -> None:
    results = {}
    for key in ("information_request", "move_in"):
        raw, raw_states = bench_raw(key, args.instances, args.warmup)
        engine, _engine_states = bench_engine(key, args.instances, args.warmup)
        served = bench_service(app, world, contacts, key, args.db_instances, args.warmup)
        results[key] = (raw, raw_states, engine, served)

    print(f"\nProcess steps on {backend} — {args.instances} instances in memory, {args.db_instances} on the "
          f"database, after {args.warmup} of warm-up ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(f"  {'':40} {'information_request (1 task)':>30} {'move_in (3 tasks)':>22}")
    rows: list[tuple[str, Callable]] = [
        ("1 raw SpiffWorkflow, inst/s", lambda r: f"{r[0].rate():,.0f}"),
        ("  raw start (create+run+ser) ms", lambda r: f"{start_ms(r[0]):.3f}"),
        ("  raw step (deser+run+ser) p50 ms", lambda r: f"{statistics.median(step_seconds(r[0])) * 1000:.3f}"),
        ("2 engine (Run, no DB), inst/s", lambda r: f"{r[2].rate():,.0f}"),
        ("  engine start ms", lambda r: f"{start_ms(r[2]):.3f}"),
        ("  engine step p50 ms", lambda r: f"{statistics.median(step_seconds(r[2])) * 1000:.3f}"),
        ("3 service + DB, inst/s", lambda r: f"{r[3].timings.rate():,.1f}"),
        ("  start p50 ms (without commit)", lambda r: f"{r[3].timings.ms('start'):.2f}"),
        ("  complete_task p50 ms (without commit)", lambda r: f"{r[3].timings.ms('complete_task'):.2f}"),
        ("  commit p50 ms", lambda r: f"{r[3].timings.ms('commit'):.2f}"),
        ("  SQL statements / instance", lambda r: statements_cell(r[3], len(ANSWERS[r[4]]))),
    ]
    for label, cell in rows:
        values = [cell((*results[key], key)) for key in ("information_request", "move_in")]
        print(f"  {label:40} {values[0]:>30} {values[1]:>22}")
    print("  phases (median ms per call):")
    for key in ("information_request", "move_in"):
        raw, _raw_states, engine, served = results[key]
        print(f"   {key}")
        print_phases("raw", raw)
        print_phases("engine", engine)
        print_phases("service", served.timings)

    http = bench_http(app, world, contacts, args)
    raw_steps = step_seconds(results["information_request"][0])
    raw_p50, raw_p95 = percentile(raw_steps, 50), percentile(raw_steps, 95)
    http_p50, http_p95 = percentile(http.times, 50), percentile(http.times, 95)
    print(f"\n4 POST /taches/<id> (complete, Flask test client), {len(http.times)} tasks after {args.warmup} "
          "of warm-up:")
    print(f"  {'':40} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"  {'POST (load, lock, step, save, inbox, 303)':40} {http_p50:8.2f} {http_p95:8.2f}")
    print(f"  {'raw step (deser + complete + ser)':40} {raw_p50:8.3f} {raw_p95:8.3f}")
    print(f"  ratio our step / raw step: p50 {http_p50 / raw_p50:.1f}×, p95 {http_p95 / raw_p95:.1f}× (goal ≤ 3×)")
    print_post_statements(http.statements)
    print_breakdown(http.breakdown)

    print("\n5 state size per instance, bytes (gzip):")
    print(f"  {'':28} {'stored (no spec)':>18} {'pg_column_size':>15} {'full, Spiff config':>20} "
          f"{'raw, default config':>20} {'stored / full':>14}")
    for key in ("information_request", "move_in"):
        for moment, stored, stored_gz, toast, full, full_gz, raw_size, raw_gz in sizes(
                app, world, contacts, key, results[key][1]):
            print(f"  {key + ', ' + moment:28} {f'{stored:,} ({stored_gz:,})':>18} "
                  f"{toast if toast is not None else '':>15} {f'{full:,} ({full_gz:,})':>20} "
                  f"{f'{raw_size:,} ({raw_gz:,})':>20} {stored / full:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help=f"recreated by the benchmark (default {DEFAULT_URL}; 'sqlite': a temporary file)")
    parser.add_argument("--instances", type=int, default=2000, help="instances in memory (raw, engine)")
    parser.add_argument("--db-instances", type=int, default=300, help="instances through the service")
    parser.add_argument("--tasks", type=int, default=300, help="tasks completed through HTTP (≥ 200)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--sample", type=int, default=20, help="posts whose SQL statements are counted")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N posts with cProfile and print the top functions")
    args = parser.parse_args()

    from bench.fresh import demo_app

    url = None if args.database_url == "sqlite" else args.database_url
    started = time.perf_counter()
    app, url, _workdir = demo_app(url, prefix="guichet-bench-proc-", LOGIN_RATE_LIMIT="100000 per minute")
    needed = 2 * (args.warmup + args.db_instances) + args.warmup + args.tasks + 2 * args.sample + args.profile + 3
    world = build_world(app, needed)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{backend}: fresh database, {needed:,} contacts, in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    run_all(args, app, world, Contacts(world.contact_ids), backend)


if __name__ == "__main__":
    main()

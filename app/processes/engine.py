"""The one module that imports SpiffWorkflow: checking a process folder, then running its instances.

A process folder (bpmn/<key>/) holds ``<key>.bpmn`` (its process id is the key), the JSON Schema
forms its user tasks name (``formJsonSchemaFilename``, ``formUiSchemaFilename``) and optional DMN
files. ``check`` refuses, naming the element: an unparseable diagram, a form file missing or not a
valid JSON Schema, a service task naming an operation the engine does not offer, a timer whose
expression does not evaluate to an ISO 8601 date, duration or cycle, a script that does not compile.

``Run`` wraps one instance's workflow: started from a deployed version's files with plain start
data, or loaded from its saved state. The state is dumped without the spec (the spec is parsed
once per version and cached); the caller stores it, under the instance's row lock. ``snapshot``
tells the caller what the instance now waits for: the ready user tasks (with their lane, form and
instructions), the timers with their due time, a failed step.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

# The operations service tasks may name. Their implementations come with the documents, mails and
# information-system issues; naming anything else is refused at deployment, not at run time.
OPERATIONS = ("generate_document", "send_mail", "create_affaire", "update_party_field", "notify_agent",
              "dunning_level", "close_dossier", "record_payment_plan")
FORM_GUARDS = ("dunning_cut_off",)  # rules a form may name with "x-guard" (see FormGuard)


@dataclass(frozen=True)
class Problem:
    """One reason a process cannot be deployed, on its element when it has one (the designer marks it)."""
    element_id: str | None
    message: str


class ProcessError(ValueError):
    """A process that cannot be deployed: the message names the file and the element; ``problems``
    lists every reason found, each on its element."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or [Problem(None, message)]


@dataclass(frozen=True)
class Parsed:
    key: str
    name: str
    files: dict[str, str]  # file name → text: the diagram, its forms, its DMN
    user_tasks: list[str]
    spec: object = field(default=None, repr=False, compare=False)  # SpiffWorkflow's process spec
    subprocess_specs: dict = field(default_factory=dict, repr=False, compare=False)


def _element(task_spec) -> str:
    name = getattr(task_spec, "bpmn_name", None)
    return f"« {name} » ({task_spec.bpmn_id})" if name else str(task_spec.bpmn_id)


def _check_form(files: dict[str, str], task_spec, filename: str, *, schema: bool) -> None:
    if filename not in files:
        raise ProcessError(f"{_element(task_spec)} : le formulaire {filename} est introuvable dans le dossier.")
    try:
        document = json.loads(files[filename])
    except json.JSONDecodeError as exc:
        raise ProcessError(f"{_element(task_spec)} : {filename} n'est pas du JSON valide "
                           f"(ligne {exc.lineno}, colonne {exc.colno}).") from None
    if not isinstance(document, dict):
        raise ProcessError(f"{_element(task_spec)} : {filename} doit contenir un objet JSON.")
    if schema:
        try:
            Draft202012Validator.check_schema(document)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "racine"
            raise ProcessError(f"{_element(task_spec)} : {filename} n'est pas un JSON Schema valide "
                               f"({where} : {exc.message}).") from None
        guard = document.get("x-guard")
        if guard is not None and guard not in FORM_GUARDS:
            raise ProcessError(f"{_element(task_spec)} : {filename} nomme une règle « x-guard » inconnue "
                               f"({guard} ; possibles : {', '.join(FORM_GUARDS)}).")


# "P15D" or "R3/PT1H" written without quotes reads as a name: the usual slip, refused at deployment.
ISO_WITHOUT_QUOTES = re.compile(r"(P|PT|R\d*)[0-9A-Z_]*")


def _check_timer(task_spec) -> None:
    definition = getattr(task_spec, "event_definition", None)
    if not isinstance(definition, TimerEventDefinition):
        return
    expression = definition.expression
    try:
        code = compile(expression, "<timer>", "eval")
        if code.co_names and not ISO_WITHOUT_QUOTES.fullmatch(expression.strip()):
            return  # reads the process's data (a wait the procedure sets): its value is checked as it runs
        value = eval(code, {"__builtins__": {}}, {})  # noqa: S307 (no names)
        if isinstance(definition, CycleTimerEventDefinition):
            TimerEventDefinition.parse_iso_recurring_interval(value)
        elif isinstance(definition, DurationTimerEventDefinition):
            TimerEventDefinition.parse_iso_duration(value) if str(value).startswith("P") else \
                TimerEventDefinition.get_datetime(value)
        else:
            TimerEventDefinition.get_datetime(value)
    except Exception as exc:  # noqa: BLE001 (any failure is the same refusal, with its cause)
        raise ProcessError(f"{_element(task_spec)} : le minuteur « {expression} » ne donne pas une date, une "
                           f"durée ou un cycle ISO 8601 (écrivez par exemple \"P15D\", entre guillemets) : "
                           f"{exc}") from None


def _check_script(task_spec, label: str, script: str | None) -> None:
    if not script:
        return
    try:
        compile(script, f"<{task_spec.bpmn_id}>", "exec")
    except SyntaxError as exc:
        raise ProcessError(f"{_element(task_spec)} : le {label} ne compile pas (ligne {exc.lineno} : "
                           f"{exc.msg}).") from None


def _check_element(files: dict[str, str], task_spec) -> None:
    kind = type(task_spec).__name__
    extensions = getattr(task_spec, "extensions", None) or {}
    properties = extensions.get("properties", {})
    if kind == "UserTask":
        form = properties.get("formJsonSchemaFilename")
        if not form:
            raise ProcessError(f"{_element(task_spec)} : une tâche utilisateur nomme son formulaire "
                               "(propriété formJsonSchemaFilename).")
        _check_form(files, task_spec, form, schema=True)
        if properties.get("formUiSchemaFilename"):
            _check_form(files, task_spec, properties["formUiSchemaFilename"], schema=False)
    if kind == "ServiceTask":
        operation = getattr(task_spec, "operation_name", None)
        if operation not in OPERATIONS:
            raise ProcessError(f"{_element(task_spec)} : opération inconnue « {operation} » "
                               f"(possibles : {', '.join(OPERATIONS)}).")
    if kind == "ScriptTask":
        _check_script(task_spec, "script", getattr(task_spec, "script", None))
    _check_script(task_spec, "pré-script", extensions.get("preScript"))
    _check_script(task_spec, "post-script", extensions.get("postScript"))
    _check_timer(task_spec)


def check(key: str, files: dict[str, str]) -> Parsed:
    """Parse and check the process of a folder's files; ProcessError says what to fix, every
    element's problem at once (``problems``), its message joining them."""
    from app.processes import bpmn_import  # it names the operations: imported here, not at the top

    diagram = f"{key}.bpmn"
    if diagram not in files:
        raise ProcessError(f"{key} : le diagramme {diagram} est introuvable.")
    try:  # what the engine would only find out when an instance reaches it
        has_dmn = any(name.endswith(".dmn") for name in files)  # a business rule task with its table runs
        problems = [Problem(f.element_id, f.message) for f in bpmn_import.analyse(files[diagram])
                    if f.blocking and not (has_dmn and f.kind == "businessRuleTask")]
    except bpmn_import.PortabilityError as exc:
        raise ProcessError(f"{diagram} : {exc}") from None
    try:
        spec, subprocess_specs = _parse(key, files)
    except ProcessError as exc:
        if problems:  # the parser stops at its first complaint: give ours, which name every element
            raise ProcessError("\n".join(p.message for p in problems + exc.problems),
                               problems + exc.problems) from None
        raise
    user_tasks = []
    specs = list(spec.task_specs.values())
    for sub in subprocess_specs.values():
        specs.extend(sub.task_specs.values())
    for task_spec in specs:
        if type(task_spec).__name__ == "UserTask":
            user_tasks.append(task_spec.bpmn_id)
        try:
            _check_element(files, task_spec)
        except ProcessError as exc:
            problems.append(Problem(getattr(task_spec, "bpmn_id", None), str(exc)))
    if problems:
        raise ProcessError("\n".join(p.message for p in problems), problems)
    return Parsed(key=key, name=spec.description or key, files=dict(files), user_tasks=user_tasks, spec=spec,
                  subprocess_specs=subprocess_specs)


def _parse(key: str, files: dict[str, str]):
    diagram = f"{key}.bpmn"
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_str(files[diagram].encode("utf-8"), filename=diagram)
        for name, text in files.items():
            if name.endswith(".dmn"):
                parser.add_dmn_str(text.encode("utf-8"), filename=name)
        return parser.get_spec(key), parser.get_subprocess_specs(key)
    except ValidationException as exc:
        raise ProcessError(f"{diagram} : {exc}", [Problem(getattr(exc, "id", None), f"{diagram} : {exc}")]) from None
    except Exception as exc:  # noqa: BLE001 (lxml and the parser raise many kinds)
        raise ProcessError(f"{diagram} : diagramme illisible ({exc}).") from None


# ---------------------------------------------------------------------------------------------
# Running instances

# What scripts, conditions and service parameters may call: an explicit list (scripts are code;
# only process designers deploy them, and deployments are audited).
SCRIPT_FUNCTIONS = {
    "Decimal": Decimal, "date": date, "datetime": datetime, "timedelta": timedelta,
    "abs": abs, "bool": bool, "dict": dict, "float": float, "int": int, "len": len, "list": list,
    "max": max, "min": min, "round": round, "sorted": sorted, "str": str, "sum": sum,
}
_operations: dict[str, Callable[[dict, dict], object]] = {}


class StepError(Exception):
    """A step that failed while the instance ran: the element and the cause, for supervisors."""

    def __init__(self, element: str, message: str):
        super().__init__(f"{element} : {message}")
        self.element = element
        self.message = message


class TaskNotReady(Exception):
    """The user task is no longer waiting (completed by someone else, or the process moved on)."""


def register_operation(name: str, handler: Callable[[dict, dict], object]) -> None:
    """Give a service-task operation its implementation: handler(task data, parameters) → a JSON
    value stored in the task's result variable. Called under the instance lock, in its transaction."""
    if name not in OPERATIONS:
        raise ValueError(f"opération inconnue : {name}")
    _operations[name] = handler


def operation_available(name: str) -> bool:
    """Whether this server runs the operation (declared in OPERATIONS and registered)."""
    return name in _operations


@dataclass(frozen=True)
class FormGuard:
    """Rules a form's answers must also follow, beyond its JSON Schema: check(task data, answers)
    → {field: message}; explain(task data) → sentences the task page shows before the agent answers.
    A form names its guard with the top-level keyword ``"x-guard"``."""
    check: Callable[[dict, dict], dict[str, str]]
    explain: Callable[[dict], list[str]]


_form_guards: dict[str, FormGuard] = {}


def register_form_guard(name: str, *, check: Callable[[dict, dict], dict[str, str]],
                        explain: Callable[[dict], list[str]]) -> None:
    if name not in FORM_GUARDS:
        raise ValueError(f"règle de formulaire inconnue : {name}")
    _form_guards[name] = FormGuard(check, explain)


def form_guard(schema: dict) -> FormGuard | None:
    """The guard a form's schema names, if any (an unknown name is refused at deployment)."""
    name = schema.get("x-guard") if isinstance(schema, dict) else None
    return _form_guards.get(name) if isinstance(name, str) else None


class _Environment(TaskDataEnvironment):
    def __init__(self):
        super().__init__({"__builtins__": dict(SCRIPT_FUNCTIONS)})

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        handler = _operations.get(operation_name)
        if handler is None:
            raise RuntimeError(f"l'opération « {operation_name} » n'est pas disponible sur ce serveur")
        params = {name: value["value"] for name, value in (operation_params or {}).items()}
        return json.dumps(handler(context, params), default=str)


class _ScriptEngine(PythonScriptEngine):
    def call_service(self, task, **kwargs):
        # The library's own version names the failure "NameError('script')": say what failed.
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as exc:  # noqa: BLE001 (any failure of an operation stops the step)
            raise WorkflowTaskException(f"opération « {kwargs.get('operation_name')} » : {exc}",
                                        task=task, exception=exc) from exc


_script_engine = _ScriptEngine(environment=_Environment())


class _TrialEnvironment(_Environment):
    """A test run's environment: an operation is written in the journal instead of run (no letter,
    no mail, no dossier touched); its result says so."""

    def __init__(self, journal: list, results: dict):
        super().__init__()
        self.journal = journal
        self.results = results

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        params = {name: value["value"] for name, value in (operation_params or {}).items()}
        self.journal.append({"operation": operation_name, "parameters": params})
        simulated = self.results.get(operation_name)
        return json.dumps({**(simulated if isinstance(simulated, dict) else {}), "trial": True,
                           "operation": operation_name}, default=str)


def trial_engine(journal: list, results: dict | None = None):
    """A script engine for a test run: scripts run as in production, operations only go to journal
    and answer the result the analyst simulates for them (results: operation → dict)."""
    return _ScriptEngine(environment=_TrialEnvironment(journal, results or {}))


# The serializer: the workflow's tasks and data, never its spec (stored once per version).
class _InstanceConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        dct["spec"] = None  # the cached spec is given instead
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry():
    registry = BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: _InstanceConverter})
    # Task data holds plain values; these types are kept as themselves across saves.
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]), "Decimal")
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda d: date.fromisoformat(d["value"]), "date")
    return registry


_serializer = BpmnWorkflowSerializer(_registry())


def register_value_type(cls: type, to_dict: Callable[[object], dict], from_dict: Callable[[dict], object]) -> None:
    """Let task data hold one of the project's own value types (a business-object reference…),
    saved as a dict and read back as itself."""
    _serializer.registry.register(cls, to_dict, from_dict, cls.__name__)
# (key, content hash) → (spec, subprocess specs): a deployed version never changes.
_spec_cache: dict[tuple[str, str], tuple] = {}
SPEC_CACHE_SIZE = 256


def _specs(definition) -> tuple:
    """The parsed spec of a deployed version (anything with key, files and content_hash); a
    transient one (a test run's draft) is parsed without entering the cache."""
    if getattr(definition, "transient", False):
        return _parse(definition.key, definition.files)
    cache_key = (definition.key, definition.content_hash)
    cached = _spec_cache.get(cache_key)
    if cached is None:
        if len(_spec_cache) >= SPEC_CACHE_SIZE:
            _spec_cache.clear()
        cached = _spec_cache[cache_key] = _parse(definition.key, definition.files)
    return cached


@dataclass(frozen=True)
class UserTask:
    uuid: str
    element_id: str
    name: str
    lane: str | None
    form: str | None  # the JSON Schema file of its form
    ui_form: str | None
    instructions: str | None
    data: dict  # the data the task sees (to pre-fill its form)


@dataclass(frozen=True)
class Timer:
    uuid: str
    element_id: str
    due_at: datetime  # aware, UTC


@dataclass(frozen=True)
class Snapshot:
    completed: bool
    ready: list[UserTask]
    timers: list[Timer]
    failed: list[str]  # element ids in error
    done: list[str]  # element ids completed, for the diagram
    waiting: list[str]  # element ids waiting (timers, messages)
    messages: list[str]  # message names the instance waits for


def _name(spec) -> str:
    return getattr(spec, "bpmn_name", None) or spec.bpmn_id or spec.name


def _message(exc: Exception) -> str:
    """The cause of a failed step in one line: the library's message and its error, if it adds one."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    cause = exc.__cause__ or getattr(exc, "exception", None)
    if cause is not None and str(cause) not in text:
        text = f"{text} ({type(cause).__name__} : {cause})"
    return text


def _due(value) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _timer_value(task):
    """The due time the engine froze for a waiting timer, or None (not a timer)."""
    definition = task.task_spec.event_definition
    if isinstance(definition, TimerEventDefinition):
        return task.internal_data.get("event_value")
    if isinstance(definition, MultipleEventDefinition):  # an event-based gateway or a multiple event
        values = task.internal_data.get("event_value")
        if isinstance(values, dict):
            return min((v for v in values.values() if _due(v)), default=None, key=_due)
        return values
    return None


def _timer_element(task) -> str:
    """The timer's BPMN id; for an event-based gateway, the timer event among those it waits for."""
    definition = task.task_spec.event_definition
    if isinstance(definition, MultipleEventDefinition):
        # The gateway holds its targets' definitions, in the order of its outgoing events.
        targets = [child.task_spec for child in task.children]
        for position, single in enumerate(definition.event_definitions):
            if isinstance(single, TimerEventDefinition):
                named = [t for t in targets if getattr(t, "bpmn_name", None) == single.name]
                target = named[0] if len(named) == 1 else targets[position] if position < len(targets) else None
                if target is not None and target.bpmn_id:
                    return target.bpmn_id
    return task.task_spec.bpmn_id or task.task_spec.name


class Run:
    """One instance's workflow, started or loaded; step it, then ``dump`` and ``snapshot``."""

    def __init__(self, workflow):
        self.workflow = workflow

    @classmethod
    def start(cls, definition, data: dict, *, script_engine=None) -> Run:
        """A new workflow of this deployed version, holding the start data; ``advance`` runs it."""
        spec, subprocess_specs = _specs(definition)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine or _script_engine)
        workflow.data.update(data)
        workflow.task_tree.data.update(data)
        return cls(workflow)

    @classmethod
    def load(cls, definition, state: str, *, script_engine=None) -> Run:
        spec, subprocess_specs = _specs(definition)
        dct = json.loads(state)
        _serializer.migrate(dct)
        workflow = _serializer.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
        workflow.script_engine = script_engine or _script_engine
        return cls(workflow)

    def dump(self) -> str:
        return _serializer.serialize_json(self.workflow)

    @property
    def data(self) -> dict:
        return self.workflow.data

    def advance(self) -> None:
        """Run the engine's own steps (gateways, scripts, service tasks) until it waits."""
        self._steps()

    def _steps(self) -> None:
        try:
            self.workflow.do_engine_steps()
        except WorkflowTaskException as exc:
            task = exc.task
            raise StepError(_name(task.task_spec) if task else "?", _message(exc)) from exc
        except SpiffWorkflowException as exc:
            raise StepError("?", str(exc)) from exc

    def _task(self, uuid: str):
        """The engine's task with this id, or None (unknown or malformed id: the same answer)."""
        try:
            return self.workflow.get_task_from_id(UUID(uuid))
        except Exception:  # noqa: BLE001
            return None

    def data_of(self, uuid: str) -> dict:
        """The data a task holds (for a completed user task: what was answered), {} if unknown."""
        task = self._task(uuid)
        return dict(task.data) if task is not None else {}

    def _ready_task(self, uuid: str):
        task = self._task(uuid)
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise TaskNotReady(uuid)
        return task

    def complete(self, uuid: str, answers: dict) -> None:
        """Complete a ready user task with the form's answers (already validated), then step."""
        task = self._ready_task(uuid)
        task.data.update(answers)
        try:
            task.run()
        except WorkflowTaskException as exc:  # a post-script
            raise StepError(_name(task.task_spec), _message(exc)) from exc
        self._steps()

    def fire_timer(self, uuid: str, now: datetime) -> bool:
        """Fire a waiting timer now (our table says it is due), then step; False: not waiting."""
        task = self._task(uuid)
        if task is None or task.state != TaskState.WAITING:
            return False
        # The library compares the due time with the system clock: make it due by both clocks.
        past = (min(now, datetime.now(UTC)) - timedelta(seconds=1)).isoformat()
        value = task.internal_data.get("event_value")
        task.internal_data["event_value"] = {k: past for k in value} if isinstance(value, dict) else past
        self.workflow.refresh_timers()
        if task.state == TaskState.WAITING:
            return False
        self._steps()
        return True

    def deliver(self, name: str, payload: dict) -> bool:
        """Deliver a message to the catch event waiting for it; False when none waits (keep it)."""
        definition = self._waiting_message(name)
        if definition is None:
            return False
        try:
            self.workflow.send_event(BpmnEvent(definition, payload=payload))
        except WorkflowException:
            return False
        self._steps()
        return True

    def _waiting_message(self, name: str):
        # The event must be of the parser's own class to be caught: take the waiting one's.
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            for single in getattr(definition, "event_definitions", [definition]):
                if isinstance(single, MessageEventDefinition) and single.name == name:
                    return single
        return None

    def retry(self) -> None:
        """Run again the steps in error (after the data or the deployment was corrected)."""
        for task in self.workflow.get_tasks(state=TaskState.ERROR):
            task._set_state(TaskState.READY)
        self._steps()

    def cancel(self) -> None:
        self.workflow.cancel()

    def _diff(self, definition):
        spec, subprocess_specs = _specs(definition)
        top, subprocesses = diff_workflow(_serializer.registry, self.workflow, spec, subprocess_specs)
        return top, subprocesses, spec, subprocess_specs

    def migration_blockers(self, definition) -> list[str]:
        """The steps of this instance that the other version changes or removes and that it already
        reached (ran, runs or waits on): it may move to that version only when there is none."""
        top, subprocesses, _spec, _subs = self._diff(definition)
        if any(diff is None for diff in subprocesses.values()):
            return sorted(_name(sp.spec) for sp_id, sp in self.workflow.subprocesses.items()
                          if subprocesses[sp_id] is None)
        reached = [t for diff in [top, *subprocesses.values()] for t in diff.changed + diff.removed
                   if not t.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE) and t.task_spec.bpmn_id]
        return sorted({_name(t.task_spec) for t in reached})

    def migrate(self, definition) -> None:
        """Move this instance to another version of its process (the caller checked the blockers):
        the steps it has not reached are those of the new version; then step."""
        top, subprocesses, spec, subprocess_specs = self._diff(definition)
        # The library resets waiting tasks to predict their branches again, which would restart
        # their timers: each keeps the due time it had (the step itself did not change).
        frozen = {task.task_spec.bpmn_id: task.internal_data["event_value"]
                  for task in self.workflow.get_tasks(state=TaskState.WAITING)
                  if task.task_spec.bpmn_id and "event_value" in task.internal_data}
        migrate_workflow(top, self.workflow, spec)
        for sp_id, diff in subprocesses.items():
            subworkflow = self.workflow.subprocesses[sp_id]
            migrate_workflow(diff, subworkflow, subprocess_specs[subworkflow.spec.name])
        self.workflow.subprocess_specs = subprocess_specs
        self._steps()
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            if task.task_spec.bpmn_id in frozen:
                task.internal_data["event_value"] = frozen[task.task_spec.bpmn_id]

    def snapshot(self) -> Snapshot:
        workflow = self.workflow
        ready, timers, failed, done, waiting, messages = [], [], [], [], [], []
        for task in workflow.get_tasks():
            spec = task.task_spec
            element = getattr(spec, "bpmn_id", None)
            if task.state == TaskState.COMPLETED and element:
                done.append(element)
            elif task.state == TaskState.ERROR and element:
                failed.append(element)
            elif task.state == TaskState.READY and spec.manual:
                extensions = getattr(spec, "extensions", None) or {}
                properties = extensions.get("properties", {})
                ready.append(UserTask(
                    uuid=str(task.id), element_id=element, name=_name(spec), lane=getattr(spec, "lane", None),
                    form=properties.get("formJsonSchemaFilename"), ui_form=properties.get("formUiSchemaFilename"),
                    instructions=extensions.get("instructionsForEndUser"), data=dict(task.data)))
            elif task.state == TaskState.WAITING and hasattr(spec, "event_definition"):
                if element:
                    waiting.append(element)
                due = _due(_timer_value(task))
                if due is not None:
                    timers.append(Timer(uuid=str(task.id), element_id=_timer_element(task), due_at=due))
                definition = spec.event_definition
                for single in getattr(definition, "event_definitions", [definition]):
                    if isinstance(single, MessageEventDefinition):
                        messages.append(single.name)
        return Snapshot(completed=workflow.completed, ready=ready, timers=timers, failed=failed, done=done,
                        waiting=waiting, messages=messages)

"""The one module that imports SpiffWorkflow: parsing a process folder and checking it can run.

A process folder (bpmn/<key>/) holds ``<key>.bpmn`` (its process id is the key), the JSON Schema
forms its user tasks name (``formJsonSchemaFilename``, ``formUiSchemaFilename``) and optional DMN
files. ``check`` refuses, naming the element: an unparseable diagram, a form file missing or not a
valid JSON Schema, a service task naming an operation the engine does not offer, a timer whose
expression does not evaluate to an ISO 8601 date, duration or cycle, a script that does not compile.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

# The operations service tasks may name. Their implementations come with the documents, mails and
# information-system issues; naming anything else is refused at deployment, not at run time.
OPERATIONS = ("generate_document", "send_mail", "create_affaire", "update_party_field", "notify_agent")


class ProcessError(ValueError):
    """A process that cannot be deployed: the message names the file and the element."""


@dataclass(frozen=True)
class Parsed:
    key: str
    name: str
    files: dict[str, str]  # file name → text: the diagram, its forms, its DMN
    user_tasks: list[str]
    spec: object = field(default=None, repr=False, compare=False)  # SpiffWorkflow's process spec


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


def _check_timer(task_spec) -> None:
    definition = getattr(task_spec, "event_definition", None)
    if not isinstance(definition, TimerEventDefinition):
        return
    expression = definition.expression
    try:
        value = eval(compile(expression, "<timer>", "eval"), {"__builtins__": {}}, {})  # noqa: S307 (no names)
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


def check(key: str, files: dict[str, str]) -> Parsed:
    """Parse and check the process of a folder's files; ProcessError says what to fix."""
    diagram = f"{key}.bpmn"
    if diagram not in files:
        raise ProcessError(f"{key} : le diagramme {diagram} est introuvable.")
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_str(files[diagram].encode("utf-8"), filename=diagram)
        for name, text in files.items():
            if name.endswith(".dmn"):
                parser.add_dmn_str(text.encode("utf-8"), filename=name)
        spec = parser.get_spec(key)
    except ValidationException as exc:
        raise ProcessError(f"{diagram} : {exc}") from None
    except Exception as exc:  # noqa: BLE001 (lxml and the parser raise many kinds)
        raise ProcessError(f"{diagram} : diagramme illisible ({exc}).") from None
    user_tasks = []
    for task_spec in spec.task_specs.values():
        kind = type(task_spec).__name__
        extensions = getattr(task_spec, "extensions", None) or {}
        properties = extensions.get("properties", {})
        if kind == "UserTask":
            user_tasks.append(task_spec.bpmn_id)
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
    return Parsed(key=key, name=spec.description or key, files=dict(files), user_tasks=user_tasks, spec=spec)

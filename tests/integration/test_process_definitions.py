"""Deploying processes: versions by content hash, nothing for an unchanged folder, and a clear
refusal naming the element for each kind of fault, with nothing stored."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.db import session
from app.processes import definitions
from app.processes.engine import ProcessError
from app.processes.models import ProcessDefinition

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


def diagram(key: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="{key}" name="Essai" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step" />
    {body}
    <bpmn:sequenceFlow id="f2" sourceRef="step" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


def user_task(form: str = "form.json") -> str:
    return f"""<bpmn:userTask id="step" name="Saisir">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="{form}" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>"""


def service_task(operation: str) -> str:
    return f"""<bpmn:serviceTask id="step" name="Agir">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="r" />
      </bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>"""


def script_task(script: str) -> str:
    return f"""<bpmn:scriptTask id="step" name="Calculer"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>"""


def timer(expression: str) -> str:
    return f"""<bpmn:intermediateCatchEvent id="step" name="Attendre"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:timerEventDefinition>
      <bpmn:timeDuration>{expression}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"""


def folder(tmp_path: Path, key: str, body: str, **files: str) -> Path:
    path = tmp_path / key
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{key}.bpmn").write_text(diagram(key, body), encoding="utf-8")
    for name, text in files.items():
        (path / name.replace("_json", ".json")).write_text(text, encoding="utf-8")
    return path


def _count() -> int:
    return session.execute(select(func.count()).select_from(ProcessDefinition)).scalar_one()


def test_a_process_is_stored_once_per_version_of_its_content(app_ctx, tmp_path):
    path = folder(tmp_path, "essai", user_task(), form_json=json.dumps(SCHEMA))
    first = definitions.deploy("essai", definitions.read_folder(path))
    assert first.created and first.definition.version == 1
    assert set(first.definition.files) == {"essai.bpmn", "form.json"}
    again = definitions.deploy("essai", definitions.read_folder(path))
    assert not again.created and again.definition.id == first.definition.id
    (path / "form.json").write_text(json.dumps({**SCHEMA, "title": "Saisie"}), encoding="utf-8")
    changed = definitions.deploy("essai", definitions.read_folder(path))
    assert changed.created and changed.definition.version == 2
    assert changed.definition.content_hash != first.definition.content_hash
    assert _count() == 2
    assert definitions.latest("essai").version == 2
    entries = session.execute(select(AuditEntry).where(AuditEntry.object_type == "process_definition")).scalars()
    assert sorted(e.action for e in entries) == ["create", "create"]


@pytest.mark.parametrize(("body", "files", "fragment"), [
    ("<bpmn:userTask id='step'", {}, "essai.bpmn"),
    (user_task(), {}, "« Saisir » (step) : le formulaire form.json est introuvable"),
    (user_task(), {"form_json": "{pas du json"}, "form.json n'est pas du JSON valide (ligne 1"),
    (user_task(), {"form_json": json.dumps({"type": 12})}, "form.json n'est pas un JSON Schema valide"),
    (service_task("pirater"), {}, "« Agir » (step) : opération inconnue « pirater »"),
    (script_task("x = = 1"), {}, "« Calculer » (step) : le script ne compile pas (ligne 1"),
    (timer("P15D"), {}, "« Attendre » (step) : le minuteur « P15D »"),
    (timer('"quinze jours"'), {}, "ne donne pas une date, une durée ou un cycle ISO 8601"),
])
def test_a_faulty_process_is_refused_naming_the_element(app_ctx, tmp_path, body, files, fragment):
    path = folder(tmp_path, "essai", body, **files)
    with pytest.raises(ProcessError) as refused:
        definitions.deploy("essai", definitions.read_folder(path))
    assert fragment in str(refused.value)
    assert _count() == 0


def test_timers_scripts_and_operations_that_can_run_are_accepted(app_ctx, tmp_path):
    for key, body in (("attente", timer('"P15D"')), ("calcul", script_task("total = 1 + 2")),
                      ("courrier", service_task("generate_document"))):
        assert definitions.deploy(key, definitions.read_folder(folder(tmp_path, key, body))).created


def test_the_command_deploys_all_or_nothing(app, app_ctx, tmp_path):
    folder(tmp_path, "bon", user_task(), form_json=json.dumps(SCHEMA))
    folder(tmp_path, "mauvais", service_task("pirater"))
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["processes", "deploy", "--path", str(tmp_path)])
    assert refused.exit_code != 0 and "rien n'a été déployé" in refused.output and "pirater" in refused.output
    assert _count() == 0
    accepted = runner.invoke(args=["processes", "deploy", "--path", str(tmp_path), "bon"])
    assert accepted.exit_code == 0 and "bon" in accepted.output and "nouvelle version" in accepted.output
    assert runner.invoke(args=["processes", "deploy", "--path", str(tmp_path), "bon"]).output.count("inchangé") == 1
    assert runner.invoke(args=["processes", "deploy", "--path", str(tmp_path), "inconnu"]).exit_code != 0


def test_the_shipped_processes_deploy(app, app_ctx):
    result = app.test_cli_runner().invoke(args=["processes", "deploy"])
    assert result.exit_code == 0, result.output
    shipped = {p.name for p in (ROOT / "bpmn").iterdir() if p.is_dir()}
    assert {d.key for d in session.execute(select(ProcessDefinition)).scalars()} == shipped

"""Diagrams from other modelers (tests/data/bpmn_foreign, written by the team in each tool's export
style): what Guichet cannot run is listed element by element; the rest deploys once adopted."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.processes import bpmn_import, engine

FOREIGN = Path(__file__).resolve().parents[2] / "tests/data/bpmn_foreign"


def _read(name: str) -> str:
    return (FOREIGN / name).read_text(encoding="utf-8")


UNSUPPORTED = {
    "camunda7_unsupported.bpmn": {
        ("Activity_1c8v6b5", "serviceTask"), ("Activity_0d9f8g7", "scriptTask"), ("Gateway_0h1j2k3", "complexGateway"),
        ("Activity_1l2m3n4", "userTask"), ("Event_0o9p8q7", "boundaryEvent"), ("Flow_1d", "sequenceFlow")},
    "camunda8_zeebe.bpmn": {
        ("Activity_0f4h6j8", "serviceTask"), ("Activity_1q2w3e4", "callActivity"), ("Flow_0z3", "sequenceFlow")},
    "signavio_export.bpmn": {("sid-3F2A1B4C-0003", "sendTask"), ("sid-3F2A1B4C-0004", "receiveTask")},
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_each_element_guichet_cannot_run_is_listed_and_nothing_deploys(name):
    findings = [f for f in bpmn_import.analyse(_read(name)) if f.blocking]
    assert {(f.element_id, f.kind) for f in findings} == UNSUPPORTED[name]
    for finding in findings:
        assert finding.element_id in finding.message  # the message names its element
    adopted = bpmn_import.adopt(_read(name), "imported")
    with pytest.raises(engine.ProcessError) as refused:
        engine.check("imported", {"imported.bpmn": adopted.xml, **adopted.forms})
    assert {p.element_id for p in refused.value.problems} >= {element for element, _kind in UNSUPPORTED[name]}


def test_the_messages_say_what_to_do_instead():
    messages = {f.element_id: f.message for f in bpmn_import.analyse(_read("camunda7_unsupported.bpmn"))}
    assert "camunda:class" in messages["Activity_1c8v6b5"] and "choisissez-en une" in messages["Activity_1c8v6b5"]
    assert "javascript" in messages["Activity_0d9f8g7"]
    assert "branchement inclusif ou exclusif" in messages["Gateway_0h1j2k3"]
    assert "multi-instance" in messages["Activity_1l2m3n4"]
    assert "signal" in messages["Event_0o9p8q7"]
    assert "${amount > 100}" in messages["Flow_1d"] and "Python" in messages["Flow_1d"]


@pytest.mark.parametrize("name", ["camunda7_simple.bpmn", "bpmnio_supported.bpmn"])
def test_a_diagram_of_supported_elements_is_adopted_and_passes_the_deployment_checks(name):
    assert [f for f in bpmn_import.analyse(_read(name)) if f.blocking] == []
    adopted = bpmn_import.adopt(_read(name), "imported", "Importé")
    parsed = engine.check("imported", {"imported.bpmn": adopted.xml, **adopted.forms})
    assert parsed.key == "imported" and parsed.name == "Importé"
    assert len(adopted.forms) == len(parsed.user_tasks) == 1  # its user task got an empty form to fill in
    assert any("formulaire vide" in note for note in adopted.notes)


def test_a_camunda_form_is_reported_as_ignored_not_blocking():
    findings = bpmn_import.analyse(_read("camunda7_simple.bpmn"))
    assert [(f.element_id, f.blocking) for f in findings] == [("Activity_0x1y2z3", False)]
    assert "formulaire Camunda ignoré" in findings[0].message


def test_adopting_renames_the_process_everywhere_and_keeps_the_diagram():
    adopted = bpmn_import.adopt(_read("bpmnio_supported.bpmn"), "meter_reading")
    assert 'processRef="meter_reading"' in adopted.xml and 'id="Process_1"' not in adopted.xml
    assert "Participant_1_di" in adopted.xml and 'isExecutable="true"' in adopted.xml
    assert "Processus « Process_1 » renommé « meter_reading »." in adopted.notes


@pytest.mark.parametrize(("xml", "message"), [
    ("<bpmn:definitions", "pas du XML lisible"),
    ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">'
     '<startEvent id="s" name="&b;"/></process></definitions>', "DOCTYPE"),
    ('<definitions xmlns="http://example.org/other"/>', "pas un diagramme BPMN 2.0"),
    ('<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"/></definitions>',
     "aucun processus avec des étapes"),
    ('<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="a"><task id="t1"/></process>'
     '<process id="b"><task id="t2"/></process></definitions>', "2 processus avec des étapes (a, b)"),
])
def test_a_file_that_cannot_be_imported_says_why(xml, message):
    with pytest.raises(bpmn_import.PortabilityError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bpmn_import.adopt(xml, "imported")


def test_a_bad_key_is_refused():
    with pytest.raises(bpmn_import.PortabilityError, match="Identifiant de processus invalide"):
        bpmn_import.adopt(_read("bpmnio_supported.bpmn"), "Relève-Compteur")


def test_a_bare_iso_timer_from_another_tool_is_quoted_on_import():
    xml = _read("bpmnio_supported.bpmn").replace('"P1D"', "PT1H")
    as_exported = xml.replace("Process_1", "imported").replace('isExecutable="false"', 'isExecutable="true"')
    with pytest.raises(engine.ProcessError, match="minuteur « PT1H »"):  # the engine would read a name
        engine.check("imported", {"imported.bpmn": as_exported})
    adopted = bpmn_import.adopt(xml, "imported")
    assert '"PT1H"' in adopted.xml and any("PT1H mis entre guillemets" in note for note in adopted.notes)
    engine.check("imported", {"imported.bpmn": adopted.xml, **adopted.forms})


ESCAPE = "().__class__.__base__.__subclasses__()"


@pytest.mark.parametrize(("where", "code"), [
    ("script", f"found = {ESCAPE}"),
    ("script", "import os"),
    ("script", "x = __builtins__"),
    ("script", 'leak = "{0.__class__}".format(1)'),
    ("condition", f"len({ESCAPE}) > 0"),
    ("parameter", f"{ESCAPE}[0]"),
    ("timer", '"P1D" if ().__class__ else "P2D"'),
])
def test_code_reaching_python_internals_is_refused_before_it_runs(where, code):
    from xml.sax.saxutils import escape, quoteattr

    script = escape(code) if where == "script" else "x = 1"
    condition = escape(code) if where == "condition" else "True"
    parameter = quoteattr(code) if where == "parameter" else "'a'"
    timer = escape(code) if where == "timer" else '"P1D"'
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="calc" />
    <bpmn:scriptTask id="calc"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="f4"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:outgoing>f4</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="mail">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="wait" />
    <bpmn:serviceTask id="mail"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="send_mail" resultVariable="m"><spiffworkflow:parameters>
        <spiffworkflow:parameter id="template" type="str" value={parameter} />
      </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>{timer}</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f5" sourceRef="mail" targetRef="end" />
    <bpmn:sequenceFlow id="f6" sourceRef="wait" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f5</bpmn:incoming><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
    safe = {"script": "x = 1", "condition": "True", "parameter": "'a'", "timer": '"P1D"'}[where]
    engine.check("p", {"p.bpmn": xml.replace(quoteattr(code) if where == "parameter" else escape(code),
                                             quoteattr(safe) if where == "parameter" else safe)})  # the rest is fine
    with pytest.raises(engine.ProcessError) as refused:
        engine.check("p", {"p.bpmn": xml})
    element = {"script": "calc", "condition": "f3", "parameter": "mail", "timer": "wait"}[where]
    assert any(p.element_id == element and "pas permis" in p.message or "n'importe pas" in p.message
               for p in refused.value.problems), refused.value.problems


def test_the_shipped_processes_pass_the_code_rules():
    for folder in (FOREIGN.parents[1] / ".." / "bpmn").resolve().iterdir():
        if folder.is_dir():
            diagram = (folder / f"{folder.name}.bpmn").read_text(encoding="utf-8")
            assert [f for f in bpmn_import.analyse(diagram) if f.blocking] == [], folder.name

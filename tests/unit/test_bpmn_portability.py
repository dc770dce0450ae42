"""Diagrams from other modelers: what Guichet cannot run is reported by element at import, and a
supported diagram adopted as a process folder deploys (engine.check) and runs."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from app.processes import engine
from app.processes.portability import SPIFF, Finding, PortabilityError, adopt, analyse

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "bpmn_external"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def deploy(adopted, key: str):
    return engine.check(key, {f"{key}.bpmn": adopted.xml, **adopted.forms})


def pairs(findings: list[Finding]) -> list[tuple[str | None, str, bool]]:
    return [(f.element_id, f.kind, f.blocking) for f in findings]


# --- Sample exports -----------------------------------------------------------------------------

UNSUPPORTED = {
    "camunda7_unsupported.bpmn": [
        ("Activity_1c3k9wd", "serviceTask", True),  # camunda:class
        ("Activity_0m5e2yh", "scriptTask", True),  # javascript
        ("Gateway_0k2s9fa", "complexGateway", True),
        ("Flow_0t6z1hc", "sequenceFlow", True),  # ${amount > 100}
        ("Activity_1p8x4ri", "userTask", True),  # multi-instance
        ("Activity_1p8x4ri", "userTask", False),  # camunda:formKey
        ("Event_1j6b0ux", "boundaryEvent", True),  # signal
    ],
    "camunda8_zeebe.bpmn": [
        ("Activity_0p2o4ir", "serviceTask", True),  # zeebe:taskDefinition
        ("Flow_1z8x6cv", "sequenceFlow", True),  # = amount > 100
        ("Activity_1a9s8df", "userTask", False),  # zeebe:formDefinition
        ("Event_0x4c2vb", "boundaryEvent", True),  # FEEL timer
        ("Activity_0g4h6jk", "callActivity", True),
    ],
    "signavio_export.bpmn": [
        ("sid-7D9E1F3A-2B4C-4D6E-9F8A-0B1C2D3E4F5A", "sendTask", True),
        ("sid-8E0F2A4B-3C5D-4E7F-A09B-1C2D3E4F5A6B", "receiveTask", True),
    ],
}


@pytest.mark.parametrize("filename", sorted(UNSUPPORTED))
def test_unsupported_exports_are_reported_by_element_in_document_order(filename):
    findings = analyse(sample(filename))

    assert pairs(findings) == UNSUPPORTED[filename]
    for finding in findings:
        assert finding.element_id in finding.message
        if finding.element_name:
            assert f"« {finding.element_name} »" in finding.message


@pytest.mark.parametrize("filename", sorted(UNSUPPORTED))
def test_unsupported_exports_do_not_deploy_once_adopted(filename):
    adopted = adopt(sample(filename), "essai")

    assert any(f.blocking for f in analyse(adopted.xml))
    with pytest.raises(engine.ProcessError):
        deploy(adopted, "essai")


def test_messages_say_what_to_do_instead():
    by_id = {f.element_id: f.message for f in analyse(sample("camunda7_unsupported.bpmn")) if f.blocking}

    assert "camunda:class" in by_id["Activity_1c3k9wd"]
    assert "panneau des propriétés" in by_id["Activity_1c3k9wd"]
    assert "send_mail" in by_id["Activity_1c3k9wd"]  # our operations are listed
    assert "javascript" in by_id["Activity_0m5e2yh"] and "Python" in by_id["Activity_0m5e2yh"]
    assert "${amount > 100}" in by_id["Flow_0t6z1hc"] and "JUEL" in by_id["Flow_0t6z1hc"]
    assert "signal" in by_id["Event_1j6b0ux"]
    zeebe = {f.element_id: f.message for f in analyse(sample("camunda8_zeebe.bpmn"))}
    assert "zeebe:taskDefinition" in zeebe["Activity_0p2o4ir"]
    assert "=delai_decision" in zeebe["Event_0x4c2vb"]
    assert "sous-processus" in zeebe["Activity_0g4h6jk"]


SUPPORTED = {
    "camunda7_simple.bpmn": ("remboursement", "Process_1k2j3h", ["Activity_0x1y2z"]),
    "bpmnio_supported.bpmn": ("raccordement", "Process_0d9tq2b", ["Activity_0j2n6tm"]),
}


@pytest.mark.parametrize("filename", sorted(SUPPORTED))
def test_supported_exports_deploy_once_adopted(filename):
    key, old_id, user_tasks = SUPPORTED[filename]
    xml = sample(filename)
    assert not [f for f in analyse(xml) if f.blocking]

    adopted = adopt(xml, key, "Nom choisi")
    parsed = deploy(adopted, key)

    assert parsed.key == key
    assert parsed.user_tasks == user_tasks
    root = etree.fromstring(adopted.xml.encode("utf-8"))
    process = root.find("bpmn:process", NS)
    assert (process.get("id"), process.get("name"), process.get("isExecutable")) == (key, "Nom choisi", "true")
    assert root.nsmap["spiffworkflow"] == SPIFF
    assert old_id not in adopted.xml  # participant and diagram plane follow the new id
    assert root.xpath("//bpmndi:BPMNPlane/@bpmnElement", namespaces=NS)[0] in (key, root.find(
        "bpmn:collaboration", NS).get("id") if root.find("bpmn:collaboration", NS) is not None else key)
    assert any(old_id in note and key in note for note in adopted.notes)
    assert not [f for f in analyse(adopted.xml) if f.blocking]


def test_camunda_form_key_is_reported_but_not_blocking():
    findings = analyse(sample("camunda7_simple.bpmn"))

    assert findings == [Finding(
        "Activity_0x1y2z", "Saisir le montant", "userTask",
        "« Saisir le montant » (Activity_0x1y2z) : formulaire Camunda ignoré : créez le formulaire dans "
        "l'éditeur de formulaires.", blocking=False)]


def test_adopt_gives_each_user_task_an_empty_form():
    adopted = adopt(sample("camunda7_simple.bpmn"), "remboursement")

    assert adopted.forms == {"activity_0x1y2z.schema.json": json.dumps(
        {"type": "object", "title": "Saisir le montant", "properties": {}}, ensure_ascii=False, indent=2) + "\n"}
    root = etree.fromstring(adopted.xml.encode("utf-8"))
    task = root.find(".//bpmn:userTask[@id='Activity_0x1y2z']", NS)
    assert [etree.QName(child).localname for child in task][:2] == ["documentation", "extensionElements"]
    assert task.xpath("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
                      "[@name='formJsonSchemaFilename']/@value", namespaces=NS) == ["activity_0x1y2z.schema.json"]
    assert any("activity_0x1y2z.schema.json" in note for note in adopted.notes)


def test_adopted_camunda_diagram_runs_its_python_conditions():
    adopted = adopt(sample("camunda7_simple.bpmn"), "remboursement")
    files = {"remboursement.bpmn": adopted.xml, **adopted.forms}
    definition = SimpleNamespace(key="remboursement", files=files, content_hash="test-portability-camunda7")

    run = engine.Run.start(definition, {})
    run.advance()
    [task] = run.snapshot().ready
    assert (task.element_id, task.form) == ("Activity_0x1y2z", "activity_0x1y2z.schema.json")
    run.complete(task.uuid, {"amount": 150})

    snapshot = run.snapshot()
    assert snapshot.completed
    assert "Event_0hq3c5m" in snapshot.done and "Event_1r0t6yv" not in snapshot.done


def test_signavio_export_is_read_with_its_default_namespace():
    adopted = adopt(sample("signavio_export.bpmn"), "changement_adresse", "Changement d'adresse")

    root = etree.fromstring(adopted.xml.encode("utf-8"))
    assert root.find("bpmn:process", NS).get("id") == "changement_adresse"
    assert root.xpath("//bpmndi:BPMNPlane/@bpmnElement", namespaces=NS) == ["changement_adresse"]
    assert list(adopted.forms) == ["sid-9f1a3b5c-4d6e-4f80-b1ac-2d3e4f5a6b7c.schema.json"]
    assert len(root.findall(".//{http://www.signavio.com}signavioMetaData")) > 10  # vendor data kept


# --- Vendor extensions --------------------------------------------------------------------------

DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" xmlns:signavio="http://www.signavio.com"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Definitions_1" targetNamespace="x">
  <bpmn:signal id="Signal_1" name="s"/>
  <bpmn:process id="Process_1" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"/>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Step_1"/>
    {body}
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Step_1" targetRef="EndEvent_1"/>
    <bpmn:endEvent id="EndEvent_1"/>
  </bpmn:process>
</bpmn:definitions>"""


def diagram(body: str) -> str:
    return DIAGRAM.replace("{body}", body)


def test_vendor_extensions_are_kept_and_accepted_by_the_engine():
    xml = diagram("""<bpmn:userTask id="Step_1" name="Saisir" camunda:assignee="demo" signavio:x="1">
      <bpmn:extensionElements>
        <camunda:formData><camunda:formField id="amount" label="Montant" type="long"/></camunda:formData>
        <signavio:signavioMetaData metaKey="bgcolor" metaValue="#ffffcc"/>
      </bpmn:extensionElements>
    </bpmn:userTask>""")

    assert pairs(analyse(xml)) == [("Step_1", "userTask", False)]
    adopted = adopt(xml, "saisie")
    deploy(adopted, "saisie")
    root = etree.fromstring(adopted.xml.encode("utf-8"))
    extensions = root.find(".//bpmn:userTask/bpmn:extensionElements", NS)
    assert [etree.QName(child).localname for child in extensions] == ["formData", "signavioMetaData", "properties"]
    assert not [note for note in adopted.notes if "retir" in note]  # nothing had to be stripped


def test_a_user_task_that_names_its_form_gets_none():
    xml = diagram("""<bpmn:userTask id="Step_1"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="formJsonSchemaFilename" value="saisie.schema.json"/>
    </spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>""")

    adopted = adopt(xml, "saisie")

    assert adopted.forms == {}
    assert adopted.xml.count("formJsonSchemaFilename") == 1


@pytest.mark.parametrize(("body", "kind"), [
    ('<bpmn:complexGateway id="Step_1"/>', "complexGateway"),
    ('<bpmn:callActivity id="Step_1" calledElement="autre"/>', "callActivity"),
    ('<bpmn:transaction id="Step_1"/>', "transaction"),
    ('<bpmn:adHocSubProcess id="Step_1"/>', "adHocSubProcess"),
    ('<bpmn:sendTask id="Step_1"/>', "sendTask"),
    ('<bpmn:receiveTask id="Step_1"/>', "receiveTask"),
    ('<bpmn:businessRuleTask id="Step_1" camunda:decisionRef="tarif"/>', "businessRuleTask"),
    ('<bpmn:task id="Step_1"><bpmn:multiInstanceLoopCharacteristics isSequential="true">'
     '<bpmn:loopCardinality>3</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:task>', "task"),
    ('<bpmn:task id="Step_1"><bpmn:standardLoopCharacteristics/></bpmn:task>', "task"),
    ('<bpmn:intermediateCatchEvent id="Step_1"><bpmn:signalEventDefinition signalRef="Signal_1"/>'
     '</bpmn:intermediateCatchEvent>', "intermediateCatchEvent"),
    ('<bpmn:intermediateThrowEvent id="Step_1"><bpmn:escalationEventDefinition/></bpmn:intermediateThrowEvent>',
     "intermediateThrowEvent"),
    ('<bpmn:intermediateCatchEvent id="Step_1"><bpmn:conditionalEventDefinition><bpmn:condition>a</bpmn:condition>'
     '</bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>', "intermediateCatchEvent"),
    ('<bpmn:intermediateThrowEvent id="Step_1"><bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>',
     "intermediateThrowEvent"),
    ('<bpmn:intermediateThrowEvent id="Step_1"><bpmn:linkEventDefinition name="A"/></bpmn:intermediateThrowEvent>',
     "intermediateThrowEvent"),
    ('<bpmn:scriptTask id="Step_1" scriptFormat="groovy"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>',
     "scriptTask"),
    ('<bpmn:scriptTask id="Step_1" scriptFormat="juel"><bpmn:script>${x}</bpmn:script></bpmn:scriptTask>',
     "scriptTask"),
    ('<bpmn:serviceTask id="Step_1" camunda:expression="${calcul.montant()}"/>', "serviceTask"),
    ('<bpmn:serviceTask id="Step_1" camunda:delegateExpression="${calculDelegate}"/>', "serviceTask"),
    ('<bpmn:serviceTask id="Step_1" camunda:type="external" camunda:topic="calcul"/>', "serviceTask"),
    ('<bpmn:serviceTask id="Step_1"/>', "serviceTask"),
    ('<bpmn:serviceTask id="Step_1"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="launch_rocket"/>'
     '</bpmn:extensionElements></bpmn:serviceTask>', "serviceTask"),
    ('<bpmn:intermediateCatchEvent id="Step_1"><bpmn:timerEventDefinition><bpmn:timeDuration>${delai}'
     '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', "intermediateCatchEvent"),
    ('<bpmn:intermediateCatchEvent id="Step_1"><bpmn:timerEventDefinition><bpmn:timeDate>= date(echeance)'
     '</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', "intermediateCatchEvent"),
    ('<bpmn:subProcess id="Step_0"><bpmn:complexGateway id="Step_1"/></bpmn:subProcess>', "complexGateway"),
])
def test_each_construct_the_engine_cannot_run_is_blocking(body, kind):
    [finding] = analyse(diagram(body))

    assert (finding.element_id, finding.kind, finding.blocking) == ("Step_1", kind, True)
    assert finding.message.startswith("Step_1 : ")


def test_a_camunda_event_on_a_boundary_is_reported_on_the_event():
    xml = diagram("""<bpmn:task id="Step_1"/>
      <bpmn:boundaryEvent id="Event_1" name="Alerte" attachedToRef="Step_1">
        <bpmn:escalationEventDefinition/>
      </bpmn:boundaryEvent>""")

    assert pairs(analyse(xml)) == [("Event_1", "boundaryEvent", True)]


@pytest.mark.parametrize("condition", ["${amount > 100}", "#{amount > 100}", "= amount > 100", "amount &gt; 100 &amp;&amp; ok",
                                       "amount >", "montant est supérieur à 100"])
def test_conditions_must_be_python_expressions(condition):
    xml = diagram(f"""<bpmn:exclusiveGateway id="Step_1"/>
      <bpmn:sequenceFlow id="Flow_3" sourceRef="Step_1" targetRef="EndEvent_1">
        <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition.replace('>', '&gt;')}</bpmn:conditionExpression>
      </bpmn:sequenceFlow>""")

    assert pairs(analyse(xml)) == [("Flow_3", "sequenceFlow", True)]


def test_conditions_in_another_script_language_are_blocking():
    xml = diagram("""<bpmn:exclusiveGateway id="Step_1"/>
      <bpmn:sequenceFlow id="Flow_3" sourceRef="Step_1" targetRef="EndEvent_1">
        <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="javascript">amount &gt; 100</bpmn:conditionExpression>
      </bpmn:sequenceFlow>""")

    [finding] = analyse(xml)
    assert finding.element_id == "Flow_3" and "javascript" in finding.message


@pytest.mark.parametrize("body", [
    '<bpmn:task id="Step_1"/>',
    '<bpmn:manualTask id="Step_1" name="Classer"/>',
    '<bpmn:scriptTask id="Step_1"><bpmn:script>total = 1 + 1</bpmn:script></bpmn:scriptTask>',
    '<bpmn:scriptTask id="Step_1" scriptFormat="python"><bpmn:script>total = 2</bpmn:script></bpmn:scriptTask>',
    '<bpmn:serviceTask id="Step_1"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="send_mail"/>'
    '</bpmn:extensionElements></bpmn:serviceTask>',
    '<bpmn:intermediateCatchEvent id="Step_1"><bpmn:timerEventDefinition><bpmn:timeDuration>"PT2H"'
    '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>',
    '<bpmn:intermediateCatchEvent id="Step_1"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent>',
    '<bpmn:intermediateThrowEvent id="Step_1"/>',
    '<bpmn:parallelGateway id="Step_1"/>',
    '<bpmn:inclusiveGateway id="Step_1"/>',
    '<bpmn:subProcess id="Step_1"><bpmn:startEvent id="Sub_start"/><bpmn:endEvent id="Sub_end"/></bpmn:subProcess>',
    '<bpmn:task id="Step_1"/><bpmn:textAnnotation id="Note_1"><bpmn:text>Nota</bpmn:text></bpmn:textAnnotation>'
    '<bpmn:association id="Association_1" sourceRef="Step_1" targetRef="Note_1"/><bpmn:group id="Group_1"/>',
    '<bpmn:task id="Step_1"><bpmn:documentation>Voir la procédure.</bpmn:documentation></bpmn:task>',
])
def test_what_the_engine_runs_is_not_reported(body):
    assert analyse(diagram(body)) == []


def test_the_executable_pool_is_chosen_among_several():
    xml = diagram('<bpmn:task id="Step_1"/>').replace("</bpmn:definitions>", """
      <bpmn:process id="Process_usager" isExecutable="false">
        <bpmn:startEvent id="Usager_start"/><bpmn:complexGateway id="Usager_gateway"/>
      </bpmn:process>
      <bpmn:process id="Process_vide" isExecutable="false"/>
    </bpmn:definitions>""")

    assert analyse(xml) == []
    adopted = adopt(xml, "choisi")
    assert etree.fromstring(adopted.xml.encode("utf-8")).xpath("//bpmn:process/@id", namespaces=NS) == [
        "choisi", "Process_usager", "Process_vide"]


def test_encoding_declaration_and_byte_order_mark_are_accepted():
    xml = "\ufeff" + diagram('<bpmn:task id="Step_1" name="Été"/>').replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')

    assert analyse(xml) == []
    assert 'name="Été"' in adopt(xml, "ete").xml


# --- Files refused --------------------------------------------------------------------------------

BOMB = """<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="x">
  <bpmn:process id="P" isExecutable="true"><bpmn:task id="T" name="&d;"/></bpmn:process>
</bpmn:definitions>"""
EXTERNAL = BOMB.replace('<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">',
                        '<!ENTITY a SYSTEM "file:///etc/passwd">')


@pytest.mark.parametrize(("xml", "words"), [
    ("<bpmn:definitions><bpmn:process>", "XML lisible"),
    ("", "XML lisible"),
    (BOMB, "DTD"),
    (EXTERNAL, "DTD"),
    ('<definitions xmlns="http://example.org/other"><process id="P"/></definitions>', "BPMN 2.0"),
    (diagram("").replace('<bpmn:process id="Process_1" isExecutable="true">', '<bpmn:process id="Process_1">')
     .split("<bpmn:process")[0] + "</bpmn:definitions>", "aucun processus"),
    (diagram("").replace("</bpmn:definitions>", """<bpmn:process id="Process_2" isExecutable="true">
        <bpmn:startEvent id="Other_start"/></bpmn:process></bpmn:definitions>"""), "2 processus exécutables"),
    (diagram("").replace('isExecutable="true"', 'isExecutable="false"').replace("</bpmn:definitions>", """
        <bpmn:process id="Process_2"><bpmn:startEvent id="Other_start"/></bpmn:process></bpmn:definitions>"""),
     "2 processus avec des étapes"),
])
def test_unreadable_files_are_refused_in_french(xml, words):
    with pytest.raises(PortabilityError, match=words):
        analyse(xml)
    with pytest.raises(PortabilityError, match=words):
        adopt(xml, "essai")


def test_a_process_without_steps_is_refused():
    xml = diagram("").replace(diagram("").split('<bpmn:process id="Process_1" isExecutable="true">')[1]
                              .split("</bpmn:process>")[0], "<bpmn:laneSet id='LaneSet_1'/>")

    with pytest.raises(PortabilityError, match="aucun processus avec des étapes"):
        analyse(xml)


@pytest.mark.parametrize("key", ["", "a", "Remboursement", "1abc", "process-1", "été", "a" * 64, "proc 1"])
def test_a_bad_key_is_refused(key):
    with pytest.raises(PortabilityError, match="Identifiant de processus invalide"):
        adopt(sample("camunda7_simple.bpmn"), key)


def test_a_key_already_used_by_an_element_is_refused():
    xml = diagram('<bpmn:task id="saisie"/>').replace('targetRef="Step_1"', 'targetRef="saisie"').replace(
        'sourceRef="Step_1"', 'sourceRef="saisie"')

    with pytest.raises(PortabilityError, match="déjà celui d'un autre élément"):
        adopt(xml, "saisie")

"""Each shipped diagram can be drawn and routed: every flow node and sequence flow of the process
has its shape or edge in the diagram (bpmn-js draws nothing without them), every flow node lies in
exactly one lane, and lanes are named after the standard roles, which is how the engine offers a
user task to the agents of that role."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from app.processes.definitions import read_folder
from app.processes.engine import check
from app.security.roles import STANDARD_ROLES

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
ROLES = {code for code, _label, _permissions in STANDARD_ROLES}
KEYS = sorted(p.name for p in BPMN.iterdir() if p.is_dir())


@pytest.mark.parametrize("key", KEYS)
def test_every_element_is_drawn_and_in_one_lane_named_after_a_role(key):
    root = etree.parse(str(BPMN / key / f"{key}.bpmn")).getroot()
    process = root.find("bpmn:process", NS)
    flows = [e.get("id") for e in process.findall("bpmn:sequenceFlow", NS)]
    nodes = [e.get("id") for e in process if etree.QName(e).localname not in ("sequenceFlow", "laneSet")]
    drawn = {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNShape", NS)}
    routed = {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert set(nodes) <= drawn and set(flows) <= routed
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    assert lanes and {lane.get("name") for lane in lanes} <= ROLES
    placed = [ref.text for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)]
    assert sorted(placed) == sorted(nodes)


@pytest.mark.parametrize("key", KEYS)
def test_the_engine_reads_each_user_tasks_lane_as_a_role(key):
    spec = check(key, read_folder(BPMN / key)).spec
    lanes = {t.bpmn_id: t.lane for t in spec.task_specs.values() if type(t).__name__ == "UserTask"}
    assert lanes and set(lanes.values()) <= ROLES

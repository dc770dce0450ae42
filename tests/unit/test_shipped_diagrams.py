"""Each shipped diagram can be drawn and is routed to roles.

bpmn-js draws nothing without BPMN DI: every flow node and sequence flow of the process has its
shape or edge on the plane of the diagram's collaboration (one pool), each shape lies in its lane,
a boundary event sits on its host's border, and flows run in horizontal and vertical segments
that cross no other shape. Every flow node lies in exactly one lane, lanes are named after the
standard roles, and the engine reads each user task's lane as the role its task is offered to.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from app.processes.definitions import read_folder
from app.processes.engine import check
from app.security.roles import STANDARD_ROLES

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
ROLES = {code for code, _label, _permissions in STANDARD_ROLES}
KEYS = sorted(p.name for p in BPMN.iterdir() if p.is_dir())
NOT_FLOW_NODES = {"sequenceFlow", "laneSet", "extensionElements", "documentation", "association",
                  "textAnnotation", "dataObject", "dataObjectReference", "dataStoreReference"}
LANES = {  # process → user task → the role its lane names (who is offered the task)
    "information_request": {"answer": "accueil"},
    "move_in": {"identity": "accueil", "meter": "accueil", "contract": "back_office"},
    "move_out": {"leave": "accueil", "meter": "back_office"},
    "payment_difficulty": {"study": "accueil", "sign": "back_office", "remind": "back_office",
                           "check": "back_office"},
    "reading_dispute": {"record": "accueil", "conclude": "back_office"},
    "unpaid_relaunch": {"collect": "back_office", "social": "back_office"},
}


def _diagram(key):
    root = etree.parse(str(BPMN / key / f"{key}.bpmn")).getroot()
    process = root.find("bpmn:process", NS)
    nodes = {e.get("id"): e for e in process if isinstance(e.tag, str)
             and etree.QName(e).localname not in NOT_FLOW_NODES}
    flows = {e.get("id"): (e.get("sourceRef"), e.get("targetRef")) for e in process.findall("bpmn:sequenceFlow", NS)}
    return root, process, nodes, flows


def _bounds(shape):
    b = shape.find("dc:Bounds", NS)
    return tuple(float(b.get(name)) for name in ("x", "y", "width", "height"))


def _inside(inner, outer):
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def _crosses(a, b, box):
    """Whether the segment a-b (horizontal or vertical) enters the inside of the box."""
    x, y, w, h = box
    return max(a[0], b[0]) > x and min(a[0], b[0]) < x + w and max(a[1], b[1]) > y and min(a[1], b[1]) < y + h


@pytest.mark.parametrize("key", KEYS)
def test_every_flow_node_is_in_one_lane_named_after_a_role(key):
    _root, process, nodes, _flows = _diagram(key)
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    assert lanes, f"{key}: no lanes"
    assert {lane.get("name") for lane in lanes} <= ROLES, f"{key}: lanes are named after role codes"
    placed = [ref.text for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)]
    assert sorted(placed) == sorted(nodes), f"{key}: every flow node in exactly one lane"


@pytest.mark.parametrize("key", KEYS)
def test_every_flow_node_and_flow_is_drawn_in_its_lane(key):
    root, process, nodes, flows = _diagram(key)
    participants = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("processRef") for p in participants] == [key], f"{key}: one pool, for the process"
    planes = root.findall("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert len(planes) == 1 and planes[0].get("bpmnElement") == root.find("bpmn:collaboration", NS).get("id")
    shapes = {s.get("bpmnElement"): s for s in planes[0].findall("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in planes[0].findall("bpmndi:BPMNEdge", NS)}
    assert not set(nodes) - set(shapes), f"{key}: flow nodes without a shape"
    assert not set(flows) - set(edges), f"{key}: sequence flows without an edge"

    pool = _bounds(shapes[participants[0].get("id")])
    box = {n: _bounds(shapes[n]) for n in nodes}
    for lane in process.findall("bpmn:laneSet/bpmn:lane", NS):
        shape = shapes[lane.get("id")]
        assert shape.get("isHorizontal") == "true" and _inside(_bounds(shape), pool), lane.get("name")
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            assert _inside(box[ref.text], _bounds(shape)), f"{key}: {ref.text} drawn outside its lane"
    for event in process.findall("bpmn:boundaryEvent", NS):
        x, y, w, h = box[event.get("attachedToRef")]
        ex, ey, ew, eh = box[event.get("id")]
        cx, cy = ex + ew / 2, ey + eh / 2
        on_border = (cx in (x, x + w) and y <= cy <= y + h) or (cy in (y, y + h) and x <= cx <= x + w)
        assert on_border, f"{key}: {event.get('id')} not on its host's border"

    hosts = {e.get("id"): e.get("attachedToRef") for e in process.findall("bpmn:boundaryEvent", NS)}
    for flow, (source, target) in flows.items():
        points = [(float(p.get("x")), float(p.get("y"))) for p in edges[flow].findall("di:waypoint", NS)]
        assert len(points) >= 2, flow
        assert _inside((*points[0], 0, 0), box[source]), f"{key}: {flow} does not leave {source}"
        assert _inside((*points[-1], 0, 0), box[target]), f"{key}: {flow} does not reach {target}"
        ends = {source, target, hosts.get(source), hosts.get(target)}
        for a, b in zip(points, points[1:], strict=False):
            assert a[0] == b[0] or a[1] == b[1], f"{key}: {flow} has a slanted segment"
            crossed = [n for n in nodes if n not in ends and _crosses(a, b, box[n])]
            assert not crossed, f"{key}: {flow} runs through {crossed}"


@pytest.mark.parametrize("key", KEYS)
def test_the_engine_reads_each_user_tasks_lane_as_its_role(key):
    assert key in LANES, f"say which role each user task of {key} goes to"
    spec = check(key, read_folder(BPMN / key)).spec
    lanes = {t.bpmn_id: t.lane for t in spec.task_specs.values() if type(t).__name__ == "UserTask"}
    assert set(lanes.values()) <= ROLES
    assert lanes == LANES[key]

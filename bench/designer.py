"""Benchmark of the process designer's server side, on the shipped processes and on synthetic
diagrams of growing size: the deployment checks (``engine.check``, what **Valider** and every save
run), the change summary, a test run's start (operations journaled), and the migration check of one running instance.

Run: ``.venv/bin/python bench/designer.py [--steps 25 100 400] [--rounds 20]``. No database: the
engine and the designer's pure functions only. Numbers go to docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.processes import definitions, design, engine, trial  # noqa: E402

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FORM = json.dumps({"type": "object", "properties": {
    "answer": {"type": "string", "title": "Réponse"}, "amount": {"type": "number", "format": "amount"}}})


def synthetic(steps: int) -> dict[str, str]:
    """start → (user task → gateway → script | timer) × steps/3 … → end: a long but plausible process."""
    nodes, flows = ['<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'], []
    previous, flow = "start", 0
    for i in range(steps):
        kind = i % 3
        element = f"s{i}"
        incoming, outgoing = f"f{flow}", f"f{flow + 1}"
        if kind == 0:
            nodes.append(f'<bpmn:userTask id="{element}" name="Étape {i}"><bpmn:extensionElements>'
                         '<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" '
                         'value="form.schema.json"/></spiffworkflow:properties></bpmn:extensionElements>'
                         f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>'
                         '</bpmn:userTask>')
        elif kind == 1:
            nodes.append(f'<bpmn:scriptTask id="{element}" name="Calcul {i}"><bpmn:incoming>{incoming}</bpmn:incoming>'
                         f'<bpmn:outgoing>{outgoing}</bpmn:outgoing><bpmn:script>total_{i} = len(str(answer))'
                         '</bpmn:script></bpmn:scriptTask>')
        else:
            nodes.append(f'<bpmn:intermediateCatchEvent id="{element}" name="Délai {i}">'
                         f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>'
                         '<bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration>'
                         '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
        flows.append(f'<bpmn:sequenceFlow id="{incoming}" sourceRef="{previous}" targetRef="{element}"/>')
        previous, flow = element, flow + 1
    nodes.append(f'<bpmn:endEvent id="end"><bpmn:incoming>f{flow}</bpmn:incoming></bpmn:endEvent>')
    flows.append(f'<bpmn:sequenceFlow id="f{flow}" sourceRef="{previous}" targetRef="end"/>')
    diagram = (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="{BPMN}" '
               'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">'
               f'<bpmn:process id="big" name="Grand processus" isExecutable="true">{"".join(nodes + flows)}'
               '</bpmn:process></bpmn:definitions>')
    return {"big.bpmn": diagram, "form.schema.json": FORM}


def _median_ms(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def _version(key: str, files: dict[str, str], salt: str = "") -> SimpleNamespace:
    return SimpleNamespace(key=key, files=files, content_hash=definitions.content_hash(files) + salt)


def measure(key: str, files: dict[str, str], rounds: int) -> dict[str, float]:
    diagram = files[f"{key}.bpmn"]
    renamed = {**files, f"{key}.bpmn": diagram.replace('name="', 'name="Nouveau ', 3)}
    check = _median_ms(lambda: engine.check(key, files), rounds)
    changes = _median_ms(lambda: design.changes(files, renamed, key), rounds)
    v1, v2 = _version(key, files), _version(key, renamed, "-v2")
    # As a test run starts it: operations journaled, not run (they would need a real dossier).
    data = {"context": {}, "answer": "x"}
    results = trial.TRIAL_RESULTS
    run = engine.Run.start(v1, data, script_engine=engine.trial_engine([], results))
    run.advance()
    start = _median_ms(lambda: engine.Run.start(v1, dict(data), script_engine=engine.trial_engine([], results))
                       .advance(), rounds)
    state = run.dump()
    blockers = _median_ms(lambda: engine.Run.load(v1, state).migration_blockers(v2), rounds)
    return {"elements": diagram.count(' id="') - 1, "kB": len(diagram.encode()) / 1024, "check": check,
            "changes": changes, "start": start, "blockers": blockers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 100, 400])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from app import create_app

    app = create_app()  # gettext needs an application for the messages of the checks
    rows = []
    with app.app_context():
        for folder in sorted(p for p in (ROOT / "bpmn").iterdir() if p.is_dir()):
            rows.append((folder.name, measure(folder.name, definitions.read_folder(folder), args.rounds)))
        for steps in args.steps:
            rows.append((f"synthetic {steps} steps", measure("big", synthetic(steps), max(3, args.rounds // 4))))
    print(f"{'process':28} {'elements':>8} {'kB':>6} {'check ms':>9} {'changes ms':>11} {'start ms':>9} "
          f"{'migration check ms':>19}")
    for name, r in rows:
        print(f"{name:28} {r['elements']:8d} {r['kB']:6.1f} {r['check']:9.1f} {r['changes']:11.1f} {r['start']:9.1f} "
              f"{r['blockers']:19.1f}")


if __name__ == "__main__":
    main()

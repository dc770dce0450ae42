"""The process designer: catalogue, drafts saved from the modeler, validation on the elements,
deployment as a new version with its changes, versions kept by running instances, import and
export, the form editor."""
from __future__ import annotations

import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.audit.models import AuditEntry
from app.db import session
from app.dossiers.models import DossierElement
from app.errors import BusinessError
from app.mails.models import OutgoingMail
from app.processes import definitions, design, engine
from app.processes import service as processes
from app.processes.models import ProcessDefinition, ProcessDraft, ProcessInstance
from tests.conftest import TEST_PASSWORD, csrf_token
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import contact_type, dossier_type
from tests.integration.test_process_instances import IDENTITY, open_dossier, the_task, world_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = ROOT / "tests/data/bpmn_external"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def _deploy(*keys: str) -> None:
    definitions.deploy_directory(ROOT / "bpmn", list(keys))
    session.commit()


def _versions(key: str) -> int:
    return session.execute(select(func.count()).select_from(ProcessDefinition)
                           .where(ProcessDefinition.key == key)).scalar_one()


def _token(client, url: str = "/conception/processus") -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def _open(client, key: str = "move_in") -> ProcessDraft:
    response = client.post(f"/conception/processus/{key}/modifier", data={"csrf_token": _token(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/{key}/modeleur")
    return design.draft(key)


def _save(client, key: str, revision: int, diagram: str):
    return client.post(f"/conception/processus/{key}/brouillon", json={"revision": revision, "diagram": diagram},
                       headers={"X-CSRFToken": _token(client)})


def with_step(diagram: str, *, form: str = "appointment.schema.json", timer: str | None = None) -> str:
    """move_in with a user task "Prendre rendez-vous" between its start and its first step, and
    optionally a timer between the welcome mail and the end."""
    root = etree.fromstring(diagram.encode("utf-8"))
    process = root.find(f"{{{BPMN_NS}}}process")
    flow = process.find(f"{{{BPMN_NS}}}sequenceFlow[@id='flow_0']")
    flow.set("targetRef", "appointment")
    task = etree.SubElement(process, f"{{{BPMN_NS}}}userTask", id="appointment", name="Prendre rendez-vous")
    extensions = etree.SubElement(task, f"{{{BPMN_NS}}}extensionElements")
    properties = etree.SubElement(extensions, f"{{{SPIFF_NS}}}properties")
    etree.SubElement(properties, f"{{{SPIFF_NS}}}property", name="formJsonSchemaFilename", value=form)
    etree.SubElement(process, f"{{{BPMN_NS}}}sequenceFlow", id="flow_appointment", sourceRef="appointment",
                     targetRef="identity")
    if timer is not None:
        last = process.find(f"{{{BPMN_NS}}}sequenceFlow[@id='flow_5']")
        last.set("targetRef", "pause")
        event = etree.SubElement(process, f"{{{BPMN_NS}}}intermediateCatchEvent", id="pause", name="Délai")
        definition = etree.SubElement(event, f"{{{BPMN_NS}}}timerEventDefinition")
        etree.SubElement(definition, f"{{{BPMN_NS}}}timeDuration").text = timer
        etree.SubElement(process, f"{{{BPMN_NS}}}sequenceFlow", id="flow_pause", sourceRef="pause", targetRef="end")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


APPOINTMENT = {"type": "object", "title": "Rendez-vous", "required": ["slot"],
               "properties": {"slot": {"type": "string", "format": "date", "title": "Date du rendez-vous"},
                              "note": {"type": "string", "title": "Remarque"}}}


# --- Access and catalogue ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/conception/processus", "/conception/processus/move_in",
                                  "/conception/processus/move_in/modeleur", "/conception/processus/move_in/v1.bpmn"])
def test_the_designer_needs_process_design(client, login_as, path):
    _deploy("move_in")
    login_as("accueil")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", [
    "/conception/processus/nouveau", "/conception/processus/importer", "/conception/processus/move_in/modifier",
    "/conception/processus/move_in/brouillon", "/conception/processus/move_in/deployer",
    "/conception/processus/move_in/abandonner", "/conception/processus/move_in/essai",
    "/conception/processus/move_in/instances/1/migrer", "/conception/processus/move_in/formulaires",
    "/conception/processus/move_in/formulaires/identity.schema.json"])
def test_every_designer_write_needs_process_design(client, login_as, path):
    _deploy("move_in")
    login_as("accueil")
    token = csrf_token(client.get("/").get_data(as_text=True))  # a valid token: only the permission refuses
    posted = client.post(path, data={"csrf_token": token, "key": "x_y", "name": "X", "revision": "1",
                                     "action": "start", "sample": "{}"}, headers={"X-CSRFToken": token})
    assert posted.status_code == 403
    assert session.execute(select(func.count()).select_from(ProcessDraft)).scalar_one() == 0
    assert _versions("move_in") == 1


def test_catalogue_lists_versions_instances_and_users(client, login_as):
    _deploy("move_in", "information_request")
    kind = dossier_type(label="Emménagement")
    kind.process_key = "move_in"
    asked = contact_type(label="Demande de renseignement")
    asked.process_key = "information_request"
    session.commit()
    login_as("concepteur")
    page = client.get("/conception/processus").get_data(as_text=True)
    row = re.search(r'<tr id="process-move_in">(.*?)</tr>', page, re.S).group(1)
    assert "Emménagement" in row and "v1" in row and "dossier : Emménagement" in row
    assert "contact : Demande de renseignement" in re.search(r'<tr id="process-information_request">(.*?)</tr>',
                                                            page, re.S).group(1)
    assert 'id="designer-link"' in page


# --- Drafts and validation -------------------------------------------------------------------------

def test_a_draft_starts_from_the_latest_version_and_saves_with_its_revision(client, login_as):
    _deploy("move_in")
    analyst = login_as("concepteur")
    draft = _open(client)
    assert draft.base_version == 1 and draft.files == definitions.latest("move_in").files
    page = client.get("/conception/processus/move_in/modeleur").get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="designer-config">(.*?)</script>', page,
                                  re.S).group(1))
    assert config["revision"] == 1 and "<bpmn:userTask id=\"identity\"" in config["diagram"]
    assert {o["name"] for o in config["palette"]["operations"]} == set(engine.OPERATIONS)
    assert "identity.schema.json" in config["palette"]["forms"]

    diagram = with_step(draft.files["move_in.bpmn"])
    saved = _save(client, "move_in", 1, diagram)
    assert saved.status_code == 200
    answer = saved.get_json()
    assert answer["revision"] == 2
    # The new step names a form that does not exist yet: the problem is on its element.
    assert [p["element"] for p in answer["problems"]] == ["appointment"]
    assert "appointment.schema.json est introuvable" in answer["problems"][0]["message"]
    session.expire_all()
    assert design.draft("move_in").updated_by_id == analyst.id

    stale = _save(client, "move_in", 1, diagram)
    assert stale.status_code == 409 and "modifié entre-temps" in stale.get_json()["error"]
    broken = _save(client, "move_in", 2, "<bpmn:definitions")
    assert broken.status_code == 422 and "XML" in broken.get_json()["error"]
    session.expire_all()
    assert design.draft("move_in").revision == 2  # neither refusal wrote anything


def test_a_bad_timer_is_reported_on_its_element_then_fixed(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    draft = _open(client)
    files = {**draft.files, "appointment.schema.json": json.dumps(APPOINTMENT)}
    draft.files = files
    session.commit()
    answer = _save(client, "move_in", draft.revision, with_step(files["move_in.bpmn"], timer="15 jours")).get_json()
    assert [p["element"] for p in answer["problems"]] == ["pause"]
    assert "minuteur « 15 jours »" in answer["problems"][0]["message"]
    answer = _save(client, "move_in", answer["revision"], with_step(files["move_in.bpmn"], timer='"P2D"')).get_json()
    assert answer["problems"] == []


def test_every_problem_is_listed_at_once_each_on_its_element():
    files = {"p.bpmn": f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:spiffworkflow="{SPIFF_NS}" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="ask" />
    <bpmn:userTask id="ask" name="Demander">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="compute" />
    <bpmn:scriptTask id="compute" name="Calculer">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>total = (</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="compute" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""}
    with pytest.raises(engine.ProcessError) as refused:
        engine.check("p", files)
    assert [p.element_id for p in refused.value.problems] == ["ask", "compute"]
    assert "formJsonSchemaFilename" in str(refused.value) and "ne compile pas" in str(refused.value)


# --- Deployment ------------------------------------------------------------------------------------

def test_deploying_a_draft_makes_a_new_version_with_its_changes_audited(client, login_as):
    _deploy("move_in")
    analyst = login_as("concepteur")
    draft = _open(client)
    draft.files = {**draft.files, "move_in.bpmn": with_step(draft.files["move_in.bpmn"]),
                   "appointment.schema.json": json.dumps(APPOINTMENT)}
    draft.revision = 5
    session.commit()
    page = client.get("/conception/processus/move_in").get_data(as_text=True)
    pending = re.search(r'<ul id="draft-changes"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert "Ajouté : tâche utilisateur « Prendre rendez-vous » (appointment)" in html.unescape(pending)
    token = csrf_token(page)
    stale = client.post("/conception/processus/move_in/deployer", data={"csrf_token": token, "revision": "4"})
    assert stale.status_code == 303 and _versions("move_in") == 1
    deployed = client.post("/conception/processus/move_in/deployer", data={"csrf_token": token, "revision": "5"})
    assert deployed.status_code == 303
    session.expire_all()
    latest = definitions.latest("move_in")
    assert latest.version == 2 and latest.deployed_by == analyst.login and design.draft("move_in") is None
    summary = latest.change_summary
    assert "Ajouté : tâche utilisateur « Prendre rendez-vous » (appointment)" in summary
    assert "Formulaire ajouté : appointment.schema.json" in summary
    assert "Liaisons : 1 ajoutée(s), 0 supprimée(s)" in summary
    audit = session.execute(select(AuditEntry).where(AuditEntry.object_type == "process_definition",
                                                     AuditEntry.object_id == str(latest.id))).scalars().all()
    assert [a.action for a in audit] == ["create"] and audit[0].actor_id == analyst.id
    page = client.get("/conception/processus/move_in").get_data(as_text=True)
    assert "Prendre rendez-vous" in re.search(r'<tr id="version-2">(.*?)</tr>', page, re.S).group(1)


def test_a_draft_with_problems_or_unchanged_is_not_deployed(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    draft = _open(client)
    token = _token(client, "/conception/processus/move_in")
    unchanged = client.post("/conception/processus/move_in/deployer",
                            data={"csrf_token": token, "revision": str(draft.revision)}, follow_redirects=True)
    assert "identique à la version 1" in unchanged.get_data(as_text=True)
    draft = design.draft("move_in")
    draft.files = {**draft.files, "move_in.bpmn": with_step(draft.files["move_in.bpmn"])}  # no form file
    session.commit()
    refused = client.post("/conception/processus/move_in/deployer",
                          data={"csrf_token": token, "revision": str(draft.revision)}, follow_redirects=True)
    page = refused.get_data(as_text=True)
    assert "1 problème(s) à corriger" in page and "appointment.schema.json est introuvable" in page
    assert _versions("move_in") == 1 and design.draft("move_in") is not None


def test_running_instances_keep_their_version_new_ones_take_the_new_step(world):
    started_before = open_dossier(world, "move_in", auto_start=True)
    old = processes.last_on(dossier_id=started_before.id)
    assert the_task(old).element_id == "identity"
    analyst = AgentFactory(roles=[role_with("concepteur")])
    draft = design.open_draft("move_in", agent=analyst)
    design.save_draft("move_in", agent=analyst, revision=draft.revision,
                      diagram=with_step(draft.files["move_in.bpmn"]),
                      forms={"appointment.schema.json": json.dumps(APPOINTMENT)})
    v2 = design.deploy_draft("move_in", agent=analyst, revision=draft.revision)
    session.commit()
    assert v2.version == 2

    started_after = open_dossier(world, "move_in", auto_start=True)
    new = processes.last_on(dossier_id=started_after.id)
    assert new.definition_id == v2.id and the_task(new).element_id == "appointment"
    step = the_task(new)
    processes.complete_task(agent=world.agent, task_id=step.id, answers={"slot": "2026-12-03"})
    session.commit()
    assert the_task(new).element_id == "identity"

    session.refresh(old)
    assert old.definition.version == 1
    processes.complete_task(agent=world.agent, task_id=the_task(old).id, answers=IDENTITY)
    session.commit()
    assert the_task(old).element_id == "meter"  # the old version has no appointment step
    assert design.entry("move_in").versions[0].running == 1 and design.entry("move_in").versions[1].running == 1


# --- New process, export -------------------------------------------------------------------------

def test_a_new_process_starts_as_a_runnable_blank_diagram(client, login_as):
    login_as("concepteur")
    token = _token(client)
    bad = client.post("/conception/processus/nouveau", data={"csrf_token": token, "key": "Mauvais-Nom", "name": "X"})
    assert bad.status_code == 422 and "Identifiant de processus invalide" in bad.get_data(as_text=True)
    created = client.post("/conception/processus/nouveau",
                          data={"csrf_token": token, "key": "water_leak", "name": "Fuite d'eau"})
    assert created.status_code == 303
    draft = design.draft("water_leak")
    assert design.problems("water_leak", draft.files) == []
    deployed = design.deploy_draft("water_leak", agent=AgentFactory(), revision=draft.revision)
    assert deployed.name == "Fuite d'eau" and deployed.change_summary[0] == "Première version"
    again = client.post("/conception/processus/nouveau",
                        data={"csrf_token": token, "key": "water_leak", "name": "Autre"})
    assert again.status_code == 422 and "existe déjà" in again.get_data(as_text=True)


def test_export_gives_the_version_and_the_draft_as_files(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    exported = client.get("/conception/processus/move_in/v1.bpmn")
    assert exported.status_code == 200 and 'filename="move_in-v1.bpmn"' in exported.headers["Content-Disposition"]
    assert exported.get_data(as_text=True) == definitions.latest("move_in").files["move_in.bpmn"]
    assert client.get("/conception/processus/move_in/v9.bpmn").status_code == 404
    assert client.get("/conception/processus/move_in/brouillon.bpmn").status_code == 404
    _open(client)
    assert client.get("/conception/processus/move_in/brouillon.bpmn").status_code == 200


# --- Change summaries ---------------------------------------------------------------------------

def test_changes_name_renames_parameters_and_layout():
    old = (ROOT / "bpmn/move_in/move_in.bpmn").read_text(encoding="utf-8")
    renamed = old.replace('name="Relever l\'index d\'entrée"', 'name="Relever le compteur"')
    assert design.changes({"move_in.bpmn": old}, {"move_in.bpmn": renamed}, "move_in") == [
        "Renommé : « Relever l'index d'entrée » devient « Relever le compteur » (meter)"]
    other = old.replace("'move_in_welcome_mail'", "'other_mail'")
    assert design.changes({"move_in.bpmn": old}, {"move_in.bpmn": other}, "move_in") == [
        "Paramètres changés : tâche de service « Envoyer la bienvenue par mail » (welcome_mail)"]
    moved = old.replace('<dc:Bounds x="206" y="30"', '<dc:Bounds x="216" y="40"')
    assert design.changes({"move_in.bpmn": old}, {"move_in.bpmn": moved}, "move_in") == [
        "Disposition du schéma seulement (aucune étape changée)"]


def test_the_operation_catalogue_covers_the_engine_and_flags_what_this_server_lacks(app_ctx):
    assert [op.name for op in design.operations()] == list(engine.OPERATIONS)
    catalogue = {op["name"]: op for op in design.operation_catalogue()}
    assert catalogue["generate_document"]["available"] is True
    assert catalogue["notify_agent"]["available"] is False and catalogue["update_party_field"]["available"] is True


# --- Moving running instances ------------------------------------------------------------------

def test_an_instance_moves_to_the_new_version_only_when_no_changed_step_ran(client, world):
    from tests.integration.test_contacts_hardening import _fresh_csrf

    on_v1 = open_dossier(world, "move_in", auto_start=True)
    instance = processes.last_on(dossier_id=on_v1.id)
    analyst = AgentFactory(roles=[role_with("concepteur")])
    # v2 renames a step the instance has not reached: it may move.
    draft = design.open_draft("move_in", agent=analyst)
    design.save_draft("move_in", agent=analyst, revision=draft.revision, diagram=draft.files["move_in.bpmn"].replace(
        "Choisir l'offre et le paiement", "Choisir l'offre"))
    design.deploy_draft("move_in", agent=analyst, revision=draft.revision)
    session.commit()
    latest, candidates, total = design.migration_candidates("move_in")
    assert latest.version == 2 and total == 1 and candidates[0].movable

    _fresh_csrf()
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"login": analyst.login, "password": TEST_PASSWORD, "csrf_token": csrf_token(page)})
    _fresh_csrf()
    token = _token(client, "/conception/processus/move_in")
    moved = client.post(f"/conception/processus/move_in/instances/{instance.id}/migrer", data={"csrf_token": token})
    assert moved.status_code == 303
    session.expire_all()
    assert processes.last_on(dossier_id=on_v1.id).definition.version == 2
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=IDENTITY)
    session.commit()
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id,
                            answers={"index_value": 5230, "source": "client"})
    session.commit()
    assert the_task(instance).name == "Choisir l'offre"  # the new version's step
    audit = session.execute(select(AuditEntry).where(AuditEntry.object_type == "process_instance",
                                                     AuditEntry.object_id == str(instance.id),
                                                     AuditEntry.action == "migrate")).scalars().all()
    assert len(audit) == 1 and audit[0].actor_id == analyst.id

    # v3 changes the step the instance now waits on: it stays on v2, and says why.
    draft = design.open_draft("move_in", agent=analyst)
    design.save_draft("move_in", agent=analyst, revision=draft.revision, diagram=draft.files["move_in.bpmn"].replace(
        "Choisir l'offre", "Choisir l'offre tarifaire"))
    design.deploy_draft("move_in", agent=analyst, revision=draft.revision)
    session.commit()
    _latest, candidates, _total = design.migration_candidates("move_in")
    assert candidates[0].blockers == ["Choisir l'offre"]
    with pytest.raises(BusinessError, match="déjà été atteintes : Choisir l'offre"):
        processes.migrate(agent=analyst, instance_id=instance.id, definition=definitions.latest("move_in"))


# --- The test run ------------------------------------------------------------------------------------

def test_a_test_run_steps_through_forms_and_writes_nothing(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    _open(client)
    counts = {table: session.execute(select(func.count()).select_from(table)).scalar_one()
              for table in (ProcessInstance.__table__, DossierElement.__table__, OutgoingMail.__table__)}
    audited = session.execute(select(func.max(AuditEntry.id))).scalar() or 0
    page = client.get("/conception/processus/move_in/essai").get_data(as_text=True)
    sample = re.search(r'<textarea id="sample"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    token = csrf_token(page)
    started = client.post("/conception/processus/move_in/essai",
                          data={"csrf_token": token, "action": "start", "sample": html.unescape(sample)})
    page = started.get_data(as_text=True)
    assert started.status_code == 200 and 'id="trial-task-name">Vérifier l&#39;identité du nouvel occupant' in page

    def step(page, answers):
        state = re.search(r'name="token" value="([^"]+)"', page).group(1)
        task = re.search(r'name="task" value="([^"]+)"', page).group(1)
        return client.post("/conception/processus/move_in/essai", data={
            "csrf_token": token, "action": "complete", "token": state, "task": task, **answers})

    refused = step(page, {"f-identity_checked": "on"})
    assert refused.status_code == 422 and "Ce champ est obligatoire." in refused.get_data(as_text=True)
    page = step(page, {"f-identity_checked": "on", "f-move_in_on": "2026-12-01"}).get_data(as_text=True)
    assert "Relever l&#39;index d&#39;entrée" in page
    page = step(page, {"f-index_value": "5230", "f-source": "client"}).get_data(as_text=True)
    page = step(page, {"f-offer": "base", "f-payment_method": "cheque"}).get_data(as_text=True)
    assert 'id="trial-completed"' in page, re.findall(r'field-error[^>]*>([^<]*)', page)
    journal = re.search(r'<ol id="trial-journal">(.*?)</ol>', page, re.S).group(1)
    assert "generate_document" in journal and "send_mail" in journal and "move_in_welcome" in journal
    session.expire_all()
    assert counts == {table: session.execute(select(func.count()).select_from(table)).scalar_one()
                      for table in counts}
    audit = session.execute(select(AuditEntry.action, AuditEntry.object_type).where(AuditEntry.id > audited)).all()
    assert audit == [("trial_run", "process_draft")]  # the only write: who ran the draft's code, and when

    forged = client.post("/conception/processus/move_in/essai", data={
        "csrf_token": token, "action": "show", "token": "eyJmb28iOiJiYXIifQ.forged"})
    assert forged.status_code == 422 and "Essai illisible" in forged.get_data(as_text=True)


# --- Import ----------------------------------------------------------------------------------------

def _import(client, name: str, key: str, label: str = ""):
    with open(ROOT / "tests/data/bpmn_foreign" / name, "rb") as handle:
        return client.post("/conception/processus/importer", data={
            "csrf_token": _token(client), "key": key, "name": label, "file": (handle, name)},
            content_type="multipart/form-data")


def test_an_imported_diagram_of_supported_elements_deploys(client, login_as):
    login_as("concepteur")
    page = _import(client, "camunda7_simple.bpmn", "billing_claim", "Réclamation sur facture")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="import-ok"' in text
    assert "formulaire Camunda ignoré" in text and "activity_0x1y2z3.schema.json" in text
    draft = design.draft("billing_claim")
    assert draft.base_version is None and "activity_0x1y2z3.schema.json" in draft.files
    deployed = design.deploy_draft("billing_claim", agent=AgentFactory(), revision=draft.revision)
    assert deployed.version == 1 and deployed.name == "Réclamation sur facture"


def test_an_imported_diagram_with_unsupported_elements_lists_them_and_does_not_deploy(client, login_as):
    login_as("concepteur")
    page = _import(client, "camunda7_unsupported.bpmn", "camunda_relaunch").get_data(as_text=True)
    listed = re.search(r'<article class="flash-error" id="import-blocking">(.*?)</article>', page, re.S).group(1)
    for element in ("Activity_1c8v6b5", "Activity_0d9f8g7", "Gateway_0h1j2k3", "Activity_1l2m3n4",
                    "Event_0o9p8q7", "Flow_1d"):
        assert f'data-element="{element}"' in listed
    with pytest.raises(BusinessError, match="problème\\(s\\) à corriger"):
        design.deploy_draft("camunda_relaunch", agent=AgentFactory(),
                            revision=design.draft("camunda_relaunch").revision)
    assert _versions("camunda_relaunch") == 0


def test_importing_over_an_existing_process_makes_its_next_draft_and_bad_files_are_refused(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    _import(client, "bpmnio_supported.bpmn", "move_in")  # no draft yet: the import becomes it
    draft = design.draft("move_in")
    assert draft.base_version == 1 and 'id="move_in"' in draft.files["move_in.bpmn"]
    assert "identity.schema.json" in draft.files  # the version's forms stay in the draft
    broken = client.post("/conception/processus/importer", data={
        "csrf_token": _token(client), "key": "other", "file": (io.BytesIO(b"<definitions"), "x.bpmn")},
        content_type="multipart/form-data")
    assert broken.status_code == 422 and "pas du XML lisible" in broken.get_data(as_text=True)
    wrong = client.post("/conception/processus/importer", data={
        "csrf_token": _token(client), "key": "other", "file": (io.BytesIO(b"x"), "notes.txt")},
        content_type="multipart/form-data")
    assert wrong.status_code == 422 and "diagramme .bpmn" in wrong.get_data(as_text=True)
    assert design.draft("other") is None


# --- The form editor ----------------------------------------------------------------------------------

def _form_page(client, key: str, filename: str) -> str:
    return client.get(f"/conception/processus/{key}/formulaires/{filename}").get_data(as_text=True)


def test_the_form_editor_builds_a_form_the_agents_renderer_shows(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    draft = _open(client)
    created = client.post("/conception/processus/move_in/formulaires",
                          data={"csrf_token": _token(client), "name": "rendez_vous", "title": "Rendez-vous"})
    assert created.status_code == 303 and created.headers["Location"].endswith("/formulaires/rendez_vous.schema.json")
    page = _form_page(client, "move_in", "rendez_vous.schema.json")
    assert 'id="no-fields"' in page
    fields = {"csrf_token": csrf_token(page), "revision": str(design.draft("move_in").revision), "title": "Rendez-vous",
              "fields-0-name": "slot", "fields-0-label": "Date du rendez-vous", "fields-0-type": "date",
              "fields-0-required": "on",
              "fields-1-name": "channel", "fields-1-label": "Par", "fields-1-type": "choice",
              "fields-1-options": "phone = Téléphone\nvisit = Visite", "fields-1-radio": "on",
              "fields-2-name": "address", "fields-2-label": "Adresse", "fields-2-type": "textarea",
              "fields-2-visible_field": "channel", "fields-2-visible_values": "visit"}
    preview = client.post("/conception/processus/move_in/formulaires/rendez_vous.schema.json",
                          data={**fields, "action": "preview"}).get_data(as_text=True)
    block = re.search(r'<div id="form-preview".*?</section>', preview, re.S).group(0)
    assert 'type="date" name="f-slot"' in block and 'type="radio" name="f-channel"' in block
    assert "data-visible-if" in block and "<textarea" in block
    empty = {"type": "object", "title": "Rendez-vous", "properties": {}}
    assert design.draft("move_in").files.get("rendez_vous.schema.json") == json.dumps(
        empty, ensure_ascii=False, indent=2)  # a preview saves nothing

    saved = client.post("/conception/processus/move_in/formulaires/rendez_vous.schema.json",
                        data={**fields, "action": "save"})
    assert saved.status_code == 303
    session.expire_all()
    files = design.draft("move_in").files
    schema, ui = json.loads(files["rendez_vous.schema.json"]), json.loads(files["rendez_vous.uischema.json"])
    assert schema["required"] == ["slot"] and schema["properties"]["channel"]["enum"] == ["phone", "visit"]
    assert ui["channel"] == {"ui:widget": "radio", "ui:enumNames": ["Téléphone", "Visite"]}
    assert ui["address"]["ui:visibleIf"] == {"channel": "visit"} and ui["ui:order"] == ["slot", "channel", "address"]
    del draft


def test_the_form_editor_refuses_bad_fields_and_bad_json_writing_nothing(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    _open(client)
    before = dict(design.draft("move_in").files)
    page = _form_page(client, "move_in", "identity.schema.json")
    assert 'value="move_in_on"' in page and 'value="Date d&#39;entrée dans les lieux"' in page
    refused = client.post("/conception/processus/move_in/formulaires/identity.schema.json", data={
        "csrf_token": csrf_token(page), "revision": "1", "action": "save",
        "fields-0-name": "Bad Name", "fields-0-label": "", "fields-0-type": "text",
        "fields-1-name": "pick", "fields-1-label": "Choix", "fields-1-type": "choice"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Nom technique : des minuscules" in text and "Donnez un libellé" in text and "au moins une option" in text
    raw = client.post("/conception/processus/move_in/formulaires/identity.schema.json", data={
        "csrf_token": csrf_token(page), "revision": "1", "action": "raw", "raw_schema": "{", "raw_ui": ""})
    assert raw.status_code == 422 and "Le JSON est invalide" in raw.get_data(as_text=True)
    not_a_schema = client.post("/conception/processus/move_in/formulaires/identity.schema.json", data={
        "csrf_token": csrf_token(page), "revision": "1", "action": "raw",
        "raw_schema": '{"type": "object", "properties": {"x": {"type": "chaîne"}}}', "raw_ui": "{}"})
    assert not_a_schema.status_code == 422 and "pas un JSON Schema valide" in not_a_schema.get_data(as_text=True)
    stale = client.post("/conception/processus/move_in/formulaires/identity.schema.json", data={
        "csrf_token": csrf_token(page), "revision": "0", "action": "raw",
        "raw_schema": '{"type": "object", "properties": {}}', "raw_ui": "{}"})
    assert stale.status_code == 409 and "modifié entre-temps" in stale.get_data(as_text=True)
    session.expire_all()
    assert design.draft("move_in").files == before


# --- Operations writing to the records ---------------------------------------------------------------

EMAIL_FORM = {"type": "object", "properties": {"new_email": {"type": "string", "title": "E-mail"},
                                               "fragile": {"type": "boolean", "title": "Vulnérable"}}}


def _party_step_body(field: str, value: str) -> str:
    from tests.integration.test_process_instances import flow, user_task

    return ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + flow("f1", "start", "ask") + user_task("ask", "f1", "f2") + flow("f2", "ask", "copy")
            + f"""<bpmn:serviceTask id="copy" name="Recopier">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="update_party_field" resultVariable="copied">
        <spiffworkflow:parameters><spiffworkflow:parameter id="field" type="str" value="'{field}'" />
        <spiffworkflow:parameter id="value" type="any" value="{value}" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>"""
            + flow("f3", "copy", "end") + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')


@pytest.mark.parametrize(("field", "value", "answers", "check"), [
    ("email", "new_email", {"new_email": "helene.nouvelle@example.fr"},
     lambda party: party.emails[0].address == "helene.nouvelle@example.fr"),
    ("vulnerable", "fragile", {"fragile": True}, lambda party: party.vulnerable is True),
])
def test_a_step_copies_an_answer_into_the_customer_record(world, field, value, answers, check):
    from tests.integration.test_process_instances import deploy

    deploy("copy_answer", _party_step_body(field, value), {"form.json": EMAIL_FORM})
    dossier = open_dossier(world, "copy_answer")
    instance = processes.start(key="copy_answer", agent=world.agent, dossier=dossier)
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers=answers)
    session.commit()
    session.refresh(world.helene)
    assert instance.status == "completed" and check(world.helene)
    audit = session.execute(select(AuditEntry).where(AuditEntry.object_type == "party",
                                                     AuditEntry.object_id == str(world.helene.id))
                            .order_by(AuditEntry.id.desc())).scalars().first()
    assert audit.action == "update"


def test_a_bad_value_stops_the_step_with_the_record_s_own_message(world):
    from tests.integration.test_process_instances import deploy

    deploy("copy_answer", _party_step_body("email", "new_email"), {"form.json": EMAIL_FORM})
    dossier = open_dossier(world, "copy_answer")
    instance = processes.start(key="copy_answer", agent=world.agent, dossier=dossier)
    before = [e.address for e in world.helene.emails]
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers={"new_email": "pas-un-mail"})
    session.commit()
    session.refresh(world.helene)
    assert instance.status == "error" and instance.error_element == "Recopier"
    assert "update_party_field" in instance.error_message and "e-mail" in instance.error_message.lower()
    assert [e.address for e in world.helene.emails] == before


def test_create_affaire_queues_the_dossier_s_affaire_once(world, app):
    from app.integration.models import AffaireSync
    from app.processes import record_steps

    dossier = open_dossier(world, "move_in")
    data = {"context": {"dossier_id": dossier.id}}
    with pytest.raises(RuntimeError, match="BILLING_API_URL"):
        record_steps.create_affaire(data, {})
    app.config["BILLING_API_URL"] = "http://127.0.0.1:9/api"
    try:
        session.execute(AffaireSync.__table__.delete().where(AffaireSync.dossier_id == dossier.id))
        assert record_steps.create_affaire(data, {}) == {"queued": True}
        assert record_steps.create_affaire(data, {}) == {"queued": False}
    finally:
        app.config.pop("BILLING_API_URL")
    rows = session.execute(select(AffaireSync).where(AffaireSync.dossier_id == dossier.id)).scalars().all()
    assert [r.action for r in rows] == ["create"]


def test_a_test_run_takes_the_path_the_simulated_operation_results_choose(client, login_as):
    _deploy("unpaid_relaunch")
    login_as("concepteur")
    _open(client, "unpaid_relaunch")
    page = client.get("/conception/processus/unpaid_relaunch/essai").get_data(as_text=True)
    sample = json.loads(html.unescape(re.search(r'<textarea id="sample"[^>]*>(.*?)</textarea>', page, re.S).group(1)))
    assert sample["trial_results"]["dunning_level"]["outcome"] == "done"
    token = csrf_token(page)

    def start(outcome: str) -> str:
        data = {**sample, "trial_results": {**sample["trial_results"], "dunning_level": {
            **sample["trial_results"]["dunning_level"], "outcome": outcome}}}
        return client.post("/conception/processus/unpaid_relaunch/essai", data={
            "csrf_token": token, "action": "start", "sample": json.dumps(data)}).get_data(as_text=True)

    waiting = start("done")  # a level applied: the process waits for the next one or a payment
    assert 'id="trial-waiting"' in waiting and "facture_payee" in waiting and 'id="trial-completed"' not in waiting
    paid = start("paid")  # the level finds the invoices paid: the dossier is closed, the process ends
    journal = re.search(r'<ol id="trial-journal">(.*?)</ol>', paid, re.S).group(1)
    assert 'id="trial-completed"' in paid and "dunning_level" in journal and "close_dossier" in journal
    state = re.search(r'name="token" value="([^"]+)"', waiting).group(1)
    received = client.post("/conception/processus/unpaid_relaunch/essai", data={
        "csrf_token": token, "action": "message", "message": "facture_payee", "token": state,
        "sample": json.dumps(sample)}).get_data(as_text=True)
    assert 'id="trial-completed"' in received


def test_a_migrated_instance_keeps_the_due_time_of_the_timer_it_waits_on(app_ctx):
    from types import SimpleNamespace

    from app.processes import trial

    files = definitions.read_folder(ROOT / "bpmn/unpaid_relaunch")
    renamed = {**files, "unpaid_relaunch.bpmn": files["unpaid_relaunch.bpmn"].replace(
        "Recouvrer l'impayé", "Recouvrer la dette")}
    v1 = SimpleNamespace(key="unpaid_relaunch", files=files, content_hash=definitions.content_hash(files))
    v2 = SimpleNamespace(key="unpaid_relaunch", files=renamed, content_hash=definitions.content_hash(renamed))
    run = engine.Run.start(v1, {"context": {}}, script_engine=engine.trial_engine([], trial.TRIAL_RESULTS))
    run.advance()
    [waiting] = run.workflow.get_tasks(state=engine.TaskState.WAITING)
    waiting.internal_data["event_value"] = "2026-12-01T06:30:00+00:00"
    assert run.migration_blockers(v2) == []  # the collection step is renamed, not reached
    run.migrate(v2)
    assert [(t.element_id, t.due_at.isoformat()) for t in run.snapshot().timers] == [
        ("wait", "2026-12-01T06:30:00+00:00")]
    assert run.workflow.spec.task_specs["collect"].bpmn_name == "Recouvrer la dette"


def test_a_modeler_s_rewrite_of_the_same_diagram_is_not_a_change():
    old = (ROOT / "bpmn/move_in/move_in.bpmn").read_text(encoding="utf-8")
    rewritten = old.replace('<bpmn:definitions ',
                            '<bpmn:definitions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ')
    rewritten = rewritten.replace("\n        <spiffworkflow:properties>", "<spiffworkflow:properties>")
    assert rewritten != old
    assert design.changes({"move_in.bpmn": old}, {"move_in.bpmn": rewritten}, "move_in") == [
        "Disposition du schéma seulement (aucune étape changée)"]


def test_a_draft_may_go_back_to_an_older_version_s_content(app_ctx):
    _deploy("move_in")
    analyst = AgentFactory(roles=[role_with("concepteur")])
    v1_files = dict(definitions.latest("move_in").files)
    draft = design.open_draft("move_in", agent=analyst)
    design.save_draft("move_in", agent=analyst, revision=draft.revision, diagram=v1_files["move_in.bpmn"].replace(
        "Choisir l'offre et le paiement", "Choisir l'offre"))
    assert design.deploy_draft("move_in", agent=analyst, revision=draft.revision).version == 2
    draft = design.open_draft("move_in", agent=analyst)
    design.save_draft("move_in", agent=analyst, revision=draft.revision, diagram=v1_files["move_in.bpmn"])
    reverted = design.deploy_draft("move_in", agent=analyst, revision=draft.revision)
    assert reverted.version == 3 and reverted.files == v1_files and definitions.latest("move_in").version == 3
    assert "Renommé : « Choisir l'offre » devient « Choisir l'offre et le paiement » (contract)" \
        in reverted.change_summary
    # Deploying the folder again changes nothing: its content is the latest version's.
    assert [d.created for d in definitions.deploy_directory(ROOT / "bpmn", ["move_in"])] == [False]


def test_two_saves_of_one_copy_and_an_import_over_a_draft_lose_no_work(app_ctx):
    from sqlalchemy import text

    _deploy("move_in")
    analyst = AgentFactory(roles=[role_with("concepteur")])
    draft = design.open_draft("move_in", agent=analyst)
    session.commit()
    seen = draft.revision
    # Another analyst's save lands between this one's read and its write.
    session.execute(text("UPDATE process_draft SET revision = revision + 1 WHERE key = 'move_in'"))
    with pytest.raises(design.StaleDraft, match="quelqu'un d'autre"):
        design.save_draft("move_in", agent=analyst, revision=seen, diagram=draft.files["move_in.bpmn"])
    session.rollback()
    session.execute(text("UPDATE process_draft SET revision = revision + 1 WHERE key = 'move_in'"))
    session.expire_all()
    with pytest.raises(design.StaleDraft, match="abandonner"):
        design.discard("move_in", revision=seen)
    xml = (ROOT / "tests/data/bpmn_foreign/bpmnio_supported.bpmn").read_text(encoding="utf-8")
    with pytest.raises(BusinessError, match="Un brouillon de « move_in » est en cours"):
        design.import_diagram("move_in", "", xml, agent=analyst)
    session.rollback()
    assert design.draft("move_in").files == definitions.latest("move_in").files


class _FormReader(HTMLParser):
    """The fields a browser would post from the page's form-editor form."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._inside = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._inside = a.get("id") == "form-editor"
        if not self._inside:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], "on"))
            else:
                self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a["value"]))

    def handle_data(self, data):
        if self._textarea:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._inside = False


def test_a_form_saved_untouched_through_the_page_keeps_every_rule(client, login_as):
    _deploy("move_in")
    login_as("concepteur")
    _open(client)
    before = json.loads(design.draft("move_in").files["identity.schema.json"])
    reader = _FormReader()
    reader.feed(_form_page(client, "move_in", "identity.schema.json"))
    saved = client.post("/conception/processus/move_in/formulaires/identity.schema.json",
                        data=MultiDict([*reader.fields, ("action", "save")]))
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    session.expire_all()
    after = json.loads(design.draft("move_in").files["identity.schema.json"])
    assert after["properties"]["identity_checked"]["const"] is True  # the check agents must tick
    assert after["properties"] == before["properties"] and set(after["required"]) == set(before["required"])


def test_a_service_step_needs_its_required_parameters_each_a_python_expression(app_ctx):
    diagram = (ROOT / "bpmn/move_in/move_in.bpmn").read_text(encoding="utf-8")
    files = {**definitions.read_folder(ROOT / "bpmn/move_in")}
    template = '''<spiffworkflow:parameter id="template" type="str" value="'move_in_welcome'" />'''
    without_template = diagram.replace(template, "")
    found = design.problems("move_in", {**files, "move_in.bpmn": without_template})
    assert [(f.element_id, f.blocking) for f in found] == [("welcome", True)]
    assert "attend template" in found[0].message
    broken = diagram.replace('''value="'move_in_welcome'"''', '''value="move_in welcome"''')
    found = design.problems("move_in", {**files, "move_in.bpmn": broken})
    assert any(f.element_id == "welcome" and "n'est pas une expression Python" in f.message for f in found)

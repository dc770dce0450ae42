"""The process designer's rules: the catalogue of processes, the analysts' drafts (diagram and forms
saved as they work), their validation with the deployment's own checks (every problem on its
element), the deployment of a draft as the next version with what changed, import and export.

A draft belongs to its process, one at a time: ``revision`` refuses a save made on a stale copy.
Running instances keep the version they started on; only new ones take the new version. Functions
flush; the caller commits (and rolls back on a refusal).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from app import clock
from app.contacts.models import ContactType
from app.db import session
from app.dossiers.models import DossierType
from app.errors import BusinessError
from app.processes import bpmn_import, definitions, engine
from app.processes.bpmn_import import BPMN, SPIFF, local_name, parse_bpmn
from app.processes.models import InstanceStatus, ProcessDefinition, ProcessDraft, ProcessInstance
from app.processes.record_steps import PARTY_FIELDS

KEY = bpmn_import.KEY  # a process id, as the import requires it
FORM_FILE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,80}\.json")


class StaleDraft(BusinessError):
    """The draft changed since the analyst loaded it (another tab, another analyst)."""


@dataclass(frozen=True)
class Version:
    id: int
    version: int
    deployed_by: str
    deployed_at: datetime
    running: int  # instances still active on this version
    change_summary: list[str]


@dataclass(frozen=True)
class CatalogueEntry:
    key: str
    name: str
    versions: list[Version]  # newest first
    draft: ProcessDraft | None
    contact_types: list[ContactType]
    dossier_types: list[DossierType]

    @property
    def latest(self) -> Version | None:
        return self.versions[0] if self.versions else None

    @property
    def running(self) -> int:
        return sum(v.running for v in self.versions)


def catalogue(key: str | None = None) -> list[CatalogueEntry]:
    """Every process (deployed or only drafted), or the one named: its versions with their running
    instances, its draft, and the contact types and classifications that start it."""
    running = dict(session.execute(
        select(ProcessInstance.definition_id, func.count()).where(ProcessInstance.status.in_(InstanceStatus.ACTIVE))
        .group_by(ProcessInstance.definition_id)).all())
    stmt = select(ProcessDefinition.id, ProcessDefinition.key, ProcessDefinition.name, ProcessDefinition.version,
                  ProcessDefinition.deployed_by, ProcessDefinition.deployed_at, ProcessDefinition.change_summary)
    drafts_stmt = select(ProcessDraft)
    if key is not None:
        stmt, drafts_stmt = stmt.where(ProcessDefinition.key == key), drafts_stmt.where(ProcessDraft.key == key)
    versions: dict[str, list[Version]] = {}
    names: dict[str, str] = {}
    for row in session.execute(stmt.order_by(ProcessDefinition.key, ProcessDefinition.version.desc())):
        versions.setdefault(row.key, []).append(Version(row.id, row.version, row.deployed_by, row.deployed_at,
                                                        running.get(row.id, 0), row.change_summary or []))
        names.setdefault(row.key, row.name)
    drafts = {d.key: d for d in session.execute(drafts_stmt).scalars()}
    keys = sorted(set(versions) | set(drafts))
    users: dict[str, tuple[list, list]] = {k: ([], []) for k in keys}
    for contact_type in session.execute(select(ContactType).where(ContactType.process_key.in_(keys))
                                        .order_by(ContactType.label)).scalars():
        users[contact_type.process_key][0].append(contact_type)
    for dossier_type in session.execute(select(DossierType).where(DossierType.process_key.in_(keys))
                                        .order_by(DossierType.label)).scalars():
        users[dossier_type.process_key][1].append(dossier_type)
    return [CatalogueEntry(key=k, name=drafts[k].name if k in drafts else names[k], versions=versions.get(k, []),
                           draft=drafts.get(k), contact_types=users[k][0], dossier_types=users[k][1])
            for k in keys]


def entry(key: str) -> CatalogueEntry | None:
    found = catalogue(key)
    return found[0] if found else None


def version(key: str, number: int) -> ProcessDefinition | None:
    return session.execute(select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.version == number)).scalar_one_or_none()


# --- Drafts -----------------------------------------------------------------------------------

def draft(key: str) -> ProcessDraft | None:
    return session.execute(select(ProcessDraft).where(ProcessDraft.key == key)).scalar_one_or_none()


def open_draft(key: str, *, agent) -> ProcessDraft:
    """The process's draft; a new one from its latest version when it has none."""
    existing = draft(key)
    if existing is not None:
        return existing
    latest = definitions.latest(key)
    if latest is None:
        raise BusinessError(_("Processus inconnu : %(key)s.", key=key))
    return _new_draft(key, latest.name, dict(latest.files), agent=agent, base_version=latest.version)


def _new_draft(key: str, name: str, files: dict[str, str], *, agent, base_version: int | None) -> ProcessDraft:
    now = clock.now()
    created = ProcessDraft(key=key, name=name[:200], files=files, base_version=base_version,
                           created_by_id=agent.id, updated_by_id=agent.id, created_at=now, updated_at=now)
    session.add(created)
    session.flush()
    return created


def check_key(key: str) -> str:
    key = (key or "").strip()
    if not KEY.fullmatch(key):
        raise BusinessError(_("Identifiant de processus invalide : des minuscules, chiffres et « _ », commençant "
                              "par une lettre (2 à 63 caractères)."), field="key")
    return key


def new_process(key: str, name: str, *, agent) -> ProcessDraft:
    """A draft for a new process: a start event joined to an end event, in one lane-less pool."""
    key = check_key(key)
    name = (name or "").strip()
    if not name:
        raise BusinessError(_("Donnez un nom au processus."), field="name")
    if definitions.latest(key) is not None or draft(key) is not None:
        raise BusinessError(_("Un processus « %(key)s » existe déjà.", key=key), field="key")
    return _new_draft(key, name, {f"{key}.bpmn": blank_diagram(key, name)}, agent=agent, base_version=None)


def blank_diagram(key: str, name: str) -> str:
    root = parse_bpmn(BLANK)
    process = root.find(f"{{{BPMN}}}process")
    process.set("id", key)
    process.set("name", name)
    root.find(f".//{{{BPMN}}}participant").set("processRef", key)
    root.find(f".//{{{BPMN}}}participant").set("name", name)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def _check_xml(text: str) -> None:
    try:
        parse_bpmn(text)
    except bpmn_import.PortabilityError as exc:
        raise BusinessError(str(exc)) from None


def _draft_at(key: str, revision: int, stale):
    """The draft as the analyst last read it: gone, or moved on since (stale(current) gives the
    message), is refused."""
    current = draft(key)
    if current is None:
        raise BusinessError(_("Ce brouillon n'existe plus (déployé ou abandonné) : rouvrez le processus."))
    if current.revision != revision:
        raise StaleDraft(stale(current))
    return current


def save_draft(key: str, *, agent, revision: int, diagram: str | None = None,
               forms: dict[str, str | None] | None = None, name: str | None = None) -> ProcessDraft:
    """Save the analyst's work: the diagram, forms (None deletes one), the name. Refused when the
    draft moved on since ``revision`` was read. The content may not deploy yet (``problems`` says)."""
    current = _draft_at(key, revision, lambda found: _(
        "Le brouillon a été modifié entre-temps par %(who)s : rechargez la page avant d'enregistrer.",
        who=found.updated_by.full_name if found.updated_by else "?"))
    files = dict(current.files)
    if diagram is not None:
        _check_size(f"{key}.bpmn", diagram)
        _check_xml(diagram)
        files[f"{key}.bpmn"] = diagram
    for filename, text in (forms or {}).items():
        if not FORM_FILE.fullmatch(filename):
            raise BusinessError(_("Nom de formulaire invalide : %(name)s (minuscules, chiffres, « _ », « - », "
                                  "terminé par .json).", name=filename), field="filename")
        if text is None:
            files.pop(filename, None)
            continue
        _check_size(filename, text)
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise BusinessError(_("%(name)s n'est pas du JSON valide (ligne %(line)s, colonne %(col)s).",
                                  name=filename, line=exc.lineno, col=exc.colno), field="raw") from None
        files[filename] = text
    if name is not None and name.strip():
        current.name = name.strip()[:200]
    current.files = files
    current.updated_by_id = agent.id
    current.updated_at = clock.now()
    try:
        session.flush()  # the revision moves on; a concurrent save of the same copy fails here
    except StaleDataError:
        raise StaleDraft(_("Le brouillon vient d'être enregistré par quelqu'un d'autre : rechargez la page avant "
                           "d'enregistrer.")) from None
    return current


def _check_size(filename: str, text: str) -> None:
    if len(text.encode("utf-8")) > definitions.MAX_FILE_BYTES:
        raise BusinessError(_("%(name)s : fichier trop gros (1 Mo au plus).", name=filename))


def discard(key: str, *, revision: int) -> None:
    """Abandon the draft, as the analyst last saw it (not a newer save by someone else)."""
    current = draft(key)
    if current is None:
        return  # already gone: nothing to abandon
    if current.revision != revision:
        raise StaleDraft(_("Le brouillon a été modifié entre-temps : rechargez la page avant de l'abandonner."))
    session.delete(current)
    session.flush()


# --- Validation and deployment ------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    element_id: str | None
    message: str
    blocking: bool = True


def problems(key: str, files: dict[str, str]) -> list[Finding]:
    """What keeps these files from deploying, each on its element (the deployment's own checks,
    nothing looser), plus what an imported diagram holds that Guichet ignores (not blocking)."""
    found: list[Finding] = []
    diagram = files.get(f"{key}.bpmn")
    if diagram is not None:
        try:
            found.extend(Finding(f.element_id, f.message, False) for f in bpmn_import.analyse(diagram)
                         if not f.blocking)
        except bpmn_import.PortabilityError:
            pass  # engine.check says it
    try:
        engine.check(key, files)
    except engine.ProcessError as exc:
        found.extend(Finding(p.element_id, p.message) for p in exc.problems)
    found.extend(_unavailable(diagram))
    return found


def _unavailable(diagram: str | None) -> list[Finding]:
    """Service tasks naming an operation the engine knows but this server does not run: the step
    would fail on its first instance."""
    root = _readable(diagram)
    if root is None:
        return []
    found = []
    required = {op.name: [p.name for p in op.parameters if p.required] for op in operations()}
    for task in root.iter(f"{{{BPMN}}}serviceTask"):
        for operator in task.iter(f"{{{SPIFF}}}serviceTaskOperator"):
            name = operator.get("id")
            given = {p.get("id") for p in operator.iter(f"{{{SPIFF}}}parameter") if (p.get("value") or "").strip()}
            missing = [p for p in required.get(name, []) if p not in given]
            if missing:
                found.append(Finding(task.get("id"), _("« %(task)s » : l'opération « %(operation)s » attend "
                                                       "%(names)s.", task=task.get("name") or task.get("id"),
                                                       operation=name, names=", ".join(missing))))
            if name in engine.OPERATIONS and not engine.operation_available(name):
                found.append(Finding(task.get("id"), _("« %(task)s » : l'opération « %(operation)s » n'est pas "
                                                       "disponible sur ce serveur ; l'étape échouerait.",
                                                       task=task.get("name") or task.get("id"), operation=name)))
    return found


@dataclass(frozen=True)
class Parameter:
    name: str
    label: str
    kind: str  # "letter" or "mail" (a template code), "bool", "text" (a quoted string), "expression", "choice"
    required: bool = False
    choices: tuple[str, ...] = ()  # a "choice": the values offered


@dataclass(frozen=True)
class Operation:
    name: str
    label: str
    help: str
    parameters: tuple[Parameter, ...]
    result: str  # the usual result variable


def operations() -> list[Operation]:
    """What a service task may do, with its parameters, for the designer's properties panel."""
    return [
        Operation("generate_document", _("Générer un courrier"),
                  _("Écrit le courrier du modèle dans le dossier (.docx, puis PDF)."),
                  (Parameter("template", _("Modèle de courrier"), "letter", True),), "letter"),
        Operation("send_mail", _("Envoyer un mail"),
                  _("Met le mail du modèle dans la file d'envoi, au destinataire choisi, avec un courrier joint."),
                  (Parameter("template", _("Modèle de mail"), "mail", True),
                   Parameter("attach", _("Courrier joint"), "letter"),
                   Parameter("to_field", _("Champ de formulaire portant l'adresse"), "text"),
                   Parameter("to", _("Adresse (expression)"), "expression"),
                   Parameter("if_email", _("Seulement si le client a une adresse"), "bool")), "mail"),
        Operation("create_affaire", _("Créer l'affaire dans le SI facturation"),
                  _("Met en file la création de l'affaire du dossier dans le système de facturation (une seule "
                    "fois)."), (), "affaire"),
        Operation("update_party_field", _("Mettre à jour un champ du client"),
                  _("Recopie une réponse dans la fiche du client (e-mail ou téléphone en premier, ou "
                    "vulnérabilité), avec les contrôles de la fiche."),
                  (Parameter("field", _("Champ du client"), "choice", True, PARTY_FIELDS),
                   Parameter("value", _("Valeur (expression)"), "expression", True)), "updated"),
        Operation("notify_agent", _("Prévenir un agent"), _("Signale l'étape à un agent."),
                  (Parameter("message", _("Message"), "text"),), "notified"),
        Operation("dunning_level", _("Niveau de relance"),
                  _("Applique le niveau de la procédure de relance (courrier, mail, garde-fous)."),
                  (Parameter("rank", _("Rang"), "expression", True),
                   Parameter("social_done", _("Accompagnement social fait"), "expression")), "step"),
        Operation("close_dossier", _("Clore le dossier"), _("Clôt le dossier avec une note finale."),
                  (Parameter("note", _("Note"), "text"),), "closed"),
        Operation("record_payment_plan", _("Enregistrer l'échéancier"),
                  _("Enregistre l'échéancier accepté : la relance du contrat est suspendue."), (), "plan"),
    ]


def operation_catalogue() -> list[dict]:
    return [{"name": op.name, "label": op.label, "help": op.help, "result": op.result,
             "available": engine.operation_available(op.name),
             "parameters": [{"name": p.name, "label": p.label, "kind": p.kind, "required": p.required,
                            "choices": list(p.choices)}
                            for p in op.parameters]}
            for op in operations()]


def deploy_draft(key: str, *, agent, revision: int) -> ProcessDefinition:
    """Deploy the draft as the process's next version, with what changed; the draft is gone after."""
    current = _draft_at(key, revision, lambda found: _(
        "Le brouillon a été modifié entre-temps : rechargez la page avant de déployer."))
    blocking = [f for f in problems(key, current.files) if f.blocking]
    if blocking:
        raise BusinessError(_("Le processus ne peut pas être déployé : %(count)s problème(s) à corriger.",
                              count=len(blocking)))
    previous = definitions.latest(key)
    deployed = definitions.deploy(key, dict(current.files), name=current.name,
                                  change_summary=changes(previous.files if previous else {}, current.files, key))
    if not deployed.created:
        raise BusinessError(_("Rien à déployer : le brouillon est identique à la version %(version)s.",
                              version=deployed.definition.version))
    definition = deployed.definition
    session.delete(current)
    session.flush()
    return definition


# --- Moving running instances to the latest version ---------------------------------------------

@dataclass(frozen=True)
class Candidate:
    instance_id: int
    version: int
    status: str
    started_at: datetime
    blockers: list[str]  # the changed steps it already reached: empty, it may move

    @property
    def movable(self) -> bool:
        return not self.blockers


MIGRATION_LIST_SIZE = 100


def migration_candidates(key: str) -> tuple[ProcessDefinition | None, list[Candidate], int]:
    """The running instances on an older version than the latest (the oldest first, up to
    MIGRATION_LIST_SIZE), each with what keeps it on its version; and how many there are in all.
    Only ids, versions and step names: no customer data for the analyst."""
    from app.processes import service

    latest = definitions.latest(key)
    if latest is None:
        return None, [], 0
    older = (select(ProcessInstance).join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
             .where(ProcessDefinition.key == key, ProcessDefinition.version < latest.version,
                    ProcessInstance.status.in_(InstanceStatus.ACTIVE)))
    total = session.execute(select(func.count()).select_from(older.subquery())).scalar_one()
    found = []
    for instance in session.execute(older.order_by(ProcessInstance.id).limit(MIGRATION_LIST_SIZE)).scalars():
        try:
            blockers = service.migration_blockers(instance, latest)
        except Exception as exc:  # noqa: BLE001 (a state that cannot be compared stays where it is)
            blockers = [str(exc)[:200]]
        found.append(Candidate(instance.id, instance.definition.version, instance.status, instance.started_at,
                               blockers))
    return latest, found, total


# --- What changed between two versions ----------------------------------------------------------

_STRUCTURE = {"incoming", "outgoing", "flowNodeRef"}
_HOLDERS = {"process", "subProcess", "laneSet", "lane", "childLaneSet"}  # what holds elements, not their settings


def _readable(diagram: str | None):
    """The diagram's root, or None when there is none or it does not read (engine.check says why)."""
    if not diagram:
        return None
    try:
        return parse_bpmn(diagram)
    except bpmn_import.PortabilityError:
        return None


def _elements(diagram: str | None) -> dict[str, tuple[str, str, str]]:
    """The process's elements: id → (kind, name, what it does, as canonical text)."""
    root = _readable(diagram)
    if root is None:
        return {}
    found = {}
    for process in root.iter(f"{{{BPMN}}}process"):
        for element in process.iter(f"{{{BPMN}}}*"):
            if element is process or element.get("id") is None or local_name(element.getparent().tag) not in _HOLDERS:
                continue
            kind = local_name(element.tag)
            if kind in ("laneSet", "incoming", "outgoing"):
                continue
            body = []
            for attribute, value in sorted(element.attrib.items()):
                if attribute not in ("id", "name"):
                    body.append(f"@{local_name(attribute)}={value}")
            for child in element:
                if local_name(child.tag) in _STRUCTURE or (kind == "subProcess" and child.get("id")):
                    continue
                body.append(_canonical(child))
            found[element.get("id")] = (kind, element.get("name") or "", "\n".join(body))
    return found


KINDS = {
    "userTask": "tâche utilisateur", "serviceTask": "tâche de service", "scriptTask": "script",
    "manualTask": "tâche manuelle", "task": "tâche", "startEvent": "début", "endEvent": "fin",
    "intermediateCatchEvent": "événement", "intermediateThrowEvent": "événement", "boundaryEvent": "événement",
    "exclusiveGateway": "branchement", "parallelGateway": "branchement", "inclusiveGateway": "branchement",
    "eventBasedGateway": "branchement", "sequenceFlow": "liaison", "lane": "couloir", "subProcess": "sous-processus",
}


def _canonical(element) -> str:
    """An element's settings as text, whatever the prefixes, namespace declarations, indentation or
    attribute order a tool writes (a modeler's save must not read as a change)."""
    if not isinstance(element.tag, str):
        return ""
    attributes = ",".join(f"{k}={v}" for k, v in sorted(element.attrib.items()))
    children = "".join(_canonical(child) for child in element)
    return f"<{element.tag}[{attributes}]{(element.text or '').strip()}{children}>"


def _label(element_id: str, kind: str, name: str) -> str:
    what = KINDS.get(kind, kind)
    return f"{what} « {name} » ({element_id})" if name else f"{what} {element_id}"


def changes(old: dict[str, str], new: dict[str, str], key: str) -> list[str]:
    """What a deployment changes, in sentences: steps added, removed, renamed or changed, links,
    forms, and the layout alone."""
    before, after = _elements(old.get(f"{key}.bpmn")), _elements(new.get(f"{key}.bpmn"))
    lines: list[str] = []
    flows = Counter()
    for element_id, (kind, name, body) in after.items():
        if element_id not in before:
            if kind == "sequenceFlow":
                flows["added"] += 1
            else:
                lines.append(_("Ajouté : %(what)s", what=_label(element_id, kind, name)))
            continue
        old_kind, old_name, old_body = before[element_id]
        if old_kind != kind:
            lines.append(_("Type changé : %(what)s (était : %(old)s)", what=_label(element_id, kind, name),
                           old=KINDS.get(old_kind, old_kind)))
        elif old_name != name and kind != "sequenceFlow":
            lines.append(_("Renommé : « %(old)s » devient « %(new)s » (%(id)s)", old=old_name, new=name,
                           id=element_id))
        if old_kind == kind and old_body != body:
            if kind == "sequenceFlow":
                lines.append(_("Condition ou extrémités changées : %(what)s", what=_label(element_id, kind, name)))
            else:
                lines.append(_("Paramètres changés : %(what)s", what=_label(element_id, kind, name)))
    for element_id, (kind, name, _body) in before.items():
        if element_id not in after:
            if kind == "sequenceFlow":
                flows["removed"] += 1
            else:
                lines.append(_("Supprimé : %(what)s", what=_label(element_id, kind, name)))
    if flows["added"] or flows["removed"]:
        lines.append(_("Liaisons : %(added)s ajoutée(s), %(removed)s supprimée(s)", added=flows["added"],
                       removed=flows["removed"]))
    for filename in sorted(set(old) | set(new)):
        if filename == f"{key}.bpmn":
            continue
        if filename not in old:
            lines.append(_("Formulaire ajouté : %(name)s", name=filename))
        elif filename not in new:
            lines.append(_("Formulaire supprimé : %(name)s", name=filename))
        elif _json(old[filename]) != _json(new[filename]):
            lines.append(_("Formulaire modifié : %(name)s", name=filename))
    if not lines and old.get(f"{key}.bpmn") != new.get(f"{key}.bpmn"):
        lines.append(_("Disposition du schéma seulement (aucune étape changée)"))
    if not old:
        lines.insert(0, _("Première version"))
    return lines


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --- Import and export --------------------------------------------------------------------------

def import_diagram(key: str, name: str, xml: str, *, agent) -> tuple[ProcessDraft, list[str], list[Finding]]:
    """Make a diagram from another modeler this process's draft (a new process, or the next
    version of an existing one): returns the draft, what the import adapted, and what remains to
    fix or is ignored, on its element."""
    key = check_key(key)
    _check_size(f"{key}.bpmn", xml)
    try:
        adopted = bpmn_import.adopt(xml, key, (name or "").strip() or None)
    except bpmn_import.PortabilityError as exc:
        raise BusinessError(str(exc), field="file") from None
    latest = definitions.latest(key)
    current = draft(key)
    if current is not None:  # an import never overwrites an analyst's work in progress
        raise BusinessError(_("Un brouillon de « %(key)s » est en cours : déployez-le ou abandonnez-le avant "
                              "d'importer un diagramme à sa place.", key=key), field="key")
    files = dict(latest.files if latest else {})
    files[f"{key}.bpmn"] = adopted.xml
    for filename, text in adopted.forms.items():
        files.setdefault(filename, text)
    label = (name or "").strip() or (latest.name if latest else key)
    current = _new_draft(key, label, files, agent=agent, base_version=latest.version if latest else None)
    return current, adopted.notes, problems(key, files)


BLANK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
                  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
                  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
                  id="definitions" targetNamespace="http://guichet.example/bpmn">
  <bpmn:collaboration id="collaboration">
    <bpmn:participant id="pool" name="" processRef="KEY" />
  </bpmn:collaboration>
  <bpmn:process id="KEY" name="" isExecutable="true">
    <bpmn:startEvent id="start" name="Début"><bpmn:outgoing>flow_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="flow_start" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end" name="Fin"><bpmn:incoming>flow_start</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram">
    <bpmndi:BPMNPlane id="plane" bpmnElement="collaboration">
      <bpmndi:BPMNShape id="pool_di" bpmnElement="pool" isHorizontal="true">
        <dc:Bounds x="0" y="0" width="600" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="100" y="82" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="480" y="82" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="flow_start_di" bpmnElement="flow_start">
        <di:waypoint x="136" y="100" /><di:waypoint x="480" y="100" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""

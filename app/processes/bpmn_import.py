"""Diagrams from other modelers (Camunda Modeler, Signavio, bpmn.io…): what in them Guichet's engine
cannot run, element by element (``analyse``), and the file made a Guichet process (``adopt``).

Guichet runs start, end, intermediate and boundary events (none, timer, message, error,
terminate), user, manual, plain, Python script and service tasks (one of the engine's operations),
exclusive, parallel, inclusive and event-based gateways, embedded sub-processes, lanes, and
conditions written in Python. Anything else is reported at import, on its element, with what to do
instead: it would otherwise fail on the first instance that reaches it. Forms from other tools
(Camunda's formKey, Zeebe's form definitions) are reported as ignored, not as blocking: the user
task gets an empty form to fill in the form editor. The file is read without DTDs, entities or
network access; nothing in it is run.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from lxml import etree

from app.processes.engine import OPERATIONS

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
ZEEBE = "http://camunda.org/schema/zeebe/1.0"
KEY = re.compile(r"[a-z][a-z0-9_]{1,62}")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

NODES = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "userTask",
         "manualTask", "task", "scriptTask", "serviceTask", "exclusiveGateway", "parallelGateway", "inclusiveGateway",
         "eventBasedGateway", "sequenceFlow", "subProcess"}
HARMLESS = {"laneSet", "documentation", "extensionElements", "textAnnotation", "association", "group", "dataObject",
            "dataObjectReference", "property", "incoming", "outgoing", "ioSpecification"}
EVENTS = {"timerEventDefinition", "messageEventDefinition", "errorEventDefinition", "terminateEventDefinition"}
WHY = {
    "complexGateway": _l("branchement complexe : remplacez-le par un branchement inclusif ou exclusif"),
    "callActivity": _l("appel d'un autre processus : intégrez ses étapes dans un sous-processus"),
    "transaction": _l("transaction : remplacez-la par un sous-processus"),
    "adHocSubProcess": _l("sous-processus ad hoc : remplacez-le par un sous-processus"),
    "sendTask": _l("tâche d'envoi : utilisez une tâche de service « Envoyer un mail »"),
    "receiveTask": _l("tâche de réception : utilisez un événement intermédiaire de message"),
    "businessRuleTask": _l("tâche de règle métier (DMN) : la table de décision ne s'importe pas avec le diagramme"),
    "dataStoreReference": _l("magasin de données : Guichet n'en a pas"),
    "signalEventDefinition": _l("événement signal : utilisez un message"),
    "escalationEventDefinition": _l("événement d'escalade : utilisez une erreur ou un message"),
    "conditionalEventDefinition": _l("événement conditionnel : utilisez un branchement"),
    "compensateEventDefinition": _l("compensation : Guichet ne défait pas les étapes"),
    "linkEventDefinition": _l("événement de lien : reliez les étapes par une liaison"),
    "cancelEventDefinition": _l("annulation de transaction : Guichet n'a pas de transaction"),
    "multiInstanceLoopCharacteristics": _l("étape multi-instance : Guichet ne la prend pas en charge ; dessinez "
                                           "une boucle avec un branchement"),
    "standardLoopCharacteristics": _l("boucle sur l'étape : dessinez la boucle avec un branchement"),
}
_EXPRESSION_LANGUAGE = re.compile(r"^\s*(\$\{|#\{|=)")
# What other tools write bare in a timer and our engine reads as a Python expression: quoted on import.
_BARE_ISO = re.compile(r"(R\d*/)?P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}(T[0-9:.]+)?(Z|[+-]\d{2}:\d{2})?")
_IMPLEMENTATION = ("class", "expression", "delegateExpression", "type")


class PortabilityError(ValueError):
    """A file that cannot be imported at all: not BPMN, no process, several processes…"""


@dataclass(frozen=True)
class Finding:
    element_id: str | None
    element_name: str | None
    kind: str  # the element's BPMN tag, without its namespace
    message: str
    blocking: bool = True  # False: ignored by Guichet, the process still runs


@dataclass(frozen=True)
class Adopted:
    xml: str
    forms: dict[str, str]  # new form files for the process folder: name → JSON text
    notes: list[str]  # what adopt changed, in sentences


def local_name(tag) -> str:
    """An element's or attribute's name without its namespace ("" for a comment)."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_bpmn(xml: str):
    """The document's root, read safely; PortabilityError when it is not readable BPMN 2.0."""
    try:
        root = etree.fromstring(xml.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise PortabilityError(_("Le fichier n'est pas du XML lisible : %(error)s", error=str(exc))) from None
    if root.tag != f"{{{BPMN}}}definitions":
        raise PortabilityError(_("Le fichier n'est pas un diagramme BPMN 2.0 (élément racine « definitions » "
                                 "attendu)."))
    if root.getroottree().docinfo.doctype:
        raise PortabilityError(_("Le fichier déclare un DOCTYPE : refusé."))
    return root


def _process(root):
    """The one process holding steps (a collaboration's other pools are only participants)."""
    processes = [p for p in root.findall(f"{{{BPMN}}}process")
                 if any(local_name(child.tag) in NODES | set(WHY) for child in p)]
    if not processes:
        raise PortabilityError(_("Le diagramme ne contient aucun processus avec des étapes."))
    if len(processes) > 1:
        raise PortabilityError(_("Le diagramme contient %(count)s processus avec des étapes (%(ids)s) : Guichet en "
                                 "importe un par fichier.", count=len(processes),
                                 ids=", ".join(p.get("id") or "?" for p in processes)))
    return processes[0]


def _finding(element, message: str, *, blocking: bool = True) -> Finding:
    name = element.get("name")
    where = f"« {name} » ({element.get('id')})" if name else (element.get("id") or local_name(element.tag))
    return Finding(element.get("id"), name, local_name(element.tag), f"{where} : {message}", blocking)


def _python_expression(text: str) -> str | None:
    """Why a condition is not a Python expression, or None."""
    if _EXPRESSION_LANGUAGE.match(text):
        return _("expression JUEL/FEEL « %(text)s » : écrivez-la en Python (par exemple amount > 100)",
                 text=text.strip())
    try:
        compile(text.strip(), "<condition>", "eval")
    except SyntaxError as exc:
        return _("la condition « %(text)s » n'est pas une expression Python (%(error)s)", text=text.strip(),
                 error=exc.msg)
    return None


def _check_element(element) -> list[Finding]:
    kind = local_name(element.tag)
    found = []
    if kind in WHY:
        return [_finding(element, str(WHY[kind]))]
    if kind not in NODES:
        return [] if kind in HARMLESS else [_finding(element, _("élément BPMN « %(kind)s » que Guichet ne sait pas "
                                                                "exécuter", kind=kind))]
    for child in element:
        child_kind = local_name(child.tag)
        if child_kind.endswith("EventDefinition") and child_kind not in EVENTS:
            found.append(_finding(element, str(WHY.get(child_kind, _("événement non pris en charge")))))
        if child_kind.endswith("LoopCharacteristics"):
            found.append(_finding(element, str(WHY[child_kind])))
        if child_kind == "timerEventDefinition":
            for expression in child:
                if expression.text and _EXPRESSION_LANGUAGE.match(expression.text):
                    found.append(_finding(element, _("minuteur en JUEL/FEEL « %(text)s » : écrivez une durée ISO "
                                                     "8601 entre guillemets, par exemple \"P15D\"",
                                                     text=expression.text.strip())))
    if kind == "scriptTask":
        language = (element.get("scriptFormat") or "python").lower()
        if language not in ("python", "text/x-python", "py"):
            found.append(_finding(element, _("script en %(language)s : Guichet n'exécute que des scripts Python",
                                             language=element.get("scriptFormat"))))
    if kind == "serviceTask":
        operator = element.find(f".//{{{SPIFF}}}serviceTaskOperator")
        vendor = [f"camunda:{a}" for a in _IMPLEMENTATION if element.get(f"{{{CAMUNDA}}}{a}")]
        vendor += ["zeebe:taskDefinition"] if element.find(f".//{{{ZEEBE}}}taskDefinition") is not None else []
        if operator is None:
            detail = _(" (son implémentation %(what)s ne s'exécute pas dans Guichet)", what=", ".join(vendor)) \
                if vendor else ""
            found.append(_finding(element, _("aucune opération Guichet%(detail)s : choisissez-en une dans le panneau "
                                             "des propriétés", detail=detail)))
        elif operator.get("id") not in OPERATIONS:
            found.append(_finding(element, _("opération inconnue « %(name)s »", name=operator.get("id"))))
    if kind == "userTask":
        vendor_form = element.get(f"{{{CAMUNDA}}}formKey") or element.find(f".//{{{CAMUNDA}}}formData") is not None \
            or element.find(f".//{{{ZEEBE}}}formDefinition") is not None
        if vendor_form:
            found.append(_finding(element, _("formulaire Camunda ignoré : créez le formulaire dans l'éditeur de "
                                             "formulaires"), blocking=False))
    if kind == "sequenceFlow":
        condition = element.find(f"{{{BPMN}}}conditionExpression")
        if condition is not None and (condition.text or "").strip():
            why = _python_expression(condition.text)
            if why:
                found.append(_finding(element, why))
    found.extend(_finding(element, why) for why in _code_problems(element))
    return found


# Scripts, conditions, parameters and timers run in the server with only the engine's listed
# functions; what reaches Python's internals through attributes (().__class__.__base__…) or string
# formatting ("{0.__class__}".format) is refused before anything runs, at deployment and test run.
_FORBIDDEN_ATTRIBUTES = {"format", "format_map", "mro"}


def unsafe(code: str, mode: str) -> str | None:
    """Why this script or expression may not run, or None (a syntax error is reported elsewhere)."""
    try:
        tree = ast.parse(code.strip(), mode=mode)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr in _FORBIDDEN_ATTRIBUTES):
            return _("l'attribut « %(name)s » n'est pas permis dans un script", name=node.attr)
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            return _("le nom « %(name)s » n'est pas permis dans un script", name=node.id)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return _("un script n'importe pas de module")
    return None


def _code_problems(element) -> list[str]:
    """The code an element carries that may not run: its script, condition, pre/post scripts,
    service parameters and timer expressions."""
    pieces = []
    for tag, mode in ((f"{{{BPMN}}}script", "exec"), (f"{{{BPMN}}}conditionExpression", "eval"),
                      (f"{{{SPIFF}}}preScript", "exec"), (f"{{{SPIFF}}}postScript", "exec"),
                      (f"{{{BPMN}}}timeDuration", "eval"), (f"{{{BPMN}}}timeDate", "eval"),
                      (f"{{{BPMN}}}timeCycle", "eval")):
        pieces += [(node.text or "", mode) for node in element.iter(tag)]
    pieces += [(node.get("value") or "", "eval") for node in element.iter(f"{{{SPIFF}}}parameter")]
    found = [why for text, mode in pieces if text.strip() and (why := unsafe(text, mode))]
    for parameter in element.iter(f"{{{SPIFF}}}parameter"):  # evaluated when the step runs: checked now
        value = (parameter.get("value") or "").strip()
        try:
            compile(value, "<parameter>", "eval")
        except SyntaxError:
            found.append(_("le paramètre « %(name)s » n'est pas une expression Python (« %(value)s » ; un texte "
                           "s'écrit entre guillemets)", name=parameter.get("id"), value=value))
    return found


def analyse(xml: str) -> list[Finding]:
    """What in the diagram Guichet cannot run (blocking) or ignores, in document order."""
    process = _process(parse_bpmn(xml))
    found = []
    for element in process.iter():
        if element is process or not isinstance(element.tag, str) or not element.tag.startswith(f"{{{BPMN}}}"):
            continue
        parent = element.getparent()
        if local_name(parent.tag) not in ("process", "subProcess"):
            continue  # a child of a step is looked at with its step
        found.extend(_check_element(element))
    return found


def adopt(xml: str, key: str, name: str | None = None) -> Adopted:
    """The diagram as this process's ``<key>.bpmn``: its process id is the key, it is executable, each
    user task without a form gets an empty one to fill in the form editor."""
    if not KEY.fullmatch(key or ""):
        raise PortabilityError(_("Identifiant de processus invalide : des minuscules, chiffres et « _ », "
                                 "commençant par une lettre (2 à 63 caractères)."))
    root = parse_bpmn(xml)
    process = _process(root)
    notes = []
    old = process.get("id")
    if old != key:
        process.set("id", key)
        for element in root.iter():
            for attribute in ("processRef", "bpmnElement"):
                if element.get(attribute) == old:
                    element.set(attribute, key)
        notes.append(_("Processus « %(old)s » renommé « %(key)s ».", old=old, key=key))
    if name:
        process.set("name", name)
    if process.get("isExecutable") != "true":
        process.set("isExecutable", "true")
        notes.append(_("Processus marqué exécutable."))
    for definition in process.iter(f"{{{BPMN}}}timerEventDefinition"):
        for expression in definition:
            text = (expression.text or "").strip()
            if _BARE_ISO.fullmatch(text):
                expression.text = f'"{text}"'
                event = definition.getparent()
                notes.append(_("« %(event)s » : minuteur %(text)s mis entre guillemets (une valeur ISO 8601, pas une "
                               "expression).", event=event.get("name") or event.get("id"), text=text))
    if SPIFF not in root.nsmap.values():
        root = _with_spiff_namespace(root)
        process = _process(root)
    forms = {}
    for task in process.iter(f"{{{BPMN}}}userTask"):
        if task.find(f".//{{{SPIFF}}}property[@name='formJsonSchemaFilename']") is not None:
            continue
        stem = re.sub(r"[^a-z0-9_]", "_", (task.get("id") or "").lower()).strip("_")[:60] or "form"
        filename = f"{stem}.schema.json"
        if filename in forms:  # two ids that read the same once lower-cased
            filename = f"{stem}_{len(forms) + 1}.schema.json"
        extensions = task.find(f"{{{BPMN}}}extensionElements")
        if extensions is None:
            extensions = etree.Element(f"{{{BPMN}}}extensionElements")
            documentation = task.find(f"{{{BPMN}}}documentation")
            task.insert(0 if documentation is None else 1, extensions)
        properties = extensions.find(f"{{{SPIFF}}}properties")
        if properties is None:
            properties = etree.SubElement(extensions, f"{{{SPIFF}}}properties")
        etree.SubElement(properties, f"{{{SPIFF}}}property", name="formJsonSchemaFilename", value=filename)
        forms[filename] = json.dumps({"type": "object", "title": task.get("name") or task.get("id"),
                                      "properties": {}}, ensure_ascii=False, indent=2)
        notes.append(_("« %(task)s » : formulaire vide %(file)s ajouté, à compléter dans l'éditeur de formulaires.",
                       task=task.get("name") or task.get("id"), file=filename))
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
    return Adopted(text, forms, notes)


def _with_spiff_namespace(root):
    """The same document with the spiffworkflow prefix declared on its root (lxml cannot add a
    namespace declaration in place)."""
    nsmap = {**root.nsmap, "spiffworkflow": SPIFF}
    copy = etree.Element(root.tag, nsmap=nsmap, attrib=dict(root.attrib))
    copy.text = root.text
    for child in root:
        copy.append(child)
    return copy

"""Diagrams drawn in other modelers (Camunda Modeler 7 and 8, Signavio, bpmn.io): what Guichet cannot run.

``analyse`` reads a ``.bpmn`` file and lists, element by element and in document order, what our
engine would refuse or fail on: constructs it has no implementation for (complex gateways, call
activities, transactions, send and receive tasks, loops, signal or escalation events…), scripts in
another language than Python, service tasks implemented by Java classes or Zeebe workers instead of
one of our operations, conditions and timers written in JUEL or FEEL. Camunda forms are reported
too, as not blocking: the process runs, the form is to be drawn again in our form editor.

``adopt`` makes the file a process folder's ``<key>.bpmn``: the one process holding steps takes the
key as its id and becomes executable, and each user task without a form gets an empty one (returned
with the diagram) to complete in the form editor. It does not fix what ``analyse`` reports.

The file is only read: no DTD, no entity, no network access; nothing in it is evaluated (conditions
are compiled to check their syntax, never run). Vendor extension elements and attributes
(``camunda:*``, ``zeebe:*``, ``signavio:*``) are left in place: SpiffWorkflow's parser ignores them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lxml import etree

from app.processes.engine import OPERATIONS

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
ZEEBE = "http://camunda.org/schema/zeebe/1.0"

KEY = re.compile(r"^[a-z][a-z0-9_]{1,62}$")

# Flow elements our engine runs, and what may sit beside them in a process without being run.
RUNNABLE = frozenset({
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "userTask", "manualTask", "task", "scriptTask", "serviceTask",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
    "subProcess", "sequenceFlow",
})
INERT = frozenset({
    "documentation", "extensionElements", "laneSet", "textAnnotation", "association", "group",
    "dataObject", "dataObjectReference", "property", "ioSpecification", "auditing", "monitoring",
})
SUPPORTED_EVENTS = frozenset({
    "timerEventDefinition", "messageEventDefinition", "errorEventDefinition", "terminateEventDefinition",
})

# What to say about each construct we cannot run: what it is, then what to draw instead.
UNSUPPORTED = {
    "complexGateway": "branchement complexe non pris en charge : remplacez-le par un branchement inclusif "
                      "ou exclusif avec des conditions",
    "callActivity": "appel d'un autre processus (call activity) non pris en charge : reprenez ses étapes "
                    "dans un sous-processus",
    "transaction": "transaction non prise en charge : remplacez-la par un sous-processus",
    "adHocSubProcess": "sous-processus ad hoc non pris en charge : remplacez-le par un sous-processus "
                       "ordonné par des liaisons",
    "sendTask": "tâche d'envoi non prise en charge : utilisez une tâche de service avec l'opération "
                "send_mail, ou un événement intermédiaire de message",
    "receiveTask": "tâche de réception non prise en charge : utilisez un événement intermédiaire qui "
                   "attend un message",
    "businessRuleTask": "tâche de règle métier : Guichet n'importe pas encore la table de décision (DMN) "
                        "avec le diagramme ; remplacez-la par un branchement ou un script Python",
    "dataStoreReference": "magasin de données non pris en charge : retirez-le et gardez les données dans "
                          "les variables du processus",
    "signalEventDefinition": "événement signal non pris en charge : utilisez un événement de message",
    "escalationEventDefinition": "événement d'escalade non pris en charge : utilisez un événement d'erreur "
                                 "ou de message",
    "conditionalEventDefinition": "événement conditionnel non pris en charge : utilisez un branchement "
                                  "avec une condition, ou un minuteur",
    "compensateEventDefinition": "compensation non prise en charge : dessinez les étapes d'annulation "
                                 "comme un chemin du processus",
    "linkEventDefinition": "événement de lien non pris en charge : reliez les étapes par une liaison",
    "cancelEventDefinition": "annulation de transaction non prise en charge : utilisez un événement "
                             "d'erreur ou de fin",
    "multiInstanceLoopCharacteristics": "étape multi-instance non prise en charge : dessinez une seule "
                                        "étape, ou une boucle courte avec un branchement",
    "standardLoopCharacteristics": "boucle sur l'étape non prise en charge : dessinez la boucle avec un "
                                   "branchement exclusif",
}

PYTHON_SCRIPTS = frozenset({"", "python", "python3", "py", "text/x-python", "application/x-python"})
# JUEL (${…}, #{…}) and FEEL (= …), Camunda's expression languages.
VENDOR_EXPRESSION = re.compile(r"^\s*(\$\{|#\{|=)")
CAMUNDA_IMPLEMENTATION = ("class", "expression", "delegateExpression")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          remove_comments=False)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class PortabilityError(ValueError):
    """A file that cannot be imported at all (not readable XML, not BPMN, no process or several)."""


@dataclass(frozen=True)
class Finding:
    element_id: str | None
    element_name: str | None
    kind: str  # local name of the reported element's BPMN tag, e.g. "complexGateway", "serviceTask"
    message: str  # what Guichet cannot run, and what to do instead; names the element
    blocking: bool = True  # False: Guichet ignores it, the process still runs


@dataclass(frozen=True)
class Adopted:
    xml: str  # the diagram, made ours
    forms: dict[str, str]  # new form files for the process folder: file name → JSON text
    notes: list[str]  # what adopt changed


def _local(element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _is_bpmn(element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace == BPMN


def _read(xml: str | bytes):
    """The document's root, read without DTD, entities or network; PortabilityError otherwise."""
    if isinstance(xml, str):
        # lxml refuses a str that declares an encoding: the text is already decoded, drop the declaration.
        xml = _DECLARATION.sub("", xml.lstrip("\ufeff"), count=1).encode("utf-8")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise PortabilityError("Le fichier déclare une DTD ou des entités (<!DOCTYPE>, <!ENTITY>) : refusé par "
                               "sécurité. Exportez à nouveau le diagramme depuis le modeleur.")
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise PortabilityError(f"Le fichier n'est pas un XML lisible (ligne {exc.lineno}) : {exc.msg}") from None
    if root.getroottree().docinfo.internalDTD is not None or root.getroottree().docinfo.doctype:
        raise PortabilityError("Le fichier déclare une DTD : refusé par sécurité.")
    if root.tag != f"{{{BPMN}}}definitions":
        raise PortabilityError("Le fichier n'est pas un diagramme BPMN 2.0 (élément racine « definitions » de "
                               f"l'espace de noms {BPMN} attendu, « {etree.QName(root).localname} » trouvé).")
    return root


def _has_steps(process) -> bool:
    return any(_is_bpmn(child) and (_local(child) in RUNNABLE | set(UNSUPPORTED)) and _local(child) != "sequenceFlow"
               for child in process)


def _process(root):
    """The process to import: the one holding steps (a collaboration's other pools are often empty);
    among several, the one marked executable."""
    processes = [p for p in root.findall(f"{{{BPMN}}}process") if _has_steps(p)]
    if len(processes) > 1:
        executable = [p for p in processes if p.get("isExecutable") == "true"]
        if len(executable) == 1:
            return executable[0]
        names = ", ".join(_label(p) for p in (executable or processes))
        which = "exécutables" if executable else "avec des étapes"
        raise PortabilityError(f"Le diagramme contient {len(executable or processes)} processus {which} ({names}) : "
                               "Guichet en importe un par fichier. Enregistrez chaque pool dans son propre fichier.")
    if not processes:
        raise PortabilityError("Le diagramme ne contient aucun processus avec des étapes (événements, tâches, "
                               "branchements).")
    return processes[0]


def _label(element) -> str:
    name = (element.get("name") or "").strip()
    ident = element.get("id") or _local(element)
    return f"« {name} » ({ident})" if name else ident


def _finding(element, message: str, *, blocking: bool = True) -> Finding:
    return Finding(element_id=element.get("id"), element_name=(element.get("name") or "").strip() or None,
                   kind=_local(element), message=f"{_label(element)} : {message}.", blocking=blocking)


def _expression_problem(text: str, what: str) -> str | None:
    """Why a condition is not a Python expression our engine can evaluate, or None."""
    text = text.strip()
    if VENDOR_EXPRESSION.match(text):
        return (f"{what} « {text} » est écrite en JUEL ou FEEL (langages de Camunda) : écrivez-la en Python, "
                "par exemple amount > 100")
    try:
        compile(text, "<condition>", "eval")  # syntax only: never evaluated here
    except SyntaxError as exc:
        return (f"{what} « {text} » n'est pas une expression Python ({exc.msg}) : écrivez-la en Python, "
                "par exemple amount > 100 ou status == \"payé\"")
    return None


def _check_events(element) -> list[Finding]:
    found = []
    for child in element:
        kind = _local(child)
        if not _is_bpmn(child) or not kind.endswith("EventDefinition"):
            continue
        if kind not in SUPPORTED_EVENTS:
            found.append(_finding(element, UNSUPPORTED.get(kind, f"événement « {kind} » non pris en charge")))
        elif kind == "timerEventDefinition":
            for expression in child:
                text = (expression.text or "").strip()
                if _is_bpmn(expression) and VENDOR_EXPRESSION.match(text):
                    found.append(_finding(element, f"le minuteur « {text} » est écrit en JUEL ou FEEL : écrivez une "
                                                   "date, une durée ou un cycle ISO 8601 entre guillemets (par "
                                                   "exemple \"P15D\"), ou une expression Python"))
    return found


def _check_loops(element) -> list[Finding]:
    return [_finding(element, UNSUPPORTED[_local(child)]) for child in element
            if _is_bpmn(child) and _local(child) in ("multiInstanceLoopCharacteristics", "standardLoopCharacteristics")]


def _check_script(element) -> list[Finding]:
    language = (element.get("scriptFormat") or "").strip()
    if language.lower() not in PYTHON_SCRIPTS:
        return [_finding(element, f"script en {language} : Guichet n'exécute que des scripts Python ; "
                                  "réécrivez-le en Python")]
    if element.get(f"{{{CAMUNDA}}}resource") and element.find(f"{{{BPMN}}}script") is None:
        return [_finding(element, "script externe (camunda:resource) : écrivez le script Python dans la tâche")]
    return []


def _check_service(element) -> list[Finding]:
    vendor = [f"camunda:{name}" for name in CAMUNDA_IMPLEMENTATION if element.get(f"{{{CAMUNDA}}}{name}")]
    if element.get(f"{{{CAMUNDA}}}type") == "external":
        vendor.append('camunda:type="external"')
    if element.find(f"{{{BPMN}}}extensionElements/{{{CAMUNDA}}}connector") is not None:
        vendor.append("camunda:connector")
    if element.find(f"{{{BPMN}}}extensionElements/{{{ZEEBE}}}taskDefinition") is not None:
        vendor.append("zeebe:taskDefinition")
    operator = element.find(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}serviceTaskOperator")
    operation = operator.get("id") if operator is not None else None
    choose = f"choisissez une de nos opérations ({', '.join(OPERATIONS)}) dans le panneau des propriétés du concepteur"
    if operation in OPERATIONS:
        return []
    if vendor:
        return [_finding(element, f"implémentation {', '.join(vendor)} que Guichet ne peut pas exécuter : {choose}")]
    if operation:
        return [_finding(element, f"opération inconnue « {operation} » : {choose}")]
    return [_finding(element, f"aucune opération : {choose}")]


def _check_user_task(element) -> list[Finding]:
    extensions = element.find(f"{{{BPMN}}}extensionElements")
    camunda_form = element.get(f"{{{CAMUNDA}}}formKey") or element.get(f"{{{CAMUNDA}}}formRef") or (
        extensions is not None and (extensions.find(f"{{{CAMUNDA}}}formData") is not None
                                    or extensions.find(f"{{{ZEEBE}}}formDefinition") is not None))
    if camunda_form:
        return [_finding(element, "formulaire Camunda ignoré : créez le formulaire dans l'éditeur de formulaires",
                         blocking=False)]
    return []


def _check_flow(element) -> list[Finding]:
    condition = element.find(f"{{{BPMN}}}conditionExpression")
    if condition is None:
        return []
    language = (condition.get("language") or "").strip()
    if language and language.lower() not in PYTHON_SCRIPTS:
        return [_finding(element, f"condition en {language} : écrivez-la en Python, par exemple amount > 100")]
    if condition.get(f"{{{CAMUNDA}}}resource"):
        return [_finding(element, "condition dans un fichier externe (camunda:resource) : écrivez-la en Python "
                                  "sur la liaison")]
    text = (condition.text or "").strip()
    if not text:
        return []
    why = _expression_problem(text, "la condition")
    return [_finding(element, why)] if why else []


def _check(element) -> list[Finding]:
    kind = _local(element)
    if kind in UNSUPPORTED:
        return [_finding(element, UNSUPPORTED[kind]), *_check_loops(element)]
    if kind in INERT:
        return []
    if kind not in RUNNABLE:
        return [_finding(element, f"élément BPMN « {kind} » que Guichet ne sait pas exécuter : retirez-le ou "
                                  "remplacez-le par une étape prise en charge")]
    found = _check_loops(element) + _check_events(element)
    if kind == "scriptTask":
        found += _check_script(element)
    elif kind == "serviceTask":
        found += _check_service(element)
    elif kind == "userTask":
        found += _check_user_task(element)
    elif kind == "sequenceFlow":
        found += _check_flow(element)
    return found


def _flow_elements(container):
    """The process's flow elements and artifacts, those of its sub-processes included, in document order."""
    for element in container:
        if not _is_bpmn(element):
            continue
        yield element
        if _local(element) in ("subProcess", "transaction", "adHocSubProcess"):
            yield from _flow_elements(element)


def analyse(xml: str) -> list[Finding]:
    """Every element of the file's process that Guichet cannot run (``blocking``) or ignores, in
    document order; [] when everything is supported. PortabilityError when the file cannot be read."""
    process = _process(_read(xml))
    return [finding for element in _flow_elements(process) for finding in _check(element)]


def _form_file(task_id: str, taken: set[str]) -> str:
    # The form editor only saves lower-case names: "Activity_0x1y2z" gives "activity_0x1y2z.schema.json".
    stem = re.sub(r"[^a-z0-9_-]+", "_", task_id.lower()).strip("_-")[:60] or "formulaire"
    filename, number = f"{stem}.schema.json", 2
    while filename in taken:
        filename, number = f"{stem}_{number}.schema.json", number + 1
    taken.add(filename)
    return filename


def adopt(xml: str, key: str, name: str | None = None) -> Adopted:
    """The file made the ``<key>.bpmn`` of a Guichet process folder, with the empty forms its user
    tasks need and what was changed; what ``analyse`` reports is left for the analyst to fix."""
    if not isinstance(key, str) or not KEY.match(key):
        raise PortabilityError(f"Identifiant de processus invalide « {key} » : des minuscules, chiffres et « _ », "
                               "commençant par une lettre (2 à 63 caractères).")
    root = _read(xml)
    process = _process(root)
    notes = []

    old = process.get("id")
    if old != key:
        if root.xpath("//*[@id=$key]", key=key):
            raise PortabilityError(f"L'identifiant « {key} » est déjà celui d'un autre élément du diagramme : "
                                   "choisissez-en un autre.")
        process.set("id", key)
        for element in root.iter(etree.Element):
            for attribute in ("processRef", "bpmnElement"):
                if old and element.get(attribute) == old:
                    element.set(attribute, key)
        notes.append(f"Le processus « {old} » a pris l'identifiant « {key} ».")
    if name and name.strip() and process.get("name") != name.strip():
        process.set("name", name.strip())
        notes.append(f"Le processus est nommé « {name.strip()} ».")
    if process.get("isExecutable") != "true":
        process.set("isExecutable", "true")
        notes.append("Le processus est marqué exécutable.")

    # Declared on the root before any spiffworkflow element is made, so that they all use it.
    if SPIFF not in root.nsmap.values():
        root = _declare(root, "spiffworkflow", SPIFF)

    forms: dict[str, str] = {}
    taken: set[str] = set()
    for task in process.iter(f"{{{BPMN}}}userTask"):
        if task.find(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}properties/{{{SPIFF}}}property"
                     "[@name='formJsonSchemaFilename']") is not None:
            continue
        filename = _form_file(task.get("id") or "formulaire", taken)
        extensions = task.find(f"{{{BPMN}}}extensionElements")
        if extensions is None:
            # extensionElements comes right after documentation in the BPMN schema.
            extensions = etree.Element(f"{{{BPMN}}}extensionElements")
            task.insert(len(task.findall(f"{{{BPMN}}}documentation")), extensions)
        properties = extensions.find(f"{{{SPIFF}}}properties")
        if properties is None:
            properties = etree.SubElement(extensions, f"{{{SPIFF}}}properties")
        etree.SubElement(properties, f"{{{SPIFF}}}property", name="formJsonSchemaFilename", value=filename)
        title = (task.get("name") or "").strip() or task.get("id") or filename
        forms[filename] = json.dumps({"type": "object", "title": title, "properties": {}}, ensure_ascii=False,
                                     indent=2) + "\n"
        notes.append(f"{_label(task)} : formulaire vide {filename} ajouté, à compléter dans l'éditeur de formulaires.")

    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
    return Adopted(xml=text, forms=forms, notes=notes)


def _declare(root, prefix: str, uri: str):
    """The same document with one more namespace declared on its root: lxml cannot add a declaration
    to an existing element, so the root is made anew and its children moved under it."""
    nsmap = dict(root.nsmap)
    if nsmap.get(prefix, uri) != uri:
        prefix = f"{prefix}_guichet"
    nsmap[prefix] = uri
    made = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=nsmap)
    made.text = root.text
    made.extend(list(root))
    return made

/* The process designer: the bpmn-js modeler with Guichet's own properties panel.
 *
 * The panel edits what the engine uses (app/processes/engine.py): a user task's form and
 * instructions, a service task's operation and parameters, scripts, timers (with a helper for ISO
 * 8601 durations and dates), messages, gateway conditions and the role of each lane. The extension
 * elements are SpiffWorkflow's (namespace below), described to bpmn-js by SPIFF_MODDLE.
 * "Enregistrer" and "Valider" post the diagram to the draft; the server answers with its problems,
 * each on its element, which the canvas marks. The page's data comes in #designer-config (JSON). */
(function () {
  "use strict";

  const SPIFF_MODDLE = {
    name: "SpiffWorkflow",
    uri: "http://spiffworkflow.org/bpmn/schema/1.0/core",
    prefix: "spiffworkflow",
    xml: { tagAlias: "lowerCase" },
    types: [
      { name: "Properties", superClass: ["Element"],
        properties: [{ name: "properties", type: "Property", isMany: true }] },
      { name: "Property", superClass: ["Element"],
        properties: [{ name: "name", isAttr: true, type: "String" }, { name: "value", isAttr: true, type: "String" }] },
      { name: "InstructionsForEndUser", superClass: ["Element"],
        properties: [{ name: "value", isBody: true, type: "String" }] },
      { name: "PreScript", superClass: ["Element"], properties: [{ name: "value", isBody: true, type: "String" }] },
      { name: "PostScript", superClass: ["Element"], properties: [{ name: "value", isBody: true, type: "String" }] },
      { name: "ServiceTaskOperator", superClass: ["Element"],
        properties: [{ name: "id", isAttr: true, type: "String" }, { name: "resultVariable", isAttr: true, type: "String" },
                     { name: "parameterList", type: "Parameters" }] },
      { name: "Parameters", superClass: ["Element"],
        properties: [{ name: "parameters", type: "Parameter", isMany: true }] },
      { name: "Parameter", superClass: ["Element"],
        properties: [{ name: "id", isAttr: true, type: "String" }, { name: "type", isAttr: true, type: "String" },
                     { name: "value", isAttr: true, type: "String" }] },
    ],
  };

  // bpmn-js speaks English: its palette, context pad and menus in French when the page is.
  const FRENCH = {
    "Activate hand tool": "Outil main (déplacer la vue)", "Activate lasso tool": "Outil lasso (sélection)",
    "Activate create/remove space tool": "Outil espace (créer ou retirer de la place)",
    "Activate global connect tool": "Outil liaison", "Create start event": "Début", "Create end event": "Fin",
    "Create intermediate/boundary event": "Événement intermédiaire ou attaché", "Create gateway": "Branchement",
    "Create task": "Étape", "Create expanded sub-process": "Sous-processus", "Create pool/participant": "Bassin",
    "Create data object reference": "Objet de données", "Create data store reference": "Magasin de données",
    "Create group": "Groupe", "Append end event": "Ajouter une fin", "Append gateway": "Ajouter un branchement",
    "Append task": "Ajouter une étape", "Append intermediate/boundary event": "Ajouter un événement",
    "Add text annotation": "Ajouter une annotation", "Change element": "Changer le type", "Delete": "Supprimer",
    "Connect to other element": "Relier à un autre élément",
    "Connect using sequence/message flow or association": "Relier", "Connect using association": "Associer",
    "Add lane above": "Ajouter un couloir au-dessus", "Add lane below": "Ajouter un couloir en dessous",
    "Divide into two lanes": "Diviser en deux couloirs", "Divide into three lanes": "Diviser en trois couloirs",
    "Task": "Étape", "User task": "Tâche utilisateur", "Service task": "Tâche de service", "Send task": "Tâche d'envoi",
    "Receive task": "Tâche de réception", "Manual task": "Tâche manuelle", "Business rule task": "Règle métier",
    "Script task": "Script", "Call activity": "Appel de processus", "Sub-process (collapsed)": "Sous-processus (replié)",
    "Sub-process (expanded)": "Sous-processus (déplié)", "Start event": "Début", "End event": "Fin",
    "Intermediate throw event": "Événement intermédiaire", "Message start event": "Début sur message",
    "Timer start event": "Début sur minuteur", "Message intermediate catch event": "Attente d'un message",
    "Message intermediate throw event": "Envoi d'un message", "Timer intermediate catch event": "Minuteur",
    "Message end event": "Fin avec message", "Error end event": "Fin en erreur", "Terminate end event": "Fin immédiate",
    "Message boundary event": "Message attaché", "Timer boundary event": "Minuteur attaché",
    "Error boundary event": "Erreur attachée", "Timer boundary event (non-interrupting)": "Minuteur attaché (sans interrompre)",
    "Message boundary event (non-interrupting)": "Message attaché (sans interrompre)",
    "Exclusive gateway": "Branchement exclusif", "Parallel gateway": "Branchement parallèle",
    "Inclusive gateway": "Branchement inclusif", "Complex gateway": "Branchement complexe",
    "Event-based gateway": "Branchement sur événement", "Sequence flow": "Liaison", "Default flow": "Liaison par défaut",
    "Conditional flow": "Liaison conditionnelle", "Parallel multi-instance": "Multi-instance parallèle",
    "Sequential multi-instance": "Multi-instance séquentielle", "Loop": "Boucle", "Search in diagram": "Rechercher",
    "No matching entries found.": "Aucun élément trouvé.", "Search": "Rechercher",
  };
  function frenchTranslate(template, replacements) {
    const text = FRENCH[template] || template;
    return text.replace(/{([^}]+)}/g, (whole, key) => (replacements && key in replacements ? replacements[key] : whole));
  }

  const root = document.getElementById("designer");
  if (!root || !window.BpmnJS) return;
  const config = JSON.parse(document.getElementById("designer-config").textContent);
  const T = config.labels;
  const palette = config.palette;
  const panel = document.getElementById("designer-panel");
  const status = document.getElementById("designer-status");
  const problemList = document.getElementById("designer-problems");
  let revision = config.revision;
  let dirty = false;
  let selected = null;

  const french = (document.documentElement.lang || "fr").startsWith("fr");
  const modeler = new window.BpmnJS({
    container: "#designer-canvas",
    additionalModules: french ? [{ translate: ["value", frenchTranslate] }] : [],
    moddleExtensions: { spiffworkflow: SPIFF_MODDLE },
  });
  const modeling = modeler.get("modeling");
  const moddle = modeler.get("moddle");
  const canvas = modeler.get("canvas");
  const overlays = modeler.get("overlays");
  const registry = modeler.get("elementRegistry");

  // --- Small DOM helpers ----------------------------------------------------------------------
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([k, v]) => {
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    children.flat().forEach((c) => c !== null && c !== undefined && node.append(c));
    return node;
  }
  function field(id, label, input, help) {
    return el("div", { class: "designer-field" }, el("label", { for: id, text: label }), input,
              help ? el("small", { text: help }) : null);
  }
  function textInput(id, value, onchange, attributes) {
    return el("input", Object.assign({ id: id, value: value || "", onchange: (e) => onchange(e.target.value.trim()) },
                                     attributes || {}));
  }
  function textArea(id, value, onchange, rows) {
    const area = el("textarea", { id: id, rows: rows || 4, onchange: (e) => onchange(e.target.value) });
    area.value = value || "";
    return area;
  }
  function select(id, options, value, onchange) {
    const node = el("select", { id: id, onchange: (e) => onchange(e.target.value) });
    options.forEach(([v, label, disabled]) => {
      node.append(el("option", { value: v, text: label, selected: v === value, disabled: !!disabled }));
    });
    return node;
  }

  // --- Reading and writing the business objects ------------------------------------------------
  function extensions(bo) { return (bo.extensionElements && bo.extensionElements.values) || []; }
  function findExtension(bo, type) { return extensions(bo).find((e) => e.$type === type); }

  function writeExtensions(element, values) {
    modeling.updateProperties(element, { extensionElements: moddle.create("bpmn:ExtensionElements", { values: values }) });
  }
  function spiffProperty(bo, name) {
    const props = findExtension(bo, "spiffworkflow:Properties");
    const found = props && (props.properties || []).find((p) => p.name === name);
    return found ? found.value : "";
  }
  function setSpiffProperty(element, name, value) {
    // New objects, never the current ones changed in place: the modeler's undo restores the old ones.
    const values = extensions(element.businessObject);
    const current = values.find((e) => e.$type === "spiffworkflow:Properties");
    const kept = ((current && current.properties) || []).filter((p) => p.name !== name)
      .map((p) => moddle.create("spiffworkflow:Property", { name: p.name, value: p.value }));
    if (value) kept.push(moddle.create("spiffworkflow:Property", { name: name, value: value }));
    const replaced = kept.length ? moddle.create("spiffworkflow:Properties", { properties: kept }) : null;
    const next = values.filter((e) => e !== current);
    if (replaced) next.splice(current ? values.indexOf(current) : next.length, 0, replaced);
    writeExtensions(element, next);
  }
  function bodyExtension(bo, type) {
    const found = findExtension(bo, type);
    return found ? found.value || "" : "";
  }
  function setBodyExtension(element, type, text) {
    const values = extensions(element.businessObject).filter((e) => e.$type !== type);
    if (text && text.trim()) values.push(moddle.create(type, { value: text }));
    writeExtensions(element, values);
  }
  function operator(bo) { return findExtension(bo, "spiffworkflow:ServiceTaskOperator"); }
  function parameterValue(bo, name) {
    const op = operator(bo);
    const list = op && op.parameterList && op.parameterList.parameters;
    const found = (list || []).find((p) => p.id === name);
    return found ? found.value : "";
  }
  function setOperator(element, name, result, parameters) {
    const values = extensions(element.businessObject).filter((e) => e.$type !== "spiffworkflow:ServiceTaskOperator");
    if (name) {
      const params = Object.entries(parameters).filter(([, v]) => v && v.value !== "" && v.value !== undefined && v.value !== null)
        .map(([id, v]) => moddle.create("spiffworkflow:Parameter", { id: id, type: v.type, value: v.value }));
      values.push(moddle.create("spiffworkflow:ServiceTaskOperator", {
        id: name, resultVariable: result || undefined,
        parameterList: moddle.create("spiffworkflow:Parameters", { parameters: params }),
      }));
    }
    writeExtensions(element, values);
  }
  function pyString(text) { return JSON.stringify(text); }  // a Python string literal too
  function unquote(value) {
    const m = /^\s*(['"])(.*)\1\s*$/.exec(value || "");
    return m ? m[2] : "";
  }
  function eventDefinition(bo, type) { return (bo.eventDefinitions || []).find((d) => d.$type === type); }

  // --- The panel, per kind of element ------------------------------------------------------------
  function render() {
    panel.replaceChildren();
    const element = selected;
    if (!element || element.type === "bpmn:Process" || element.type === "bpmn:Collaboration") {
      panel.append(el("h3", { text: T.process }), el("p", { text: T.selectHint }));
      return;
    }
    const bo = element.businessObject;
    panel.append(el("h3", { text: T.kinds[element.type] || element.type.replace("bpmn:", "") }),
                 el("p", {}, el("small", {}, T.identifier + " : ", el("code", { id: "prop-id", text: bo.id }))));
    if (element.type === "bpmn:Lane") {
      renderLane(element, bo);
      return;
    }
    if (element.type !== "label") {
      panel.append(field("prop-name", T.name, textInput("prop-name", bo.name, (v) => modeling.updateProperties(element, { name: v }))));
    }
    if (element.type === "bpmn:UserTask") renderUserTask(element, bo);
    if (element.type === "bpmn:ServiceTask") renderServiceTask(element, bo);
    if (element.type === "bpmn:ScriptTask") renderScript(element, bo);
    if (["bpmn:UserTask", "bpmn:ServiceTask", "bpmn:ManualTask", "bpmn:Task"].includes(element.type)) renderPrePost(element, bo);
    if (eventDefinition(bo, "bpmn:TimerEventDefinition")) renderTimer(element, bo);
    if (eventDefinition(bo, "bpmn:MessageEventDefinition")) renderMessage(element, bo);
    if (element.type === "bpmn:SequenceFlow") renderCondition(element, bo);
    if (element.type === "bpmn:BusinessRuleTask" || element.type === "bpmn:SendTask" || element.type === "bpmn:ReceiveTask" ||
        element.type === "bpmn:CallActivity" || element.type === "bpmn:ComplexGateway") {
      panel.append(el("p", { class: "designer-warning", text: T.unsupported }));
    }
  }

  function renderLane(element, bo) {
    const roles = palette.roles.map((r) => [r.code, r.code + " — " + r.label]);
    if (bo.name && !palette.roles.some((r) => r.code === bo.name)) roles.unshift([bo.name, bo.name + " (" + T.unknownRole + ")"]);
    roles.unshift(["", "—"]);
    panel.append(field("prop-role", T.role, select("prop-role", roles, bo.name || "", (v) => modeling.updateProperties(element, { name: v })),
                       T.roleHelp));
  }

  function renderUserTask(element, bo) {
    const forms = palette.forms.filter((f) => f.endsWith(".schema.json"));
    const current = spiffProperty(bo, "formJsonSchemaFilename");
    const options = [["", T.noForm]].concat(forms.map((f) => [f, f]));
    if (current && !forms.includes(current)) options.push([current, current + " (" + T.missing + ")"]);
    panel.append(field("prop-form", T.form, select("prop-form", options, current, (v) => {
      setSpiffProperty(element, "formJsonSchemaFilename", v);
      const ui = v.replace(/\.schema\.json$/, ".uischema.json");
      setSpiffProperty(element, "formUiSchemaFilename", palette.forms.includes(ui) ? ui : "");
      render();
    })));
    if (current && forms.includes(current)) {
      panel.append(el("p", {}, el("a", { href: config.formUrl + current, id: "prop-edit-form", onclick: leaveAfterSave,
                                          text: T.editForm })));
    }
    const newName = el("input", { id: "prop-new-form-name", placeholder: T.newFormPlaceholder,
                                  value: bo.id.toLowerCase().replace(/[^a-z0-9_]/g, "_") });
    panel.append(el("div", { class: "designer-inline" }, newName,
                    el("button", { type: "button", class: "secondary", id: "prop-new-form", text: T.newForm,
                                   onclick: () => createForm(element, newName.value) })));
    panel.append(field("prop-instructions", T.instructions, textArea("prop-instructions",
      bodyExtension(bo, "spiffworkflow:InstructionsForEndUser"), (v) => setBodyExtension(element, "spiffworkflow:InstructionsForEndUser", v), 3)));
  }

  async function createForm(element, name) {
    const body = new URLSearchParams({ name: name, title: element.businessObject.name || name, csrf_token: config.csrf });
    const saved = await save();
    if (!saved) return;
    const response = await fetch(config.newFormUrl, { method: "POST", body: body,
      headers: { Accept: "application/json", "X-CSRFToken": config.csrf } });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) { showStatus(answer.error || T.failed, true); return; }
    revision = answer.revision;
    palette.forms.push(answer.filename);
    setSpiffProperty(element, "formJsonSchemaFilename", answer.filename);
    if (await save()) window.location.href = answer.url;
  }

  function renderServiceTask(element, bo) {
    const op = operator(bo);
    const name = op ? op.id : "";
    const known = palette.operations.find((o) => o.name === name);
    const options = [["", T.chooseOperation]].concat(palette.operations.map((o) => [o.name, o.label + (o.available ? "" : " (" + T.unavailable + ")"), !o.available && o.name !== name]));
    if (name && !known) options.push([name, name + " (" + T.unknownOperation + ")"]);
    panel.append(field("prop-operation", T.operation, select("prop-operation", options, name, (v) => {
      const chosen = palette.operations.find((o) => o.name === v);
      setOperator(element, v, chosen ? chosen.result : "", {});
      render();
    }), known ? known.help : null));
    if (!known) return;
    const values = {};
    known.parameters.forEach((p) => { values[p.name] = { type: paramType(p), value: parameterValue(bo, p.name) }; });
    const write = () => setOperator(element, name, resultInput.value.trim(), values);
    known.parameters.forEach((p) => {
      const id = "prop-param-" + p.name;
      const label = p.label + (p.required ? " *" : "");
      const current = values[p.name].value;
      let input;
      if (p.kind === "letter" || p.kind === "mail") {
        const templates = palette.templates[p.kind] || [];
        const opts = [["", "—"]].concat(templates.map(([code, lbl]) => [code, code + " — " + lbl]));
        const code = unquote(current);
        if (code && !templates.some(([c]) => c === code)) opts.push([code, code + " (" + T.missing + ")"]);
        input = select(id, opts, code, (v) => { values[p.name].value = v ? pyString(v) : ""; write(); });
      } else if (p.kind === "choice") {
        const opts = [["", "—"]].concat((p.choices || []).map((c) => [c, c]));
        input = select(id, opts, unquote(current), (v) => { values[p.name].value = v ? pyString(v) : ""; write(); });
      } else if (p.kind === "bool") {
        input = el("input", { type: "checkbox", id: id, checked: current === "True",
                              onchange: (e) => { values[p.name].value = e.target.checked ? "True" : ""; write(); } });
      } else if (p.kind === "text") {
        input = textInput(id, unquote(current), (v) => { values[p.name].value = v ? pyString(v) : ""; write(); });
      } else {
        input = textInput(id, current, (v) => { values[p.name].value = v; write(); }, { class: "code" });
      }
      panel.append(field(id, label, input, p.kind === "expression" ? T.expressionHelp : null));
    });
    const resultInput = textInput("prop-result", op.resultVariable || "", () => write());
    panel.append(field("prop-result", T.result, resultInput, T.resultHelp));
  }
  function paramType(p) { return p.kind === "bool" ? "bool" : p.kind === "expression" ? "any" : "str"; }

  function scriptWarning() {
    return el("p", { class: "designer-warning" }, T.scriptWarning + " ", el("code", { text: palette.scriptFunctions.join(", ") }));
  }
  function renderScript(element, bo) {
    panel.append(scriptWarning(), field("prop-script", T.script, textArea("prop-script", bo.script,
      (v) => modeling.updateProperties(element, { script: v, scriptFormat: "python" }), 8)));
  }
  function renderPrePost(element, bo) {
    const details = el("details", {}, el("summary", { text: T.scripts }), scriptWarning(),
      field("prop-prescript", T.preScript, textArea("prop-prescript", bodyExtension(bo, "spiffworkflow:PreScript"),
        (v) => setBodyExtension(element, "spiffworkflow:PreScript", v), 3)),
      field("prop-postscript", T.postScript, textArea("prop-postscript", bodyExtension(bo, "spiffworkflow:PostScript"),
        (v) => setBodyExtension(element, "spiffworkflow:PostScript", v), 3)));
    if (bodyExtension(bo, "spiffworkflow:PreScript") || bodyExtension(bo, "spiffworkflow:PostScript")) details.open = true;
    panel.append(details);
  }

  const TIMER_KINDS = ["timeDuration", "timeDate", "timeCycle"];
  function renderTimer(element, bo) {
    const definition = eventDefinition(bo, "bpmn:TimerEventDefinition");
    let kind = TIMER_KINDS.find((k) => definition[k]) || "timeDuration";
    const expression = definition[kind] ? definition[kind].body : "";
    const writeTimer = (k, text) => {
      const props = { timeDuration: undefined, timeDate: undefined, timeCycle: undefined };
      props[k] = moddle.create("bpmn:FormalExpression", { body: text });
      modeling.updateModdleProperties(element, definition, props);
    };
    const input = textInput("prop-timer", expression, (v) => writeTimer(kind, v), { class: "code" });
    panel.append(el("h4", { text: T.timer }),
      field("prop-timer-kind", T.timerKind, select("prop-timer-kind",
        [["timeDuration", T.duration], ["timeDate", T.date], ["timeCycle", T.cycle]], kind,
        (v) => { kind = v; writeTimer(v, input.value.trim()); render(); })),
      field("prop-timer", T.timerExpression, input, T.timerHelp));
    if (kind === "timeDate") {
      const day = el("input", { type: "date", id: "iso-date" });
      panel.append(el("div", { class: "designer-inline" }, day, el("button", { type: "button", class: "secondary", id: "iso-apply", text: T.write,
        onclick: () => { if (day.value) { input.value = pyString(day.value + "T00:00:00"); writeTimer(kind, input.value); } } })));
    } else {
      const days = el("input", { type: "number", min: 0, id: "iso-days", placeholder: T.days, "aria-label": T.days });
      const hours = el("input", { type: "number", min: 0, id: "iso-hours", placeholder: T.hours, "aria-label": T.hours });
      const minutes = el("input", { type: "number", min: 0, id: "iso-minutes", placeholder: T.minutes, "aria-label": T.minutes });
      const repeat = kind === "timeCycle" ? el("input", { type: "number", min: 1, id: "iso-repeat", placeholder: T.repeat, "aria-label": T.repeat }) : null;
      panel.append(el("div", { class: "designer-inline iso-helper" }, repeat, days, hours, minutes,
        el("button", { type: "button", class: "secondary", id: "iso-apply", text: T.write, onclick: () => {
          const d = parseInt(days.value || "0", 10), h = parseInt(hours.value || "0", 10), m = parseInt(minutes.value || "0", 10);
          if (!(d || h || m)) return;
          let iso = "P" + (d ? d + "D" : "") + (h || m ? "T" + (h ? h + "H" : "") + (m ? m + "M" : "") : "");
          if (repeat) iso = "R" + (parseInt(repeat.value || "1", 10)) + "/" + iso;
          input.value = pyString(iso);
          writeTimer(kind, input.value);
        } })));
    }
  }

  function renderMessage(element, bo) {
    const definition = eventDefinition(bo, "bpmn:MessageEventDefinition");
    const current = definition.messageRef ? definition.messageRef.name : "";
    panel.append(field("prop-message", T.message, textInput("prop-message", current, (v) => {
      const definitions = modeler.getDefinitions();
      let message = definitions.rootElements.find((r) => r.$type === "bpmn:Message" && r.name === v);
      if (!message && v) {
        message = moddle.create("bpmn:Message", { id: "message_" + v.replace(/[^A-Za-z0-9_]/g, "_"), name: v });
        message.$parent = definitions;
        definitions.rootElements.push(message);
      }
      modeling.updateModdleProperties(element, definition, { messageRef: message || undefined });
    }), T.messageHelp));
  }

  function renderCondition(element, bo) {
    const source = bo.sourceRef && bo.sourceRef.$type;
    if (source !== "bpmn:ExclusiveGateway" && source !== "bpmn:InclusiveGateway") return;
    const current = bo.conditionExpression ? bo.conditionExpression.body : "";
    panel.append(field("prop-condition", T.condition, textInput("prop-condition", current, (v) => {
      modeling.updateProperties(element, { conditionExpression: v ? moddle.create("bpmn:FormalExpression", { body: v }) : undefined });
    }, { class: "code" }), T.conditionHelp));
  }

  // --- Saving, validating, problems on the diagram --------------------------------------------------
  function showStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? "field-error" : "";
  }

  function showProblems(problems) {
    overlays.remove({ type: "problem" });
    registry.getAll().forEach((e) => canvas.removeMarker(e, "designer-invalid"));
    problemList.replaceChildren();
    problems.forEach((p) => {
      const onDiagram = p.element && registry.get(p.element);
      if (onDiagram) {
        canvas.addMarker(p.element, "designer-invalid");
        overlays.add(p.element, "problem", { position: { top: -12, right: 12 },
          html: el("span", { class: "designer-problem", title: p.message, text: "!" }) });
      }
      const item = el("li", { "data-element": p.element || "", class: p.blocking ? "blocking" : "ignored" },
        onDiagram ? el("a", { href: "#", text: p.element, onclick: (e) => { e.preventDefault(); modeler.get("selection").select(registry.get(p.element)); } }) : null,
        onDiagram ? " : " : "", p.message);
      problemList.append(item);
    });
    const blocking = problems.filter((p) => p.blocking).length;
    document.getElementById("designer-valid").hidden = blocking > 0;
    return blocking;
  }

  async function save() {
    const { xml } = await modeler.saveXML({ format: true });
    let response;
    try {
      response = await fetch(config.saveUrl, { method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrf },
        body: JSON.stringify({ revision: revision, diagram: xml }) });
    } catch (e) {
      showStatus(T.offline, true);
      return null;
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) { showStatus(answer.error || T.failed, true); return null; }
    revision = answer.revision;
    dirty = false;
    document.querySelectorAll("input[name=revision]").forEach((i) => { i.value = revision; });
    return answer;
  }

  async function saveAndShow(validating) {
    showStatus(T.saving, false);
    const answer = await save();
    if (!answer) return;
    const blocking = showProblems(answer.problems);
    showStatus(validating ? (blocking ? T.problemsFound.replace("%(count)s", blocking) : T.valid) : T.saved, validating && blocking > 0);
  }

  async function leaveAfterSave(event) {
    event.preventDefault();
    const target = event.currentTarget.href;
    if (!dirty || await save()) window.location.href = target;
  }

  document.getElementById("designer-save").addEventListener("click", () => saveAndShow(false));
  document.getElementById("designer-validate").addEventListener("click", () => saveAndShow(true));
  document.querySelectorAll("[data-save-first]").forEach((a) => a.addEventListener("click", leaveAfterSave));
  window.addEventListener("beforeunload", (event) => { if (dirty) { event.preventDefault(); event.returnValue = ""; } });

  // A step dropped on a flow is spliced into it: push what follows to the right to make it room.
  modeler.on("commandStack.shape.create.postExecuted", (event) => {
    const { shape, targetFlow } = event.context;
    if (!targetFlow || !shape || shape.waypoints) return;
    const spaceTool = modeler.get("spaceTool");
    const start = shape.x + 1;
    const shapes = registry.filter((e) => e !== shape && !e.waypoints && e.type !== "label" && e.parent &&
                                          !e.labelTarget);
    const adjustments = spaceTool.calculateAdjustments(shapes, "x", shape.width, start);
    const moving = adjustments.movingShapes.filter((e) => e !== shape);
    if (moving.length) spaceTool.makeSpace(moving, adjustments.resizingShapes, { x: shape.width + 30, y: 0 }, "e", start);
  });

  modeler.on("selection.changed", (event) => { selected = event.newSelection[0] || null; render(); });
  modeler.on("commandStack.changed", () => { dirty = true; showStatus(T.unsaved, false); });
  modeler.on("element.changed", (event) => { if (selected && event.element === selected && !panel.contains(document.activeElement)) render(); });

  modeler.importXML(config.diagram).then(() => {
    canvas.zoom("fit-viewport", "auto");
    canvas.zoom(canvas.zoom() * 0.85, "auto");  // room for the palette on the left
    canvas.scroll({ dx: 40, dy: 0 });
    render();
    showProblems(config.problems);
    root.dataset.ready = "true";
  }).catch((error) => {
    showStatus(T.unreadable + " " + error.message, true);
  });
})();

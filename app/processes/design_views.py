"""The process designer's pages (``process.design``): the catalogue, a process's versions and draft,
the bpmn-js modeler with its properties panel (it saves and validates through JSON), deployment,
import and export of .bpmn files, and the form editor with its live preview."""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.audit import service as audit
from app.db import session as db_session
from app.documents.models import DocumentTemplate, TemplateKind
from app.errors import BusinessError
from app.processes import design, engine, field_list, forms
from app.security.models import Role
from app.web import int_or_none

bp = Blueprint("design", __name__, url_prefix="/conception/processus")
PERMISSION = "process.design"


@bp.before_request
def _guard():
    if not current_user.is_authenticated or not current_user.can(PERMISSION):
        abort(403)


def _entry_or_404(key: str) -> design.CatalogueEntry:
    found = design.entry(key) if design.KEY.fullmatch(key) else None
    if found is None:
        abort(404)
    return found


def _draft_or_redirect(key: str):
    current = design.draft(key) if design.KEY.fullmatch(key) else None
    if current is None:
        _entry_or_404(key)
        flash(_("Ce processus n'a pas de brouillon : cliquez sur « Modifier » pour en ouvrir un."), "error")
    return current


@bp.route("")
def catalogue():
    return render_template("design/catalogue.html", entries=design.catalogue(), errors={}, values={})


@bp.route("/nouveau", methods=["POST"])
def new():
    try:
        created = design.new_process(request.form.get("key", ""), request.form.get("name", ""), agent=current_user)
    except BusinessError as exc:
        db_session.rollback()
        return render_template("design/catalogue.html", entries=design.catalogue(),
                               errors={exc.field or "key": exc.message}, values=request.form), 422
    db_session.commit()
    return redirect(url_for("design.modeler", key=created.key), 303)


@bp.route("/importer", methods=["POST"])
def import_file():
    upload = request.files.get("file")
    key, name = request.form.get("key", ""), request.form.get("name", "")
    try:
        if upload is None or not upload.filename:
            raise BusinessError(_("Choisissez un fichier .bpmn."), field="file")
        if not upload.filename.lower().endswith((".bpmn", ".xml")):
            raise BusinessError(_("Le fichier doit être un diagramme .bpmn."), field="file")
        raw = upload.read(design.definitions.MAX_FILE_BYTES + 1)
        if len(raw) > design.definitions.MAX_FILE_BYTES:
            raise BusinessError(_("Fichier trop gros (1 Mo au plus)."), field="file")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BusinessError(_("Le fichier n'est pas en UTF-8."), field="file") from None
        draft, notes, findings = design.import_diagram(key, name, text, agent=current_user)
    except BusinessError as exc:
        db_session.rollback()
        return render_template("design/catalogue.html", entries=design.catalogue(),
                               errors={exc.field or "file": exc.message}, values=request.form), 422
    db_session.commit()
    return render_template("design/imported.html", draft=draft, notes=notes, findings=findings,
                           blocking=[f for f in findings if f.blocking])


@bp.route("/<key>")
def show(key: str):
    entry = _entry_or_404(key)
    findings = design.problems(key, entry.draft.files) if entry.draft is not None else []
    latest, candidates, total = design.migration_candidates(key)
    pending = design.changes(latest.files if latest else {}, entry.draft.files, key) if entry.draft else []
    return render_template("design/process.html", entry=entry, findings=findings,
                           blocking=[f for f in findings if f.blocking], latest=latest, candidates=candidates,
                           candidates_total=total, pending=pending)


@bp.route("/<key>/instances/<int:instance_id>/migrer", methods=["POST"])
def migrate(key: str, instance_id: int):
    from app.processes import service
    from app.processes.models import ProcessInstance

    _entry_or_404(key)
    latest = design.definitions.latest(key)
    instance = db_session.get(ProcessInstance, instance_id)
    if instance is None or instance.definition.key != key:
        abort(404)
    try:
        service.migrate(agent=current_user, instance_id=instance_id, definition=latest)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("design.show", key=key, _anchor="migration"), 303)
    db_session.commit()
    flash(_("Le processus n° %(id)s suit maintenant la version %(version)s.", id=instance_id,
            version=latest.version), "success")
    return redirect(url_for("design.show", key=key, _anchor="migration"), 303)


@bp.route("/<key>/modifier", methods=["POST"])
def edit(key: str):
    _entry_or_404(key)
    try:
        design.open_draft(key, agent=current_user)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("design.show", key=key), 303)
    db_session.commit()
    return redirect(url_for("design.modeler", key=key), 303)


@bp.route("/<key>/abandonner", methods=["POST"])
def discard(key: str):
    _entry_or_404(key)
    try:
        design.discard(key, revision=int_or_none(request.form.get("revision")) or 0)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("design.show", key=key), 303)
    db_session.commit()
    flash(_("Brouillon abandonné."), "success")
    return redirect(url_for("design.show", key=key), 303)


@bp.route("/<key>/deployer", methods=["POST"])
def deploy(key: str):
    _entry_or_404(key)
    try:
        definition = design.deploy_draft(key, agent=current_user,
                                         revision=int_or_none(request.form.get("revision")) or 0)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("design.show", key=key), 303)
    db_session.commit()
    flash(_("Version %(version)s déployée : les nouveaux dossiers la suivent, ceux en cours gardent leur "
            "version.", version=definition.version), "success")
    return redirect(url_for("design.show", key=key), 303)


def _download(text: str, filename: str) -> Response:
    return Response(text, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/<key>/v<int:number>.bpmn")
def export_version(key: str, number: int):
    definition = design.version(key, number) if design.KEY.fullmatch(key) else None
    if definition is None:
        abort(404)
    return _download(definition.files[f"{key}.bpmn"], f"{key}-v{number}.bpmn")


@bp.route("/<key>/brouillon.bpmn")
def export_draft(key: str):
    current = _draft_or_redirect(key)
    if current is None:
        abort(404)
    return _download(current.files.get(f"{key}.bpmn", ""), f"{key}-brouillon.bpmn")


# --- The modeler ----------------------------------------------------------------------------------

def _templates(kind: str) -> list[tuple[str, str]]:
    rows = db_session.execute(select(DocumentTemplate.code, DocumentTemplate.label).where(
        DocumentTemplate.kind == kind, DocumentTemplate.active.is_(True)).distinct().order_by(DocumentTemplate.code))
    return [(row.code, row.label) for row in rows]


def _palette(draft) -> dict:
    """What the properties panel offers: operations and their parameters, forms, roles, templates,
    the functions a script may call."""
    return {
        "operations": design.operation_catalogue(),
        "forms": sorted(name for name in draft.files if name.endswith(".json")),
        "roles": [{"code": r.code, "label": r.label} for r in db_session.execute(
            select(Role).where(Role.active.is_(True)).order_by(Role.code)).scalars()],
        "templates": {"letter": _templates(TemplateKind.LETTER), "mail": _templates(TemplateKind.MAIL)},
        "scriptFunctions": sorted(engine.SCRIPT_FUNCTIONS),
    }


@bp.route("/<key>/modeleur")
def modeler(key: str):
    current = _draft_or_redirect(key)
    if current is None:
        return redirect(url_for("design.show", key=key), 303)
    return render_template("design/modeler.html", draft=current, palette=_palette(current),
                           diagram=current.files.get(f"{key}.bpmn", ""), problems=_problems_json(key, current.files))


def _problems_json(key: str, files: dict) -> list[dict]:
    return [{"element": f.element_id, "message": f.message, "blocking": f.blocking}
            for f in design.problems(key, files)]


@bp.route("/<key>/brouillon", methods=["POST"])
def save(key: str):
    """Save the modeler's diagram (JSON: revision, diagram, name); answers the new revision and the
    problems found, each on its element."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("diagram"), str):
        return jsonify(error=_("Requête invalide.")), 400
    try:
        current = design.save_draft(key, agent=current_user, revision=int_or_none(payload.get("revision")) or 0,
                                    diagram=payload["diagram"], name=payload.get("name"))
    except design.StaleDraft as exc:
        db_session.rollback()
        return jsonify(error=exc.message), 409
    except BusinessError as exc:
        db_session.rollback()
        return jsonify(error=exc.message), 422
    db_session.commit()
    return jsonify(revision=current.revision, problems=_problems_json(key, current.files))


# --- The form editor --------------------------------------------------------------------------------

def _form_names(filename: str) -> tuple[str, str]:
    """The schema file and its UI schema file."""
    base = filename.removesuffix(".schema.json")
    return f"{base}.schema.json", f"{base}.uischema.json"


def _loaded(current, filename: str) -> tuple[dict, dict]:
    schema_file, ui_file = _form_names(filename)
    schema = json.loads(current.files.get(schema_file) or "{}")
    ui = json.loads(current.files.get(ui_file) or "{}")
    return (schema if isinstance(schema, dict) else {}), (ui if isinstance(ui, dict) else {})


def _form_page(current, filename: str, fields, *, title: str, errors: dict, raw: dict | None = None,
               status: int = 200, schema: dict | None = None, ui: dict | None = None):
    if schema is None:
        base_schema, base_ui = _loaded(current, filename)
        schema, ui = field_list.documents_of(fields, title=title, base_schema=base_schema, base_ui=base_ui)
    preview = forms.build(schema, ui, {}) if not errors else []
    return render_template(
        "design/form.html", draft=current, filename=filename, fields=fields, title=title, errors=errors,
        types=field_list.FIELD_TYPES, preview=preview,
        raw=raw or {"schema": json.dumps(schema, ensure_ascii=False, indent=2),
                    "ui": json.dumps(ui or {}, ensure_ascii=False, indent=2)}), status


@bp.route("/<key>/formulaires", methods=["POST"])
def new_form(key: str):
    current = _draft_or_redirect(key)
    if current is None:
        return redirect(url_for("design.show", key=key), 303)
    stem = (request.form.get("name") or "").strip().lower().removesuffix(".json").removesuffix(".schema")
    filename = f"{stem}.schema.json"
    try:
        if not design.FORM_FILE.fullmatch(filename) or "." in stem:
            raise BusinessError(_("Nom de formulaire invalide : des minuscules, chiffres et « _ »."), field="name")
        if filename in current.files:
            raise BusinessError(_("Le formulaire %(name)s existe déjà.", name=filename), field="name")
        title = (request.form.get("title") or "").strip() or stem
        text = json.dumps({"type": "object", "title": title, "properties": {}}, ensure_ascii=False, indent=2)
        design.save_draft(key, agent=current_user, revision=current.revision, forms={filename: text})
    except BusinessError as exc:
        db_session.rollback()
        if request.headers.get("Accept", "").startswith("application/json"):
            return jsonify(error=exc.message), 422
        flash(exc.message, "error")
        return redirect(url_for("design.show", key=key), 303)
    db_session.commit()
    if request.headers.get("Accept", "").startswith("application/json"):
        return jsonify(filename=filename, revision=design.draft(key).revision,
                       url=url_for("design.form", key=key, filename=filename))
    return redirect(url_for("design.form", key=key, filename=filename), 303)


@bp.route("/<key>/formulaires/<filename>", methods=["GET", "POST"])
def form(key: str, filename: str):
    current = _draft_or_redirect(key)
    if current is None:
        return redirect(url_for("design.show", key=key), 303)
    if not filename.endswith(".schema.json") or filename not in current.files:
        abort(404)
    try:
        schema, ui = _loaded(current, filename)
    except json.JSONDecodeError:
        schema, ui = {}, {}
    if request.method == "GET":
        return _form_page(current, filename, field_list.fields_of(schema, ui), title=schema.get("title", ""),
                          errors={}, schema=schema, ui=ui)
    action = request.form.get("action", "save")
    title = (request.form.get("title") or "").strip()
    if action == "raw":
        return _save_raw(current, key, filename)
    fields = field_list.fields_from_post(request.form)
    if action == "add":
        fields.append(field_list.FieldSpec(name="", label="", type="text"))
        return _form_page(current, filename, fields, title=title, errors={})
    if action.startswith(("up-", "down-")):
        where, _dash, index = action.partition("-")
        position = int_or_none(index)
        target = position - 1 if where == "up" else (position + 1 if position is not None else None)
        if position is not None and 0 <= position < len(fields) and target is not None and 0 <= target < len(fields):
            fields[position], fields[target] = fields[target], fields[position]
        return _form_page(current, filename, fields, title=title, errors={})
    errors = field_list.check_fields(fields)
    if action == "preview":  # htmx swaps the preview: an answer it takes, whatever the errors
        return _form_page(current, filename, fields, title=title, errors=errors)
    if errors:
        return _form_page(current, filename, fields, title=title, errors=errors, status=422)
    new_schema, new_ui = field_list.documents_of(fields, title=title, base_schema=schema, base_ui=ui)
    return _store_form(current, key, filename, new_schema, new_ui, fields=fields, title=title)


def _store_form(current, key, filename, schema: dict, ui: dict, *, fields, title, raw=None):
    schema_file, ui_file = _form_names(filename)
    texts = {schema_file: json.dumps(schema, ensure_ascii=False, indent=2)}
    if ui or ui_file in current.files:  # kept, even empty: the diagram may name it
        texts[ui_file] = json.dumps(ui or {}, ensure_ascii=False, indent=2)
    try:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise BusinessError(_("Ce n'est pas un JSON Schema valide (%(where)s : %(error)s).",
                                  where="/".join(str(p) for p in exc.path) or "racine", error=exc.message),
                                field="raw") from None
        design.save_draft(key, agent=current_user, revision=int_or_none(request.form.get("revision")) or 0,
                          forms=texts)
    except BusinessError as exc:
        db_session.rollback()
        return _form_page(current, filename, fields, title=title, errors={exc.field or "form": exc.message},
                          raw=raw, status=409 if isinstance(exc, design.StaleDraft) else 422)
    db_session.commit()
    flash(_("Formulaire %(name)s enregistré dans le brouillon.", name=filename), "success")
    return redirect(url_for("design.form", key=key, filename=filename), 303)


def _save_raw(current, key: str, filename: str):
    raw = {"schema": request.form.get("raw_schema", ""), "ui": request.form.get("raw_ui", "")}
    try:
        schema = json.loads(raw["schema"])
        ui = json.loads(raw["ui"]) if raw["ui"].strip() else {}
        if not isinstance(schema, dict) or not isinstance(ui, dict):
            raise ValueError
    except (json.JSONDecodeError, ValueError):
        old_schema, old_ui = _loaded(current, filename)
        return _form_page(current, filename, field_list.fields_of(old_schema, old_ui),
                          title=old_schema.get("title", ""), raw=raw, status=422, schema=old_schema, ui=old_ui,
                          errors={"raw": _("Le JSON est invalide : chaque document doit être un objet JSON.")})
    fields = field_list.fields_of(schema, ui)
    return _store_form(current, key, filename, schema, ui, fields=fields, title=schema.get("title", ""), raw=raw)


# --- The test run -------------------------------------------------------------------------------------

def _trial_page(current, *, trial_run=None, sample: str = "", errors: dict | None = None, task_uuid: str | None = None,
                status: int = 200):
    ready, form_fields = [], []
    if trial_run is not None:
        ready = trial_run.snapshot.ready
        shown = next((t for t in ready if t.uuid == task_uuid), ready[0] if ready else None)
        if shown is not None:
            schema, ui = trial_run.form_of(shown)
            values = request.form if errors else None
            form_fields = forms.build(schema, ui, forms.prefill(schema, shown.data) if values is None else
                                      forms.posted(schema, values), errors or {})
            task_uuid = shown.uuid
    return render_template("design/trial.html", draft=current, trial=trial_run, sample=sample, errors=errors or {},
                           task_uuid=task_uuid, form_fields=form_fields,
                           token=trial_run.token() if trial_run is not None else ""), status


@bp.route("/<key>/essai", methods=["GET", "POST"])
def trial_run(key: str):
    """A test run of the draft in a sandbox: nothing is written, operations go to a journal."""
    from app.processes import trial

    current = _draft_or_redirect(key)
    if current is None:
        return redirect(url_for("design.show", key=key), 303)
    if request.method == "GET":
        sample = trial.sample_data(current_user, key, current.files)
        return _trial_page(current, sample=json.dumps(sample, ensure_ascii=False, indent=2))
    action = request.form.get("action", "")
    sample = request.form.get("sample", "")
    try:
        if action == "start":
            try:
                data = json.loads(sample or "{}")
            except json.JSONDecodeError as exc:
                raise BusinessError(_("Données d'essai : JSON invalide (ligne %(line)s, colonne %(col)s).",
                                      line=exc.lineno, col=exc.colno), field="sample") from None
            if not isinstance(data, dict):
                raise BusinessError(_("Données d'essai : un objet JSON est attendu."), field="sample")
            run = trial.start(key, dict(current.files), data)
            audit.record("trial_run", obj=current)  # the draft's scripts ran on the server
            db_session.commit()
            return _trial_page(current, trial_run=run, sample=sample)
        run = trial.load(key, dict(current.files), request.form.get("token", ""))
        if action == "complete":
            uuid = request.form.get("task", "")
            errors = trial.complete(run, uuid, request.form)
            if errors:
                return _trial_page(current, trial_run=run, sample=sample, errors=errors, task_uuid=uuid, status=422)
        elif action == "fire":
            trial.fire(run, request.form.get("timer", ""))
        elif action == "message":
            trial.send(run, request.form.get("message", ""))
        elif action != "show":
            abort(400)
        return _trial_page(current, trial_run=run, sample=sample, task_uuid=request.form.get("task"))
    except engine.ProcessError as exc:
        return _trial_page(current, sample=sample, errors={"sample": _("Le brouillon ne passe pas les contrôles : "
                                                                        "%(error)s", error=str(exc))}, status=422)
    except BusinessError as exc:
        return _trial_page(current, sample=sample, errors={exc.field or "sample": exc.message}, status=422)

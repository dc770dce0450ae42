"""Letters in dossiers (generate, download) and the template pages of the referentials (list,
versions, upload, activate, try with sample data)."""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app.db import session as db_session
from app.documents import context as letter_data
from app.documents import pdf, service
from app.documents import templates as registry
from app.documents.models import DocumentTemplate, TemplateKind
from app.documents.rendering import MAX_TEMPLATE_BYTES, DocumentError, render, render_text
from app.dossiers.reads import get_dossier
from app.errors import BusinessError
from app.web import require_permission

bp = Blueprint("documents", __name__)
admin_bp = Blueprint("document_templates", __name__, url_prefix="/referentiels/modeles")


# --- Letters in dossiers ----------------------------------------------------------------------

@bp.route("/dossiers/<int:dossier_id>/courriers", methods=["POST"])
@require_permission(service.GENERATE)
def generate(dossier_id: int):
    dossier = get_dossier(agent=current_user, dossier_id=dossier_id)
    if dossier is None:
        abort(404)
    back = redirect(url_for("dossiers.show", dossier_id=dossier_id, _anchor="letters"), 303)
    try:
        prepared = service.prepare_for_agent(agent=current_user, dossier=dossier,
                                             template_code=request.form.get("template", ""))
        # The PDF is made with no transaction open: LibreOffice takes a second or more, and
        # SQLite holds its write lock for a whole transaction (PostgreSQL, the dossier's row lock).
        db_session.commit()
        converted = pdf.to_pdf(prepared.docx)
        element = service.keep_for_agent(agent=current_user, dossier_id=dossier_id, prepared=prepared,
                                         converted=converted)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        return back
    db_session.commit()
    if element.pdf_file_id:
        flash(_("Courrier « %(title)s » généré (Word et PDF).", title=element.title), "success")
    else:
        flash(_("Courrier « %(title)s » généré (Word).", title=element.title), "success")
    return back


@bp.route("/courriers/<int:element_id>/<any(docx, pdf):kind>")
@require_permission("party.read")
def download(element_id: int, kind: str):
    found = service.download(agent=current_user, element_id=element_id, as_pdf=kind == "pdf")
    if found is None:
        abort(404)
    return send_file(io.BytesIO(found.content), mimetype=found.media_type, as_attachment=True,
                     download_name=found.filename)


# --- Templates (referentials) -----------------------------------------------------------------

@admin_bp.before_request
@require_permission("admin.referentials")
def _guard():
    """Every page of this blueprint needs admin.referentials."""


def _template_or_404(code: str) -> list[DocumentTemplate]:
    found = registry.versions(code)
    if not found:
        abort(404)
    return found


@admin_bp.route("")
def index():
    return render_template("documents/templates.html", templates=registry.catalogue(),
                           kinds=TemplateKind, fields=letter_data.FIELDS)


@admin_bp.route("/<code>")
def show(code: str):
    versions = _template_or_404(code)
    return render_template("documents/template.html", versions=versions, newest=versions[0],
                           kinds=TemplateKind, fields=letter_data.FIELDS)


def _store_from_form(code: str, kind: str, label: str):
    if kind == TemplateKind.LETTER:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise DocumentError(_("Choisissez le fichier .docx du modèle."))
        data = upload.stream.read(MAX_TEMPLATE_BYTES + 1)
        return registry.add_letter(code=code, label=label, docx=data, filename=upload.filename)
    return registry.add_mail(code=code, label=label, subject=request.form.get("subject", ""),
                             body=request.form.get("body", ""))


def _stored_message(stored) -> None:
    template = stored.template
    if stored.created:  # the new row is in the audit trail (DocumentTemplate is audited)
        flash(_("Modèle %(code)s : version %(version)d enregistrée.", code=template.code,
                version=template.version), "success")
    else:
        flash(_("Ce contenu est déjà celui de la dernière version (%(version)d) du modèle %(code)s : rien de nouveau.",
                code=template.code, version=template.version), "info")


def _stored(write):
    """Store a new version and commit; None (with a message) when another administrator stored a
    version of the same template at the same moment (version numbers are unique per code)."""
    try:
        stored = write()
        db_session.commit()
    except IntegrityError:
        db_session.rollback()
        flash(_("Un autre administrateur vient d'enregistrer une version de ce modèle : rien n'a été "
                "enregistré ; relisez la page puis recommencez."), "error")
        return None
    _stored_message(stored)
    return stored


@admin_bp.route("", methods=["POST"])
def create():
    code, kind = request.form.get("code", "").strip(), request.form.get("kind", "")
    if kind not in TemplateKind.ALL:
        flash(_("Choisissez le genre du modèle : courrier ou mail."), "error")
        return redirect(url_for("document_templates.index"), 303)
    try:
        if registry.versions(code):
            raise DocumentError(_("Le code %(code)s existe déjà : ajoutez-lui une version depuis sa page.", code=code))
        stored = _stored(lambda: _store_from_form(code, kind, request.form.get("label", "")))
    except DocumentError as exc:
        db_session.rollback()
        flash(str(exc), "error")
        return render_template("documents/templates.html", templates=registry.catalogue(), kinds=TemplateKind,
                               fields=letter_data.FIELDS, form=request.form), 422
    if stored is None:
        return redirect(url_for("document_templates.index"), 303)
    return redirect(url_for("document_templates.show", code=stored.template.code), 303)


@admin_bp.route("/<code>", methods=["POST"])
def add_version(code: str):
    newest = _template_or_404(code)[0]
    try:
        _stored(lambda: _store_from_form(code, newest.kind, request.form.get("label") or newest.label))
    except DocumentError as exc:
        db_session.rollback()
        flash(str(exc), "error")
        versions = registry.versions(code)
        return render_template("documents/template.html", versions=versions, newest=versions[0],
                               kinds=TemplateKind, fields=letter_data.FIELDS, form=request.form), 422
    return redirect(url_for("document_templates.show", code=code), 303)


@admin_bp.route("/<code>/versions/<int:template_id>/etat", methods=["POST"])
def set_active(code: str, template_id: int):
    if not any(v.id == template_id for v in _template_or_404(code)):
        abort(404)
    template = registry.set_active(template_id=template_id, active=request.form.get("active") == "1")
    db_session.commit()
    flash(_("Version %(version)d : %(state)s.", version=template.version,
            state=_("active") if template.active else _("désactivée")), "success")
    return redirect(url_for("document_templates.show", code=code), 303)


@admin_bp.route("/<code>/versions/<int:template_id>/essai")
def try_out(code: str, template_id: int):
    """The version rendered with sample data: each field shows its own name ([customer.name]…)."""
    template = next((v for v in _template_or_404(code) if v.id == template_id), None)
    if template is None:
        abort(404)
    sample = letter_data.sample()
    if template.kind == TemplateKind.MAIL:
        return render_template("documents/mail_preview.html", template=template,
                               subject=render_text(template.subject, sample), body=render_text(template.body, sample))
    document = render(template.file.content, sample)
    return send_file(io.BytesIO(document), mimetype=registry.DOCX_MEDIA_TYPE, as_attachment=True,
                     download_name=f"essai-{template.code}-v{template.version}.docx")

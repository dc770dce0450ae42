"""Writing a mail from the dossier page (GET: the form, filled from a template; POST: to the outbox)."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.db import session as db_session
from app.documents import templates as registry
from app.documents.models import TemplateKind
from app.dossiers.reads import get_dossier
from app.errors import BusinessError
from app.mails import service
from app.mails.forms import MailForm
from app.web import require_permission

log = logging.getLogger(__name__)
bp = Blueprint("mails", __name__)


def _page(dossier, form: MailForm, status: int = 200):
    templates = registry.catalogue(TemplateKind.MAIL, active_only=True)
    letters = service.letters(dossier)
    form.template.choices = [("", _("— sans modèle —"))] + [(t.code, t.label) for t in templates]
    form.attachment.choices = [("", _("— aucune —"))] + [
        (str(x.id), f"{x.title} ({x.pdf_file.filename if x.pdf_file_id else x.file.filename})") for x in letters]
    return render_template("mails/compose.html", dossier=dossier, form=form,
                           recipients=service.recipients(agent=current_user, dossier=dossier),
                           smtp_configured=bool(current_app.config.get("SMTP_URL"))), status


def _dossier_or_404(dossier_id: int):
    dossier = get_dossier(agent=current_user, dossier_id=dossier_id)
    if dossier is None:
        abort(404)
    return dossier


@bp.route("/dossiers/<int:dossier_id>/mail")
@require_permission(service.SEND)
def compose(dossier_id: int):
    dossier = _dossier_or_404(dossier_id)
    form = MailForm(formdata=None)
    code = request.args.get("template", "")
    found = service.recipients(agent=current_user, dossier=dossier)
    form.recipient.data = found[0].address if found else ""
    if code:
        form.template.data = code
        try:
            form.subject.data, form.body.data = service.draft(agent=current_user, dossier=dossier, template_code=code)
        except BusinessError as exc:
            flash(exc.message, "error")
            return _page(dossier, form, 422)
    return _page(dossier, form)


@bp.route("/dossiers/<int:dossier_id>/mail", methods=["POST"])
@require_permission(service.SEND)
def send(dossier_id: int):
    dossier = _dossier_or_404(dossier_id)
    form = MailForm()
    if not form.validate():
        return _page(dossier, form, 422)
    attachment = form.attachment.data or ""
    try:
        mail = service.send_for_agent(
            agent=current_user, dossier_id=dossier.id, recipient=form.recipient.data, subject=form.subject.data,
            body=form.body.data, template_code=form.template.data or None,
            attachment_id=int(attachment) if attachment.isdigit() else None)
    except BusinessError as exc:
        db_session.rollback()
        if exc.field and exc.field in form:
            form[exc.field].errors = [*form[exc.field].errors, exc.message]
        else:
            flash(exc.message, "error")
        return _page(_dossier_or_404(dossier_id), form, 422)
    db_session.commit()
    _deliver_now(mail.id)
    if current_app.config.get("SMTP_URL"):
        flash(_("Mail « %(subject)s » mis en envoi pour %(to)s.", subject=mail.subject, to=mail.recipient), "success")
    else:
        flash(_("Mail « %(subject)s » enregistré : il partira quand un serveur de mail sera configuré.",
                subject=mail.subject), "info")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id, _anchor="mails"), 303)


@bp.route("/mails/<int:mail_id>/renvoyer", methods=["POST"])
@require_permission(service.SEND)
def resend(mail_id: int):
    try:
        mail = service.resend_for_agent(agent=current_user, mail_id=mail_id)
    except BusinessError as exc:
        db_session.rollback()
        flash(exc.message, "error")
        mail = service.mail_of(mail_id)
        return redirect(url_for("dossiers.show", dossier_id=mail.dossier_id, _anchor="mails"), 303)
    if mail is None:
        abort(404)
    db_session.commit()
    _deliver_now(mail.id)
    flash(_("Mail « %(subject)s » remis en envoi.", subject=mail.subject), "success")
    return redirect(url_for("dossiers.show", dossier_id=mail.dossier_id, _anchor="mails"), 303)


def _deliver_now(mail_id: int) -> None:
    """Ask a worker to send it at once; best effort: the beat job sends it anyway within seconds."""
    if not current_app.config.get("MAIL_DELIVER_AT_ONCE") or not current_app.config.get("SMTP_URL"):
        return
    from workers.tasks import deliver_mail

    try:
        deliver_mail.apply_async((mail_id,), retry=False)
    except Exception:  # noqa: BLE001 (the broker is down: the mail is safe in the outbox)
        log.warning("mail %s: could not ask a worker now; the beat job will send it", mail_id, exc_info=True)

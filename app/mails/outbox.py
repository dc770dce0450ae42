"""The outbox: mails written in the transaction of whatever sends them, delivered later over SMTP.

Writing (``queue_mail``, ``queue_from_template``) adds an ``OutgoingMail`` row with its final
Message-ID and flushes; the caller commits it together with its step or its agent's action, so a
step that fails sends nothing and a step that succeeds cannot lose its mail.

Delivering (``deliver``, ``deliver_due``) takes one row at a time, in three short transactions:

1. **claim**: the row, queued and due (or left "sending" by a worker that died, for longer than
   ``MAIL_CLAIM_SECONDS``), is locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
   writers), put "sending" with ``claimed_at`` and one more attempt, its message built (bytes of the
   attachment included), and committed. Two workers never hold the same row.
2. **send**, with no transaction open: one SMTP conversation.
3. **mark**: the row, read again under its lock, is still ours (same ``claimed_at``): "sent" with its
   "mail" dossier element, or back to "queued" with the next attempt's time (exponential backoff),
   or "failed" (a 5xx refusal, or the last attempt spent). Committed.

A worker that dies during 2 or before the commit of 3 leaves the row "sending". Once its claim is
older than ``MAIL_CLAIM_SECONDS`` (longer than any SMTP conversation can last with
``SMTP_TIMEOUT``), the next run takes it again and sends it **with the same Message-ID and Date**:
the message is byte-for-byte the same. If the first worker died before the server's final 250,
the server never accepted it and nothing is duplicated. If it died in the few milliseconds between
that 250 and the commit of 3, the recipient gets the message twice with one Message-ID, which mail
clients and most MTAs treat as one message; SMTP offers no way to ask a server whether it already
accepted a message, so this window cannot be closed from our side (docs/architecture.md § Mails).
"""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, exists, not_, or_, select

from app import clock
from app.audit import service as audit
from app.db import backoff as db_backoff
from app.db import session, skip_locked
from app.documents.models import DocumentTemplate, StoredFile
from app.documents.rendering import DocumentError, render_text
from app.dossiers.models import Dossier, DossierElement, ElementKind
from app.errors import BusinessError
from app.mails import smtp
from app.mails.models import MailStatus, OutgoingMail
from app.security.models import Agent

log = logging.getLogger(__name__)

SUBJECT_MAX = 300
BODY_MAX = 50_000
# A deliberately plain rule (ASCII dot-atom local part, host names with a dot): every address it
# accepts goes through any SMTP server; an unusual but valid one is refused with a clear message.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


class MailError(BusinessError):
    """A mail that cannot be written: the message says why, in French."""


def check_address(value: str | None, *, field: str = "recipient") -> str:
    """The address trimmed (its domain lowercase), or MailError."""
    address = (value or "").strip()
    if not address:
        raise MailError(_("Indiquez l'adresse e-mail du destinataire."), field=field)
    if len(address) > 254 or not _ADDRESS.fullmatch(address) or len(address.split("@")[0]) > 64:
        raise MailError(_("Adresse e-mail invalide : « %(address)s ».", address=address[:300]), field=field)
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _sender() -> tuple[str, str]:
    """(the From header, the envelope sender) from MAIL_FROM ("Nom <adresse>" or an address)."""
    configured = current_app.config["MAIL_FROM"]
    found = getaddresses([configured])
    address = found[0][1] if found and found[0][1] else configured
    return configured, address


def new_message_id() -> str:
    domain = current_app.config.get("MAIL_MESSAGE_ID_DOMAIN") or _sender()[1].rpartition("@")[2] or "guichet.local"
    return f"<{uuid.uuid4().hex}@{domain}>"


def queue_mail(*, dossier: Dossier, recipient: str, subject: str, body: str,
               attachment: DossierElement | None = None, template: DocumentTemplate | None = None,
               agent: Agent | None = None, instance_id: int | None = None) -> OutgoingMail:
    """Write a mail to the outbox, with its final Message-ID; the caller commits. The caller has
    checked the dossier's scope; attachment is one of the dossier's generated letters."""
    recipient = check_address(recipient)
    subject = " ".join((subject or "").replace("\x00", "").split())
    body = (body or "").replace("\x00", "").replace("\r\n", "\n").strip()
    if not subject:
        raise MailError(_("L'objet du mail est obligatoire."), field="subject")
    if len(subject) > SUBJECT_MAX:
        raise MailError(_("L'objet du mail tient en %(max)d caractères.", max=SUBJECT_MAX), field="subject")
    if not body:
        raise MailError(_("Le texte du mail est obligatoire."), field="body")
    if len(body) > BODY_MAX:
        raise MailError(_("Le texte du mail tient en %(max)d caractères.", max=BODY_MAX), field="body")
    if attachment is not None and (attachment.dossier_id != dossier.id or attachment.kind != ElementKind.LETTER
                                   or attachment.file_id is None):
        raise MailError(_("La pièce jointe doit être un courrier généré dans ce dossier."), field="attachment")
    now = clock.now()
    mail = OutgoingMail(message_id=new_message_id(), dossier_id=dossier.id, instance_id=instance_id,
                        template_id=template.id if template else None, recipient=recipient, subject=subject,
                        body=body + "\n", attachment_id=attachment.id if attachment else None,
                        status=MailStatus.QUEUED, attempts=0, next_attempt_at=now,
                        created_by_id=agent.id if agent else None, created_at=now)
    session.add(mail)
    session.flush()
    audit.record("queue_mail", obj=dossier, data={"mail": mail.id, "subject": subject, "to": recipient,
                                                  "attachment": attachment.title if attachment else None})
    return mail


def render_template(template: DocumentTemplate, context: dict) -> tuple[str, str]:
    """(subject, body) of a mail template rendered with a letter context; MailError when it cannot be."""
    try:
        return render_text(template.subject or "", context), render_text(template.body or "", context)
    except DocumentError as exc:
        raise MailError(_("Le modèle de mail %(code)s ne peut pas être rempli : %(detail)s",
                          code=template.code, detail=str(exc)), field="template") from None


def queue_from_template(*, dossier: Dossier, template: DocumentTemplate, context: dict, recipient: str,
                        attachment: DossierElement | None = None, agent: Agent | None = None,
                        instance_id: int | None = None) -> OutgoingMail:
    subject, body = render_template(template, context)
    return queue_mail(dossier=dossier, recipient=recipient, subject=subject, body=body, attachment=attachment,
                      template=template, agent=agent, instance_id=instance_id)


def for_dossier(dossier_id: int) -> list[OutgoingMail]:
    """The dossier's outbox, newest first (the caller read the dossier through the agent's scope)."""
    return list(session.execute(select(OutgoingMail).where(OutgoingMail.dossier_id == dossier_id)
                                .order_by(OutgoingMail.created_at.desc(), OutgoingMail.id.desc())).scalars())


def requeue(*, mail: OutgoingMail) -> OutgoingMail:
    """A failed mail given a fresh series of attempts (after its address or the server was corrected)."""
    if mail.status != MailStatus.FAILED:
        raise MailError(_("Seul un mail en échec peut être renvoyé."))
    mail.status, mail.attempts, mail.next_attempt_at, mail.claimed_at = MailStatus.QUEUED, 0, clock.now(), None
    session.flush()
    return mail


# --- Delivery ---------------------------------------------------------------------------------

def settings() -> smtp.SmtpSettings | None:
    url = current_app.config.get("SMTP_URL")
    return smtp.parse_url(url) if url else None


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt, after `attempts` attempts: 30 s, 1 min, 2 min… up to 1 h."""
    return db_backoff(attempts, base_seconds=current_app.config["MAIL_RETRY_SECONDS"],
                      max_seconds=current_app.config["MAIL_RETRY_MAX_SECONDS"])


def _due_clause(now: datetime):
    stale = now - timedelta(seconds=current_app.config["MAIL_CLAIM_SECONDS"])
    # A mail whose letter still waits for its PDF (written in mass, converted in batches) waits too.
    pdf_pending = exists(select(DossierElement.id).where(DossierElement.id == OutgoingMail.attachment_id,
                                                         DossierElement.pdf_pending.is_(True)))
    return and_(or_(and_(OutgoingMail.status == MailStatus.QUEUED,
                         or_(OutgoingMail.next_attempt_at.is_(None), OutgoingMail.next_attempt_at <= now)),
                    and_(OutgoingMail.status == MailStatus.SENDING, OutgoingMail.claimed_at < stale)),
                not_(pdf_pending))




def build_message(mail: OutgoingMail) -> EmailMessage:
    """The message, the same every time it is built for this row (Message-ID and Date included)."""
    header_from, _envelope = _sender()
    message = EmailMessage()
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at)
    message["From"] = header_from
    message["To"] = Address(addr_spec=mail.recipient)
    message["Subject"] = mail.subject
    message["Auto-Submitted"] = "auto-generated" if mail.created_by_id is None else "no"
    message.set_content(mail.body, cte="quoted-printable")
    letter = mail.attachment
    if letter is not None:
        file = session.get(StoredFile, letter.pdf_file_id or letter.file_id)
        maintype, _slash, subtype = file.media_type.partition("/")
        message.add_attachment(file.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=file.filename)
    return message


@dataclass
class _Claim:
    mail_id: int
    claimed_at: datetime
    recipient: str
    message: EmailMessage | None  # None: given up without sending


def _claim(now: datetime, mail_id: int | None, skip: set[int]) -> _Claim | None:
    stmt = select(OutgoingMail).where(_due_clause(now)).order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
    if mail_id is not None:
        stmt = stmt.where(OutgoingMail.id == mail_id)
    if skip:
        stmt = stmt.where(OutgoingMail.id.not_in(skip))
    stmt = skip_locked(stmt.limit(1), OutgoingMail).execution_options(populate_existing=True)
    mail = session.execute(stmt).scalar_one_or_none()
    if mail is None:
        session.rollback()
        return None
    if mail.status == MailStatus.SENDING:  # its worker died; the mail may or may not have left
        if mail.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
            mail.status, mail.next_attempt_at = MailStatus.FAILED, None
            mail.last_error = _("L'envoi s'est interrompu à chaque tentative : abandonné (le mail a pu partir).")
            session.commit()
            return _Claim(mail_id=mail.id, claimed_at=now, recipient=mail.recipient, message=None)
        mail.last_error = _("L'envoi précédent s'est interrompu ; le mail est renvoyé avec le même Message-ID.")
        log.warning("mail %s: claim of %s expired, sending it again with %s", mail.id, mail.claimed_at,
                    mail.message_id)
    mail.status, mail.claimed_at, mail.attempts = MailStatus.SENDING, now, mail.attempts + 1
    try:
        message = build_message(mail)
    except Exception as exc:  # noqa: BLE001 (a mail we cannot even build is a failure, not a crash loop)
        mail.status, mail.next_attempt_at = MailStatus.FAILED, None
        mail.last_error = _("Le mail ne peut pas être construit : %(error)s", error=str(exc))
        session.commit()
        return _Claim(mail_id=mail.id, claimed_at=now, recipient=mail.recipient, message=None)
    claim = _Claim(mail.id, now, mail.recipient, message)
    session.commit()
    return claim


def _held(claim: _Claim) -> OutgoingMail | None:
    """The row under its lock, if it is still this claim's (not taken over after an expired claim)."""
    stmt = select(OutgoingMail).where(OutgoingMail.id == claim.mail_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    mail = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if mail is None or mail.status != MailStatus.SENDING or mail.claimed_at != claim.claimed_at:
        log.warning("mail %s was taken over by another worker while this one sent it", claim.mail_id)
        return None
    return mail


def _mark_sent(mail: OutgoingMail, now: datetime) -> None:
    attachment = mail.attachment
    lines = [_("À : %(to)s", to=mail.recipient)]
    if attachment is not None:
        lines.append(_("Pièce jointe : %(title)s", title=attachment.title))
    element = DossierElement(dossier_id=mail.dossier_id, kind=ElementKind.MAIL, title=mail.subject[:200],
                             body="\n".join(lines) + "\n\n" + mail.body, created_by_id=mail.created_by_id,
                             created_at=now)
    session.add(element)
    session.flush()
    mail.status, mail.sent_at, mail.element_id, mail.last_error = MailStatus.SENT, now, element.id, None
    mail.next_attempt_at = None
    audit.record("mail_sent", object_type="dossier", object_id=str(mail.dossier_id),
                 data={"mail": mail.id, "subject": mail.subject, "to": mail.recipient})


def _mark_failed_attempt(mail: OutgoingMail, error: smtp.DeliveryError, now: datetime) -> None:
    mail.last_error = error.message[:2000]
    if error.permanent or mail.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
        mail.status, mail.next_attempt_at = MailStatus.FAILED, None
    else:
        mail.status, mail.next_attempt_at = MailStatus.QUEUED, now + backoff(mail.attempts)


def deliver(mail_id: int | None = None, *, after_send: Callable[[], None] | None = None) -> str | None:
    """Deliver one due mail (this one, or the most overdue): its status afterwards ("sent",
    "queued" for a later attempt, "failed"), or None when none was due or no server is configured.
    Commits. after_send: a fault-injection hook, run after the server accepted the mail and before
    it is marked sent."""
    server = settings()
    if server is None:
        return None
    return _deliver_one(server, mail_id, set(), after_send)[1]


def deliver_due(limit: int = 100, *, after_send: Callable[[], None] | None = None) -> dict[str, int]:
    """Deliver the due mails, one at a time (three short transactions each), at most limit; the
    counts by resulting status. Nothing when no server is configured: the mails wait, queued."""
    counts: dict[str, int] = {}
    server = settings()
    if server is None:
        return counts
    skip: set[int] = set()
    for _i in range(limit):
        mail_id, status = _deliver_one(server, None, skip, after_send)
        if mail_id is None:
            break
        skip.add(mail_id)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts


def _deliver_one(server: smtp.SmtpSettings, mail_id: int | None, skip: set[int],
                 after_send: Callable[[], None] | None) -> tuple[int | None, str | None]:
    claim = _claim(clock.now(), mail_id, skip)
    if claim is None:
        return None, None
    if claim.message is None:  # given up without sending (see _claim)
        return claim.mail_id, MailStatus.FAILED
    try:
        smtp.deliver(server, claim.message, envelope_from=_sender()[1], recipient=claim.recipient,
                     timeout=current_app.config["SMTP_TIMEOUT"])
        error = None
    except smtp.DeliveryError as exc:
        error = exc
    if error is None and after_send is not None:
        after_send()
    now = clock.now()
    mail = _held(claim)
    if mail is None:
        session.rollback()
        return claim.mail_id, None
    if error is None:
        _mark_sent(mail, now)
    else:
        log.info("mail %s not delivered (attempt %s): %s", mail.id, mail.attempts, error.message)
        _mark_failed_attempt(mail, error, now)
    status = mail.status
    session.commit()
    return claim.mail_id, status

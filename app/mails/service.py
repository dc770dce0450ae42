"""Mails about a dossier: written by an agent from the dossier page, or by a process step (the
``send_mail`` service operation), both into the outbox (app/mails/outbox.py) in their own
transaction. Functions flush; the caller commits."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from app.db import session
from app.documents import service as documents
from app.documents import templates as registry
from app.documents.models import DocumentTemplate, TemplateKind
from app.documents.rendering import DocumentError
from app.dossiers.models import Dossier, DossierElement, DossierParty, ElementKind
from app.dossiers.reads import get_dossier
from app.labels import label
from app.mails.models import OutgoingMail
from app.mails.outbox import MailError, check_address, queue_from_template, queue_mail, render_template, requeue
from app.parties.models import Party
from app.parties.service import readable_party_ids
from app.security.models import Agent

SEND = "dossier.create"  # who may add a note to a dossier may write to its customer


@dataclass(frozen=True)
class Recipient:
    address: str
    label: str  # "Hélène Lefèvre (client)"


def recipients(*, agent: Agent, dossier: Dossier) -> list[Recipient]:
    """The e-mail addresses of the dossier's parties the agent may read, its addressee first."""
    links = session.execute(select(DossierParty).where(DossierParty.dossier_id == dossier.id)).scalars().all()
    visible = readable_party_ids(agent=agent, party_ids=[x.party_id for x in links])
    first = documents.addressee(dossier)
    ordered = sorted((x for x in links if x.party_id in visible),
                     key=lambda x: (first is None or x.party_id != first.id, x.party_id))
    found: list[Recipient] = []
    for link in ordered:
        party = session.get(Party, link.party_id)
        for email in party.emails:
            if all(r.address != email.address for r in found):
                found.append(Recipient(email.address, f"{party.display_name} ({label(link.role, 'party_link_role')})"))
    return found


def letters(dossier: Dossier) -> list[DossierElement]:
    """The dossier's generated letters, newest first: what a mail may attach."""
    return list(session.execute(select(DossierElement).where(
        DossierElement.dossier_id == dossier.id, DossierElement.kind == ElementKind.LETTER,
        DossierElement.file_id.is_not(None)).order_by(DossierElement.created_at.desc(),
                                                      DossierElement.id.desc())).scalars())


def mail_template(code: str) -> DocumentTemplate:
    template = registry.latest(code, TemplateKind.MAIL)
    if template is None:
        raise MailError(_("Modèle de mail inconnu ou désactivé : %(code)s.", code=code), field="template")
    return template


def draft(*, agent: Agent, dossier: Dossier, template_code: str) -> tuple[str, str]:
    """(subject, body) of the template filled with the dossier's data, for the agent to edit."""
    try:
        context = documents.letter_context(dossier, agent, reader=agent)
    except DocumentError as exc:
        raise MailError(str(exc)) from None
    return render_template(mail_template(template_code), context)


def send_for_agent(*, agent: Agent, dossier_id: int, recipient: str, subject: str, body: str,
                   template_code: str | None = None, attachment_id: int | None = None) -> OutgoingMail:
    """An agent's mail from the dossier page: the dossier in scope and open, the attachment one of
    its letters; written to the outbox."""
    from app.dossiers.service import open_for_writing  # the rule agents follow for every write to a dossier

    dossier = open_for_writing(agent, dossier_id, SEND)
    template = mail_template(template_code) if template_code else None
    attachment = None
    if attachment_id is not None:
        attachment = next((x for x in letters(dossier) if x.id == attachment_id), None)
        if attachment is None:
            raise MailError(_("La pièce jointe doit être un courrier généré dans ce dossier."), field="attachment")
    return queue_mail(dossier=dossier, recipient=recipient, subject=subject, body=body, attachment=attachment,
                      template=template, agent=agent)


def mail_of(mail_id: int) -> OutgoingMail | None:
    return session.get(OutgoingMail, mail_id)


def resend_for_agent(*, agent: Agent, mail_id: int) -> OutgoingMail | None:
    """A failed mail given a fresh series of attempts by an agent who may write to its dossier (after
    the address or the server was corrected); None when its dossier is out of the agent's scope."""
    from app.dossiers.service import open_for_writing

    mail = mail_of(mail_id)
    if mail is None or get_dossier(agent=agent, dossier_id=mail.dossier_id) is None:
        return None
    open_for_writing(agent, mail.dossier_id, SEND)
    return requeue(mail=mail)


def _attachment(dossier: Dossier, wanted) -> DossierElement | None:
    if wanted in (None, ""):
        return None
    if not isinstance(wanted, str):
        raise MailError(_("Paramètre « attach » : le code d'un modèle de courrier, ou \"last\"."))
    found = letters(dossier)
    if wanted != "last":
        versions = {t.id for t in registry.versions(wanted) if t.kind == TemplateKind.LETTER}
        found = [x for x in found if x.template_id in versions]
    if not found:
        if wanted == "last":
            raise MailError(_("Aucun courrier n'a été généré dans ce dossier : rien à joindre au mail."))
        raise MailError(_("Aucun courrier « %(code)s » n'a été généré dans ce dossier : rien à joindre au mail.",
                          code=wanted))
    return found[0]


def _sendable(party) -> str | None:
    """The customer's first address a mail can go to (some addresses kept on file, with accents
    before the @ for instance, are not deliverable as they are)."""
    for email in party.emails:
        try:
            return check_address(email.address)
        except MailError:
            continue
    return None


def _customer_address(dossier: Dossier) -> str:
    party = documents.addressee(dossier)
    if party is None:
        raise MailError(_("Le dossier %(reference)s n'a pas de client à qui écrire.", reference=dossier.reference))
    address = _sendable(party)
    if address is None:
        raise MailError(_("Le client %(name)s (%(number)s) n'a pas d'adresse e-mail : le mail ne peut pas "
                          "partir. Ajoutez-en une à sa fiche, puis relancez l'étape.",
                          name=party.display_name, number=party.number))
    return address


def run_operation(data: dict, params: dict) -> dict:
    """The ``send_mail`` service operation. params: ``template`` (a mail template code), ``attach``
    (optional: a letter template code, the newest such letter of the dossier is attached; or "last",
    its newest letter), ``to`` (optional: an address; by default the customer's first one),
    ``to_field`` (optional: the name of a form field holding an address, used when it was
    answered), ``if_email`` (optional: true to skip, rather than fail, when the customer has no address — a
    reminder also goes by post). Writes the outbox row in the step's transaction; returns its id,
    recipient and Message-ID, or ``{"skipped": …}``."""
    from app.processes.models import InstanceStatus, ProcessInstance  # processes build on mails

    code = params.get("template")
    if not isinstance(code, str) or not code:
        raise MailError(_("Paramètre « template » manquant : le code du modèle de mail."))
    dossier, agent, answers = documents.step_context(data)
    template = mail_template(code)
    to = params.get("to")
    if to not in (None, "") and not isinstance(to, str):
        raise MailError(_("Paramètre « to » : une adresse e-mail."))
    if not to and isinstance(params.get("to_field"), str):
        # An address a step's form collected (the move-in asks for one), when it was given.
        given = answers.get(params["to_field"])
        to = given if isinstance(given, str) and given.strip() else None
    if not to and params.get("if_email") is True:
        party = documents.addressee(dossier)
        if party is None or _sendable(party) is None:
            return {"skipped": "no_email"}
    recipient = to or _customer_address(dossier)
    attachment = _attachment(dossier, params.get("attach"))
    instance_id = session.execute(select(ProcessInstance.id).where(
        ProcessInstance.dossier_id == dossier.id, ProcessInstance.status.in_(InstanceStatus.ACTIVE))
        .order_by(ProcessInstance.id.desc()).limit(1)).scalar()
    mail = queue_from_template(dossier=dossier, template=template,
                               context=documents.letter_context(dossier, agent, answers), recipient=recipient,
                               attachment=attachment, agent=None, instance_id=instance_id)
    return {"mail_id": mail.id, "to": mail.recipient, "message_id": mail.message_id}

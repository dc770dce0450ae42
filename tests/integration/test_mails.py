"""The mail outbox against a real SMTP server (aiosmtpd on a loopback port): a queued mail is
delivered with its subject, body, attachment and Message-ID, marked sent and kept as a dossier
element; a server down means another attempt later (backoff), then one delivery; a 5xx refusal is a
failure with the server's words; a worker that died after sending resends the same Message-ID; two
deliverers send once (PostgreSQL); the ``send_mail`` step writes the outbox row in its own
transaction, or puts the process in error with a clear message; the dossier's mail page (form,
scope, CSRF); and a real Celery worker delivering, then one killed after the server's 250."""
from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from celery import Celery
from sqlalchemy import func, select

from app.audit.context import AuditContext, set_context
from app.contacts.links import AgentLink, Links, PartyLink
from app.db import db, session
from app.documents import templates as registry
from app.dossiers import service as dossiers
from app.dossiers.models import DossierElement, ElementKind
from app.mails import outbox
from app.mails.models import MailStatus, OutgoingMail
from app.mails.outbox import MailError
from app.processes import service as processes
from app.processes.models import InstanceStatus
from tests.conftest import csrf_token
from tests.factories import AgentFactory, role_with
from tests.integration.contacts_world import NOW, build_world, dossier_type
from tests.integration.test_contacts_hardening import _fresh_csrf
from tests.integration.test_process_instances import _marks, _wipe, deploy, flow, the_task, user_task
from tests.integration.test_worker import _broker_url, worker_database  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
FORM = {"type": "object", "properties": {"note": {"type": "string"}}}


# --- A real SMTP server -------------------------------------------------------------------------

class Mailbox:
    """What the server received; recipients starting with "inconnu" are refused for good (550),
    those starting with "plus-tard" for now (451)."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_delay = 0.0

    async def handle_RCPT(self, server, session_, envelope, address, rcpt_options):
        if address.startswith("inconnu"):
            return "550 5.1.1 Destinataire inconnu ici"
        if address.startswith("plus-tard"):
            return "451 4.3.0 Reessayez plus tard"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session_, envelope):
        if self.data_delay:
            import asyncio

            await asyncio.sleep(self.data_delay)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 2.0.0 Accepte"

    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.received]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(app, monkeypatch):
    server = SmtpServer()
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    monkeypatch.setitem(app.config, "MAIL_DELIVER_AT_ONCE", False)
    monkeypatch.setitem(app.config, "MAIL_FROM", "Régie des Eaux <guichet@regie.example>")
    yield server
    server.stop()


# --- The world --------------------------------------------------------------------------------

@pytest.fixture(name="world")
def world_fixture(app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    found = build_world(places, customer)
    registry.add_mail(code="welcome", label="Bienvenue",
                      subject="Votre dossier {{ dossier.reference }}",
                      body="{{ customer.salutation }},\n\nVotre dossier {{ dossier.reference }} est ouvert.\n"
                           "Cordialement,\n{{ organisation.name }}")
    session.commit()
    found.frozen_clock = frozen_clock
    return found


def a_dossier(world, *, key: str | None = None, party=None):
    kind = dossier_type(label=f"Dossier {key or 'courriel'}")
    kind.process_key = key
    session.commit()
    found = dossiers.open_dossier(agent=world.agent, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink((party or world.helene).id, "customer")], agents=[AgentLink(world.agent.id, "emitter")]))
    session.commit()
    return found


def a_letter(dossier, *, pdf: bool = True) -> DossierElement:
    """A generated letter (its .docx, and its PDF when asked), as documents.service keeps one."""
    docx = registry.stored_file(f"{dossier.reference}-relance.docx", registry.DOCX_MEDIA_TYPE, b"PK-docx-bytes")
    pdf_file = registry.stored_file(f"{dossier.reference}-relance.pdf", "application/pdf", b"%PDF-1.7 lettre") \
        if pdf else None
    element = DossierElement(dossier_id=dossier.id, kind=ElementKind.LETTER, title="Lettre de relance",
                             file=docx, pdf_file=pdf_file, created_at=NOW)
    session.add(element)
    session.commit()
    return element


def mail_rows(dossier_id: int) -> list[OutgoingMail]:
    session.expire_all()
    return list(session.execute(select(OutgoingMail).where(OutgoingMail.dossier_id == dossier_id)
                                .order_by(OutgoingMail.id)).scalars())


# --- Writing and delivering -------------------------------------------------------------------

def test_a_queued_mail_is_delivered_with_its_attachment_marked_sent_and_kept_in_the_dossier(world, smtp_server):
    dossier = a_dossier(world)
    letter = a_letter(dossier)
    mail = outbox.queue_mail(dossier=dossier, recipient="Helene.Lefevre@Example.FR", subject="Votre relevé  d'eau",
                             body="Madame,\r\n\r\nVoici le courrier. Été 2026 : ça marche.", attachment=letter,
                             agent=world.agent)
    session.commit()
    assert mail.status == MailStatus.QUEUED and mail.recipient == "Helene.Lefevre@example.fr"
    assert mail.message_id.startswith("<") and mail.message_id.endswith("@regie.example>")
    assert smtp_server.mailbox.received == []  # nothing leaves before a worker delivers it

    assert outbox.deliver_due() == {"sent": 1}
    [received] = smtp_server.mailbox.received
    assert smtp_server.mailbox.envelopes == [("guichet@regie.example", ["Helene.Lefevre@example.fr"])]
    assert received["Message-ID"] == mail.message_id
    assert received["Subject"] == "Votre relevé d'eau"
    assert received["To"] == "Helene.Lefevre@example.fr" and "guichet@regie.example" in received["From"]
    assert received["Date"].datetime == NOW
    text = received.get_body(("plain",)).get_content()
    assert "Voici le courrier. Été 2026 : ça marche." in text
    [attached] = list(received.iter_attachments())
    assert attached.get_filename() == f"{dossier.reference}-relance.pdf"  # the PDF when there is one
    assert attached.get_content() == b"%PDF-1.7 lettre"

    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (MailStatus.SENT, 1, NOW, None)
    element = session.get(DossierElement, row.element_id)
    assert element.kind == ElementKind.MAIL and element.title == "Votre relevé d'eau"
    assert element.body.startswith("À : Helene.Lefevre@example.fr\nPièce jointe : Lettre de relance\n\n")
    assert outbox.deliver_due() == {}  # sent once: nothing more to do
    assert len(smtp_server.mailbox.received) == 1


def test_a_letter_without_pdf_is_attached_as_docx(world, smtp_server):
    dossier = a_dossier(world)
    outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Courrier", body="Ci-joint.",
                      attachment=a_letter(dossier, pdf=False))
    session.commit()
    outbox.deliver_due()
    [attached] = list(smtp_server.mailbox.received[0].iter_attachments())
    assert attached.get_filename().endswith(".docx") and attached.get_content() == b"PK-docx-bytes"
    assert attached.get_content_type() == registry.DOCX_MEDIA_TYPE


@pytest.mark.parametrize("address", ["", "helene", "helene@", "a b@example.fr", "helene@example", "x@exa_mple.fr",
                                     "helene@example.fr, pirate@example.com", "helene@example.fr\nBcc: x@y.fr",
                                     "<helene@example.fr>", "hélène@example.fr"])
def test_a_bad_address_is_refused_with_a_clear_message_and_nothing_is_written(world, address):
    dossier = a_dossier(world)
    with pytest.raises(MailError, match="adresse e-mail|Adresse e-mail invalide") as refused:
        outbox.queue_mail(dossier=dossier, recipient=address, subject="Objet", body="Texte")
    assert refused.value.field == "recipient"
    assert mail_rows(dossier.id) == []


def test_a_mail_from_another_dossier_cannot_carry_a_letter_it_does_not_hold(world):
    dossier, other = a_dossier(world), a_dossier(world)
    with pytest.raises(MailError, match="courrier généré dans ce dossier"):
        outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Objet", body="Texte",
                          attachment=a_letter(other))


def test_without_smtp_url_mails_wait_queued(world, monkeypatch, app):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    dossier = a_dossier(world)
    outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Objet", body="Texte")
    session.commit()
    assert outbox.deliver_due() == {} and outbox.deliver() is None
    assert [m.status for m in mail_rows(dossier.id)] == [MailStatus.QUEUED]


def test_a_server_down_means_a_later_attempt_with_backoff_then_one_delivery(world, smtp_server):
    smtp_server.stop()  # nothing listens on its port now
    dossier = a_dossier(world)
    mail = outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Objet", body="Texte")
    session.commit()
    clock = world.frozen_clock

    assert outbox.deliver_due() == {"queued": 1}
    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts) == (MailStatus.QUEUED, 1)
    assert row.next_attempt_at == NOW + timedelta(seconds=30) and "injoignable" in row.last_error
    clock.advance(seconds=29)
    assert outbox.deliver_due() == {}  # not due yet
    clock.advance(seconds=1)
    assert outbox.deliver_due() == {"queued": 1}
    [row] = mail_rows(dossier.id)
    assert row.attempts == 2 and row.next_attempt_at == clock.current + timedelta(seconds=60)  # doubled

    smtp_server.start()  # back, on the same port
    clock.advance(seconds=60)
    assert outbox.deliver_due() == {"sent": 1}
    assert smtp_server.mailbox.message_ids() == [mail.message_id]
    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts, row.last_error) == (MailStatus.SENT, 3, None)
    assert outbox.backoff(20) == timedelta(hours=1)  # capped


def test_a_server_that_keeps_answering_4xx_ends_in_failure_after_the_last_attempt(world, smtp_server, app,
                                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_MAX_ATTEMPTS", 3)
    dossier = a_dossier(world)
    outbox.queue_mail(dossier=dossier, recipient="plus-tard@example.fr", subject="Objet", body="Texte")
    session.commit()
    outcomes = []
    for _i in range(3):
        outcomes.append(outbox.deliver_due())
        world.frozen_clock.advance(hours=2)
    assert outcomes == [{"queued": 1}, {"queued": 1}, {"failed": 1}]
    [row] = mail_rows(dossier.id)
    assert row.status == MailStatus.FAILED and row.attempts == 3
    assert "451" in row.last_error and "plus tard" in row.last_error
    assert smtp_server.mailbox.received == []


def test_a_permanent_refusal_fails_at_once_with_the_servers_message(world, smtp_server):
    dossier = a_dossier(world)
    outbox.queue_mail(dossier=dossier, recipient="inconnu@example.fr", subject="Objet", body="Texte")
    session.commit()
    assert outbox.deliver_due() == {"failed": 1}
    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts, row.element_id) == (MailStatus.FAILED, 1, None)
    assert "550" in row.last_error and "Destinataire inconnu ici" in row.last_error
    world.frozen_clock.advance(days=1)
    assert outbox.deliver_due() == {}  # never tried again…
    outbox.requeue(mail=row)  # …unless someone asks for it
    assert row.status == MailStatus.QUEUED and row.attempts == 0


def test_a_worker_that_died_after_sending_is_followed_by_a_resend_with_the_same_message_id(world, smtp_server):
    """The window SMTP leaves open: the server accepted the mail, the worker died before marking it.
    The row stays "sending"; once its claim is stale it is sent again, byte for byte the same
    message (same Message-ID, same Date): the recipient's client shows it once."""
    dossier = a_dossier(world)
    mail = outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Objet", body="Texte")
    session.commit()
    mail_id, message_id = mail.id, mail.message_id

    class WorkerDied(BaseException):
        pass

    def die():
        raise WorkerDied

    with pytest.raises(WorkerDied):
        outbox.deliver_due(after_send=die)
    session.rollback()  # what the dead worker never committed
    assert len(smtp_server.mailbox.received) == 1
    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts, row.element_id) == (MailStatus.SENDING, 1, None)

    world.frozen_clock.advance(seconds=599)
    assert outbox.deliver_due() == {}  # its claim may still be a live worker's: left alone
    world.frozen_clock.advance(seconds=2)
    assert outbox.deliver_due() == {"sent": 1}
    first, second = smtp_server.mailbox.received
    assert first["Message-ID"] == second["Message-ID"] == message_id
    assert first.as_bytes() == second.as_bytes()
    [row] = mail_rows(dossier.id)
    assert (row.id, row.status, row.attempts) == (mail_id, MailStatus.SENT, 2)
    elements = session.execute(select(func.count()).select_from(DossierElement).where(
        DossierElement.dossier_id == dossier.id, DossierElement.kind == ElementKind.MAIL)).scalar_one()
    assert elements == 1


def test_a_mail_interrupted_at_every_attempt_is_given_up(world, smtp_server, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_MAX_ATTEMPTS", 1)
    dossier = a_dossier(world)
    outbox.queue_mail(dossier=dossier, recipient="helene@example.fr", subject="Objet", body="Texte")
    session.commit()

    def die():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        outbox.deliver_due(after_send=die)
    session.rollback()
    world.frozen_clock.advance(hours=1)
    assert outbox.deliver_due() == {"failed": 1}
    [row] = mail_rows(dossier.id)
    assert row.status == MailStatus.FAILED and "a pu partir" in row.last_error
    assert len(smtp_server.mailbox.received) == 1


@pytest.mark.no_db_transaction
def test_two_deliverers_at_once_send_a_mail_once(app, monkeypatch):
    """Two workers run the delivery job at the same moment: one claims the mail (its row locked
    and committed "sending" before the SMTP conversation), the other skips it."""
    from app.parties.models import Party, PartyEmail
    from tests.factories import TerritoryFactory

    if db.get_engine().dialect.name != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL only")
    server = SmtpServer()
    server.mailbox.data_delay = 0.5  # the first conversation is still going when the second worker looks
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    with app.app_context():
        marks = _marks()
        set_context(AuditContext(actor_label="test"))
        territory = TerritoryFactory(code="T-MAIL-RACE", kind="agency")
        party = Party(number="MAILRACE1", last_name="Concurrent", status="customer", territory_id=territory.id,
                      emails=[PartyEmail(address="concurrent@example.fr", position=0)])
        session.add(party)
        session.commit()
        dossier = dossiers.open_dossier(agent=None, dossier_type_id=dossier_type(label="Course").id,
                                        links=Links(parties=[PartyLink(party.id, "customer")]))
        mail = outbox.queue_mail(dossier=dossier, recipient="concurrent@example.fr", subject="Une fois",
                                 body="Texte")
        session.commit()
        mail_id = mail.id
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def run() -> None:
        with app.app_context():
            set_context(AuditContext(actor_label="test"))
            barrier.wait(timeout=30)
            results.append(outbox.deliver_due())

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results, key=len) == [{}, {"sent": 1}]
        assert len(server.mailbox.received) == 1
        with app.app_context():
            row = session.get(OutgoingMail, mail_id)
            assert (row.status, row.attempts) == (MailStatus.SENT, 1)
    finally:
        server.stop()
        with app.app_context():
            _wipe(marks)


# --- The send_mail step -----------------------------------------------------------------------

def mail_step(params: str) -> str:
    """start → a user task → send_mail(params) → end"""
    return ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
            + flow("f1", "start", "enter") + user_task("enter", "f1", "f2") + flow("f2", "enter", "mail")
            + f"""<bpmn:serviceTask id="mail" name="Écrire au client">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="send_mail" resultVariable="mailed">
        <spiffworkflow:parameters>{params}</spiffworkflow:parameters>
      </spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>"""
            + flow("f3", "mail", "end") + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')


def param(name: str, value: str) -> str:
    return f'<spiffworkflow:parameter id="{name}" type="str" value="{value}" />'


def run_to_mail_step(world, key: str, params: str, *, party=None):
    deploy(key, mail_step(params), {"form.json": FORM})
    dossier = a_dossier(world, key=key, party=party)
    instance = processes.start(key=key, agent=world.agent, dossier=dossier)
    processes.complete_task(agent=world.agent, task_id=the_task(instance).id, answers={"note": "ok"})
    return dossier, instance


def test_the_send_mail_step_writes_the_outbox_row_in_its_own_transaction(world, smtp_server):
    # The letter exists before the step runs.
    deploy("mail_welcome", mail_step(param("template", "&quot;welcome&quot;") + param("attach", "&quot;last&quot;")),
           {"form.json": FORM})
    dossier = a_dossier(world, key="mail_welcome")
    letter = a_letter(dossier)
    instance = processes.start(key="mail_welcome", agent=world.agent, dossier=dossier)
    session.commit()
    task = the_task(instance)
    processes.complete_task(agent=world.agent, task_id=task.id, answers={"note": "ok"})
    # Before the step commits, the row is there in its transaction, and only there.
    assert len(mail_rows(dossier.id)) == 1
    session.rollback()
    assert mail_rows(dossier.id) == []  # rolled back with the step: no mail without its step
    processes.complete_task(agent=world.agent, task_id=task.id, answers={"note": "ok"})
    session.commit()
    assert instance.status == InstanceStatus.COMPLETED
    [row] = mail_rows(dossier.id)
    assert (row.status, row.recipient, row.instance_id, row.attachment_id, row.created_by_id) == (
        MailStatus.QUEUED, "helene@example.fr", instance.id, letter.id, None)
    assert row.subject == f"Votre dossier {dossier.reference}"
    assert row.body.startswith("M.,\n\n") or row.body.startswith("Madame,\n\n")
    assert f"Votre dossier {dossier.reference} est ouvert." in row.body
    assert row.template_id == registry.latest("welcome", "mail").id

    assert outbox.deliver_due() == {"sent": 1}
    [received] = smtp_server.mailbox.received
    assert received["Subject"] == f"Votre dossier {dossier.reference}"
    assert len(list(received.iter_attachments())) == 1


def test_the_send_mail_step_takes_an_explicit_address(world):
    dossier, instance = run_to_mail_step(world, "mail_to", param("template", "&quot;welcome&quot;")
                                         + param("to", "&quot;service.social@example.fr&quot;"))
    session.commit()
    assert instance.status == InstanceStatus.COMPLETED
    assert [m.recipient for m in mail_rows(dossier.id)] == ["service.social@example.fr"]


@pytest.mark.parametrize(("params", "message"), [
    (param("template", "&quot;nope&quot;"), "Modèle de mail inconnu ou désactivé : nope"),
    (param("template", "&quot;welcome&quot;") + param("attach", "&quot;relance_1&quot;"),
     "Aucun courrier « relance_1 » n'a été généré dans ce dossier"),
    (param("template", "&quot;welcome&quot;") + param("to", "&quot;pas-une-adresse&quot;"),
     "Adresse e-mail invalide"),
])
def test_a_send_mail_step_that_cannot_write_puts_the_process_in_error(world, params, message):
    dossier, instance = run_to_mail_step(world, "mail_bad", params)
    session.commit()
    assert instance.status == InstanceStatus.ERROR and instance.error_element == "Écrire au client"
    assert message in instance.error_message
    assert mail_rows(dossier.id) == []


def test_a_customer_without_email_puts_the_process_in_error_then_a_retry_sends(world):
    from app.parties.models import PartyEmail

    paul = world.paul  # no email
    dossier, instance = run_to_mail_step(world, "mail_noaddr", param("template", "&quot;welcome&quot;"), party=paul)
    session.commit()
    assert instance.status == InstanceStatus.ERROR
    assert "n'a pas d'adresse e-mail" in instance.error_message and paul.number in instance.error_message
    assert mail_rows(dossier.id) == []
    # Someone adds the address; the supervisor retries the step: one mail.
    session.add(PartyEmail(party_id=paul.id, address="paul@example.fr", position=0))
    session.commit()
    session.expire_all()
    supervisor = AgentFactory(roles=[role_with("superviseur")], territories=[world.places["lyon_agency"]])
    processes.retry(agent=supervisor, instance_id=instance.id)
    session.commit()
    assert instance.status == InstanceStatus.COMPLETED
    assert [m.recipient for m in mail_rows(dossier.id)] == ["paul@example.fr"]


# --- The dossier's mail page ------------------------------------------------------------------

@pytest.fixture
def page_world(world, client, auth, smtp_server):
    _fresh_csrf()  # app_ctx keeps g (and its cached CSRF token) across the client's requests
    auth.login(world.agent.login)
    _fresh_csrf()
    return world


def test_the_mail_page_fills_from_a_template_and_queues_the_mail(page_world, client, smtp_server, monkeypatch, app):
    world = page_world
    dossier = a_dossier(world)
    letter = a_letter(dossier)
    page = client.get(f"/dossiers/{dossier.id}/mail?template=welcome")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"Votre dossier {dossier.reference}" in html and "helene@example.fr" in html
    assert "Lettre de relance" in html

    asked = []
    from workers import tasks

    monkeypatch.setitem(app.config, "MAIL_DELIVER_AT_ONCE", True)
    monkeypatch.setattr(tasks.deliver_mail, "apply_async", lambda args, **kw: asked.append(args))
    sent = client.post(f"/dossiers/{dossier.id}/mail", data={
        "csrf_token": csrf_token(html), "template": "welcome", "recipient": "helene@example.fr",
        "subject": "Votre dossier, suite", "body": "Madame,\n\nVoici la suite.", "attachment": str(letter.id)})
    assert sent.status_code == 303, sent.get_data(as_text=True).split("<main")[-1][:1500]
    assert sent.headers["Location"].endswith(f"/dossiers/{dossier.id}#mails")
    [row] = mail_rows(dossier.id)
    assert (row.subject, row.body, row.created_by_id, row.attachment_id) == (
        "Votre dossier, suite", "Madame,\n\nVoici la suite.\n", world.agent.id, letter.id)
    assert row.template_id == registry.latest("welcome", "mail").id
    assert asked == [(row.id,)]  # a worker is asked at once (after the commit)

    shown = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    outbox_html = shown.split('id="mails"')[1].split("</section>")[0]
    assert "Votre dossier, suite" in outbox_html and "en attente d'envoi" in outbox_html, outbox_html
    assert 'id="write-mail"' in outbox_html
    outbox.deliver_due()
    shown = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert "envoyé le" in shown and "À : helene@example.fr" in shown


def test_the_mail_page_refuses_bad_input_with_a_message_and_writes_nothing(page_world, client):
    dossier = a_dossier(page_world)
    token = csrf_token(client.get(f"/dossiers/{dossier.id}/mail").get_data(as_text=True))
    refused = client.post(f"/dossiers/{dossier.id}/mail", data={
        "csrf_token": token, "recipient": "helene@", "subject": "Objet", "body": "Texte"})
    assert refused.status_code == 422
    assert "Adresse e-mail invalide : « helene@ »" in refused.get_data(as_text=True)
    empty = client.post(f"/dossiers/{dossier.id}/mail", data={
        "csrf_token": token, "recipient": "helene@example.fr", "subject": "Objet", "body": "  "})
    assert empty.status_code == 422 and "Le texte du mail est obligatoire." in empty.get_data(as_text=True)
    other_letter = a_letter(a_dossier(page_world))
    foreign = client.post(f"/dossiers/{dossier.id}/mail", data={
        "csrf_token": token, "recipient": "helene@example.fr", "subject": "Objet", "body": "Texte",
        "attachment": str(other_letter.id)})
    assert foreign.status_code == 422
    assert "courrier généré dans ce dossier" in foreign.get_data(as_text=True)
    unknown = client.get(f"/dossiers/{dossier.id}/mail?template=nope")
    assert unknown.status_code == 422 and "Modèle de mail inconnu" in unknown.get_data(as_text=True)
    assert mail_rows(dossier.id) == []


def test_the_mail_page_needs_csrf(page_world, client):
    dossier = a_dossier(page_world)
    refused = client.post(f"/dossiers/{dossier.id}/mail", data={
        "recipient": "helene@example.fr", "subject": "Objet", "body": "Texte"})
    assert refused.status_code in (400, 422)
    assert mail_rows(dossier.id) == []


def test_an_agent_of_another_territory_gets_404(world, client, auth, smtp_server):
    dossier = a_dossier(world)
    _fresh_csrf()
    auth.login(world.loire_agent.login)
    _fresh_csrf()
    assert client.get(f"/dossiers/{dossier.id}/mail").status_code == 404
    token = csrf_token(client.get("/").get_data(as_text=True))
    probe = client.post(f"/dossiers/{dossier.id}/mail", data={
        "csrf_token": token, "recipient": "helene@example.fr", "subject": "Objet", "body": "Texte"})
    assert probe.status_code == 404
    assert mail_rows(dossier.id) == []


def test_a_failed_mail_is_resent_from_the_dossier_page_by_an_agent_in_scope_only(page_world, client, auth):
    dossier = a_dossier(page_world)
    mail = outbox.queue_mail(dossier=dossier, recipient="inconnu@example.fr", subject="Objet", body="Texte")
    session.commit()
    assert outbox.deliver_due() == {"failed": 1}
    page = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert f'action="/mails/{mail.id}/renvoyer"' in page
    assert client.post(f"/mails/{mail.id}/renvoyer", data={"csrf_token": csrf_token(page)}).status_code == 303
    [row] = mail_rows(dossier.id)
    assert (row.status, row.attempts) == (MailStatus.QUEUED, 0)
    again = client.post(f"/mails/{mail.id}/renvoyer", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "Seul un mail en échec peut être renvoyé." in again.get_data(as_text=True)

    row.status = MailStatus.FAILED
    session.commit()
    _fresh_csrf()
    auth.logout()
    _fresh_csrf()
    auth.login(page_world.loire_agent.login)
    _fresh_csrf()
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post(f"/mails/{mail.id}/renvoyer", data={"csrf_token": token}).status_code == 404
    assert mail_rows(dossier.id)[0].status == MailStatus.FAILED


def test_without_smtp_url_the_dossier_page_says_so(page_world, client, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    dossier = a_dossier(page_world)
    html = client.get(f"/dossiers/{dossier.id}").get_data(as_text=True)
    assert 'id="smtp-missing"' in html and "serveur de mail non configuré" in html


# --- A real Celery worker ---------------------------------------------------------------------

SETUP = """
from app import create_app
from app.audit.context import set_actor
from app.contacts.links import Links, PartyLink
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import DossierType
from app.mails import outbox
from app.parties.models import Party, PartyEmail
from app.security.models import Territory

app = create_app()
with app.app_context():
    set_actor(actor_id=None, actor_label="setup")
    territory = Territory(code="T-MAIL", name="Mails", kind="agency", path="/T-MAIL/")
    session.add(territory)
    session.flush()
    party = Party(number="MAIL00001", last_name="Courriel", status="customer", territory_id=territory.id,
                  emails=[PartyEmail(address="courriel@example.fr", position=0)])
    kind = DossierType(code="MAIL-W", label="Mail", target_days=30)
    session.add_all([party, kind])
    session.flush()
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id,
                                    links=Links(parties=[PartyLink(party.id, "customer")]))
    mail = outbox.queue_mail(dossier=dossier, recipient="courriel@example.fr", subject="Par le worker",
                             body="Bonjour.")
    session.commit()
    print(mail.id)
"""


def _env(url: str, broker: str, tmp_path: Path, smtp_url: str, **extra) -> dict:
    return {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker, "GUICHET_INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "worker-test", "TZ": "UTC", "SMTP_URL": smtp_url, **extra}


def _mail_state(engine, mail_id: int) -> tuple:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT status, attempts, element_id IS NOT NULL FROM outgoing_mail WHERE id = :id"),
            {"id": mail_id}).one()


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"mails-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.worker
@pytest.mark.no_db_transaction
def test_a_worker_delivers_and_one_killed_after_the_servers_250_leaves_one_resend_with_the_same_id(
        worker_database, tmp_path):  # noqa: F811
    url, engine = worker_database
    broker = _broker_url(tmp_path)
    client = Celery(broker=broker)
    if broker.startswith("redis"):
        client.connection_for_write().default_channel.client.flushdb()
    server = SmtpServer()
    server.start()
    try:
        done = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=_env(url, broker, tmp_path, server.url))
        assert done.returncode == 0, done.stderr[-3000:]
        mail_id = int(done.stdout.strip().splitlines()[-1])

        # A worker that dies right after the server accepted the mail, before marking it sent.
        doomed = _worker(_env(url, broker, tmp_path, server.url, GUICHET_FAULT_INJECTION="mail_after_send"))
        try:
            client.send_task("workers.tasks.deliver_mail", args=(mail_id,))
            assert doomed.wait(timeout=90) == 9, "the worker should have died after sending"
        finally:
            if doomed.poll() is None:
                doomed.kill()
            print(doomed.communicate()[0][-3000:])
        assert len(server.mailbox.received) == 1
        assert _mail_state(engine, mail_id) == ("sending", 1, False)

        # The next worker takes the stale claim (1 second here) and sends the same message again.
        worker = _worker(_env(url, broker, tmp_path, server.url, MAIL_CLAIM_SECONDS="1"))
        try:
            time.sleep(1.5)
            client.send_task("workers.tasks.deliver_mails")
            deadline = time.monotonic() + 90
            while _mail_state(engine, mail_id)[0] != "sent":
                assert worker.poll() is None, "the worker stopped"
                assert time.monotonic() < deadline, "the mail was not delivered"
                time.sleep(0.5)
            client.send_task("workers.tasks.deliver_mails")  # a later run finds nothing more to send
            time.sleep(2)
        finally:
            worker.terminate()
            print(worker.communicate(timeout=30)[0][-3000:])
        assert _mail_state(engine, mail_id) == ("sent", 2, True)
        ids = server.mailbox.message_ids()
        assert len(ids) == 2 and ids[0] == ids[1]  # the same message, twice: one for the recipient's client
    finally:
        server.stop()

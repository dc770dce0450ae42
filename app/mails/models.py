"""The mail outbox.

A mail is written here in the same transaction as the step or the agent's action that sends it;
a Celery task delivers it over SMTP (``SMTP_URL``), retrying with backoff, and marks it sent or
failed. ``message_id`` is the Message-ID header, fixed when the row is written, so that a
redelivery after a worker died is recognisable downstream; ``status`` "sending" with
``claimed_at`` marks the window where a worker holds it (see app/mails/outbox.py).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.db import Base, UTCDateTime
from app.dossiers.models import Dossier, DossierElement
from app.security.models import Agent


class MailStatus:
    QUEUED = "queued"  # waiting for a worker (or its next attempt)
    SENDING = "sending"  # a worker holds it
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt, or refused by the server for good
    ALL = (QUEUED, SENDING, SENT, FAILED)


class OutgoingMail(Base):
    __tablename__ = "outgoing_mail"
    __audited__ = True
    __audit_ignored__ = frozenset({"body", "claimed_at", "next_attempt_at"})
    __table_args__ = (Index("ix_outgoing_mail_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="SET NULL"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("document_template.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # The generated letter attached (its file, and its PDF when there is one).
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_element.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))  # None: a process step
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The "mail" element the dossier shows once it is sent.
    element_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_element.id", ondelete="SET NULL"))

    dossier: Mapped[Dossier] = relationship()
    created_by: Mapped[Agent | None] = relationship()
    attachment: Mapped[DossierElement | None] = relationship(foreign_keys=[attachment_id])

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipient}"

"""Stored files, document and mail templates.

- ``StoredFile``: the bytes of a generated letter, its PDF, or an uploaded template, kept in the
  database with their size and SHA-256 (a letter weighs tens of kilobytes; keeping them in the
  same transaction as the dossier element means a crash never leaves an element without its file).
- ``DocumentTemplate``: one row per version of a template, identified by ``code``. A letter
  template holds a .docx (``file``); a mail template holds a subject and a body (sandboxed Jinja
  text). Generating always takes the newest active version; a generated letter keeps the version
  it came from.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app import clock
from app.db import Base, UTCDateTime


class StoredFile(Base):
    __tablename__ = "stored_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: listing a dossier's elements never loads the bytes.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __str__(self) -> str:
        return self.filename


class TemplateKind:
    LETTER = "letter"  # a .docx rendered with docxtpl
    MAIL = "mail"  # a subject and a body, rendered as text
    ALL = (LETTER, MAIL)


class DocumentTemplate(Base):
    __tablename__ = "document_template"
    __audited__ = True
    __table_args__ = (UniqueConstraint("code", "version", name="uq_document_template_code_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), index=True)  # "unpaid_reminder_1": what processes name
    kind: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))  # letters
    subject: Mapped[str | None] = mapped_column(String(300))  # mails
    body: Mapped[str | None] = mapped_column(Text)  # mails
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the content
    shipped: Mapped[bool] = mapped_column(Boolean, default=False)  # from templates_docs/, not an upload
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    file: Mapped[StoredFile | None] = relationship()

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

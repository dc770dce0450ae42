"""Dossier classifications, dossiers, their links, contacts and elements, and the yearly counter
their references are drawn from."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, exists, select, text
from sqlalchemy import false as sql_false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app import clock
from app.contacts.models import (
    AgentLinkColumns,
    Contact,
    ObjectLinkColumns,
    PartyLinkColumns,
    PartyLinkRole,
    TemplateItem,
)
from app.db import Base, UTCDateTime
from app.documents.models import StoredFile
from app.parties.models import Party
from app.security.models import Agent


class DossierStatus:
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    SUSPENDED = "suspended"
    CLOSED = "closed"
    ALL = (OPEN, IN_PROGRESS, SUSPENDED, CLOSED)
    NOT_CLOSED = (OPEN, IN_PROGRESS, SUSPENDED)
    # Which status may follow which (a closed dossier can be reopened, into "in progress").
    TRANSITIONS = {
        OPEN: (IN_PROGRESS, SUSPENDED, CLOSED),
        IN_PROGRESS: (SUSPENDED, CLOSED),
        SUSPENDED: (IN_PROGRESS, CLOSED),
        CLOSED: (IN_PROGRESS,),
    }


class DossierOrigin:
    CONTACT = "contact"  # created from a contact
    MANUAL = "manual"  # created by an agent without a contact
    AUTOMATIC = "automatic"  # created by a service call (scheduled job, external action)
    ALL = (CONTACT, MANUAL, AUTOMATIC)


class DossierType(Base):
    """A dossier classification: what the case is, which process handles it, how fast."""

    __tablename__ = "dossier_type"
    __audited__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    process_key: Mapped[str | None] = mapped_column(String(100))
    target_days: Mapped[int | None] = mapped_column(Integer)  # target time for handling, in days
    # Start the process when a dossier of this classification is opened (by hand, from a contact, by a job).
    auto_start: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    # At most one dossier of this classification open per contract (a relaunch): a database constraint.
    one_per_contract: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    # While a dossier of this classification is open on an invoice (a dispute), dunning leaves it alone.
    suspends_dunning: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    items: Mapped[list[TemplateItem]] = relationship(
        foreign_keys=[TemplateItem.dossier_type_id], order_by=TemplateItem.position, cascade="all, delete-orphan",
        lazy="selectin")

    def __str__(self) -> str:
        return self.label

    @property
    def audit_label(self) -> str:
        return self.code


class Dossier(Base):
    __tablename__ = "dossier"
    __audited__ = True
    # Links are recorded by explicit "link" / "move_contact" entries, in words the history can show.
    __audit_ignored__ = frozenset({"updated_at", "version", "parties", "agents", "objects"})
    __table_args__ = (
        Index("ix_dossier_status_created", "status", "created_at"),
        # supervision's charts: a territory's dossiers opened, closed, still open over a period
        Index("ix_dossier_territory_created", "territory_id", "created_at", "dossier_type_id"),
        Index("ix_dossier_territory_closed", "territory_id", "closed_at", "dossier_type_id"),
        # supervision's late dossiers, the most overdue first: the open ones in due order
        Index("ix_dossier_open_due", "due_at", postgresql_where=text("status <> 'closed'"),
              sqlite_where=text("status <> 'closed'")),
        # One open dossier per contract for the classifications that say so: a second relaunch of the
        # same contract cannot be written, whoever tries (two workers, an agent and a job).
        Index("uq_dossier_open_per_contract", "exclusive_contract_id", "dossier_type_id", unique=True,
              postgresql_where=text("exclusive_contract_id IS NOT NULL AND status <> 'closed'"),
              sqlite_where=text("exclusive_contract_id IS NOT NULL AND status <> 'closed'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "DOS-2026-000042": sequential per year, drawn from reference_counter under a row lock.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    dossier_type_id: Mapped[int] = mapped_column(ForeignKey("dossier_type.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DossierStatus.OPEN)
    origin: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"), index=True)  # None: automatic
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # from the classification's target time
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The "affaire" mirroring this dossier in the billing system, once it exists there.
    external_ref: Mapped[str | None] = mapped_column(String(40), unique=True)
    # The contract this dossier is about, set when its classification is one_per_contract.
    exclusive_contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id"))
    # The territory supervision counts it under (app.contacts.links.territory_of_record); access
    # control does not read it (scope_clause follows the parties).
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"))
    # A relaunch: the highest dunning level applied, and "paid" when it closed on payment.
    dunning_rank: Mapped[int | None] = mapped_column(Integer)
    close_reason: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    dossier_type: Mapped[DossierType] = relationship(lazy="joined")
    created_by: Mapped[Agent | None] = relationship(lazy="joined")
    parties: Mapped[list[DossierParty]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                       order_by="DossierParty.role")
    agents: Mapped[list[DossierAgent]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                      order_by="DossierAgent.role")
    objects: Mapped[list[DossierObject]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="(DossierObject.object_type, DossierObject.object_id)")

    def __str__(self) -> str:
        return self.reference

    @property
    def audit_label(self) -> str:
        return self.reference

    @property
    def is_closed(self) -> bool:
        return self.status == DossierStatus.CLOSED

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        """In scope when one of its parties is, a third party aside (see Contact.scope_clause)."""
        return exists(select(DossierParty.party_id).join(Party, Party.id == DossierParty.party_id)
                      .where(DossierParty.dossier_id == cls.id, DossierParty.role != PartyLinkRole.THIRD_PARTY,
                             Party.scope_clause(territory_ids)))


class DossierParty(PartyLinkColumns, Base):
    __tablename__ = "dossier_party"
    __table_args__ = (Index("ix_dossier_party_party_dossier", "party_id", "dossier_id"),)

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)


class DossierAgent(AgentLinkColumns, Base):
    __tablename__ = "dossier_agent"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)


class DossierObject(ObjectLinkColumns, Base):
    __tablename__ = "dossier_object"
    __table_args__ = (Index("ix_dossier_object_target", "object_type", "object_id"),)

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)


class DossierContact(Base):
    """A contact referenced in a dossier: the one it was created from, or one moved into it."""

    __tablename__ = "dossier_contact"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    origin: Mapped[str] = mapped_column(String(16))  # "created_from" or "moved"
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))

    contact: Mapped[Contact] = relationship(lazy="joined")
    dossier: Mapped[Dossier] = relationship()


class ElementKind:
    NOTE = "note"
    LETTER = "letter"  # a generated letter ("courrier"): .docx, and PDF when converted
    MAIL = "mail"  # a mail sent from the outbox
    ALL = (NOTE, LETTER, MAIL)


class DossierElement(Base):
    """A piece of content kept in the dossier: a note, a generated letter (its files), a mail sent.
    Parties, agents, objects and contacts are elements too, read from their links."""

    __tablename__ = "dossier_element"
    __audited__ = True
    __table_args__ = (
        Index("ix_dossier_element_dossier_kind", "dossier_id", "kind"),
        Index("ix_dossier_element_pdf_pending", "id", postgresql_where=text("pdf_pending"),
              sqlite_where=text("pdf_pending")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # A letter: its .docx, its PDF when LibreOffice converted it, and the template version used.
    file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    pdf_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("document_template.id"))
    # A letter written in mass (dunning) whose PDF a worker converts in batches; its mail waits for it.
    pdf_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())

    created_by: Mapped[Agent | None] = relationship(lazy="joined")
    file: Mapped[StoredFile | None] = relationship(foreign_keys=[file_id])
    pdf_file: Mapped[StoredFile | None] = relationship(foreign_keys=[pdf_file_id])

    def __str__(self) -> str:
        return self.title


class ReferenceCounter(Base):
    """The last number handed out per series and year ("DOS", 2026) → 42. Incremented with an
    UPDATE … RETURNING, which locks the row until commit: concurrent creations queue, none reuses."""

    __tablename__ = "reference_counter"
    __table_args__ = (UniqueConstraint("series", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(String(10))
    year: Mapped[int] = mapped_column(Integer)
    last_value: Mapped[int] = mapped_column(Integer, default=0)

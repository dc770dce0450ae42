"""Contact types and their templates, contacts and what they link to.

A contact links parties (with a role), agents (with a role), business objects (any of the kinds
in app.contacts.objects, by kind and id) and dossiers. The link tables of contacts and of dossiers
share their columns through the mixins below; each link remembers where it came from (``origin``:
"default", "template:<item id>", "added", "contact:<contact id>") so the screens can say why it is
there.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, exists, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app import clock
from app.db import Base, UTCDateTime
from app.parties.models import Party
from app.security.models import Agent, Role, Territory


class Direction:
    INBOUND = "in"
    OUTBOUND = "out"
    ALL = (INBOUND, OUTBOUND)


class PartyLinkRole:
    CUSTOMER = "customer"
    HOLDER = "holder"
    CO_HOLDER = "co_holder"
    PAYER = "payer"
    OCCUPANT = "occupant"
    OWNER = "owner"
    THIRD_PARTY = "third_party"
    ALL = (CUSTOMER, HOLDER, CO_HOLDER, PAYER, OCCUPANT, OWNER, THIRD_PARTY)


class AgentLinkRole:
    EMITTER = "emitter"
    RESPONSIBLE = "responsible"
    COPY = "copy"
    ALL = (EMITTER, RESPONSIBLE, COPY)


class TemplateItemKind:
    PARTY = "party"
    AGENT = "agent"
    OBJECT = "object"
    ALL = (PARTY, AGENT, OBJECT)


# --- Referentials -----------------------------------------------------------------------------

class ContactType(Base):
    """What a contact is about. Its template items pre-fill the contact's links."""

    __tablename__ = "contact_type"
    __audited__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    default_channel: Mapped[str | None] = mapped_column(String(20))
    default_direction: Mapped[str] = mapped_column(String(3), default=Direction.INBOUND)
    # The BPMN process its "Plan d'action" launches (run by the process engine).
    process_key: Mapped[str | None] = mapped_column(String(100))
    # The classification proposed first when a dossier is created from such a contact.
    dossier_type_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_type.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    items: Mapped[list[TemplateItem]] = relationship(
        foreign_keys="TemplateItem.contact_type_id", order_by="TemplateItem.position", cascade="all, delete-orphan",
        lazy="selectin")
    dossier_type = relationship("DossierType", foreign_keys=[dossier_type_id])

    def __str__(self) -> str:
        return self.label

    @property
    def audit_label(self) -> str:
        return self.code


class TemplateItem(Base):
    """One predefined link of a contact type's or a dossier classification's template.

    ``source`` says how the linked thing is found in the context (see app.contacts.templating):
    a party ("current_customer", "contract_holder", "fixed_party"…), an agent ("current_agent",
    "fixed_agent", "role_in_territory") or a business object ("current_contract",
    "last_invoice", "overdue_invoices"…). ``rule`` is the eligibility rule, as data: a list of
    conditions that must all hold (app.contacts.rules).
    """

    __tablename__ = "template_item"
    __audited__ = True
    __table_args__ = (
        CheckConstraint("(contact_type_id IS NULL) <> (dossier_type_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_type_id: Mapped[int | None] = mapped_column(ForeignKey("contact_type.id", ondelete="CASCADE"),
                                                         index=True)
    dossier_type_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_type.id", ondelete="CASCADE"),
                                                         index=True)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(30))
    link_role: Mapped[str | None] = mapped_column(String(20))
    fixed_party_id: Mapped[int | None] = mapped_column(ForeignKey("party.id"))
    fixed_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    role_id: Mapped[int | None] = mapped_column(ForeignKey("role.id"))
    # For "role_in_territory": agents of the role covering this territory (None: the customer's).
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"))
    rule: Mapped[list | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    fixed_party: Mapped[Party | None] = relationship()
    fixed_agent: Mapped[Agent | None] = relationship()
    role: Mapped[Role | None] = relationship()
    territory: Mapped[Territory | None] = relationship()

    def __str__(self) -> str:
        return f"{self.kind}:{self.source}"


# --- Links, shared by contacts and dossiers ---------------------------------------------------

class PartyLinkColumns:
    @declared_attr
    def party_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey(Party.__table__.c.id), primary_key=True)  # indexed with the owner, per table

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    origin: Mapped[str] = mapped_column(String(40))

    @declared_attr
    def party(cls) -> Mapped[Party]:
        return relationship(Party, lazy="joined")

    @property
    def audit_label(self) -> str:  # how the owner's audit entries list the link
        return f"{self.party_id}:{self.role}"


class AgentLinkColumns:
    @declared_attr
    def agent_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey(Agent.__table__.c.id), primary_key=True, index=True)

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    origin: Mapped[str] = mapped_column(String(40))

    @declared_attr
    def agent(cls) -> Mapped[Agent]:
        return relationship(Agent, lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"{self.agent_id}:{self.role}"


class ObjectLinkColumns:
    """A business object by kind and id (polymorphic: app.contacts.objects knows the kinds)."""

    object_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    object_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(40))

    @property
    def audit_label(self) -> str:
        return f"{self.object_type}:{self.object_id}"


# --- Contacts ---------------------------------------------------------------------------------

class Contact(Base):
    """One interaction with a customer, whatever its channel: traced even when it opens nothing."""

    __tablename__ = "contact"
    __audited__ = True
    # Links are recorded by explicit "link" / "move_contact" entries, in words the history can show.
    __audit_ignored__ = frozenset({"parties", "agents", "objects"})
    __table_args__ = (Index("ix_contact_occurred_at", "occurred_at"),
                      # supervision's charts: a territory's contacts over a period
                      Index("ix_contact_territory_occurred", "territory_id", "occurred_at", "channel"))

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_type_id: Mapped[int] = mapped_column(ForeignKey("contact_type.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(3))
    subject: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("agent.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # The form's one-time key: a form posted twice (a double click, a resent request) traces one contact.
    submission_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    # The territory supervision counts it under (app.contacts.links.territory_of_record), set when
    # written; access control does not read it (scope_clause follows the parties).
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"))

    contact_type: Mapped[ContactType] = relationship(lazy="joined")
    created_by: Mapped[Agent] = relationship(lazy="joined")
    parties: Mapped[list[ContactParty]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                       order_by="ContactParty.role")
    agents: Mapped[list[ContactAgent]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                      order_by="ContactAgent.role")
    objects: Mapped[list[ContactObject]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="(ContactObject.object_type, ContactObject.object_id)")

    def __str__(self) -> str:
        return f"#{self.id} {self.subject}"

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        """In scope when one of its parties is, a third party aside: a social-services office named
        by a template is linked to contacts everywhere and must not open them all to its territory."""
        return exists(select(ContactParty.party_id).join(Party, Party.id == ContactParty.party_id)
                      .where(ContactParty.contact_id == cls.id, ContactParty.role != PartyLinkRole.THIRD_PARTY,
                             Party.scope_clause(territory_ids)))


class ContactParty(PartyLinkColumns, Base):
    __tablename__ = "contact_party"
    __table_args__ = (Index("ix_contact_party_party_contact", "party_id", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)


class ContactAgent(AgentLinkColumns, Base):
    __tablename__ = "contact_agent"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)


class ContactObject(ObjectLinkColumns, Base):
    __tablename__ = "contact_object"
    __table_args__ = (Index("ix_contact_object_target", "object_type", "object_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)

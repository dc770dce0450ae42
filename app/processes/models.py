"""Process definitions and the running side of the engine.

- ``ProcessDefinition``: one row per deployed version of a process, holding its files once; the
  instances refer to their version, the spec is never copied into them.
- ``ProcessInstance``: one run of a process on a contact or a dossier: its status and its
  serialized state (the task tree and data, without the spec), locked while it steps.
- ``ProcessTask``: the user tasks waiting for an agent (the inbox), kept in step with the state
  after each save; a completed or cancelled task stays as the history of who did what.
- ``ProcessTimer``: the timers an instance waits on, with their due time, picked by the beat job.
- ``ProcessMessage``: messages from outside ("facture payée") kept until the instance takes them.
- ``ProcessDraft``: what a business analyst is changing in the designer, one per process, until it
  is deployed as the next version.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    exists,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app import clock
from app.contacts.models import Contact
from app.db import Base, UTCDateTime
from app.dossiers.models import Dossier
from app.security.models import Agent

JSONType = JSON().with_variant(JSONB(), "postgresql")


class ProcessDefinition(Base):
    __tablename__ = "process_definition"
    __audited__ = True
    __audit_ignored__ = frozenset({"files"})  # the content is identified by its hash
    __table_args__ = (UniqueConstraint("key", "version", name="uq_process_definition_key_version"),
                      UniqueConstraint("key", "content_hash", name="uq_process_definition_key_content_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)  # the BPMN process id and its folder
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # sha256 of the files (names and contents, in name order): an unchanged deployment is the same row.
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict] = mapped_column(JSONType)
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # What changed against the previous version, in sentences (the designer writes it at deployment).
    change_summary: Mapped[list | None] = mapped_column(JSONType)

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    @property
    def audit_label(self) -> str:
        return str(self)


class InstanceStatus:
    RUNNING = "running"  # a user task is ready
    WAITING = "waiting"  # only timers or messages can move it on
    COMPLETED = "completed"
    ERROR = "error"  # a step failed: a supervisor retries it after correction
    CANCELLED = "cancelled"
    ALL = (RUNNING, WAITING, COMPLETED, ERROR, CANCELLED)
    ACTIVE = (RUNNING, WAITING, ERROR)


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __audited__ = True
    __audit_ignored__ = frozenset({"state", "updated_at", "revision"})
    __table_args__ = (Index("ix_process_instance_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=InstanceStatus.RUNNING)
    # The workflow serialized by app.processes.engine.dump: task tree and data, no spec.
    state: Mapped[str] = mapped_column(Text)
    # Bumped at each save; the UPDATE checks it, so a save on a stale read fails (StaleDataError).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))  # None: automatic
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_element: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    __mapper_args__ = {"version_id_col": revision}

    definition: Mapped[ProcessDefinition] = relationship(lazy="joined")
    dossier: Mapped[Dossier | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    started_by: Mapped[Agent | None] = relationship()

    def __str__(self) -> str:
        return f"{self.definition.name} n° {self.id}"

    @property
    def audit_label(self) -> str:
        return f"{self.definition.key} n° {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in InstanceStatus.ACTIVE

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        """In scope when its dossier or its contact is."""
        return or_(
            exists(select(Dossier.id).where(Dossier.id == cls.dossier_id, Dossier.scope_clause(territory_ids))),
            exists(select(Contact.id).where(Contact.id == cls.contact_id, Contact.scope_clause(territory_ids))),
        )


class TaskStatus:
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # the process moved on without it (a boundary timer, a cancellation)


class ProcessTask(Base):
    """A user task: offered to the agents holding its lane's role, claimed by one of them."""

    __tablename__ = "process_task"
    __table_args__ = (UniqueConstraint("instance_id", "task_uuid", name="uq_process_task_instance_id"),
                      Index("ix_process_task_status_role", "status", "role_code"),
                      Index("ix_process_task_assignee_status", "assignee_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    task_uuid: Mapped[str] = mapped_column(String(36))  # the engine's task id
    element_id: Mapped[str] = mapped_column(String(100))  # the BPMN id of the user task
    name: Mapped[str] = mapped_column(String(200))
    role_code: Mapped[str | None] = mapped_column(String(40))  # the lane; None: whoever runs the instance
    form: Mapped[str | None] = mapped_column(String(200))  # the JSON Schema file of its form
    ui_form: Mapped[str | None] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.READY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draft: Mapped[dict | None] = mapped_column(JSONType)  # answers saved without completing
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))

    instance: Mapped[ProcessInstance] = relationship(lazy="joined")
    # Not joined: loading an agent reloads its roles and territories, even the logged-in one's.
    assignee: Mapped[Agent | None] = relationship(foreign_keys=[assignee_id])
    completed_by: Mapped[Agent | None] = relationship(foreign_keys=[completed_by_id])

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_clause(cls, territory_ids) -> ColumnElement[bool]:
        instance = aliased(ProcessInstance)  # the query may join the instance table itself
        return exists(select(instance.id).where(instance.id == cls.instance_id, instance.scope_clause(territory_ids)))


class ProcessTimer(Base):
    """A timer an instance waits on; rewritten after each save, deleted once fired."""

    __tablename__ = "process_timer"
    __table_args__ = (UniqueConstraint("instance_id", "task_uuid", name="uq_process_timer_instance_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    task_uuid: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ProcessMessage(Base):
    """A message for an instance, kept until a catch event takes it (the engine refuses one that
    arrives before the process waits for it)."""

    __tablename__ = "process_message"
    __table_args__ = (Index("ix_process_message_instance_pending", "instance_id", "delivered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(100))  # who sent it (API client, import, task)


class ProcessDraft(Base):
    """A process being changed in the designer: its files (diagram, forms), saved as the analyst
    works, checked and deployed as the next version, then deleted. ``revision`` refuses a save made
    on a stale copy (two analysts on one draft); ``base_version`` is the version it started from."""

    __tablename__ = "process_draft"
    __audited__ = True
    __audit_ignored__ = frozenset({"files", "updated_at", "revision"})

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    files: Mapped[dict] = mapped_column(JSONType)
    base_version: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    # The UPDATE checks it: of two saves made on the same copy, the second fails (StaleDataError).
    __mapper_args__ = {"version_id_col": revision}

    updated_by: Mapped[Agent | None] = relationship(foreign_keys=[updated_by_id])

    def __str__(self) -> str:
        return f"{self.key} (brouillon)"

    @property
    def audit_label(self) -> str:
        return str(self)

"""The dunning procedure as data (its levels), what suspends it (payment plans, manual blocks), and
the record of each run with the outcome per contract."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.db import Base, Money, UTCDateTime
from app.dossiers.models import DossierType

JSONType = JSON().with_variant(JSONB(), "postgresql")


class DunningProcedure(Base):
    """How unpaid invoices are chased: the grace after the due date, the classification of the
    dossiers it opens, and its levels. One procedure is active at a time."""

    __tablename__ = "dunning_procedure"
    __audited__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    # Days after the due date during which a payment on its way is awaited; the levels count after it.
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    dossier_type_id: Mapped[int] = mapped_column(ForeignKey("dossier_type.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    dossier_type: Mapped[DossierType] = relationship(lazy="joined")
    levels: Mapped[list[DunningLevel]] = relationship(
        back_populates="procedure", order_by="DunningLevel.rank", cascade="all, delete-orphan", lazy="selectin")

    def __str__(self) -> str:
        return self.label

    @property
    def audit_label(self) -> str:
        return self.code


class DunningLevel(Base):
    """One step of the procedure: when (days after the due date, once the grace is over), from
    which amount still owed, and what it does — a letter, a mail, a task for an agent."""

    __tablename__ = "dunning_level"
    __audited__ = True
    __table_args__ = (UniqueConstraint("procedure_id", "rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("dunning_procedure.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)  # 1, 2, 3…
    label: Mapped[str] = mapped_column(String(200))
    delay_days: Mapped[int] = mapped_column(Integer)  # after the due date plus the grace
    min_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    letter_template: Mapped[str | None] = mapped_column(String(60))  # document template code
    mail_template: Mapped[str | None] = mapped_column(String(60))  # mail template code
    agent_task: Mapped[bool] = mapped_column(Boolean, default=False)  # a task for an agent after it
    formal_notice: Mapped[bool] = mapped_column(Boolean, default=False)  # a mise en demeure: guarded

    procedure: Mapped[DunningProcedure] = relationship(back_populates="levels")

    def __str__(self) -> str:
        return self.label

    @property
    def audit_label(self) -> str:
        return f"{self.procedure_id}/{self.rank}"


class PaymentPlan(Base):
    """An instalment plan agreed with the customer (« échéancier »): while it runs, the contract's
    invoices are not chased. Recorded by the payment-difficulty process, or by hand."""

    __tablename__ = "payment_plan"
    __audited__ = True
    __table_args__ = (Index("ix_payment_plan_contract_end", "contract_id", "ends_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    instalments: Mapped[int] = mapped_column(Integer)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # broken off before its end
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def audit_label(self) -> str:
        return f"{self.contract_id}:{self.starts_on}"


class DunningBlock(Base):
    """A manual stop of dunning on a contract until a date (a claim being looked into, a customer's
    call…), with its reason. Lifting it early sets lifted_at."""

    __tablename__ = "dunning_block"
    __audited__ = True
    __table_args__ = (Index("ix_dunning_block_contract_until", "contract_id", "until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    until: Mapped[date] = mapped_column(Date)  # included
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def audit_label(self) -> str:
        return f"{self.contract_id}:{self.until}"


class RunStatus:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the selection itself failed (a contract's failure is counted, not fatal)
    ALL = (RUNNING, DONE, FAILED)


class DunningRun(Base):
    """One run: the day it ran for, when, who or what started it, and its counts. The counts per
    contract live in dunning_run_item (one row per contract, written with its dossier), so a chunk
    run twice counts nothing twice."""

    __tablename__ = "dunning_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("dunning_procedure.id"))
    as_of: Mapped[date] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(String(60))  # "beat", "cli", "agent:<login>"
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    selected: Mapped[int] = mapped_column(Integer, default=0)  # contracts eligible, to open
    skipped: Mapped[dict] = mapped_column(JSONType, default=dict)  # reason → contracts left out at selection
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list[DunningRunItem]] = relationship(back_populates="run", lazy="raise")


class DunningRunChunk(Base):
    """A slice of a run's selection, as handed to a worker. Kept so that a chunk whose message was
    lost with its worker (a broker that does not redeliver) is handed out again (resume_stalled)."""

    __tablename__ = "dunning_run_chunk"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("dunning_run.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    contract_ids: Mapped[list] = mapped_column(JSONType)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemOutcome:
    OPENED = "opened"
    ALREADY_OPEN = "already_open"  # opened meanwhile (by an agent, or a run before)
    NO_LONGER_DUE = "no_longer_due"  # paid, blocked… between the selection and its turn
    FAILED = "failed"
    ALL = (OPENED, ALREADY_OPEN, NO_LONGER_DUE, FAILED)


class DunningRunItem(Base):
    """What a run did for one selected contract. Written in the transaction that opened its dossier
    (or decided not to); the unique key makes a chunk run again skip what it already did."""

    __tablename__ = "dunning_run_item"
    __table_args__ = (UniqueConstraint("run_id", "contract_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("dunning_run.id", ondelete="CASCADE"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    chunk: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(Text)  # why it failed
    done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    run: Mapped[DunningRun] = relationship(back_populates="items")

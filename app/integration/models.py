"""The affaire outbox: calls to the billing system, written with the dossier change they mirror.

Each row is one call of the contract in docs/integration.md (create the affaire, push a status),
with its idempotency key fixed when it is written. A Celery task sends them per dossier in id
order — a status push waits for its creation — retrying with backoff while the billing system is
down; the dossier keeps working meanwhile and its page shows where the sync stands.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base, UTCDateTime

JSONType = JSON().with_variant(JSONB(), "postgresql")


class SyncAction:
    CREATE = "create"
    STATUS = "status"
    ALL = (CREATE, STATUS)


class SyncStatus:
    PENDING = "pending"  # not sent yet, or to be retried at next_attempt_at
    DONE = "done"
    FAILED = "failed"  # refused by the billing system (a 4xx): needs a person
    ALL = (PENDING, DONE, FAILED)


class AffaireSync(Base):
    __tablename__ = "affaire_sync"
    __table_args__ = (Index("ix_affaire_sync_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSONType)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""Process definitions: one row per deployed version of a process, holding its files once (the
instances will refer to their version; the spec is never copied into them)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base, UTCDateTime


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
    files: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    @property
    def audit_label(self) -> str:
        return str(self)

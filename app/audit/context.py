"""Who is acting, and from where: set once per request, command or task, read by the audit trail."""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AuditContext:
    actor_id: int | None = None
    actor_label: str | None = None
    request_id: str | None = None
    client_addr: str | None = None


# AuditContext is a frozen dataclass: sharing the default instance is safe.
_current: ContextVar[AuditContext] = ContextVar("audit_context", default=AuditContext(actor_label="system"))  # noqa: B039


def current() -> AuditContext:
    return _current.get()


def set_context(ctx: AuditContext) -> None:
    _current.set(ctx)


def set_actor(*, actor_id: int | None, actor_label: str | None) -> None:
    """Name the actor of what follows in this context (login, command line, scheduled job)."""
    _current.set(replace(_current.get(), actor_id=actor_id, actor_label=actor_label))

"""Writing the audit trail: automatic entries for every change of an audited model, plus events.

A model opts in with ``__audited__ = True``. Its inserts, updates and deletes are written as
``AuditEntry`` rows by a flush hook, inside the same transaction as the change, so a change
cannot be committed without its trace. ``__audit_masked__`` lists fields recorded as changed
without their values (password hashes); ``__audit_ignored__`` fields that are bookkeeping.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Mapper, Session

from app import clock
from app.audit.context import current
from app.audit.models import AuditEntry
from app.db import session as db_session

MASK = "***"


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(json_value(v) for v in value)
    return str(value)


def _object_type(obj: Any) -> str:
    return obj.__tablename__


def _object_id(obj: Any) -> str:
    # The identity key is not assigned yet during after_flush; the primary key values are.
    identity = inspect(obj).mapper.primary_key_from_instance(obj)
    return ":".join(str(part) for part in identity)


def _shown(cls: type, key: str, value: Any) -> Any:
    return MASK if key in getattr(cls, "__audit_masked__", ()) else json_value(value)


def _label(obj: Any) -> str:
    """How a related object is named in an entry: its stable code when it has one."""
    return str(getattr(obj, "audit_label", None) or obj)


def _changes(obj: Any, *, created: bool = False, deleted: bool = False) -> dict[str, list]:
    """Map of field → [before, after] for what this flush changes on obj."""
    cls = type(obj)
    ignored = getattr(cls, "__audit_ignored__", ())
    state = inspect(obj)
    mapper = state.mapper
    result: dict[str, list] = {}
    primary_keys = {column.key for column in mapper.primary_key}
    for attr in mapper.column_attrs:
        key = attr.key
        if key in ignored or key in primary_keys:
            continue
        history = state.attrs[key].history
        if created:
            value = getattr(obj, key)
            if value is not None:
                result[key] = [None, _shown(cls, key, value)]
        elif deleted:
            result[key] = [_shown(cls, key, state.attrs[key].loaded_value), None]
        elif history.has_changes():
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before != after:
                result[key] = [_shown(cls, key, before), _shown(cls, key, after)]
    for rel in mapper.relationships:
        if not rel.uselist or rel.key in ignored:
            continue
        history = state.attrs[rel.key].history
        if not history.has_changes():
            continue
        unchanged = [_label(o) for o in history.unchanged]
        before = sorted(unchanged + [_label(o) for o in history.deleted])
        after = sorted(unchanged + [_label(o) for o in history.added])
        if before != after:
            result[rel.key] = [before, after]
    return result


def _row(action: str, obj: Any, changes: dict | None) -> dict:
    ctx = current()
    return {
        "created_at": clock.now(),
        "actor_id": ctx.actor_id,
        "actor_label": ctx.actor_label,
        "action": action,
        "object_type": _object_type(obj),
        "object_id": _object_id(obj),
        "changes": changes,
        "request_id": ctx.request_id,
        "client_addr": ctx.client_addr,
    }


def _audited(obj: Any) -> bool:
    return getattr(type(obj), "__audited__", False)


def _keep_previous_value(target, value, oldvalue, initiator):
    return value


@event.listens_for(Mapper, "mapper_configured")
def _track_previous_values(mapper: Mapper, cls: type) -> None:
    # Without active history, changing a column that is not loaded (expired after a rollback,
    # deferred) records None as its previous value. Load it first, for audited models.
    if getattr(cls, "__audited__", False):
        for prop in mapper.column_attrs:
            event.listen(getattr(cls, prop.key), "set", _keep_previous_value, active_history=True, retval=True)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_writes_on_audited_models(state) -> None:
    # Bulk UPDATE/DELETE statements skip the flush, hence the audit trail: forbid them there.
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if getattr(state.bind_mapper.class_, "__audited__", False):
            raise RuntimeError(f"bulk write on audited model {state.bind_mapper.class_.__name__}: "
                               "change the objects instead, so that the audit trail records it")


@event.listens_for(Session, "after_flush")
def _write_audit_entries(session: Session, _flush_context) -> None:
    # After the flush, new objects have their ids while session.new/dirty/deleted and the
    # attribute histories still describe what the flush wrote.
    rows = []
    for obj in session.new:
        if _audited(obj):
            rows.append(_row("create", obj, _changes(obj, created=True)))
    for obj in session.dirty:
        if _audited(obj) and session.is_modified(obj):
            changes = _changes(obj)
            if changes:
                rows.append(_row("update", obj, changes))
    for obj in session.deleted:
        if _audited(obj):
            rows.append(_row("delete", obj, _changes(obj, deleted=True)))
    if rows:
        session.connection().execute(insert(AuditEntry.__table__), rows)


def record(
    action: str,
    *,
    obj: Any | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    data: dict | None = None,
) -> AuditEntry:
    """Add an audit entry for an event that is not a row change (login, logout, export...)."""
    ctx = current()
    entry = AuditEntry(
        created_at=clock.now(),
        actor_id=ctx.actor_id,
        actor_label=ctx.actor_label,
        action=action,
        object_type=_object_type(obj) if obj is not None else object_type,
        object_id=_object_id(obj) if obj is not None else object_id,
        changes=data,
        request_id=ctx.request_id,
        client_addr=ctx.client_addr,
    )
    db_session.add(entry)
    return entry


def record_changes(object_type: str, changes_by_id: list[tuple[str, dict]], *, action: str = "update") -> None:
    """Bulk-write one entry per changed row, for writers that bypass the ORM (imports)."""
    ctx = current()
    now = clock.now()
    rows = [
        {"created_at": now, "actor_id": ctx.actor_id, "actor_label": ctx.actor_label, "action": action,
         "object_type": object_type, "object_id": object_id, "changes": changes,
         "request_id": ctx.request_id, "client_addr": ctx.client_addr}
        for object_id, changes in changes_by_id
    ]
    if rows:
        db_session.execute(insert(AuditEntry.__table__), rows)


def entries_for(*, object_type: str, object_id: str, limit: int = 50,
                actions: tuple[str, ...] | None = None) -> list[AuditEntry]:
    """The latest audit entries about one object, newest first; only these actions if given."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_type == object_type, AuditEntry.object_id == object_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if actions is not None:
        stmt = stmt.where(AuditEntry.action.in_(actions))
    return list(db_session.execute(stmt).scalars())

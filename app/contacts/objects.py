"""Business objects a contact or a dossier can refer to: one registry of kinds (contract, invoice,
reading, service point, meter), so that links are polymorphic (kind + id) and every read of them
goes through the agent's scope like any other read of customer data."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload

from app.contracts.models import Contract, Invoice, Meter, MeterReading, ServicePoint
from app.db import session
from app.errors import BusinessError
from app.labels import label
from app.security.models import Agent
from app.security.scope import scoped_select
from app.web import db_id, money

READ = "party.read"


def _contract(c: Contract) -> str:
    parts = [c.number, label(c.service_point.kind, "service_point_kind"), label(c.status, "contract_status")]
    return " — ".join(parts)


def _invoice(i: Invoice) -> str:
    return _("%(number)s — %(amount)s, échéance %(due)s, reste %(balance)s", number=i.number, amount=money(i.amount),
             due=format_date(i.due_on), balance=money(i.balance))


def _reading(r: MeterReading) -> str:
    return _("%(date)s — index %(index)s (%(kind)s)", date=format_date(r.read_on), index=r.index_value,
             kind=label(r.kind, "reading_kind"))


def _service_point(s: ServicePoint) -> str:
    return " — ".join(p for p in (s.national_id or s.external_ref, ", ".join(s.address_lines)) if p)


@dataclass(frozen=True)
class ObjectKind:
    code: str
    model: type
    describe: Callable[[object], str]
    options: tuple = ()  # loader options, so that describing needs no further query


KINDS: dict[str, ObjectKind] = {k.code: k for k in (
    ObjectKind("contract", Contract, _contract, (joinedload(Contract.service_point),)),
    ObjectKind("invoice", Invoice, _invoice),
    ObjectKind("meter_reading", MeterReading, _reading),
    ObjectKind("service_point", ServicePoint, _service_point),
    ObjectKind("meter", Meter, lambda m: m.serial),
)}


@dataclass(frozen=True)
class Ref:
    kind: str
    id: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        """"invoice:12" → Ref("invoice", 12); a clear error for anything else."""
        kind, _sep, raw_id = (text or "").partition(":")
        try:
            object_id = db_id(raw_id)
        except ValueError:
            object_id = None
        if kind not in KINDS or object_id is None:
            raise BusinessError(_("Objet métier inconnu : %(ref)s.", ref=text), field="objects")
        return cls(kind, object_id)


def load(agent: Agent, refs: Iterable[Ref]) -> dict[Ref, object]:
    """The objects among refs that the agent may read (one query per kind); the others are absent."""
    by_kind: dict[str, set[int]] = defaultdict(set)
    for ref in refs:
        by_kind[ref.kind].add(ref.id)
    found: dict[Ref, object] = {}
    for kind, ids in by_kind.items():
        spec = KINDS[kind]
        stmt = scoped_select(spec.model, agent=agent, permission=READ).where(spec.model.id.in_(ids))
        if spec.options:
            stmt = stmt.options(*spec.options)
        for obj in session.execute(stmt).unique().scalars():
            found[Ref(kind, obj.id)] = obj
    return found


def describe(ref: Ref, obj: object | None) -> str:
    """How the object reads in a list: its kind's description, or a neutral line when it is not
    readable (out of the agent's scope, or gone from the billing system's copy)."""
    if obj is None:
        return _("%(kind)s n° %(id)s (non consultable)", kind=label(ref.kind, "object_kind"), id=ref.id)
    return KINDS[ref.kind].describe(obj)

"""The customer's history: one timeline, newest first, fed by a registry of sources.

A source is a function returning a party's events of one type (its key), newest first, within the
agent's scope. Today's sources are the changes of the party's record (audit trail), the invoices
issued, the payments received and the meter readings; contacts and dossiers register their own
sources in app/contacts/history.py (``@source("contact", _l("Contacts"), channels=True)``).

Pagination never loads the whole history. For page p of n events, each source is asked for at
most ``p × n + 1`` newest events: the page's events are necessarily among them (an event of the
page has fewer than ``p × n`` newer events overall, so fewer within its own source), and the
extra one tells whether a next page exists. The sources' answers are merged and sorted in Python.
The cost grows with the page number, so pages stop at MAX_PAGE: further back, the agent narrows
the history by type.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.audit.display import action_label, actor_label, field_label
from app.audit.service import entries_for
from app.contracts.models import ContractParty, Invoice, MeterReading, Payment
from app.contracts.service import READ, readings_of_party
from app.db import session
from app.labels import label
from app.security.models import Agent
from app.security.scope import scoped_select
from app.web import money

PER_PAGE = 20
MAX_PAGE = 50


@dataclass(frozen=True)
class Event:
    """One line of the timeline. ``all_day`` events carry a date only (invoices, readings…)."""

    kind: str
    at: datetime
    title: str
    detail: str | None = None
    all_day: bool = False
    channel: str | None = None
    order: int = 0  # the row id: a stable order between events of the same time
    url: str | None = None  # the page of the event's object (a contact, a dossier)


# (agent, party_id, limit, channel) → at most limit events of the party, newest first.
Fetch = Callable[[Agent, int, int, str | None], list[Event]]


@dataclass(frozen=True)
class Source:
    key: str
    label: object  # a lazy string: the filter's option
    fetch: Fetch
    channels: bool = False  # its events have a channel (contacts), so the channel filter applies


SOURCES: dict[str, Source] = {}


def source(key: str, label: object, *, channels: bool = False) -> Callable[[Fetch], Fetch]:
    """Register a source of events under its type key."""

    def register(fetch: Fetch) -> Fetch:
        SOURCES[key] = Source(key=key, label=label, fetch=fetch, channels=channels)
        return fetch

    return register


def type_choices() -> list[tuple[str, str]]:
    return [(s.key, str(s.label)) for s in SOURCES.values()]


def has_channel_sources() -> bool:
    return any(s.channels for s in SOURCES.values())


@dataclass(frozen=True)
class Page:
    events: list[Event]
    page: int
    has_next: bool
    kind: str | None
    channel: str | None
    per_page: int = PER_PAGE

    @property
    def last_page_reached(self) -> bool:
        return self.page >= MAX_PAGE and self.has_next


def history(*, agent: Agent, party_id: int, page: int = 1, kind: str | None = None, channel: str | None = None,
            per_page: int = PER_PAGE) -> Page:
    """One page of the party's history, newest first; the caller has checked the agent may read the
    party. An unknown type is no filter; a channel filter keeps only the sources with channels."""
    page = min(max(page, 1), MAX_PAGE)
    kind = kind if kind in SOURCES else None
    offset = (page - 1) * per_page
    bound = offset + per_page + 1  # see the module's docstring
    events: list[Event] = []
    for src in SOURCES.values():
        if (kind is None or src.key == kind) and (channel is None or src.channels):
            events.extend(src.fetch(agent, party_id, bound, channel))
    events.sort(key=lambda e: (e.at, e.kind, e.order), reverse=True)
    return Page(events=events[offset:offset + per_page], page=page, has_next=len(events) > offset + per_page,
                kind=kind, channel=channel, per_page=per_page)


def _day(value: date) -> datetime:
    """A date-only event placed at the start of its day, in the agency's time zone."""
    return datetime.combine(value, time.min, tzinfo=ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))


def _party_contracts(party_id: int):
    return select(ContractParty.contract_id).where(ContractParty.party_id == party_id)


@source("party_change", _l("Modifications de la fiche"))
def party_changes(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    """The audit trail of the party's record (the caller has checked the party is in scope)."""
    events = []
    for entry in entries_for(object_type="party", object_id=str(party_id), limit=limit):
        actor = actor_label(entry.actor_label)
        if entry.action == "create_despite_duplicates":  # the candidates may be out of a later reader's scope
            events.append(Event(kind="party_change", at=entry.created_at.astimezone(UTC), order=entry.id,
                                title=_("Créé malgré des doublons possibles par %(actor)s", actor=actor)))
            continue
        if entry.action == "create":
            title = _("Fiche créée par %(actor)s", actor=actor)
        elif entry.action == "update":
            title = _("Coordonnées modifiées par %(actor)s", actor=actor)
        else:
            title = _("%(action)s par %(actor)s", action=action_label(entry.action), actor=actor)
        # What changed; a creation sets every field, so naming them says nothing.
        fields = "" if entry.action == "create" else ", ".join(field_label(key) for key in (entry.changes or {}))
        events.append(Event(kind="party_change", at=entry.created_at.astimezone(UTC), title=title,
                            detail=fields or None, order=entry.id))
    return events


@source("invoice", _l("Factures"))
def invoices(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    stmt = (
        scoped_select(Invoice, agent=agent, permission=READ)
        .where(Invoice.contract_id.in_(_party_contracts(party_id)))
        .order_by(Invoice.issued_on.desc(), Invoice.id.desc())
        .limit(limit)
        .options(joinedload(Invoice.contract))
    )
    return [
        Event(kind="invoice", at=_day(inv.issued_on), all_day=True, order=inv.id,
              title=_("Facture %(number)s émise : %(amount)s", number=inv.number, amount=money(inv.amount)),
              detail=_("Contrat %(contract)s · échéance le %(due)s · %(status)s", contract=inv.contract.number,
                       due=format_date(inv.due_on), status=label(inv.status, "invoice_status")))
        for inv in session.execute(stmt).scalars()
    ]


@source("payment", _l("Paiements"))
def payments(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    stmt = (
        scoped_select(Payment, agent=agent, permission=READ)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.contract_id.in_(_party_contracts(party_id)))
        .order_by(Payment.paid_on.desc(), Payment.id.desc())
        .limit(limit)
        .options(joinedload(Payment.invoice))
    )
    return [
        Event(kind="payment", at=_day(p.paid_on), all_day=True, order=p.id,
              title=_("Paiement reçu : %(amount)s", amount=money(p.amount)),
              detail=" · ".join(part for part in (_("Facture %(number)s", number=p.invoice.number),
                                                  label(p.method, "payment_method") if p.method else None) if part))
        for p in session.execute(stmt).scalars()
    ]


@source("reading", _l("Relevés"))
def readings(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    """Readings at the party's premises while the party's contract ran there."""
    stmt = (
        readings_of_party(scoped_select(MeterReading, agent=agent, permission=READ), party_id)
        .distinct()  # a reading on the day one contract ends and the next starts joins both
        .order_by(MeterReading.read_on.desc(), MeterReading.id.desc())
        .limit(limit)
        .options(joinedload(MeterReading.meter))
    )
    return [
        Event(kind="reading", at=_day(r.read_on), all_day=True, order=r.id,
              title=_("Relevé du compteur %(serial)s : index %(index)s (%(kind)s)", serial=r.meter.serial,
                      index=r.index_value, kind=label(r.kind, "reading_kind").lower()))
        for r in session.execute(stmt).scalars()
    ]

"""The contacts and dossiers in the customer's history (sources of app.parties.timeline)."""
from __future__ import annotations

from datetime import UTC

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.contacts.service import contacts_of_party
from app.dossiers.reads import dossiers_of_party
from app.labels import label
from app.parties.timeline import Event, source
from app.security.models import Agent


@source("contact", _l("Contacts"), channels=True)
def contacts(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    return [
        Event(kind="contact", at=c.occurred_at.astimezone(UTC), order=c.id, channel=c.channel,
              url=url_for("contacts.show", contact_id=c.id),
              title=(_("%(channel)s — %(type)s : %(subject)s", channel=label(c.channel, "channel"),
                       type=c.contact_type.label, subject=c.subject) if c.subject != c.contact_type.label
                     else _("%(channel)s — %(type)s", channel=label(c.channel, "channel"), type=c.contact_type.label)),
              detail=_("%(direction)s · tracé par %(agent)s", direction=label(c.direction, "direction"),
                       agent=c.created_by.full_name))
        for c in contacts_of_party(agent=agent, party_id=party_id, limit=limit, channel=channel)
    ]


@source("dossier", _l("Dossiers"))
def dossiers(agent: Agent, party_id: int, limit: int, channel: str | None) -> list[Event]:
    return [
        Event(kind="dossier", at=d.created_at.astimezone(UTC), order=d.id,
              url=url_for("dossiers.show", dossier_id=d.id),
              title=_("Dossier %(ref)s ouvert : %(type)s", ref=d.reference, type=d.dossier_type.label),
              detail=f"{label(d.status, 'dossier_status')} · {d.subject}")
        for d in dossiers_of_party(agent=agent, party_id=party_id, limit=limit)
    ]

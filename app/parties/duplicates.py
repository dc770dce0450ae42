"""Duplicate detection: is this person or company already known, within the agent's scope?

Used before a prospect is created (the agent chooses to open a candidate or to create anyway) and
by the customer view's header ("doublon suspecté"). Three rules, each on an index:
  - the same phone number (any format, compared in E.164) — party_phone.number;
  - the same email address, case ignored — party_email.address;
  - a close name at the same address: the search index's rows holding the same street and postal
    code (party_search, pg_trgm / FTS5), kept when their name is close (trigram similarity of the
    normalised words, which forgives accents, hyphens and one wrong letter: "Jean-Pierre Dupont"
    and "Jean Pierre Dupond").
A namesake at another address is not a duplicate: homonyms are common ("Jean Martin").
Parties outside the agent's scope are never returned (nor counted: the quick search already
says when a name exists elsewhere).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.db import session
from app.errors import BusinessError
from app.parties.models import Party, PartyEmail, PartyPhone
from app.parties.phones import normalise_phone
from app.search.normalise import normalise, similarity
from app.search.service import READ, rows_at_address
from app.security.models import Agent
from app.security.scope import scope_condition, scoped_select

NAME_SIMILARITY = 0.5  # per name word: "dupond"/"dupont" 0.56, "lefevre"/"lefebvre" 0.5
MAX_PER_RULE = 50

REASONS = {
    "phone": _l("même téléphone"),
    "email": _l("même courriel"),
    "name_address": _l("nom proche à la même adresse"),
}


@dataclass
class Candidate:
    party: Party
    reasons: list[str] = field(default_factory=list)  # keys of REASONS

    @property
    def reason_labels(self) -> list[str]:
        return [str(REASONS[r]) for r in self.reasons]


def _phones(phones: Iterable[str | None]) -> list[str]:
    numbers = []
    for raw in phones:
        try:
            numbers.append(normalise_phone(raw or ""))
        except BusinessError:
            continue  # not a number: the form says so; no duplicate to look for
    return sorted(set(numbers))


def _close_names(wanted: list[str], found: list[str]) -> bool:
    """Every word of the wanted name has a close word in the found one (any order)."""
    return bool(wanted) and all(any(w == f or similarity(w, f) >= NAME_SIMILARITY for f in found) for w in wanted)


def _same_address_ids(*, agent: Agent, name_words: list[str], street: str | None, postal_code: str | None,
                      exclude_id: int | None) -> list[int]:
    if not name_words:
        return []
    return [party_id for party_id, name, _address, _status in
            rows_at_address(street=street, postal_code=postal_code, agent=agent)
            if party_id != exclude_id and _close_names(name_words, name.split())][:MAX_PER_RULE]


def find_duplicates(*, agent: Agent, last_name: str | None = None, first_name: str | None = None,
                    company_name: str | None = None, street: str | None = None, postal_code: str | None = None,
                    phones: Iterable[str | None] = (), emails: Iterable[str | None] = (),
                    exclude_id: int | None = None, limit: int = 10) -> list[Candidate]:
    """The parties in the agent's scope that look like this one, with why, most reasons first."""
    if agent is None or not agent.is_active or not agent.can(READ):
        return []
    reasons: dict[int, list[str]] = {}

    def add(ids, reason):
        for party_id in ids:
            if party_id != exclude_id and reason not in reasons.setdefault(party_id, []):
                reasons[party_id].append(reason)

    # Scoped before the cap: fifty out-of-scope owners of a switchboard number hide nothing.
    in_scope = scope_condition(Party, agent=agent, permission=READ)
    numbers = _phones(phones)
    if numbers:
        add(session.execute(select(PartyPhone.party_id).join(Party, Party.id == PartyPhone.party_id)
                            .where(PartyPhone.number.in_(numbers), in_scope, Party.id != (exclude_id or 0))
                            .limit(MAX_PER_RULE)).scalars(), "phone")
    addresses = sorted({e.strip().lower() for e in emails if e and "@" in e})
    if addresses:
        add(session.execute(select(PartyEmail.party_id).join(Party, Party.id == PartyEmail.party_id)
                            .where(PartyEmail.address.in_(addresses), in_scope,  # stored lowercase
                                   Party.id != (exclude_id or 0))
                            .limit(MAX_PER_RULE)).scalars(), "email")
    name_words = normalise(" ".join(p for p in (last_name, first_name, company_name) if p)).split()
    add(_same_address_ids(agent=agent, name_words=name_words, street=street, postal_code=postal_code,
                          exclude_id=exclude_id), "name_address")
    if not reasons:
        return []
    parties = session.execute(scoped_select(Party, agent=agent, permission=READ)
                              .where(Party.id.in_(list(reasons)))).scalars()
    candidates = [Candidate(p, reasons[p.id]) for p in parties]
    candidates.sort(key=lambda c: (-len(c.reasons), c.party.display_name, c.party.id))
    return candidates[:limit]


def suspected_duplicates(*, agent: Agent, party: Party, limit: int = 5) -> list[Party]:
    """The other parties in the agent's scope that look like this one (the customer view's alert)."""
    candidates = find_duplicates(
        agent=agent, last_name=party.last_name, first_name=party.first_name, company_name=party.company_name,
        street=party.street, postal_code=party.postal_code, phones=[p.number for p in party.phones],
        emails=[e.address for e in party.emails], exclude_id=party.id, limit=limit)
    return [c.party for c in candidates]

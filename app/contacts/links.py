"""The links a contact or a dossier is given (parties, agents, business objects), as the form posts
them or a service call passes them, checked once here: known roles, parties and objects the agent
may read (or that the template itself names), active agents, no link twice."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from app.contacts import objects
from app.contacts.models import AgentLinkRole, PartyLinkRole, TemplateItem
from app.db import session
from app.errors import BusinessError
from app.labels import label
from app.parties.models import Party
from app.parties.service import readable_party_ids
from app.security.models import Agent
from app.web import db_id

ORIGIN_RE = re.compile(r"^(default|added|template:\d+|contact:\d+)$")
MAX_LINKS = 100  # per kind: a contact is about a handful of things, not a mailing list


@dataclass(frozen=True)
class PartyLink:
    party_id: int
    role: str
    origin: str = "added"


@dataclass(frozen=True)
class AgentLink:
    agent_id: int
    role: str
    origin: str = "added"


@dataclass(frozen=True)
class ObjectLink:
    ref: objects.Ref
    origin: str = "added"


@dataclass
class Links:
    parties: list[PartyLink] = field(default_factory=list)
    agents: list[AgentLink] = field(default_factory=list)
    objects: list[ObjectLink] = field(default_factory=list)


def split_value(value: str, what: str) -> tuple[str, str, str]:
    """A posted link "target|role|origin" (an origin not of ours reads "added")."""
    parts = (value or "").split("|")
    if len(parts) != 3:
        raise BusinessError(_("Lien illisible : %(value)s.", value=value), field=what)
    target, role, origin = (p.strip() for p in parts)
    return target, role, origin if ORIGIN_RE.match(origin) else "added"


def _id(text: str, what: str) -> int:
    try:
        return db_id(text)
    except ValueError:
        raise BusinessError(_("Lien illisible : %(value)s.", value=text), field=what) from None


def parse_form(*, parties: list[str], agents: list[str], object_refs: list[str]) -> Links:
    """The posted values "target|role|origin" (see templating.Proposal.value) as links."""
    links = Links()
    for value in parties:
        target, role, origin = split_value(value, "parties")
        links.parties.append(PartyLink(_id(target, "parties"), role, origin))
    for value in agents:
        target, role, origin = split_value(value, "agents")
        links.agents.append(AgentLink(_id(target, "agents"), role, origin))
    for value in object_refs:
        target, _role, origin = split_value(value, "objects")
        links.objects.append(ObjectLink(objects.Ref.parse(target), origin))
    return links


def _unique(items: list, key) -> list:
    seen, result = set(), []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            result.append(item)
    return result


def check(links: Links, *, agent: Agent | None, items: list[TemplateItem] = ()) -> Links:
    """The links without duplicates, or a BusinessError naming the first one that cannot be made.

    agent None is a service call by the system (automatic creation): the parties and objects must
    exist, without scope. Otherwise a party must be readable by the agent, unless the template
    names it (a fixed third party, such as a social-services office, lies outside every territory).
    """
    parties = _unique(links.parties, lambda link: (link.party_id, link.role))
    agents = _unique(links.agents, lambda link: (link.agent_id, link.role))
    object_links = _unique(links.objects, lambda link: link.ref)
    if max(len(parties), len(agents), len(object_links)) > MAX_LINKS:
        raise BusinessError(_("Trop de liens (%(max)d au plus par sorte).", max=MAX_LINKS))
    if not parties:
        raise BusinessError(_("Liez au moins un interlocuteur."), field="parties")
    if all(link.role == PartyLinkRole.THIRD_PARTY for link in parties):
        # Third parties do not open a contact to anyone (see Contact.scope_clause): nobody could read it.
        raise BusinessError(_("Liez au moins un interlocuteur autre qu'un tiers (le client concerné)."),
                            field="parties")
    for link in parties:
        if link.role not in PartyLinkRole.ALL:
            raise BusinessError(_("Rôle d'interlocuteur inconnu : %(role)s.", role=link.role), field="parties")
    for link in agents:
        if link.role not in AgentLinkRole.ALL:
            raise BusinessError(_("Rôle d'agent inconnu : %(role)s.", role=link.role), field="agents")

    wanted = {link.party_id for link in parties}
    named = {i.fixed_party_id for i in items if i.fixed_party_id is not None}
    if agent is None:
        readable = set(session.execute(select(Party.id).where(Party.id.in_(wanted))).scalars())
    else:
        readable = readable_party_ids(agent=agent, party_ids=wanted - named)
        readable |= set(session.execute(select(Party.id).where(Party.id.in_(wanted & named))).scalars())
    missing = sorted(wanted - readable)
    if missing:
        raise BusinessError(_("Interlocuteur introuvable ou hors de votre périmètre (n° %(id)s).", id=missing[0]),
                            field="parties")

    wanted_agents = {link.agent_id for link in agents}
    active = set(session.execute(select(Agent.id).where(Agent.id.in_(wanted_agents), Agent.active.is_(True)))
                 .scalars())
    if wanted_agents - active:
        raise BusinessError(_("Agent introuvable ou inactif (n° %(id)s).", id=sorted(wanted_agents - active)[0]),
                            field="agents")

    refs = [link.ref for link in object_links]
    if agent is None:
        found = {ref for ref in refs
                 if session.get(objects.KINDS[ref.kind].model, ref.id) is not None}
    else:
        found = set(objects.load(agent, refs))
    absent = [ref for ref in refs if ref not in found]
    if absent:
        raise BusinessError(_("Objet métier introuvable ou hors de votre périmètre : %(kind)s n° %(id)s.",
                              kind=label(absent[0].kind, "object_kind"), id=absent[0].id), field="objects")
    return _trusted_origins(Links(parties=parties, agents=agents, objects=object_links), items, agent)


def _trusted_origins(links: Links, items, agent: Agent | None) -> Links:
    """Origins name where a link came from; a browser may only claim the defaults, its additions
    and this template's items ("contact:<id>" is written by the dossier service, as the system)."""
    known = {f"template:{i.id}" for i in items if i.id is not None}

    def trusted(origin: str) -> str:
        if origin in ("default", "added") or origin in known or (agent is None and origin.startswith("contact:")):
            return origin
        return "added"

    return Links(parties=[PartyLink(x.party_id, x.role, trusted(x.origin)) for x in links.parties],
                 agents=[AgentLink(x.agent_id, x.role, trusted(x.origin)) for x in links.agents],
                 objects=[ObjectLink(x.ref, trusted(x.origin)) for x in links.objects])


# The roles that place a contact or a dossier, the first found winning (a third party never does).
_PLACING_ROLES = (PartyLinkRole.CUSTOMER, PartyLinkRole.HOLDER, PartyLinkRole.CO_HOLDER, PartyLinkRole.PAYER,
                  PartyLinkRole.OCCUPANT, PartyLinkRole.OWNER)


def territory_of_record(links: Links) -> int | None:
    """The territory a contact or a dossier is counted under by supervision: that of its first party
    in role order (customer, holder, co-holder, payer, occupant, owner), its address's commune, or,
    when the address lies outside every territory, the premises of its first contract. Fixed when the
    contact or dossier is written, so that last year's figures do not move when a customer moves."""
    from app.contracts.models import Contract, ContractParty, ServicePoint

    ranked = sorted((x for x in links.parties if x.role in _PLACING_ROLES),
                    key=lambda x: _PLACING_ROLES.index(x.role))
    for link in ranked:
        territory_id = session.execute(select(Party.territory_id).where(Party.id == link.party_id)).scalar()
        if territory_id is None:
            territory_id = session.execute(
                select(ServicePoint.territory_id).join(Contract, Contract.service_point_id == ServicePoint.id)
                .join(ContractParty, ContractParty.contract_id == Contract.id)
                .where(ContractParty.party_id == link.party_id, ServicePoint.territory_id.is_not(None))
                .order_by(Contract.id).limit(1)).scalar()
        if territory_id is not None:
            return territory_id
    return None


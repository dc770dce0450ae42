"""The links panel of the contact form: the rows the agent sees (each default and template proposal
with where it came from, what the agent added, what the template left out and why) and the pickers
to add more. The panel is re-rendered in place (htmx) when the type or channel changes or a link is
added, from what the form holds: the rows shown and which of them are still ticked."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from app.contacts import links as link_rules
from app.contacts import objects, templating
from app.contacts.models import AgentLinkRole, ContactType, PartyLinkRole, TemplateItem
from app.contracts import service as contracts
from app.contracts.models import Contract
from app.db import session
from app.errors import BusinessError
from app.labels import choices, label
from app.parties.models import Party
from app.security.models import Agent
from app.security.scope import scoped_select, subtrees_overlap
from app.web import db_id

KINDS = ("party", "agent", "object")
PICKER_INVOICES = 6
PICKER_READINGS = 3
PICKER_AGENTS = 200


@dataclass
class Row:
    kind: str
    value: str  # what the checkbox posts: "target|role|origin"
    display: str
    role: str | None
    origin: str
    origin_label: str
    checked: bool = True

    @property
    def role_label(self) -> str | None:
        if not self.role:
            return None
        return label(self.role, "party_link_role" if self.kind == "party" else "agent_link_role")


@dataclass
class Panel:
    rows: dict[str, list[Row]]
    left_out: list[templating.Proposal]  # ineligible template items, with their reasons
    object_choices: list[tuple[str, str]] = field(default_factory=list)
    agent_choices: list[tuple[int, str]] = field(default_factory=list)
    party_roles: list[tuple[str, str]] = field(default_factory=list)
    agent_roles: list[tuple[str, str]] = field(default_factory=list)
    notice: str | None = None  # a link the agent asked for that could not be added


def _id(text: str) -> int | None:
    try:
        return db_id(text)
    except ValueError:
        return None


def origin_label(origin: str) -> str:
    if origin == "default":
        return _("Par défaut")
    if origin == "added":
        return _("Ajouté")
    kind, _sep, ident = origin.partition(":")
    if kind == "template" and _id(ident) is not None:
        item = session.get(TemplateItem, _id(ident))
        if item is not None:
            return templating.item_origin_label(item)
    if kind == "contact" and _id(ident) is not None:
        return _("Contact n° %(id)s", id=ident)
    return _("Ajouté")


def _row_of(proposal: templating.Proposal) -> Row:
    return Row(proposal.kind, proposal.value, proposal.display, proposal.role, proposal.origin,
               proposal.origin_label)


def _parse(value: str) -> tuple[str, str, str] | None:
    """A posted row's (target, role, origin) as the links module reads it, or None if unreadable."""
    try:
        return link_rules.split_value(value, "shown")
    except BusinessError:
        return None


def _ref(text: str) -> objects.Ref | None:
    try:
        return objects.Ref.parse(text)
    except BusinessError:  # a tampered value is simply not shown again
        return None


def _rows_from_form(agent: Agent, shown: list[str], ticked: set[str], items: list[TemplateItem]) -> list[Row]:
    """The rows the form showed ("kind=value"), described again from the database (never from the
    browser): names of readable parties, active agents, readable objects. Others are dropped."""
    parsed = []
    for item in shown:
        kind, _sep, value = item.partition("=")
        fields = _parse(value)
        if kind in KINDS and fields:
            parsed.append((kind, value, fields))
    party_ids = {_id(f[0]) for k, _v, f in parsed if k == "party" and _id(f[0]) is not None}
    agent_ids = {_id(f[0]) for k, _v, f in parsed if k == "agent" and _id(f[0]) is not None}
    refs = [ref for k, _v, f in parsed if k == "object" and (ref := _ref(f[0])) is not None]
    names = {}
    if party_ids:  # readable parties, and the third parties templates name (whatever the territory)
        named = {i.fixed_party_id for i in items if i.fixed_party_id is not None}
        readable = scoped_select(Party, agent=agent, permission="party.read").where(Party.id.in_(party_ids))
        fixed = select(Party).where(Party.id.in_(party_ids & named))
        names = {p.id: p.display_name for stmt in (readable, fixed) for p in session.execute(stmt).scalars()}
    agents = {a.id: a.full_name for a in session.execute(
        select(Agent).where(Agent.id.in_(agent_ids), Agent.active.is_(True))).scalars()} if agent_ids else {}
    found = objects.load(agent, refs)
    rows = []
    for kind, value, (target, role, origin) in parsed:
        if kind == "party" and _id(target) in names:
            display = names[_id(target)]
        elif kind == "agent" and _id(target) in agents:
            display = agents[_id(target)]
        elif kind == "object":
            ref = next((r for r in refs if r.key == target), None)
            if ref is None or ref not in found:
                continue
            display = objects.describe(ref, found[ref])
        else:
            continue
        rows.append(Row(kind, value, display, role or None, origin, origin_label(origin), value in ticked))
    return rows


def _pickers(agent: Agent, party: Party | None, contract: Contract | None, panel: Panel) -> None:
    panel.party_roles = choices("party_link_role")
    panel.agent_roles = choices("agent_link_role")
    options: list[tuple[str, str]] = []
    if party is not None:
        for c in contracts.list_contracts_of_party(agent=agent, party_id=party.id):
            options.append((objects.Ref("contract", c.id).key, _("Contrat %(text)s", text=objects.describe(
                objects.Ref("contract", c.id), c))))
            options.append((objects.Ref("service_point", c.service_point_id).key, _("Point de desserte %(text)s",
                            text=objects.describe(objects.Ref("service_point", c.service_point_id), c.service_point))))
    if contract is not None:
        meter = contracts.current_meter(agent=agent, service_point_id=contract.service_point_id)
        if meter is not None:
            options.append((objects.Ref("meter", meter.id).key, _("Compteur %(serial)s", serial=meter.serial)))
        for invoice in contracts.list_invoices(agent=agent, contract_id=contract.id, limit=PICKER_INVOICES):
            ref = objects.Ref("invoice", invoice.id)
            options.append((ref.key, _("Facture %(text)s", text=objects.describe(ref, invoice))))
        for reading in contracts.list_contract_readings(agent=agent, contract=contract, limit=PICKER_READINGS):
            ref = objects.Ref("meter_reading", reading.id)
            options.append((ref.key, _("Relève du %(text)s", text=objects.describe(ref, reading))))
    panel.object_choices = options
    # Agents who share part of the agent's territories (a colleague, a back office above them).
    candidates = session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.full_name)
                                 .limit(PICKER_AGENTS)).scalars().all()
    panel.agent_choices = [(a.id, a.full_name) for a in candidates
                           if a.id == agent.id or subtrees_overlap(a.territories, agent.territories)]


def _add(agent: Agent, kind: str, raw: str, role: str | None) -> tuple[Row | None, str | None]:
    """A row for what the agent asked to add, or a message saying why not."""
    raw = (raw or "").strip()
    if kind == "party":
        role = role if role in PartyLinkRole.ALL else PartyLinkRole.THIRD_PARTY
        stmt = scoped_select(Party, agent=agent, permission="party.read").where(
            (Party.number == raw.upper()[:20]) | (Party.id == (_id(raw) or -1)))
        party = session.execute(stmt.limit(1)).scalar_one_or_none()
        if party is None:
            return None, _("Aucun interlocuteur n° « %(number)s » dans votre périmètre.", number=raw)
        return Row("party", f"{party.id}|{role}|added", party.display_name, role, "added", origin_label("added")), None
    if kind == "agent":
        role = role if role in AgentLinkRole.ALL else AgentLinkRole.COPY
        other = session.get(Agent, _id(raw)) if _id(raw) is not None else None
        if other is None or not other.active:
            return None, _("Agent introuvable ou inactif.")
        return Row("agent", f"{other.id}|{role}|added", other.full_name, role, "added", origin_label("added")), None
    ref = _ref(raw)
    if ref is None:
        return None, _("Objet métier inconnu.")
    obj = objects.load(agent, [ref]).get(ref)
    if obj is None:
        return None, _("Objet métier introuvable ou hors de votre périmètre.")
    return Row("object", f"{ref.key}||added", objects.describe(ref, obj), None, "added", origin_label("added")), None


def build(*, agent: Agent, party: Party | None, contract: Contract | None, channel: str | None,
          direction: str | None, contact_type: ContactType | None, shown: list[str] | None = None,
          ticked: set[str] | None = None, retemplate: bool = False,
          add: tuple[str, str, str | None] | None = None) -> Panel:
    """The panel. Without shown rows (a new form): the defaults and the type's proposals, all
    ticked. With them: those rows as they were, except that after a change of type (retemplate)
    the previous template's rows give way to the new type's proposals."""
    ctx = templating.build_context(agent=agent, party=party, contract=contract, channel=channel,
                                   direction=direction)
    items = contact_type.items if contact_type is not None else []
    proposals = templating.propose(ctx, items)
    left_out = [p for p in proposals if not p.eligible]
    if shown is None:
        rows = [_row_of(p) for p in proposals if p.eligible]
    else:
        rows = _rows_from_form(agent, shown, ticked or set(), items)
        if retemplate:
            rows = [r for r in rows if not r.origin.startswith("template:")]
            have = {(r.kind, r.value) for r in rows}
            rows += [_row_of(p) for p in proposals if p.eligible and p.origin.startswith("template:")
                     and (p.kind, p.value) not in have]
    panel = Panel(rows={k: [r for r in rows if r.kind == k] for k in KINDS}, left_out=left_out)
    if add is not None:
        row, notice = _add(agent, *add)
        if row is not None and all(r.value != row.value for r in panel.rows[row.kind]):
            panel.rows[row.kind].append(row)
        panel.notice = notice
    _pickers(agent, party, contract, panel)
    return panel

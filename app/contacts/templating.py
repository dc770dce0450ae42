"""From a template to proposed links: the context of a new contact or dossier (who, which contract,
which channel, what is owed, which dossiers are open), the facts eligibility rules read from it,
and the proposals (a party, an agent or a business object, where it came from, and whether it is
eligible) that the agent sees checked, unchecked or left out with the reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, literal, select

from app.contacts import objects, rules
from app.contacts.models import AgentLinkRole, Direction, PartyLinkRole, TemplateItem
from app.contracts import service as contracts
from app.contracts.models import Contract, ContractParty, ContractRole, Invoice
from app.db import session
from app.dossiers import reads as dossier_reads
from app.labels import label
from app.parties.models import Party
from app.parties.overview import local_today
from app.security.models import Agent, Role, Territory, agent_role, agent_territory
from app.security.scope import scoped_select

ROLE_IN_TERRITORY_LIMIT = 10  # agents proposed per "role on the territory" item
OVERDUE_INVOICES_LIMIT = 20

CONTRACT_ROLE_SOURCES = {
    "contract_holder": ContractRole.HOLDER, "contract_co_holder": ContractRole.CO_HOLDER,
    "contract_payer": ContractRole.PAYER, "contract_occupant": ContractRole.OCCUPANT,
    "contract_owner": ContractRole.OWNER,
}
SOURCES = {
    "party": ("current_customer", *CONTRACT_ROLE_SOURCES, "fixed_party"),
    "agent": ("current_agent", "fixed_agent", "role_in_territory"),
    "object": ("current_contract", "current_service_point", "current_meter", "last_invoice", "last_reading",
               "overdue_invoices"),
}


@dataclass
class Context:
    agent: Agent
    party: Party | None
    contract: Contract | None
    channel: str | None
    direction: str
    today: date
    territory_path: str | None  # of the contract's premises, else the party's own territory
    facts: dict = field(default_factory=dict)


def _territory_path(territory_id: int | None) -> str | None:
    if territory_id is None:
        return None
    return session.execute(select(Territory.path).where(Territory.id == territory_id)).scalar_one_or_none()


def build_context(*, agent: Agent, party: Party | None, contract: Contract | None, channel: str | None,
                  direction: str | None = None) -> Context:
    """The context of a contact or dossier being prepared; party and contract were read through the
    agent's scope by the caller."""
    today = local_today()
    direction = direction if direction in Direction.ALL else Direction.INBOUND
    territory_id = contract.service_point.territory_id if contract else (party.territory_id if party else None)
    path = _territory_path(territory_id)
    if contract is not None:
        overdue = contracts.overdue_of_contract(agent=agent, contract_id=contract.id, today=today)
    elif party is not None:
        overdue = contracts.overdue_of_party(agent=agent, party_id=party.id, today=today)
    else:
        overdue = contracts.Overdue(amount=Decimal("0.00"), since=None, invoices=0)
    open_dossiers = dossier_reads.open_dossiers_of_party(agent=agent, party_id=party.id) if party else []
    facts = {
        "channel": channel,
        "direction": direction,
        "party_status": party.status if party else None,
        "vulnerable": bool(party and party.vulnerable),
        "contract_status": contract.status if contract else rules.NO_CONTRACT,
        "service_point_kind": contract.service_point.kind if contract else None,
        "main_residence": bool(contract and contract.service_point.main_residence),
        "territory": tuple(code for code in (path or "").split("/") if code),
        "overdue_amount": overdue.amount,
        "overdue_invoices": overdue.invoices,
        "open_dossiers": len(open_dossiers),
        "open_dossier_types": sorted({d.dossier_type.code for d in open_dossiers}),
    }
    return Context(agent=agent, party=party, contract=contract, channel=channel, direction=direction, today=today,
                   territory_path=path, facts=facts)


@dataclass
class Proposal:
    """One link the template or the defaults propose. ``value`` is what the form posts back."""

    kind: str  # "party", "agent", "object"
    target: int | objects.Ref | None
    role: str | None
    origin: str  # "default", "template:<item id>"
    origin_label: str
    display: str
    eligible: bool = True
    reasons: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        target = self.target.key if isinstance(self.target, objects.Ref) else self.target
        return f"{self.kind}:{target}:{self.role or ''}"

    @property
    def value(self) -> str:
        target = self.target.key if isinstance(self.target, objects.Ref) else self.target
        return f"{target}|{self.role or ''}|{self.origin}"


def default_proposals(ctx: Context) -> list[Proposal]:
    """What every contact starts with: the current customer, the agent as sender, the contract."""
    found = []
    default = _("Par défaut")
    if ctx.party is not None:
        found.append(Proposal("party", ctx.party.id, PartyLinkRole.CUSTOMER, "default", default,
                              ctx.party.display_name))
    found.append(Proposal("agent", ctx.agent.id, AgentLinkRole.EMITTER, "default", default, ctx.agent.full_name))
    if ctx.contract is not None:
        ref = objects.Ref("contract", ctx.contract.id)
        found.append(Proposal("object", ref, None, "default", default, objects.describe(ref, ctx.contract)))
    return found


def item_origin_label(item: TemplateItem) -> str:
    return _("Modèle : %(source)s", source=label(item.source, "template_source"))


def _party_targets(ctx: Context, item: TemplateItem) -> tuple[list[tuple[int, str, str]], str | None]:
    """(party id, link role, display) of the item, or why there is none."""
    if item.source == "current_customer":
        if ctx.party is None:
            return [], _("aucun client courant")
        return [(ctx.party.id, item.link_role or PartyLinkRole.CUSTOMER, ctx.party.display_name)], None
    if item.source == "fixed_party":
        if item.fixed_party is None:
            return [], _("interlocuteur désigné absent")
        return [(item.fixed_party.id, item.link_role or PartyLinkRole.THIRD_PARTY, item.fixed_party.display_name)], None
    role = CONTRACT_ROLE_SOURCES[item.source]
    if ctx.contract is None:
        return [], _("aucun contrat courant")
    rows = session.execute(select(Party).join(ContractParty, ContractParty.party_id == Party.id)
                           .where(ContractParty.contract_id == ctx.contract.id, ContractParty.role == role)
                           .order_by(Party.id)).scalars().all()
    if not rows:
        return [], _("aucun %(role)s sur le contrat courant", role=label(role, "contract_role").lower())
    return [(p.id, item.link_role or role, p.display_name) for p in rows], None


def _agent_targets(ctx: Context, item: TemplateItem) -> tuple[list[tuple[int, str, str]], str | None]:
    role = item.link_role or AgentLinkRole.RESPONSIBLE
    if item.source == "current_agent":
        return [(ctx.agent.id, role, ctx.agent.full_name)], None
    if item.source == "fixed_agent":
        agent = item.fixed_agent
        if agent is None or not agent.active:
            return [], _("agent désigné inactif ou absent")
        return [(agent.id, role, agent.full_name)], None
    path = item.territory.path if item.territory is not None else ctx.territory_path
    if path is None or item.role_id is None:
        return [], _("aucun territoire pour chercher les agents")
    # Agents of the role holding the territory or one above it.
    stmt = (select(Agent).join(agent_role, agent_role.c.agent_id == Agent.id)
            .join(agent_territory, agent_territory.c.agent_id == Agent.id)
            .join(Territory, Territory.id == agent_territory.c.territory_id)
            .join(Role, Role.id == agent_role.c.role_id)
            .where(agent_role.c.role_id == item.role_id, Agent.active.is_(True), Role.active.is_(True),
                   # The agent's path is a prefix of the premises' (compared as text: no LIKE
                   # pattern, so "_" or "%" in a territory code is just a character).
                   func.substr(literal(path), 1, func.length(Territory.path)) == Territory.path)
            .distinct().order_by(Agent.full_name, Agent.id).limit(ROLE_IN_TERRITORY_LIMIT))
    agents = session.execute(stmt).scalars().all()
    if not agents:
        return [], _("aucun agent de ce rôle sur le territoire")
    return [(a.id, role, a.full_name) for a in agents], None


def _object_targets(ctx: Context, item: TemplateItem) -> tuple[list[tuple[objects.Ref, object]], str | None]:
    contract, agent = ctx.contract, ctx.agent
    if contract is None:
        return [], _("aucun contrat courant")
    if item.source == "current_contract":
        return [(objects.Ref("contract", contract.id), contract)], None
    if item.source == "current_service_point":
        sp = contract.service_point
        return [(objects.Ref("service_point", sp.id), sp)], None
    if item.source == "current_meter":
        meter = contracts.current_meter(agent=agent, service_point_id=contract.service_point_id)
        return ([(objects.Ref("meter", meter.id), meter)], None) if meter else ([], _("aucun compteur posé"))
    if item.source == "last_invoice":
        found = contracts.list_invoices(agent=agent, contract_id=contract.id, limit=1)
        return ([(objects.Ref("invoice", found[0].id), found[0])], None) if found else ([], _("aucune facture"))
    if item.source == "last_reading":
        found = contracts.list_contract_readings(agent=agent, contract=contract, limit=1)
        return ([(objects.Ref("meter_reading", found[0].id), found[0])], None) if found else ([], _("aucune relève"))
    # overdue_invoices
    stmt = (scoped_select(Invoice, agent=agent, permission=contracts.READ)
            .where(Invoice.contract_id == contract.id, contracts.unpaid_condition(), Invoice.due_on < ctx.today)
            .order_by(Invoice.due_on, Invoice.id).limit(OVERDUE_INVOICES_LIMIT))
    found = session.execute(stmt).scalars().all()
    if not found:
        return [], _("aucune facture impayée échue")
    return [(objects.Ref("invoice", i.id), i) for i in found], None


def item_proposals(ctx: Context, item: TemplateItem) -> list[Proposal]:
    """What one template item proposes: its targets when its rule holds and it finds some; else
    one ineligible proposal saying why."""
    origin, origin_label = f"template:{item.id}", item_origin_label(item)
    verdict = rules.evaluate(rules.parse(item.rule), ctx.facts, hidden=_hidden_facts(ctx.agent))
    if not verdict.eligible:
        return [Proposal(item.kind, None, item.link_role, origin, origin_label, label(item.source, "template_source"),
                         eligible=False, reasons=verdict.reasons)]
    if item.kind == "object":
        found, missing = _object_targets(ctx, item)
        proposals = [Proposal("object", ref, None, origin, origin_label, objects.describe(ref, obj))
                     for ref, obj in found]
    else:
        targets, missing = (_party_targets if item.kind == "party" else _agent_targets)(ctx, item)
        proposals = [Proposal(item.kind, target_id, role, origin, origin_label, display)
                     for target_id, role, display in targets]
    if not proposals:
        return [Proposal(item.kind, None, item.link_role, origin, origin_label, label(item.source, "template_source"),
                         eligible=False, reasons=[missing or _("rien à proposer")])]
    return proposals


def propose(ctx: Context, items: list[TemplateItem], *, defaults: bool = True) -> list[Proposal]:
    """The defaults, then each template item's proposals, without the same link twice (the first
    origin is kept: a default stays a default even when the template names it too)."""
    seen: set[str] = set()
    result = []
    for proposal in (default_proposals(ctx) if defaults else []) + [p for i in items for p in item_proposals(ctx, i)]:
        if proposal.eligible and proposal.key in seen:
            continue
        seen.add(proposal.key)
        result.append(proposal)
    return result


def _hidden_facts(agent) -> frozenset[str]:
    """The sensitive facts whose value an agent without party.sensitive does not read in a reason."""
    from app.parties import sensitive

    return frozenset() if sensitive.may_see(agent) else frozenset(f for f in sensitive.FIELDS if f in rules.FACTS)


"""Demo activity: the last months of a front office, traced through the real service functions.

After the synthetic customers exist (app.seed.customers), ``seed_activity`` replays some 120 days
of work by the demo agents (app.seed.demo.AGENTS), each within their territories: contacts on every
channel (weighted as bench/contacts_fill.py), dossiers of the seeded classifications opened from a
contact or by hand (their process started when the classification says so), moved on, closed after
a few days (some after their target time), others still open past it with their tasks waiting;
relaunches opened by the dunning procedure, moved to the next level when their timer comes, and
closed when the customer pays. Time moves by replacing ``app.clock.now`` (what the business rules
read) for the length of the replay, so that dates, target times and audit entries fall where they
would have.

Deterministic for a seed on a given base (a ``random.Random``), and idempotent: a base that already
has contacts is left as it is.
"""
from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app import clock
from app.contacts import links as link_rules
from app.contacts import objects
from app.contacts import service as contacts
from app.contacts.models import AgentLinkRole, Contact, ContactType, PartyLinkRole
from app.contracts.models import ContractParty, InvoiceStatus, Payment
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import Dossier, DossierStatus, DossierType
from app.errors import BusinessError
from app.parties.models import Party
from app.processes import definitions
from app.processes import service as processes
from app.processes.models import ProcessTimer
from app.security.models import Agent, Territory
from app.seed.demo import AGENTS

DAYS = 120
CONTACTS = 1500
DOSSIERS = 300
RELAUNCH_SHARE = 0.12  # of the dossiers: opened by the dunning procedure, not by an agent
# Share of the contacts per channel, in percent (as bench/contacts_fill.py: mostly the telephone).
CHANNEL_WEIGHTS = {"phone": 45, "front_desk": 15, "email": 15, "web": 10, "letter": 8, "sms": 4, "field_visit": 3}
CONTACT_TYPE_WEIGHTS = {"RENSEIGNEMENT": 30, "FACTURE": 25, "EMMENAGEMENT": 8, "DEMENAGEMENT": 8, "RELEVE": 10,
                        "DIFFICULTE_PAIEMENT": 6, "RECLAMATION": 5, "APPEL_SORTANT": 8}
DOSSIER_TYPE_WEIGHTS = {"RECLAMATION": 30, "EMMENAGEMENT": 18, "DEMENAGEMENT": 18, "CONTESTATION_RELEVE": 18,
                        "PLAN_PAIEMENT": 16}
# How much each demo role takes of the work it may do (the admin only where no one else may).
ROLE_WEIGHTS = {"accueil": 6, "back_office": 4, "superviseur": 1, "admin": 1}
FROM_CONTACT_SHARE = 0.6   # dossiers opened from the contact that asked for them
CLOSE_SHARE = 0.75         # dossiers closed when their handling time has passed
IN_PROGRESS_SHARE = 0.7    # open dossiers taken in hand after a day or three
PAID_SHARE = 0.55          # relaunches whose customer pays, some days later
NOTES = [
    "Client rappelé, explications données sur le montant de la dernière facture.",
    "Demande de duplicata de facture, envoyé par courriel.",
    "Relève transmise par le client, index cohérent avec l'historique.",
    "Question sur l'échéancier de mensualisation, simulation faite avec le client.",
    "Client mécontent du délai d'intervention, réclamation à suivre.",
    "Informations sur les offres et tarifs communiquées.",
]
CLOSING_REASON = "Dossier traité (historique de démonstration)."


@contextmanager
def travel() -> Iterator[dict]:
    """Replace app.clock.now for the block; set ``moment["at"]`` to the instant it returns. The
    column defaults that hold the original function (``default=clock.now``) see it too."""
    moment: dict = {"at": None}
    original_now, original_datetime = clock.now, clock.datetime

    class _Moved(datetime):
        @classmethod
        def now(cls, tz=None):
            at = moment["at"] or original_datetime.now(UTC)
            return at.astimezone(tz) if tz is not None else at.replace(tzinfo=None)

    def moved_now() -> datetime:
        return moment["at"] or original_now()

    clock.now, clock.datetime = moved_now, _Moved
    try:
        yield moment
    finally:
        clock.now, clock.datetime = original_now, original_datetime


class _World:
    """Who works where, the customers, and the referentials the replay draws from."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        logins = [a[0] for a in AGENTS]
        self.agents = [a for a in session.execute(select(Agent).where(Agent.login.in_(logins), Agent.active)
                                                  .order_by(Agent.id)).scalars()]
        self.paths = dict(session.execute(select(Territory.id, Territory.path)).all())
        # Each customer once: (party id, territory path, its contract), parties placed in a territory.
        rows = session.execute(
            select(Party.id, Party.territory_id, func.min(ContractParty.contract_id))
            .join(ContractParty, ContractParty.party_id == Party.id)
            .where(Party.territory_id.is_not(None), ContractParty.role == "holder")
            .group_by(Party.id, Party.territory_id).order_by(Party.id)).all()
        self.customers = [(party_id, self.paths[territory_id], contract_id) for party_id, territory_id, contract_id
                          in rows]
        types = {t.code: t for t in session.execute(select(ContactType).where(ContactType.active)).scalars()}
        self.contact_types = [(types[c], w) for c, w in CONTACT_TYPE_WEIGHTS.items() if c in types]
        self.type_for_dossier = {t.dossier_type_id: t for t in types.values() if t.dossier_type_id}
        startable = []
        for dossier_type in session.execute(select(DossierType).where(DossierType.active)
                                            .order_by(DossierType.position, DossierType.id)).scalars():
            if dossier_type.code not in DOSSIER_TYPE_WEIGHTS:
                continue
            if dossier_type.auto_start and dossier_type.process_key and definitions.latest(
                    dossier_type.process_key) is None:
                continue  # its process is not deployed: it could not be opened
            startable.append((dossier_type, DOSSIER_TYPE_WEIGHTS[dossier_type.code]))
        self.dossier_types = startable
        self.chased: tuple = (None, [])  # (day selected, contracts the dunning procedure would chase)

    def covering(self, path: str, permission: str) -> list[Agent]:
        """The demo agents allowed to, whose territories cover this one; the admin only when alone."""
        found = [a for a in self.agents if a.can(permission) and any(path.startswith(t.path) for t in a.territories)]
        others = [a for a in found if "admin" not in a.role_codes]
        return others or found

    def pick_agent(self, path: str, permission: str) -> Agent | None:
        found = self.covering(path, permission)
        if not found:
            return None
        weights = [max((ROLE_WEIGHTS.get(code, 1) for code in a.role_codes), default=1) for a in found]
        return self.rng.choices(found, weights)[0]

    def pick(self, weighted: list[tuple]) -> object:
        return self.rng.choices([x for x, _w in weighted], [w for _x, w in weighted])[0]


def _working_instant(rng: random.Random, day: datetime) -> datetime:
    """A moment of office hours (8:00–18:00 in France, about 7:00–17:00 UTC) on that day."""
    return day + timedelta(hours=7, minutes=rng.randrange(600), seconds=rng.randrange(60))


def seed_activity(*, contacts_count: int = CONTACTS, dossiers_count: int = DOSSIERS, days: int = DAYS,
                  seed: int = 1, now: datetime | None = None) -> dict[str, int]:
    """Replay the activity of the last ``days`` days (ending now) in the session; the caller commits
    at the end (the replay commits as it goes, a day at a time, as the workers would). Nothing when
    the base already has contacts or has no customer. Returns what was traced."""
    counts = {"contacts": 0, "dossiers": 0, "relaunches": 0, "closed": 0, "paid": 0, "timers": 0}
    if session.execute(select(Contact.id).limit(1)).first() is not None:
        return counts
    rng = random.Random(seed)
    world = _World(rng)
    if not world.customers or not world.agents or not world.contact_types:
        return counts
    end = (now or clock.now()).astimezone(UTC)
    first_day = datetime.combine((end - timedelta(days=days)).date(), time(), UTC)

    # The schedule: (instant, order, kind, payload), replayed in time order; events add later ones.
    order = itertools.count()
    queue: list[tuple] = []

    def plan(at: datetime, kind: str, payload: dict) -> None:
        if at < end:
            heapq.heappush(queue, (at, next(order), kind, payload))

    day_weights = [0.25 if (first_day + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)]
    relaunches = round(dossiers_count * RELAUNCH_SHARE) if _procedure() is not None else 0
    agent_dossiers = dossiers_count - relaunches
    for n in range(contacts_count):
        day = first_day + timedelta(days=rng.choices(range(days), day_weights)[0])
        plan(_working_instant(rng, day), "contact", {"dossier": n < agent_dossiers * FROM_CONTACT_SHARE})
    for _n in range(agent_dossiers - round(agent_dossiers * FROM_CONTACT_SHARE)):
        day = first_day + timedelta(days=rng.choices(range(days), day_weights)[0])
        plan(_working_instant(rng, day), "dossier", {})
    for n in range(relaunches):  # the dunning job's runs, early in the morning
        plan(first_day + timedelta(days=int(n * days / max(1, relaunches)), hours=5), "relaunch", {})
    for d in range(days + 1):
        plan(first_day + timedelta(days=d, hours=23), "commit", {})

    with travel() as moment:
        while queue:
            at, _order, kind, payload = heapq.heappop(queue)
            moment["at"] = at
            try:
                with session.begin_nested():
                    _replay(world, kind, payload, at, plan, counts)
            except BusinessError:
                continue  # refused as it would have been at the desk: the replay goes on
            if kind == "commit":
                session.commit()
        moment["at"] = end
        session.commit()
    return counts


def _procedure():
    from app.dunning import service as dunning

    return dunning.active_procedure()


def _replay(world: _World, kind: str, payload: dict, at: datetime, plan, counts: dict) -> None:
    rng = world.rng
    if kind == "contact":
        party_id, path, contract_id = rng.choice(world.customers)
        agent = world.pick_agent(path, contacts.WRITE)
        if agent is None:
            return
        contact_type = world.pick(world.contact_types)
        if payload["dossier"]:  # a request that opens a dossier: a type that leads to one
            candidates = [(world.type_for_dossier.get(t.id), w) for t, w in world.dossier_types]
            candidates = [(t, w) for t, w in candidates if t is not None]
            if candidates:
                contact_type = world.pick(candidates)
        channel = world.pick(list(CHANNEL_WEIGHTS.items()))
        contact = contacts.create_contact(
            agent=agent, contact_type_id=contact_type.id, channel=channel, direction=None, subject=None,
            notes=rng.choice(NOTES) if rng.random() < 0.7 else None, occurred_at=at,
            duration_minutes=1 + rng.randrange(20) if channel in ("phone", "front_desk", "field_visit") else None,
            links=_links(party_id, contract_id, agent))
        counts["contacts"] += 1
        if payload["dossier"] and contact_type.dossier_type_id and agent.can(dossiers.CREATE):
            dossier = dossiers.create_from_contact(agent=agent, contact_id=contact.id,
                                                   dossier_type_id=contact_type.dossier_type_id)
            _follow(world, dossier, path, at, plan, counts)
    elif kind == "dossier":
        party_id, path, contract_id = rng.choice(world.customers)
        agent = world.pick_agent(path, dossiers.CREATE)
        if agent is None or not world.dossier_types:
            return
        dossier_type = world.pick(world.dossier_types)
        dossier = dossiers.open_dossier(agent=agent, dossier_type_id=dossier_type.id,
                                        links=_links(party_id, contract_id, None))
        _follow(world, dossier, path, at, plan, counts)
    elif kind == "progress":
        agent = world.pick_agent(payload["path"], dossiers.PROCESS)
        if agent is not None:
            dossiers.change_status(agent=agent, dossier_id=payload["id"], status=DossierStatus.IN_PROGRESS)
    elif kind == "close":
        _close(world, payload, counts)
    elif kind == "relaunch":
        _relaunch(world, at, plan, counts)
    elif kind == "level":  # the relaunch's timer comes (the worker's job, at the simulated time)
        fired = 0
        for timer in session.execute(select(ProcessTimer).where(ProcessTimer.instance_id == payload["instance"])
                                     .order_by(ProcessTimer.id)).scalars().all():
            fired += processes.fire_timer(timer.id, payload["instance"], at)
        counts["timers"] += fired
        if fired and session.execute(select(ProcessTimer.id).where(
                ProcessTimer.instance_id == payload["instance"]).limit(1)).first() is not None:
            plan(at + timedelta(days=15), "level", payload)
    elif kind == "pay":
        counts["paid"] += _pay(payload["id"], at)


def _links(party_id: int, contract_id: int | None, agent: Agent | None) -> link_rules.Links:
    return link_rules.Links(
        parties=[link_rules.PartyLink(party_id, PartyLinkRole.CUSTOMER, "added")],
        agents=[link_rules.AgentLink(agent.id, AgentLinkRole.EMITTER, "added")] if agent is not None else [],
        objects=[link_rules.ObjectLink(objects.Ref("contract", contract_id), "added")] if contract_id else [])


def _follow(world: _World, dossier: Dossier, path: str, at: datetime, plan, counts: dict) -> None:
    """What happens to a dossier next: taken in hand, closed after some share of its target time
    (a fifth of them late), or left open."""
    rng = world.rng
    counts["dossiers"] += 1
    target = dossier.dossier_type.target_days or 15
    if rng.random() < IN_PROGRESS_SHARE:
        plan(at + timedelta(days=1 + rng.random() * 2), "progress", {"id": dossier.id, "path": path})
    if rng.random() < CLOSE_SHARE:
        handling = target * (0.15 + 1.2 * rng.random() ** 1.5)  # past the target one time in five
        plan(at + timedelta(days=max(handling, 3.2)), "close", {"id": dossier.id, "path": path})


def _close(world: _World, payload: dict, counts: dict) -> None:
    """The agent closes the dossier; a process still running on it is cancelled by a supervisor."""
    instance = processes.running_on(dossier_id=payload["id"])
    if instance is not None:
        supervisor = world.pick_agent(payload["path"], processes.SUPERVISE)
        if supervisor is None:
            return
        processes.cancel(agent=supervisor, instance_id=instance.id, reason=CLOSING_REASON)
    agent = world.pick_agent(payload["path"], dossiers.PROCESS)
    if agent is None:
        return
    dossiers.change_status(agent=agent, dossier_id=payload["id"], status=DossierStatus.CLOSED)
    counts["closed"] += 1


def _relaunch(world: _World, at: datetime, plan, counts: dict) -> None:
    """The dunning job opens the relaunch of a contract to chase, as of that day (first level)."""
    from app.dunning import service as dunning

    procedure = dunning.active_procedure()
    # The contracts to chase, selected once a week (open_relaunch checks each again on the day).
    since, chased = world.chased
    if since is None or at.date() - since >= timedelta(days=7):
        since, chased = at.date(), list(dunning.select_contracts(procedure, at.date()).to_open)
        world.chased = since, chased
    if not chased:
        return
    dossier = dunning.open_relaunch(procedure, at.date(), chased.pop(world.rng.randrange(len(chased))))
    if not isinstance(dossier, Dossier):
        return
    counts["relaunches"] += 1
    instance = processes.running_on(dossier_id=dossier.id)
    if instance is not None:
        plan(at + timedelta(days=15, hours=1), "level", {"id": dossier.id, "instance": instance.id})
    if world.rng.random() < PAID_SHARE:
        plan(at + timedelta(days=3 + world.rng.random() * 40, hours=3), "pay", {"id": dossier.id})


def _pay(dossier_id: int, at: datetime) -> int:
    """The customer pays what the relaunch chases (as the billing import records it), and the
    relaunch is told; 1 when it closed."""
    from app.dunning import service as dunning

    dossier = session.get(Dossier, dossier_id)
    if dossier is None or dossier.status == DossierStatus.CLOSED:
        return 0
    _owed, invoices = dunning.invoices_owed(dossier)
    for invoice in invoices:
        balance = invoice.amount - invoice.amount_paid
        if balance > Decimal("0.00"):
            session.add(Payment(external_ref=f"DEMO-PAY-{invoice.id}-{dossier.id}", invoice_id=invoice.id,
                                paid_on=at.date(), amount=balance, method="carte"))
        invoice.amount_paid, invoice.status = invoice.amount, InvoiceStatus.PAID
    session.flush()
    contract_ids = {i.contract_id for i in invoices} | ({dossier.exclusive_contract_id}
                                                        if dossier.exclusive_contract_id else set())
    dunning.settle_paid(contract_ids, source="demo")
    session.refresh(dossier)
    return int(dossier.status == DossierStatus.CLOSED)


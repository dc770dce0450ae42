"""The dashboard's numbers, each an aggregate query on indexed columns, within the supervisor's
territories.

Contacts and dossiers are counted under their territory of record (``territory_id``, written with
them: app.contacts.links.territory_of_record), so a chart reads one indexed column instead of
walking every contact's parties and contracts. Tasks are counted under their dossier's (or
contact's) territory. The territories are those granted to the agent and everything under them,
narrowed by the filter; a contact or dossier placed nowhere (no customer linked) is counted by no
one.

Each function returns a ``Chart``: categories (days, weeks, classifications, teams…), one or more
bars per category (opened / closed), each stacked by series (channels, classifications…), and the
extra columns its table shows. The page draws it (app.supervision.charts) and the same object
gives the table and the CSV rows.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import aliased

from app import clock
from app.contacts.models import Contact
from app.db import session
from app.dossiers.models import Dossier, DossierStatus, DossierType
from app.dunning.models import DunningLevel, DunningProcedure
from app.labels import LABELS
from app.processes.models import ProcessInstance, ProcessTask, TaskStatus
from app.security.models import Agent, Role, Territory
from app.security.scope import territory_ids_under, visible_territory_ids
from app.supervision.sql import DaysBetween, HourBucket

PERMISSION = "supervision"
MAX_DAYS = 366  # the longest period a chart covers
DAILY_UP_TO = 92  # contacts per day up to a quarter, per week beyond
MAX_SERIES = 8  # classifications beyond are summed under « Autres »
OTHERS = "others"
# Age of the backlog and time to close, in days: (upper bound, label); the last has no bound.
AGE_BUCKETS = ((7, "0–7 j"), (30, "8–30 j"), (90, "31–90 j"), (None, "> 90 j"))
CLOSE_BUCKETS = ((2, "≤ 2 j"), (7, "3–7 j"), (30, "8–30 j"), (None, "> 30 j"))


@dataclass(frozen=True)
class Filters:
    start: date  # first local day of the period
    end: date  # last local day, included
    territory_ids: tuple[int, ...] | None = None  # narrowed to these and what lies under them; None: all


@dataclass
class Chart:
    key: str
    title: str
    category_header: str
    categories: list[tuple[Any, str]]
    bars: list[tuple[str, str]]
    series: list[tuple[str, str]]
    values: dict[tuple, float] = field(default_factory=dict)  # (category, bar, series) → number
    extra: list[tuple[str, dict]] = field(default_factory=list)  # table columns: (header, category → value)
    note: str = ""  # what the chart counts, in a sentence under its title
    as_of_now: bool = False  # a state today, not a period

    def value(self, category, bar, series) -> float:
        return self.values.get((category, bar, series), 0)

    def total(self, category, bar) -> float:
        return sum(self.value(category, bar, s) for s, _label in self.series)

    def grand_total(self) -> float:
        return sum(self.total(c, b) for c, _l in self.categories for b, _m in self.bars)

    def headers(self) -> list[str]:
        columns = [self.category_header]
        for _bar, bar_label in self.bars:
            prefix = f"{bar_label} – " if len(self.bars) > 1 else ""
            if len(self.series) > 1:
                columns += [f"{prefix}{series_label}" for _s, series_label in self.series]
            columns.append(f"{bar_label} – {_('total')}" if len(self.bars) > 1 else _("Total"))
        return columns + [header for header, _values in self.extra]

    def rows(self) -> list[list]:
        rows = []
        for category, category_label in self.categories:
            row: list = [category_label]
            for bar, _bar_label in self.bars:
                if len(self.series) > 1:
                    row += [_number(self.value(category, bar, s)) for s, _l in self.series]
                row.append(_number(self.total(category, bar)))
            rows.append(row + [values.get(category, "") for _header, values in self.extra])
        return rows


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 1)


# --- Scope and period -------------------------------------------------------------------------

def territory_choices(agent: Agent) -> list[Territory]:
    """The regions and agencies the agent may filter on: theirs and those under them."""
    return list(session.execute(
        select(Territory).where(Territory.id.in_(visible_territory_ids(agent)), Territory.kind != "commune")
        .order_by(Territory.path)).scalars())


@dataclass(frozen=True)
class Scope:
    """The territories a chart counts. ``covers(column)`` is the condition on a territory column: an
    IN list, or, when the scope is every territory there is (a national administrator), only
    "placed somewhere", which spares the database thousands of index probes."""

    ids: tuple[int, ...]
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.ids)

    def covers(self, column):
        return column.is_not(None) if self.everything else column.in_(self.ids)


def scope_ids(agent: Agent, filters: Filters) -> Scope:
    """The territories a chart counts: the agent's (and below), narrowed to the filter's subtrees;
    none for an agent without the supervision permission."""
    if agent is None or not agent.is_active or not agent.can(PERMISSION):
        return Scope(())
    _fast()
    stmt = select(Territory.id).where(Territory.id.in_(visible_territory_ids(agent)))
    if filters.territory_ids is not None:
        chosen = list(session.execute(select(Territory).where(Territory.id.in_(filters.territory_ids))).scalars())
        stmt = stmt.where(Territory.id.in_(territory_ids_under(chosen)))
    ids = tuple(session.execute(stmt).scalars())
    everything = bool(ids) and len(ids) == session.execute(select(func.count()).select_from(Territory)).scalar_one()
    return Scope(ids, everything)


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _bounds(filters: Filters) -> tuple[datetime, datetime]:
    """The period as UTC instants: from the first day's local midnight to the one after the last day."""
    local = zone()
    start = datetime.combine(filters.start, time(), local).astimezone(UTC)
    end = datetime.combine(filters.end + timedelta(days=1), time(), local).astimezone(UTC)
    return start, end


def _day_folder():
    """A function giving the local day an hour bucket falls in (an aware datetime from PostgreSQL, a
    "YYYY-MM-DD HH" UTC text from SQLite), remembering each hour: a bucket repeats per series."""
    local, seen = zone(), {}

    def day(bucket) -> date:
        if bucket not in seen:
            moment = bucket if isinstance(bucket, datetime) else \
                datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC)
            seen[bucket] = moment.astimezone(local).date()
        return seen[bucket]

    return day


def _fast() -> None:
    """PostgreSQL compiles a query to machine code (JIT) when the planner expects it to be costly;
    for these aggregates of a few thousand rows compiling costs more than it saves (550 ms of an
    800 ms task count at a million customers). Off for the rest of the request's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _days(filters: Filters) -> list[date]:
    return [filters.start + timedelta(days=n) for n in range((filters.end - filters.start).days + 1)]


def _weeks(filters: Filters) -> list[date]:
    return sorted({_monday(day) for day in _days(filters)})


def _week_label(monday: date) -> str:
    return _("sem. du %(day)s", day=format_date(monday, "d MMM"))


# --- Charts -----------------------------------------------------------------------------------

def contacts_by_day(agent: Agent, filters: Filters) -> Chart:
    """Contacts traced per day (per week beyond a quarter), stacked by channel."""
    ids = scope_ids(agent, filters)
    start, end = _bounds(filters)
    weekly = len(_days(filters)) > DAILY_UP_TO
    rows = session.execute(
        select(HourBucket(Contact.occurred_at), Contact.channel, func.count())
        .where(ids.covers(Contact.territory_id), Contact.occurred_at >= start, Contact.occurred_at < end)
        .group_by(HourBucket(Contact.occurred_at), Contact.channel)).all() if ids else []
    values: dict[tuple, float] = defaultdict(int)
    local_day = _day_folder()
    for bucket, channel, count in rows:
        day = local_day(bucket)
        values[(_monday(day) if weekly else day, "contacts", channel)] += count
    categories = ([(monday, _week_label(monday)) for monday in _weeks(filters)] if weekly
                  else [(day, format_date(day, "EEE d MMM")) for day in _days(filters)])
    present = {channel for (_c, _b, channel) in values}
    series = [(code, str(text)) for code, text in LABELS["channel"].items() if code in present] + \
             [(code, code) for code in sorted(present - LABELS["channel"].keys())]
    return Chart(key="contacts", title=_("Contacts par jour et par canal") if not weekly else
                 _("Contacts par semaine et par canal"),
                 category_header=_("Semaine") if weekly else _("Jour"), categories=categories,
                 bars=[("contacts", _("Contacts"))], series=series or [("none", _("Contacts"))], values=dict(values),
                 note=_("Contacts tracés, comptés sous le territoire de leur client."))


def _classification_series(counts: dict[int, float]) -> tuple[list[tuple[str, str]], dict[int, str]]:
    """The classifications in order of volume, the smallest beyond MAX_SERIES summed as « Autres »;
    and the series key of each classification id."""
    labels = dict(session.execute(select(DossierType.id, DossierType.label).where(
        DossierType.id.in_(list(counts)))).all()) if counts else {}
    ranked = sorted(counts, key=lambda type_id: (-counts[type_id], labels.get(type_id, "")))
    kept = ranked if len(ranked) <= MAX_SERIES else ranked[:MAX_SERIES - 1]
    key_of = {type_id: (str(type_id) if type_id in kept else OTHERS) for type_id in ranked}
    series = [(str(type_id), labels.get(type_id, str(type_id))) for type_id in kept]
    if len(kept) < len(ranked):
        series.append((OTHERS, _("Autres")))
    return series, key_of


def dossiers_by_week(agent: Agent, filters: Filters) -> Chart:
    """Dossiers opened and closed per week, each bar stacked by classification."""
    ids = scope_ids(agent, filters)
    start, end = _bounds(filters)
    raw: list[tuple[str, str, int, int]] = []
    if ids:
        for bar, column in (("opened", Dossier.created_at), ("closed", Dossier.closed_at)):
            raw += [(bar, bucket, type_id, count) for bucket, type_id, count in session.execute(
                select(HourBucket(column), Dossier.dossier_type_id, func.count())
                .where(ids.covers(Dossier.territory_id), column >= start, column < end)
                .group_by(HourBucket(column), Dossier.dossier_type_id)).all()]
    volume: dict[int, float] = defaultdict(int)
    for _bar, _bucket, type_id, count in raw:
        volume[type_id] += count
    series, key_of = _classification_series(volume)
    values: dict[tuple, float] = defaultdict(int)
    local_day = _day_folder()
    for bar, bucket, type_id, count in raw:
        values[(_monday(local_day(bucket)), bar, key_of[type_id])] += count
    return Chart(key="dossiers", title=_("Dossiers ouverts et clos par semaine"), category_header=_("Semaine"),
                 categories=[(monday, _week_label(monday)) for monday in _weeks(filters)],
                 bars=[("opened", _("Ouverts")), ("closed", _("Clos"))],
                 series=series or [("none", _("Dossiers"))], values=dict(values),
                 note=_("Par classification ; une semaine commence le lundi."))


def _age_case(column, now: datetime, buckets) -> Any:
    """The bucket index of the age (now - column) in days."""
    whens = [(column > now - timedelta(days=upper), index) for index, (upper, _label) in enumerate(buckets)
             if upper is not None]
    return case(*whens, else_=len(buckets) - 1)


def backlog(agent: Agent, filters: Filters) -> Chart:
    """The dossiers still open at the end of the period, per classification, stacked by age."""
    ids = scope_ids(agent, filters)
    _start, end = _bounds(filters)
    at = min(end, clock.now())
    counts: dict[tuple[int, int], int] = defaultdict(int)
    if ids:
        age = _age_case(Dossier.created_at, at, AGE_BUCKETS)
        # Open today, or closed after that day: two index reads rather than one scan of every dossier.
        for still_open in (Dossier.status.in_(DossierStatus.NOT_CLOSED), Dossier.closed_at >= at):
            for type_id, bucket, count in session.execute(
                    select(Dossier.dossier_type_id, age, func.count())
                    .where(ids.covers(Dossier.territory_id), Dossier.created_at < at, still_open)
                    .group_by(Dossier.dossier_type_id, age)).all():
                counts[(type_id, bucket)] += count
    per_type: dict[int, float] = defaultdict(int)
    for (type_id, _bucket), count in counts.items():
        per_type[type_id] += count
    series, key_of = _classification_series(per_type)
    by_key: dict[str, str] = dict(series)
    values: dict[tuple, float] = defaultdict(int)
    for (type_id, bucket), count in counts.items():
        values[(key_of[type_id], "open", str(bucket))] += count
    return Chart(key="backlog", title=_("Dossiers en cours et leur ancienneté"), category_header=_("Classification"),
                 categories=[(key, by_key[key]) for key, _label in series],
                 bars=[("open", _("En cours"))], series=[(str(i), label) for i, (_u, label) in enumerate(AGE_BUCKETS)],
                 values=dict(values), as_of_now=end >= clock.now(),
                 note=_("Ouverts avant la fin de la période et pas clos à cette date ; ancienneté depuis l'ouverture."))


def _ready_tasks(ids: Scope):
    """The tasks to do, counted under their dossier's territory of record, else their contact's: the
    instance, dossier and contact joined by primary key (a correlated subquery per task was read
    for every instance of the base)."""
    dossier, contact = aliased(Dossier), aliased(Contact)
    return (select(ProcessTask).join(ProcessInstance, ProcessInstance.id == ProcessTask.instance_id)
            .outerjoin(dossier, dossier.id == ProcessInstance.dossier_id)
            .outerjoin(contact, contact.id == ProcessInstance.contact_id)
            .where(ProcessTask.status == TaskStatus.READY,
                   ids.covers(func.coalesce(dossier.territory_id, contact.territory_id))))


def overdue_tasks(agent: Agent, filters: Filters) -> Chart:
    """Tasks to do today per team (the role of their lane), past their due date or not."""
    ids = scope_ids(agent, filters)
    now = clock.now()
    late = and_(ProcessTask.due_at.is_not(None), ProcessTask.due_at < now)
    state = case((late, "late"), else_="on_time")  # one object in SELECT and GROUP BY: the same parameters
    rows = session.execute(_ready_tasks(ids).with_only_columns(ProcessTask.role_code, state, func.count())
                           .group_by(ProcessTask.role_code, state)).all() if ids else []
    labels = dict(session.execute(select(Role.code, Role.label)).all())
    values = {(role or "", "tasks", state): count for role, state, count in rows}
    roles = sorted({role for (role, _b, _s) in values}, key=lambda r: -sum(
        v for (role, _b, _s), v in values.items() if role == r))
    late_share = {}
    for role in roles:
        total = values.get((role, "tasks", "late"), 0) + values.get((role, "tasks", "on_time"), 0)
        late_share[role] = f"{round(100 * values.get((role, 'tasks', 'late'), 0) / total)} %" if total else ""
    return Chart(key="tasks", title=_("Tâches en retard par équipe"), category_header=_("Équipe (rôle)"),
                 categories=[(role, labels.get(role, role) if role else _("Sans rôle")) for role in roles],
                 bars=[("tasks", _("Tâches à faire"))],
                 series=[("late", _("En retard")), ("on_time", _("Dans les délais"))], values=values,
                 extra=[(_("Part en retard"), late_share)], as_of_now=True,
                 note=_("Tâches à faire aujourd'hui ; en retard quand l'échéance de leur dossier est passée."))


def dunning_funnel(agent: Agent, filters: Filters) -> Chart:
    """Relaunch dossiers opened in the period: how many reached each level, how many were paid."""
    ids = scope_ids(agent, filters)
    start, end = _bounds(filters)
    procedures = list(session.execute(select(DunningProcedure)).scalars())
    type_ids = [p.dossier_type_id for p in procedures]
    level_labels: dict[int, str] = {}
    for level in session.execute(select(DunningLevel).order_by(DunningLevel.rank)).scalars():
        level_labels.setdefault(level.rank, level.label)  # several procedures: the first one's words
    stages: list[tuple[str, str]] = [("opened", _("Relances ouvertes"))]
    stages += [(f"rank{rank}", label) for rank, label in sorted(level_labels.items())]
    stages.append(("paid", _("Payées")))
    counts: dict[str, int] = {}
    if ids and type_ids:
        columns = [func.count()]
        columns += [func.sum(case((Dossier.dunning_rank >= rank, 1), else_=0)) for rank in sorted(level_labels)]
        columns.append(func.sum(case((Dossier.close_reason == "paid", 1), else_=0)))
        row = session.execute(select(*columns).where(
            ids.covers(Dossier.territory_id), Dossier.dossier_type_id.in_(type_ids),
            Dossier.created_at >= start, Dossier.created_at < end)).one()
        counts = {key: int(value or 0) for (key, _label), value in zip(stages, row, strict=True)}
    opened = counts.get("opened", 0)
    share = {key: (f"{round(100 * counts.get(key, 0) / opened)} %" if opened else "") for key, _label in stages}
    return Chart(key="dunning", title=_("Entonnoir des relances"), category_header=_("Étape"),
                 categories=stages, bars=[("count", _("Relances"))], series=[("count", _("Relances"))],
                 values={(key, "count", "count"): counts.get(key, 0) for key, _label in stages},
                 extra=[(_("Part des ouvertes"), share)],
                 note=_("Relances ouvertes dans la période : combien ont atteint chaque niveau, combien sont "
                        "closes payées."))


def time_to_close(agent: Agent, filters: Filters) -> Chart:
    """Dossiers closed in the period, per classification, stacked by how long they stayed open."""
    ids = scope_ids(agent, filters)
    start, end = _bounds(filters)
    days = DaysBetween(Dossier.created_at, Dossier.closed_at)
    whens = [(days <= upper, index) for index, (upper, _label) in enumerate(CLOSE_BUCKETS) if upper is not None]
    bucket = case(*whens, else_=len(CLOSE_BUCKETS) - 1)
    in_time = func.sum(case((and_(Dossier.due_at.is_not(None), Dossier.closed_at <= Dossier.due_at), 1), else_=0))
    with_target = func.sum(case((Dossier.due_at.is_not(None), 1), else_=0))
    rows = session.execute(
        select(Dossier.dossier_type_id, bucket, func.count(), func.sum(days), in_time, with_target)
        .where(ids.covers(Dossier.territory_id), Dossier.closed_at >= start, Dossier.closed_at < end)
        .group_by(Dossier.dossier_type_id, bucket)).all() if ids else []
    per_type: dict[int, float] = defaultdict(int)
    for type_id, _bucket, count, *_rest in rows:
        per_type[type_id] += count
    series, key_of = _classification_series(per_type)
    values: dict[tuple, float] = defaultdict(int)
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])  # count, days, in time, with target
    for type_id, index, count, total_days, on_time, targeted in rows:
        key = key_of[type_id]
        values[(key, "closed", str(index))] += count
        acc = sums[key]
        acc[0] += count
        acc[1] += float(total_days or 0)
        acc[2] += int(on_time or 0)
        acc[3] += int(targeted or 0)
    mean = {key: str(Decimal(acc[1] / acc[0]).quantize(Decimal("0.1"))).replace(".", ",") if acc[0] else ""
            for key, acc in sums.items()}
    within = {key: (f"{round(100 * acc[2] / acc[3])} %" if acc[3] else "—") for key, acc in sums.items()}
    return Chart(key="closing", title=_("Délai de clôture par classification"), category_header=_("Classification"),
                 categories=series, bars=[("closed", _("Clos"))],
                 series=[(str(i), label) for i, (_u, label) in enumerate(CLOSE_BUCKETS)], values=dict(values),
                 extra=[(_("Durée moyenne (jours)"), mean), (_("Clos dans le délai cible"), within)],
                 note=_("Dossiers clos dans la période, selon le temps passé entre ouverture et clôture."))


CHARTS = {
    "contacts": contacts_by_day, "dossiers": dossiers_by_week, "backlog": backlog, "tasks": overdue_tasks,
    "dunning": dunning_funnel, "closing": time_to_close,
}


# --- Workload and deadlines -------------------------------------------------------------------

@dataclass
class Load:
    key: str  # "agent:<id>" or "role:<code>"
    label: str
    tasks: int
    late: int
    oldest: datetime | None


def workload(agent: Agent, filters: Filters) -> tuple[list[Load], list[Load]]:
    """Tasks to do in the territories: per agent they are assigned to, and per role for those
    waiting in a team's queue (assigned to no one)."""
    ids = scope_ids(agent, filters)
    if not ids:
        return [], []
    now = clock.now()
    late = func.sum(case((and_(ProcessTask.due_at.is_not(None), ProcessTask.due_at < now), 1), else_=0))
    rows = session.execute(  # one read of the tasks, per assignee and role; split below
        _ready_tasks(ids).with_only_columns(ProcessTask.assignee_id, ProcessTask.role_code, func.count(), late,
                                            func.min(ProcessTask.created_at))
        .group_by(ProcessTask.assignee_id, ProcessTask.role_code)).all()
    names = dict(session.execute(select(Agent.id, Agent.full_name).where(
        Agent.id.in_({row[0] for row in rows if row[0] is not None}))).all()) if rows else {}
    labels = dict(session.execute(select(Role.code, Role.label)).all())
    per_agent: dict[int, Load] = {}
    roles: list[Load] = []
    for assignee, role, count, n_late, oldest in rows:
        if assignee is None:
            roles.append(Load(f"role:{role or ''}", labels.get(role, role) if role else _("Sans rôle"), count,
                              int(n_late or 0), oldest))
            continue
        load = per_agent.setdefault(assignee, Load(f"agent:{assignee}", names.get(assignee, str(assignee)), 0, 0,
                                                   None))
        load.tasks += count
        load.late += int(n_late or 0)
        load.oldest = oldest if load.oldest is None or (oldest and oldest < load.oldest) else load.oldest
    return (sorted(per_agent.values(), key=lambda x: (-x.tasks, x.label)),
            sorted(roles, key=lambda x: (-x.tasks, x.label)))


def tasks_of(agent: Agent, filters: Filters, key: str, *, late_only: bool = False, limit: int = 200) -> list:
    """The ready tasks behind a workload line ("agent:<id>" or "role:<code>"), oldest due first."""
    ids = scope_ids(agent, filters)
    if not ids:
        return []
    kind, _sep, value = key.partition(":")
    # A list shows rows, so it follows the access rule (through the parties, as the pages it links
    # to), narrowed to the filter's territories; the counts above follow the territory of record.
    stmt = (select(ProcessTask).where(ProcessTask.status == TaskStatus.READY)
            .where(ProcessTask.scope_clause(list(ids.ids))))
    if kind == "agent" and value.isdigit():
        stmt = stmt.where(ProcessTask.assignee_id == int(value))
    elif kind == "role":
        stmt = stmt.where(ProcessTask.assignee_id.is_(None),
                          ProcessTask.role_code == value if value else ProcessTask.role_code.is_(None))
    else:
        return []
    if late_only:
        stmt = stmt.where(ProcessTask.due_at < clock.now())
    stmt = stmt.order_by(ProcessTask.due_at.is_(None), ProcessTask.due_at, ProcessTask.id).limit(limit)
    return list(session.execute(stmt).scalars())


def past_target(agent: Agent, filters: Filters, *, limit: int = 50, offset: int = 0) -> tuple[list[Dossier], int]:
    """Open dossiers past their target time (due_at), the most overdue first, and how many the
    territories count. The count, like the charts, follows the territory of record; the rows shown
    follow the access rule as well (through the parties, as the dossier page does): a dossier whose
    customer moved away since is counted where it was opened and listed to no one there. Both read
    the open dossiers in due order (ix_dossier_open_due), so a page costs what it shows."""
    ids = scope_ids(agent, filters)
    if not ids:
        return [], 0
    late = and_(Dossier.status != DossierStatus.CLOSED, Dossier.due_at < clock.now(),
                ids.covers(Dossier.territory_id))
    total = session.execute(select(func.count()).select_from(Dossier).where(late)).scalar_one()
    dossiers = list(session.execute(
        select(Dossier).where(late, Dossier.scope_clause(list(ids.ids)))
        .order_by(Dossier.due_at, Dossier.id).limit(limit).offset(offset)).scalars())
    return dossiers, total


def reassignable_agents(agent: Agent, role_code: str | None) -> list[Agent]:
    """Active agents holding the role (any role when None) whose territories meet the supervisor's:
    the targets a bulk reassignment offers (each task's own checks still apply)."""
    visible = visible_territory_ids(agent)
    stmt = (select(Agent).where(Agent.active.is_(True),
                                Agent.territories.any(or_(Territory.id.in_(visible),
                                                          Territory.id.in_(_ancestors_of_visible(agent)))))
            .order_by(Agent.full_name).limit(300))
    if role_code:
        stmt = stmt.where(Agent.roles.any(and_(Role.code == role_code, Role.active.is_(True))))
    return list(session.execute(stmt).scalars())


def _ancestors_of_visible(agent: Agent):
    """Territories above the agent's: an agent of the whole region covers the supervisor's agency."""
    paths = [t.path for t in agent.territories]
    ancestors = {prefix for path in paths for prefix in _prefixes(path)}
    return select(Territory.id).where(Territory.path.in_(sorted(ancestors)) if ancestors else Territory.id < 0)


def _prefixes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:n]) + "/" for n in range(1, len(parts))]

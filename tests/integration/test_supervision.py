"""The supervision dashboard: every chart's numbers against a fixture counted by hand, each chart's
scope, the period and territory filters, CSV exports, workload, bulk reassignment and the dossiers
past their target time.

The clock stands on Wednesday 18 March 2026, 10:00 UTC (11:00 in Paris, winter time). Territories:
region R (agency A: commune A1; agency B: commune B1) and region S (commune S1). Supervisors: one of
agency A, one of region R. Contacts and dossiers are written with their territory of record, as
the services write them (tested at the end through the services themselves).
"""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEntry
from app.contacts.models import Contact, ContactType
from app.contracts.models import Contract, ContractParty, ServicePoint
from app.db import session
from app.dossiers.models import Dossier, DossierParty, DossierType
from app.dunning.models import DunningLevel, DunningProcedure
from app.parties.models import Party
from app.processes.models import ProcessDefinition, ProcessInstance, ProcessTask
from app.supervision import queries
from app.supervision.queries import Filters
from tests.conftest import csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


def at(day: int, hour: int = 10, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


@pytest.fixture
def world(app_ctx, now):
    region = TerritoryFactory(kind="region", code="SV-R")
    agency_a = TerritoryFactory(parent=region, code="SV-A")
    agency_b = TerritoryFactory(parent=region, code="SV-B")
    a1 = TerritoryFactory(parent=agency_a, kind="commune", code="SV-A1")
    b1 = TerritoryFactory(parent=agency_b, kind="commune", code="SV-B1")
    other = TerritoryFactory(kind="region", code="SV-S")
    s1 = TerritoryFactory(parent=other, kind="commune", code="SV-S1")
    supervisor_role = role_with("superviseur")
    back_office, front_desk = role_with("back_office"), role_with("accueil")
    w = {
        "a1": a1, "b1": b1, "s1": s1, "agency_a": agency_a, "agency_b": agency_b, "region": region,
        "sup_a": AgentFactory(roles=[supervisor_role], territories=[agency_a]),
        "sup_r": AgentFactory(roles=[supervisor_role], territories=[region]),
        "desk": AgentFactory(roles=[front_desk], territories=[agency_a]),
        "back_a": AgentFactory(roles=[back_office], territories=[agency_a]),
        "back_b": AgentFactory(roles=[back_office], territories=[agency_b]),
        "phone": ContactType(code="SV-INFO", label="Renseignement SV"),
        "t1": DossierType(code="SV-T1", label="Réclamation SV", target_days=10),
        "t2": DossierType(code="SV-T2", label="Mutation SV"),
    }
    session.add_all([w["phone"], w["t1"], w["t2"]])
    session.flush()
    for key, territory in (("pa", a1), ("pb", b1), ("ps", s1)):
        w[key] = Party(number=f"SV-{key}", last_name=f"Client {key}", status="customer", territory_id=territory.id)
        session.add(w[key])
    session.commit()
    return w


def contact(w, territory, occurred_at: datetime, channel: str = "phone") -> Contact:
    row = Contact(contact_type_id=w["phone"].id, channel=channel, direction="in", subject="Appel",
                  occurred_at=occurred_at, created_by_id=w["desk"].id, created_at=occurred_at,
                  territory_id=territory.id)
    session.add(row)
    return row


_numbers = iter(range(1, 10_000))


def dossier(w, dossier_type, territory, created_at: datetime, *, closed_at: datetime | None = None,
            status: str | None = None, **more) -> Dossier:
    due = created_at + timedelta(days=dossier_type.target_days) if dossier_type.target_days else None
    row = Dossier(reference=f"SV-{next(_numbers):06d}", dossier_type_id=dossier_type.id, subject="Dossier",
                  status=status or ("closed" if closed_at else "open"), origin="manual", created_at=created_at,
                  closed_at=closed_at, due_at=due, territory_id=territory.id, **more)
    # its customer, through whom access control reaches it (the territory of record is for counting)
    customer = {w["a1"].id: w["pa"], w["b1"].id: w["pb"], w["s1"].id: w["ps"]}[territory.id]
    row.parties = [DossierParty(party_id=customer.id, role="customer", origin="default")]
    session.add(row)
    return row


def filters(start: date = date(2026, 3, 12), end: date = date(2026, 3, 18), territory=None) -> Filters:
    return Filters(start=start, end=end, territory_ids=(territory.id,) if territory else None)


def table(chart) -> dict[str, list]:
    """The chart's table by row label."""
    return {row[0]: row[1:] for row in chart.rows()}


# --- Contacts per day -------------------------------------------------------------------------

@pytest.fixture
def contacts(world):
    w = world
    contact(w, w["a1"], at(16, 9))
    contact(w, w["a1"], at(16, 15))
    contact(w, w["a1"], at(16, 23, 30), channel="email")  # 00:30 on the 17th in Paris
    contact(w, w["a1"], at(18, 8))
    contact(w, w["a1"], at(11, 23, 0))  # midnight in Paris: the 12th, the period's first day
    contact(w, w["a1"], at(11, 22, 59))  # 23:59 on the 11th in Paris: before the period
    contact(w, w["b1"], at(17, 9))
    contact(w, w["s1"], at(17, 9))  # another region
    session.commit()
    return w


def test_contacts_per_day_count_local_days_by_channel_within_the_agency(contacts):
    chart = queries.contacts_by_day(contacts["sup_a"], filters())
    assert [c for c, _label in chart.categories] == [date(2026, 3, d) for d in range(12, 19)]
    assert [key for key, _label in chart.series] == ["phone", "email"]
    by_day = {c: (chart.value(c, "contacts", "phone"), chart.value(c, "contacts", "email"))
              for c, _l in chart.categories}
    assert by_day == {date(2026, 3, 12): (1, 0), date(2026, 3, 13): (0, 0), date(2026, 3, 14): (0, 0),
                      date(2026, 3, 15): (0, 0), date(2026, 3, 16): (2, 0), date(2026, 3, 17): (0, 1),
                      date(2026, 3, 18): (1, 0)}
    assert chart.grand_total() == 5


def test_contacts_per_day_of_the_region_add_agency_b_and_never_another_region(contacts):
    region = queries.contacts_by_day(contacts["sup_r"], filters())
    assert region.value(date(2026, 3, 17), "contacts", "phone") == 1  # B1's; S1's is another region
    assert region.grand_total() == 6
    narrowed = queries.contacts_by_day(contacts["sup_r"], filters(territory=contacts["agency_b"]))
    assert narrowed.grand_total() == 1
    # A territory outside the agent's scope narrows to nothing rather than widening the scope.
    assert queries.contacts_by_day(contacts["sup_a"], filters(territory=contacts["agency_b"])).grand_total() == 0


def test_a_supervisor_of_every_territory_counts_what_is_placed_anywhere(contacts):
    from app.security.models import Territory

    roots = session.execute(select(Territory).where(Territory.parent_id.is_(None))).scalars().all()
    national = AgentFactory(roles=[role_with("superviseur")], territories=roots)
    nowhere = contact(contacts, contacts["a1"], at(17, 9))
    nowhere.territory_id = None  # no customer with a territory: counted by no one
    session.commit()
    scope = queries.scope_ids(national, filters())
    assert scope.everything
    assert queries.contacts_by_day(national, filters()).grand_total() == 7  # A1 (5), B1, S1


def test_a_long_period_counts_contacts_per_week(contacts):
    chart = queries.contacts_by_day(contacts["sup_a"], filters(start=date(2025, 12, 1)))
    assert chart.category_header == "Semaine"
    assert chart.total(date(2026, 3, 16), "contacts") == 4  # the week of Monday 16 March: 16th (2), 17th, 18th
    assert chart.total(date(2026, 3, 9), "contacts") == 2  # the 11th at 23:59 and the 12th at midnight, Paris time


# --- Dossiers ---------------------------------------------------------------------------------

@pytest.fixture
def dossiers(world):
    w = world
    w["d1"] = dossier(w, w["t1"], w["a1"], at(2), closed_at=at(4))  # 2 days, within its target
    w["d2"] = dossier(w, w["t1"], w["a1"], at(9), closed_at=at(16))  # 7 days, within its target
    w["d3"] = dossier(w, w["t2"], w["b1"], at(10))  # open, 8 days old, agency B
    w["d4"] = dossier(w, w["t1"], w["a1"], at(1, month=12, year=2025))  # open since December: past target
    w["d5"] = dossier(w, w["t1"], w["s1"], at(9), closed_at=at(10))  # another region
    w["d6"] = dossier(w, w["t1"], w["a1"], at(17))  # open, due on the 27th
    w["d7"] = dossier(w, w["t2"], w["a1"], at(20, month=2), closed_at=at(13))  # closed in the period after 21 days
    session.commit()
    return w


def test_dossiers_opened_and_closed_per_week_by_classification(dossiers):
    w = dossiers
    chart = queries.dossiers_by_week(w["sup_r"], filters(start=date(2026, 3, 2)))
    weeks = [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    assert [c for c, _l in chart.categories] == weeks
    t1, t2 = str(w["t1"].id), str(w["t2"].id)
    opened = {week: (chart.value(week, "opened", t1), chart.value(week, "opened", t2)) for week in weeks}
    closed = {week: (chart.value(week, "closed", t1), chart.value(week, "closed", t2)) for week in weeks}
    assert opened == {weeks[0]: (1, 0), weeks[1]: (1, 1), weeks[2]: (1, 0)}
    assert closed == {weeks[0]: (1, 0), weeks[1]: (0, 1), weeks[2]: (1, 0)}
    agency = queries.dossiers_by_week(w["sup_a"], filters(start=date(2026, 3, 2)))
    assert agency.total(weeks[1], "opened") == 1  # d3 is agency B's


def test_backlog_by_classification_and_age_at_the_end_of_the_period(dossiers):
    w = dossiers
    chart = queries.backlog(w["sup_r"], filters())
    t1, t2 = str(w["t1"].id), str(w["t2"].id)
    assert {(c, s): chart.value(c, "open", s) for c in (t1, t2) for s in "0123" if chart.value(c, "open", s)} == {
        (t1, "0"): 1,  # d6, a day old
        (t1, "3"): 1,  # d4, since December
        (t2, "1"): 1,  # d3, 8 days
    }
    assert chart.as_of_now
    # At the end of an earlier period: d2 (closed on the 16th) and d7 (closed on the 13th) were open on the 12th.
    earlier = queries.backlog(w["sup_a"], filters(start=date(2026, 3, 5), end=date(2026, 3, 11)))
    assert earlier.total(t1, "open") == 2 and earlier.total(t2, "open") == 1  # d2, d4; d7
    assert not earlier.as_of_now


def test_time_to_close_by_classification(dossiers):
    w = dossiers
    chart = queries.time_to_close(w["sup_a"], filters(start=date(2026, 3, 1)))
    t1, t2 = str(w["t1"].id), str(w["t2"].id)
    rows = table(chart)
    assert rows["Réclamation SV"] == [1, 1, 0, 0, 2, "4,5", "100 %"]  # d1 in 2 days, d2 in 7
    assert rows["Mutation SV"] == [0, 0, 1, 0, 1, "21,0", "—"]  # d7 in 21 days, no target time
    assert chart.value(t1, "closed", "0") == 1 and chart.value(t2, "closed", "2") == 1
    region = queries.time_to_close(w["sup_r"], filters(start=date(2026, 3, 1)))
    assert table(region)["Réclamation SV"][4] == 2  # d5 (region S) not counted


def test_dossiers_past_their_target_time(dossiers):
    w = dossiers
    late, total = queries.past_target(w["sup_r"], filters())
    assert [d.id for d in late] == [w["d4"].id] and total == 1
    assert queries.past_target(w["sup_a"], filters(territory=w["agency_a"]))[1] == 1
    # The rows follow access: once the customer moves to agency B, the dossier is still counted
    # under A, where it was opened, but A's supervisor no longer sees its row; the region's does.
    w["pa"].territory_id = w["b1"].id
    session.commit()
    assert queries.past_target(w["sup_a"], filters()) == ([], 1)
    assert [d.id for d in queries.past_target(w["sup_r"], filters())[0]] == [w["d4"].id]
    assert queries.backlog(w["sup_a"], filters()).grand_total() == 2  # counts keep the territory of record


# --- Tasks and workload -----------------------------------------------------------------------

@pytest.fixture
def tasks(dossiers):
    w = dossiers
    definition = ProcessDefinition(key="sv_process", name="Processus SV", version=1, content_hash="sv" * 32,
                                   files={}, deployed_by="test")
    session.add(definition)
    session.flush()

    def task(dossier_row, role, *, assignee=None, due=None, name="Étape"):
        instance = ProcessInstance(definition_id=definition.id, dossier_id=dossier_row.id, status="running",
                                   state="{}")
        session.add(instance)
        session.flush()
        row = ProcessTask(instance_id=instance.id, task_uuid=f"uuid-{instance.id}", element_id="step", name=name,
                          role_code=role, assignee_id=assignee.id if assignee else None, status="ready",
                          created_at=dossier_row.created_at, due_at=due)
        session.add(row)
        return row

    w["task_late"] = task(w["d4"], "back_office", due=w["d4"].due_at, name="Instruire la réclamation")
    w["task_a"] = task(w["d6"], "back_office", assignee=w["back_a"], due=w["d6"].due_at)
    w["task_b"] = task(w["d3"], "accueil", assignee=w["desk"])
    session.commit()
    return w


def test_tasks_past_due_per_team(tasks):
    w = tasks
    chart = queries.overdue_tasks(w["sup_a"], filters())
    assert chart.value("back_office", "tasks", "late") == 1
    assert chart.value("back_office", "tasks", "on_time") == 1
    assert chart.grand_total() == 2  # task_b is agency B's
    region = queries.overdue_tasks(w["sup_r"], filters())
    assert region.value("accueil", "tasks", "on_time") == 1 and region.grand_total() == 3
    assert table(region)["Back Office"] == [1, 1, 2, "50 %"]


def test_workload_per_agent_and_per_role(tasks):
    w = tasks
    per_agent, per_role = queries.workload(w["sup_r"], filters())
    assert {(x.key, x.tasks, x.late) for x in per_agent} == {
        (f"agent:{w['back_a'].id}", 1, 0), (f"agent:{w['desk'].id}", 1, 0)}
    assert [(x.key, x.tasks, x.late) for x in per_role] == [("role:back_office", 1, 1)]
    assert [t.id for t in queries.tasks_of(w["sup_r"], filters(), "role:back_office")] == [w["task_late"].id]
    assert queries.tasks_of(w["sup_a"], filters(), f"agent:{w['desk'].id}") == []  # agency B's task


# --- Dunning funnel ---------------------------------------------------------------------------

def test_dunning_funnel_counts_levels_reached_and_paid(world):
    w = world
    relaunch = DossierType(code="SV-REL", label="Relance SV", one_per_contract=True)
    session.add(relaunch)
    session.flush()
    procedure = DunningProcedure(code="SV-PROC", label="Procédure SV", grace_days=0, dossier_type_id=relaunch.id)
    session.add(procedure)
    session.flush()
    session.add_all([DunningLevel(procedure_id=procedure.id, rank=1, label="Rappel", delay_days=5),
                     DunningLevel(procedure_id=procedure.id, rank=2, label="Mise en demeure", delay_days=20,
                                  formal_notice=True)])
    dossier(w, relaunch, w["a1"], at(12), closed_at=at(14), dunning_rank=1, close_reason="paid")
    dossier(w, relaunch, w["a1"], at(13), dunning_rank=2)
    dossier(w, relaunch, w["a1"], at(14))
    dossier(w, relaunch, w["a1"], at(1), dunning_rank=2)  # opened before the period
    dossier(w, relaunch, w["s1"], at(13), dunning_rank=2)  # another region
    dossier(w, w["t1"], w["a1"], at(13), dunning_rank=None)  # not a relaunch
    session.commit()
    chart = queries.dunning_funnel(w["sup_r"], filters())
    assert table(chart) == {"Relances ouvertes": [3, "100 %"], "Rappel": [2, "67 %"],
                            "Mise en demeure": [1, "33 %"], "Payées": [1, "33 %"]}


# --- Pages ------------------------------------------------------------------------------------

def _login(auth, agent):
    from flask import g

    assert auth.login(agent.login).status_code == 302
    g.pop("csrf_token", None)  # app_ctx keeps g across requests: the token of the session before login


def test_dashboard_page_draws_every_chart_with_its_table(client, auth, tasks):
    _login(auth, tasks["sup_r"])
    page = client.get("/supervision?debut=2026-03-02&fin=2026-03-18")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for key in queries.CHARTS:
        assert f'id="chart-{key}"' in html and f'id="csv-{key}"' in html
    assert html.count("<svg") >= 4  # the charts with data; the funnel has no relaunch here
    assert "Réclamation SV – Ouverts" not in html  # one bar per week and series: titles name them
    assert "sem. du 9 mars – Ouverts – Mutation SV : 1" in html


def test_chart_csv_is_the_table(client, auth, contacts):
    _login(auth, contacts["sup_a"])
    response = client.get("/supervision/contacts.csv?debut=2026-03-12&fin=2026-03-18")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == ["Jour", "Téléphone", "Courriel", "Total"]
    assert [r[1:] for r in rows[1:]] == [["1", "0", "1"], ["0", "0", "0"], ["0", "0", "0"], ["0", "0", "0"],
                                          ["2", "0", "2"], ["0", "1", "1"], ["1", "0", "1"]]
    assert client.get("/supervision/unknown.csv").status_code == 404


def test_filters_refuse_bad_input_with_a_message(client, auth, contacts):
    _login(auth, contacts["sup_a"])
    html = client.get("/supervision?debut=2026-13-01&fin=2026-03-18").get_data(as_text=True)
    assert "Date de début invalide" in html
    html = client.get("/supervision?debut=2026-03-18&fin=2026-03-01").get_data(as_text=True)
    assert "La période commence après sa fin" in html
    html = client.get("/supervision?debut=2020-01-01&fin=2026-03-18").get_data(as_text=True)
    assert "366 jours au plus" in html
    html = client.get(f"/supervision?territoire={contacts['agency_b'].id}").get_data(as_text=True)
    assert "hors de votre périmètre" in html


def test_supervision_pages_need_the_permission(client, auth, tasks):
    _login(auth, tasks["back_a"])
    for url in ("/supervision", "/supervision/contacts.csv", "/supervision/charge", "/supervision/retards",
                "/supervision/retards.csv"):
        assert client.get(url).status_code == 403, url
    assert queries.contacts_by_day(tasks["back_a"], filters()).grand_total() == 0


def test_past_target_page_and_csv(client, auth, dossiers):
    dossiers["d4"].subject = " =HYPERLINK(\"http://x\")"  # typed by someone: a spreadsheet must not run it
    session.commit()
    _login(auth, dossiers["sup_r"])
    html = client.get("/supervision/retards").get_data(as_text=True)
    assert dossiers["d4"].reference in html and "97 jours" in html
    assert dossiers["d6"].reference not in html
    rows = list(csv.reader(io.StringIO(client.get("/supervision/retards.csv").get_data(as_text=True)), delimiter=";"))
    assert rows[1][0] == dossiers["d4"].reference and rows[1][-1] == "97" and len(rows) == 2
    assert rows[1][2].startswith("' =HYPERLINK")


def test_bulk_reassign_gives_every_ticked_task_or_none(client, auth, tasks):
    w = tasks
    other_back = AgentFactory(roles=[role_with("back_office")], territories=[w["region"]])
    session.commit()
    _login(auth, w["sup_r"])
    page = client.get("/supervision/charge?ligne=role:back_office").get_data(as_text=True)
    assert "Instruire la réclamation" in page and other_back.login in page
    token = csrf_token(page)
    # task_b is a front-desk task: a back-office agent cannot take it, so neither task moves.
    refused = client.post("/supervision/charge/reaffecter", data={
        "csrf_token": token, "task": [w["task_late"].id, w["task_b"].id], "agent": other_back.id})
    assert refused.status_code == 303
    session.expire_all()
    assert session.get(ProcessTask, w["task_late"].id).assignee_id is None
    assert session.get(ProcessTask, w["task_b"].id).assignee_id == w["desk"].id
    follow = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Aucune tâche réaffectée" in follow and "rôle" in follow
    done = client.post("/supervision/charge/reaffecter", data={
        "csrf_token": token, "task": [w["task_late"].id, w["task_a"].id], "agent": other_back.id})
    assert done.status_code == 303
    session.expire_all()
    assert session.get(ProcessTask, w["task_late"].id).assignee_id == other_back.id
    assert session.get(ProcessTask, w["task_a"].id).assignee_id == other_back.id
    assert "2 tâche(s) réaffectée(s)" in client.get(done.headers["Location"]).get_data(as_text=True)
    entries = session.execute(select(AuditEntry).where(AuditEntry.action == "reassign_task")).scalars().all()
    assert {e.object_id for e in entries} == {str(w["task_late"].instance_id), str(w["task_a"].instance_id)}


def test_bulk_reassign_out_of_scope_is_refused(client, auth, tasks):
    w = tasks
    _login(auth, w["sup_a"])
    token = csrf_token(client.get("/supervision/charge").get_data(as_text=True))
    response = client.post("/supervision/charge/reaffecter", data={"csrf_token": token, "task": [w["task_b"].id],
                                                                   "agent": ""})
    assert "hors de votre périmètre" in client.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert session.get(ProcessTask, w["task_b"].id).assignee_id == w["desk"].id


# --- Territory of record, written by the services ---------------------------------------------

def test_contacts_and_dossiers_take_their_customer_territory(world):
    from app.contacts import service as contacts
    from app.contacts.links import Links, PartyLink
    from app.dossiers import service as dossiers_service

    w = world
    desk = w["desk"]
    c = contacts.create_contact(agent=desk, contact_type_id=w["phone"].id, channel="phone", direction="in",
                                subject=None, notes=None, occurred_at=None, duration_minutes=None,
                                links=Links(parties=[PartyLink(w["pa"].id, "customer")]))
    assert c.territory_id == w["a1"].id
    # A customer whose address lies outside every territory is placed by its contract's premises.
    nowhere = Party(number="SV-pn", last_name="Sans commune", status="customer", territory_id=None)
    point = ServicePoint(external_ref="SV-SP", kind="water", territory_id=w["b1"].id)
    session.add_all([nowhere, point])
    session.flush()
    contract = Contract(number="SV-C", external_ref="SV-C", service_point_id=point.id, status="active",
                        start_date=date(2025, 1, 1))
    session.add(contract)
    session.flush()
    session.add(ContractParty(contract_id=contract.id, party_id=nowhere.id, role="holder"))
    session.flush()
    placed = contacts.create_contact(agent=w["sup_r"], contact_type_id=w["phone"].id, channel="phone",
                                     direction="in", subject=None, notes=None, occurred_at=None,
                                     duration_minutes=None, links=Links(parties=[PartyLink(nowhere.id, "customer")]))
    assert placed.territory_id == w["b1"].id
    d = dossiers_service.open_dossier(agent=w["sup_r"], dossier_type_id=w["t2"].id, subject="Test",
                                      links=Links(parties=[PartyLink(w["pb"].id, "third_party"),
                                                           PartyLink(w["pa"].id, "holder")]))
    assert d.territory_id == w["a1"].id

"""The scope helper: functional (permission) and geographic (territory tree) limits in SQL."""
from __future__ import annotations

import pytest
from sqlalchemy import String, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.exceptions import NotFound

from app.db import session
from app.security.models import Agent
from app.security.scope import (
    TerritoryScoped,
    get_scoped,
    get_scoped_or_404,
    scoped_select,
    subtrees_overlap,
    territory_ids_under,
)
from tests.factories import AgentFactory, TerritoryFactory, role_with


class ProbeBase(DeclarativeBase):
    pass


class Probe(TerritoryScoped, ProbeBase):
    """A stand-in for customer data placed in a territory (parties arrive with the next issue)."""

    __tablename__ = "scope_probe"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50))


@pytest.fixture
def tree(_transaction):
    """Two regions; under the first, two agencies; under each agency a commune; a probe in each."""
    ProbeBase.metadata.create_all(_transaction)  # inside the test transaction: rolled back
    north = TerritoryFactory(kind="region", code="NORD")
    south = TerritoryFactory(kind="region", code="SUD")
    agency_a = TerritoryFactory(parent=north, code="AG-A")
    agency_b = TerritoryFactory(parent=north, code="AG-B")
    commune_a = TerritoryFactory(parent=agency_a, kind="commune", code="11111")
    commune_b = TerritoryFactory(parent=agency_b, kind="commune", code="22222")
    commune_south = TerritoryFactory(parent=south, kind="commune", code="33333")
    probes = {}
    for name, territory in [("a", commune_a), ("b", commune_b), ("agency_a", agency_a), ("south", commune_south)]:
        probe = Probe(label=name, territory_id=territory.id)
        session.add(probe)
        probes[name] = probe
    session.commit()
    return {"north": north, "south": south, "agency_a": agency_a, "agency_b": agency_b, "probes": probes}


def _visible(agent: Agent, permission: str = "party.read") -> set[str]:
    return {p.label for p in session.execute(scoped_select(Probe, agent=agent, permission=permission)).scalars()}


def test_agent_of_one_agency_sees_only_what_lies_under_it(tree):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["agency_a"]])
    assert _visible(agent) == {"a", "agency_a"}


def test_agent_of_a_region_sees_every_agency_and_commune_under_it(tree):
    agent = AgentFactory(roles=[role_with("back_office")], territories=[tree["north"]])
    assert _visible(agent) == {"a", "b", "agency_a"}


def test_several_territories_add_up(tree):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["agency_b"], tree["south"]])
    assert _visible(agent) == {"b", "south"}


def test_no_territory_means_nothing(tree):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[])
    assert _visible(agent) == set()


def test_missing_permission_means_nothing_even_inside_the_territory(tree):
    agent = AgentFactory(roles=[role_with("concepteur")], territories=[tree["north"]])
    assert _visible(agent) == set()
    assert _visible(agent, permission="process.design") == {"a", "b", "agency_a"}


def test_deactivated_agent_sees_nothing(tree):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["north"]], active=False)
    assert _visible(agent) == set()


def test_territory_code_prefix_is_not_mistaken_for_a_parent(tree):
    # "AG-A" must not grant "AG-AB": paths end with a slash.
    look_alike = TerritoryFactory(parent=tree["north"], code="AG-AB")
    session.add(Probe(label="look_alike", territory_id=look_alike.id))
    session.commit()
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["agency_a"]])
    assert "look_alike" not in _visible(agent)


def test_get_scoped_answers_as_for_a_missing_object(app, tree):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["agency_a"]])
    mine, theirs = tree["probes"]["a"], tree["probes"]["b"]
    assert get_scoped(Probe, mine.id, agent=agent, permission="party.read").label == "a"
    assert get_scoped(Probe, theirs.id, agent=agent, permission="party.read") is None
    assert get_scoped(Probe, 10**9, agent=agent, permission="party.read") is None
    with app.test_request_context():
        with pytest.raises(NotFound):
            get_scoped_or_404(Probe, theirs.id, agent=agent, permission="party.read")
        with pytest.raises(NotFound):
            get_scoped_or_404(Probe, 10**9, agent=agent, permission="party.read")


def test_scope_is_applied_by_the_database_in_one_statement(tree, _transaction):
    agent = AgentFactory(roles=[role_with("accueil")], territories=[tree["agency_a"], tree["south"]])
    assert agent.territories  # loaded beforehand, as for the logged-in agent of a request
    statements = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):  # not the session's SAVEPOINT
            statements.append(statement)

    event.listen(_transaction, "before_cursor_execute", count)
    try:
        labels = _visible(agent)
    finally:
        event.remove(_transaction, "before_cursor_execute", count)
    assert labels == {"a", "agency_a", "south"}
    assert len(statements) == 1
    assert "territory" in statements[0] and "scope_probe" in statements[0]


def test_territory_ids_under_covers_the_given_subtrees_only(tree):
    def labels(territories) -> set[str]:
        stmt = Probe.__table__.select().where(Probe.scope_clause(territory_ids_under(territories)))
        return {row.label for row in session.execute(stmt)}

    assert labels([tree["agency_a"]]) == {"a", "agency_a"}
    assert labels([tree["north"]]) == {"a", "b", "agency_a"}
    assert labels([tree["agency_b"], tree["south"]]) == {"b", "south"}
    assert labels([]) == set()


def test_two_subtrees_overlap_when_one_root_lies_under_the_other(tree):
    north, south, agency_a, agency_b = tree["north"], tree["south"], tree["agency_a"], tree["agency_b"]
    commune_a = TerritoryFactory(parent=agency_a, kind="commune", code="11112")
    look_alike = TerritoryFactory(parent=north, code="AG-AB")
    assert subtrees_overlap([agency_a], [agency_a])
    assert subtrees_overlap([agency_a], [north]) and subtrees_overlap([north], [agency_a])
    assert subtrees_overlap([commune_a], [agency_a]) and subtrees_overlap([agency_a], [commune_a])
    assert subtrees_overlap([agency_b, south], [commune_a, south])
    assert not subtrees_overlap([agency_a], [agency_b])
    assert not subtrees_overlap([agency_a], [look_alike]) and not subtrees_overlap([look_alike], [agency_a])
    assert not subtrees_overlap([north], [south])
    assert not subtrees_overlap([], [north]) and not subtrees_overlap([north], [])

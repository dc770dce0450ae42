"""The quick search on a fixed set of tricky names: accents, case, hyphens, word order, typos,
addresses, identifiers, scope. Runs unchanged on SQLite (FTS5) and PostgreSQL (pg_trgm)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.contracts.models import Contract, ContractParty, ContractRole, ServicePoint
from app.db import session
from app.integration.billing_import import import_directory
from app.parties.models import Party, PartyKind
from app.search import index as search_index
from app.search.models import PartySearch
from app.search.service import search
from tests.factories import AgentFactory, TerritoryFactory, role_with
from tests.integration.test_billing_import import EXAMPLE, _edit, communes, export_dir  # noqa: F401  (fixtures)

# number, first name, last name or company, status, street, postal code, city, territory key
PEOPLE = [
    ("CL9000001", "Jean", "Lefèvre", "customer", "4 rue Pasteur", "69003", "Lyon", "lyon"),
    ("CL9000002", "Marie", "LEFEBVRE", "customer", "9 rue Garibaldi", "69003", "Lyon", "lyon"),
    ("CL9000003", "Pierre", "Dupont", "former_customer", "1 rue Vendôme", "69006", "Lyon", "lyon"),
    ("CL9000004", "Paul", "Dupont", "customer", "17 quai Saint-Vincent", "69001", "Lyon", "lyon"),
    ("CL9000005", "Aïcha", "N'Diaye", "customer", "3 rue de la République", "42000", "Saint-Étienne", "stetienne"),
    ("CL9000006", "Benoît", "Cœur", "prospect", "2 allée des Tilleuls", "69003", "Lyon", "lyon"),
    ("CL9000007", "Jean", "Martin", "customer", "5 avenue Foch", "06000", "Nice", "nice"),
    ("CL9000008", "Jeanne", "Martin", "customer", "8 rue Émile-Zola", "69003", "Lyon", "lyon"),
    ("CL9000009", "Étienne", "Saint-Just", "customer", "6 rue Émile-Zola", "69003", "Lyon", "lyon"),
]


@pytest.fixture
def agents(communes):  # noqa: F811
    assert import_directory(EXAMPLE).ok
    communes["stetienne"] = TerritoryFactory(parent=communes["lyon_agency"], kind="commune", code="42218",
                                             insee_code="42218", name="Saint-Étienne")
    for number, first, last, status, street, postal, city, territory in PEOPLE:
        session.add(Party(number=number, kind=PartyKind.PERSON, first_name=first, last_name=last, status=status,
                          street=street, postal_code=postal, city=city, territory_id=communes[territory].id))
    session.commit()
    lyon = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"]])
    nice = AgentFactory(roles=[role_with("accueil")], territories=[communes["nice_agency"]])
    both = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"], communes["nice_agency"]])
    return {"lyon": lyon, "nice": nice, "both": both}


def _numbers(answer):
    return [r.party.number for r in answer.results]


@pytest.mark.parametrize("query,first,field", [
    ("lefevre jean", "CL9000001", "name"),  # word order, accent
    ("Jean Lefèvre", "CL9000001", "name"),
    ("LEFEVRE", "CL0001001", "name"),  # Hélène before Jean: same score and status, then by name
    ("lefebvre", "CL9000002", "name"),  # typed in capitals in the billing system
    ("lefebre", "CL9000002", "name_fuzzy"),  # a typo: Lefebvre is the closer spelling…
    ("dupond", "CL9000004", "name_fuzzy"),  # …Dupont the only one, the active customer first
    ("dupont", "CL9000004", "name"),
    ("dupont pierre", "CL9000003", "name"),
    ("jean baptiste dupont", "CL0001002", "name"),  # hyphenated first name and last name
    ("dupont moreau", "CL0001002", "name"),
    ("ndiaye", "CL9000005", "name_fuzzy"),  # typed without the apostrophe
    ("n diaye", "CL9000005", "name"),
    ("coeur", "CL9000006", "name"),  # the ligature œ
    ("aicha", "CL9000005", "name"),
    ("saint etienne", "CL9000009", "name"),  # Étienne Saint-Just: a name beats an address…
    ("saint-étienne république", "CL9000005", "address"),  # …and an address in Saint-Étienne is found
    ("victor hugo", "CL0001001", "address"),
    ("emile zola jeanne", "CL9000008", "name"),
    ("lyon martin", "CL9000008", "name"),
    ("CL9000004", "CL9000004", "customer_number"),
    ("06 12 34 56 78", "CL0001001", "phone"),
    ("EL-2019-000311", "CL0001001", "contract_number"),
    ("helene.lefevre@example.fr", "CL0001001", "email"),
])
def test_tricky_names_and_identifiers_give_the_expected_first_result(agents, query, first, field):
    answer = search(agent=agents["both"], query=query)
    assert answer.results, query
    assert (answer.results[0].party.number, answer.results[0].field) == (first, field)


def test_every_matching_name_is_found_and_ranked(agents):
    assert _numbers(search(agent=agents["both"], query="dupont")) == ["CL9000004", "CL0001002", "CL9000003"]
    assert _numbers(search(agent=agents["both"], query="martin")) == ["CL9000007", "CL9000008"]  # by name
    assert set(_numbers(search(agent=agents["both"], query="lefebre"))) >= {"CL9000001", "CL9000002", "CL0001001"}


def test_a_contract_match_designates_its_holders_with_the_contract(agents):
    answer = search(agent=agents["lyon"], query="LKY-009876")
    assert {(r.party.number, r.contract.number) for r in answer.results} == {
        ("CL0001001", "EL-2019-000311"), ("CL0001004", "EL-2019-000311")}
    assert all(r.field == "meter_serial" for r in answer.results)


def test_results_carry_the_main_contract(agents):
    [result] = search(agent=agents["lyon"], query="helene lefevre").results
    assert result.contract is None and result.main_contract.status == "active"


def test_out_of_scope_parties_are_counted_never_shown(agents):
    lyon, nice = agents["lyon"], agents["nice"]
    answer = search(agent=lyon, query="boulangerie")  # a Nice company
    assert answer.results == [] and answer.hidden == 1
    assert _numbers(search(agent=nice, query="boulangerie")) == ["CL0001003"]
    answer = search(agent=lyon, query="jean martin")  # Jean Martin lives in Nice; Jeanne in Lyon
    assert _numbers(answer) == ["CL9000008"] and answer.hidden == 0  # counted only when nothing is shown
    assert search(agent=nice, query="lefevre").hidden == 2  # Jean and Hélène; Lefebvre would be a typo
    # Only what matches as typed is counted: similar spellings elsewhere are no evidence of a duplicate
    # (at a million parties nearly every misspelt name would count "100+").
    assert search(agent=nice, query="lefebre").hidden == 0
    assert search(agent=nice, query="CL9000001").hidden == 1


def _many(communes, count: int, last_name: str, territory: str = "lyon", first: int = 0) -> None:  # noqa: F811
    session.add_all(Party(number=f"CL95{i:05d}", kind=PartyKind.PERSON, first_name="Paul", last_name=last_name,
                          status="customer", street="1 rue Pasteur", postal_code="69003", city="Lyon",
                          territory_id=communes[territory].id) for i in range(first, first + count))
    session.commit()


def test_an_exact_name_is_never_crowded_out_by_longer_ones(agents, communes):  # noqa: F811
    _many(communes, 250, "Martinez")  # more than the database proposes for "martin" as a word start
    session.add(Party(number="CL9600002", kind=PartyKind.PERSON, first_name="Zoé", last_name="Martin",
                      status="former_customer", territory_id=communes["lyon"].id))  # written after them
    session.commit()
    answer = search(agent=agents["lyon"], query="martin")
    assert _numbers(answer)[:2] == ["CL9000008", "CL9600002"]  # Jeanne Martin, then the former customer
    assert {r.field for r in answer.results[:2]} == {"name"}
    assert answer.more  # and the agent is told to type more
    assert _numbers(search(agent=agents["lyon"], query="martinez"))[0].startswith("CL95")


def test_a_last_name_comes_before_the_same_first_name(agents, communes):  # noqa: F811
    session.add(Party(number="CL9600003", kind=PartyKind.PERSON, first_name="Martin", last_name="Abadie",
                      status="customer", territory_id=communes["lyon"].id))  # " abadie martin " sorts first
    session.commit()
    assert _numbers(search(agent=agents["lyon"], query="martin")) == ["CL9000008", "CL9600003"]


def test_a_party_seen_through_a_contract_is_found_among_many_in_the_territory(agents, communes):  # noqa: F811
    _many(communes, 150, "Dupontel")
    _many(communes, 100, "Dupontelli", first=10_000)  # 250 word-start matches in Lyon: more than the quota
    # Aaron Dupontel lives in Nice; the Lyon agent sees him only through his contract on premises in Lyon.
    aaron = Party(number="CL9600001", kind=PartyKind.PERSON, first_name="Aaron", last_name="Dupontel",
                  status="customer", street="5 avenue Foch", postal_code="06000", city="Nice",
                  territory_id=communes["nice"].id)
    lyon_contract = session.execute(
        select(Contract).join(ServicePoint).where(ServicePoint.territory_id == communes["lyon"].id)
        .order_by(Contract.id)).scalars().first()
    session.add_all([aaron, ContractParty(contract=lyon_contract, party=aaron, role=ContractRole.PAYER)])
    session.commit()
    assert _numbers(search(agent=agents["lyon"], query="dupontel"))[0] == "CL9600001"
    assert _numbers(search(agent=agents["lyon"], query="dupontel aaron")) == ["CL9600001"]


def test_the_count_out_of_scope_says_more_than_a_hundred_only_above_a_hundred(agents, communes):  # noqa: F811
    _many(communes, 100, "Zanzibar", territory="nice")
    answer = search(agent=agents["lyon"], query="zanzibar")
    assert answer.results == [] and answer.hidden == 100 and answer.hidden_label == "100"
    _many_more = Party(number="CL9700001", kind=PartyKind.PERSON, last_name="Zanzibar", status="customer",
                       territory_id=communes["nice"].id)
    session.add(_many_more)
    session.commit()
    assert search(agent=agents["lyon"], query="zanzibar").hidden_label == "100+"


def test_an_agent_without_territory_or_permission_finds_nothing(agents, communes):  # noqa: F811
    nobody = AgentFactory(roles=[role_with("accueil")], territories=[])
    answer = search(agent=nobody, query="dupont")
    assert answer.results == [] and answer.hidden == 3
    no_read = AgentFactory(roles=[role_with("x", ["contact.create"])], territories=[communes["lyon_agency"]])
    assert search(agent=no_read, query="dupont").results == []


@pytest.mark.parametrize("query", ["", "  ", "a", "%", "_", "%%", "__", "' OR 1=1 --", "\"; DROP TABLE party; --",
                                   "x" * 500, "é" * 300, "*", "NEAR(a b)", "\" OR \"", "{name}: x", "a b c d e f g h",
                                   "\\", "\x00", "dupont %", "dup_nt"])
def test_odd_input_gives_an_empty_or_clear_answer_never_an_error(agents, query):
    answer = search(agent=agents["both"], query=query)
    assert answer.hidden == 0 or answer.results == []
    if query.strip() and len(query.strip()) < 2:
        assert answer.too_short
    assert all(r.party.number for r in answer.results)


def test_wildcards_are_not_wildcards(agents):
    assert search(agent=agents["both"], query="dup_nt").results == [] or all(
        "dup" in r.party.last_name.lower() for r in search(agent=agents["both"], query="dup_nt").results)
    assert _numbers(search(agent=agents["both"], query="dupont %")) == _numbers(
        search(agent=agents["both"], query="dupont"))


def test_the_index_follows_orm_edits_and_deletions(agents, communes):  # noqa: F811
    party = session.execute(select(Party).where(Party.number == "CL9000006")).scalar_one()
    party.last_name, party.city = "Œuvrard", "Villeurbanne"
    session.commit()
    assert _numbers(search(agent=agents["lyon"], query="oeuvrard")) == ["CL9000006"]
    assert search(agent=agents["lyon"], query="coeur").results == []
    party.territory_id, party.city = communes["nice"].id, "Nice"  # moved: the scope follows
    session.commit()
    assert search(agent=agents["lyon"], query="oeuvrard").hidden == 1
    assert _numbers(search(agent=agents["nice"], query="oeuvrard nice")) == ["CL9000006"]
    party_id = party.id
    session.delete(party)
    session.commit()
    assert session.get(PartySearch, party_id) is None
    assert search(agent=agents["lyon"], query="oeuvrard").results == []


def test_the_index_follows_contracts_given_taken_and_moved(agents, communes):  # noqa: F811
    nice_jean = session.execute(select(Party).where(Party.number == "CL9000007")).scalar_one()  # lives in Nice
    contract = session.execute(select(Contract).join(ServicePoint).where(
        ServicePoint.territory_id == communes["lyon"].id).order_by(Contract.id)).scalars().first()
    lyon, nice = communes["lyon"].path, communes["nice"].path

    def seen_from() -> set[str]:  # the index row itself: search() would hide a stale row behind _load
        session.expire_all()
        return set(session.get(PartySearch, nice_jean.id).scope_paths.split())

    assert seen_from() == {nice}
    assert _numbers(search(agent=agents["lyon"], query="martin jean")) == ["CL9000008"]  # Jeanne only
    link = ContractParty(contract=contract, party=nice_jean, role=ContractRole.PAYER)
    session.add(link)
    session.commit()  # he pays a contract on premises in Lyon: the Lyon agent now sees him
    assert seen_from() == {nice, lyon}
    assert "CL9000007" in _numbers(search(agent=agents["lyon"], query="martin jean"))
    contract.service_point.territory_id = communes["nice"].id  # the premises are moved to Nice
    session.commit()
    assert seen_from() == {nice}
    contract.service_point.territory_id = communes["lyon"].id
    session.commit()
    assert seen_from() == {nice, lyon}
    session.delete(link)
    session.commit()  # no longer
    assert seen_from() == {nice}
    assert _numbers(search(agent=agents["lyon"], query="martin jean")) == ["CL9000008"]


def test_rebuild_gives_back_the_same_index(agents):
    before = {r.party_id: (r.name, r.first_name, r.address) for r in session.execute(select(PartySearch)).scalars()}
    session.execute(PartySearch.__table__.delete())
    assert search(agent=agents["both"], query="dupont").results == []
    assert search_index.rebuild() == len(before)
    session.commit()
    session.expire_all()
    after = {r.party_id: (r.name, r.first_name, r.address) for r in session.execute(select(PartySearch)).scalars()}
    assert after == before
    assert _numbers(search(agent=agents["both"], query="dupont"))[0] == "CL9000004"
    assert before[session.execute(select(Party.id).where(Party.number == "CL9000005")).scalar_one()] == (
        " n diaye aicha ", "aicha", " 3 rue de la republique 42000 saint etienne ")


def test_flask_search_reindex_rebuilds_the_index(app, agents):
    session.execute(PartySearch.__table__.delete().where(PartySearch.party_id.in_(
        select(Party.id).where(Party.number == "CL9000004"))))
    session.commit()
    assert "CL9000004" not in _numbers(search(agent=agents["both"], query="dupont"))
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    total = session.execute(select(func.count()).select_from(Party)).scalar_one()
    assert f"Index de recherche reconstruit : {total} interlocuteurs" in result.output
    session.expire_all()
    assert _numbers(search(agent=agents["both"], query="dupont"))[0] == "CL9000004"


def test_a_name_changed_by_the_billing_import_is_found_under_the_new_name(agents, export_dir):  # noqa: F811
    _edit(export_dir / "parties.csv", 2, "Lefèvre", "Lefèvre-Dumas")
    assert import_directory(export_dir).ok
    session.commit()
    assert _numbers(search(agent=agents["lyon"], query="dumas helene")) == ["CL0001001"]

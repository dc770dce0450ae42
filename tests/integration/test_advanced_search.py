"""The advanced search: every criterion, both modes, sorting and pagination, scope, CSV export and
odd input. Runs unchanged on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select

from app import clock
from app.audit.models import AuditEntry
from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
from app.db import session
from app.integration.billing_import import import_directory
from app.parties.models import Party, PartyKind
from app.search import advanced
from app.search.advanced import Criteria
from app.search.models import PartySearch
from app.security.scope import scoped_select
from tests.factories import AgentFactory, TerritoryFactory, role_with
from tests.integration.test_billing_import import EXAMPLE, communes  # noqa: F401  (fixture)

N = 30  # Lyon-area Merciers, i = 0..29: enough for two pages
FIRST_NAMES = ("Émile", "Zoé", "Éloïse")  # by i % 3
CITIES = (("Lyon", "69003", "69123"), ("Villeurbanne", "69100", "69266"), ("Écully", "69130", "69081"))  # i % 3
KINDS = ("electricity", "gas", "water")  # i % 3
PROSPECT, PAULIN = "CL8200000", "CL8300000"


def merc(i: int) -> str:
    return f"CL80{i:05d}"


def mercs(keep) -> set[str]:
    return {merc(i) for i in range(N) if keep(i)}


def contract_no(i: int) -> str:
    return f"MC-{i:04d}"


def _service_point(ref: str, kind: str, territory, city: tuple[str, str, str]) -> ServicePoint:
    name, postal, insee = city
    return ServicePoint(external_ref=ref, kind=kind, territory_id=territory.id, street="1 rue du Compteur",
                        postal_code=postal, city=name, insee_code=insee)


def _contract(number: str, sp: ServicePoint, party: Party, *, status: str, start: date, offer: str) -> Contract:
    return Contract(number=number, external_ref=f"X-{number}", service_point=sp, status=status, start_date=start,
                    offer=offer, parties=[ContractParty(party=party, role="holder")])


def _invoice(number: str, contract: Contract, *, due: date, status: str) -> Invoice:
    return Invoice(number=number, external_ref=f"X-{number}", contract=contract, issued_on=due - timedelta(days=15),
                   due_on=due, amount=Decimal("50.00"), status=status)


@pytest.fixture
def data(communes):  # noqa: F811
    """The example billing files, 30 Merciers around Lyon (every criterion varies with i), a
    Lyon prospect, Paulin who lives in Nice with a contract in Lyon, and three Merciers in Nice."""
    assert import_directory(EXAMPLE).ok
    lyon, nice = communes["lyon"], communes["nice"]
    villeurbanne = TerritoryFactory(parent=communes["lyon_agency"], kind="commune", code="69266", insee_code="69266",
                                    name="Villeurbanne")
    ecully = TerritoryFactory(parent=communes["lyon_agency"], kind="commune", code="69081", insee_code="69081",
                              name="Écully")
    territories = (lyon, villeurbanne, ecully)
    today = clock.now().date()
    for i in range(N):
        city, postal, insee = CITIES[i % 3]
        party = Party(number=merc(i), kind=PartyKind.PERSON, first_name=FIRST_NAMES[i % 3], last_name="Mercier",
                      birth_date=date(1980, 1, 1 + i), status="customer" if i % 2 == 0 else "former_customer",
                      street=f"{i + 1} rue des Lilas", postal_code=postal, city=city, insee_code=insee,
                      territory_id=territories[i % 3].id)
        sp = _service_point(f"SPM-{i}", KINDS[i % 3], territories[i % 3], CITIES[i % 3])
        contract = _contract(contract_no(i), sp, party, status="active" if i % 2 == 0 else "terminated",
                             start=date(2015 + i % 5, 1 + i % 12, 1), offer=("Offre A", "Offre B")[i % 2])
        if i % 5 == 0:
            session.add(_invoice(f"FM-{i}", contract, due=date(2024, 1, 1), status="open"))
        if i % 5 == 1:  # open but not yet due: not overdue
            session.add(_invoice(f"FM-{i}", contract, due=today + timedelta(days=30), status="open"))
        if i % 5 == 2:  # due long ago, but paid
            session.add(_invoice(f"FM-{i}", contract, due=date(2024, 1, 1), status="paid"))
        session.add(contract)
    session.add(Party(number=PROSPECT, first_name="Anaïs", last_name="Mercier", status="prospect",
                      street="2 impasse des Roses", postal_code="69003", city="Lyon", insee_code="69123",
                      territory_id=lyon.id))
    paulin = Party(number=PAULIN, first_name="Paulin", last_name="Mercier", status="customer",
                   street="9 promenade des Anglais", postal_code="06000", city="Nice", insee_code="06088",
                   territory_id=nice.id)
    session.add(_contract("MC-9000", _service_point("SPM-P", "electricity", lyon, CITIES[0]), paulin,
                          status="active", start=date(2012, 6, 1), offer="Offre B"))
    for j in range(3):  # out of the Lyon agents' scope, and matching nearly everything
        nicette = Party(number=f"CL8100{j:03d}", first_name="Nicette", last_name="Mercier", status="customer",
                        birth_date=date(1980, 1, 5), street="1 rue des Lilas", postal_code="06000", city="Nice",
                        insee_code="06088", territory_id=nice.id)
        contract = _contract(f"NC-{j:04d}", _service_point(f"SPN-{j}", "water", nice, ("Nice", "06000", "06088")),
                             nicette, status="active", start=date(2019, 5, 1), offer="Offre A")
        session.add_all([contract, _invoice(f"FN-{j}", contract, due=date(2024, 1, 1), status="open")])
    session.commit()
    accueil = role_with("accueil")
    return SimpleNamespace(
        lyon=AgentFactory(roles=[accueil], territories=[communes["lyon_agency"]]),
        # Searching by birth date needs party.sensitive (accueil lacks it: test_sensitive_fields.py).
        lyon_sensitive=AgentFactory(roles=[role_with("back_office")], territories=[communes["lyon_agency"]]),
        nice=AgentFactory(roles=[accueil], territories=[communes["nice_agency"]]),
        villeurbanne=villeurbanne, ecully=ecully, communes=communes)


MERCIERS = mercs(lambda i: True) | {PROSPECT, PAULIN}
NICETTES = {"CL8100000", "CL8100001", "CL8100002"}


def numbers(agent, criteria: Criteria, **kwargs) -> list[str]:
    """Every row of the search, page after page, as customer or contract numbers."""
    found, page = [], 1
    while True:
        result = advanced.search(agent=agent, criteria=criteria, page=page, **kwargs)
        if criteria.mode == "contracts":
            found += [row.contract.number for row in result.rows]
        else:
            found += [row.party.number for row in result.rows]
        if not result.has_next:
            return found
        page += 1


# --- every criterion ------------------------------------------------------------------------------

@pytest.mark.parametrize("criteria,expected", [
    (dict(), MERCIERS),
    (dict(first_name="eloise"), mercs(lambda i: i % 3 == 2)),
    (dict(first_name="ZO"), mercs(lambda i: i % 3 == 1)),
    (dict(birth_date=date(1980, 1, 5)), {merc(4)}),
    (dict(address="lilas"), mercs(lambda i: True)),
    (dict(address="rue lilas 12"), {merc(11)}),
    (dict(postcode="69100"), mercs(lambda i: i % 3 == 1)),
    (dict(postcode="691"), mercs(lambda i: i % 3 in (1, 2))),
    (dict(commune="villeurbanne"), mercs(lambda i: i % 3 == 1)),
    (dict(commune="ECULLY"), mercs(lambda i: i % 3 == 2)),
    (dict(commune="Lyon"), mercs(lambda i: i % 3 == 0) | {PROSPECT}),
    (dict(commune="69266"), mercs(lambda i: i % 3 == 1)),
    (dict(status="prospect"), {PROSPECT}),
    (dict(status="former_customer"), mercs(lambda i: i % 2 == 1)),
    (dict(contract_status="terminated"), mercs(lambda i: i % 2 == 1)),
    (dict(contract_status="active"), mercs(lambda i: i % 2 == 0) | {PAULIN}),
    (dict(kind="water"), mercs(lambda i: i % 3 == 2)),
    (dict(kind="electricity"), mercs(lambda i: i % 3 == 0) | {PAULIN}),
    (dict(offer="Offre A"), mercs(lambda i: i % 2 == 0)),
    (dict(offer="Offre B"), mercs(lambda i: i % 2 == 1) | {PAULIN}),
    (dict(contract_status="active", kind="gas"), mercs(lambda i: i % 3 == 1 and i % 2 == 0)),  # one contract
    (dict(overdue=True), mercs(lambda i: i % 5 == 0)),
    (dict(since_from=date(2019, 1, 1)), mercs(lambda i: i % 5 == 4)),
    (dict(since_to=date(2014, 12, 31)), {PAULIN}),
    (dict(since_from=date(2016, 1, 1), since_to=date(2016, 12, 31)), mercs(lambda i: i % 5 == 1)),
    (dict(kind="water", status="customer", postcode="69130"), mercs(lambda i: i % 3 == 2 and i % 2 == 0)),
    (dict(first_name="emile", overdue=True, offer="Offre A"), {merc(0)}),  # i multiple of 3, 5 and 2
    (dict(company="mercier"), set()),  # persons, not organisations
])
def test_each_criterion_filters_the_parties(data, criteria, expected):
    agent = data.lyon_sensitive if "birth_date" in criteria else data.lyon
    found = numbers(agent, Criteria(name="mercier", **criteria))
    assert len(found) == len(set(found))
    assert set(found) == expected


@pytest.mark.parametrize("name", ["mercier", "MERCIER", "Mèrcier", "merc", "  Mercier  ", "mercier-"])
def test_names_ignore_accents_case_and_match_word_starts(data, name):
    assert set(numbers(data.lyon, Criteria(name=name))) == MERCIERS


def test_name_words_match_in_any_order_and_only_at_word_starts(data):
    assert numbers(data.lyon, Criteria(name="LEFÈVRE hélène")) == ["CL0001001"]
    assert numbers(data.lyon, Criteria(name="helene lefevre")) == ["CL0001001"]
    assert numbers(data.lyon, Criteria(name="efevre")) == []
    assert numbers(data.lyon, Criteria(name="dupont moreau jean")) == ["CL0001002"]
    assert numbers(data.lyon, Criteria(first_name="Jean-Baptiste")) == ["CL0001002"]
    assert numbers(data.lyon, Criteria(first_name="baptiste")) == []  # the first name's start, not any word


def test_company_finds_organisations_only_in_scope(data):
    assert numbers(data.nice, Criteria(company="boulangerie saint")) == ["CL0001003"]
    assert numbers(data.nice, Criteria(company="saint-étienne")) == ["CL0001003"]
    assert numbers(data.lyon, Criteria(company="boulangerie")) == []
    assert numbers(data.nice, Criteria(company="mercier")) == []


def test_overdue_and_customer_since_on_the_example_files(data):
    assert set(numbers(data.lyon, Criteria(overdue=True))) == mercs(lambda i: i % 5 == 0) | {
        "CL0001001", "CL0001004", "CL0001002"}  # partially paid and open invoices past due; co-holder too
    assert numbers(data.lyon, Criteria(since_to=date(2010, 12, 31))) == ["CL0001002"]
    assert numbers(data.nice, Criteria(overdue=True, company="boulangerie")) == []  # its invoice is paid


def test_territory_covers_what_lies_under_it(data):
    lyon, agency = data.communes["lyon"], data.communes["lyon_agency"]
    assert set(numbers(data.lyon, Criteria(name="mercier", territory=data.villeurbanne.id))) == mercs(
        lambda i: i % 3 == 1)
    # A party is in a territory by its address or by one of its contracts: Paulin lives in Nice.
    assert set(numbers(data.lyon, Criteria(name="mercier", territory=lyon.id))) == mercs(
        lambda i: i % 3 == 0) | {PROSPECT, PAULIN}
    assert set(numbers(data.lyon, Criteria(name="mercier", territory=agency.id))) == MERCIERS


def test_a_territory_outside_the_scope_gives_nothing(data):
    outside = (data.communes["nice"], data.communes["nice_agency"], data.communes["lyon_agency"].parent)
    for territory in outside:
        for mode in ("parties", "contracts"):
            assert numbers(data.lyon, Criteria(mode=mode, name="mercier", territory=territory.id)) == []
    assert numbers(data.lyon, Criteria(name="mercier", territory=987654)) == []


# --- contracts mode -------------------------------------------------------------------------------

LYON_CONTRACTS = {contract_no(i) for i in range(N)} | {"MC-9000"}


def contracts(keep) -> set[str]:
    return {contract_no(i) for i in range(N) if keep(i)}


@pytest.mark.parametrize("criteria,expected", [
    (dict(), LYON_CONTRACTS),
    (dict(first_name="zoe"), contracts(lambda i: i % 3 == 1)),
    (dict(kind="water"), contracts(lambda i: i % 3 == 2)),
    (dict(postcode="69100"), contracts(lambda i: i % 3 == 1)),  # the service point's
    (dict(contract_status="terminated"), contracts(lambda i: i % 2 == 1)),
    (dict(offer="Offre B"), contracts(lambda i: i % 2 == 1) | {"MC-9000"}),
    (dict(overdue=True), contracts(lambda i: i % 5 == 0)),
    (dict(status="former_customer"), contracts(lambda i: i % 2 == 1)),  # the holder's
    (dict(commune="nice"), {"MC-9000"}),  # Paulin's address: party criteria are the holders'
    (dict(since_to=date(2014, 12, 31)), {"MC-9000"}),
    (dict(territory="villeurbanne"), contracts(lambda i: i % 3 == 1)),
    (dict(territory="lyon"), contracts(lambda i: i % 3 == 0) | {"MC-9000"}),  # the service point's territory
    (dict(kind="gas", contract_status="active", birth_date=date(1980, 1, 5)), {contract_no(4)}),
])
def test_contracts_mode_applies_party_criteria_to_the_holders(data, criteria, expected):
    if "territory" in criteria:
        key = criteria["territory"]
        criteria["territory"] = (data.villeurbanne if key == "villeurbanne" else data.communes[key]).id
    agent = data.lyon_sensitive if "birth_date" in criteria else data.lyon
    found = numbers(agent, Criteria(mode="contracts", name="mercier", **criteria))
    assert len(found) == len(set(found))
    assert set(found) == expected


@pytest.mark.parametrize("who", ["lyon", "nice"])
def test_contracts_mode_reads_exactly_the_contracts_in_scope(data, who):
    """The search applies the scope to the contract's service point: it must stay Contract's own scope."""
    agent = getattr(data, who)
    expected = set(session.execute(scoped_select(Contract, agent=agent, permission="party.read")
                                   .with_only_columns(Contract.number)).scalars())
    found = set()
    for status in ("active", "terminated", "pending"):
        found |= set(numbers(agent, Criteria(mode="contracts", contract_status=status)))
    assert expected and found == expected


def test_contracts_mode_on_the_example_files(data):
    assert numbers(data.lyon, Criteria(mode="contracts", name="garnier")) == ["EL-2019-000311"]  # co-holder
    assert set(numbers(data.lyon, Criteria(mode="contracts", postcode="69002"))) == {"EL-2019-000311",
                                                                                     "EA-2010-004512"}
    assert numbers(data.lyon, Criteria(mode="contracts", name="boulangerie")) == []
    assert numbers(data.nice, Criteria(mode="contracts", name="boulangerie")) == ["GA-2016-000877"]
    [row] = advanced.search_contracts(agent=data.lyon, criteria=Criteria(name="lefevre")).rows
    assert [h.number for h in row.holders] == ["CL0001001", "CL0001004"]  # holder first, then co-holder
    assert row.contract.service_point.national_id == "09876543210123"


# --- sorting and pagination -------------------------------------------------------------------------

def _expected_parties(numbers_: set[str], sort: str, descending: bool) -> list[str]:
    parties = {p.number: p for p in session.execute(select(Party).where(Party.number.in_(numbers_))).scalars()}
    names = dict(session.execute(select(PartySearch.party_id, PartySearch.name)).all())
    since = {}
    for party_id, start in session.execute(select(ContractParty.party_id, Contract.start_date)
                                           .join(Contract, Contract.id == ContractParty.contract_id)):
        since[party_id] = min(start, since.get(party_id, start))
    status_order = {"customer": 0, "prospect": 1, "former_customer": 2}
    key = {
        "name": lambda p: (names[p.id],),
        "number": lambda p: (p.number,),
        "commune": lambda p: (p.postal_code or "", (p.city or "").lower()),
        "status": lambda p: (status_order[p.status],),
        "since": lambda p: (since.get(p.id, date.max),),
    }[sort]
    ordered = sorted(parties.values(), key=lambda p: (*key(p), p.id), reverse=descending)
    if sort == "since" and descending:  # no contract: last either way
        ordered = [p for p in ordered if p.id in since] + [p for p in ordered if p.id not in since]
    return [p.number for p in ordered]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", advanced.PARTY_SORTS)
def test_party_sorts_are_total_and_pages_neither_repeat_nor_skip(data, sort, descending):
    found = numbers(data.lyon, Criteria(name="mercier"), sort=sort, descending=descending)
    assert len(found) == len(MERCIERS) == len(set(found))  # two pages, nothing twice, nothing missing
    assert found == _expected_parties(MERCIERS, sort, descending)


def _expected_contracts(sort: str, descending: bool) -> list[str]:
    rows = session.execute(select(Contract, Party.last_name, Party.first_name)
                           .join(ContractParty, ContractParty.contract_id == Contract.id)
                           .join(Party, Party.id == ContractParty.party_id)
                           .where(Contract.number.in_(LYON_CONTRACTS))).all()
    status_order = {"active": 0, "pending": 1, "terminated": 2}
    key = {
        "number": lambda c, last, first: (c.number,),
        "holder": lambda c, last, first: (f"{last} {first}".lower().replace("é", "e").replace("ï", "i"),),
        "start": lambda c, last, first: (c.start_date,),
        "status": lambda c, last, first: (status_order[c.status],),
        "offer": lambda c, last, first: (c.offer,),
    }[sort]
    return [r[0].number for r in sorted(rows, key=lambda r: (*key(*r), r[0].id), reverse=descending)]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", advanced.CONTRACT_SORTS)
def test_contract_sorts_are_total_and_pages_neither_repeat_nor_skip(data, sort, descending):
    found = numbers(data.lyon, Criteria(mode="contracts", name="mercier"), sort=sort, descending=descending)
    assert len(found) == len(LYON_CONTRACTS) == len(set(found))
    assert found == _expected_contracts(sort, descending)


def test_an_unknown_sort_gives_the_default(data):
    result = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"), sort="drop")
    assert result.sort == "name"
    assert [r.party.number for r in result.rows] == _expected_parties(MERCIERS, "name", False)[:25]
    assert advanced.search(agent=data.lyon, criteria=Criteria(mode="contracts", name="x"), sort="name").sort == "number"


def test_pages_hold_25_rows_and_count_them(data):
    first = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"))
    second = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"), page=2)
    assert (len(first.rows), first.has_next, first.count) == (25, True, 32)
    assert (len(second.rows), second.has_next, second.count) == (7, False, 32)
    beyond = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"), page=3)
    assert (beyond.rows, beyond.has_next) == ([], False)


def test_counting_stops_at_the_cap_and_never_counts_everything(data, monkeypatch):
    monkeypatch.setattr(advanced, "COUNT_CAP", 20)
    statements = []

    def listen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", listen)
    try:
        result = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"))
    finally:
        event.remove(connection, "before_cursor_execute", listen)
    assert result.count == 21 and result.more_than_cap
    assert not any("count(" in s.lower() for s in statements)  # the capped list of ids is the count
    [ids] = [s for s in statements if "ORDER BY" in s.upper()]  # phones and emails are not loaded
    assert "LIMIT" in ids.upper()


def test_pages_stop_at_the_cap(data, monkeypatch):
    monkeypatch.setattr(advanced, "MAX_PAGE", 1)
    monkeypatch.setattr(advanced, "COUNT_CAP", 25)
    result = advanced.search(agent=data.lyon, criteria=Criteria(name="mercier"), page=2)
    assert result.page == 1 and not result.has_next and result.last_page_reached


# --- scope -------------------------------------------------------------------------------------------

def test_out_of_scope_rows_never_appear(data):
    everything = Criteria(name="mercier", birth_date=None, overdue=True)
    assert not set(numbers(data.lyon, everything)) & NICETTES
    assert not set(numbers(data.lyon, Criteria(name="nicette"))) & NICETTES
    assert numbers(data.lyon, Criteria(mode="contracts", name="nicette")) == []
    assert set(numbers(data.nice, Criteria(name="mercier"))) == NICETTES | {PAULIN}  # Paulin lives in Nice
    assert numbers(data.nice, Criteria(mode="contracts", name="paulin")) == []  # his contract is in Lyon


def test_contract_criteria_ignore_contracts_out_of_scope(data):
    # Paulin is visible in Nice (his address), but his only contract is in Lyon.
    assert numbers(data.nice, Criteria(name="paulin")) == ["CL8300000"]
    assert numbers(data.nice, Criteria(name="paulin", contract_status="active")) == []
    assert numbers(data.nice, Criteria(name="paulin", since_to=date(2020, 1, 1))) == []
    [row] = advanced.search(agent=data.nice, criteria=Criteria(name="paulin")).rows
    assert row.customer_since is None
    [row] = advanced.search(agent=data.lyon, criteria=Criteria(name="paulin")).rows
    assert row.customer_since == date(2012, 6, 1)


def test_no_territory_or_no_permission_finds_nothing(data, communes):  # noqa: F811
    nobody = AgentFactory(roles=[role_with("accueil")], territories=[])
    no_read = AgentFactory(roles=[role_with("x", ["contact.create"])], territories=[communes["lyon_agency"]])
    for agent in (nobody, no_read):
        assert numbers(agent, Criteria(name="mercier")) == []
        assert numbers(agent, Criteria(mode="contracts", name="mercier")) == []


# --- odd input, at the service ----------------------------------------------------------------------

@pytest.mark.parametrize("criteria", [
    Criteria(name="%"), Criteria(name="_"), Criteria(name="' OR 1=1 --"), Criteria(name="x" * 500),
    Criteria(address="%_%"), Criteria(commune="%"), Criteria(postcode="6%"), Criteria(status="bogus"),
    Criteria(kind="' OR '1'='1"), Criteria(offer="%"), Criteria(mode="bogus", name="\x00"),
    Criteria(first_name="_%"), Criteria(company="\\"),
])
def test_odd_criteria_give_nothing_rather_than_everything_or_an_error(data, criteria):
    assert advanced.search(agent=data.lyon, criteria=criteria).rows == []


# --- the page ----------------------------------------------------------------------------------------

def _lyon_agent(login_as, data, role="accueil"):
    return login_as(role, territories=[data.communes["lyon_agency"]])


def test_the_page_shows_the_results_with_links_and_sortable_headers(client, login_as, data):
    _lyon_agent(login_as, data)
    response = client.get("/recherche/avancee/?name=Mercier&status=customer&sort=number&dir=desc")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "16 résultats" in html  # even i (15) and Paulin
    party = session.execute(select(Party).where(Party.number == merc(28))).scalar_one()
    assert f'href="/clients/{party.id}"' in html
    assert html.index(merc(28)) < html.index(merc(2))  # number, descending
    assert 'aria-sort="descending"' in html
    assert "sort=name" in html and "name=Mercier" in html and "status=customer" in html  # headers keep criteria
    assert "sort=number&amp;dir=" not in html.split('aria-sort="descending"')[1].split("</th>")[0]  # flips to asc
    assert 'id="export-csv"' not in html  # accueil may not export
    assert "Nicette" not in html


def test_contracts_mode_links_to_the_holder_with_the_contract(client, login_as, data):
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/?mode=contracts&name=lefevre").get_data(as_text=True)
    contract = session.execute(select(Contract).where(Contract.number == "EL-2019-000311")).scalar_one()
    helene = session.execute(select(Party).where(Party.number == "CL0001001")).scalar_one()
    assert f'href="/clients/{helene.id}?contract={contract.id}"' in html
    assert "Garnier" in html and "1 résultat" in html


def test_pagination_links_keep_the_criteria_and_the_sort(client, login_as, data):
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/?name=mercier&sort=since").get_data(as_text=True)
    assert "32 résultats" in html and "Page 1 sur 2" in html
    assert 'rel="next"' in html
    next_link = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "name=mercier" in next_link and "sort=since" in next_link and "page=2" in next_link
    second = client.get(next_link).get_data(as_text=True)
    assert "Page 2 sur 2" in second and 'rel="prev"' in second


def test_a_large_answer_says_more_than_the_cap(client, login_as, data, monkeypatch):
    monkeypatch.setattr(advanced, "COUNT_CAP", 20)
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/?name=mercier").get_data(as_text=True)
    assert "Plus de 20 résultats" in html and "Page 1 sur" not in html


def test_the_offer_list_holds_the_distinct_offers(client, login_as, data, monkeypatch):
    monkeypatch.setattr(advanced, "_offers_cache", {})
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/?name=mercier&offer=Offre+disparue").get_data(as_text=True)
    options = html.split('name="offer"')[1].split("</select>")[0]
    for offer in ("Offre A", "Offre B", "Eau résidentielle", "Gaz professionnel", "Électricité Base 6 kVA"):
        assert options.count(f'value="{offer}"') == 1
    assert '<option selected value="Offre disparue">' in options  # a bookmark's old offer stays shown
    assert "Aucun client ne correspond" in html


def test_the_quick_search_hands_its_text_over(client, login_as, data):
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/?q=lefevre").get_data(as_text=True)
    assert "Lefèvre" in html and "1 résultat" in html and 'value="lefevre"' in html


def test_the_territory_list_offers_only_the_agents_territories(client, login_as, data):
    _lyon_agent(login_as, data)
    html = client.get("/recherche/avancee/").get_data(as_text=True)
    select_html = html.split('name="territory"')[1].split("</select>")[0]
    assert "Villeurbanne" in select_html and "Nice" not in select_html
    response = client.get(f"/recherche/avancee/?name=mercier&territory={data.communes['nice'].id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Territoire inconnu ou hors de votre périmètre." in html and 'id="advanced-table"' not in html


@pytest.mark.parametrize("args,message", [
    ("", "Choisissez au moins un critère"),
    ("?name=&first_name=", "Choisissez au moins un critère"),
    ("?name=a", "Saisissez au moins 2 lettres ou chiffres."),
    ("?name=" + "x" * 500, "100 caractères au plus."),
    ("?name=%25", "Saisissez au moins 2 lettres ou chiffres."),
    ("?name=_", "Saisissez au moins 2 lettres ou chiffres."),
    ("?name=%25%25%25", "Saisissez au moins 2 lettres ou chiffres."),
    ("?name=%27+OR+1%3D1+--", "Aucun client ne correspond"),
    ("?address=%27%3B+DROP+TABLE+party%3B+--", "Aucun client ne correspond"),
    ("?birth_date=2024-13-45", "Date invalide"),
    ("?since_from=demain", "Date invalide"),
    ("?since_from=2024-02-01&since_to=2024-01-01", "La date de fin précède la date de début."),
    ("?status=unknown", "Valeur inconnue"),
    ("?contract_status=%27", "Valeur inconnue"),
    ("?kind=nuclear", "Valeur inconnue"),
    ("?postcode=6", "Code postal"),
    ("?postcode=%25", "Code postal"),
    ("?commune=_", "Saisissez au moins 2 lettres ou chiffres."),
    ("?territory=abc", "Territoire inconnu"),
    ("?offer=" + "o" * 500, "100 caractères au plus."),
    ("?name=mercier&page=-1", "32 résultats"),
    ("?name=mercier&page=abc", "32 résultats"),
    ("?name=mercier&page=99999999999999999999", "32 résultats"),
    ("?name=mercier&sort=drop", "32 résultats"),
    ("?name=mercier&sort=name%3B+DROP+TABLE+party&dir=sideways", "32 résultats"),
    ("?mode=bogus&name=mercier", "32 résultats"),
    ("?name=mercier&birth_date=05/01/1980", "1 résultat"),
])
def test_bad_input_gets_a_clear_answer_never_an_error(client, login_as, data, args, message):
    _lyon_agent(login_as, data, "back_office" if "birth_date=05" in args else "accueil")
    response = client.get(f"/recherche/avancee/{args}")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_the_page_needs_party_read(client, login_as, data):
    login_as("concepteur", territories=[data.communes["lyon_agency"]])
    assert client.get("/recherche/avancee/?name=mercier").status_code == 403


# --- CSV export ----------------------------------------------------------------------------------------

def _csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_export_needs_party_export(client, login_as, data):
    _lyon_agent(login_as, data, "accueil")
    assert client.get("/recherche/avancee/export.csv?name=mercier").status_code == 403
    assert session.execute(select(AuditEntry).where(AuditEntry.action == "export")).first() is None


def test_export_writes_every_row_in_scope_and_is_audited(client, login_as, data):
    agent = _lyon_agent(login_as, data, "superviseur")
    page = client.get("/recherche/avancee/?name=mercier").get_data(as_text=True)
    assert 'id="export-csv"' in page
    response = client.get("/recherche/avancee/export.csv?name=mercier&sort=number&dir=desc")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert rows[0][:5] == ["N° client", "Type", "Civilité", "Prénom", "Nom"]
    numbers_ = [row[0] for row in rows[1:]]
    assert numbers_ == sorted(MERCIERS, reverse=True)  # one line per result, all pages, the page's order
    assert not set(numbers_) & NICETTES and "Nicette" not in response.get_data(as_text=True)
    eloise = next(row for row in rows if row[0] == merc(2))
    assert eloise[3:5] == ["Éloïse", "Mercier"] and eloise[6] == "03/01/1980" and eloise[-1] == "01/03/2017"
    [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "export")).scalars()
    assert entry.actor_id == agent.id and entry.object_type == "party"
    assert entry.changes["rows"] == 32 and entry.changes["truncated"] is False
    assert entry.changes["criteria"] == {"mode": "parties", "name": "mercier"}
    assert entry.changes["sort"] == "-number"


def test_contracts_export(client, login_as, data):
    _lyon_agent(login_as, data, "superviseur")
    rows = _csv(client.get("/recherche/avancee/export.csv?mode=contracts&postcode=69002"))
    assert rows[0][0] == "N° contrat"
    assert {row[0] for row in rows[1:]} == {"EL-2019-000311", "EA-2010-004512"}
    electricity = next(row for row in rows if row[0] == "EL-2019-000311")
    assert electricity[-2] == "Mme Hélène Lefèvre | M. Noé Garnier" and electricity[-1] == "CL0001001 | CL0001004"
    [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "export")).scalars()
    assert entry.object_type == "contract" and entry.changes["rows"] == 2


def test_export_is_cut_at_the_cap_with_a_last_line_saying_so(client, login_as, data, monkeypatch):
    monkeypatch.setattr(advanced, "EXPORT_CAP", 10)
    monkeypatch.setattr(advanced, "EXPORT_CHUNK", 4)
    _lyon_agent(login_as, data, "superviseur")
    rows = _csv(client.get("/recherche/avancee/export.csv?name=mercier&sort=number"))
    assert [row[0] for row in rows[1:-1]] == sorted(MERCIERS)[:10]
    assert rows[-1][0].startswith("# Export tronqué à 10 lignes")
    [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "export")).scalars()
    assert entry.changes["rows"] == 10 and entry.changes["truncated"] is True


def test_export_neutralises_spreadsheet_formulas(client, login_as, data):
    session.add(Party(number="CL8400000", last_name="=HYPERLINK(\"http://x\")", first_name="Mercier",
                      street="@SUM(A1)", address_extra=" \n=cmd|' /C calc'!A0", status="prospect",
                      territory_id=data.communes["lyon"].id))
    session.commit()
    _lyon_agent(login_as, data, "superviseur")
    rows = _csv(client.get("/recherche/avancee/export.csv?name=hyperlink"))
    [row] = rows[1:]
    assert row[4] == "'=HYPERLINK(\"http://x\")" and row[8] == "'@SUM(A1)"
    assert row[9] == "' \n=cmd|' /C calc'!A0"  # blanks before the "=" do not hide it


def test_export_refuses_empty_or_invalid_criteria(client, login_as, data):
    _lyon_agent(login_as, data, "superviseur")
    for args in ("", "?name=a", "?territory=" + str(data.communes["nice"].id)):
        response = client.get(f"/recherche/avancee/export.csv{args}")
        assert response.status_code == 302 and "/recherche/avancee/" in response.headers["Location"]
    assert session.execute(select(AuditEntry).where(AuditEntry.action == "export")).first() is None


def test_export_of_another_scope_shows_only_that_scope(client, login_as, data):
    _lyon_agent(login_as, data, "superviseur")
    lyon_csv = client.get("/recherche/avancee/export.csv?mode=contracts&overdue=1").get_data(as_text=True)
    assert "NC-0000" not in lyon_csv and "Nicette" not in lyon_csv and "MC-0005" in lyon_csv

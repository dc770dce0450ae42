"""The advanced search: many criteria combined, customers or contracts, paginated, sortable, and
the same rows exported to CSV.

Every statement carries the scope helper's condition: ``scoped_select(Party)``, or for contracts
``scope_condition(ServicePoint)`` on the joined service point (a contract's scope is its service
point's), so the scope is in the SQL and nothing is filtered in Python. Criteria on contracts,
invoices and "customer since" only look at contracts the agent may read, so they reveal nothing
about contracts out of scope. Rows are read again through the scope before they are shown.

Speed at a million customers (PostgreSQL): name, first-name, company, address, postcode and
commune words become ``LIKE '% word%'`` on party_search, which its trigram indexes serve; the
exact columns (status, birth date, postcode prefix, INSEE code) then refine. Nothing is ever
counted in full: one statement reads the ids of the first COUNT_CAP + 1 rows in order, which
gives the count ("plus de 1000"), whether a next page exists, and the page itself.
"""
from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import Select, case, false, func, select
from sqlalchemy.orm import aliased, contains_eager, lazyload
from sqlalchemy.sql.elements import ColumnElement
from wtforms import BooleanField, DateField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, Length, Optional, Regexp, ValidationError

from app.contracts.models import (
    Contract,
    ContractParty,
    ContractRole,
    ContractStatus,
    Invoice,
    ServicePoint,
    ServicePointKind,
)
from app.contracts.service import unpaid_condition
from app.db import session
from app.errors import BusinessError
from app.labels import choices, label
from app.parties import sensitive
from app.parties.models import Party, PartyKind, PartyStatus
from app.parties.overview import local_today
from app.search.identifiers import HOLDING_ROLES
from app.search.models import PartySearch
from app.search.normalise import normalise, tokens
from app.security.models import Agent, Territory
from app.security.scope import scope_condition, scoped_select, visible_territory_ids
from app.web import csv_cell

READ = "party.read"
PARTIES, CONTRACTS = "parties", "contracts"
MODES = (PARTIES, CONTRACTS)
PAGE_SIZE = 25
COUNT_CAP = 1000  # counted exactly up to here, then "plus de 1000"
MAX_PAGE = COUNT_CAP // PAGE_SIZE  # the pages cover what was counted; beyond: refine, or export
EXPORT_CAP = 100_000
EXPORT_CHUNK = 1000
MAX_TEXT = 100
MAX_WORDS = 6
OFFERS_TTL = 300.0  # seconds; offers change with the billing system's catalogue, rarely
INSEE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")

PARTY_SORTS = ("name", "number", "commune", "status", "since")
CONTRACT_SORTS = ("number", "holder", "start", "status", "offer")
DEFAULT_SORT = {PARTIES: "name", CONTRACTS: "number"}


# --- criteria -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Criteria:
    """What the agent asked for. Field names are the URL's parameter names (bookmarks)."""

    mode: str = PARTIES
    name: str = ""
    first_name: str = ""
    birth_date: date | None = None
    company: str = ""
    address: str = ""
    postcode: str = ""
    commune: str = ""
    territory: int | None = None
    status: str = ""
    contract_status: str = ""
    kind: str = ""
    offer: str = ""
    overdue: bool = False
    since_from: date | None = None
    since_to: date | None = None

    def is_empty(self) -> bool:
        return not any(v for k, v in asdict(self).items() if k != "mode")

    def as_args(self) -> dict[str, str]:
        """The non-empty criteria as URL parameters (links, sort headers, export, audit)."""
        args = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, "", False):
                continue
            args[f.name] = "1" if value is True else value.isoformat() if isinstance(value, date) else str(value)
        return args


def _words(text: str) -> list[str]:
    return tokens(text[:MAX_TEXT])[:MAX_WORDS]


def _searchable(_form, field) -> None:
    if field.data and not any(len(w) >= 2 for w in _words(field.data)):
        raise ValidationError(_("Saisissez au moins 2 lettres ou chiffres."))


def _commune(_form, field) -> None:
    if field.data and not INSEE_RE.match(field.data.upper()):
        _searchable(_form, field)


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class FrenchDateField(DateField):
    """A date typed as the browser sends it (2024-05-17) or as people write it (17/05/2024)."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%Y-%m-%d", "%d/%m/%Y"], **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("Date invalide : saisissez-la sous la forme JJ/MM/AAAA.")) from None


def _enum(codes, message):
    return [Optional(), AnyOf(list(codes), message=message)]


_TEXT = {"filters": [_strip], "render_kw": {"maxlength": MAX_TEXT}}
_TOO_LONG = _l("%(max)d caractères au plus.")  # Length fills in max
BIRTH_DATE_REFUSED = _l("La recherche par date de naissance est réservée aux agents habilités aux données "
                        "sensibles.")
_UNKNOWN = _l("Valeur inconnue : choisissez dans la liste.")


class AdvancedSearchForm(FlaskForm):
    """The criteria, read from the query string (GET: no CSRF token, the URL is the bookmark)."""

    mode = RadioField(_l("Rechercher"), choices=[SelectChoice(PARTIES, _l("Clients")),
                                                SelectChoice(CONTRACTS, _l("Contrats"))],
                      default=PARTIES, validate_choice=False)
    name = StringField(_l("Nom"), validators=[Optional(), Length(max=MAX_TEXT, message=_TOO_LONG), _searchable],
                       **_TEXT)
    first_name = StringField(_l("Prénom"), validators=[Optional(), Length(max=MAX_TEXT, message=_TOO_LONG),
                                                       _searchable], **_TEXT)
    birth_date = FrenchDateField(_l("Date de naissance"), validators=[Optional()])
    company = StringField(_l("Raison sociale"), validators=[Optional(), Length(max=MAX_TEXT, message=_TOO_LONG),
                                                           _searchable], **_TEXT)
    address = StringField(_l("Adresse"), validators=[Optional(), Length(max=MAX_TEXT, message=_TOO_LONG),
                                                     _searchable], **_TEXT)
    postcode = StringField(_l("Code postal"), filters=[_strip], render_kw={"maxlength": 5, "inputmode": "numeric"},
                           validators=[Optional(), Regexp(r"^\d{2,5}$", message=_l(
                               "Code postal : de 2 à 5 chiffres (début ou code complet)."))])
    commune = StringField(_l("Commune (nom ou code INSEE)"), validators=[
        Optional(), Length(max=MAX_TEXT, message=_TOO_LONG), _commune], **_TEXT)
    territory = SelectField(_l("Territoire"), choices=[], validate_choice=False)
    status = SelectField(_l("Statut du client"), validate_choice=False,
                         validators=_enum(PartyStatus.ALL, _UNKNOWN))
    contract_status = SelectField(_l("Statut du contrat"), validate_choice=False,
                                  validators=_enum(ContractStatus.ALL, _UNKNOWN))
    kind = SelectField(_l("Type de point de desserte"), validate_choice=False,
                       validators=_enum(ServicePointKind.ALL, _UNKNOWN))
    offer = SelectField(_l("Offre"), validate_choice=False,
                        validators=[Optional(), Length(max=MAX_TEXT, message=_TOO_LONG)])
    overdue = BooleanField(_l("Avec des factures échues impayées"), false_values=(False, "false", "", "0", "non"))
    since_from = FrenchDateField(_l("Client depuis, à partir du"), validators=[Optional()])
    since_to = FrenchDateField(_l("jusqu'au"), validators=[Optional()])

    def validate_territory(self, field) -> None:
        if field.data and field.data not in {choice.value for choice in field.choices}:
            raise ValidationError(_("Territoire inconnu ou hors de votre périmètre."))

    def validate_since_to(self, field) -> None:
        if field.data and self.since_from.data and self.since_from.data > field.data:
            raise ValidationError(_("La date de fin précède la date de début."))

    def criteria(self) -> Criteria:
        return Criteria(
            mode=self.mode.data if self.mode.data in MODES else PARTIES,
            name=self.name.data or "", first_name=self.first_name.data or "", birth_date=self.birth_date.data,
            company=self.company.data or "", address=self.address.data or "", postcode=self.postcode.data or "",
            commune=self.commune.data or "", territory=int(self.territory.data) if self.territory.data else None,
            status=self.status.data or "", contract_status=self.contract_status.data or "",
            kind=self.kind.data or "", offer=self.offer.data or "", overdue=bool(self.overdue.data),
            since_from=self.since_from.data, since_to=self.since_to.data)


def territory_choices(agent: Agent) -> list[SelectChoice]:
    """The territories the agent may see (its own and everything under them), as a tree."""
    territories = list(session.execute(select(Territory).where(Territory.id.in_(visible_territory_ids(agent)))
                                       .order_by(Territory.path)).scalars())
    top = min((t.depth for t in territories), default=0)
    return [SelectChoice(str(t.id), f"{'· ' * (t.depth - top)}{t.name}") for t in territories]


_offers_cache: dict[str, tuple[float, list[str]]] = {}


def offers() -> list[str]:
    """The distinct offers of all contracts. DISTINCT reads the whole table at a million
    contracts, and the list is no secret (the billing system's catalogue): keep it a few minutes."""
    key = str(session.get_bind().engine.url)
    cached = _offers_cache.get(key)
    if cached and time.monotonic() - cached[0] < OFFERS_TTL:
        return cached[1]
    values = list(session.execute(select(Contract.offer).where(Contract.offer.is_not(None)).distinct()
                                  .order_by(Contract.offer)).scalars())
    _offers_cache[key] = (time.monotonic(), values)
    return values


def parse(args, *, agent: Agent) -> tuple[AdvancedSearchForm, Criteria | None]:
    """The form filled from the query string, and its criteria when they are valid."""
    form = AdvancedSearchForm(formdata=args, meta={"csrf": False})
    form.territory.choices = [SelectChoice("", _("Tous mes territoires")), *territory_choices(agent)]
    for select_field, kind in ((form.status, "party_status"), (form.contract_status, "contract_status"),
                               (form.kind, "service_point_kind")):
        select_field.choices = [SelectChoice("", _("Indifférent")), *(SelectChoice(*c) for c in choices(kind))]
    known = offers()
    offer = args.get("offer") or ""  # a bookmark may name an offer that has gone: keep showing it
    form.offer.choices = [SelectChoice("", _("Indifférent")), *(SelectChoice(o, o) for o in known),
                          *([SelectChoice(offer, offer)] if offer and offer not in known else [])]
    valid = form.validate()
    if form.birth_date.data is not None and not sensitive.may_see(agent):
        # The birth date is sensitive (app.parties.sensitive): searching by it would tell it.
        form.birth_date.errors = [*form.birth_date.errors, str(BIRTH_DATE_REFUSED)]
        valid = False
    if not valid:
        return form, None
    return form, form.criteria()


def sort_from(args, mode: str) -> tuple[str, bool]:
    """The sort key and direction asked for; anything unknown gives the mode's default."""
    allowed = PARTY_SORTS if mode == PARTIES else CONTRACT_SORTS
    key = args.get("sort")
    return (key if key in allowed else DEFAULT_SORT[mode]), args.get("dir") == "desc"


def page_from(value) -> int:
    """The page number asked for, brought back between 1 and MAX_PAGE."""
    try:
        page = int(value)
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), MAX_PAGE)


# --- conditions ---------------------------------------------------------------------------------

def _word_prefixes(column, text: str) -> list[ColumnElement[bool]]:
    """Every typed word as a word start of the padded, normalised column (trigram index)."""
    words = _words(text)
    if not words:
        return [false()]  # typed, but nothing searchable in it: match nothing rather than everything
    return [column.like(f"% {w}%") for w in words]  # normalised words are [a-z0-9]: nothing to escape


def _in_address(pattern: str) -> list[ColumnElement[bool]]:
    """A LIKE on the address: the trigram index is on name || address (which ends with the
    address, so the pattern means the same there), the address column decides."""
    return [PartySearch.text.like(pattern), PartySearch.address.like(pattern)]


def _territory_subtree(agent: Agent, territory_id: int) -> Select | None:
    """Ids of the territory and everything under it, if the agent may see it; else None."""
    path = session.execute(select(Territory.path).where(
        Territory.id == territory_id, Territory.id.in_(visible_territory_ids(agent)))).scalar_one_or_none()
    if path is None:
        return None
    return select(Territory.id).where(Territory.path.startswith(path, autoescape=True))


def _contracts_in_scope(agent: Agent, *columns) -> Select:
    """The contracts the agent may read, joined to their service point: ``scoped_select(Contract)``
    with the scope applied to the joined service point. A contract's scope is its service point's
    (Contract.scope_clause); written this way, PostgreSQL reads each service point once, for the
    scope and for the service-point criteria together, instead of once for each (1.9 s → 0.36 s
    for "water contracts" in an agency, at a million contracts)."""
    return (select(*(columns or (Contract,))).select_from(Contract)
            .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
            .where(scope_condition(ServicePoint, agent=agent, permission=READ)))


def _held_in_scope(agent: Agent, *columns) -> Select:
    """The contracts the agent may read, with the parties holding or co-holding them."""
    return (_contracts_in_scope(agent, *columns).join(ContractParty, ContractParty.contract_id == Contract.id)
            .where(ContractParty.role.in_(HOLDING_ROLES)))


def _customer_since(agent: Agent) -> ColumnElement:
    """The earliest start of the party's contracts (held or co-held) that the agent may read."""
    return (_held_in_scope(agent, func.min(Contract.start_date)).where(ContractParty.party_id == Party.id)
            .correlate(Party).scalar_subquery())


def _overdue(contract_id) -> ColumnElement[bool]:
    """The contract has an invoice still unpaid after its due date (app.contracts.service.unpaid_condition)."""
    return contract_id.in_(select(Invoice.contract_id).where(
        unpaid_condition(), Invoice.due_on < local_today()).correlate(None))


def _party_conditions(c: Criteria, agent: Agent) -> list[ColumnElement[bool]]:
    """Criteria on the party itself (in contracts mode: on the contract's holders)."""
    conditions = []
    if c.name:
        conditions += _word_prefixes(PartySearch.name, c.name)
    if c.first_name:
        # The first name is also in the name text: its trigram index narrows, the column decides.
        conditions += [*_word_prefixes(PartySearch.name, c.first_name),
                       PartySearch.first_name.like(f"{normalise(c.first_name[:MAX_TEXT])}%")]
    if c.birth_date:
        if not sensitive.may_see(agent):  # parse refuses it first; a criteria built elsewhere too
            raise BusinessError(BIRTH_DATE_REFUSED, field="birth_date")
        conditions.append(Party.birth_date == c.birth_date)
    if c.company:
        conditions += [*_word_prefixes(PartySearch.name, c.company), Party.kind == PartyKind.ORGANISATION]
    if c.address:
        words = _words(c.address)
        conditions += [cond for w in words for cond in _in_address(f"% {w}%")] if words else [false()]
    if c.commune:
        code = c.commune.strip().upper()
        if INSEE_RE.match(code):
            conditions.append(Party.insee_code == code)
        else:  # the city closes the address text: " 12 rue x 69003 lyon "
            phrase = " ".join(_words(c.commune))
            conditions += _in_address(f"% {phrase} ") if phrase else [false()]
    if c.status:
        conditions.append(Party.status == c.status)
    if c.since_from or c.since_to:
        # One pass over the contracts in scope, grouped, rather than one subquery per party.
        # correlate(None): in contracts mode the enclosing query reads contract too.
        first_start = func.min(Contract.start_date)
        customers = _held_in_scope(agent, ContractParty.party_id).group_by(ContractParty.party_id).correlate(None)
        if c.since_from:
            customers = customers.having(first_start >= c.since_from)
        if c.since_to:
            customers = customers.having(first_start <= c.since_to)
        conditions.append(Party.id.in_(customers))
    return conditions


def _postcode(column, postcode: str) -> ColumnElement[bool]:
    if not postcode.isdigit():
        return false()
    return column == postcode if len(postcode) == 5 else column.startswith(postcode)


def _contract_conditions(c: Criteria) -> list[ColumnElement[bool]]:
    """Criteria on a contract and its service point (joined)."""
    return [condition for wanted, condition in (
        (c.contract_status, Contract.status == c.contract_status), (c.kind, ServicePoint.kind == c.kind),
        (c.offer, Contract.offer == c.offer)) if wanted]


def _parties_statement(agent: Agent, c: Criteria) -> Select:
    stmt = (scoped_select(Party, agent=agent, permission=READ)
            .join(PartySearch, PartySearch.party_id == Party.id)  # every party has its row
            .where(*_party_conditions(c, agent)))
    if c.postcode:
        stmt = stmt.where(_postcode(Party.postal_code, c.postcode),  # digits only, or nothing
                          *_in_address(f"% {normalise(c.postcode)}%"))  # the index narrows
    contract_conditions = _contract_conditions(c)
    if contract_conditions:  # one contract having all of them, not one each
        stmt = stmt.where(Party.id.in_(_held_in_scope(agent, ContractParty.party_id).where(*contract_conditions)))
    if c.overdue:
        stmt = stmt.where(Party.id.in_(_held_in_scope(agent, ContractParty.party_id).where(_overdue(Contract.id))))
    if c.territory is not None:
        subtree = _territory_subtree(agent, c.territory)
        stmt = stmt.where(false() if subtree is None else Party.scope_clause(subtree))
    return stmt


def _contracts_statement(agent: Agent, c: Criteria) -> Select:
    stmt = _contracts_in_scope(agent)
    party_conditions = _party_conditions(c, agent)
    if party_conditions:
        holder = aliased(ContractParty)
        stmt = stmt.where(Contract.id.in_(
            select(holder.contract_id).join(Party, Party.id == holder.party_id)
            .outerjoin(PartySearch, PartySearch.party_id == Party.id)
            .where(holder.role.in_(HOLDING_ROLES), *party_conditions)))
    if c.postcode:
        stmt = stmt.where(_postcode(ServicePoint.postal_code, c.postcode))
    stmt = stmt.where(*_contract_conditions(c))
    if c.overdue:
        stmt = stmt.where(_overdue(Contract.id))
    if c.territory is not None:
        subtree = _territory_subtree(agent, c.territory)
        stmt = stmt.where(false() if subtree is None else ServicePoint.scope_clause(subtree))
    return stmt


# --- sorting ------------------------------------------------------------------------------------

_PARTY_STATUS_ORDER = {PartyStatus.CUSTOMER: 0, PartyStatus.PROSPECT: 1, PartyStatus.FORMER_CUSTOMER: 2}
_CONTRACT_STATUS_ORDER = {ContractStatus.ACTIVE: 0, ContractStatus.PENDING: 1, ContractStatus.TERMINATED: 2}


def _ordered(stmt: Select, keys: tuple, tie_breaker, descending: bool, nulls_last: bool = False) -> Select:
    """ORDER BY the keys, then the id: equal keys keep one order, so pages neither repeat nor skip."""
    clauses = [key.desc() if descending else key.asc() for key in keys]
    if nulls_last:
        clauses = [clause.nulls_last() for clause in clauses]
    if tie_breaker is not None:  # None: the key is unique itself
        clauses.append(tie_breaker.desc() if descending else tie_breaker.asc())
    return stmt.order_by(*clauses)


def _sorted_parties(stmt: Select, agent: Agent, sort: str, descending: bool) -> Select:
    if sort == "number":
        return _ordered(stmt, (Party.number,), None, descending)
    if sort == "commune":  # shown as "69003 Lyon": postcode first, so both databases agree whatever the collation
        return _ordered(stmt, (func.coalesce(Party.postal_code, ""), func.coalesce(func.lower(Party.city), "")),
                        Party.id, descending)
    if sort == "status":
        return _ordered(stmt, (case(_PARTY_STATUS_ORDER, value=Party.status, else_=9),), Party.id, descending)
    if sort == "since":  # prospects, without contract, last either way
        return _ordered(stmt, (_customer_since(agent),), Party.id, descending, nulls_last=True)
    # Normalised (no accents); with the B-tree on (name, party_id), a page of a broad search reads
    # the index in order and stops, instead of sorting every match.
    return _ordered(stmt, (PartySearch.name,), PartySearch.party_id, descending)


def _sorted_contracts(stmt: Select, sort: str, descending: bool) -> Select:
    if sort == "holder":
        holder = aliased(ContractParty)
        name = (select(func.min(PartySearch.name)).join(holder, holder.party_id == PartySearch.party_id)
                .where(holder.contract_id == Contract.id, holder.role == ContractRole.HOLDER)
                .correlate(Contract).scalar_subquery())
        return _ordered(stmt, (func.coalesce(name, ""),), Contract.id, descending)
    if sort == "start":
        return _ordered(stmt, (Contract.start_date,), Contract.id, descending)
    if sort == "status":
        return _ordered(stmt, (case(_CONTRACT_STATUS_ORDER, value=Contract.status, else_=9),), Contract.id,
                        descending)
    if sort == "offer":
        return _ordered(stmt, (func.coalesce(Contract.offer, ""),), Contract.id, descending)
    return _ordered(stmt, (Contract.number,), None, descending)


# --- results ------------------------------------------------------------------------------------

@dataclass
class PartyRow:
    party: Party
    customer_since: date | None


@dataclass
class ContractRow:
    contract: Contract
    holders: list[Party] = field(default_factory=list)  # holder first, then co-holders

    @property
    def holder(self) -> Party | None:
        return self.holders[0] if self.holders else None


@dataclass
class ResultPage:
    mode: str
    rows: list
    page: int
    has_next: bool
    count: int  # exact up to COUNT_CAP; COUNT_CAP + 1 means "more"
    sort: str
    descending: bool

    @property
    def more_than_cap(self) -> bool:
        return self.count > COUNT_CAP

    @property
    def last_page_reached(self) -> bool:
        """Deeper pages are not served: there are more rows than the pages show."""
        return self.page >= MAX_PAGE and self.more_than_cap


def _capped_count(ids: Select, cap: int) -> int:
    """How many rows, counting no further than cap + 1 (never a count(*) over a million)."""
    return session.execute(select(func.count()).select_from(ids.order_by(None).limit(cap + 1).subquery())).scalar_one()


_NO_CONTACT_DETAILS = (lazyload(Party.phones), lazyload(Party.emails))  # not shown, not exported


def _party_rows(agent: Agent, ids: list[int]) -> list[PartyRow]:
    """The parties (read again through the scope) with their "customer since", in the ids' order."""
    if not ids:
        return []
    found = {party.id: (party, since) for party, since in session.execute(
        scoped_select(Party, agent=agent, permission=READ).add_columns(_customer_since(agent))
        .options(*_NO_CONTACT_DETAILS).where(Party.id.in_(ids)))}
    return [PartyRow(*found[i]) for i in ids if i in found]


def _holders(agent: Agent, contract_ids: list[int]) -> dict[int, list[Party]]:
    holders: dict[int, list[Party]] = {}
    role = aliased(ContractParty)  # the party scope clause reads contract_party itself
    stmt = (scoped_select(Party, agent=agent, permission=READ).add_columns(role.contract_id)
            .options(*_NO_CONTACT_DETAILS).join(role, role.party_id == Party.id)
            .where(role.contract_id.in_(contract_ids), role.role.in_(HOLDING_ROLES))
            .order_by(role.role != ContractRole.HOLDER, Party.id))
    for party, contract_id in session.execute(stmt):
        if party not in holders.setdefault(contract_id, []):
            holders[contract_id].append(party)
    return holders


def _contract_rows(agent: Agent, ids: list[int]) -> list[ContractRow]:
    """The contracts (read again through the scope) with their service point and holders."""
    if not ids:
        return []
    found = {c.id: c for c in session.execute(
        _contracts_in_scope(agent).options(contains_eager(Contract.service_point)).where(Contract.id.in_(ids))
    ).scalars()}
    holders = _holders(agent, list(found))
    return [ContractRow(contract=found[i], holders=holders.get(i, [])) for i in ids if i in found]


def _ids_statement(agent: Agent, criteria: Criteria, sort: str, descending: bool) -> Select:
    """The ids of every matching row, in the order of the pages."""
    if criteria.mode == CONTRACTS:
        stmt = _contracts_statement(agent, criteria).with_only_columns(Contract.id)
        return _sorted_contracts(stmt, sort, descending)
    stmt = _parties_statement(agent, criteria).with_only_columns(Party.id)
    return _sorted_parties(stmt, agent, sort, descending)


def search(*, agent: Agent, criteria: Criteria, sort: str | None = None, descending: bool = False,
           page: int = 1) -> ResultPage:
    """One page of the parties or contracts (criteria.mode) matching every criterion, in scope.

    One statement reads the ids of the first COUNT_CAP + 1 rows in order: their number is the
    count (capped), and the page is a slice of them. The database does the expensive part (the
    scope, the criteria, the sort) once, and a page never needs a second, counting, statement."""
    mode = criteria.mode if criteria.mode in MODES else PARTIES
    sort, descending = sort_from({"sort": sort, "dir": "desc" if descending else ""}, mode)
    page = page_from(page)
    stmt = _ids_statement(agent, criteria, sort, descending).limit(COUNT_CAP + 1)
    ids = list(session.execute(stmt).scalars())
    start = (page - 1) * PAGE_SIZE
    page_ids = ids[start:start + PAGE_SIZE]
    has_next = len(ids) > start + PAGE_SIZE and page < MAX_PAGE
    rows = _contract_rows(agent, page_ids) if mode == CONTRACTS else _party_rows(agent, page_ids)
    return ResultPage(mode, rows, page, has_next, len(ids), sort, descending)


def search_parties(*, agent: Agent, criteria: Criteria, sort: str | None = None, descending: bool = False,
                   page: int = 1) -> ResultPage:
    """One page of the parties matching every criterion, in the agent's scope."""
    return search(agent=agent, criteria=replace(criteria, mode=PARTIES), sort=sort, descending=descending,
                  page=page)


def search_contracts(*, agent: Agent, criteria: Criteria, sort: str | None = None, descending: bool = False,
                     page: int = 1) -> ResultPage:
    """One page of the contracts matching every criterion; party criteria apply to their holders."""
    return search(agent=agent, criteria=replace(criteria, mode=CONTRACTS), sort=sort, descending=descending,
                  page=page)


# --- CSV export -----------------------------------------------------------------------------------

PARTY_COLUMNS = [_l("N° client"), _l("Type"), _l("Civilité"), _l("Prénom"), _l("Nom"), _l("Raison sociale"),
                 _l("Date de naissance"), _l("Statut"), _l("Adresse"), _l("Complément"), _l("Code postal"),
                 _l("Commune"), _l("Code INSEE"), _l("Client depuis")]
CONTRACT_COLUMNS = [_l("N° contrat"), _l("Statut"), _l("Offre"), _l("Début"), _l("Fin"),
                    _l("Type de point de desserte"), _l("PDL / PCE / n° de point"), _l("Adresse du point"),
                    _l("Code postal"), _l("Commune"), _l("Titulaires"), _l("N° client des titulaires")]


def export_count(*, agent: Agent, criteria: Criteria) -> int:
    """How many rows the export will write, counted up to EXPORT_CAP + 1 (for the audit trail)."""
    return _capped_count(_ids_statement(agent, criteria, DEFAULT_SORT[criteria.mode], False), EXPORT_CAP)


def _party_line(row: PartyRow, *, allowed: bool) -> list:
    """One party's cells; the birth date (sensitive) masked unless ``allowed`` (app.parties.sensitive)."""
    p = row.party
    birth_date = p.birth_date if allowed or p.birth_date is None else sensitive.MASKED_DATE
    return [p.number, label(p.kind, "party_kind"), p.civility, p.first_name, p.last_name, p.company_name,
            birth_date, label(p.status, "party_status"), p.street, p.address_extra, p.postal_code, p.city,
            p.insee_code, row.customer_since]


def _contract_line(row: ContractRow) -> list:
    c, sp = row.contract, row.contract.service_point
    return [c.number, label(c.status, "contract_status"), c.offer, c.start_date, c.end_date,
            label(sp.kind, "service_point_kind"), sp.national_id,
            ", ".join(filter(None, (sp.street, sp.address_extra))), sp.postal_code, sp.city,
            " | ".join(h.display_name for h in row.holders), " | ".join(h.number for h in row.holders)]


def export_csv(*, agent: Agent, criteria: Criteria, sort: str | None = None,
               descending: bool = False) -> Iterator[str]:
    """The CSV text of every matching row (all pages, same scope, same order), chunk by chunk:
    the ids come from one streamed statement (yield_per: a server-side cursor on PostgreSQL) and
    the rows are loaded EXPORT_CHUNK at a time, so memory stays flat whatever the size. UTF-8
    with a BOM and ";" for French Excel; past EXPORT_CAP rows, a last comment line says so.
    Sensitive values (the birth date) are masked unless the agent holds party.sensitive."""
    mode = criteria.mode if criteria.mode in MODES else PARTIES
    allowed = sensitive.may_see(agent)
    sort, descending = sort_from({"sort": sort, "dir": "desc" if descending else ""}, mode)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([str(c) for c in (CONTRACT_COLUMNS if mode == CONTRACTS else PARTY_COLUMNS)])
    yield "\ufeff" + flush()
    stmt = _ids_statement(agent, criteria, sort, descending).limit(EXPORT_CAP + 1)
    seen = 0
    result = session.execute(stmt.execution_options(yield_per=EXPORT_CHUNK)).scalars()
    try:
        for chunk in result.partitions():
            ids = list(chunk)[:max(EXPORT_CAP - seen, 0)]
            seen += len(chunk)
            if mode == CONTRACTS:
                lines = map(_contract_line, _contract_rows(agent, ids))
            else:
                lines = (_party_line(row, allowed=allowed) for row in _party_rows(agent, ids))
            for line in lines:
                writer.writerow([csv_cell(v) for v in line])
            yield flush()
    finally:
        result.close()
    if seen > EXPORT_CAP:
        cap = f"{EXPORT_CAP:,}".replace(",", " ")
        writer.writerow([_("# Export tronqué à %(cap)s lignes : précisez la recherche.", cap=cap)])
        yield flush()

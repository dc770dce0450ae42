"""The quick search: one typed text → the customers and contracts it designates, in the agent's scope.

Three kinds of match, in one answer:
  1. exact identifiers (customer number, contract, PDL/PCE, meter, invoice, phone, email), on
     their unique indexes (app.search.identifiers);
  2. word prefixes of the name or address, every typed word in any order ("lefevre jean",
     "saint etienne", "dupont lyon"), accents, case and hyphens ignored;
  3. when 2 finds nothing, names with a typo ("Lefebre" → Lefèvre, "Dupond" → Dupont).

The database only proposes a bounded set of candidates (its trigram index: pg_trgm on
PostgreSQL, FTS5 on SQLite); which of them match and in what order is decided here, in Python,
by the same code on both back ends, so the two give the same answers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, String, and_, false, func, literal, literal_column, or_, select, text, true
from sqlalchemy.sql.elements import ColumnElement

from app.contracts.models import Contract, ContractParty, ContractStatus
from app.db import session
from app.parties.models import Party, PartyPhone, PartyStatus
from app.parties.phones import normalise_phone
from app.search.identifiers import HOLDING_ROLES, find_by_identifier
from app.search.models import PartySearch
from app.search.normalise import normalise, similarity
from app.security.models import Agent
from app.security.scope import scoped_select

READ = "party.read"
MAX_QUERY = 200  # characters considered; the rest of a pasted paragraph is ignored
MAX_WORDS = 6
CANDIDATES = 200  # rows the database proposes per phase, before ranking
FUZZY_POOL = 500  # closest spellings in the whole base that the scope is then checked on
FUZZY_MIN_LENGTH = 4  # shorter words are only matched as prefixes
# Trigram similarity a misspelt word needs to the right one (lefebre/lefevre 0.45, dupond/dupont
# 0.56); one wrong letter in a short word leaves fewer trigrams intact (pacis/paris 0.33).
FUZZY_THRESHOLD, SHORT_FUZZY_THRESHOLD, SHORT_WORD = 0.4, 0.3, 5
POSITION_STEP = 0.01  # per word of the name before the matching one (at most 4): never a whole class
HIDDEN_CAP = 100  # "100+ résultats hors de votre périmètre": counted up to 101
STATUS_ORDER = {PartyStatus.CUSTOMER: 0, PartyStatus.PROSPECT: 1, PartyStatus.FORMER_CUSTOMER: 2}

FIELD_LABELS = {
    "name": _l("Nom"),
    "name_fuzzy": _l("Nom (orthographe approchée)"),
    "address": _l("Adresse"),
    "customer_number": _l("N° client"),
    "external_ref": _l("Référence facturation"),
    "contract_number": _l("N° de contrat"),
    "national_id": _l("PDL / PCE / n° de point"),
    "meter_serial": _l("N° de compteur"),
    "invoice_number": _l("N° de facture"),
    "phone": _l("Téléphone"),
    "email": _l("Courriel"),
}


@dataclass
class Result:
    party: Party
    field: str  # why it matched, a key of FIELD_LABELS
    contract: Contract | None = None  # the contract the match designates (contract, PDL, meter, invoice)
    main_contract: Contract | None = None  # what to show beside the name

    @property
    def field_label(self) -> str:
        return str(FIELD_LABELS[self.field])

    @property
    def shown_contract(self) -> Contract | None:
        return self.contract or self.main_contract


@dataclass
class Answer:
    query: str
    results: list[Result] = field(default_factory=list)
    hidden: int = 0  # matches outside the agent's scope, counted only when nothing is visible
    more: bool = False  # the candidates were cut: the agent should type more
    too_short: bool = False

    @property
    def hidden_label(self) -> str:
        return f"{HIDDEN_CAP}+" if self.hidden > HIDDEN_CAP else str(self.hidden)


@dataclass(frozen=True)
class _Scored:
    party_id: int
    field: str
    score: float
    status: str
    name: str


def query_words(query: str | None) -> list[str]:
    """The normalised words of the query that the text search uses (at most MAX_WORDS)."""
    return normalise((query or "")[:MAX_QUERY]).split()[:MAX_WORDS]


def search(*, agent: Agent, query: str | None, limit: int = 10) -> Answer:
    """The quick search's answer: identifiers first, then names and addresses, in scope."""
    query = (query or "")[:MAX_QUERY].strip()
    answer = Answer(query=query)
    words = query_words(query)
    if len("".join(words)) < 2:
        answer.too_short = bool(query)
        return answer
    id_matches, id_hidden = find_by_identifier(agent=agent, query=query)
    # An exact identifier settles it: no name or address search for "CL00012345" or an email.
    decisive = bool(id_matches or id_hidden)
    scored, answer.more = ([], False) if decisive else _text_matches(words, agent=agent, want=limit)
    ordered: dict[int, tuple[str, int | None]] = {}
    for m in id_matches:
        ordered.setdefault(m.party_id, (m.field, m.contract_id))
    for s in scored:
        ordered.setdefault(s.party_id, (s.field, None))
    picked = list(ordered.items())[:limit]
    answer.results = _load(agent, picked)
    if not answer.results:
        hidden_scored = [] if decisive else _text_matches(words, agent=None, want=HIDDEN_CAP + 1, typos=False)[0]
        answer.hidden = min(HIDDEN_CAP + 1, id_hidden + len({s.party_id for s in hidden_scored}))
    return answer


# --- text matches -----------------------------------------------------------------------------

def _text_matches(words: list[str], *, agent: Agent | None, want: int,
                  typos: bool = True) -> tuple[list[_Scored], bool]:
    """Parties whose name or address matches every word (word start, else with a typo), best
    first. agent=None searches everywhere (to count what lies out of scope, without typos:
    "N résultats hors de votre périmètre" counts parties that match what was typed)."""
    rows, more = _candidates(words, agent, fuzzy=False)
    scored = _rank(rows, words, fuzzy=False)
    if not scored and typos and any(_fuzzy(w) for w in words):  # nothing as typed: then, and only then, typos
        rows, more = _candidates(words, agent, fuzzy=True)
        scored = _rank(rows, words, fuzzy=True)
    return scored[:want], more


def rows_at_address(*, street: str | None, postal_code: str | None, agent: Agent) -> list:
    """The candidate rows (party id, normalised name and address, status) of the parties in the
    agent's scope whose address holds this street (number and name, as whole words) and this
    postal code: one indexed read, for duplicate detection, where the street's words one by one
    ("12", "rue", "de") narrow nothing. The index reads the street's longest word; the whole
    street and the postal code, whose trigrams every address of the département shares, are
    checked on those rows (before the cap: 500 "1 rue de la Gare" elsewhere hide nothing)."""
    street_words, postal = normalise(street).split(), normalise(postal_code)
    if not street_words or not postal or not agent.is_active or not agent.can(READ):
        return []
    phrase = " ".join(street_words)
    stmt = _candidate_rows().where(_scope(agent))
    if session.get_bind().dialect.name == "postgresql":
        # The index reads the street's longest word as a bare substring (rare trigrams); the whole
        # phrase, whose " 1 ", " pl", "ace" are everywhere, is only checked on those rows.
        longest = max(street_words, key=len)
        stmt = stmt.where(PartySearch.text.like(f"%{longest}%"), func.strpos(PartySearch.text, f" {phrase} ") > 0,
                          func.strpos(PartySearch.address, f" {postal} ") > 0)
    else:
        fts = "party_search_fts"
        stmt = stmt.where(PartySearch.party_id.in_(
            select(literal_column("rowid")).select_from(text(fts)).where(text(f"{fts} MATCH :at"))
        )).params(at=f'{{address}}: " {phrase} " AND {{address}}: " {postal} "')
    return session.execute(stmt.limit(FUZZY_POOL)).all()


def _fuzzy(word: str) -> bool:
    """Whether a typo is looked for in this word: a name's, long enough (not a number)."""
    return len(word) >= FUZZY_MIN_LENGTH and word.isalpha()


def _threshold(word: str) -> float:
    return SHORT_FUZZY_THRESHOLD if len(word) <= SHORT_WORD else FUZZY_THRESHOLD


def _candidate_rows() -> Select:
    """What the matchers read of each candidate: party id, normalised name and address, status."""
    return (select(PartySearch.party_id, PartySearch.name, PartySearch.address, Party.status)
            .join(Party, Party.id == PartySearch.party_id))


def _scope(agent: Agent) -> ColumnElement[bool]:
    """The agent's geographic scope on a party_search row: one of the paths the party is seen from
    lies under one of the agent's territories. The same rule as Party.scope_clause (own territory
    or a contract's premises), read on the row itself; _load applies the rule itself again."""
    paths = [t.path for t in agent.territories]
    if not paths:
        return false()
    return or_(*(PartySearch.scope_paths.contains(f" {path}", autoescape=True) for path in paths))


def _candidates(words: list[str], agent: Agent | None, *, fuzzy: bool) -> tuple[list, bool]:
    """Rows (party id, name, address, status) for _rank, and whether the database had more.

    Word starts: one read of the matches, in no particular order (an order would make the database
    read every match: "jean" at a million parties, 150 ms). When there are more than CANDIDATES,
    two more reads, also capped, propose first the parties with every typed word as a whole word
    of their name, then as a whole word of the name or the address. So an exact name is never
    crowded out by longer ones ("martin" among 250 "Martinez"), nor a name by addresses ("rue
    Saint-Martin"), and a selective query costs a single read.
    Typos: the FUZZY_POOL closest spellings in the whole base, then the scope on those only,
    closest first."""
    if agent is not None and (not agent.is_active or not agent.can(READ)):
        return [], False
    base = _candidate_rows()
    if agent is not None:
        base = base.where(_scope(agent))
    sqlite = session.get_bind().dialect.name != "postgresql"
    stmt = (_sqlite_filter if sqlite else _postgresql_filter)(base, words, fuzzy)
    if stmt is None:
        return [], False
    rows = session.execute(stmt.limit(CANDIDATES + 1)).all()
    if fuzzy or len(rows) <= CANDIDATES:  # typos come closest first; else every match is there
        return rows[:CANDIDATES], len(rows) > CANDIDATES
    passes = []
    whole = [w for w in words if len(w) >= 3 and w.isalpha()]  # shorter: too common to narrow anything
    if whole:
        if sqlite:
            passes += [_sqlite_whole_words(stmt, whole, "{name}: "), _sqlite_whole_words(stmt, whole, "")]
        else:
            # strpos, not LIKE '% w %': the index keeps reading the rarer trigrams of the bare
            # words (stmt's); those of " w " (" du", "nt ") are in every other name (5 → 37 ms).
            passes += [stmt.where(*(func.strpos(PartySearch.name, f" {w} ") > 0 for w in whole)),
                       stmt.where(*(func.strpos(PartySearch.text, f" {w} ") > 0 for w in whole))]
    exact, seen = [], set()
    for stmt_pass in passes:
        for row in session.execute(stmt_pass.limit(CANDIDATES)):
            if row.party_id not in seen:
                seen.add(row.party_id)
                exact.append(row)
    return exact + [r for r in rows[:CANDIDATES] if r.party_id not in seen], True


def _somewhere(word: str) -> ColumnElement[bool]:
    """The word in the name or the address, for the index. A substring, which the index finds
    twice as fast as a word start (fewer, rarer trigrams); _rank keeps only word starts. Two
    letters need the space before them to make a trigram."""
    pattern = f"% {word}%" if len(word) < 3 else f"%{word}%"  # normalised words are [a-z0-9]: no escaping
    return PartySearch.text.like(pattern)


def _postgresql_filter(stmt: Select, words: list[str], fuzzy: bool) -> Select | None:
    if not fuzzy:
        indexed = [w for w in words if len(w) >= 2]  # " xy" still gives the index a trigram
        if not indexed:
            return None
        return stmt.where(*(_somewhere(w) for w in indexed))
    conditions, similarities = [], []
    for w in words:
        if _fuzzy(w):
            similarity_of_w = func.word_similarity(w, PartySearch.name)
            # The operator uses the index, at the lowest threshold of the query's words; each word's
            # own threshold then drops rows before the scope check, which costs more per row.
            conditions += [literal(w, String).op("<%")(PartySearch.name), similarity_of_w >= _threshold(w)]
            similarities.append(similarity_of_w)
        elif len(w) >= 2:
            conditions.append(_somewhere(w))
    # The GIN index answers "similar enough" fast; only those rows are ranked, and the best
    # FUZZY_POOL of them checked against the scope.
    short = any(_fuzzy(w) and len(w) <= SHORT_WORD for w in words)
    session.execute(text("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"),
                    {"t": str(SHORT_FUZZY_THRESHOLD if short else FUZZY_THRESHOLD)})
    closeness = sum(similarities).label("closeness")
    pool = (select(PartySearch.party_id, closeness).where(*conditions)
            .order_by(closeness.desc()).limit(FUZZY_POOL).subquery())
    return stmt.join(pool, pool.c.party_id == PartySearch.party_id).order_by(pool.c.closeness.desc())


def _sqlite_filter(stmt: Select, words: list[str], fuzzy: bool) -> Select | None:
    fts = "party_search_fts"
    if not fuzzy:
        terms = [f'" {w}"' for w in words if len(w) >= 2]  # a space and two letters: one trigram
        if not terms:
            return None
        match = " AND ".join(terms)
        return stmt.where(PartySearch.party_id.in_(
            select(literal_column("rowid")).select_from(text(fts)).where(text(f"{fts} MATCH :m"))
        )).params(m=match)
    groups = []
    for w in words:
        if _fuzzy(w):  # any of the word's trigrams, in the name; bm25 ranks by how many
            padded = f" {w} "
            grams = sorted({padded[i:i + 3] for i in range(len(padded) - 2)})
            groups.append("{name}: (" + " OR ".join(f'"{g}"' for g in grams) + ")")
        elif len(w) >= 2:
            groups.append(f'" {w}"')
    ranked = (select(literal_column("rowid").label("party_id"), literal_column("rank").label("rank"))
              .select_from(text(fts))
              .where(text(f"{fts} MATCH :m")).order_by(text("rank")).limit(FUZZY_POOL).subquery())
    return (stmt.join(ranked, ranked.c.party_id == PartySearch.party_id).order_by(ranked.c.rank)
            .params(m=" AND ".join(groups)))


def _sqlite_whole_words(stmt: Select, whole: list[str], column: str) -> Select:
    """stmt (already filtered by _sqlite_filter) further limited, through the FTS table, to the
    parties with every one of these words as a whole word (column "{name}: " for the name only)."""
    fts = "party_search_fts"
    match = " AND ".join(f'{column}" {w} "' for w in whole)
    key = "name_words" if column else "whole_words"
    return stmt.where(PartySearch.party_id.in_(
        select(literal_column("rowid")).select_from(text(fts)).where(text(f"{fts} MATCH :{key}"))
    )).params(**{key: match})


def _word_score(word: str, name_words: list[str], address_words: list[str], fuzzy: bool) -> tuple[float, str]:
    """How well one typed word matches: whole word > word start > similar spelling; name > address."""
    best, where = 0.0, ""
    for position, w in enumerate(name_words):
        s, kind = (1.0 if w == word else 0.9 if w.startswith(word) else 0.0), "name"
        if not s and fuzzy and _fuzzy(word) and (sim := similarity(word, w)) >= _threshold(word):
            s, kind = 0.8 * sim, "name_fuzzy"
        # The name is stored last name first: "martin" finds the Martins before the Martins Adinolfi.
        s -= POSITION_STEP * min(position, 4) if s else 0.0
        if s > best:
            best, where = s, kind
    for w in address_words:
        s = 0.6 if w == word else 0.55 if w.startswith(word) else 0.0
        if s > best:
            best, where = s, "address"
    return best, where


def _rank(rows, words: list[str], *, fuzzy: bool) -> list[_Scored]:
    scored = []
    for party_id, name, address, status in rows:
        name_words, address_words = name.split(), address.split()
        results = [_word_score(w, name_words, address_words, fuzzy) for w in words]
        if any(score == 0 for score, _ in results):
            continue
        wheres = {where for _, where in results}
        reason = "name_fuzzy" if "name_fuzzy" in wheres else "name" if "name" in wheres else "address"
        scored.append(_Scored(party_id, reason, sum(s for s, _ in results) / len(results), status, name))
    # Equal scores: active customers first, then the tighter name ("Paul Dupont" before "Jean-Baptiste
    # Dupont-Moreau" for "dupont"), then alphabetical.
    scored.sort(key=lambda s: (-round(s.score, 3), STATUS_ORDER.get(s.status, 9), s.name.count(" "), s.name,
                               s.party_id))
    return scored


# --- loading what the agent sees ----------------------------------------------------------------

def _load(agent: Agent, picked: list[tuple[int, tuple[str, int | None]]], within: Select | None = None) -> list[Result]:
    """The parties (again through the scope: the candidates were read without the ORM) and,
    for each, the contract to show: the one matched, else the main one (active first). within
    (territory ids) narrows the agent's scope further, for parties and contracts alike."""
    if not picked:
        return []
    ids = [party_id for party_id, _ in picked]
    party_stmt = scoped_select(Party, agent=agent, permission=READ).where(Party.id.in_(ids))
    if within is not None:
        party_stmt = party_stmt.where(Party.scope_clause(within))
    parties = {p.id: p for p in session.execute(party_stmt).scalars()}
    main: dict[int, Contract] = {}
    contracts: dict[int, Contract] = {}
    stmt = (scoped_select(Contract, agent=agent, permission=READ).add_columns(ContractParty.party_id)
            .join(ContractParty, and_(ContractParty.contract_id == Contract.id, ContractParty.role.in_(HOLDING_ROLES)))
            .where(ContractParty.party_id.in_(ids), true() if within is None else Contract.scope_clause(within))
            .order_by(Contract.status != ContractStatus.ACTIVE, Contract.status != ContractStatus.PENDING,
                      Contract.start_date.desc()))
    for contract, party_id in session.execute(stmt):
        main.setdefault(party_id, contract)
        contracts[contract.id] = contract
    results = []
    for party_id, (reason, contract_id) in picked:
        if party_id in parties:
            results.append(Result(party=parties[party_id], field=reason,
                                  contract=contracts.get(contract_id) if contract_id else None,
                                  main_contract=main.get(party_id)))
    return results


# --- caller identification ----------------------------------------------------------------------

def identify_caller(*, agent: Agent, phone: str | None, within: Select | None = None) -> Answer:
    """The parties in the agent's scope with this phone number (any format; the telephony system's
    caller number), and how many others have it out of scope. A number that is not one raises
    BusinessError with a message for the agent.

    within, a subquery of territory ids (an API token's), narrows the scope further: a party is
    shown only if it is also in scope under those territories, and counts as out of scope if not."""
    e164 = normalise_phone((phone or "")[:40])
    answer = Answer(query=e164)
    owners = list(session.execute(select(PartyPhone.party_id).where(PartyPhone.number == e164)
                                  .order_by(PartyPhone.position, PartyPhone.party_id).limit(HIDDEN_CAP)).scalars())
    owners = list(dict.fromkeys(owners))
    answer.results = _load(agent, [(party_id, ("phone", None)) for party_id in owners], within=within)
    answer.hidden = len(owners) - len(answer.results)
    return answer

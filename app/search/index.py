"""Keeping party_search in step with the parties and with where their contracts are.

Every way a party or a contract is written reaches it: the ORM (an after_flush hook, for the
screens), the billing import (refresh() on the parties it touched), the synthetic-data generator
(search_row() for its own COPY), and `flask search reindex` rebuilds it all after a restore, a
change of the normalisation or a reorganisation of the territory tree (the rows hold paths).
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, event, inspect, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.contracts.models import Contract, ContractParty, ServicePoint
from app.db import session
from app.parties.models import Party
from app.search.models import PartySearch
from app.search.normalise import normalise
from app.security.models import Territory

NAME_FIELDS = ("last_name", "first_name", "company_name")
ADDRESS_FIELDS = ("street", "address_extra", "postal_code", "city")
SOURCE_FIELDS = NAME_FIELDS + ADDRESS_FIELDS + ("territory_id",)
CHUNK = 2000


def _padded(parts: Iterable[str | None]) -> str:
    words = " ".join(n for n in map(normalise, parts) if n)
    return f" {words} "


def search_row(party_id: int, *, last_name=None, first_name=None, company_name=None, street=None,
               address_extra=None, postal_code=None, city=None, scope_paths: Iterable[str] = ()) -> dict:
    """The party_search row of a party, from its name, its address and the paths of the territories
    it is seen from (its own, its contracts' service points')."""
    return {"party_id": party_id,
            "name": _padded((last_name, first_name, company_name))[:420],
            "first_name": normalise(first_name)[:100],
            "address": _padded((street, address_extra, postal_code, city))[:520],
            "scope_paths": f" {' '.join(sorted(set(scope_paths)))} "}


def _scope_paths(connection, party_ids: list[int]) -> dict[int, list[str]]:
    """Party id → the paths of its own territory and of its contracts' service points."""
    own = (select(Party.id.label("party_id"), Territory.path)
           .join(Territory, Territory.id == Party.territory_id).where(Party.id.in_(party_ids)))
    contracts = (select(ContractParty.party_id, Territory.path)
                 .join(Contract, Contract.id == ContractParty.contract_id)
                 .join(ServicePoint, ServicePoint.id == Contract.service_point_id)
                 .join(Territory, Territory.id == ServicePoint.territory_id)
                 .where(ContractParty.party_id.in_(party_ids)))
    paths: dict[int, list[str]] = {}
    for party_id, path in connection.execute(union(own, contracts)):
        paths.setdefault(party_id, []).append(path)
    return paths


def _upsert(connection, rows: list[dict]) -> None:
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(PartySearch.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["party_id"], set_={
        c: stmt.excluded[c] for c in ("name", "first_name", "address", "scope_paths")})
    for start in range(0, len(rows), CHUNK):
        connection.execute(stmt, rows[start:start + CHUNK])


def refresh(party_ids: Iterable[int], *, connection=None) -> int:
    """Recompute the search rows of these parties (those deleted meanwhile simply have none)."""
    connection = connection or session.connection()
    ids, done = sorted(set(party_ids)), 0
    fields = NAME_FIELDS + ADDRESS_FIELDS
    columns = [Party.__table__.c.id] + [Party.__table__.c[f] for f in fields]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        paths = _scope_paths(connection, chunk)
        rows = [search_row(r[0], scope_paths=paths.get(r[0], ()), **dict(zip(fields, r[1:], strict=True)))
                for r in connection.execute(select(*columns).where(Party.__table__.c.id.in_(chunk)))]
        _upsert(connection, rows)
        done += len(rows)
    return done


def rebuild() -> int:
    """Empty party_search and compute it again for every party; returns the rows written."""
    connection = session.connection()
    connection.execute(delete(PartySearch))
    total, last_id = 0, 0
    while True:
        ids = list(connection.execute(select(Party.id).where(Party.id > last_id).order_by(Party.id)
                                      .limit(CHUNK * 10)).scalars())
        if not ids:
            return total
        total += refresh(ids, connection=connection)
        last_id = ids[-1]


def _changed(obj, fields: tuple[str, ...]) -> bool:
    return any(inspect(obj).attrs[f].history.has_changes() for f in fields)


@event.listens_for(Session, "after_flush")
def _refresh_flushed_parties(flush_session: Session, _flush_context) -> None:
    """Parties created, or whose name, address or territory changed, through the ORM; and the
    parties of contracts given or taken, or moved to other premises, or of premises moved to
    another territory (they are now seen from elsewhere)."""
    changed = {obj.id for obj in flush_session.new if isinstance(obj, Party)}
    contract_ids, service_point_ids = set(), set()
    for obj in (*flush_session.new, *flush_session.deleted):
        if isinstance(obj, ContractParty):
            changed.add(obj.party_id)
    for obj in flush_session.dirty:
        if isinstance(obj, Party) and _changed(obj, SOURCE_FIELDS):
            changed.add(obj.id)
        elif isinstance(obj, Contract) and _changed(obj, ("service_point_id",)):
            contract_ids.add(obj.id)
        elif isinstance(obj, ServicePoint) and _changed(obj, ("territory_id",)):
            service_point_ids.add(obj.id)
    connection = flush_session.connection()
    if service_point_ids:
        contract_ids.update(connection.execute(
            select(Contract.id).where(Contract.service_point_id.in_(service_point_ids))).scalars())
    if contract_ids:
        changed.update(connection.execute(
            select(ContractParty.party_id).where(ContractParty.contract_id.in_(contract_ids))).scalars())
    changed.discard(None)
    if changed:
        refresh(changed, connection=connection)

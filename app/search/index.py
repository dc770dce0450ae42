"""Keeping party_search in step with the parties.

Every way a party is written reaches it: the ORM (an after_flush hook, for the screens), the
billing import (refresh() on the parties it wrote), the synthetic-data generator (search_row()
for its own COPY), and `flask search reindex` rebuilds it all after a restore or a change of the
normalisation.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, event, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import session
from app.parties.models import Party
from app.search.models import PartySearch
from app.search.normalise import normalise

NAME_FIELDS = ("last_name", "first_name", "company_name")
ADDRESS_FIELDS = ("street", "address_extra", "postal_code", "city")
SOURCE_FIELDS = NAME_FIELDS + ADDRESS_FIELDS + ("territory_id",)
CHUNK = 2000


def _padded(parts: Iterable[str | None]) -> str:
    words = " ".join(n for n in map(normalise, parts) if n)
    return f" {words} "


def search_row(party_id: int, *, last_name=None, first_name=None, company_name=None, street=None,
               address_extra=None, postal_code=None, city=None, territory_id=None) -> dict:
    """The party_search row of a party, from its name, address and territory."""
    return {"party_id": party_id,
            "name": _padded((last_name, first_name, company_name))[:420],
            "first_name": normalise(first_name)[:100],
            "address": _padded((street, address_extra, postal_code, city))[:520],
            "territory_id": territory_id}


def _upsert(connection, rows: list[dict]) -> None:
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(PartySearch.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["party_id"], set_={
        c: stmt.excluded[c] for c in ("name", "first_name", "address", "territory_id")})
    for start in range(0, len(rows), CHUNK):
        connection.execute(stmt, rows[start:start + CHUNK])


def refresh(party_ids: Iterable[int], *, connection=None) -> int:
    """Recompute the search rows of these parties (those deleted meanwhile simply have none)."""
    connection = connection or session.connection()
    ids, done = sorted(set(party_ids)), 0
    columns = [Party.__table__.c.id] + [Party.__table__.c[f] for f in SOURCE_FIELDS]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = [search_row(r[0], **dict(zip(SOURCE_FIELDS, r[1:], strict=True)))
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


@event.listens_for(Session, "after_flush")
def _refresh_flushed_parties(flush_session: Session, _flush_context) -> None:
    """Parties created, or whose name or address changed, through the ORM."""
    changed = [obj.id for obj in flush_session.new if isinstance(obj, Party)]
    for obj in flush_session.dirty:
        if isinstance(obj, Party) and any(inspect(obj).attrs[f].history.has_changes() for f in SOURCE_FIELDS):
            changed.append(obj.id)
    if changed:
        refresh(changed, connection=flush_session.connection())

"""The search index of parties: their names and address in normalised form, one row per party.

The texts are normalised in Python (app.search.normalise), the same way on both databases, and
padded with a space at each end so that " word" finds a word start anywhere, including the
first. PostgreSQL indexes them with pg_trgm GIN indexes; SQLite with an FTS5 trigram table
(party_search_fts, external content, kept in step by triggers). Both are created by the migration.
"""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class PartySearch(Base):
    __tablename__ = "party_search"

    party_id: Mapped[int] = mapped_column(ForeignKey("party.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(420))  # " lefevre jean " / " boulangerie dupont sarl "
    first_name: Mapped[str] = mapped_column(String(100))  # "jean", for the advanced search's criterion
    address: Mapped[str] = mapped_column(String(520))  # " 12 rue victor hugo bat a 69003 lyon "
    # Where the party is seen from: the paths of its own territory and of its contracts' premises,
    # space-separated and space-padded (" /REG-84/AG-LYON/69123/ /REG-93/AG-NICE/06088/ "). An
    # agent's scope is then one LIKE " <path>%" per territory of theirs, on this very row: a search
    # reads candidates in index order and stops at the quota, without joining contracts for
    # every candidate out of the territory (the scope rule's expensive half, which the planner
    # turned into a hash of every party with a contract in the territory: 0.9 s at a million).
    scope_paths: Mapped[str] = mapped_column(Text, default=" ", server_default=" ")

    # Trigram indexes, PostgreSQL only (SQLite has its FTS5 table). GIN only: a GiST index beside
    # it made the planner choose GiST, 18× slower. One index on name || address serves "every
    # word somewhere in the name or the address" as a single index scan (measured at a million
    # parties: 3.8 ms, against 13-21 ms for a BitmapOr of two indexes per word); the one on name
    # serves the similarity operators (typos) and the advanced search's name criteria.
    __table_args__ = (
        Index("ix_party_search_name_trgm", "name", postgresql_using="gin",
              postgresql_ops={"name": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        # The advanced search's order by name: a page reads the index in order and stops.
        Index("ix_party_search_name_sort", "name", "party_id"),
    )


# Name and address together, as the second index knows them.
PartySearch.text = PartySearch.__table__.c.name + PartySearch.__table__.c.address
Index("ix_party_search_text_trgm", PartySearch.text.label("text"), postgresql_using="gin",
      postgresql_ops={"text": "gin_trgm_ops"}).ddl_if(dialect="postgresql")

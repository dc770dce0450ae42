"""search index of parties, API tokens

Revision ID: 74e9ddf6415d
Revises: f58e6334b6de
Created: 2026-11-28 05:07:23.157217
"""
from alembic import op
import sqlalchemy as sa
import app.db
from app.search.normalise import normalise


revision = '74e9ddf6415d'
down_revision = 'f58e6334b6de'
branch_labels = None
depends_on = None

FTS_TRIGGERS = {
    "ai": "AFTER INSERT ON party_search BEGIN "
          "INSERT INTO party_search_fts(rowid, name, address) VALUES (new.party_id, new.name, new.address); END",
    "ad": "AFTER DELETE ON party_search BEGIN "
          "INSERT INTO party_search_fts(party_search_fts, rowid, name, address) "
          "VALUES ('delete', old.party_id, old.name, old.address); END",
    "au": "AFTER UPDATE ON party_search BEGIN "
          "INSERT INTO party_search_fts(party_search_fts, rowid, name, address) "
          "VALUES ('delete', old.party_id, old.name, old.address); "
          "INSERT INTO party_search_fts(rowid, name, address) VALUES (new.party_id, new.name, new.address); END",
}


def _padded(*parts):
    return " " + " ".join(n for n in map(normalise, parts) if n) + " "


def upgrade():
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('permissions', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('last_used_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_api_token_created_by_id_agent'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('digest', name=op.f('uq_api_token_digest'))
    )
    party_search = op.create_table('party_search',
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=420), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=520), nullable=False),
    sa.Column('territory_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['party_id'], ['party.id'], name=op.f('fk_party_search_party_id_party'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('party_id', name=op.f('pk_party_search'))
    )
    op.create_index("ix_party_search_name_sort", "party_search", ["name", "party_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension since PostgreSQL 13
        op.create_index("ix_party_search_name_trgm", "party_search", ["name"], postgresql_using="gin",
                        postgresql_ops={"name": "gin_trgm_ops"})
        op.create_index("ix_party_search_text_trgm", "party_search", [sa.text("(name || address) gin_trgm_ops")],
                        postgresql_using="gin")
    else:
        op.execute("CREATE VIRTUAL TABLE party_search_fts USING fts5(name, address, content='party_search', "
                   "content_rowid='party_id', tokenize='trigram')")
        for suffix, body in FTS_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER party_search_{suffix} {body}")

    # The parties already there (imported before this version).
    party = sa.table("party", *(sa.column(c) for c in (
        "id", "last_name", "first_name", "company_name", "street", "address_extra", "postal_code", "city",
        "territory_id")))
    last_id = 0
    while True:
        rows = bind.execute(sa.select(party).where(party.c.id > last_id).order_by(party.c.id).limit(5000)).all()
        if not rows:
            break
        bind.execute(party_search.insert(), [
            {"party_id": r.id, "name": _padded(r.last_name, r.first_name, r.company_name)[:420],
             "first_name": normalise(r.first_name)[:100],
             "address": _padded(r.street, r.address_extra, r.postal_code, r.city)[:520],
             "territory_id": r.territory_id} for r in rows])
        last_id = rows[-1].id


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for suffix in FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER party_search_{suffix}")
        op.execute("DROP TABLE party_search_fts")
    op.drop_table('party_search')
    op.drop_table('api_token')

"""Search index: where each party is seen from (scope_paths) replaces its own territory

Revision ID: 3c5d9e2a7b41
Revises: 8a884df1778f
Created: 2026-11-28 09:20:00.000000

party_search.territory_id held only the party's own territory, so the quick search had to join
contracts to find the parties seen through a contract's premises. scope_paths holds the paths of
the party's own territory and of its contracts' service points, space-separated and padded; the
agent's scope becomes a LIKE on the row. Backfilled from the tables (string aggregation over a
union: both databases).
"""
from alembic import op
import sqlalchemy as sa


revision = '3c5d9e2a7b41'
down_revision = '8a884df1778f'
branch_labels = None
depends_on = None

SEEN_FROM = """
    SELECT t.path FROM party p JOIN territory t ON t.id = p.territory_id WHERE p.id = party_search.party_id
    UNION
    SELECT t.path FROM contract_party cp
      JOIN contract c ON c.id = cp.contract_id
      JOIN service_point sp ON sp.id = c.service_point_id
      JOIN territory t ON t.id = sp.territory_id
     WHERE cp.party_id = party_search.party_id
"""


def upgrade():
    op.add_column('party_search', sa.Column('scope_paths', sa.Text(), nullable=False, server_default=' '))
    aggregate = "string_agg(path, ' ')" if op.get_bind().dialect.name == "postgresql" else "group_concat(path, ' ')"
    op.execute(f"UPDATE party_search SET scope_paths = "  # noqa: S608 (no user input)
               f"' ' || coalesce((SELECT {aggregate} FROM ({SEEN_FROM}) AS seen), '') || ' '")
    op.drop_column('party_search', 'territory_id')


def downgrade():
    op.add_column('party_search', sa.Column('territory_id', sa.Integer(), nullable=True))
    op.execute("UPDATE party_search SET territory_id = "
               "(SELECT p.territory_id FROM party p WHERE p.id = party_search.party_id)")
    op.drop_column('party_search', 'scope_paths')

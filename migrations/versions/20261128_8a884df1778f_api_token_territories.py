"""API token territories (a token answers only under its territories)

Revision ID: 8a884df1778f
Revises: 6f1c0e0db1ef
Created: 2026-11-28 09:03:29.000000

The tokens that exist before this version get no territory: they then answer for nobody (404 for
every agent) until an administrator gives them territories, which is the safe side.
"""
from alembic import op
import sqlalchemy as sa


revision = '8a884df1778f'
down_revision = '6f1c0e0db1ef'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_token_territory',
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['api_token.id'], name=op.f('fk_api_token_territory_token_id_api_token'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_api_token_territory_territory_id_territory'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('token_id', 'territory_id', name=op.f('pk_api_token_territory'))
    )
    with op.batch_alter_table('api_token_territory', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_territory_territory_id'), ['territory_id'], unique=False)


def downgrade():
    with op.batch_alter_table('api_token_territory', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_territory_territory_id'))

    op.drop_table('api_token_territory')

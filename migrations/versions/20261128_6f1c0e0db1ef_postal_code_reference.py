"""postal code reference (La Poste's base, loaded by `flask postal-codes load`)

Revision ID: 6f1c0e0db1ef
Revises: 74e9ddf6415d
Created: 2026-11-28 09:01:25.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '6f1c0e0db1ef'
down_revision = '74e9ddf6415d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('postal_code',
    sa.Column('postal_code', sa.String(length=5), nullable=False),
    sa.Column('insee_code', sa.String(length=5), nullable=False),
    sa.Column('commune', sa.String(length=100), nullable=False),
    sa.Column('routing_label', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('postal_code', 'insee_code', name=op.f('pk_postal_code'))
    )
    op.create_index(op.f('ix_postal_code_insee_code'), 'postal_code', ['insee_code'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_postal_code_insee_code'), table_name='postal_code')
    op.drop_table('postal_code')

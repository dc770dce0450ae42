"""Roles and territories can be deactivated (an item in use is deactivated, not deleted)

Revision ID: 7e2c4a6b8d0f
Revises: 5d7f9a1b3c4e
Create Date: 2026-11-28 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '7e2c4a6b8d0f'
down_revision = '5d7f9a1b3c4e'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN, also on SQLite: a batch would copy and drop the tables, which the rows of
    # agent_role and agent_territory refer to.
    op.add_column('role', sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('territory', sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    with op.batch_alter_table('territory', schema=None) as batch_op:
        batch_op.drop_column('active')
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.drop_column('active')

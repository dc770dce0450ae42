"""Process designer: the analysts' drafts, and what each deployed version changed

Revision ID: 5d7f9a1b3c4e
Revises: 10ea6c87adfa
Create Date: 2026-11-28 23:05:00.000000

"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '5d7f9a1b3c4e'
down_revision = '10ea6c87adfa'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('process_draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('files', JSON, nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_process_draft_created_by_id_agent')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['agent.id'], name=op.f('fk_process_draft_updated_by_id_agent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_draft')),
    sa.UniqueConstraint('key', name=op.f('uq_process_draft_key'))
    )
    # A plain ADD COLUMN, also on SQLite: a batch would copy and drop the table the instances refer to.
    op.add_column('process_definition', sa.Column('change_summary', JSON, nullable=True))


def downgrade():
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('change_summary')
    op.drop_table('process_draft')

"""Process definitions: each deployed version of a BPMN process, its files stored once.

Revision ID: 3bd18460bc6e
Revises: 0e1cee6e1bf4
Created: 2026-11-28 13:15:11.752093
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = '3bd18460bc6e'
down_revision = '0e1cee6e1bf4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('process_definition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deployed_by', sa.String(length=100), nullable=False),
    sa.Column('deployed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_definition')),
    sa.UniqueConstraint('key', 'content_hash', name=op.f('uq_process_definition_key_content_hash')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_process_definition_key_version'))
    )
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_definition_key'), ['key'], unique=False)



def downgrade():
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_definition_key'))

    op.drop_table('process_definition')

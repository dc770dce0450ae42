"""Process instances: their saved state, user tasks (the inbox), due timers and kept messages; a
classification may start its process when a dossier is opened.

Revision ID: 4fedb220dff6
Revises: 3bd18460bc6e
Created: 2026-11-28 14:03:51.243621
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = '4fedb220dff6'
down_revision = '3bd18460bc6e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('process_instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_element', sa.String(length=200), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_process_instance_contact_id_contact')),
    sa.ForeignKeyConstraint(['definition_id'], ['process_definition.id'], name=op.f('fk_process_instance_definition_id_process_definition')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_process_instance_dossier_id_dossier')),
    sa.ForeignKeyConstraint(['started_by_id'], ['agent.id'], name=op.f('fk_process_instance_started_by_id_agent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_instance'))
    )
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_instance_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_definition_id'), ['definition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index('ix_process_instance_status', ['status'], unique=False)

    op.create_table('process_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_process_message_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_message'))
    )
    with op.batch_alter_table('process_message', schema=None) as batch_op:
        batch_op.create_index('ix_process_message_instance_pending', ['instance_id', 'delivered_at'], unique=False)

    op.create_table('process_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_uuid', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role_code', sa.String(length=40), nullable=True),
    sa.Column('form', sa.String(length=200), nullable=True),
    sa.Column('ui_form', sa.String(length=200), nullable=True),
    sa.Column('instructions', sa.Text(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('draft', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('completed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['agent.id'], name=op.f('fk_process_task_assignee_id_agent')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['agent.id'], name=op.f('fk_process_task_completed_by_id_agent')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_process_task_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_task')),
    sa.UniqueConstraint('instance_id', 'task_uuid', name='uq_process_task_instance_id')
    )
    with op.batch_alter_table('process_task', schema=None) as batch_op:
        batch_op.create_index('ix_process_task_assignee_status', ['assignee_id', 'status'], unique=False)
        batch_op.create_index('ix_process_task_status_role', ['status', 'role_code'], unique=False)

    op.create_table('process_timer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_uuid', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=100), nullable=False),
    sa.Column('due_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_process_timer_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_timer')),
    sa.UniqueConstraint('instance_id', 'task_uuid', name='uq_process_timer_instance_id')
    )
    with op.batch_alter_table('process_timer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_timer_due_at'), ['due_at'], unique=False)

    with op.batch_alter_table('dossier_type', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_start', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade():
    with op.batch_alter_table('dossier_type', schema=None) as batch_op:
        batch_op.drop_column('auto_start')

    with op.batch_alter_table('process_timer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_timer_due_at'))

    op.drop_table('process_timer')
    with op.batch_alter_table('process_task', schema=None) as batch_op:
        batch_op.drop_index('ix_process_task_status_role')
        batch_op.drop_index('ix_process_task_assignee_status')

    op.drop_table('process_task')
    with op.batch_alter_table('process_message', schema=None) as batch_op:
        batch_op.drop_index('ix_process_message_instance_pending')

    op.drop_table('process_message')
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_process_instance_status')
        batch_op.drop_index(batch_op.f('ix_process_instance_dossier_id'))
        batch_op.drop_index(batch_op.f('ix_process_instance_definition_id'))
        batch_op.drop_index(batch_op.f('ix_process_instance_contact_id'))

    op.drop_table('process_instance')

"""Contacts and dossiers: contact types, dossier classifications and their template items; contacts,
dossiers, their links (parties, agents, business objects), dossier contacts and elements; the
yearly reference counter.

Revision ID: 828f3627a854
Revises: 3c5d9e2a7b41
Created: 2026-11-28 11:20:04.202810
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = '828f3627a854'
down_revision = '3c5d9e2a7b41'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dossier_type',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('process_key', sa.String(length=100), nullable=True),
    sa.Column('target_days', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossier_type')),
    sa.UniqueConstraint('code', name=op.f('uq_dossier_type_code'))
    )
    op.create_table('reference_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=10), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_counter')),
    sa.UniqueConstraint('series', 'year', name=op.f('uq_reference_counter_series'))
    )
    op.create_table('contact_type',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('default_channel', sa.String(length=20), nullable=True),
    sa.Column('default_direction', sa.String(length=3), nullable=False),
    sa.Column('process_key', sa.String(length=100), nullable=True),
    sa.Column('dossier_type_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dossier_type_id'], ['dossier_type.id'], name=op.f('fk_contact_type_dossier_type_id_dossier_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_type')),
    sa.UniqueConstraint('code', name=op.f('uq_contact_type_code'))
    )
    op.create_table('dossier',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('dossier_type_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('external_ref', sa.String(length=40), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_dossier_created_by_id_agent')),
    sa.ForeignKeyConstraint(['dossier_type_id'], ['dossier_type.id'], name=op.f('fk_dossier_dossier_type_id_dossier_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossier')),
    sa.UniqueConstraint('external_ref', name=op.f('uq_dossier_external_ref')),
    sa.UniqueConstraint('reference', name=op.f('uq_dossier_reference'))
    )
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossier_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossier_dossier_type_id'), ['dossier_type_id'], unique=False)
        batch_op.create_index('ix_dossier_status_created', ['status', 'created_at'], unique=False)

    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_type_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('occurred_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_type_id'], ['contact_type.id'], name=op.f('fk_contact_contact_type_id_contact_type')),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_contact_created_by_id_agent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact'))
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_contact_type_id'), ['contact_type_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index('ix_contact_occurred_at', ['occurred_at'], unique=False)

    op.create_table('dossier_agent',
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], name=op.f('fk_dossier_agent_agent_id_agent')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_agent_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dossier_id', 'role', 'agent_id', name=op.f('pk_dossier_agent'))
    )
    with op.batch_alter_table('dossier_agent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossier_agent_agent_id'), ['agent_id'], unique=False)

    op.create_table('dossier_element',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_dossier_element_created_by_id_agent')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_element_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossier_element'))
    )
    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_element_dossier_kind', ['dossier_id', 'kind'], unique=False)

    op.create_table('dossier_object',
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_object_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dossier_id', 'object_type', 'object_id', name=op.f('pk_dossier_object'))
    )
    with op.batch_alter_table('dossier_object', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_object_target', ['object_type', 'object_id'], unique=False)

    op.create_table('dossier_party',
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_party_dossier_id_dossier'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['party_id'], ['party.id'], name=op.f('fk_dossier_party_party_id_party')),
    sa.PrimaryKeyConstraint('dossier_id', 'role', 'party_id', name=op.f('pk_dossier_party'))
    )
    with op.batch_alter_table('dossier_party', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_party_party_dossier', ['party_id', 'dossier_id'], unique=False)

    op.create_table('template_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_type_id', sa.Integer(), nullable=True),
    sa.Column('dossier_type_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('link_role', sa.String(length=20), nullable=True),
    sa.Column('fixed_party_id', sa.Integer(), nullable=True),
    sa.Column('fixed_agent_id', sa.Integer(), nullable=True),
    sa.Column('role_id', sa.Integer(), nullable=True),
    sa.Column('territory_id', sa.Integer(), nullable=True),
    sa.Column('rule', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('(contact_type_id IS NULL) <> (dossier_type_id IS NULL)', name=op.f('ck_template_item_one_owner')),
    sa.ForeignKeyConstraint(['contact_type_id'], ['contact_type.id'], name=op.f('fk_template_item_contact_type_id_contact_type'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dossier_type_id'], ['dossier_type.id'], name=op.f('fk_template_item_dossier_type_id_dossier_type'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['fixed_agent_id'], ['agent.id'], name=op.f('fk_template_item_fixed_agent_id_agent')),
    sa.ForeignKeyConstraint(['fixed_party_id'], ['party.id'], name=op.f('fk_template_item_fixed_party_id_party')),
    sa.ForeignKeyConstraint(['role_id'], ['role.id'], name=op.f('fk_template_item_role_id_role')),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_template_item_territory_id_territory')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_item'))
    )
    with op.batch_alter_table('template_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_template_item_contact_type_id'), ['contact_type_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_template_item_dossier_type_id'), ['dossier_type_id'], unique=False)

    op.create_table('contact_agent',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], name=op.f('fk_contact_agent_agent_id_agent')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_agent_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'role', 'agent_id', name=op.f('pk_contact_agent'))
    )
    with op.batch_alter_table('contact_agent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_agent_agent_id'), ['agent_id'], unique=False)

    op.create_table('contact_object',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_object_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'object_type', 'object_id', name=op.f('pk_contact_object'))
    )
    with op.batch_alter_table('contact_object', schema=None) as batch_op:
        batch_op.create_index('ix_contact_object_target', ['object_type', 'object_id'], unique=False)

    op.create_table('contact_party',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_party_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['party_id'], ['party.id'], name=op.f('fk_contact_party_party_id_party')),
    sa.PrimaryKeyConstraint('contact_id', 'role', 'party_id', name=op.f('pk_contact_party'))
    )
    with op.batch_alter_table('contact_party', schema=None) as batch_op:
        batch_op.create_index('ix_contact_party_party_contact', ['party_id', 'contact_id'], unique=False)

    op.create_table('dossier_contact',
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('added_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['added_by_id'], ['agent.id'], name=op.f('fk_dossier_contact_added_by_id_agent')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_dossier_contact_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_contact_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dossier_id', 'contact_id', name=op.f('pk_dossier_contact'))
    )
    with op.batch_alter_table('dossier_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossier_contact_contact_id'), ['contact_id'], unique=False)



def downgrade():
    with op.batch_alter_table('dossier_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossier_contact_contact_id'))

    op.drop_table('dossier_contact')
    with op.batch_alter_table('contact_party', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_party_party_contact')

    op.drop_table('contact_party')
    with op.batch_alter_table('contact_object', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_object_target')

    op.drop_table('contact_object')
    with op.batch_alter_table('contact_agent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_agent_agent_id'))

    op.drop_table('contact_agent')
    with op.batch_alter_table('template_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_template_item_dossier_type_id'))
        batch_op.drop_index(batch_op.f('ix_template_item_contact_type_id'))

    op.drop_table('template_item')
    with op.batch_alter_table('dossier_party', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_party_party_dossier')

    op.drop_table('dossier_party')
    with op.batch_alter_table('dossier_object', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_object_target')

    op.drop_table('dossier_object')
    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_element_dossier_kind')

    op.drop_table('dossier_element')
    with op.batch_alter_table('dossier_agent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossier_agent_agent_id'))

    op.drop_table('dossier_agent')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_occurred_at')
        batch_op.drop_index(batch_op.f('ix_contact_created_by_id'))
        batch_op.drop_index(batch_op.f('ix_contact_contact_type_id'))

    op.drop_table('contact')
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_status_created')
        batch_op.drop_index(batch_op.f('ix_dossier_dossier_type_id'))
        batch_op.drop_index(batch_op.f('ix_dossier_created_by_id'))

    op.drop_table('dossier')
    op.drop_table('contact_type')
    op.drop_table('reference_counter')
    op.drop_table('dossier_type')

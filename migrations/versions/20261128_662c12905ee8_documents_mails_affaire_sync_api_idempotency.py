"""Documents and mails: stored files, versioned letter and mail templates, generated letters as dossier
elements, the mail outbox; the affaire outbox towards the billing system; API idempotency keys.

Revision ID: 662c12905ee8
Revises: 4fedb220dff6
Created: 2026-11-28 16:42:47.666521
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = '662c12905ee8'
down_revision = '4fedb220dff6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stored_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_file'))
    )
    op.create_table('document_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('shipped', sa.Boolean(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.Column('uploaded_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['stored_file.id'], name=op.f('fk_document_template_file_id_stored_file')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_template')),
    sa.UniqueConstraint('code', 'version', name='uq_document_template_code_version')
    )
    with op.batch_alter_table('document_template', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_template_code'), ['code'], unique=False)

    op.create_table('affaire_sync',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_affaire_sync_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_affaire_sync')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_affaire_sync_idempotency_key'))
    )
    with op.batch_alter_table('affaire_sync', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_affaire_sync_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index('ix_affaire_sync_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('api_idempotency_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['api_token.id'], name=op.f('fk_api_idempotency_key_token_id_api_token'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotency_key')),
    sa.UniqueConstraint('token_id', 'key', name='uq_api_idempotency_key_token_key')
    )
    op.create_table('outgoing_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('element_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['attachment_id'], ['dossier_element.id'], name=op.f('fk_outgoing_mail_attachment_id_dossier_element'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_outgoing_mail_created_by_id_agent')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_outgoing_mail_dossier_id_dossier'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['element_id'], ['dossier_element.id'], name=op.f('fk_outgoing_mail_element_id_dossier_element'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_outgoing_mail_instance_id_process_instance'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['document_template.id'], name=op.f('fk_outgoing_mail_template_id_document_template')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_mail')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outgoing_mail_message_id'))
    )
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoing_mail_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index('ix_outgoing_mail_status_next', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pdf_file_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('template_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_dossier_element_file_id_stored_file'), 'stored_file', ['file_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_dossier_element_template_id_document_template'), 'document_template', ['template_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_dossier_element_pdf_file_id_stored_file'), 'stored_file', ['pdf_file_id'], ['id'])



def downgrade():
    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_dossier_element_pdf_file_id_stored_file'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_dossier_element_template_id_document_template'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_dossier_element_file_id_stored_file'), type_='foreignkey')
        batch_op.drop_column('template_id')
        batch_op.drop_column('pdf_file_id')
        batch_op.drop_column('file_id')

    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoing_mail_status_next')
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_dossier_id'))

    op.drop_table('outgoing_mail')
    op.drop_table('api_idempotency_key')
    with op.batch_alter_table('affaire_sync', schema=None) as batch_op:
        batch_op.drop_index('ix_affaire_sync_status_next')
        batch_op.drop_index(batch_op.f('ix_affaire_sync_dossier_id'))

    op.drop_table('affaire_sync')
    with op.batch_alter_table('document_template', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_template_code'))

    op.drop_table('document_template')
    op.drop_table('stored_file')

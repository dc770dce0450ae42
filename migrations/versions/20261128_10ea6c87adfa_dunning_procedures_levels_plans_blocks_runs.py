"""Dunning: the procedure and its levels, payment plans and manual blocks that suspend it, the runs and
their outcome per contract; one open dossier per contract for the classifications that say so.

Revision ID: 10ea6c87adfa
Revises: 662c12905ee8
Created: 2026-11-28 19:20:16.126951
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = '10ea6c87adfa'
down_revision = '662c12905ee8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dunning_procedure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('dossier_type_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['dossier_type_id'], ['dossier_type.id'], name=op.f('fk_dunning_procedure_dossier_type_id_dossier_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_procedure')),
    sa.UniqueConstraint('code', name=op.f('uq_dunning_procedure_code'))
    )
    op.create_table('dunning_level',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('delay_days', sa.Integer(), nullable=False),
    sa.Column('min_amount', app.db.Money(precision=12, scale=2), nullable=False),
    sa.Column('letter_template', sa.String(length=60), nullable=True),
    sa.Column('mail_template', sa.String(length=60), nullable=True),
    sa.Column('agent_task', sa.Boolean(), nullable=False),
    sa.Column('formal_notice', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['procedure_id'], ['dunning_procedure.id'], name=op.f('fk_dunning_level_procedure_id_dunning_procedure'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_level')),
    sa.UniqueConstraint('procedure_id', 'rank', name=op.f('uq_dunning_level_procedure_id'))
    )
    op.create_table('dunning_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('trigger', sa.String(length=60), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('selected', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['procedure_id'], ['dunning_procedure.id'], name=op.f('fk_dunning_run_procedure_id_dunning_procedure')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_run'))
    )
    op.create_table('dunning_block',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('until', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_dunning_block_contract_id_contract')),
    sa.ForeignKeyConstraint(['created_by_id'], ['agent.id'], name=op.f('fk_dunning_block_created_by_id_agent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_block'))
    )
    with op.batch_alter_table('dunning_block', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_block_contract_until', ['contract_id', 'until'], unique=False)

    op.create_table('dunning_run_chunk',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('contract_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('dispatched_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['dunning_run.id'], name=op.f('fk_dunning_run_chunk_run_id_dunning_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_run_chunk')),
    sa.UniqueConstraint('run_id', 'number', name=op.f('uq_dunning_run_chunk_run_id'))
    )
    op.create_table('dunning_run_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_dunning_run_item_contract_id_contract')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dunning_run_item_dossier_id_dossier'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['dunning_run.id'], name=op.f('fk_dunning_run_item_run_id_dunning_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_run_item')),
    sa.UniqueConstraint('run_id', 'contract_id', name=op.f('uq_dunning_run_item_run_id'))
    )
    op.create_table('payment_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('instalments', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_payment_plan_contract_id_contract')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_payment_plan_dossier_id_dossier'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_plan'))
    )
    with op.batch_alter_table('payment_plan', schema=None) as batch_op:
        batch_op.create_index('ix_payment_plan_contract_end', ['contract_id', 'ends_on'], unique=False)

    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exclusive_contract_id', sa.Integer(), nullable=True))
        batch_op.create_index('uq_dossier_open_per_contract', ['exclusive_contract_id', 'dossier_type_id'], unique=True, postgresql_where=sa.text("exclusive_contract_id IS NOT NULL AND status <> 'closed'"), sqlite_where=sa.text("exclusive_contract_id IS NOT NULL AND status <> 'closed'"))
        batch_op.create_foreign_key(batch_op.f('fk_dossier_exclusive_contract_id_contract'), 'contract', ['exclusive_contract_id'], ['id'])

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_unpaid_due', ['due_on', 'contract_id'], unique=False, postgresql_where=sa.text("status IN ('open', 'partially_paid')"), sqlite_where=sa.text("status IN ('open', 'partially_paid')"))

    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pdf_pending', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.create_index('ix_dossier_element_pdf_pending', ['id'], unique=False, postgresql_where=sa.text('pdf_pending'), sqlite_where=sa.text('pdf_pending'))

    with op.batch_alter_table('dossier_type', schema=None) as batch_op:
        batch_op.add_column(sa.Column('one_per_contract', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('suspends_dunning', sa.Boolean(), server_default=sa.text('false'), nullable=False))



    # Installs from before: the relaunch is one per contract, disputes and claims suspend dunning.
    op.execute("UPDATE dossier_type SET one_per_contract = true WHERE code = 'RELANCE_IMPAYE'")
    op.execute("UPDATE dossier_type SET suspends_dunning = true WHERE code IN ('CONTESTATION_RELEVE', 'RECLAMATION')")


def downgrade():
    with op.batch_alter_table('dossier_element', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_element_pdf_pending', postgresql_where=sa.text('pdf_pending'), sqlite_where=sa.text('pdf_pending'))
        batch_op.drop_column('pdf_pending')

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_unpaid_due', postgresql_where=sa.text("status IN ('open', 'partially_paid')"), sqlite_where=sa.text("status IN ('open', 'partially_paid')"))

    with op.batch_alter_table('dossier_type', schema=None) as batch_op:
        batch_op.drop_column('suspends_dunning')
        batch_op.drop_column('one_per_contract')

    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_dossier_exclusive_contract_id_contract'), type_='foreignkey')
        batch_op.drop_index('uq_dossier_open_per_contract', postgresql_where=sa.text("exclusive_contract_id IS NOT NULL AND status <> 'closed'"), sqlite_where=sa.text("exclusive_contract_id IS NOT NULL AND status <> 'closed'"))
        batch_op.drop_column('exclusive_contract_id')

    with op.batch_alter_table('payment_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_plan_contract_end')

    op.drop_table('payment_plan')
    op.drop_table('dunning_run_item')
    op.drop_table('dunning_run_chunk')
    with op.batch_alter_table('dunning_block', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_block_contract_until')

    op.drop_table('dunning_block')
    op.drop_table('dunning_run')
    op.drop_table('dunning_level')
    op.drop_table('dunning_procedure')

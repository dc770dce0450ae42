"""Contact submission key: the contact form's one-time key, so that a form posted twice traces one contact.

Revision ID: 0e1cee6e1bf4
Revises: 828f3627a854
Created: 2026-11-28 12:58:57.952472
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0e1cee6e1bf4'
down_revision = '828f3627a854'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_contact_submission_key'), ['submission_key'])



def downgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_contact_submission_key'), type_='unique')
        batch_op.drop_column('submission_key')


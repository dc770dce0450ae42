"""Supervision and data protection: the territory contacts and dossiers are counted under, a
relaunch's furthest level and how it closed, bank details, anonymisation, the 360° view log

Revision ID: 9b1d3f5a7c2e
Revises: 7e2c4a6b8d0f
Create Date: 2026-11-29 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '9b1d3f5a7c2e'
down_revision = '7e2c4a6b8d0f'
branch_labels = None
depends_on = None

# The party that places a contact or a dossier: the first in this role order (app.contacts.links).
_ROLE_ORDER = ("CASE {alias}.role WHEN 'customer' THEN 0 WHEN 'holder' THEN 1 WHEN 'co_holder' THEN 2 "
               "WHEN 'payer' THEN 3 WHEN 'occupant' THEN 4 ELSE 5 END")


def _place(table: str, link_table: str, key: str) -> None:
    """Fill territory_id of the rows already there, as territory_of_record would have: the first
    placing party's own territory, else the premises of its first contract."""
    order = _ROLE_ORDER.format(alias="l")
    op.execute(f"""
        UPDATE {table} SET territory_id = (
            SELECT p.territory_id FROM {link_table} l JOIN party p ON p.id = l.party_id
            WHERE l.{key} = {table}.id AND l.role <> 'third_party' AND p.territory_id IS NOT NULL
            ORDER BY {order}, l.party_id LIMIT 1)
        WHERE territory_id IS NULL""")
    op.execute(f"""
        UPDATE {table} SET territory_id = (
            SELECT sp.territory_id FROM {link_table} l
            JOIN contract_party cp ON cp.party_id = l.party_id
            JOIN contract c ON c.id = cp.contract_id
            JOIN service_point sp ON sp.id = c.service_point_id
            WHERE l.{key} = {table}.id AND l.role <> 'third_party' AND sp.territory_id IS NOT NULL
            ORDER BY {order}, l.party_id, c.id LIMIT 1)
        WHERE territory_id IS NULL""")


def _add_territory(table: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':  # SQLite adds a column with its reference, not a constraint after
        op.execute(f'ALTER TABLE {table} ADD COLUMN territory_id INTEGER '
                   f'CONSTRAINT fk_{table}_territory_id_territory REFERENCES territory (id)')
    else:
        op.add_column(table, sa.Column('territory_id', sa.Integer(), nullable=True))
        op.create_foreign_key(f'fk_{table}_territory_id_territory', table, 'territory', ['territory_id'], ['id'])


def upgrade():
    # Plain ADD COLUMN, also on SQLite: a batch would copy and drop tables other rows refer to.
    for table in ('contact', 'dossier'):
        _add_territory(table)
    op.add_column('dossier', sa.Column('dunning_rank', sa.Integer(), nullable=True))
    op.add_column('dossier', sa.Column('close_reason', sa.String(length=20), nullable=True))
    op.add_column('party', sa.Column('iban', sa.String(length=34), nullable=True))
    op.add_column('party', sa.Column('bic', sa.String(length=11), nullable=True))
    op.add_column('party', sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('party_consultation',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('party_id', sa.Integer(), nullable=False),
                    sa.Column('agent_id', sa.Integer(), nullable=False),
                    sa.Column('consulted_at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'],
                                            name=op.f('fk_party_consultation_agent_id_agent')),
                    sa.ForeignKeyConstraint(['party_id'], ['party.id'], ondelete='CASCADE',
                                            name=op.f('fk_party_consultation_party_id_party')),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_party_consultation')))
    op.create_index('ix_party_consultation_party_at', 'party_consultation', ['party_id', 'consulted_at'])
    op.create_index(op.f('ix_party_consultation_agent_id'), 'party_consultation', ['agent_id'])

    _place('contact', 'contact_party', 'contact_id')
    _place('dossier', 'dossier_party', 'dossier_id')
    # Relaunches already run: their furthest level (from the audit of each level applied) and the
    # ones closed on payment (by the process's close step, which writes the « Clôture » note).
    op.execute("""
        UPDATE dossier SET dunning_rank = (
            SELECT max(CAST(a.changes ->> 'rank' AS INTEGER)) FROM audit_entry a
            WHERE a.action = 'dunning_level' AND a.object_type = 'dossier'
              AND a.object_id = CAST(dossier.id AS VARCHAR(64)))
        WHERE EXISTS (SELECT 1 FROM audit_entry a WHERE a.action = 'dunning_level' AND a.object_type = 'dossier'
                      AND a.object_id = CAST(dossier.id AS VARCHAR(64)))""")
    # Supervision's charts read these alone (index-only on PostgreSQL once vacuumed).
    # The relaunches closed on payment: closed by the process's close step, which writes its
    # « Clôture » note, in a classification a dunning procedure opens.
    op.execute("""
        UPDATE dossier SET close_reason = 'paid'
        WHERE status = 'closed' AND close_reason IS NULL
          AND dossier_type_id IN (SELECT dossier_type_id FROM dunning_procedure)
          AND EXISTS (SELECT 1 FROM dossier_element e WHERE e.dossier_id = dossier.id AND e.kind = 'note'
                      AND e.title IN ('Clôture', 'Closure'))""")
    op.create_index('ix_contact_territory_occurred', 'contact', ['territory_id', 'occurred_at', 'channel'])
    op.create_index('ix_dossier_territory_created', 'dossier', ['territory_id', 'created_at', 'dossier_type_id'])
    op.create_index('ix_dossier_territory_closed', 'dossier', ['territory_id', 'closed_at', 'dossier_type_id'])
    op.create_index('ix_dossier_open_due', 'dossier', ['due_at'], postgresql_where=sa.text("status <> 'closed'"),
                    sqlite_where=sa.text("status <> 'closed'"))


def downgrade():
    op.drop_index('ix_dossier_open_due', table_name='dossier')
    op.drop_index('ix_dossier_territory_closed', table_name='dossier')
    op.drop_index('ix_dossier_territory_created', table_name='dossier')
    op.drop_index('ix_contact_territory_occurred', table_name='contact')
    op.drop_index(op.f('ix_party_consultation_agent_id'), table_name='party_consultation')
    op.drop_index('ix_party_consultation_party_at', table_name='party_consultation')
    op.drop_table('party_consultation')
    # Column by column, in place: on SQLite (3.35 and later drop a column in place) a batch would
    # copy and DROP the tables, and the drop would cascade to their phones, e-mails and links.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, columns in (('party', ('anonymised_at', 'bic', 'iban')),
                           ('dossier', ('close_reason', 'dunning_rank', 'territory_id')),
                           ('contact', ('territory_id',))):
        for column in columns:
            if sqlite:
                op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
                continue
            if column == 'territory_id':
                op.drop_constraint(f'fk_{table}_territory_id_territory', table, type_='foreignkey')
            op.drop_column(table, column)

"""The Alembic migrations build the schema from nothing and match the models exactly."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.models  # noqa: F401
from app.db import Base, autogenerate_filters
from tests.conftest import database_url, recreate_database


@pytest.fixture
def empty_database(tmp_path_factory):
    engine = sa.create_engine(recreate_database(database_url(tmp_path_factory, suffix="_migrations")))
    yield engine
    engine.dispose()


def _run(app, engine, action: str, target: str) -> None:
    config = app.extensions["migrate"].migrate.get_config()
    config.guichet_quiet = True
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


@pytest.mark.no_db_transaction
# The trigram index on name || address exists on PostgreSQL only; on SQLite Alembic says it skips it.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_build_the_schema_from_empty_and_match_the_models(app, empty_database):
    with app.app_context():
        _run(app, empty_database, "upgrade", "head")
        with empty_database.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, **autogenerate_filters(connection.dialect.name)})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        tables = set(sa.inspect(empty_database).get_table_names())
        assert set(Base.metadata.tables) <= tables

        _run(app, empty_database, "downgrade", "base")
        assert set(sa.inspect(empty_database).get_table_names()) <= {"alembic_version"}
        _run(app, empty_database, "upgrade", "head")
        assert set(Base.metadata.tables) <= set(sa.inspect(empty_database).get_table_names())


@pytest.mark.no_db_transaction
def test_supervision_migration_backfills_and_downgrades_without_losing_rows(app, empty_database):
    """9b1d3f5a7c2e on a base with data: contacts and dossiers placed as territory_of_record would
    place them, relaunches given their furthest level and « paid »; its downgrade keeps every row
    (on SQLite a batch would have copied and dropped party, and the drop cascaded to its phones)."""
    engine = empty_database
    with app.app_context():
        _run(app, engine, "upgrade", "7e2c4a6b8d0f")
        with engine.begin() as c:
            run = lambda sql, **params: c.execute(sa.text(sql), params)  # noqa: E731
            run("INSERT INTO territory (id, code, name, kind, path, active) VALUES "
                "(1, 'R', 'Région', 'region', '/R/', true), (2, 'C1', 'Commune 1', 'commune', '/R/C1/', true), "
                "(3, 'C2', 'Commune 2', 'commune', '/R/C2/', true)")
            run("INSERT INTO party (id, number, kind, last_name, status, territory_id, created_at, updated_at, version,"
                " vulnerable) VALUES (1, 'P1', 'person', 'Un', 'customer', 2, :t, :t, 1, false), "
                "(2, 'P2', 'person', 'Deux', 'customer', NULL, :t, :t, 1, false), "
                "(3, 'P3', 'person', 'Tiers', 'prospect', 3, :t, :t, 1, false)", t="2026-01-01 00:00:00")
            run("INSERT INTO party_phone (id, party_id, number, position) VALUES (1, 1, '+33612345678', 0)")
            run("INSERT INTO service_point (id, external_ref, kind, main_residence, territory_id) "
                "VALUES (1, 'SP1', 'water', true, 3)")
            run("INSERT INTO contract (id, number, external_ref, service_point_id, status, start_date) "
                "VALUES (1, 'K1', 'K1', 1, 'active', '2025-01-01')")
            run("INSERT INTO contract_party (contract_id, party_id, role) VALUES (1, 2, 'holder')")
            run("INSERT INTO agent (id, login, full_name, password_hash, active, language, failed_logins, "
                "created_at, updated_at, version) VALUES (1, 'a', 'A', '-', true, 'fr', 0, :t, :t, 1)",
                t="2026-01-01 00:00:00")
            run("INSERT INTO contact_type (id, code, label, default_direction, active, position) "
                "VALUES (1, 'T', 'T', 'in', true, 0)")
            for contact_id in (1, 2):
                run("INSERT INTO contact (id, contact_type_id, channel, direction, subject, occurred_at, "
                    "created_by_id, created_at) VALUES (:id, 1, 'phone', 'in', 's', :t, 1, :t)",
                    id=contact_id, t="2026-01-02 00:00:00")
            run("INSERT INTO contact_party (contact_id, party_id, role, origin) VALUES "
                "(1, 3, 'third_party', 'added'), (1, 1, 'customer', 'default'), (2, 2, 'customer', 'default')")
            run("INSERT INTO dossier_type (id, code, label, active, position, auto_start, one_per_contract, "
                "suspends_dunning) VALUES (1, 'REL', 'Relance', true, 0, false, true, false)")
            run("INSERT INTO dunning_procedure (id, code, label, grace_days, dossier_type_id, active) "
                "VALUES (1, 'P', 'P', 0, 1, true)")
            run("INSERT INTO dossier (id, reference, dossier_type_id, subject, status, origin, created_at, "
                "updated_at, version) VALUES (1, 'D1', 1, 's', 'closed', 'automatic', :t, :t, 1)",
                t="2026-01-03 00:00:00")
            run("INSERT INTO dossier_party (dossier_id, party_id, role, origin) VALUES (1, 1, 'customer', 'default')")
            run("INSERT INTO dossier_element (id, dossier_id, kind, title, created_at, pdf_pending) "
                "VALUES (1, 1, 'note', 'Clôture', :t, false)", t="2026-01-05 00:00:00")
            for rank in (1, 2):
                run("INSERT INTO audit_entry (created_at, action, object_type, object_id, changes) "
                    "VALUES (:t, 'dunning_level', 'dossier', '1', :c)", t="2026-01-04 00:00:00",
                    c=f'{{"rank": {rank}, "amount": "10.00"}}')
        _run(app, engine, "upgrade", "9b1d3f5a7c2e")
        with engine.connect() as c:
            placed = dict(c.execute(sa.text("SELECT id, territory_id FROM contact")).all())
            assert placed == {1: 2, 2: 3}  # the customer's commune (not the third party's); the premises'
            assert c.execute(sa.text("SELECT territory_id, dunning_rank, close_reason FROM dossier")).one() \
                == (2, 2, "paid")
        _run(app, engine, "downgrade", "7e2c4a6b8d0f")
        with engine.connect() as c:
            counts = [c.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
                      for table in ("party", "party_phone", "contact", "contact_party", "dossier", "dossier_party",
                                    "dossier_element")]
            assert counts == [3, 1, 2, 3, 1, 1, 1]
            assert "territory_id" not in {col["name"] for col in sa.inspect(c).get_columns("contact")}

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

"""Alembic environment: migrates the database of the running Flask app (``flask db upgrade``)."""
import logging.config

from alembic import context
from flask import current_app

import app.models  # noqa: F401  (registers every table on the metadata)
from app.db import Base, autogenerate_filters

config = context.config
if config.config_file_name and not getattr(config, "guichet_quiet", False):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

migrate_ext = current_app.extensions["migrate"]


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection") or migrate_ext.db.get_engine()

    def process_revision_directives(ctx, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logging.getLogger("alembic").info("No changes in schema detected.")

    def run(connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            process_revision_directives=process_revision_directives,
            **autogenerate_filters(connection.dialect.name),
            **migrate_ext.configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()

    if hasattr(connectable, "connect") and not hasattr(connectable, "execute"):
        with connectable.connect() as connection:
            run(connection)
    else:
        run(connectable)


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported: run `flask db upgrade` against the database.")
run_migrations_online()

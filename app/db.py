"""Database plumbing: the declarative base, the request-scoped session, shared column types.

We use SQLAlchemy directly (no Flask-SQLAlchemy) so that tests can bind the session to one
outer transaction and roll it back, and so that workers and commands share the same session
rules as web requests.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import Flask, has_app_context
from flask.globals import app_ctx
from sqlalchemy import BigInteger, DateTime, MetaData, Numeric, create_engine, event, func, select, type_coerce
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp always handed to Python as an aware UTC datetime, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _session_scope() -> object:
    """One session per application context (request, CLI command, Celery task), else per thread.

    A task run synchronously inside a request pushes its own application context, so it gets
    its own session and its commit cannot carry the request's unfinished work.
    """
    if has_app_context():
        return app_ctx._get_current_object()
    return threading.get_ident()


session = scoped_session(sessionmaker(expire_on_commit=False), scopefunc=_session_scope)


def lock_row(row) -> bool:
    """Lock this row until the transaction ends (``SELECT … FOR UPDATE`` on PostgreSQL), so that
    writers of the same row queue instead of racing; True when it took the lock. SQLite takes its
    write lock for the whole database at ``BEGIN IMMEDIATE``: nothing to do there."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    model = type(row)
    session.execute(select(model.id).where(model.id == row.id).with_for_update())
    return True


def skip_locked(stmt, of):
    """A queue's pick: on PostgreSQL, lock the picked rows of ``of`` and skip those another worker
    holds (``FOR UPDATE SKIP LOCKED``), so that several workers share a queue without taking the
    same item. SQLite began the transaction with ``BEGIN IMMEDIATE``: writers are serialised."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(of=of, skip_locked=True)
    return stmt


def backoff(attempts: int, *, base_seconds: int, max_seconds: int) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones: base, doubled each time, capped."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


class Database:
    """The handle Flask-Migrate and the application factory see: metadata plus the engine."""

    metadata = Base.metadata

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def init_app(self, app: Flask) -> None:
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        kwargs: dict = {"echo": app.config.get("SQLALCHEMY_ECHO", False)}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait (busy_timeout)
            # instead of failing with "database is locked" when upgrading a read lock.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        session.configure(bind=self.engine)
        app.teardown_appcontext(lambda exc: session.remove())

    def get_engine(self) -> Engine:
        assert self.engine is not None, "Database.init_app was not called"
        return self.engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
    # SAVEPOINTs and transactional DDL behave as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # web, worker and beat share the file
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


db = Database()



CENT = Decimal("0.01")


class Money(TypeDecorator):
    """An amount in euros as an exact Decimal: NUMERIC(12,2) on PostgreSQL, integer cents on
    SQLite (whose NUMERIC is a float)."""

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    class comparator_factory(TypeDecorator.Comparator):  # noqa: N801 (SQLAlchemy's hook name)
        def _adapt_expression(self, op, other_comparator):
            # amount × number and amount ÷ number are amounts (still in cents on SQLite).
            if op in (operators.mul, operators.truediv) and not isinstance(other_comparator.type, Money):
                return op, self.type
            return super()._adapt_expression(op, other_comparator)

    def coerce_compared_value(self, op, value):
        # In `amount * 2` or `amount / 3`, the literal is a number, not an amount in cents.
        if op in (operators.mul, operators.truediv, operators.floordiv, operators.mod):
            return Numeric()
        return self

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value).quantize(CENT)
        return int(value * 100) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(value) / 100).quantize(CENT)
        return Decimal(value).quantize(CENT)


def money_avg(column):
    """AVG of a Money column as an amount (SQLite's AVG of cents is not typed by SQLAlchemy)."""
    return type_coerce(func.avg(column), Money())


def autogenerate_filters(dialect_name: str) -> dict:
    """What Alembic's comparison of the models with a database must leave out: SQLite's full-text
    table (and its shadow tables), made by hand in a migration, and the objects declared for the
    other dialect (``Index(...).ddl_if(dialect=...)``)."""

    def include_name(name, type_, _parent_names) -> bool:
        return not (type_ == "table" and name and name.startswith("party_search_fts"))

    def include_object(obj, _name, _type, _reflected, _compare_to) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)
        return not (ddl_if and ddl_if.dialect and ddl_if.dialect != dialect_name)

    return {"include_name": include_name, "include_object": include_object}
